/**
 * What pipeline runs left behind: a step's published manifest in the store (the store the run's
 * input names, `$.run.store`), and the results database's rows, as `strand results` reads them.
 */
import type Database from 'better-sqlite3';
import { formatRows } from '../../results/format.js';
import type { ResultsSink } from '../../results/sink.js';
import { AGGREGATE_SAMPLE } from '../../pipeline/contract.js';
import { StorageError } from '../../storage/errors.js';
import { stepPrefix } from '../../storage/layout.js';
import { readManifest } from '../../storage/publish.js';
import { openStore } from '../../storage/store.js';
import { badRequest, notFound, UiError } from './errors.js';
import { knownPipelines, runNames } from './read.js';
import type { ExecutionRow } from '../../engine/store.js';
import type { OutputsResponse, ResultsResponse, ResultValue } from './types.js';

/** The newest run of `pipeline` (or the execution named), which says where its store is. */
function runOf(
  db: Database.Database,
  pipeline: string,
  execution: string | undefined,
  getExecution: (name: string) => ExecutionRow | undefined,
): ExecutionRow {
  if (execution) {
    const row = getExecution(execution);
    if (!row) throw notFound('execution', execution);
    return row;
  }
  const r = db
    .prepare(
      `SELECT name FROM executions
       WHERE json_valid(input) AND json_extract(input, '$.run.pipeline') = ?
       ORDER BY start_date DESC LIMIT 1`,
    )
    .get(pipeline) as { name: string } | undefined;
  if (!r) throw notFound('pipeline', pipeline, knownPipelines(db));
  return getExecution(r.name)!;
}

/** GET /ui/api/outputs?pipeline=&sample=&step=&execution=. */
export async function stepOutputs(
  home: string,
  db: Database.Database,
  getExecution: (name: string) => ExecutionRow | undefined,
  q: { pipeline?: string; sample?: string; step?: string; execution?: string },
): Promise<OutputsResponse> {
  for (const p of ['pipeline', 'sample', 'step'] as const)
    if (!q[p]) throw badRequest(`${p}= is needed (outputs?pipeline=P&sample=S&step=STEP)`);
  const pipeline = q.pipeline!;
  const sample = q.sample!;
  const step = q.step!;
  const row = runOf(db, pipeline, q.execution, getExecution);
  const run = (JSON.parse(row.input) as { run?: { pipeline?: string; store?: string } }).run;
  if (run?.pipeline !== pipeline || typeof run.store !== 'string')
    throw badRequest(`execution ${row.name} is not a run of pipeline ${pipeline}`);
  const names = runNames(row);
  const steps = [...names.steps, ...names.steps.map((s) => s.split('.')[0])];
  if (!steps.includes(step)) throw notFound('step', step, names.steps, `in run ${row.name}`);
  if (!names.samples.includes(sample))
    throw notFound('sample', sample, names.samples, `in run ${row.name}`);
  let prefix: string;
  try {
    prefix = stepPrefix(pipeline, sample === AGGREGATE_SAMPLE ? null : sample, step);
  } catch (err) {
    if (err instanceof StorageError) throw badRequest(err.message);
    throw err;
  }
  let manifest: Awaited<ReturnType<typeof readManifest>>;
  let location: string;
  try {
    const store = openStore(run.store, { home });
    location = `${store.url.replace(/\/$/, '')}/${prefix}/`;
    manifest = await readManifest(store, prefix);
  } catch (err) {
    if (err instanceof StorageError)
      throw new UiError(503, 'StoreUnavailable', `the store ${run.store}: ${err.message}`);
    throw err;
  }
  return {
    pipeline,
    sample,
    step,
    location,
    ...(manifest
      ? {
          manifest: {
            status: manifest.status,
            execution: manifest.execution,
            jobId: manifest.jobId,
            attempt: manifest.attempt,
            exitCode: manifest.exitCode,
            startedAt: manifest.startedAt,
            stoppedAt: manifest.stoppedAt,
            publishedAt: manifest.publishedAt,
            fingerprint: manifest.fingerprint,
            ...(manifest.error ? { error: manifest.error } : {}),
            outputs: Object.entries(manifest.outputs).map(([name, o]) => ({
              name,
              path: o.path,
              location: o.location,
              missing: o.missing === true,
              files: o.files.map((f) => ({ path: f.path, size: f.size, sha256: f.sha256 })),
            })),
          },
        }
      : {}),
  };
}

