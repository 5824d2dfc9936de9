/**
 * The AWS Batch executor against a fake AWS on loopback (aws-fake.ts): the requests the SDK
 * really sends (SigV4-signed, DescribeJobs batched), the status mapping, throttling, restarts
 * and crashes between SubmitJob and its answer being recorded, CloudWatch logs, and the faults
 * a wrong endpoint or an expired credential give.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AwsBatchExecutor,
  type AwsBatchExecutorOptions,
  type StagePlanner,
} from '../../src/executors/aws-batch/aws-batch-executor.js';
import { AwsBatchError } from '../../src/executors/aws-batch/errors.js';
import type { JobAttemptSpec, JobHandle } from '../../src/executors/executor.js';
import { ACCESS_KEY, FakeAws, REGION, SECRET_KEY } from './aws-fake.js';
import { waitUntil } from '../helpers.js';

let fake: FakeAws;
const made: AwsBatchExecutor[] = [];

/** A planner that stages nothing: the tool gets the attempt's own command and environment. */
const plainPlanner: StagePlanner = (spec, root) =>
  Promise.resolve({
    plan: { version: 1, root, inputs: [], outputs: {}, outputDirs: [], environment: {} },
    command: spec.command,
    environment: spec.environment,
  });

function executor(options: Partial<AwsBatchExecutorOptions> = {}): AwsBatchExecutor {
  const ex = new AwsBatchExecutor({
    jobQueue: 'strand',
    stageImage: 'strand/stage:test',
    ledgerDir: mkdtempSync(join(tmpdir(), 'strand-aws-ledger-')),
    planner: plainPlanner,
    pollMs: 0,
    maxAttempts: 3,
    ...options,
  });
  made.push(ex);
  return ex;
}

let counter = 0;
function spec(extra: Partial<JobAttemptSpec> = {}): JobAttemptSpec {
  return {
    jobId: `job-${process.pid}-${counter++}`,
    attempt: 1,
    command: ['fastp', '-i', 'reads.fq'],
    environment: { SAMPLE: 'S1', AWS_BATCH_JOB_ID: 'local-id' },
    vcpus: 2,
    memoryMiB: 3000,
    image: 'strand/fastp:0.23',
    ...extra,
  };
}

/** Polls until the attempt has ended. */
async function ended(ex: AwsBatchExecutor, h: JobHandle) {
  return waitUntil(`${h.jobId} to end`, async () => {
    const s = await ex.poll(h);
    return s.state === 'RUNNING' ? undefined : s;
  });
}

beforeAll(async () => {
  fake = await new FakeAws().start();
  process.env.AWS_ACCESS_KEY_ID = ACCESS_KEY;
  process.env.AWS_SECRET_ACCESS_KEY = SECRET_KEY;
  process.env.AWS_REGION = REGION;
  process.env.AWS_ENDPOINT_URL = fake.url;
  // Nothing of this machine's AWS configuration takes part.
  process.env.AWS_CONFIG_FILE = join(tmpdir(), 'no-aws-config');
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(tmpdir(), 'no-aws-credentials');
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
});

afterAll(async () => {
  await fake.stop();
});

beforeEach(() => {
  fake.requests.length = 0;
  fake.expired = false;
  fake.holdNew = false;
  fake.outcome = () => ({ exitCode: 0 });
});

afterEach(() => {
  for (const ex of made.splice(0)) ex.close();
});

