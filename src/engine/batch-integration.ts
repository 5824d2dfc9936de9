/**
 * `arn:aws:states:::batch:submitJob` and `…:submitJob.sync` answered by the local Batch. The
 * job id is derived from the execution and the task, so a restarted engine that invokes the
 * same task again finds the job it submitted instead of submitting another.
 */
import type { Json, JsonObject } from '../asl/types.js';
import type { LocalBatch } from '../batch/local-batch.js';
import { BatchInputError } from '../batch/resources.js';
import type { JobDetail, SubmitJobRequest } from '../batch/types.js';
import {
  taskDigest,
  type TaskCallbacks,
  type TaskIntegration,
  type TaskInvocation,
} from './integrations.js';

/** The resources this integration answers: SubmitJob, and SubmitJob that waits for the job. */
export const BATCH_RESOURCE = /^arn:aws:states:::batch:submitJob(\.sync)?$/;

/** camelCase → PascalCase keys, as Step Functions shows Batch objects; map values keep their keys. */
export function toPascal(value: unknown, keepKeys = false): Json {
  if (Array.isArray(value)) return value.map((v) => toPascal(v));
  if (value === null || typeof value !== 'object') return (value ?? null) as Json;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    const key = keepKeys ? k : k.charAt(0).toUpperCase() + k.slice(1);
    out[key] = toPascal(v, !keepKeys && (k === 'parameters' || k === 'tags'));
  }
  return out;
}

/** PascalCase → camelCase keys, for the SubmitJob request (Parameters and Tags keep theirs). */
function toCamel(value: unknown, keepKeys = false): unknown {
  if (Array.isArray(value)) return value.map((v) => toCamel(v));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const key = keepKeys ? k : k.charAt(0).toLowerCase() + k.slice(1);
    out[key] = toCamel(v, !keepKeys && (k === 'Parameters' || k === 'Tags'));
  }
  return out;
}

/** A stable job id (UUID-shaped) for one task of one execution. */
export function jobIdFor(executionArn: string, taskId: string): string {
  const h = taskDigest(executionArn, taskId);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * Answers a submission from a cache instead of running it: returns the job as DescribeJobs
 * would show it (PascalCase), or undefined to run the job. A local convenience: the compiled
 * state machine knows nothing of it.
 */
export type JobCache = (request: SubmitJobRequest) => Promise<JsonObject | undefined>;

export class BatchIntegration implements TaskIntegration {
  readonly name = 'batch';
  constructor(
    private readonly batch: LocalBatch,
    private readonly cache?: JobCache,
  ) {}

  supports(resource: string): boolean {
    return BATCH_RESOURCE.test(resource);
  }

  async invoke(task: TaskInvocation, callbacks: TaskCallbacks): Promise<void> {
    const sync = task.resource.endsWith('.sync');
    const jobId = jobIdFor(task.executionArn, task.taskId);
    const request = toCamel(task.input) as SubmitJobRequest;
    // A job submitted before a restart is followed, never answered from the cache.
    if (sync && this.cache && !this.batch.getJob(jobId)) {
      let cached: JsonObject | undefined;
      try {
        cached = await this.cache(request);
      } catch (err) {
        if (!(err instanceof BatchInputError)) throw err;
        callbacks.failed('Batch.ClientException', err.message);
        return;
      }
      if (cached) {
        callbacks.succeeded(cached);
        return;
      }
    }
    let submitted: { jobId: string; jobName: string; jobArn: string };
    try {
      submitted = this.batch.submitJob(request, { jobId });
    } catch (err) {
      if (err instanceof BatchInputError) {
        callbacks.failed('Batch.ClientException', err.message);
        return;
      }
      throw err;
    }
    if (!sync) {
      callbacks.succeeded({
        JobArn: submitted.jobArn,
        JobId: submitted.jobId,
        JobName: submitted.jobName,
      });
      return;
    }
    this.batch.onceDone(jobId, (job: JobDetail) => {
      const shaped = toPascal(job);
      if (job.status === 'SUCCEEDED') callbacks.succeeded(shaped);
      // A job no compute environment can ever fit failed at submit: retrying cannot help, so it
      // is not a States.TaskFailed a Retry would match (Catch States.ALL still does).
      else if (job.attempts.length === 0 && job.statusReason?.startsWith('needs '))
        callbacks.failed('Strand.JobNeverFits', JSON.stringify(shaped));
      else callbacks.failed('States.TaskFailed', JSON.stringify(shaped));
    });
  }

  /**
   * Terminates the task's job and waits until its end is recorded (FAILED with the reason), so
   * an execution that ends by a timeout or a stop leaves no job shown RUNNING; at most the
   * executor's grace period and a little more (`waitMs`).
   */
  async cancel(task: { executionArn: string; taskId: string }, waitMs = 35_000): Promise<void> {
    const jobId = jobIdFor(task.executionArn, task.taskId);
    const job = this.batch.getJob(jobId);
    if (!job || job.status === 'SUCCEEDED' || job.status === 'FAILED') return;
    const ended = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, waitMs);
      timer.unref();
      this.batch.onceDone(jobId, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    await this.batch.terminateJob(jobId, 'Execution stopped by Step Functions');
    await ended;
  }
}
