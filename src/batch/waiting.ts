/**
 * Why a job that has not started waits — what AWS Batch leaves as RUNNABLE without a word. The
 * reasoning follows the scheduler's own pass (LocalBatch.place): jobs in queue priority order,
 * then oldest first; each placed on the first ENABLED compute environment of its queue with
 * room for both its vCPUs and its memory; a job passed over for `starvationMs` reserves its
 * queue. Pure: it reads the jobs, queues and compute environments it is given, so it answers
 * the same from a live Batch or from the database beside another engine.
 */
import type Database from 'better-sqlite3';
import { elasticRange } from './elastic.js';
import { resourceName } from './resources.js';
import type { ComputeEnvironment, JobDetail, JobQueue, JobStatus } from './types.js';

/** A resource short on one compute environment for one waiting job. */
export interface Shortage {
  computeEnvironment: string;
  resource: 'vcpus' | 'memoryMiB';
  needed: number;
  free: number;
  total: number;
  /** needed − free. */
  short: number;
}

export type WaitingKind =
  'dependency' | 'resources' | 'queue' | 'never-fits' | 'disabled' | 'sizing' | 'starting';

/** Why one job waits (see the dashboard's WaitingReason for each kind). */
export interface WaitingReason {
  kind: WaitingKind;
  /** One sentence naming the values. */
  message: string;
  /** Jobs ahead of it in its queue: placed before it on each pass. */
  ahead: number;
  waitingOn?: { jobId: string; jobName: string; status: JobStatus }[];
  shortages?: Shortage[];
  needs: { vcpus: number; memoryMiB: number };
  waitingSince?: number;
}

/** Where a job runs, or that it waits to be placed (LocalBatch's RunInfo, as far as needed). */
export interface JobRunInfo {
  computeEnvironment: string;
  vcpus: number;
  memoryMiB: number;
  waitingSince?: number;
}

export interface WaitingInput {
  /** Every job not ended, with its run when it has one. */
  jobs: { detail: JobDetail; run?: JobRunInfo }[];
  queues: JobQueue[];
  environments: ComputeEnvironment[];
  /** A job by id (a dependency that has ended is not among `jobs`). */
  lookup: (jobId: string) => JobDetail | undefined;
  now: number;
  /** As the Batch was opened with (default 60 s). */
  starvationMs?: number;
}

const PLACED: JobStatus[] = ['STARTING', 'RUNNING'];

function requirement(job: JobDetail, type: string, fallback: number): number {
  const r = job.container.resourceRequirements.find((x) => x.type === type);
  const n = r === undefined ? NaN : Number(r.value);
  return Number.isFinite(n) ? n : fallback;
}

