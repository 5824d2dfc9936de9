/**
 * The contract every results sink implements (SQLite, Postgres), plus the checks all of them
 * share. No driver, connection or transaction type appears here, and every method is async, so
 * a networked database fits behind the same interface unchanged.
 *
 * A sink holds two kinds of rows:
 * - one row per execution × sample × step saying how the step went (`upsertStep`);
 * - metrics extracted from a step's results file (`putMetrics`): one table per pipeline × step
 *   whose typed columns grow as new metric names appear, rows keyed by execution × sample ×
 *   row index (a `mash dist` TSV gives many rows, a fastp JSON one).
 */
import { ALL_SAMPLES } from '../storage/layout.js';
import { ResultsError } from './errors.js';

export type StepStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CACHED' | 'SKIPPED';

const STEP_STATUSES: readonly StepStatus[] = [
  'RUNNING',
  'SUCCEEDED',
  'FAILED',
  'CACHED',
  'SKIPPED',
];

/** The sample name of a step that runs once over all samples (an aggregate step). */
export const AGGREGATE_SAMPLE = ALL_SAMPLES;

/** How one step of one sample went in one execution. */
export interface StepResultInfo {
  execution: string;
  pipeline: string;
  /** The sample id, or AGGREGATE_SAMPLE for a step that runs once over all samples. */
  sample: string;
  /** Step name (`qc`, or `annotate.genes` for a substep). */
  step: string;
  status: StepStatus;
  /**
   * ISO 8601 timestamps. A sink gives back the same instant, not always the same text: Postgres
   * answers in UTC with milliseconds (`2026-01-05T10:00:00.000Z`), as Strand itself writes them.
   */
  startedAt?: string;
  stoppedAt?: string;
  exitCode?: number;
  jobId?: string;
  attempt?: number;
  /** Where the step's outputs were published (a store URL or prefix). */
  outputLocation?: string;
  logLocation?: string;
  /** What ran the job (`local`, `podman`, `docker`), and the image it ran in. */
  executor?: string;
  image?: string;
  /**
   * The vCPUs and memory (MiB) the job's attempt had, and the CPU time (user + system seconds)
   * all of its processes used: what elastic sizes are chosen from.
   */
  vcpus?: number;
  memoryMiB?: number;
  cpuSeconds?: number;
  /** The peak memory (MiB) its processes used together, where the executor measures it. */
  peakMemoryMiB?: number;
  /** Error name and cause of a FAILED step (ASL `Error` / `Cause`). */
  error?: string;
  cause?: string;
}

/**
 * What `upsertStep` takes: a StepResultInfo in which an optional field left undefined keeps the
 * stored value and `null` clears it (a retry that succeeds clears the error of the attempt
 * before).
 */
export type StepResultUpsert = {
  [K in keyof StepResultInfo]: undefined extends StepResultInfo[K]
    ? StepResultInfo[K] | null
    : StepResultInfo[K];
};

/** Which step rows `listSteps` returns: every field given must match exactly. */
export interface StepFilter {
  pipeline?: string;
  execution?: string;
  sample?: string;
  step?: string;
  status?: StepStatus;
}

export type MetricType = 'integer' | 'real' | 'text';
export type MetricValue = string | number | null;

export interface MetricColumn {
  /** 1–63 characters of `[a-z0-9_]`, not starting with `_` (the sink's own columns do). */
  name: string;
  type: MetricType;
}

/** Rows of metrics, each row one value per column (`null` = missing). */
export interface MetricsTable {
  columns: MetricColumn[];
  rows: MetricValue[][];
}

/** Whose metrics a table holds. */
export interface MetricsKey {
  pipeline: string;
  step: string;
  execution: string;
  sample: string;
}

export interface MetricsFilter {
  execution?: string;
  sample?: string;
}

/** One stored metrics row: values by column name, in column order. */
export interface MetricsRowInfo {
  execution: string;
  sample: string;
  /** 0-based index of the row within what was put for this execution × sample. */
  row: number;
  values: Record<string, MetricValue>;
}

/** Where step rows and metrics go. Every sink passes test/results/conformance.ts. */
export interface ResultsSink {
  /**
   * Inserts or updates the row keyed by execution × sample × step; fields left undefined keep
   * what was stored, so calling it twice with the same row changes nothing.
   */
  upsertStep(row: StepResultUpsert): Promise<void>;
  /**
   * Replaces the metrics rows of `key` (execution × sample) in the pipeline × step table, adding
   * columns as new names appear. An integer column widens to real when a non-integer arrives;
   * a number put into a text column is stored as its text; text put into a numeric column is
   * a TYPE_CONFLICT and nothing is written.
   */
  putMetrics(key: MetricsKey, table: MetricsTable): Promise<void>;
  /** Step rows matching `filter`, in the order they were first recorded. */
  listSteps(filter?: StepFilter): Promise<StepResultInfo[]>;
  /**
   * The last `limit` SUCCEEDED rows of pipeline × step that say how many vCPUs they had, the
   * latest first: how the step's run time scaled.
   */
  stepHistory(pipeline: string, step: string, limit: number): Promise<StepResultInfo[]>;
  /** Metrics rows of pipeline × step, by execution, sample and row; [] if none were put. */
  listMetrics(pipeline: string, step: string, filter?: MetricsFilter): Promise<MetricsRowInfo[]>;
  close(): Promise<void>;
}

const METRIC_NAME = /^[a-z0-9][a-z0-9_]{0,62}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

function bad(message: string): ResultsError {
  return new ResultsError('BAD_INPUT', message);
}

