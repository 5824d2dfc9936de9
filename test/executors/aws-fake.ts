/**
 * A fake AWS on loopback for the AWS Batch executor's tests: the Batch REST-JSON API (SubmitJob,
 * DescribeJobs, TerminateJob, ListJobs, RegisterJobDefinition, DescribeJobDefinitions,
 * DescribeJobQueues) and CloudWatch Logs' JSON 1.1 GetLogEvents, answering with the shapes of
 * AWS's API reference. It checks every request's SigV4 signature against the one secret key it
 * knows (InvalidSignatureException otherwise), records every request, throttles on demand
 * (429 TooManyRequestsException) and can refuse every credential (403 ExpiredTokenException).
 *
 * Jobs move SUBMITTED → RUNNABLE → STARTING → RUNNING → SUCCEEDED/FAILED, one status for each
 * DescribeJobs that asks about them (no timers); a test scripts how each one ends (`outcome`),
 * can hold one RUNNING until it releases it, or give a `runner` that runs the job's containers
 * on this machine.
 */
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const ACCESS_KEY = 'AKIDSTRANDTEST';
export const SECRET_KEY = 'strand-test-secret';
export const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';

export interface RecordedRequest {
  service: 'batch' | 'logs';
  operation: string;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
  /** What the fake answered. */
  status: number;
}

/** How a job ends, as a test scripts it. */
export interface Outcome {
  exitCode?: number;
  /** Batch's statusReason. */
  statusReason?: string;
  /** The tool container's reason (e.g. OutOfMemoryError). */
  reason?: string;
  /** Lines each container logged, by container name. */
  logs?: Record<string, string[]>;
}

export interface FakeJob {
  jobId: string;
  jobName: string;
  jobQueue: string;
  jobDefinition: string;
  createdAt: number;
  status: string;
  statusReason?: string;
  startedAt?: number;
  stoppedAt?: number;
  isTerminated?: boolean;
  request: Record<string, unknown>;
  containers: {
    name: string;
    exitCode?: number;
    reason?: string;
    logStreamName?: string;
  }[];
  /** Held RUNNING until released. */
  held?: boolean;
  running?: Promise<Outcome>;
  outcome?: Outcome;
  /** Stops what a runner started for it (a TerminateJob). */
  stop?: () => void;
}

interface Definition {
  jobDefinitionName: string;
  jobDefinitionArn: string;
  revision: number;
  status: string;
  type: string;
  body: Record<string, unknown>;
}

const ORDER = ['SUBMITTED', 'RUNNABLE', 'STARTING', 'RUNNING'];

function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

function hmac(key: string | Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text).digest();
}

