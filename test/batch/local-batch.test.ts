import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalBatch } from '../../src/batch/local-batch.js';
import { BatchInputError } from '../../src/batch/resources.js';
import type { JobDetail, RegisterJobDefinitionRequest } from '../../src/batch/types.js';
import { LocalExecutor } from '../../src/executors/local/local-executor.js';

const open: LocalBatch[] = [];
afterEach(() => open.splice(0).forEach((b) => b.close()));

function setup(options: { maxvCpus?: number; memoryMiB?: number; starvationMs?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'strand-batch-'));
  const batch = new LocalBatch({
    db: new Database(join(dir, 'strand.db')),
    executor: new LocalExecutor({ workRoot: join(dir, 'work'), graceSeconds: 1 }),
    maxvCpus: options.maxvCpus ?? 2,
    memoryMiB: options.memoryMiB ?? 4096,
    starvationMs: options.starvationMs,
    tickMs: 20,
  });
  open.push(batch);
  return { batch, dir };
}

const node = (script: string, vcpus = 1, memory = 256): RegisterJobDefinitionRequest => ({
  jobDefinitionName: 'node-script',
  type: 'container',
  parameters: { greeting: 'hello' },
  containerProperties: {
    image: 'strand/node:20',
    command: [process.execPath, '-e', script, 'Ref::greeting'],
    environment: [{ name: 'STAGE', value: 'test' }],
    resourceRequirements: [
      { type: 'VCPU', value: String(vcpus) },
      { type: 'MEMORY', value: String(memory) },
    ],
  },
});

function done(batch: LocalBatch, jobId: string): Promise<JobDetail> {
  return new Promise((resolve) => batch.onceDone(jobId, resolve));
}

