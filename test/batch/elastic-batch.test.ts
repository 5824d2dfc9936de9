/**
 * Jobs with a range of vCPUs on the local Batch, as real processes: the size each gets from its
 * kind's history and the queue, what the job sees of it (`Ref::STRAND_VCPUS`, the environment),
 * and what is recorded (the attempt's vCPUs, memory and CPU time; the decision and its reason).
 */
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Observation } from '../../src/batch/elastic.js';
import { sizeOverride } from '../../src/batch/elastic.js';
import { LocalBatch } from '../../src/batch/local-batch.js';
import type { JobDetail } from '../../src/batch/types.js';
import { LocalExecutor } from '../../src/executors/local/local-executor.js';
import { waitUntil } from '../helpers.js';

const open: LocalBatch[] = [];
afterEach(() => open.splice(0).forEach((b) => b.close()));

/** A Batch of 2 vCPUs whose jobs of kind "work" ran as `history` says, other kinds as `kinds`. */
function setup(history: Observation[], kinds: Record<string, Observation[]> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'strand-elastic-'));
  const loads: string[] = [];
  const batch = new LocalBatch({
    db: new Database(join(dir, 'strand.db')),
    executor: new LocalExecutor({ workRoot: join(dir, 'work'), graceSeconds: 1 }),
    maxvCpus: 2,
    memoryMiB: 4096,
    tickMs: 20,
    history: {
      key: (job) => job.tags?.kind,
      load: async (key) => {
        loads.push(key);
        return key === 'work' ? history : (kinds[key] ?? []);
      },
    },
  });
  open.push(batch);
  batch.registerJobDefinition({
    jobDefinitionName: 'work',
    type: 'container',
    parameters: { STRAND_VCPUS: '2', STRAND_MEMORY_MIB: '1024' },
    containerProperties: {
      image: 'debian',
      // Writes the size it was given, as an argument and as the environment has it.
      command: [
        'sh',
        '-c',
        'echo "$1 $STRAND_VCPUS $2 $STRAND_MEMORY_MIB" > "$3"',
        'sh',
        'Ref::STRAND_VCPUS',
        'Ref::STRAND_MEMORY_MIB',
        'Ref::out',
      ],
      resourceRequirements: [
        { type: 'VCPU', value: '2' },
        { type: 'MEMORY', value: '1024' },
      ],
    },
    tags: { kind: 'work', 'strand:vcpus': '1-2', 'strand:memory': '512-1024' },
  });
  const submit = (n: number) =>
    Array.from({ length: n }, (_, i) => {
      const out = join(dir, `out-${i}.txt`);
      const { jobId } = batch.submitJob({
        jobName: `work-${i}`,
        jobQueue: 'default',
        jobDefinition: 'work',
        parameters: { out },
      });
      return { jobId, out };
    });
  const done = (jobId: string) =>
    new Promise<JobDetail>((resolve) => batch.onceDone(jobId, resolve));
  return { batch, submit, done, loads };
}

// megahit -t 2: 16 s of wall time for 28 s of CPU, so two at 1 vCPU each end sooner than two
// one after the other at 2.
const SCALES_BADLY: Observation[] = [{ vcpus: 2, seconds: 16, cpuSeconds: 28 }];

