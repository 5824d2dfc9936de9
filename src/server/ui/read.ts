/**
 * What the dashboard shows of executions and jobs, read from the home's database (the engine's
 * own connection when this server schedules the home, a read-only one beside another engine):
 * listings with a few columns and JSON paths (an execution's input and a job's detail can be
 * large), an execution's graph, its jobs, and for a pipeline run its sample × step matrix.
 */
import type Database from 'better-sqlite3';
import type { ExecutionStatus, HistoryEvent } from '../../asl/execution.js';
import type { StateMachineDefinition } from '../../asl/types.js';
import { resourceName } from '../../batch/resources.js';
import type { JobDetail, JobStatus } from '../../batch/types.js';
import type { WaitingReason as BatchWaitingReason } from '../../batch/waiting.js';
import { jobIdFor } from '../../engine/batch-integration.js';
import type { ExecutionRow, Store } from '../../engine/store.js';
import { AGGREGATE_SAMPLE, TAG } from '../../pipeline/contract.js';
import { executionAttempts, type AttemptRow as ReportAttemptRow } from '../../report/attempts.js';
import type { StepResultInfo } from '../../results/sink.js';
import { badRequest, notFound, UiError } from './errors.js';
import { stateGraph, stateTallies, type StateTally } from './graph.js';
import type { JobIndex } from './job-index.js';
import type {
  AttemptRow,
  CellStatus,
  ExecutionDetail,
  ExecutionsResponse,
  ExecutionSummary,
  HistoryResponse,
  JobCounts,
  JobDetailResponse,
  JobSummary,
  MatrixCell,
  PipelineMatrix,
  WaitingReason,
} from './types.js';

// The two shapes are one: a change to either fails the build here (each way).
const sameAttempt = (r: ReportAttemptRow): AttemptRow => r;
export const reportAttempt = (r: AttemptRow & { jobAttempt: number }): ReportAttemptRow => r;
const sameWaiting = (r: BatchWaitingReason): WaitingReason => r;
export const batchWaiting = (r: WaitingReason): BatchWaitingReason => r;

const STATUSES: readonly ExecutionStatus[] = [
  'RUNNING',
  'SUCCEEDED',
  'FAILED',
  'ABORTED',
  'TIMED_OUT',
];
const LIVE: readonly JobStatus[] = ['SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING'];
const BATCH_RESOURCE = /^arn:aws[a-z-]*:states:::batch:submitJob/;

/** At most this many executions per page, jobs per execution, history events per page. */
export const MAX_PAGE = 500;
export const MAX_JOBS = 1000;
export const MAX_EVENTS = 1000;

/** A time given as epoch ms or ISO 8601; 400 naming the parameter otherwise. */
export function parseTime(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const ms = /^\d{1,15}$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms))
    throw badRequest(
      `${name}=${value}: give a time as epoch milliseconds or ISO 8601 (2026-12-01 or 2026-12-01T10:00:00Z)`,
    );
  return ms;
}

/** A whole number within bounds, or the default; 400 otherwise. */
export function parseCount(
  name: string,
  value: string | undefined,
  min: number,
  max: number,
  fallback: number,
): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max)
    throw badRequest(`${name}=${value}: give a whole number from ${min} to ${max}`);
  return n;
}

function encodeToken(position: [number, string]): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

function decodeToken(token: string): [number, string] {
  try {
    const p = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(p) && typeof p[0] === 'number' && typeof p[1] === 'string')
      return [p[0], p[1]];
  } catch {
    // refused below
  }
  throw badRequest(
    `nextToken=${token.slice(0, 40)}: not a token this server gave; leave it out to read from the start`,
  );
}

/** The pipeline of an execution, from its input (`$.run.pipeline`), if it is a pipeline run. */
function pipelineOfInput(
  input: unknown,
): { pipeline: string; store: string; file?: string } | undefined {
  const run = (input as { run?: { pipeline?: unknown; store?: unknown; file?: unknown } } | null)
    ?.run;
  if (typeof run?.pipeline !== 'string' || typeof run.store !== 'string') return undefined;
  return {
    pipeline: run.pipeline,
    store: run.store,
    ...(typeof run.file === 'string' ? { file: run.file } : {}),
  };
}

