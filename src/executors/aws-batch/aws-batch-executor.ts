/**
 * The AWS Batch executor: each attempt the local Batch hands it is one AWS Batch job (its retry
 * strategy one attempt: retries are the local Batch's and the state machine's), of a job
 * definition registered once per image (job-definition.ts): a stage-in container, the tool in
 * the step's image, and the essential stage-out container, so that the tool's image needs
 * nothing but its tool (docs/adr/0002-staging.md). Jobs stage out where they run: it has no
 * `workDir` (nor do inputs get fetched to this machine), and a job has ended when AWS says so.
 *
 * An attempt is never submitted twice. Its job name is derived from the attempt, and a ledger
 * file per attempt (`<ledger>/<job name>.json`) is created before SubmitJob and given the AWS
 * job id after it: a second submit of the attempt returns the recorded job; one that finds the
 * ledger without an id (the process died between SubmitJob and its answer being recorded) looks
 * the job up with ListJobs by its name before submitting again.
 *
 * Polls are one DescribeJobs call (100 job ids a call, AWS's limit) for every outstanding job at
 * most every `pollMs`: the local Batch polls each attempt in turn, and every poll in between
 * answers from the last call. The SDK retries throttled and failed calls with backoff; a poll
 * that still fails waits longer each time (up to a minute) and the attempts stay RUNNING.
 *
 * Logs are the containers' CloudWatch Logs streams (GetLogEvents, all pages), which DescribeJobs
 * names: the stage-out copies the tool's log there once the tool has ended.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BatchClient,
  DescribeJobDefinitionsCommand,
  DescribeJobQueuesCommand,
  DescribeJobsCommand,
  ListJobsCommand,
  RegisterJobDefinitionCommand,
  SubmitJobCommand,
  TerminateJobCommand,
  type JobDetail,
} from '@aws-sdk/client-batch';
import { CloudWatchLogsClient, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import type { AttemptState, Executor, JobAttemptSpec, JobHandle } from '../executor.js';
import { AwsBatchError, describeAwsError, type CallSite } from './errors.js';
import {
  TASK_ROOT,
  jobDefinitionFor,
  jobNameFor,
  submitRequest,
  type JobDefinitionSettings,
} from './job-definition.js';
import { attemptStateOf, logStreamsOf } from './status.js';

/** The staging of one attempt (src/functions/stage-plan.ts makes it). */
export interface StagedAttempt {
  /** The plan for `strand stage in|out` (JSON-serialisable). */
  plan: unknown;
  command: string[];
  environment: Record<string, string>;
  /** Tags for the AWS job (a pipeline job's: pipeline, step, sample, execution). */
  tags?: Record<string, string>;
}

/** Makes the staging of an attempt whose files are under `root` where it runs. */
export type StagePlanner = (spec: JobAttemptSpec, root: string) => Promise<StagedAttempt>;

export interface AwsBatchExecutorOptions {
  /** The job queue jobs go to (name or ARN). */
  jobQueue: string;
  /** The image of the stage containers: Node and Strand. */
  stageImage: string;
  jobRoleArn?: string;
  executionRoleArn?: string;
  /** CloudWatch Logs group of the jobs' containers (default /aws/batch/job, Batch's). */
  logGroup?: string;
  /** Default: the SDK's (AWS_REGION, AWS_DEFAULT_REGION, the profile's). */
  region?: string;
  /**
   * An endpoint other than AWS's for both APIs (default: the SDK's, which reads
   * AWS_ENDPOINT_URL_BATCH, AWS_ENDPOINT_URL_CLOUDWATCH_LOGS and AWS_ENDPOINT_URL).
   */
  endpoint?: string;
  /** Where each attempt's submission is recorded (see above). */
  ledgerDir: string;
  /** The staging of each attempt. */
  planner: StagePlanner;
  /** Milliseconds between DescribeJobs calls (default 10 s). */
  pollMs?: number;
  /** Attempts of each API call, the SDK's retries included (default AWS_MAX_ATTEMPTS, else 5). */
  maxAttempts?: number;
  /** The vCPUs of jobs Strand keeps on the queue at once (default 256). */
  maxvCpus?: number;
  now?: () => number;
}