/** The columns `strand results` shows, then those it shows when asked. */
export const STEP_COLUMNS = [
  'execution',
  'sample',
  'step',
  'status',
  'exitCode',
  'startedAt',
  'stoppedAt',
  'outputLocation',
  'executor',
  'image',
  'cause',
  'jobId',
  'attempt',
  'logLocation',
  'error',
  'vcpus',
  'memoryMiB',
  'cpuSeconds',
];

/** Rows a JSON answer carries at most; a CSV download carries them all (up to MAX_CSV_ROWS). */
export const MAX_JSON_ROWS = 5000;
export const MAX_CSV_ROWS = 1_000_000;

export interface ResultsQuery {
  pipeline?: string;
  step?: string;
  execution?: string;
  sample?: string;
  /** `true`/`1`: the step's metrics (needs pipeline and step). */
  metrics?: string;
  format?: string;
}

/** The rows of GET /ui/api/results, with their columns. */
export async function resultRows(
  sink: ResultsSink | undefined,
  q: ResultsQuery,
): Promise<{ columns: string[]; rows: Record<string, ResultValue>[] }> {
  const metrics = q.metrics === 'true' || q.metrics === '1';
  if (q.metrics !== undefined && !metrics && q.metrics !== 'false' && q.metrics !== '0')
    throw badRequest(`metrics=${q.metrics}: give true or false`);
  if (metrics && (!q.pipeline || !q.step))
    throw badRequest('metrics=true needs pipeline= and step= (the metrics of one step)');
  if (!sink) return { columns: metrics ? ['execution', 'sample'] : STEP_COLUMNS, rows: [] };
  let rows: Record<string, ResultValue>[];
  let columns: string[];
  if (metrics) {
    rows = (
      await sink.listMetrics(q.pipeline!, q.step!, {
        ...(q.execution ? { execution: q.execution } : {}),
        ...(q.sample ? { sample: q.sample } : {}),
      })
    ).map((r) => ({ execution: r.execution, sample: r.sample, ...r.values }));
    columns = [...new Set(['execution', 'sample', ...rows.flatMap((r) => Object.keys(r))])];
  } else {
    rows = (
      await sink.listSteps({
        ...(q.pipeline ? { pipeline: q.pipeline } : {}),
        ...(q.execution ? { execution: q.execution } : {}),
        ...(q.sample ? { sample: q.sample } : {}),
        ...(q.step ? { step: q.step } : {}),
      })
    ).map((r) =>
      Object.fromEntries(
        STEP_COLUMNS.map((c) => [c, (r as unknown as Record<string, ResultValue>)[c] ?? null]),
      ),
    );
    columns = STEP_COLUMNS;
  }
  if (rows.length === 0 && (q.pipeline || q.step || q.sample || q.execution)) {
    // Nothing matched: a name nowhere in the results is a typo, not an empty answer.
    const all = await sink.listSteps({});
    const check = (field: 'pipeline' | 'step' | 'sample' | 'execution', of = all) => {
      const value = q[field];
      if (value && !of.some((r) => r[field] === value))
        throw notFound(
          field,
          value,
          of.map((r) => r[field]),
          'in the results',
        );
    };
    check('pipeline');
    const mine = all.filter((r) => !q.pipeline || r.pipeline === q.pipeline);
    check('execution', mine);
    check('step', mine);
    check('sample', mine);
  }
  return { columns, rows };
}

/** GET /ui/api/results as JSON. */
export function resultsJson(r: {
  columns: string[];
  rows: Record<string, ResultValue>[];
}): ResultsResponse {
  return {
    columns: r.columns,
    rows: r.rows.slice(0, MAX_JSON_ROWS),
    truncated: r.rows.length > MAX_JSON_ROWS,
  };
}

/** GET /ui/api/results&format=csv: the text and the file name it downloads as. */
export function resultsCsv(
  r: { columns: string[]; rows: Record<string, ResultValue>[] },
  q: ResultsQuery,
): { text: string; filename: string } {
  const parts = [
    'strand-results',
    q.pipeline,
    q.step,
    q.metrics === 'true' || q.metrics === '1' ? 'metrics' : undefined,
  ];
  const filename = `${parts
    .filter((p): p is string => Boolean(p))
    .join('-')
    .replace(/[^A-Za-z0-9._-]/g, '_')}.csv`;
  return {
    text: formatRows(r.rows.slice(0, MAX_CSV_ROWS), 'csv', r.columns) || `${r.columns.join(',')}\n`,
    filename,
  };
}
