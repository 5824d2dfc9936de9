/**
 * A finished job looked up in AWS Batch (DescribeJobs), as Strand's functions record it: its
 * attempts, the exit code and reason of the container that decides the job's status, its
 * CloudWatch Logs stream, its image and size. For the functions on Lambda, where there is no
 * local Batch, and for a job's own staging, which reads its tags (the execution, the store).
 *
 * Jobs of either shape are read: a single-container job (what `strand deploy aws` defines: the
 * tool with Strand's stage program in its container) and a multi-container one (what the AWS
 * Batch executor defines: stage-in, tool, stage-out).
 */
import {
  BatchClient,
  DescribeJobsCommand,
  type JobDetail as AwsJobDetail,
} from '@aws-sdk/client-batch';
import type { JobInfo, JobLookup } from '../../functions/pipeline-functions.js';
import { CONTAINER } from './job-definition.js';
import { attemptStateOf, containersOf } from './status.js';

export interface AwsJobLookupOptions {
  /** Default: the SDK's (AWS_REGION…). */
  region?: string;
  /** An endpoint other than AWS's (default: the SDK's, which reads AWS_ENDPOINT_URL_BATCH…). */
  endpoint?: string;
  /**
   * Attempts of each DescribeJobs call, its retries included: throttled calls
   * (TooManyRequestsException) are retried with backoff (default AWS_MAX_ATTEMPTS, else 8).
   */
  maxAttempts?: number;
}

/** A Batch client for one job's lookups (DescribeJobs is the only call). */
export function batchClient(options: AwsJobLookupOptions = {}): BatchClient {
  return new BatchClient({
    ...(options.region ? { region: options.region } : {}),
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    maxAttempts: options.maxAttempts ?? (Number(process.env.AWS_MAX_ATTEMPTS) || 8),
    // Many functions finish at once at the end of a Map: throttling backs off as it goes.
    retryMode: 'adaptive',
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 60_000 },
  });
}

/** The job as DescribeJobs has it, or undefined when AWS Batch does not know it. */
export async function describeJob(
  client: BatchClient,
  jobId: string,
): Promise<AwsJobDetail | undefined> {
  const out = await client.send(new DescribeJobsCommand({ jobs: [jobId] }));
  return out.jobs?.find((j) => j.jobId === jobId);
}

const resource = (
  requirements: { type?: string; value?: string }[] | undefined,
  type: string,
): number | undefined => {
  const value = Number(requirements?.find((r) => r.type === type)?.value);
  return Number.isFinite(value) && value > 0 ? value : undefined;
};

/** What Strand's functions record of an AWS Batch job (see JobInfo). */
export function jobInfoOf(job: AwsJobDetail): JobInfo {
  const containers = containersOf(job);
  const tool = containers.find((c) => c.name === CONTAINER.tool) as
    | (ReturnType<typeof containersOf>[number] & {
        image?: string;
        resourceRequirements?: { type?: string; value?: string }[];
      })
    | undefined;
  const state = attemptStateOf(job);
  const end = state.state === 'RUNNING' ? undefined : state;
  // The stage-out copies the tool's log to its own output: its stream is the one to read.
  const log =
    containers.find((c) => c.name === CONTAINER.stageOut)?.logStreamName ?? tool?.logStreamName;
  const attempts = job.attempts?.length ?? 0;
  const requirements = tool?.resourceRequirements ?? job.container?.resourceRequirements;
  const vcpus = resource(requirements, 'VCPU');
  const memoryMiB = resource(requirements, 'MEMORY');
  return {
    jobId: job.jobId ?? '',
    attempts,
    ...(end || job.startedAt !== undefined
      ? {
          last: {
            ...(end?.exitCode === undefined ? {} : { exitCode: end.exitCode }),
            ...(end?.reason === undefined ? {} : { reason: end.reason }),
            ...(log === undefined ? {} : { logStreamName: log }),
            ...(job.startedAt === undefined ? {} : { startedAt: job.startedAt }),
            ...(job.stoppedAt === undefined ? {} : { stoppedAt: job.stoppedAt }),
            ...(vcpus === undefined ? {} : { vcpus }),
            ...(memoryMiB === undefined ? {} : { memoryMiB }),
          },
        }
      : {}),
    ...(job.statusReason === undefined ? {} : { statusReason: job.statusReason }),
    executor: 'aws-batch',
    image: tool?.image ?? job.container?.image ?? null,
  };
}

/** Strand's functions' job lookup on AWS: DescribeJobs, throttled calls retried. */
export function awsJobLookup(options: AwsJobLookupOptions = {}): JobLookup {
  let client: BatchClient | undefined;
  return async (jobId) => {
    client ??= batchClient(options);
    const job = await describeJob(client, jobId);
    return job ? jobInfoOf(job) : undefined;
  };
}