/** Parses JSON kept as text; the text itself when it is not JSON. */
function parsed(text: string | null | undefined): unknown {
  if (text === null || text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** A job as the dashboard lists it. */
export function jobSummary(j: JobDetail): JobSummary {
  const tags = j.tags ?? {};
  const req = (type: string) => {
    const r = j.container.resourceRequirements.find((x) => x.type === type);
    return r === undefined ? undefined : Number(r.value);
  };
  const vcpus = j.sizing?.vcpus ?? req('VCPU');
  const memoryMiB = j.sizing?.memoryMiB ?? req('MEMORY');
  return {
    jobId: j.jobId,
    jobName: j.jobName,
    status: j.status,
    ...(j.statusReason ? { statusReason: j.statusReason } : {}),
    queue: resourceName(j.jobQueue, 'job-queue'),
    createdAt: j.createdAt,
    ...(j.startedAt !== undefined ? { startedAt: j.startedAt } : {}),
    ...(j.stoppedAt !== undefined ? { stoppedAt: j.stoppedAt } : {}),
    ...(tags[TAG.execution] ? { execution: tags[TAG.execution] } : {}),
    ...(tags[TAG.pipeline] ? { pipeline: tags[TAG.pipeline] } : {}),
    ...(tags[TAG.sample] ? { sample: tags[TAG.sample] } : {}),
    ...(tags[TAG.step] ? { step: tags[TAG.step] } : {}),
    ...(tags[TAG.cached] === 'true' ? { cached: true } : {}),
    ...(vcpus !== undefined && Number.isFinite(vcpus) ? { vcpus } : {}),
    ...(memoryMiB !== undefined && Number.isFinite(memoryMiB) ? { memoryMiB } : {}),
    attempts: j.attempts.length,
  };
}

/** Whether the home's database has Batch tables yet (made when an engine first opens it). */
function hasBatch(db: Database.Database): boolean {
  return (
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'batch_jobs'").get() !==
    undefined
  );
}

interface SummaryRow {
  arn: string;
  name: string;
  state_machine_name: string;
  status: ExecutionStatus;
  start_date: number;
  stop_date: number | null;
  redrive_count: number;
  pipeline: string | null;
}

const SUMMARY_COLUMNS = `arn, name, state_machine_name, status, start_date, stop_date, redrive_count,
  CASE WHEN json_valid(input) THEN json_extract(input, '$.run.pipeline') END AS pipeline`;

function toSummary(r: SummaryRow, jobs: JobCounts = {}): ExecutionSummary {
  return {
    name: r.name,
    arn: r.arn,
    stateMachine: r.state_machine_name,
    ...(typeof r.pipeline === 'string' ? { pipeline: r.pipeline } : {}),
    status: r.status,
    startDate: r.start_date,
    ...(r.stop_date !== null ? { stopDate: r.stop_date } : {}),
    redriveCount: r.redrive_count,
    jobs,
  };
}

export interface ExecutionsFilter {
  status?: string;
  pipeline?: string;
  since?: string;
  until?: string;
  limit?: string;
  nextToken?: string;
}

/** GET /ui/api/executions: newest first, a page at a time. */
export function listExecutions(
  db: Database.Database,
  f: ExecutionsFilter,
  jobs: JobIndex,
): ExecutionsResponse {
  if (f.status !== undefined && f.status !== '' && !STATUSES.includes(f.status as ExecutionStatus))
    throw badRequest(`status=${f.status}: give one of ${STATUSES.join(', ')}`);
  const status = f.status || null;
  const since = parseTime('since', f.since) ?? null;
  const until = parseTime('until', f.until) ?? null;
  if (since !== null && until !== null && until < since)
    throw badRequest(`until=${f.until} is before since=${f.since}`);
  const limit = parseCount('limit', f.limit, 1, MAX_PAGE, 100);
  const after = f.nextToken ? decodeToken(f.nextToken) : null;
  const pipeline = f.pipeline || null;
  const rows = db
    .prepare(
      `SELECT ${SUMMARY_COLUMNS} FROM executions
       WHERE (@status IS NULL OR status = @status)
         AND (@since IS NULL OR start_date >= @since)
         AND (@until IS NULL OR start_date < @until)
         AND (@pipeline IS NULL OR (json_valid(input) AND json_extract(input, '$.run.pipeline') = @pipeline))
         AND (@afterDate IS NULL OR start_date < @afterDate OR (start_date = @afterDate AND name > @afterName))
       ORDER BY start_date DESC, name ASC
       LIMIT @limit`,
    )
    .all({
      status,
      since,
      until,
      pipeline,
      afterDate: after?.[0] ?? null,
      afterName: after?.[1] ?? null,
      limit: limit + 1,
    }) as SummaryRow[];
  if (rows.length === 0 && pipeline !== null && after === null) {
    // A pipeline no run of the home has: a typo, said so, rather than an empty list.
    const known = knownPipelines(db);
    if (!known.includes(pipeline)) throw notFound('pipeline', pipeline, known);
  }
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    executions: page.map((r) => toSummary(r, jobs.counts(r.name))),
    ...(rows.length > limit && last
      ? { nextToken: encodeToken([last.start_date, last.name]) }
      : {}),
  };
}

/** The pipelines the home's executions ran. */
export function knownPipelines(db: Database.Database): string[] {
  return (
    db
      .prepare(
        `SELECT DISTINCT json_extract(input, '$.run.pipeline') AS p FROM executions
         WHERE json_valid(input) AND json_extract(input, '$.run.pipeline') IS NOT NULL`,
      )
      .all() as { p: unknown }[]
  )
    .map((r) => r.p)
    .filter((p): p is string => typeof p === 'string');
}

/** One execution's summary, by name or ARN. */
export function executionSummary(
  db: Database.Database,
  nameOrArn: string,
  jobs: JobIndex,
): ExecutionSummary | undefined {
  // Each by its own index (an OR of the two would read the whole table).
  const r = (db.prepare(`SELECT ${SUMMARY_COLUMNS} FROM executions WHERE arn = ?`).get(nameOrArn) ??
    db.prepare(`SELECT ${SUMMARY_COLUMNS} FROM executions WHERE name = ?`).get(nameOrArn)) as
    SummaryRow | undefined;
  return r && toSummary(r, jobs.counts(r.name));
}

/** The execution `name` (or ARN), or a 404 naming the closest of the home's executions. */
export function executionRow(store: Store, name: string): ExecutionRow {
  const row = store.getExecution(name);
  if (row) return row;
  const names = (
    store.db.prepare('SELECT name FROM executions ORDER BY start_date DESC LIMIT 5000').all() as {
      name: string;
    }[]
  ).map((r) => r.name);
  throw notFound('execution', name, names);
}

/** Jobs by id, as recorded. */
function jobsById(db: Database.Database, ids: string[]): JobDetail[] {
  if (ids.length === 0 || !hasBatch(db)) return [];
  return (
    db
      .prepare(
        'SELECT detail FROM batch_jobs WHERE job_id IN (SELECT value FROM json_each(?)) ORDER BY created_at, job_id',
      )
      .all(JSON.stringify(ids)) as { detail: string }[]
  ).map((r) => JSON.parse(r.detail) as JobDetail);
}

/**
 * Every Batch job of an execution: those tagged with its name (a pipeline's), those of its
 * outstanding Batch tasks, and those its history names (a plain state machine's, once answered).
 */
export function executionJobs(
  db: Database.Database,
  row: ExecutionRow,
  history: readonly HistoryEvent[],
  index: JobIndex,
): JobDetail[] {
  if (!hasBatch(db)) return [];
  const tagged = jobsById(db, index.jobsOf(row.name));
  const seen = new Set(tagged.map((j) => j.jobId));
  const ids = new Set<string>();
  for (const t of db
    .prepare('SELECT task_id, resource FROM tasks WHERE execution_arn = ?')
    .all(row.arn) as { task_id: string; resource: string }[])
    if (BATCH_RESOURCE.test(t.resource)) ids.add(jobIdFor(row.arn, t.task_id));
  for (const e of history) {
    const value =
      e.type === 'TaskSucceeded'
        ? (e.taskSucceededEventDetails as { output?: unknown } | undefined)?.output
        : e.type === 'TaskFailed'
          ? (e.taskFailedEventDetails as { cause?: unknown } | undefined)?.cause
          : undefined;
    const d = typeof value === 'string' ? parsed(value) : value;
    const id = (d as { JobId?: unknown } | undefined)?.JobId;
    if (typeof id === 'string') ids.add(id);
  }
  // A cache hit names the job of another run whose outputs it reused: not one of this run's.
  const more = jobsById(
    db,
    [...ids].filter((id) => !seen.has(id)),
  ).filter((j) => j.tags?.[TAG.execution] === undefined || j.tags[TAG.execution] === row.name);
  return [...tagged, ...more].sort((a, b) => a.createdAt - b.createdAt);
}

/** The steps (jobs: `qc`, `annotate.genes`) in the order the definition names them. */
function definitionSteps(definition: unknown): { steps: string[]; aggregate: boolean } {
  const steps: string[] = [];
  let aggregate = false;
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      const tags = (node as { Tags?: Record<string, unknown> }).Tags;
      const step = tags?.[TAG.step];
      if (typeof step === 'string' && !steps.includes(step)) steps.push(step);
      if (tags?.[TAG.sample] === AGGREGATE_SAMPLE) aggregate = true;
      Object.values(node).forEach(walk);
    }
  };
  walk(definition);
  return { steps, aggregate };
}