function describeStep(row: { execution: string; sample: string; step: string }): string {
  return `step result ${JSON.stringify(row.step)} of sample ${JSON.stringify(row.sample)} (execution ${JSON.stringify(row.execution)})`;
}

/** An SQL identifier in double quotes (the same in SQLite and Postgres). */
export function quoteIdentifier(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}

/** `microbe-genome` → `microbe_genome`: a fragment of a metric table's name, never empty. */
export function tableFragment(name: string): string {
  const s = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return s === '' ? 'x' : s;
}

/** Throws BAD_INPUT unless `row` is a well-formed step result (sinks call it before writing). */
export function checkStepResult(row: StepResultUpsert): void {
  for (const field of ['execution', 'pipeline', 'sample', 'step'] as const) {
    if (typeof row[field] !== 'string' || row[field] === '') {
      throw bad(
        `step result: ${field} must be a non-empty string, got ${JSON.stringify(row[field])}`,
      );
    }
  }
  const what = describeStep(row);
  if (!STEP_STATUSES.includes(row.status)) {
    throw bad(
      `${what}: status ${JSON.stringify(row.status)} is not one of ${STEP_STATUSES.join(', ')}`,
    );
  }
  for (const field of ['startedAt', 'stoppedAt'] as const) {
    const v = row[field];
    if (v != null && (typeof v !== 'string' || !ISO_TIME.test(v) || Number.isNaN(Date.parse(v)))) {
      throw bad(
        `${what}: ${field} ${JSON.stringify(v)} is not an ISO 8601 time (2026-01-31T12:00:00Z)`,
      );
    }
  }
  if (row.exitCode != null && !Number.isSafeInteger(row.exitCode)) {
    throw bad(`${what}: exitCode ${JSON.stringify(row.exitCode)} is not an integer`);
  }
  if (row.attempt != null && !(Number.isSafeInteger(row.attempt) && row.attempt >= 1)) {
    throw bad(`${what}: attempt ${JSON.stringify(row.attempt)} is not a whole number ≥ 1`);
  }
  for (const field of ['vcpus', 'memoryMiB', 'cpuSeconds', 'peakMemoryMiB'] as const) {
    const v = row[field];
    if (v != null && !(typeof v === 'number' && Number.isFinite(v) && v >= 0)) {
      throw bad(`${what}: ${field} ${JSON.stringify(v)} is not a number ≥ 0`);
    }
  }
  for (const field of [
    'jobId',
    'outputLocation',
    'logLocation',
    'executor',
    'image',
    'error',
    'cause',
  ] as const) {
    const v = row[field];
    if (v != null && typeof v !== 'string') {
      throw bad(`${what}: ${field} must be a string, got ${JSON.stringify(v)}`);
    }
  }
}

/** Names a key in messages: `pipeline "p", step "s", sample "S1" (execution "e")`. */
export function describeMetricsKey(key: MetricsKey): string {
  return (
    `pipeline ${JSON.stringify(key.pipeline)}, step ${JSON.stringify(key.step)}, ` +
    `sample ${JSON.stringify(key.sample)} (execution ${JSON.stringify(key.execution)})`
  );
}

function fitsType(value: MetricValue, type: MetricType): boolean {
  if (value === null) return true;
  if (type === 'text') return typeof value === 'string';
  if (type === 'integer') return Number.isSafeInteger(value);
  return typeof value === 'number' && Number.isFinite(value);
}

/** Throws BAD_INPUT unless `table` is well formed: valid unique names, values of their type. */
export function checkMetrics(key: MetricsKey, table: MetricsTable): void {
  for (const field of ['pipeline', 'step', 'execution', 'sample'] as const) {
    if (typeof key[field] !== 'string' || key[field] === '') {
      throw bad(`metrics: ${field} must be a non-empty string, got ${JSON.stringify(key[field])}`);
    }
  }
  const where = `metrics of ${describeMetricsKey(key)}`;
  const seen = new Set<string>();
  for (const c of table.columns) {
    if (!METRIC_NAME.test(c.name)) {
      throw bad(
        `${where}: column name ${JSON.stringify(c.name)} must be 1–63 characters of [a-z0-9_] not starting with "_"`,
      );
    }
    if (seen.has(c.name)) throw bad(`${where}: column ${JSON.stringify(c.name)} appears twice`);
    seen.add(c.name);
    if (c.type !== 'integer' && c.type !== 'real' && c.type !== 'text') {
      throw bad(`${where}: column ${c.name} has unknown type ${JSON.stringify(c.type)}`);
    }
  }
  table.rows.forEach((row, i) => {
    if (row.length !== table.columns.length) {
      throw bad(`${where}: row ${i} has ${row.length} values for ${table.columns.length} columns`);
    }
    row.forEach((value, j) => {
      const column = table.columns[j];
      if (!fitsType(value, column.type)) {
        throw bad(
          `${where}: row ${i}, column ${column.name} (${column.type}): ${JSON.stringify(value)}`,
        );
      }
    });
  });
}

/**
 * What happens when values of type `incoming` are put into a column that already has type
 * `have`: `keep` the column (reals hold integers), `widen` it from integer to real, store the
 * numbers `as-text` in a text column, or refuse (`conflict`: text in a numeric column).
 */
export function mergeColumnType(
  have: MetricType,
  incoming: MetricType,
): 'keep' | 'widen' | 'as-text' | 'conflict' {
  if (have === incoming) return 'keep';
  if (have === 'real' && incoming === 'integer') return 'keep';
  if (have === 'integer' && incoming === 'real') return 'widen';
  if (have === 'text') return 'as-text';
  return 'conflict';
}
