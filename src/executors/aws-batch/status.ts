/** How an AWS Batch job (DescribeJobs' JobDetail) reads as the state of a Strand attempt. */
import type { JobDetail } from '@aws-sdk/client-batch';
import { OOM_REASON, TIMEOUT_REASON, type AttemptState } from '../executor.js';
import { CONTAINER } from './job-definition.js';

/** AWS Batch's statusReason of a job whose essential container ended it (its exit code tells). */
const ESSENTIAL_EXITED = 'Essential container in task exited';

interface ContainerInfo {
  name?: string;
  exitCode?: number;
  reason?: string;
  logStreamName?: string;
}

/** The job's containers: a multi-container job's by name, or its one container. */
export function containersOf(job: JobDetail): ContainerInfo[] {
  const task = job.ecsProperties?.taskProperties?.[0];
  if (task?.containers?.length) return task.containers;
  return job.container ? [{ ...job.container, name: CONTAINER.tool }] : [];
}

/** The CloudWatch Logs streams of the job's containers, in the order they run. */
export function logStreamsOf(job: JobDetail): { container: string; stream: string }[] {
  const order: string[] = [CONTAINER.stageIn, CONTAINER.tool, CONTAINER.stageOut];
  return containersOf(job)
    .filter((c) => c.logStreamName)
    .sort((a, b) => order.indexOf(a.name ?? '') - order.indexOf(b.name ?? ''))
    .map((c) => ({ container: c.name ?? CONTAINER.tool, stream: c.logStreamName! }));
}

/**
 * The attempt's state: SUBMITTED to RUNNING are RUNNING (the job exists and has not ended);
 * SUCCEEDED and FAILED carry the essential container's exit code (the stage-out's, which is the
 * tool's) and the reason a Strand backend gives: AWS's timeout and memory reasons as the other
 * backends give them, a terminate's own reason, else the first container's reason (an image
 * that could not be pulled) or Batch's statusReason.
 */
export function attemptStateOf(job: JobDetail): AttemptState {
  if (job.status !== 'SUCCEEDED' && job.status !== 'FAILED') return { state: 'RUNNING' };
  const containers = containersOf(job);
  const essential =
    containers.find((c) => c.name === CONTAINER.stageOut) ??
    containers.find((c) => c.name === CONTAINER.tool);
  const exitCode = essential?.exitCode;
  const times = {
    ...(job.startedAt === undefined ? {} : { startedAt: job.startedAt }),
    ...(job.stoppedAt === undefined ? {} : { stoppedAt: job.stoppedAt }),
  };
  if (job.status === 'SUCCEEDED') return { state: 'SUCCEEDED', exitCode: exitCode ?? 0, ...times };
  const status = job.statusReason;
  const containerReason = containers.find((c) => c.reason)?.reason;
  const reason = status?.startsWith(TIMEOUT_REASON)
    ? TIMEOUT_REASON
    : containers.some((c) => c.reason?.startsWith('OutOfMemoryError'))
      ? OOM_REASON
      : job.isTerminated || job.isCancelled
        ? status
        : (containerReason ?? (status === ESSENTIAL_EXITED ? undefined : status));
  return {
    state: 'FAILED',
    ...(exitCode === undefined ? {} : { exitCode }),
    ...(reason === undefined ? {} : { reason }),
    ...times,
  };
}