/** The samples and steps of a pipeline run: its input's samples, its definition's steps. */
export function runNames(row: ExecutionRow): { samples: string[]; steps: string[] } {
  const input = parsed(row.input) as { samples?: { id?: unknown }[] } | undefined;
  const samples = (input?.samples ?? [])
    .map((s) => s.id)
    .filter((id): id is string => typeof id === 'string');
  const { steps, aggregate } = definitionSteps(parsed(row.definition));
  return { samples: aggregate ? [...samples, AGGREGATE_SAMPLE] : samples, steps };
}

const cellStatusOfJob = (j: JobDetail): CellStatus =>
  j.status === 'SUCCEEDED'
    ? j.tags?.[TAG.cached] === 'true'
      ? 'CACHED'
      : 'SUCCEEDED'
    : j.status === 'FAILED'
      ? 'FAILED'
      : j.status === 'RUNNING' || j.status === 'STARTING'
        ? 'RUNNING'
        : 'WAITING';

/**
 * The sample × step matrix of a pipeline run: each cell from its latest job (while one waits or
 * runs) and the results row of the step (how it ended, cached or skipped included).
 */
export function pipelineMatrix(
  row: ExecutionRow,
  jobs: JobDetail[],
  results: StepResultInfo[],
  attempts: AttemptRow[],
  now: number,
): PipelineMatrix {
  const { samples, steps } = runNames(row);
  const key = (sample: string, step: string) => `${sample}\u0000${step}`;
  const jobsOf = new Map<string, JobDetail[]>();
  for (const j of jobs) {
    const tags = j.tags ?? {};
    if (tags[TAG.execution] !== row.name || !tags[TAG.step]) continue;
    const k = key(tags[TAG.sample] ?? AGGREGATE_SAMPLE, tags[TAG.step]);
    const list = jobsOf.get(k) ?? [];
    list.push(j);
    jobsOf.set(k, list);
  }
  const resultOf = new Map(results.map((r) => [key(r.sample, r.step), r]));
  const cachedOf = new Set(attempts.filter((a) => a.cached).map((a) => key(a.sample, a.step)));
  const cells: MatrixCell[] = [];
  for (const sample of samples)
    for (const step of steps) {
      const k = key(sample, step);
      const list = jobsOf.get(k) ?? [];
      const latest = list.at(-1);
      const result = resultOf.get(k);
      let status: CellStatus = 'NOT_RUN';
      if (latest && LIVE.includes(latest.status)) status = cellStatusOfJob(latest);
      else if (result) status = result.status;
      else if (latest) status = cellStatusOfJob(latest);
      else if (cachedOf.has(k)) status = 'CACHED';
      const last = latest?.attempts.at(-1);
      let durationMs: number | undefined;
      if (latest?.status === 'RUNNING') {
        // The attempt under way began when the one before it ended (or the job started).
        const from = last ? last.stoppedAt : latest.startedAt;
        if (from !== undefined) durationMs = now - from;
      } else if (last?.startedAt !== undefined && last.stoppedAt !== undefined)
        durationMs = last.stoppedAt - last.startedAt;
      else if (result?.startedAt && result.stoppedAt)
        durationMs = Date.parse(result.stoppedAt) - Date.parse(result.startedAt);
      const exitCode = result?.exitCode ?? last?.container.exitCode;
      const error =
        result?.error ?? (latest?.status === 'FAILED' ? latest.statusReason : undefined);
      cells.push({
        sample,
        step,
        status,
        ...(durationMs !== undefined && Number.isFinite(durationMs)
          ? { durationMs: Math.max(0, durationMs) }
          : {}),
        cached: status === 'CACHED',
        attempts:
          list.reduce((n, j) => n + j.attempts.length, 0) + (latest?.status === 'RUNNING' ? 1 : 0),
        ...(latest || result?.jobId ? { jobId: latest?.jobId ?? result?.jobId } : {}),
        ...(exitCode !== undefined ? { exitCode } : {}),
        ...(error ? { error } : {}),
      });
    }
  return { samples, steps, cells };
}

