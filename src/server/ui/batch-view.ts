/**
 * The dashboard's view of the home's Batch: each compute environment's size and what is in use,
 * the queues with their jobs by status, the running jobs, and every waiting job with why it
 * waits (src/batch/waiting.ts). Read from the database, so it shows the same beside another
 * engine; when this server's engine schedules the home, its Batch says why jobs wait (it also
 * knows since when each has waited).
 */
import type Database from 'better-sqlite3';
import type { LocalBatch } from '../../batch/local-batch.js';
import { resourceName } from '../../batch/resources.js';
import type { ComputeEnvironment, JobDetail, JobQueue, JobStatus } from '../../batch/types.js';
import { readWaitingReasons, type JobRunInfo } from '../../batch/waiting.js';
import { jobSummary, toWaitingReason } from './read.js';
import type { BatchResponse, JobCounts, WaitingReason } from './types.js';

/** Waiting jobs listed at most. */
export const MAX_WAITING = 500;

const WAITING: JobStatus[] = ['SUBMITTED', 'PENDING', 'RUNNABLE'];

/** Why each waiting job waits: the live Batch's answer, or the database's. */
export function waitingReasonsOf(
  db: Database.Database,
  batch: LocalBatch | undefined,
  now: number,
): Map<string, WaitingReason> {
  const reasons = batch ? batch.waitingReasons() : readWaitingReasons(db, now);
  return new Map([...reasons].map(([id, r]) => [id, toWaitingReason(r)]));
}

/** GET /ui/api/batch. */
export function batchOverview(
  db: Database.Database,
  batch: LocalBatch | undefined,
  now: number,
): BatchResponse {
  const has =
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'batch_jobs'").get() !==
    undefined;
  if (!has)
    return { computeEnvironments: [], queues: [], running: [], waiting: [], truncated: false };
  const environments = (
    db.prepare('SELECT detail FROM batch_compute_environments ORDER BY name').all() as {
      detail: string;
    }[]
  ).map((r) => JSON.parse(r.detail) as ComputeEnvironment);
  const queues = (
    db.prepare('SELECT detail FROM batch_job_queues ORDER BY name').all() as { detail: string }[]
  ).map((r) => JSON.parse(r.detail) as JobQueue);
  const live = (
    db
      .prepare(
        `SELECT detail, run FROM batch_jobs WHERE status NOT IN ('SUCCEEDED', 'FAILED')
         ORDER BY created_at, job_id`,
      )
      .all() as { detail: string; run: string | null }[]
  ).map((r) => ({
    detail: JSON.parse(r.detail) as JobDetail,
    run: r.run ? (JSON.parse(r.run) as JobRunInfo) : undefined,
  }));
  const used = new Map<string, { vcpus: number; memoryMiB: number; running: number }>();
  for (const { detail, run } of live) {
    if (!run?.computeEnvironment || !['STARTING', 'RUNNING'].includes(detail.status)) continue;
    const u = used.get(run.computeEnvironment) ?? { vcpus: 0, memoryMiB: 0, running: 0 };
    u.vcpus += run.vcpus;
    u.memoryMiB += run.memoryMiB;
    u.running++;
    used.set(run.computeEnvironment, u);
  }
  const counts = new Map<string, JobCounts>();
  for (const r of db
    .prepare(
      `SELECT queue, status, COUNT(*) AS n FROM batch_jobs WHERE instr(job_id, ':') = 0 GROUP BY 1, 2`,
    )
    .all() as { queue: string; status: JobStatus; n: number }[]) {
    const c = counts.get(r.queue) ?? {};
    c[r.status] = r.n;
    counts.set(r.queue, c);
  }
  const reasons = waitingReasonsOf(db, batch, now);
  const priority = new Map(queues.map((q) => [q.jobQueueArn, q.priority]));
  const waitingJobs = live
    .filter((j) => WAITING.includes(j.detail.status) && !j.detail.arrayProperties?.size)
    .sort(
      (x, y) =>
        Number(y.detail.status === 'RUNNABLE') - Number(x.detail.status === 'RUNNABLE') ||
        (priority.get(y.detail.jobQueue) ?? 0) - (priority.get(x.detail.jobQueue) ?? 0) ||
        x.detail.createdAt - y.detail.createdAt,
    );
  return {
    computeEnvironments: environments.map((ce) => {
      const u = used.get(ce.computeEnvironmentName);
      return {
        name: ce.computeEnvironmentName,
        state: ce.state,
        executor: ce.executor ?? 'local',
        vcpus: { total: ce.maxvCpus, inUse: u?.vcpus ?? 0 },
        memoryMiB: { total: ce.memoryMiB, inUse: u?.memoryMiB ?? 0 },
        running: u?.running ?? 0,
      };
    }),
    queues: queues.map((q) => ({
      name: q.jobQueueName,
      state: q.state,
      priority: q.priority,
      computeEnvironments: q.computeEnvironmentOrder.map((o) =>
        resourceName(o.computeEnvironment, 'compute-environment'),
      ),
      jobs: counts.get(q.jobQueueName) ?? {},
    })),
    running: live
      .filter((j) => ['STARTING', 'RUNNING'].includes(j.detail.status))
      .map((j) => ({
        ...jobSummary(j.detail),
        ...(j.run?.computeEnvironment ? { computeEnvironment: j.run.computeEnvironment } : {}),
      })),
    waiting: waitingJobs.slice(0, MAX_WAITING).map((j) => {
      const fallback: WaitingReason = {
        kind: 'starting',
        message: 'being placed',
        ahead: 0,
        needs: { vcpus: 0, memoryMiB: 0 },
      };
      return { ...jobSummary(j.detail), waiting: reasons.get(j.detail.jobId) ?? fallback };
    }),
    truncated: waitingJobs.length > MAX_WAITING,
  };
}
