/**
 * What `strand report` says of a pipeline execution, computed from its attempts (attempts.ts):
 * the run's totals and each step's resource use across its samples. Pure: the command reads the
 * home, this only counts.
 */
import type { AttemptRow } from './attempts.js';

/** The execution as the engine describes it, and what its input says. */
export interface ExecutionInfo {
  execution: string;
  pipeline: string;
  /** RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED. */
  status: string;
  /** Epoch ms. */
  startedAt: number;
  stoppedAt?: number;
  /** The samples the run was given (ids, in the sheet's order). */
  samples: string[];
  error?: string;
  cause?: string;
}

/** The smallest, middle and largest of some values (the median of an even count: the mean of the two middle ones). */
export interface Spread {
  min: number;
  median: number;
  max: number;
  /** How many values there were. */
  n: number;
}

/** Per-step use of resources, over the attempts of the step that ran (not the cached ones). */
export interface StepUsage {
  step: string;
  /** Jobs of the step (one per sample, or one for a step over all samples). */
  jobs: number;
  /** Of them: served from the cache, and failed in the end. */
  cached: number;
  failed: number;
  /** Attempts that ran (more than the jobs that ran when some were retried). */
  attempts: number;
  /** Seconds from each attempt's start to its stop. */
  seconds?: Spread;
  cpuSeconds?: Spread;
  peakMemoryMiB?: Spread;
  /** What the attempts had. */
  vcpus?: Spread;
  memoryMiB?: Spread;
  /** The largest share of its memory an attempt used (peak / memory it had), 0–1 and above. */
  peakShare?: number;
  /** CPU time over vCPUs × duration: how busy the vCPUs it had were (median of the attempts). */
  cpuUse?: number;
}

export interface ReportSummary {
  /** Jobs of the run: one per sample × step that was submitted or answered by the cache (byJob). */
  jobs: number;
  /** Jobs that ran (at least one attempt), served from the cache, failed in the end. */
  ran: number;
  cached: number;
  failed: number;
  /** Attempts that ran, and how many of them were retries (attempt 2 and later, see byJob). */
  attempts: number;
  retries: number;
  /** Jobs not ended yet. */
  running: number;
  waiting: number;
  cpuSeconds: number;
  /** The largest peak memory of any attempt (MiB), when one was measured. */
  peakMemoryMiB?: number;
  /** Epoch ms: the run's start, its end (or `now` while it runs), and the wall time between. */
  startedAt: number;
  stoppedAt: number;
  durationMs: number;
}

/** The spread of `values` (undefined when there are none). */
export function spread(values: readonly number[]): Spread | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { min: sorted[0], median, max: sorted[sorted.length - 1], n: sorted.length };
}

/**
 * The attempts of each sample × step (what the report calls a job: a step's `retry:` submits a
 * new Batch job for each retry, which is another attempt of the same job here), each in attempt
 * order, in the order of their first submission.
 */
export function byJob(attempts: readonly AttemptRow[]): AttemptRow[][] {
  const jobs = new Map<string, AttemptRow[]>();
  for (const a of attempts) {
    const key = `${a.sample}\u0000${a.step}`;
    const list = jobs.get(key);
    if (list) list.push(a);
    else jobs.set(key, [a]);
  }
  const groups = [...jobs.values()].map((g) => g.sort((x, y) => x.attempt - y.attempt));
  return groups.sort((x, y) => x[0].createdAt - y[0].createdAt);
}

/** Whether an attempt ran: it started (a cached job and one that never started did not). */
export function ran(a: AttemptRow): boolean {
  return !a.cached && a.startedAt !== undefined;
}

/** The seconds from an attempt's start to its stop (to `now` while it runs). */
export function attemptSeconds(a: AttemptRow, now: number): number | undefined {
  if (a.startedAt === undefined) return undefined;
  return Math.max(0, ((a.stoppedAt ?? now) - a.startedAt) / 1000);
}

/** The run's totals. `now` stands for the end of what has not ended. */
export function summarise(
  info: ExecutionInfo,
  attempts: readonly AttemptRow[],
  now: number,
): ReportSummary {
  const jobs = byJob(attempts);
  const last = jobs.map((g) => g[g.length - 1]);
  const started = attempts.filter(ran);
  const peaks = started.flatMap((a) => (a.peakMemoryMiB === undefined ? [] : [a.peakMemoryMiB]));
  const stoppedAt = info.stoppedAt ?? now;
  return {
    jobs: jobs.length,
    ran: jobs.filter((g) => g.some(ran)).length,
    cached: last.filter((a) => a.cached).length,
    failed: last.filter((a) => a.status === 'FAILED').length,
    attempts: started.length,
    retries: started.filter((a) => a.attempt > 1).length,
    running: last.filter((a) => a.status === 'RUNNING').length,
    waiting: last.filter((a) => a.status === 'WAITING').length,
    cpuSeconds: started.reduce((sum, a) => sum + (a.cpuSeconds ?? 0), 0),
    ...(peaks.length === 0 ? {} : { peakMemoryMiB: Math.max(...peaks) }),
    startedAt: info.startedAt,
    stoppedAt,
    durationMs: Math.max(0, stoppedAt - info.startedAt),
  };
}

/** The steps in the order their first job was created, each with its use of resources. */
export function stepUsage(attempts: readonly AttemptRow[], now: number): StepUsage[] {
  const steps = new Map<string, AttemptRow[][]>();
  for (const job of byJob(attempts)) {
    const list = steps.get(job[0].step);
    if (list) list.push(job);
    else steps.set(job[0].step, [job]);
  }
  return [...steps].map(([step, jobs]) => {
    const runs = jobs.flat().filter(ran);
    const values = (pick: (a: AttemptRow) => number | undefined) =>
      spread(runs.flatMap((a) => pick(a) ?? []));
    const shares = runs.flatMap((a) =>
      a.peakMemoryMiB !== undefined && a.memoryMiB ? [a.peakMemoryMiB / a.memoryMiB] : [],
    );
    const use = spread(
      runs.flatMap((a) => {
        const seconds = a.stoppedAt === undefined ? undefined : attemptSeconds(a, now);
        return a.cpuSeconds !== undefined && a.vcpus && seconds
          ? [a.cpuSeconds / (a.vcpus * seconds)]
          : [];
      }),
    );
    const usage: StepUsage = {
      step,
      jobs: jobs.length,
      cached: jobs.filter((g) => g[g.length - 1].cached).length,
      failed: jobs.filter((g) => g[g.length - 1].status === 'FAILED').length,
      attempts: runs.length,
    };
    const fields = {
      seconds: values((a) => (a.stoppedAt === undefined ? undefined : attemptSeconds(a, now))),
      cpuSeconds: values((a) => a.cpuSeconds),
      peakMemoryMiB: values((a) => a.peakMemoryMiB),
      vcpus: values((a) => a.vcpus),
      memoryMiB: values((a) => a.memoryMiB),
    };
    for (const [k, v] of Object.entries(fields)) if (v) usage[k as keyof typeof fields] = v;
    if (shares.length > 0) usage.peakShare = Math.max(...shares);
    if (use) usage.cpuUse = use.median;
    return usage;
  });
}