/** Tallies of the last few histories read, by execution, last event and status. */
const talliesSeen = new Map<string, Map<string, StateTally>>();

function talliesOf(row: ExecutionRow, history: readonly HistoryEvent[]): Map<string, StateTally> {
  const k = `${row.arn}|${history.at(-1)?.id ?? 0}|${row.status}`;
  let t = talliesSeen.get(k);
  if (!t) {
    t = stateTallies(history, row.status);
    talliesSeen.set(k, t);
    if (talliesSeen.size > 32) talliesSeen.delete(talliesSeen.keys().next().value!);
  }
  return t;
}

export interface DetailSources {
  store: Store;
  jobs: JobIndex;
  /** The results rows of an execution (none without a results database). */
  results: (execution: string) => Promise<StepResultInfo[]>;
  now: number;
}

/** GET /ui/api/executions/:name. */
export async function executionDetail(s: DetailSources, name: string): Promise<ExecutionDetail> {
  const row = executionRow(s.store, name);
  const history = s.store.history(row.arn);
  const jobs = executionJobs(s.store.db, row, history, s.jobs);
  let definition: StateMachineDefinition;
  try {
    definition = JSON.parse(row.definition) as StateMachineDefinition;
  } catch {
    definition = { StartAt: '', States: {} };
  }
  const input = parsed(row.input);
  const run = pipelineOfInput(input);
  const summary = executionSummary(s.store.db, row.arn, s.jobs)!;
  const detail: ExecutionDetail = {
    ...summary,
    input,
    ...(row.output !== null ? { output: parsed(row.output) } : {}),
    ...(row.error !== null ? { error: row.error } : {}),
    ...(row.cause !== null ? { cause: row.cause } : {}),
    redrivable: ['FAILED', 'ABORTED', 'TIMED_OUT'].includes(row.status) && row.state !== null,
    graph: stateGraph(definition, talliesOf(row, history)),
    lastEventId: history.at(-1)?.id ?? 0,
    jobList: jobs.slice(-MAX_JOBS).map(jobSummary),
  };
  if (run) {
    const attempts = executionAttempts(jobs, row.name, history).map(sameAttempt);
    const results = await s.results(row.name);
    detail.pipelineRun = {
      pipeline: run.pipeline,
      ...(run.file ? { file: run.file } : {}),
      store: run.store,
      matrix: pipelineMatrix(row, jobs, results, attempts, s.now),
      attempts,
    };
  }
  return detail;
}