/** Whether a request carries a valid SigV4 signature of SECRET_KEY; why not otherwise. */
export function checkSignature(req: IncomingMessage, body: Buffer): string | undefined {
  const auth = String(req.headers.authorization ?? '');
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (!m) return `no SigV4 Authorization header (${auth || 'none'})`;
  const [, key, date, region, service, signed, signature] = m;
  if (key !== ACCESS_KEY) return `unknown access key ${key}`;
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  const url = new URL(req.url ?? '/', 'http://fake');
  const query = [...url.searchParams]
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .sort()
    .join('&');
  const names = signed.split(';');
  const headers = names
    .map((n) => {
      const v = req.headers[n];
      return `${n}:${(Array.isArray(v) ? v.join(',') : String(v ?? '')).trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const canonical = [req.method, url.pathname, query, headers, signed, sha256(body)].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  let k = hmac(`AWS4${SECRET_KEY}`, date);
  for (const part of [region, service, 'aws4_request']) k = hmac(k, part);
  const expected = createHmac('sha256', k).update(toSign).digest('hex');
  return expected === signature ? undefined : 'the signature does not match';
}

export class FakeAws {
  readonly requests: RecordedRequest[] = [];
  readonly jobs = new Map<string, FakeJob>();
  readonly definitions: Definition[] = [];
  readonly queues = [{ name: 'strand', state: 'ENABLED', status: 'VALID' }];
  /** Log events by stream name. */
  readonly streams = new Map<string, { timestamp: number; message: string }[]>();
  /** How each job ends (default: exit 0). */
  outcome: (job: FakeJob) => Outcome = () => ({ exitCode: 0 });
  /** Runs a job's containers when it reaches RUNNING instead of scripting it. */
  runner?: (job: FakeJob) => Promise<Outcome>;
  /** Jobs submitted from now on stay RUNNING until released. */
  holdNew = false;
  /** Every request is refused as with an expired session token. */
  expired = false;
  /** The next N calls of an operation are throttled. */
  private readonly throttles = new Map<string, number>();
  /** GetLogEvents page size (small, so that pages are exercised). */
  logPageSize = 2;
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  throttle(operation: string, times: number): void {
    this.throttles.set(operation, times);
  }

  calls(operation: string): RecordedRequest[] {
    return this.requests.filter((r) => r.operation === operation);
  }

  release(jobId: string): void {
    const job = this.jobs.get(jobId);
    if (job) job.held = false;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const target = String(req.headers['x-amz-target'] ?? '');
    const service: 'batch' | 'logs' = target.startsWith('Logs_') ? 'logs' : 'batch';
    const operation =
      service === 'logs'
        ? target.split('.')[1]
        : ({
            '/v1/submitjob': 'SubmitJob',
            '/v1/describejobs': 'DescribeJobs',
            '/v1/terminatejob': 'TerminateJob',
            '/v1/listjobs': 'ListJobs',
            '/v1/registerjobdefinition': 'RegisterJobDefinition',
            '/v1/describejobdefinitions': 'DescribeJobDefinitions',
            '/v1/describejobqueues': 'DescribeJobQueues',
          }[req.url ?? ''] ?? `unknown ${req.method} ${req.url}`);
    let body: Record<string, unknown> = {};
    try {
      body = raw.length ? (JSON.parse(raw.toString('utf8')) as Record<string, unknown>) : {};
    } catch {
      // recorded as empty; answered below
    }
    const record: RecordedRequest = { service, operation, headers: req.headers, body, status: 0 };
    this.requests.push(record);
    const answer = (status: number, payload: unknown, errorType?: string): void => {
      record.status = status;
      const headers: Record<string, string> = {
        'content-type': service === 'logs' ? 'application/x-amz-json-1.1' : 'application/json',
        'x-amzn-requestid': randomUUID(),
      };
      if (errorType) headers['x-amzn-errortype'] = errorType;
      res.writeHead(status, headers);
      res.end(JSON.stringify(payload));
    };
    const fail = (status: number, type: string, message: string): void =>
      answer(
        status,
        service === 'logs' ? { __type: type, message } : { message },
        service === 'logs' ? undefined : type,
      );
    if (this.expired)
      return fail(
        403,
        'ExpiredTokenException',
        'The security token included in the request is expired',
      );
    const bad = checkSignature(req, raw);
    if (bad) return fail(403, 'InvalidSignatureException', bad);
    const left = this.throttles.get(operation) ?? 0;
    if (left > 0) {
      this.throttles.set(operation, left - 1);
      return fail(429, 'TooManyRequestsException', 'Too Many Requests');
    }
    try {
      const out = await this.operate(operation, body);
      answer(200, out);
    } catch (err) {
      const e = err as { type?: string; message: string; status?: number };
      fail(e.status ?? 400, e.type ?? 'ClientException', e.message);
    }
  }

  private arn(kind: string, rest: string): string {
    return `arn:aws:batch:${REGION}:${ACCOUNT}:${kind}/${rest}`;
  }

  private async operate(op: string, b: Record<string, unknown>): Promise<unknown> {
    switch (op) {
      case 'DescribeJobQueues': {
        const wanted = (b.jobQueues as string[] | undefined) ?? [];
        return {
          jobQueues: this.queues
            .filter((q) => wanted.length === 0 || wanted.includes(q.name))
            .map((q) => ({
              jobQueueName: q.name,
              jobQueueArn: this.arn('job-queue', q.name),
              state: q.state,
              status: q.status,
              statusReason: 'JobQueue Healthy',
              priority: 1,
              computeEnvironmentOrder: [
                { order: 1, computeEnvironment: this.arn('compute-environment', 'spot') },
              ],
              jobQueueType: 'ECS',
            })),
        };
      }
      case 'RegisterJobDefinition': {
        const name = String(b.jobDefinitionName);
        const revision = this.definitions.filter((d) => d.jobDefinitionName === name).length + 1;
        const d: Definition = {
          jobDefinitionName: name,
          jobDefinitionArn: this.arn('job-definition', `${name}:${revision}`),
          revision,
          status: 'ACTIVE',
          type: String(b.type),
          body: b,
        };
        this.definitions.push(d);
        return { jobDefinitionName: name, jobDefinitionArn: d.jobDefinitionArn, revision };
      }
      case 'DescribeJobDefinitions': {
        const name = b.jobDefinitionName as string | undefined;
        const status = b.status as string | undefined;
        return {
          jobDefinitions: this.definitions
            .filter(
              (d) => (!name || d.jobDefinitionName === name) && (!status || d.status === status),
            )
            .map((d) => ({
              ...d.body,
              jobDefinitionName: d.jobDefinitionName,
              jobDefinitionArn: d.jobDefinitionArn,
              revision: d.revision,
              status: d.status,
              containerOrchestrationType: 'ECS',
            })),
        };
      }
      case 'SubmitJob': {
        const queue = String(b.jobQueue);
        if (!this.queues.some((q) => q.name === queue || this.arn('job-queue', q.name) === queue))
          throw { message: `JobQueue ${queue} not found.` };
        const def = this.definitions.find((d) => d.jobDefinitionArn === b.jobDefinition);
        if (!def) throw { message: `Job definition ${String(b.jobDefinition)} not found.` };
        const jobId = randomUUID();
        const containers = (
          ((def.body.ecsProperties as { taskProperties: { containers: { name: string }[] }[] })
            ?.taskProperties?.[0]?.containers ?? []) as { name: string }[]
        ).map((c) => ({ name: c.name }));
        const job: FakeJob = {
          jobId,
          jobName: String(b.jobName),
          jobQueue: this.arn('job-queue', queue.replace(/^.*job-queue\//, '')),
          jobDefinition: def.jobDefinitionArn,
          createdAt: Date.now(),
          status: 'SUBMITTED',
          request: b,
          containers,
          held: this.holdNew,
        };
        this.jobs.set(jobId, job);
        return { jobArn: this.arn('job', jobId), jobName: job.jobName, jobId };
      }
      case 'DescribeJobs': {
        const ids = (b.jobs as string[] | undefined) ?? [];
        if (ids.length > 100)
          throw { message: `jobs can have at most 100 items, not ${ids.length}` };
        const out = [];
        for (const id of ids) {
          const job = this.jobs.get(id);
          if (!job) continue;
          await this.advance(job);
          out.push(this.detail(job));
        }
        return { jobs: out };
      }
      case 'TerminateJob': {
        const job = this.jobs.get(String(b.jobId));
        if (!job) throw { message: `Job ${String(b.jobId)} not found` };
        if (job.status !== 'SUCCEEDED' && job.status !== 'FAILED') {
          const wasRunning = job.status === 'RUNNING';
          job.status = 'FAILED';
          job.statusReason = String(b.reason);
          job.isTerminated = true;
          job.stoppedAt = Date.now();
          if (wasRunning) for (const c of job.containers) c.exitCode ??= 137;
          job.stop?.();
        }
        return {};
      }
      case 'ListJobs': {
        const filters = (b.filters as { name: string; values: string[] }[] | undefined) ?? [];
        const byName = filters.find((f) => f.name === 'JOB_NAME')?.values[0];
        const list = [...this.jobs.values()]
          .filter((j) => !byName || j.jobName.toLowerCase() === byName.toLowerCase())
          .filter((j) => byName || j.status === (b.jobStatus ?? 'RUNNING'))
          .map((j) => ({
            jobArn: this.arn('job', j.jobId),
            jobId: j.jobId,
            jobName: j.jobName,
            createdAt: j.createdAt,
            status: j.status,
            ...(j.statusReason ? { statusReason: j.statusReason } : {}),
            jobDefinition: j.jobDefinition,
          }));
        return { jobSummaryList: list };
      }
      case 'GetLogEvents': {
        const stream = String(b.logStreamName);
        const events = this.streams.get(stream);
        if (!events)
          throw {
            type: 'ResourceNotFoundException',
            message: 'The specified log stream does not exist.',
          };
        const token = b.nextToken as string | undefined;
        const from = token ? Number(token.slice(2)) : 0;
        const page = events.slice(from, from + this.logPageSize);
        const next = page.length === 0 ? (token ?? 'f/0') : `f/${from + page.length}`;
        return {
          events: page.map((e) => ({ ...e, ingestionTime: e.timestamp })),
          nextForwardToken: next,
          nextBackwardToken: `b/${from}`,
        };
      }
      default:
        throw { status: 404, type: 'UnknownOperationException', message: op };
    }
  }

  /** One status further for a job asked about (RUNNING → ended once its outcome is known). */
  private async advance(job: FakeJob): Promise<void> {
    const i = ORDER.indexOf(job.status);
    if (i < 0) return;
    if (job.status !== 'RUNNING') {
      job.status = ORDER[i + 1];
      if (job.status === 'RUNNING') {
        job.startedAt = Date.now();
        const task = job.jobId.slice(0, 8);
        for (const c of job.containers) c.logStreamName = `strand/${c.name}/${task}`;
        if (this.runner) job.running = this.runner(job).then((o) => (job.outcome = o));
      }
      return;
    }
    if (job.held) return;
    if (this.runner && !job.outcome) return;
    const o = job.outcome ?? this.outcome(job);
    job.stoppedAt = Date.now();
    const code = o.exitCode ?? 0;
    job.status = code === 0 && !o.statusReason ? 'SUCCEEDED' : 'FAILED';
    job.statusReason =
      o.statusReason ??
      (code === 0 ? 'Essential container in task exited' : 'Essential container in task exited');
    for (const c of job.containers) {
      c.exitCode = c.name === 'stage-in' ? 0 : code;
      if (c.name === 'tool' && o.reason) c.reason = o.reason;
      const lines = o.logs?.[c.name] ?? [];
      const stream = c.logStreamName!;
      const events = this.streams.get(stream) ?? [];
      for (const line of lines) events.push({ timestamp: Date.now(), message: line });
      this.streams.set(stream, events);
    }
  }

  /** A container of a job as it runs: its definition's, with the SubmitJob's overrides. */
  container(
    job: FakeJob,
    name: string,
  ): Record<string, unknown> & {
    command?: string[];
    environment?: { name: string; value: string }[];
  } {
    const def = this.definitions.find((d) => d.jobDefinitionArn === job.jobDefinition);
    const defined =
      (
        def?.body.ecsProperties as { taskProperties: { containers: { name: string }[] }[] }
      )?.taskProperties?.[0]?.containers.find((c) => c.name === name) ?? {};
    const override =
      (
        job.request.ecsPropertiesOverride as
          { taskProperties: { containers: { name: string }[] }[] } | undefined
      )?.taskProperties?.[0]?.containers.find((c) => c.name === name) ?? {};
    return { ...defined, ...override };
  }

  /** A JobDetail as DescribeJobs gives one of a multi-container (ecsProperties) job. */
  private detail(job: FakeJob): Record<string, unknown> {
    const ended = job.status === 'SUCCEEDED' || job.status === 'FAILED';
    const taskArn = `arn:aws:ecs:${REGION}:${ACCOUNT}:task/strand/${job.jobId.slice(0, 8)}`;
    const containers = job.containers.map((c) => ({
      ...this.container(job, c.name),
      name: c.name,
      ...(c.exitCode === undefined ? {} : { exitCode: c.exitCode }),
      ...(c.reason ? { reason: c.reason } : {}),
      ...(c.logStreamName ? { logStreamName: c.logStreamName } : {}),
      networkInterfaces: [],
    }));
    return {
      jobArn: this.arn('job', job.jobId),
      jobName: job.jobName,
      jobId: job.jobId,
      jobQueue: job.jobQueue,
      status: job.status,
      ...(job.statusReason ? { statusReason: job.statusReason } : {}),
      attempts:
        ended && job.startedAt
          ? [
              {
                startedAt: job.startedAt,
                stoppedAt: job.stoppedAt,
                statusReason: job.statusReason,
                taskProperties: [
                  {
                    taskArn,
                    containers: containers.map((c) => ({
                      name: c.name,
                      exitCode: c.exitCode,
                      logStreamName: c.logStreamName,
                    })),
                  },
                ],
              },
            ]
          : [],
      createdAt: job.createdAt,
      ...(job.startedAt ? { startedAt: job.startedAt } : {}),
      ...(job.stoppedAt ? { stoppedAt: job.stoppedAt } : {}),
      retryStrategy: job.request.retryStrategy,
      dependsOn: [],
      jobDefinition: job.jobDefinition,
      parameters: {},
      tags: job.request.tags ?? {},
      propagateTags: true,
      platformCapabilities: ['EC2'],
      ...(job.request.timeout ? { timeout: job.request.timeout } : {}),
      ecsProperties: { taskProperties: [{ taskArn, containers }] },
      isCancelled: false,
      isTerminated: job.isTerminated ?? false,
    };
  }
}
