/**
 * The attempts of a pipeline execution, one row each: what `strand report` draws and the
 * dashboard lists. Pure: it reads Batch jobs (as DescribeJobs gives them) and, for the jobs the
 * cache answered, the execution's history; it touches no database.
 */
import type { HistoryEvent } from '../asl/execution.js';
import type { AttemptDetail, JobDetail, ResourceRequirement } from '../batch/types.js';
import { TAG } from '../pipeline/contract.js';

export interface AttemptRow {
  execution: string;
  sample: string;
  step: string;
  jobId: string;
  jobName: string;
  /**
   * 1-based: the attempt of its sample × step in this execution, as `strand run` counts them
   * ("started qc S1 (attempt 2)"): a step's `retry:` submits a new Batch job for each retry, and
   * a job's own retryStrategy makes attempts of one job; both count. A job the cache answered
   * has one row, attempt 1.
   */
  attempt: number;
  /** 1-based: the attempt of the Batch job itself (DescribeJobs' `attempts`). */
  jobAttempt: number;
  status: 'WAITING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';
  /** Served from the job cache: it did not run (jobId is the job whose outputs it reused). */
  cached: boolean;
  /** Epoch ms: when the job was submitted (for a cached job: when the cache answered). */
  createdAt: number;
  startedAt?: number;
  stoppedAt?: number;
  exitCode?: number;
  reason?: string;
  /** What it had. */
  vcpus?: number;
  memoryMiB?: number;
  /** What it used: its processes' CPU time, and their peak memory. */
  cpuSeconds?: number;
  peakMemoryMiB?: number;
  logStreamName?: string;
}

const WAITING = new Set(['SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING']);

function requirement(reqs: ResourceRequirement[] | undefined, type: string): number | undefined {
  const r = reqs?.find((x) => x.type === type);
  const n = r === undefined ? NaN : Number(r.value);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * One row per attempt of every Batch job the pipeline execution `execution` submitted (by its
 * `strand:execution` tag), in the order the jobs were created; with the execution's `history`,
 * also one row per job the cache answered (those are not Batch jobs of this execution), after
 * them. A job that ended before any attempt started (it could never fit, a dependency failed, it
 * was terminated while waiting) has one FAILED row without a start; a job still waiting or
 * running has a row for the attempt under way after those that ended. `attempt` counts the
 * attempts of each sample × step across its jobs.
 */
export function executionAttempts(
  jobs: JobDetail[],
  execution: string,
  history?: readonly HistoryEvent[],
): AttemptRow[] {
  const rows: AttemptRow[] = [];
  const mine = jobs
    .filter((job) => job.tags?.[TAG.execution] === execution)
    // An array job's parent never runs itself; its children are listed.
    .filter((job) => !(job.arrayProperties?.size && job.arrayProperties.index === undefined))
    .sort((a, b) => a.createdAt - b.createdAt);
  for (const job of mine) rows.push(...jobAttempts(job, execution));
  if (history) rows.push(...cachedAttempts(history, execution));
  const counted = new Map<string, number>();
  for (const row of rows) {
    const key = `${row.sample}\u0000${row.step}`;
    const n = (counted.get(key) ?? 0) + 1;
    counted.set(key, n);
    row.attempt = n;
  }
  return rows;
}

/**
 * The rows of one Batch job: its ended attempts, then the one waiting or running, if any
 * (`attempt` is the job's own, as `jobAttempt`).
 */
export function jobAttempts(job: JobDetail, execution: string): AttemptRow[] {
  const tags = job.tags ?? {};
  const base = {
    execution,
    sample: tags[TAG.sample] ?? '',
    step: tags[TAG.step] ?? job.jobName,
    jobId: job.jobId,
    jobName: job.jobName,
    cached: false,
    createdAt: job.createdAt,
  };
  const ended = job.attempts.map((a: AttemptDetail, i): AttemptRow => {
    const last = i === job.attempts.length - 1;
    return {
      ...base,
      attempt: i + 1,
      jobAttempt: i + 1,
      // Every attempt but a SUCCEEDED job's last was a failure (it was retried, or the last).
      status: last && job.status === 'SUCCEEDED' ? 'SUCCEEDED' : 'FAILED',
      ...defined({
        startedAt: a.startedAt,
        stoppedAt: a.stoppedAt,
        exitCode: a.container.exitCode,
        reason: a.container.reason ?? (a.container.exitCode === 0 ? undefined : a.statusReason),
        vcpus: a.vcpus,
        memoryMiB: a.memoryMiB,
        cpuSeconds: a.cpuSeconds,
        peakMemoryMiB: a.peakMemoryMiB,
        logStreamName: a.container.logStreamName || undefined,
      }),
    };
  });
  const live = job.status === 'RUNNING' || WAITING.has(job.status);
  if (!live && (ended.length > 0 || job.status !== 'FAILED')) return ended;
  const reqs = job.container.resourceRequirements;
  // The attempt under way: its size is the latest sizing (a range of vCPUs) or what it asked for.
  const current: AttemptRow = {
    ...base,
    attempt: ended.length + 1,
    jobAttempt: ended.length + 1,
    status: job.status === 'RUNNING' ? 'RUNNING' : live ? 'WAITING' : 'FAILED',
    ...defined({
      // Only the first attempt's start is on the job itself.
      startedAt: job.status === 'RUNNING' && ended.length === 0 ? job.startedAt : undefined,
      stoppedAt: live ? undefined : job.stoppedAt,
      reason: live ? undefined : job.statusReason,
      vcpus: job.sizing?.vcpus ?? requirement(reqs, 'VCPU'),
      memoryMiB: job.sizing?.memoryMiB ?? requirement(reqs, 'MEMORY'),
      logStreamName: live ? job.container.logStreamName || undefined : undefined,
    }),
  };
  return [...ended, current];
}

/**
 * The jobs of `execution` the cache answered, from its history: each TaskSucceeded whose output
 * is a job tagged `strand:cached` (the cache's answer names the job whose outputs it reused).
 */
export function cachedAttempts(history: readonly HistoryEvent[], execution: string): AttemptRow[] {
  const rows: AttemptRow[] = [];
  for (const event of history) {
    if (event.type !== 'TaskSucceeded') continue;
    const details = event.taskSucceededEventDetails as { output?: unknown } | undefined;
    const output = parsed(details?.output);
    if (!output || typeof output !== 'object' || Array.isArray(output)) continue;
    const job = output as { JobId?: unknown; JobName?: unknown; Tags?: Record<string, string> };
    const tags = job.Tags;
    if (!tags || tags[TAG.cached] !== 'true' || typeof job.JobId !== 'string') continue;
    if (tags[TAG.execution] !== undefined && tags[TAG.execution] !== execution) continue;
    rows.push({
      execution,
      sample: tags[TAG.sample] ?? '',
      step: tags[TAG.step] ?? String(job.JobName ?? ''),
      jobId: job.JobId,
      jobName: typeof job.JobName === 'string' ? job.JobName : '',
      attempt: 1,
      jobAttempt: 1,
      status: 'SUCCEEDED',
      cached: true,
      createdAt: event.timestamp,
    });
  }
  return rows;
}

/** History details hold values inside Strand, JSON text as the API gives them. */
function parsed(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return undefined;
  }
}

/** `fields` without its undefined members, so rows carry only what is known. */
function defined<T extends Record<string, unknown>>(fields: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(fields))
    if (v !== undefined) out[k as keyof T] = v as T[keyof T];
  return out;
}