/** GET /ui/api/executions/:name/history?after=&limit=. */
export function executionHistory(
  store: Store,
  name: string,
  q: { after?: string; limit?: string },
): HistoryResponse {
  const row = executionRow(store, name);
  const after = parseCount('after', q.after, 0, Number.MAX_SAFE_INTEGER, 0);
  const limit = parseCount('limit', q.limit, 1, MAX_EVENTS, MAX_EVENTS);
  const events = store.history(row.arn, after, limit + 1);
  const page = events.slice(0, limit);
  return {
    events: page,
    lastEventId: page.at(-1)?.id ?? after,
    more: events.length > limit,
  };
}

/** A job by id, or a 404 with the closest id (or the one id it is the start of). */
export function jobById(db: Database.Database, id: string): JobDetail {
  if (hasBatch(db)) {
    const r = db.prepare('SELECT detail FROM batch_jobs WHERE job_id = ?').get(id) as
      { detail: string } | undefined;
    if (r) return JSON.parse(r.detail) as JobDetail;
    const starting = db
      .prepare("SELECT job_id FROM batch_jobs WHERE job_id LIKE ? ESCAPE '\\' LIMIT 2")
      .all(`${id.replace(/[\\%_]/g, (c) => `\\${c}`)}%`) as { job_id: string }[];
    if (id.length >= 4 && starting.length === 1)
      throw new UiError(
        404,
        'NotFound',
        `no job "${id}" in this home; did you mean "${starting[0].job_id}"?`,
        starting[0].job_id,
      );
    const recent = (
      db.prepare('SELECT job_id FROM batch_jobs ORDER BY created_at DESC LIMIT 2000').all() as {
        job_id: string;
      }[]
    ).map((x) => x.job_id);
    throw notFound('job', id, recent);
  }
  throw notFound('job', id);
}