interface Ledger {
  jobName: string;
  /** The AWS job id, once SubmitJob answered. */
  awsJobId?: string;
}

/** What a poll knows of one AWS job. */
interface Known {
  state: AttemptState;
  at: number;
  /** DescribeJobs calls in a row that did not list it. */
  missing: number;
}

const DEFAULT_LOG_GROUP = '/aws/batch/job';
/** Where a poll that keeps failing stops backing off. */
const MAX_BACKOFF_MS = 60_000;
/** AWS Batch's quota on a SubmitJob request ("maximum job payload size"). */
const MAX_SUBMIT_BYTES = 30 * 1024;
/** DescribeJobs answers that leave a job out before it counts as gone. */
const MISSING_LIMIT = 3;

/** Writes a file whole: a reader sees the old content or the new. */
function writeWhole(path: string, text: string): void {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, text);
  renameSync(temp, path);
}

function readLedger(path: string): Ledger | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Ledger;
  } catch {
    return undefined;
  }
}

/**
 * The size the local Batch gives the compute environment of AWS Batch jobs: AWS's queue places
 * them, so this only bounds how many Strand keeps on it at once (memory is no bound of its own).
 */
export function awsBatchCapacity(maxvCpus = 256): { vcpus: number; memoryMiB: number } {
  return { vcpus: maxvCpus, memoryMiB: maxvCpus * 8192 };
}

/** The prefix of an attempt's log reference (JobHandle.logPath): aws-batch://REGION/JOB_ID. */
export const LOG_SCHEME = 'aws-batch://';

/** The AWS job and region a log reference names, when it is one of this executor's. */
export function parseLogRef(logPath: string): { region: string; awsJobId: string } | undefined {
  const m = /^aws-batch:\/\/([^/]+)\/(.+)$/.exec(logPath);
  return m ? { region: m[1], awsJobId: m[2] } : undefined;
}

export class AwsBatchExecutor implements Executor {
  readonly name = 'aws-batch';
  readonly isolated = true;
  private readonly batch: BatchClient;
  private readonly logsClient: CloudWatchLogsClient;
  private readonly pollMs: number;
  private readonly now: () => number;
  /** Submits in flight in this process, by job name. */
  private readonly submitting = new Map<string, Promise<JobHandle>>();
  /** Job definitions by name: their ARN, registered (or found) once per process. */
  private readonly definitions = new Map<string, Promise<string>>();
  /** AWS job ids not known to have ended. */
  private readonly outstanding = new Set<string>();
  private readonly known = new Map<string, Known>();
  private refreshing: Promise<void> | undefined;
  private failures = 0;
  private retryAt = 0;
  /** Why the last DescribeJobs failed, while polls back off. */
  lastPollError: AwsBatchError | undefined;

  constructor(private readonly options: AwsBatchExecutorOptions) {
    const maxAttempts = options.maxAttempts ?? (Number(process.env.AWS_MAX_ATTEMPTS) || 5);
    const common = {
      ...(options.region ? { region: options.region } : {}),
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      maxAttempts,
      // An endpoint that does not answer fails the call rather than hang the run.
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 60_000 },
    };
    this.batch = new BatchClient(common);
    this.logsClient = new CloudWatchLogsClient(common);
    this.pollMs = options.pollMs ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  capacity(): { vcpus: number; memoryMiB: number } {
    return awsBatchCapacity(this.options.maxvCpus);
  }

  close(): void {
    this.batch.destroy();
    this.logsClient.destroy();
  }

  /** The region the clients use (given, or the SDK's from the environment and profile). */
  async region(): Promise<string> {
    if (this.options.region) return this.options.region;
    try {
      return await this.batch.config.region();
    } catch {
      return '(none: set AWS_REGION or executors.aws-batch.region)';
    }
  }