describe('local Batch', () => {
  it('runs a job: Ref:: parameters, environment, AWS_BATCH_* variables, attempts, log', async () => {
    const { batch } = setup();
    const def = batch.registerJobDefinition(
      node(
        'console.log(process.argv[1], process.env.STAGE, process.env.AWS_BATCH_JOB_ID, process.env.AWS_BATCH_JOB_ATTEMPT)',
      ),
    );
    expect(def.revision).toBe(1);
    expect(batch.registerJobDefinition(node('0')).revision).toBe(2);
    const { jobId } = batch.submitJob({
      jobName: 'greet',
      jobQueue: 'default',
      jobDefinition: 'node-script:1',
      parameters: { greeting: 'hi' },
    });
    const job = await done(batch, jobId);
    expect(job).toMatchObject({ status: 'SUCCEEDED', jobName: 'greet' });
    expect(job.attempts).toHaveLength(1);
    expect(job.attempts[0].container.exitCode).toBe(0);
    expect(readFileSync(job.container.logStreamName!, 'utf8')).toContain(`hi test ${jobId} 1`);
    expect(
      batch.listJobs({ jobQueue: 'default', jobStatus: 'SUCCEEDED' }).map((j) => j.jobId),
    ).toEqual([jobId]);
  });

  it('a job no compute environment can ever fit fails at submit, naming the values', async () => {
    const { batch } = setup({ maxvCpus: 2, memoryMiB: 23 * 1024 });
    batch.registerJobDefinition(node('0', 16, 64 * 1024));
    const { jobId } = batch.submitJob({
      jobName: 'huge',
      jobQueue: 'default',
      jobDefinition: 'node-script',
    });
    const job = batch.describeJobs([jobId])[0];
    expect(job.status).toBe('FAILED');
    expect(job.statusReason).toBe(
      'needs 16 vCPU, 64 GiB; largest compute environment "local" on queue "default" has 2 vCPU, 23 GiB',
    );
  });

  it('bad requests are refused with the values', () => {
    const { batch } = setup();
    expect(() =>
      batch.submitJob({ jobName: 'x', jobQueue: 'nope', jobDefinition: 'node-script' }),
    ).toThrow(/no job queue named "nope" \(queues: default\)/);
    expect(() =>
      batch.submitJob({ jobName: 'x', jobQueue: 'default', jobDefinition: 'missing' }),
    ).toThrow(BatchInputError);
    batch.registerJobDefinition(node('0'));
    expect(() =>
      batch.submitJob({
        jobName: 'x',
        jobQueue: 'default',
        jobDefinition: 'node-script',
        arrayProperties: { size: 1 },
      }),
    ).toThrow(/2 to 10,000/);
  });

  it('retryStrategy with evaluateOnExit: RETRY on one exit code, EXIT on another', async () => {
    const { batch } = setup();
    batch.registerJobDefinition({
      ...node('process.exit(Number(process.env.AWS_BATCH_JOB_ATTEMPT) === 1 ? 3 : 0)'),
      retryStrategy: {
        attempts: 3,
        evaluateOnExit: [
          { onExitCode: '3', action: 'RETRY' },
          { onExitCode: '*', action: 'EXIT' },
        ],
      },
    });
    const retried = await done(
      batch,
      batch.submitJob({ jobName: 'flaky', jobQueue: 'default', jobDefinition: 'node-script' })
        .jobId,
    );
    expect(retried.status).toBe('SUCCEEDED');
    expect(retried.attempts.map((a) => a.container.exitCode)).toEqual([3, 0]);
    batch.registerJobDefinition({
      ...node('process.exit(4)'),
      retryStrategy: {
        attempts: 3,
        evaluateOnExit: [
          { onExitCode: '3', action: 'RETRY' },
          { onExitCode: '*', action: 'EXIT' },
        ],
      },
    });
    const exited = await done(
      batch,
      batch.submitJob({ jobName: 'broken', jobQueue: 'default', jobDefinition: 'node-script' })
        .jobId,
    );
    expect(exited.status).toBe('FAILED');
    expect(exited.attempts).toHaveLength(1);
  });

  it('timeout and memory limit end attempts as AWS reports them', async () => {
    const { batch } = setup();
    batch.registerJobDefinition({
      ...node('setTimeout(() => {}, 60000)'),
      timeout: { attemptDurationSeconds: 1 },
    });
    const slow = await done(
      batch,
      batch.submitJob({ jobName: 'slow', jobQueue: 'default', jobDefinition: 'node-script' }).jobId,
    );
    expect(slow.status).toBe('FAILED');
    expect(slow.statusReason).toBe('Job attempt duration exceeded timeout');
    batch.registerJobDefinition(
      node('const a = []; setInterval(() => a.push(Buffer.alloc(32 << 20, 1)), 20)', 1, 128),
    );
    const hungry = await done(
      batch,
      batch.submitJob({ jobName: 'hungry', jobQueue: 'default', jobDefinition: 'node-script' })
        .jobId,
    );
    expect(hungry.status).toBe('FAILED');
    expect(hungry.container.exitCode).toBe(137);
    expect(hungry.statusReason).toBe('OutOfMemoryError: Container killed due to memory usage');
  });

  it('array jobs: one child per index with AWS_BATCH_JOB_ARRAY_INDEX; the parent sums them up', async () => {
    const { batch, dir } = setup();
    const out = join(dir, 'array.txt');
    batch.registerJobDefinition(
      node(
        `require("fs").appendFileSync(${JSON.stringify(out)}, process.env.AWS_BATCH_JOB_ARRAY_INDEX + "\\n")`,
      ),
    );
    const { jobId } = batch.submitJob({
      jobName: 'fan',
      jobQueue: 'default',
      jobDefinition: 'node-script',
      arrayProperties: { size: 4 },
    });
    const parent = await done(batch, jobId);
    expect(parent.status).toBe('SUCCEEDED');
    expect(parent.arrayProperties?.statusSummary).toEqual({ SUCCEEDED: 4 });
    expect(readFileSync(out, 'utf8').trim().split('\n').sort()).toEqual(['0', '1', '2', '3']);
    expect(batch.describeJobs([`${jobId}:2`])[0].arrayProperties).toEqual({ index: 2 });
  });

  it('dependsOn: a job waits for its dependency; SEQUENTIAL array children run one after another', async () => {
    const { batch } = setup({ maxvCpus: 4 });
    batch.registerJobDefinition(node('setTimeout(() => {}, 300)'));
    const a = batch.submitJob({
      jobName: 'first',
      jobQueue: 'default',
      jobDefinition: 'node-script',
    });
    const b = batch.submitJob({
      jobName: 'second',
      jobQueue: 'default',
      jobDefinition: 'node-script',
      dependsOn: [{ jobId: a.jobId }],
    });
    expect(batch.describeJobs([b.jobId])[0].status).toBe('SUBMITTED');
    const [ja, jb] = await Promise.all([done(batch, a.jobId), done(batch, b.jobId)]);
    expect(jb.attempts[0].startedAt!).toBeGreaterThanOrEqual(ja.attempts[0].stoppedAt!);
    const seq = batch.submitJob({
      jobName: 'seq',
      jobQueue: 'default',
      jobDefinition: 'node-script',
      arrayProperties: { size: 3 },
      dependsOn: [{ jobId: '', type: 'SEQUENTIAL' }],
    });
    await done(batch, seq.jobId);
    const kids = batch.describeJobs([0, 1, 2].map((i) => `${seq.jobId}:${i}`));
    expect(kids[1].attempts[0].startedAt!).toBeGreaterThanOrEqual(kids[0].attempts[0].stoppedAt!);
    expect(kids[2].attempts[0].startedAt!).toBeGreaterThanOrEqual(kids[1].attempts[0].stoppedAt!);
  });

  it('a failed dependency fails the dependent job', async () => {
    const { batch } = setup();
    batch.registerJobDefinition(node('process.exit(1)'));
    const a = batch.submitJob({
      jobName: 'bad',
      jobQueue: 'default',
      jobDefinition: 'node-script',
    });
    const b = batch.submitJob({
      jobName: 'after',
      jobQueue: 'default',
      jobDefinition: 'node-script',
      dependsOn: [{ jobId: a.jobId }],
    });
    const jb = await done(batch, b.jobId);
    expect(jb).toMatchObject({ status: 'FAILED', statusReason: 'Dependent job failed' });
  });

  it('no head-of-line blocking: a small job starts beside a big one that waits', async () => {
    const { batch } = setup({ maxvCpus: 2, starvationMs: 60_000 });
    batch.registerJobDefinition({
      ...node('setTimeout(() => {}, 800)'),
      jobDefinitionName: 'small',
    });
    batch.registerJobDefinition({
      ...node('setTimeout(() => {}, 100)', 2),
      jobDefinitionName: 'big',
    });
    const running = batch.submitJob({
      jobName: 'running',
      jobQueue: 'default',
      jobDefinition: 'small',
    });
    await new Promise((r) => setTimeout(r, 150));
    const big = batch.submitJob({ jobName: 'big', jobQueue: 'default', jobDefinition: 'big' });
    const small = batch.submitJob({
      jobName: 'later-small',
      jobQueue: 'default',
      jobDefinition: 'small',
    });
    const [jr, jbig, jsmall] = await Promise.all([
      done(batch, running.jobId),
      done(batch, big.jobId),
      done(batch, small.jobId),
    ]);
    // The small job, submitted after the big one, started before it.
    expect(jsmall.attempts[0].startedAt!).toBeLessThan(jbig.attempts[0].startedAt!);
    expect(jbig.attempts[0].startedAt!).toBeGreaterThanOrEqual(jr.attempts[0].stoppedAt!);
  });

  it('a big job that has waited long enough is not starved: later small jobs wait for it', async () => {
    const { batch } = setup({ maxvCpus: 2, starvationMs: 100 });
    batch.registerJobDefinition({
      ...node('setTimeout(() => {}, 600)'),
      jobDefinitionName: 'small',
    });
    batch.registerJobDefinition({
      ...node('setTimeout(() => {}, 100)', 2),
      jobDefinitionName: 'big',
    });
    const first = batch.submitJob({
      jobName: 'first',
      jobQueue: 'default',
      jobDefinition: 'small',
    });
    await new Promise((r) => setTimeout(r, 100));
    const big = batch.submitJob({ jobName: 'big', jobQueue: 'default', jobDefinition: 'big' });
    await new Promise((r) => setTimeout(r, 250));
    const late = batch.submitJob({ jobName: 'late', jobQueue: 'default', jobDefinition: 'small' });
    const [, jbig, jlate] = await Promise.all([
      done(batch, first.jobId),
      done(batch, big.jobId),
      done(batch, late.jobId),
    ]);
    expect(jlate.attempts[0].startedAt!).toBeGreaterThanOrEqual(jbig.attempts[0].startedAt!);
  });

  it('TerminateJob stops a running job, which is not retried', async () => {
    const { batch } = setup();
    batch.registerJobDefinition({
      ...node('setTimeout(() => {}, 60000)'),
      retryStrategy: { attempts: 3 },
    });
    const { jobId } = batch.submitJob({
      jobName: 'stopme',
      jobQueue: 'default',
      jobDefinition: 'node-script',
    });
    while (batch.describeJobs([jobId])[0].status !== 'RUNNING')
      await new Promise((r) => setTimeout(r, 20));
    await batch.terminateJob(jobId, 'Terminated by a person');
    const job = await done(batch, jobId);
    expect(job).toMatchObject({ status: 'FAILED', statusReason: 'Terminated by a person' });
    expect(job.attempts).toHaveLength(1);
  });

  it.each([
    ['before the process is asked for', (f: () => void) => f()],
    ['after the process is asked for, before it is known', queueMicrotask],
  ])(
    'TerminateJob while a job is STARTING (%s): its command never runs to the end',
    async (_, when) => {
      const { batch, dir } = setup();
      const marker = join(dir, 'ran.txt');
      batch.registerJobDefinition(
        node(
          `setTimeout(() => require("fs").writeFileSync(${JSON.stringify(marker)}, "ran"), 800)`,
        ),
      );
      batch.onJobStatus((j) => {
        if (j.status === 'STARTING')
          when(() => void batch.terminateJob(j.jobId, 'Terminated while starting'));
      });
      const { jobId } = batch.submitJob({
        jobName: 'stop-early',
        jobQueue: 'default',
        jobDefinition: 'node-script',
      });
      const job = await done(batch, jobId);
      expect(job).toMatchObject({ status: 'FAILED', statusReason: 'Terminated while starting' });
      await new Promise((r) => setTimeout(r, 1500));
      expect(existsSync(marker)).toBe(false);
    },
  );
});