/** What a job needs at least: its fixed size, or the low end of its range. */
function needsOf(job: JobDetail): { vcpus: number; memoryMiB: number } {
  const range = elasticRange(job.tags);
  const vcpus = requirement(job, 'VCPU', 1);
  const memoryMiB = requirement(job, 'MEMORY', 2048);
  if (!range) return { vcpus, memoryMiB };
  return { vcpus: range.vcpus[0], memoryMiB: range.memory?.[0] ?? memoryMiB };
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
const mib = (n: number) => (n >= 1024 && n % 1024 === 0 ? `${n / 1024} GiB` : `${n} MiB`);
const amount = (resource: Shortage['resource'], n: number) =>
  resource === 'vcpus' ? `${+n.toFixed(2)} vCPU` : mib(n);

function shortageText(s: Shortage): string {
  return `compute environment "${s.computeEnvironment}" has ${amount(s.resource, s.free)} of ${amount(s.resource, s.total)} free (${amount(s.resource, s.short)} short)`;
}

/**
 * Why each waiting job (SUBMITTED, PENDING, RUNNABLE; and STARTING ones, being handed to their
 * executor) has not started, by job id. Array parents, which never run themselves, are left out.
 */
export function waitingReasons(input: WaitingInput): Map<string, WaitingReason> {
  const starvationMs = input.starvationMs ?? 60_000;
  const queues = new Map(input.queues.map((q) => [q.jobQueueArn, q]));
  const environments = new Map(input.environments.map((ce) => [ce.computeEnvironmentName, ce]));
  const out = new Map<string, WaitingReason>();
  const live = new Map(input.jobs.map((j) => [j.detail.jobId, j.detail]));
  const find = (id: string) => live.get(id) ?? input.lookup(id);

  // What runs where now.
  const used = new Map<string, { vcpus: number; memoryMiB: number }>();
  for (const { detail, run } of input.jobs) {
    if (!run || !PLACED.includes(detail.status) || !run.computeEnvironment) continue;
    const u = used.get(run.computeEnvironment) ?? { vcpus: 0, memoryMiB: 0 };
    u.vcpus += run.vcpus;
    u.memoryMiB += run.memoryMiB;
    used.set(run.computeEnvironment, u);
    if (detail.status === 'STARTING')
      out.set(detail.jobId, {
        kind: 'starting',
        message: `placed on compute environment "${run.computeEnvironment}" (${amount('vcpus', run.vcpus)}, ${mib(run.memoryMiB)}); being handed to its executor`,
        ahead: 0,
        needs: { vcpus: run.vcpus, memoryMiB: run.memoryMiB },
      });
  }

  // Waiting on dependencies.
  for (const { detail } of input.jobs) {
    if (detail.arrayProperties?.size) continue;
    if (detail.status !== 'SUBMITTED' && detail.status !== 'PENDING') continue;
    const waitingOn: { jobId: string; jobName: string; status: JobStatus }[] = [];
    for (const d of detail.dependsOn) {
      if (!d.jobId) continue;
      const dep = find(d.jobId);
      if (dep?.status === 'SUCCEEDED') continue;
      // One that is not there fails the job on the next pass, as a failed one does.
      waitingOn.push({
        jobId: d.jobId,
        jobName: dep?.jobName ?? '(unknown)',
        status: dep?.status ?? 'FAILED',
      });
    }
    const names = waitingOn.map((d) => `${d.jobName} (${d.jobId}, ${d.status})`);
    out.set(detail.jobId, {
      kind: 'dependency',
      message:
        waitingOn.length === 0
          ? 'its dependencies have succeeded; it becomes RUNNABLE on the next pass'
          : `waits on ${plural(waitingOn.length, 'job')} it depends on: ${names.slice(0, 3).join(', ')}${names.length > 3 ? ', …' : ''}`,
      ahead: 0,
      waitingOn,
      needs: needsOf(detail),
    });
  }

  // RUNNABLE: the scheduler's pass, played out without starting anything.
  const runnable = input.jobs
    .filter((j) => j.detail.status === 'RUNNABLE' && !j.detail.arrayProperties?.size)
    .sort(
      (x, y) =>
        (queues.get(y.detail.jobQueue)?.priority ?? 0) -
          (queues.get(x.detail.jobQueue)?.priority ?? 0) ||
        x.detail.createdAt - y.detail.createdAt ||
        (x.detail.arrayProperties?.index ?? 0) - (y.detail.arrayProperties?.index ?? 0),
    );
  const reservedBy = new Map<string, JobDetail>();
  const aheadIn = new Map<string, number>();
  for (const { detail, run } of runnable) {
    const needs = needsOf(detail);
    const queue = queues.get(detail.jobQueue);
    const queueName = resourceName(detail.jobQueue, 'job-queue');
    const ahead = aheadIn.get(detail.jobQueue) ?? 0;
    aheadIn.set(detail.jobQueue, ahead + 1);
    const since = run?.waitingSince;
    const base = { ahead, needs, ...(since === undefined ? {} : { waitingSince: since }) };
    const aheadText =
      ahead > 0 ? `; ${plural(ahead, 'job')} ahead of it in queue "${queueName}"` : '';
    const wants = `needs ${amount('vcpus', needs.vcpus)} and ${mib(needs.memoryMiB)}`;
    if (!queue) {
      out.set(detail.jobId, {
        ...base,
        kind: 'disabled',
        message: `its queue "${queueName}" no longer exists`,
      });
      continue;
    }
    const starving = since !== undefined && input.now - since >= starvationMs;
    const holder = reservedBy.get(queue.jobQueueArn);
    if (holder) {
      out.set(detail.jobId, {
        ...base,
        kind: 'queue',
        message: `queue "${queueName}" is held for ${holder.jobName} (${holder.jobId}), passed over for too long: nothing behind it starts until it does${aheadText}`,
      });
      continue;
    }
    const order = queue.computeEnvironmentOrder
      .map((o) => environments.get(resourceName(o.computeEnvironment, 'compute-environment')))
      .filter((ce): ce is ComputeEnvironment => ce !== undefined);
    const enabled = order.filter((ce) => ce.state === 'ENABLED');
    if (enabled.length === 0) {
      out.set(detail.jobId, {
        ...base,
        kind: 'disabled',
        message: `no compute environment of queue "${queueName}" is ENABLED (${order.map((ce) => `"${ce.computeEnvironmentName}" ${ce.state}`).join(', ') || 'it has none'})`,
      });
      if (starving) reservedBy.set(queue.jobQueueArn, detail);
      continue;
    }
    const fitsEver = enabled.filter(
      (ce) => needs.vcpus <= ce.maxvCpus && needs.memoryMiB <= ce.memoryMiB,
    );
    if (fitsEver.length === 0) {
      const largest = enabled.map(
        (ce) =>
          `"${ce.computeEnvironmentName}" has ${amount('vcpus', ce.maxvCpus)} and ${mib(ce.memoryMiB)}`,
      );
      out.set(detail.jobId, {
        ...base,
        kind: 'never-fits',
        message: `${wants}; no compute environment of queue "${queueName}" is that large (${largest.join('; ')})`,
        shortages: enabled.flatMap((ce) => shortagesOn(ce, needs, { vcpus: 0, memoryMiB: 0 })),
      });
      continue;
    }
    let placedOn: ComputeEnvironment | undefined;
    for (const ce of enabled) {
      const u = used.get(ce.computeEnvironmentName) ?? { vcpus: 0, memoryMiB: 0 };
      if (u.vcpus + needs.vcpus <= ce.maxvCpus && u.memoryMiB + needs.memoryMiB <= ce.memoryMiB) {
        placedOn = ce;
        used.set(ce.computeEnvironmentName, {
          vcpus: u.vcpus + needs.vcpus,
          memoryMiB: u.memoryMiB + needs.memoryMiB,
        });
        break;
      }
    }
    if (placedOn) {
      // There is room: a job with a range waits for a larger size (its sizing says why), any
      // other starts on the scheduler's next pass.
      const sizing = elasticRange(detail.tags) ? detail.sizing : undefined;
      out.set(detail.jobId, {
        ...base,
        kind: sizing ? 'sizing' : 'starting',
        message: sizing
          ? `waits to start with ${amount('vcpus', sizing.vcpus)}: ${sizing.reason}${aheadText}`
          : `${wants}; compute environment "${placedOn.computeEnvironmentName}" has room: it starts on the scheduler's next pass`,
      });
      continue;
    }
    const shortages = enabled.flatMap((ce) =>
      shortagesOn(ce, needs, used.get(ce.computeEnvironmentName) ?? { vcpus: 0, memoryMiB: 0 }),
    );
    out.set(detail.jobId, {
      ...base,
      kind: 'resources',
      message: `${wants}; ${shortages.map(shortageText).join('; ')}${aheadText}`,
      shortages,
    });
    if (starving) reservedBy.set(queue.jobQueueArn, detail);
  }
  return out;
}

/** The resources `ce` lacks for `needs` with `u` in use (none when it fits). */
function shortagesOn(
  ce: ComputeEnvironment,
  needs: { vcpus: number; memoryMiB: number },
  u: { vcpus: number; memoryMiB: number },
): Shortage[] {
  const out: Shortage[] = [];
  const free = {
    vcpus: Math.max(0, ce.maxvCpus - u.vcpus),
    memoryMiB: Math.max(0, ce.memoryMiB - u.memoryMiB),
  };
  const totals = { vcpus: ce.maxvCpus, memoryMiB: ce.memoryMiB };
  for (const resource of ['vcpus', 'memoryMiB'] as const)
    if (needs[resource] > free[resource])
      out.push({
        computeEnvironment: ce.computeEnvironmentName,
        resource,
        needed: needs[resource],
        free: free[resource],
        total: totals[resource],
        short: needs[resource] - free[resource],
      });
  return out;
}

/**
 * The waiting reasons of a home's jobs as its database records them, for a process beside the
 * engine that owns the home (the time each job began to wait is known only to that engine).
 */
export function readWaitingReasons(db: Database.Database, now: number): Map<string, WaitingReason> {
  let rows: { detail: string; run: string | null }[];
  try {
    rows = db
      .prepare(`SELECT detail, run FROM batch_jobs WHERE status NOT IN ('SUCCEEDED', 'FAILED')`)
      .all() as { detail: string; run: string | null }[];
  } catch {
    return new Map(); // no Batch tables yet
  }
  const parse = <T>(text: string) => JSON.parse(text) as T;
  const one = db.prepare('SELECT detail FROM batch_jobs WHERE job_id = ?');
  return waitingReasons({
    jobs: rows.map((r) => ({
      detail: parse<JobDetail>(r.detail),
      ...(r.run ? { run: parse<JobRunInfo>(r.run) } : {}),
    })),
    queues: (db.prepare('SELECT detail FROM batch_job_queues').all() as { detail: string }[]).map(
      (r) => parse<JobQueue>(r.detail),
    ),
    environments: (
      db.prepare('SELECT detail FROM batch_compute_environments').all() as { detail: string }[]
    ).map((r) => parse<ComputeEnvironment>(r.detail)),
    lookup: (id) => {
      const r = one.get(id) as { detail: string } | undefined;
      return r ? parse<JobDetail>(r.detail) : undefined;
    },
    now,
  });
}