  /** The endpoint a service is called at, for messages. */
  private async site(service: CallSite['service'], operation: string): Promise<CallSite> {
    const region = await this.region();
    const own =
      service === 'AWS Batch'
        ? process.env.AWS_ENDPOINT_URL_BATCH
        : process.env.AWS_ENDPOINT_URL_CLOUDWATCH_LOGS;
    const endpoint =
      this.options.endpoint ??
      own ??
      process.env.AWS_ENDPOINT_URL ??
      `https://${service === 'AWS Batch' ? 'batch' : 'logs'}.${region}.amazonaws.com`;
    return { service, endpoint, region, operation };
  }

  /** Calls AWS Batch; failures as AwsBatchError naming the endpoint, region and operation. */
  private async call<T>(operation: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (err) {
      throw describeAwsError(err, await this.site('AWS Batch', operation));
    }
  }

  /**
   * Checks the settings before any job is submitted: the endpoint answers, the credentials are
   * taken, the job queue exists and takes jobs. Throws AwsBatchError (its `configuration` true
   * for problems of the settings).
   */
  async check(): Promise<void> {
    const queue = this.options.jobQueue;
    const out = await this.call('DescribeJobQueues', () =>
      this.batch.send(new DescribeJobQueuesCommand({ jobQueues: [queue] })),
    );
    const found = out.jobQueues?.find((q) => q.jobQueueName === queue || q.jobQueueArn === queue);
    const site = await this.site('AWS Batch', 'DescribeJobQueues');
    if (!found)
      throw new AwsBatchError(
        'NOT_FOUND',
        `job queue "${queue}" does not exist in ${site.service} at ${site.endpoint} (region ${site.region}): create it (strand deploy aws makes one) or set executors.aws-batch.jobQueue`,
      );
    if (found.state !== 'ENABLED' || (found.status && found.status !== 'VALID'))
      throw new AwsBatchError(
        'NOT_FOUND',
        `job queue "${queue}" in region ${site.region} is ${found.state}/${found.status ?? '?'}${found.statusReason ? ` (${found.statusReason})` : ''}: it takes no jobs`,
      );
  }

  private handleOf(spec: { jobId: string; attempt: number }, awsJobId: string, region: string) {
    return {
      jobId: spec.jobId,
      attempt: spec.attempt,
      ref: awsJobId,
      logPath: `${LOG_SCHEME}${region}/${awsJobId}`,
    };
  }

  submit(spec: JobAttemptSpec): Promise<JobHandle> {
    const name = jobNameFor(spec.jobId, spec.attempt);
    let pending = this.submitting.get(name);
    if (!pending) {
      pending = this.start(spec, name).finally(() => this.submitting.delete(name));
      this.submitting.set(name, pending);
    }
    return pending;
  }

