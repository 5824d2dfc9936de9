import Database from 'better-sqlite3';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalBatch } from '../../src/batch/local-batch.js';
import type { JobDetail } from '../../src/batch/types.js';
import { pipelineStageIn } from '../../src/functions/stage-in.js';
import type { JobAttemptSpec, JobHandle } from '../../src/executors/executor.js';
import {
  LocalExecutor,
  type LocalExecutorOptions,
} from '../../src/executors/local/local-executor.js';

/** The local executor, keeping every attempt it is handed. */
class RecordingExecutor extends LocalExecutor {
  readonly specs: JobAttemptSpec[] = [];
  constructor(options: LocalExecutorOptions) {
    super(options);
  }
  override submit(spec: JobAttemptSpec): Promise<JobHandle> {
    this.specs.push(spec);
    return super.submit(spec);
  }
}

const open: LocalBatch[] = [];
afterEach(() => open.splice(0).forEach((b) => b.close()));

function setup(options: Partial<LocalExecutorOptions> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'strand-batch-ro-'));
  const executor = new RecordingExecutor({
    workRoot: join(dir, 'work'),
    graceSeconds: 1,
    ...options,
  });
  const batch = new LocalBatch({
    db: new Database(join(dir, 'strand.db')),
    executor,
    maxvCpus: 2,
    memoryMiB: 4096,
    tickMs: 20,
    stageIn: pipelineStageIn,
  });
  open.push(batch);
  return { batch, executor, dir };
}

function done(batch: LocalBatch, jobId: string): Promise<JobDetail> {
  return new Promise((resolve) => batch.onceDone(jobId, resolve));
}

describe('local Batch with the pipeline stage-in: read-only inputs', () => {
  it("names a pipeline job's store and the regular files its arguments and environment name", async () => {
    const { batch, executor, dir } = setup();
    const store = join(dir, 'store');
    mkdirSync(store);
    const reads = join(dir, 'reads.fq');
    const reference = join(dir, 'ref.fa');
    writeFileSync(reads, '@r\nACGT\n+\nIIII\n');
    writeFileSync(reference, '>r\nACGT\n');
    batch.registerJobDefinition({
      jobDefinitionName: 'reader',
      type: 'container',
      containerProperties: {
        image: 'strand/node:20',
        // The program itself, a directory, kernel files, a relative path and a missing one are
        // not inputs to protect.
        command: [
          process.execPath,
          '-e',
          '0',
          reads,
          dir,
          '/proc/self/status',
          '/dev/null',
          'ref.fa',
          join(dir, 'missing'),
        ],
        environment: [
          { name: 'REFERENCE', value: reference },
          { name: 'READS', value: reads },
        ],
        resourceRequirements: [
          { type: 'VCPU', value: '1' },
          { type: 'MEMORY', value: '128' },
        ],
      },
    });
    const { jobId } = batch.submitJob({
      jobName: 'read',
      jobQueue: 'default',
      jobDefinition: 'reader',
      tags: { 'strand:store': pathToFileURL(store).href },
    });
    expect(await done(batch, jobId)).toMatchObject({ status: 'SUCCEEDED' });
    expect(executor.specs[0].readOnlyPaths).toEqual([store, reads, reference]);
    // A job that is no pipeline's (no store tag) may write the files it names.
    const plain = batch.submitJob({
      jobName: 'plain',
      jobQueue: 'default',
      jobDefinition: 'reader',
    });
    expect(await done(batch, plain.jobId)).toMatchObject({ status: 'SUCCEEDED' });
    expect(executor.specs[1].readOnlyPaths).toBeUndefined();
  });

  it('a job that changes an input and exits 0 is FAILED, the reason naming the file, and not retried', async () => {
    // No mount (as for a user who is not root): the change is caught after the end.
    const { batch, dir } = setup({ readOnlyMounts: false });
    const input = join(dir, 'published.txt');
    writeFileSync(input, 'published\n');
    batch.registerJobDefinition({
      jobDefinitionName: 'tamper',
      type: 'container',
      // Another attempt would start from the changed file and succeed.
      retryStrategy: { attempts: 3 },
      containerProperties: {
        image: 'strand/node:20',
        command: [
          process.execPath,
          '-e',
          'require("node:fs").appendFileSync(process.argv[1], "tampered\\n")',
          input,
        ],
        resourceRequirements: [
          { type: 'VCPU', value: '1' },
          { type: 'MEMORY', value: '128' },
        ],
      },
    });
    const { jobId } = batch.submitJob({
      jobName: 'tamper',
      jobQueue: 'default',
      jobDefinition: 'tamper',
      tags: { 'strand:store': pathToFileURL(join(dir, 'store')).href },
    });
    const job = await done(batch, jobId);
    expect(readFileSync(input, 'utf8')).toBe('published\ntampered\n');
    expect(job).toMatchObject({
      status: 'FAILED',
      statusReason: expect.stringMatching(
        new RegExp(`^InputChangedError: read-only input ${input} changed while the job ran`),
      ),
    });
    expect(job.attempts).toHaveLength(1);
    expect(job.attempts[0].container.exitCode).toBe(0);
  });
});