describe('aws-batch executor: requests', () => {
  it('signs every request with SigV4 for batch in the region, and the fake verifies it', async () => {
    const ex = executor();
    await ended(ex, await ex.submit(spec()));
    expect(fake.requests.length).toBeGreaterThan(3);
    for (const r of fake.requests) {
      expect(r.status).toBe(200);
      expect(String(r.headers.authorization)).toMatch(
        new RegExp(
          `^AWS4-HMAC-SHA256 Credential=${ACCESS_KEY}/\\d{8}/${REGION}/batch/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$`,
        ),
      );
      expect(r.headers['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
    }
  });

  it('registers one multi-container job definition per image and finds it again', async () => {
    const ex = executor();
    const image = { image: 'strand/fastp:0.24' };
    await ex.submit(spec(image));
    await ex.submit(spec(image));
    await executor().submit(spec(image));
    expect(fake.calls('RegisterJobDefinition')).toHaveLength(1);
    const def = fake.calls('RegisterJobDefinition')[0].body as {
      jobDefinitionName: string;
      retryStrategy: { attempts: number };
      ecsProperties: {
        taskProperties: {
          containers: {
            name: string;
            image: string;
            essential: boolean;
            dependsOn?: { containerName: string; condition: string }[];
          }[];
          volumes: { name: string }[];
        }[];
      };
    };
    expect(def.jobDefinitionName).toMatch(/^strand-strand_fastp_0_24-[0-9a-f]{16}$/);
    expect(def.retryStrategy).toEqual({ attempts: 1 });
    const [stageIn, tool, stageOut] = def.ecsProperties.taskProperties[0].containers;
    expect(stageIn).toMatchObject({
      name: 'stage-in',
      image: 'strand/stage:test',
      essential: false,
    });
    expect(tool).toMatchObject({
      name: 'tool',
      image: 'strand/fastp:0.24',
      essential: false,
      dependsOn: [{ containerName: 'stage-in', condition: 'COMPLETE' }],
    });
    expect(stageOut).toMatchObject({
      name: 'stage-out',
      essential: true,
      dependsOn: [{ containerName: 'tool', condition: 'COMPLETE' }],
    });
    // The second executor found the definition instead of registering it again.
    expect(fake.calls('DescribeJobDefinitions').length).toBe(2);
  });

  it('submits the tool wrapped by the launcher, with its environment, size, timeout and tags', async () => {
    const ex = executor();
    await ex.submit(spec({ timeoutSeconds: 120, vcpus: 1.5 }));
    const req = fake.calls('SubmitJob')[0].body as {
      jobName: string;
      jobQueue: string;
      timeout: { attemptDurationSeconds: number };
      retryStrategy: { attempts: number };
      tags: Record<string, string>;
      ecsPropertiesOverride: {
        taskProperties: {
          containers: {
            name: string;
            command?: string[];
            environment?: { name: string; value: string }[];
            resourceRequirements?: { type: string; value: string }[];
          }[];
        }[];
      };
    };
    expect(req.jobName).toMatch(/^strand-job-\d+-\d+-1$/);
    expect(req.jobQueue).toBe('strand');
    expect(req.retryStrategy).toEqual({ attempts: 1 });
    expect(req.timeout.attemptDurationSeconds).toBeGreaterThan(120);
    expect(req.tags).toMatchObject({ 'strand:attempt': '1' });
    const [stageIn, tool, stageOut] = req.ecsPropertiesOverride.taskProperties[0].containers;
    expect(tool.command).toEqual([
      '/strand/bin/strand-launcher',
      'wrap',
      '-C',
      '/strand/work',
      '/strand/run/pid',
      '/strand/run/stop',
      '/strand/run/log',
      '',
      '0:120:10',
      '--',
      'fastp',
      '-i',
      'reads.fq',
    ]);
    // AWS_BATCH_* are AWS's own: never sent.
    expect(tool.environment).toEqual([{ name: 'SAMPLE', value: 'S1' }]);
    expect(tool.resourceRequirements).toEqual([
      { type: 'VCPU', value: '2' },
      { type: 'MEMORY', value: '3000' },
    ]);
    for (const c of [stageIn, stageOut])
      expect(c.environment?.map((e) => e.name)).toEqual(['STRAND_STAGE_PLAN']);
  });

  it('polls many jobs with one DescribeJobs per tick, 100 ids a call at most', async () => {
    fake.holdNew = true;
    const ex = executor({ pollMs: 60_000 });
    const handles = await Promise.all(Array.from({ length: 250 }, () => ex.submit(spec())));
    fake.requests.length = 0;
    // One tick: the local Batch polls each running attempt in turn.
    for (const h of handles) expect((await ex.poll(h)).state).toBe('RUNNING');
    const calls = fake.calls('DescribeJobs');
    expect(calls.map((c) => (c.body.jobs as string[]).length)).toEqual([100, 100, 50]);
    expect(new Set(calls.flatMap((c) => c.body.jobs as string[])).size).toBe(250);
  });

  it('maps the job lifecycle: RUNNING until the end, then the exit code, times and reason', async () => {
    fake.outcome = () => ({ exitCode: 3 });
    const ex = executor();
    const h = await ex.submit(spec());
    const seen: string[] = [];
    const s = await waitUntil('the end', async () => {
      const st = await ex.poll(h);
      seen.push(fake.jobs.get(h.ref)!.status);
      return st.state === 'RUNNING' ? undefined : st;
    });
    expect(seen.slice(0, 4)).toEqual(['RUNNABLE', 'STARTING', 'RUNNING', 'FAILED']);
    expect(s).toMatchObject({ state: 'FAILED', exitCode: 3 });
    expect(s).not.toHaveProperty('reason');
    expect(s.startedAt).toBeLessThanOrEqual(s.stoppedAt!);
  });

  it("gives AWS's timeout and memory reasons as every backend does", async () => {
    const ex = executor();
    fake.outcome = () => ({
      exitCode: 137,
      reason: 'OutOfMemoryError: Container killed due to memory usage',
    });
    expect(await ended(ex, await ex.submit(spec()))).toMatchObject({
      state: 'FAILED',
      exitCode: 137,
      reason: 'OutOfMemoryError: Container killed due to memory usage',
    });
    fake.outcome = () => ({ statusReason: 'Job attempt duration exceeded timeout' });
    expect(await ended(ex, await ex.submit(spec()))).toMatchObject({
      state: 'FAILED',
      reason: 'Job attempt duration exceeded timeout',
    });
  });

  it('kill terminates the job (TerminateJob) with the reason', async () => {
    fake.holdNew = true;
    const ex = executor();
    const h = await ex.submit(spec());
    await waitUntil(
      'RUNNING',
      () => fake.jobs.get(h.ref)?.status === 'RUNNING' || ex.poll(h).then(() => false),
    );
    await ex.kill(h, 'Terminated by user');
    expect(fake.calls('TerminateJob')[0].body).toEqual({
      jobId: h.ref,
      reason: 'Terminated by user',
    });
    expect(await ended(ex, h)).toMatchObject({
      state: 'FAILED',
      exitCode: 137,
      reason: 'Terminated by user',
    });
  });
});

describe('aws-batch executor: never twice', () => {
  it('submitting the same attempt again (also at once) submits it once', async () => {
    const ex = executor();
    const job = spec();
    const [a, b] = await Promise.all([ex.submit(job), ex.submit(job)]);
    expect(b).toEqual(a);
    expect(await ex.submit(job)).toEqual(a);
    expect(fake.calls('SubmitJob')).toHaveLength(1);
  });

  it('a restarted Strand (a new executor, the same handle) re-attaches without submitting', async () => {
    fake.holdNew = true;
    const first = executor();
    const job = spec();
    const h = await first.submit(job);
    first.close();
    const ledgerDir = (first as unknown as { options: { ledgerDir: string } }).options.ledgerDir;
    const second = executor({ ledgerDir });
    expect((await second.reattach(h)).state).toBe('RUNNING');
    // The local Batch hands an attempt it has no handle of to the executor again.
    expect(await second.submit(job)).toEqual(h);
    fake.release(h.ref);
    expect(await ended(second, h)).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
    expect(fake.calls('SubmitJob')).toHaveLength(1);
  });

  it('a crash between SubmitJob and its answer being recorded finds the job by ListJobs', async () => {
    const ledgerDir = mkdtempSync(join(tmpdir(), 'strand-aws-ledger-'));
    const job = spec();
    const h = await executor({ ledgerDir }).submit(job);
    // As the process that died left it: the submission begun, its answer not recorded.
    const ledger = join(
      ledgerDir,
      `${JSON.parse(JSON.stringify(fake.jobs.get(h.ref)!.jobName))}.json`,
    );
    writeFileSync(ledger, JSON.stringify({ jobName: fake.jobs.get(h.ref)!.jobName }));
    const again = await executor({ ledgerDir }).submit(job);
    expect(again).toEqual(h);
    expect(fake.calls('ListJobs')).toHaveLength(1);
    expect(fake.calls('ListJobs')[0].body).toEqual({
      jobQueue: 'strand',
      filters: [{ name: 'JOB_NAME', values: [fake.jobs.get(h.ref)!.jobName] }],
    });
    expect(fake.calls('SubmitJob')).toHaveLength(1);
    expect(JSON.parse(readFileSync(ledger, 'utf8'))).toMatchObject({ awsJobId: h.ref });
  });

  it('a crash before SubmitJob reached AWS submits once ListJobs finds nothing', async () => {
    const ledgerDir = mkdtempSync(join(tmpdir(), 'strand-aws-ledger-'));
    const job = spec();
    const name = `strand-${job.jobId}-1`;
    writeFileSync(join(ledgerDir, `${name}.json`), JSON.stringify({ jobName: name }));
    const h = await executor({ ledgerDir }).submit(job);
    expect(fake.calls('ListJobs')).toHaveLength(1);
    expect(fake.calls('SubmitJob')).toHaveLength(1);
    expect(fake.jobs.get(h.ref)?.jobName).toBe(name);
  });
});

describe('aws-batch executor: throttling and faults', () => {
  it('a throttled SubmitJob is retried by the SDK with backoff and succeeds', async () => {
    fake.throttle('SubmitJob', 2);
    const ex = executor();
    const h = await ex.submit(spec());
    const submits = fake.calls('SubmitJob');
    expect(submits.map((r) => r.status)).toEqual([429, 429, 200]);
    // The SDK numbers its attempts: retries, not new submissions.
    expect(submits.map((r) => String(r.headers['amz-sdk-request']))).toEqual([
      'attempt=1; max=3',
      'attempt=2; max=3',
      'attempt=3; max=3',
    ]);
    expect(new Set(submits.map((r) => r.headers['amz-sdk-invocation-id'])).size).toBe(1);
    expect(fake.jobs.has(h.ref)).toBe(true);
  });

  it('polls that stay throttled back off instead of looping, then carry on', async () => {
    fake.holdNew = true;
    let now = 0;
    const ex = executor({ pollMs: 1000, now: () => now, maxAttempts: 2 });
    const h = await ex.submit(spec());
    fake.requests.length = 0;
    fake.throttle('DescribeJobs', 1000);
    for (let i = 0; i < 50; i++) expect((await ex.poll(h)).state).toBe('RUNNING');
    // One failed pass (the SDK's two attempts); the other polls wait for the backoff to pass.
    expect(fake.calls('DescribeJobs')).toHaveLength(2);
    expect(ex.lastPollError?.code).toBe('THROTTLED');
    expect(ex.lastPollError?.message).toMatch(
      new RegExp(
        `DescribeJobs: AWS Batch at ${fake.url.replace(/\./g, '\\.')} \\(region ${REGION}\\) throttled the request \\(TooManyRequestsException\\)`,
      ),
    );
    fake.throttle('DescribeJobs', 0);
    fake.release(h.ref);
    const s = await waitUntil('the end', async () => {
      now += 60_000;
      const st = await ex.poll(h);
      return st.state === 'RUNNING' ? undefined : st;
    });
    expect(s).toMatchObject({ state: 'SUCCEEDED' });
    expect(ex.lastPollError).toBeUndefined();
  });

  it('a wrong endpoint fails fast, naming the endpoint and region', async () => {
    const ex = executor({ endpoint: 'http://127.0.0.1:9', maxAttempts: 1 });
    const err = await ex.check().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AwsBatchError);
    expect((err as AwsBatchError).configuration).toBe(true);
    expect((err as Error).message).toMatch(
      /^DescribeJobQueues: cannot reach AWS Batch at http:\/\/127\.0\.0\.1:9 \(region eu-west-1\): ECONNREFUSED/,
    );
  });

  it('an expired credential is a configuration error naming what refused it', async () => {
    fake.expired = true;
    const ex = executor();
    await expect(ex.check()).rejects.toThrow(
      new RegExp(
        `AWS Batch at ${fake.url.replace(/\./g, '\\.')} \\(region eu-west-1\\) refused the credentials \\(ExpiredTokenException: The security token included in the request is expired\\)`,
      ),
    );
    await expect(ex.submit(spec())).rejects.toMatchObject({ code: 'CREDENTIALS' });
  });

  it('a job too large for SubmitJob is refused before it is sent, naming the limit', async () => {
    const ex = executor();
    await expect(ex.submit(spec({ environment: { BIG: 'x'.repeat(40 * 1024) } }))).rejects.toThrow(
      /SubmitJob request would be \d+ KiB, and AWS Batch takes 30 KiB at most/,
    );
    expect(fake.calls('SubmitJob')).toHaveLength(0);
  });

  it('a job queue that does not exist is named', async () => {
    await expect(executor({ jobQueue: 'nope' }).check()).rejects.toThrow(
      /job queue "nope" does not exist in AWS Batch at .* \(region eu-west-1\)/,
    );
  });
});

describe('aws-batch executor: logs', () => {
  it("reads the containers' CloudWatch Logs streams DescribeJobs names, every page", async () => {
    fake.outcome = () => ({
      exitCode: 0,
      logs: {
        'stage-in': ['staged 1 input'],
        'stage-out': ['line 1', 'line 2', 'line 3', 'line 4', 'line 5'],
      },
    });
    const ex = executor();
    const h = await ex.submit(spec());
    await ended(ex, h);
    fake.requests.length = 0;
    expect(await ex.logs(h)).toBe('staged 1 input\nline 1\nline 2\nline 3\nline 4\nline 5\n');
    const gets = fake.calls('GetLogEvents');
    expect(gets.length).toBeGreaterThan(3);
    for (const r of gets) {
      expect(r.headers['x-amz-target']).toBe('Logs_20140328.GetLogEvents');
      expect(String(r.headers.authorization)).toMatch(/\/logs\/aws4_request, /);
      expect(r.body).toMatchObject({ logGroupName: '/aws/batch/job', startFromHead: true });
    }
  });
});