  private async start(spec: JobAttemptSpec, jobName: string): Promise<JobHandle> {
    const region = await this.region();
    mkdirSync(this.options.ledgerDir, { recursive: true });
    const ledgerPath = join(this.options.ledgerDir, `${jobName}.json`);
    const recorded = readLedger(ledgerPath);
    const adopt = (awsJobId: string): JobHandle => {
      writeWhole(ledgerPath, JSON.stringify({ jobName, awsJobId } satisfies Ledger));
      this.outstanding.add(awsJobId);
      return this.handleOf(spec, awsJobId, region);
    };
    if (recorded?.awsJobId) {
      this.outstanding.add(recorded.awsJobId);
      return this.handleOf(spec, recorded.awsJobId, region);
    }
    if (recorded) {
      // Submitted before, its answer never recorded: the job may exist.
      const found = await this.findByName(jobName);
      if (found) return adopt(found);
    } else {
      try {
        writeFileSync(ledgerPath, JSON.stringify({ jobName } satisfies Ledger), { flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const found = readLedger(ledgerPath)?.awsJobId ?? (await this.findByName(jobName));
        if (found) return adopt(found);
      }
    }
    if (!spec.image)
      throw new Error(
        `job ${spec.jobId} has no image (the aws-batch executor runs each job in its step's image)`,
      );
    const staged = await this.options.planner(spec, TASK_ROOT);
    const jobDefinition = await this.definition(spec.image, region);
    const request = submitRequest({
      jobName,
      jobQueue: this.options.jobQueue,
      jobDefinition,
      command: staged.command,
      environment: staged.environment,
      vcpus: spec.vcpus,
      memoryMiB: spec.memoryMiB,
      ...(spec.timeoutSeconds === undefined ? {} : { timeoutSeconds: spec.timeoutSeconds }),
      plan: JSON.stringify(staged.plan),
      tags: { ...staged.tags, 'strand:job-id': spec.jobId, 'strand:attempt': String(spec.attempt) },
    });
    const size = Buffer.byteLength(JSON.stringify(request));
    if (size > MAX_SUBMIT_BYTES)
      throw new Error(
        `job ${spec.jobId}: its SubmitJob request would be ${Math.ceil(size / 1024)} KiB, and AWS Batch takes ${MAX_SUBMIT_BYTES / 1024} KiB at most (its command, environment and staging plan: fewer or shorter variables)`,
      );
    const out = await this.call('SubmitJob', () => this.batch.send(new SubmitJobCommand(request)));
    if (!out.jobId) throw new Error(`SubmitJob of ${jobName} answered no jobId`);
    return adopt(out.jobId);
  }

  /** The AWS job of this name on the queue (the newest, if several), by ListJobs. */
  private async findByName(jobName: string): Promise<string | undefined> {
    let nextToken: string | undefined;
    let newest: { id: string; createdAt: number } | undefined;
    do {
      const page = await this.call('ListJobs', () =>
        this.batch.send(
          new ListJobsCommand({
            jobQueue: this.options.jobQueue,
            filters: [{ name: 'JOB_NAME', values: [jobName] }],
            ...(nextToken ? { nextToken } : {}),
          }),
        ),
      );
      // The filter matches names case-insensitively: only this very name is this attempt.
      for (const j of page.jobSummaryList ?? [])
        if (j.jobName === jobName && j.jobId && (!newest || (j.createdAt ?? 0) > newest.createdAt))
          newest = { id: j.jobId, createdAt: j.createdAt ?? 0 };
      nextToken = page.nextToken;
    } while (nextToken);
    return newest?.id;
  }

  /** The ARN of the job definition for `image`: an ACTIVE one of its name, else registered. */
  private definition(image: string, region: string): Promise<string> {
    const settings: JobDefinitionSettings = {
      stageImage: this.options.stageImage,
      region,
      ...(this.options.jobRoleArn ? { jobRoleArn: this.options.jobRoleArn } : {}),
      ...(this.options.executionRoleArn ? { executionRoleArn: this.options.executionRoleArn } : {}),
      ...(this.options.logGroup ? { logGroup: this.options.logGroup } : {}),
    };
    const def = jobDefinitionFor(image, settings);
    let known = this.definitions.get(def.jobDefinitionName);
    if (!known) {
      known = (async () => {
        const found = await this.call('DescribeJobDefinitions', () =>
          this.batch.send(
            new DescribeJobDefinitionsCommand({
              jobDefinitionName: def.jobDefinitionName,
              status: 'ACTIVE',
            }),
          ),
        );
        const latest = (found.jobDefinitions ?? [])
          .filter((d) => d.jobDefinitionArn)
          .sort((a, b) => (b.revision ?? 0) - (a.revision ?? 0))[0];
        if (latest?.jobDefinitionArn) return latest.jobDefinitionArn;
        const made = await this.call('RegisterJobDefinition', () =>
          this.batch.send(new RegisterJobDefinitionCommand(def)),
        );
        if (!made.jobDefinitionArn)
          throw new Error(`RegisterJobDefinition of ${def.jobDefinitionName} answered no ARN`);
        return made.jobDefinitionArn;
      })();
      // A failure is not remembered: the next job tries again.
      known.catch(() => this.definitions.delete(def.jobDefinitionName));
      this.definitions.set(def.jobDefinitionName, known);
    }
    return known;
  }

  async poll(handle: JobHandle): Promise<AttemptState> {
    const id = handle.ref;
    const known = this.known.get(id);
    if (known && (known.state.state !== 'RUNNING' || this.now() - known.at < this.pollMs))
      return known.state;
    this.outstanding.add(id);
    await this.refresh();
    return this.known.get(id)?.state ?? { state: 'RUNNING' };
  }

  reattach(handle: JobHandle): Promise<AttemptState> {
    this.known.delete(handle.ref);
    return this.poll(handle);
  }

  /**
   * One DescribeJobs pass over every outstanding job (in calls of 100), shared by the polls
   * that wait for it; none while backing off after failures.
   */
  private refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    if (this.now() < this.retryAt) return Promise.resolve();
    this.refreshing = this.describeAll()
      .then(
        () => {
          this.failures = 0;
          this.lastPollError = undefined;
        },
        (err: unknown) => {
          this.failures++;
          this.lastPollError = err instanceof AwsBatchError ? err : undefined;
          this.retryAt =
            this.now() + Math.min(MAX_BACKOFF_MS, this.pollMs * 2 ** Math.min(this.failures, 16));
        },
      )
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  private async describeAll(): Promise<void> {
    const ids = [...this.outstanding];
    for (let i = 0; i < ids.length; i += 100) {
      const chunk = ids.slice(i, i + 100);
      const out = await this.call('DescribeJobs', () =>
        this.batch.send(new DescribeJobsCommand({ jobs: chunk })),
      );
      const at = this.now();
      const seen = new Set<string>();
      for (const job of out.jobs ?? []) {
        if (!job.jobId) continue;
        seen.add(job.jobId);
        const state = attemptStateOf(job);
        this.known.set(job.jobId, { state, at, missing: 0 });
        if (state.state !== 'RUNNING') this.outstanding.delete(job.jobId);
      }
      for (const id of chunk) {
        if (seen.has(id)) continue;
        const missing = (this.known.get(id)?.missing ?? 0) + 1;
        const region = await this.region();
        const state: AttemptState =
          missing >= MISSING_LIMIT
            ? {
                state: 'FAILED',
                reason: `AWS Batch job ${id} is not known in region ${region} (DescribeJobs left it out ${missing} times): it expired or was submitted elsewhere`,
              }
            : { state: 'RUNNING' };
        this.known.set(id, { state, at, missing });
        if (state.state !== 'RUNNING') this.outstanding.delete(id);
      }
    }
  }

  async kill(handle: JobHandle, reason: string): Promise<void> {
    await this.call('TerminateJob', () =>
      this.batch.send(new TerminateJobCommand({ jobId: handle.ref, reason })),
    );
    // The next poll asks again rather than answer from before the terminate.
    this.known.delete(handle.ref);
    this.outstanding.add(handle.ref);
  }

  /** The AWS job's detail as DescribeJobs gives it now. */
  async describe(awsJobId: string): Promise<JobDetail | undefined> {
    const out = await this.call('DescribeJobs', () =>
      this.batch.send(new DescribeJobsCommand({ jobs: [awsJobId] })),
    );
    return out.jobs?.find((j) => j.jobId === awsJobId);
  }

  async logs(handle: JobHandle): Promise<string | undefined> {
    const job = await this.describe(handle.ref);
    if (!job) return undefined;
    const streams = logStreamsOf(job);
    if (streams.length === 0) return undefined;
    const group = this.options.logGroup ?? DEFAULT_LOG_GROUP;
    const lines: string[] = [];
    for (const { stream } of streams) {
      let token: string | undefined;
      for (;;) {
        let page;
        try {
          page = await this.logsClient.send(
            new GetLogEventsCommand({
              logGroupName: group,
              logStreamName: stream,
              startFromHead: true,
              ...(token ? { nextToken: token } : {}),
            }),
          );
        } catch (err) {
          // A stream named before its container wrote anything does not exist yet.
          if ((err as { name?: string }).name === 'ResourceNotFoundException') break;
          throw describeAwsError(err, await this.site('CloudWatch Logs', 'GetLogEvents'));
        }
        for (const e of page.events ?? []) if (e.message !== undefined) lines.push(e.message);
        // The last page answers the token it was given.
        if (!page.nextForwardToken || page.nextForwardToken === token) break;
        token = page.nextForwardToken;
      }
    }
    return lines.map((l) => (l.endsWith('\n') ? l : `${l}\n`)).join('');
  }
}