describe('elastic sizes on the local Batch', () => {
  it('no history: the top of the range, and the job sees it', async () => {
    const { submit, done } = setup([]);
    const [job] = submit(1);
    const detail = await done(job.jobId);
    expect(detail.status).toBe('SUCCEEDED');
    expect(readFileSync(job.out, 'utf8')).toBe('2 2 1024 1024\n');
    expect(detail.sizing).toEqual({
      vcpus: 2,
      memoryMiB: 1024,
      reason: 'no history: the top of the range',
    });
    expect(detail.attempts[0]).toMatchObject({ vcpus: 2, memoryMiB: 1024 });
    expect(detail.attempts[0].cpuSeconds).toBeGreaterThanOrEqual(0);
  });

  it('a queue of a kind that scales badly: one vCPU each, two at a time, memory in proportion', async () => {
    const { batch, submit, done, loads } = setup(SCALES_BADLY);
    const jobs = submit(4);
    const details = await Promise.all(jobs.map((j) => done(j.jobId)));
    for (const [i, d] of details.entries()) {
      expect(d.status).toBe('SUCCEEDED');
      expect(readFileSync(jobs[i].out, 'utf8')).toBe('1 1 512 512\n');
      expect(d.attempts[0]).toMatchObject({ vcpus: 1, memoryMiB: 512 });
    }
    // The first one decided with three others waiting.
    expect(details[0].sizing!.reason).toMatch(
      /^expected 1 vCPU 28\.0 s, 2 vCPU 16\.0 s \(1 run at 2 vCPU using 1\.75 of them\); with 3 jobs waiting the queue ends soonest at 1 vCPU/,
    );
    expect(loads).toContain('work');
    // The decision is in the job's record, as `strand batch describe` shows it.
    expect(batch.describeJobs([jobs[0].jobId])[0].sizing?.vcpus).toBe(1);
  });

  it('the same kind alone: the top of the range (it ends soonest)', async () => {
    const { submit, done } = setup(SCALES_BADLY);
    const [job] = submit(1);
    const detail = await done(job.jobId);
    expect(readFileSync(job.out, 'utf8')).toBe('2 2 1024 1024\n');
    expect(detail.sizing!.reason).toMatch(/with 0 jobs waiting the queue ends soonest at 2 vCPU/);
  });

  /** Registers a fixed 1-vCPU job definition of kind `kind` running `command`; submits by name. */
  const fixed = (batch: LocalBatch, kind: string, command: string[]) => {
    batch.registerJobDefinition({
      jobDefinitionName: kind,
      type: 'container',
      containerProperties: {
        image: 'debian',
        command,
        resourceRequirements: [
          { type: 'VCPU', value: '1' },
          { type: 'MEMORY', value: '256' },
        ],
      },
      tags: { kind },
    });
    return (name: string) =>
      batch.submitJob({ jobName: name, jobQueue: 'default', jobDefinition: kind }).jobId;
  };

  it('jobs that follow one that just ended are sized together, not the first as if alone', async () => {
    const { batch, submit, done } = setup(SCALES_BADLY);
    const quick = fixed(batch, 'quick', ['true']);
    const first = quick('first');
    // As the engine does: what follows a job is submitted once it has ended; a second sample's
    // job 150 ms after the first's.
    const follow = new Promise<{ jobId: string; out: string }[]>((resolve) =>
      batch.onceDone(first, () => {
        const [a] = submit(1);
        setTimeout(() => resolve([a, ...submit(1)]), 150);
      }),
    );
    const jobs = await follow;
    const details = await Promise.all(jobs.map((j) => done(j.jobId)));
    expect(details.map((d) => d.attempts[0].vcpus)).toEqual([1, 1]);
    expect(details[0].sizing!.reason).toMatch(
      /with 1 job waiting the queue ends soonest at 1 vCPU/,
    );
  });

  it('waits for the cores of a job past its expected end, keeping them from jobs behind it', async () => {
    // "sleep" jobs took 10 ms before: the one that runs is past its expected end almost at once.
    const { batch, submit, done } = setup(SCALES_BADLY, { sleep: [{ vcpus: 1, seconds: 0.01 }] });
    const sleep = fixed(batch, 'sleep', ['sleep', '1']);
    // Never run before: how long it takes is unknown.
    const unknown = fixed(batch, 'unknown', ['sleep', '1']);
    const first = sleep('first');
    await waitUntil('the first sleep to run', () =>
      ['RUNNING', 'SUCCEEDED'].includes(batch.describeJobs([first])[0].status),
    );
    const [work] = submit(1);
    // Behind it, a job that could take the free core: it would keep `work` from 2 vCPU.
    const behind = unknown('behind');
    const [w, b] = await Promise.all([done(work.jobId), done(behind), done(first)]);
    expect(w.attempts[0].vcpus).toBe(2);
    expect(readFileSync(work.out, 'utf8')).toBe('2 2 1024 1024\n');
    expect(b.attempts[0].startedAt).toBeGreaterThanOrEqual(w.attempts[0].startedAt!);
  });

  it('a job behind it expected to end before the cores are wanted runs on them meanwhile', async () => {
    // The running "sleep" is expected to take 3 s; "quick" jobs take 10 ms.
    const { batch, submit, done } = setup(SCALES_BADLY, {
      sleep: [{ vcpus: 1, seconds: 3 }],
      quick: [{ vcpus: 1, seconds: 0.01 }],
    });
    const sleep = fixed(batch, 'sleep', ['sleep', '1']);
    const quick = fixed(batch, 'quick', ['true']);
    const first = sleep('first');
    await waitUntil('the first sleep to run', () =>
      ['RUNNING', 'SUCCEEDED'].includes(batch.describeJobs([first])[0].status),
    );
    const [work] = submit(1);
    const behind = quick('behind');
    const [w, b, f] = await Promise.all([done(work.jobId), done(behind), done(first)]);
    expect(w.attempts[0].vcpus).toBe(2);
    // It ran beside the first sleep, on the core kept for `work`, and ended before `work` began.
    expect(b.attempts[0].stoppedAt).toBeLessThanOrEqual(f.attempts[0].stoppedAt!);
    expect(b.attempts[0].stoppedAt).toBeLessThanOrEqual(w.attempts[0].startedAt!);
  });

  it('a range whose low end no compute environment has fails at submit, naming it', async () => {
    const { batch, done } = setup([]);
    batch.registerJobDefinition({
      jobDefinitionName: 'big',
      type: 'container',
      containerProperties: {
        image: 'debian',
        command: ['true'],
        resourceRequirements: [
          { type: 'VCPU', value: '8' },
          { type: 'MEMORY', value: '1024' },
        ],
      },
      tags: { 'strand:vcpus': '4-8' },
    });
    const { jobId } = batch.submitJob({
      jobName: 'big',
      jobQueue: 'default',
      jobDefinition: 'big',
    });
    const detail = await done(jobId);
    expect(detail.status).toBe('FAILED');
    expect(detail.statusReason).toMatch(
      /^needs at least 4 vCPU, 1 GiB; largest compute environment/,
    );
  });
});

describe('sizeOverride (AWS Batch SubmitJob)', () => {
  it('the resource override, the parameters the command reads, and the environment', () => {
    expect(sizeOverride(1, 512)).toEqual({
      parameters: { STRAND_VCPUS: '1', STRAND_MEMORY_MIB: '512' },
      containerOverrides: {
        resourceRequirements: [
          { type: 'VCPU', value: '1' },
          { type: 'MEMORY', value: '512' },
        ],
        environment: [
          { name: 'STRAND_VCPUS', value: '1' },
          { name: 'STRAND_MEMORY_MIB', value: '512' },
        ],
      },
    });
  });
});