/** GET /ui/api/jobs/:id. */
export function jobDetail(
  db: Database.Database,
  job: JobDetail,
  waiting: (jobId: string) => WaitingReason | undefined,
): JobDetailResponse {
  const tags = job.tags ?? {};
  const arn = tags[TAG.execution]
    ? (db.prepare('SELECT arn FROM executions WHERE name = ?').get(tags[TAG.execution]) as
        { arn: string } | undefined)
    : undefined;
  const reason = LIVE.includes(job.status) ? waiting(job.jobId) : undefined;
  return {
    ...jobSummary(job),
    ...(job.container.image ? { image: job.container.image } : {}),
    command: job.container.command,
    environment: job.container.environment,
    secrets: job.container.secrets ?? [],
    dependsOn: job.dependsOn.map((d) => d.jobId).filter(Boolean),
    ...(job.retryStrategy?.attempts !== undefined
      ? { maxAttempts: job.retryStrategy.attempts }
      : {}),
    ...(job.timeout?.attemptDurationSeconds !== undefined
      ? { timeoutSeconds: job.timeout.attemptDurationSeconds }
      : {}),
    ...(job.sizing ? { sizing: job.sizing } : {}),
    attemptList: job.attempts.map((a, i) => ({
      attempt: i + 1,
      ...(a.startedAt !== undefined ? { startedAt: a.startedAt } : {}),
      ...(a.stoppedAt !== undefined ? { stoppedAt: a.stoppedAt } : {}),
      ...(a.container.exitCode !== undefined ? { exitCode: a.container.exitCode } : {}),
      ...(a.container.reason ? { reason: a.container.reason } : {}),
      ...(a.statusReason ? { statusReason: a.statusReason } : {}),
      ...(a.vcpus !== undefined ? { vcpus: a.vcpus } : {}),
      ...(a.memoryMiB !== undefined ? { memoryMiB: a.memoryMiB } : {}),
      ...(a.cpuSeconds !== undefined ? { cpuSeconds: a.cpuSeconds } : {}),
      logStreamName: a.container.logStreamName,
    })),
    ...(reason ? { waiting: reason } : {}),
    ...(arn ? { executionArn: arn.arn } : {}),
  };
}

export { sameWaiting as toWaitingReason };
