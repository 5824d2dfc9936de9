/**
 * The SLURM executor when SLURM misbehaves, against stand-ins for its commands (small scripts
 * whose answers each test sets): `squeue` failing or hanging, a job gone from `squeue` before its
 * exit line appeared, jobs that ended without one, `sbatch` refusing or hanging, a Strand killed
 * between `sbatch` and recording the job id. And how many `squeue` calls polls make. No cluster:
 * no job runs; a test writes the exit line a job's wrapper would.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OOM_REASON, TIMEOUT_REASON, type JobHandle } from '../../src/executors/executor.js';
import { nativeRequest } from '../../src/executors/local/launcher.js';
import { nativeLauncher } from '../../src/executors/local/local-executor.js';
import {
  SlurmExecutor,
  type SlurmExecutorOptions,
} from '../../src/executors/slurm/slurm-executor.js';
import { slurmJobName } from '../../src/executors/slurm/script.js';
import { waitUntil } from '../helpers.js';
import { inlinePipeline, spawnStrand } from '../pipeline/cli.js';
import { spec, waitDone } from './conformance.js';

const root = realpathSync(mkdtempSync(join(tmpdir(), 'strand-slurm-faults-')));

/**
 * Stand-ins for sbatch, squeue, scancel and sacct in a directory of their own: each appends its
 * argv to `<name>.calls`; `<name>.mode` says how it answers (`fail`, `hang`, or as usual);
 * squeue prints `squeue.out`; sbatch prints a new job id (1001, 1002, …).
 */
function fakeSlurm() {
  const dir = mkdtempSync(join(root, 'fake-'));
  const script = (name: string, usual: string, failure: string) => {
    const path = join(dir, name);
    writeFileSync(
      path,
      `#!/bin/sh
d=${JSON.stringify(dir)}
echo "$*" >> "$d/${name}.calls"
case "$(cat "$d/${name}.mode" 2>/dev/null)" in
  fail) ${failure}; exit 1 ;;
  hang) exec sleep 600 ;;
esac
${usual}
`,
    );
    chmodSync(path, 0o755);
    return path;
  };
  const programs = {
    sbatch: script(
      'sbatch',
      'echo $((1000 + $(wc -l < "$d/sbatch.calls")))',
      'echo "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified" >&2',
    ),
    squeue: script(
      'squeue',
      'cat "$d/squeue.out" 2>/dev/null',
      'echo "slurm_load_jobs error: Unable to contact slurm controller (connect failure)" >&2',
    ),
    scancel: script('scancel', 'true', 'echo "scancel: error: failed" >&2'),
    sacct: script(
      'sacct',
      'cat "$d/sacct.out" 2>/dev/null',
      'echo "sacct: error: Slurm accounting storage is disabled" >&2',
    ),
  };
  const calls = (name: string): string[] => {
    const path = join(dir, `${name}.calls`);
    return existsSync(path) ? readFileSync(path, 'utf8').trim().split('\n') : [];
  };
  return {
    programs,
    mode: (name: keyof typeof programs, mode: 'fail' | 'hang' | 'ok') =>
      writeFileSync(join(dir, `${name}.mode`), mode),
    /** squeue's answer: one line per job (id, state, reason, name). */
    queue: (jobs: [string, string, string, string][]) =>
      writeFileSync(join(dir, 'squeue.out'), jobs.map((j) => `${j.join('|')}\n`).join('')),
    accounting: (lines: string[]) => writeFileSync(join(dir, 'sacct.out'), lines.join('\n')),
    calls,
    /** `squeue` calls for every job (not a look-up of one name). */
    polls: () => calls('squeue').filter((c) => !c.includes('--name=')),
  };
}

let made = 0;
function setUp(options: Partial<SlurmExecutorOptions> = {}) {
  const fake = fakeSlurm();
  const workRoot = join(root, `work-${made++}`);
  const make = () =>
    new SlurmExecutor({
      workRoot,
      programs: fake.programs,
      graceSeconds: 1,
      pollMs: 50,
      exitGraceMs: 300,
      commandTimeoutMs: 2000,
      ...options,
    });
  return { fake, ex: make(), make, workRoot };
}

const nameOf = (h: JobHandle) => slurmJobName(h.jobId, h.attempt, h.ref);
const idOf = (h: JobHandle) => readFileSync(`${h.ref}.slurm`, 'utf8').trim();
/** What a job's wrapper writes when the command has ended. */
function exited(h: JobHandle, line: string): void {
  writeFileSync(`${h.ref}.pid`, `4242 100 64:: v2:wrapper\n${line}\n`);
}

describe('slurm executor faults (stand-in SLURM commands)', () => {
  it('one squeue call answers the polls of every job', async () => {
    const { fake, ex } = setUp({ pollMs: 60_000 });
    const handles = await Promise.all(
      Array.from({ length: 10 }, () => ex.submit(spec('process.exit(0)'))),
    );
    fake.queue(handles.map((h) => [idOf(h), 'RUNNING', 'None', nameOf(h)]));
    expect((await Promise.all(handles.map((h) => ex.poll(h)))).map((s) => s.state)).toEqual(
      Array(10).fill('RUNNING'),
    );
    await ex.settledQueue();
    for (let round = 0; round < 3; round++)
      for (const h of handles) expect((await ex.poll(h)).state).toBe('RUNNING');
    expect(fake.polls()).toHaveLength(1);
    expect(fake.polls()[0]).toMatch(/--me --noheader --states=all --format=%i\|%T\|%r\|%j/);
    // An exit line ends a job without asking SLURM.
    exited(handles[0], 'exit 0 cpu=0.010');
    expect(await ex.poll(handles[0])).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
    expect(fake.polls()).toHaveLength(1);
  });

  it('squeue failing: jobs stay RUNNING (an exit line still ends one), then fail naming the error', async () => {
    const { fake, ex } = setUp({ schedulerLostMs: 1000 });
    fake.mode('squeue', 'fail');
    const [a, b] = [await ex.submit(spec('')), await ex.submit(spec(''))];
    expect((await ex.poll(a)).state).toBe('RUNNING');
    await ex.settledQueue();
    expect(ex.schedulerProblem).toMatch(/squeue failed: .*Unable to contact slurm controller/);
    exited(a, 'exit 3 cpu=0.010');
    expect(await ex.poll(a)).toMatchObject({ state: 'FAILED', exitCode: 3 });
    expect((await ex.poll(b)).state).toBe('RUNNING');
    expect(await waitDone(ex, b)).toMatchObject({
      state: 'FAILED',
      reason: expect.stringMatching(
        new RegExp(
          `^Host lost: SLURM has not answered for [\\d.]+ s \\(squeue failed: .*Unable to contact slurm controller.*\\); the state of SLURM job ${idOf(b)} is unknown`,
        ),
      ),
    });
    // It was cancelled, should it still run.
    await waitUntil('scancel', () => fake.calls('scancel').includes(idOf(b)));
    // Decided once: a later poll (another process's too) says the same.
    expect(await ex.poll(b)).toEqual(await setUp().make().poll(b));
  });

  it('squeue hanging holds up no poll: the call is ended at the command timeout', async () => {
    const { fake, ex } = setUp({ commandTimeoutMs: 500 });
    fake.mode('squeue', 'hang');
    const h = await ex.submit(spec(''));
    expect((await ex.poll(h)).state).toBe('RUNNING');
    let answered = false;
    const call = ex.settledQueue().then(() => (answered = true));
    // The poll answers from what is known while squeue has not.
    expect((await ex.poll(h)).state).toBe('RUNNING');
    expect(answered).toBe(false);
    await call;
    expect(ex.schedulerProblem).toBe('squeue did not answer within 0.5 s');
  });

  it('a job gone from squeue before its exit line appeared: decided after the grace period', async () => {
    const { fake, ex } = setUp();
    fake.mode('sacct', 'fail');
    const h = await ex.submit(spec(''));
    fake.queue([]);
    const s = await waitDone(ex, h);
    expect(s).toEqual({
      state: 'FAILED',
      reason: `Host lost: SLURM job ${idOf(h)} is gone from squeue, and the exit line of SLURM job ${idOf(h)} did not appear in ${h.ref}.pid within 0.3 s of its end (is the work root on a file system the nodes share?)`,
    });
  });

  it('an exit line that shows within the grace period is the answer', async () => {
    const { fake, ex } = setUp({ exitGraceMs: 60_000 });
    const h = await ex.submit(spec(''));
    fake.queue([[idOf(h), 'COMPLETED', 'None', nameOf(h)]]);
    expect((await ex.poll(h)).state).toBe('RUNNING');
    await ex.settledQueue();
    expect((await ex.poll(h)).state).toBe('RUNNING');
    exited(h, 'exit 0 cpu=0.010');
    expect(await ex.poll(h)).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
  });

  it.each([
    ['OUT_OF_MEMORY', 'OutOfMemory', { exitCode: 137, reason: OOM_REASON }],
    ['TIMEOUT', 'TimeLimit', { reason: TIMEOUT_REASON }],
    ['NODE_FAIL', 'None', { reason: expect.stringMatching(/^Host terminated: .*NODE_FAIL/) }],
    ['PREEMPTED', 'None', { reason: expect.stringMatching(/^Host terminated: .*preempted/) }],
    ['CANCELLED', 'None', { reason: expect.stringMatching(/^Terminated: .*was cancelled/) }],
    [
      'COMPLETED',
      'None',
      { reason: expect.stringMatching(/ended as COMPLETED, but the exit line .* did not appear/) },
    ],
  ])(
    'ended as %s without an exit line: FAILED, as AWS Batch says it',
    async (state, why, expected) => {
      const { fake, ex } = setUp();
      const h = await ex.submit(spec(''));
      fake.queue([[idOf(h), state, why, nameOf(h)]]);
      expect(await waitDone(ex, h)).toMatchObject({ state: 'FAILED', ...expected });
    },
  );

  it('gone from squeue, its end found in accounting (sacct) where the cluster keeps it', async () => {
    const { fake, ex } = setUp();
    const h = await ex.submit(spec(''));
    fake.queue([]);
    fake.accounting([
      `${idOf(h)}|OUT_OF_MEMORY|0:125|${nameOf(h)}`,
      `${idOf(h)}.batch|OUT_OF_MEMORY|0:125|batch`,
    ]);
    expect(await waitDone(ex, h)).toMatchObject({
      state: 'FAILED',
      exitCode: 137,
      reason: OOM_REASON,
    });
  });

  it('a job id SLURM now gives another job (a cluster that started over) is not the attempt’s', async () => {
    const { fake, ex } = setUp();
    fake.mode('sacct', 'fail');
    const h = await ex.submit(spec(''));
    fake.queue([[idOf(h), 'RUNNING', 'None', 'someone-else']]);
    expect(await waitDone(ex, h)).toMatchObject({
      state: 'FAILED',
      reason: expect.stringMatching(/^Host lost: SLURM job \d+ is gone from squeue/),
    });
  });

  it('a job SLURM will never start (PENDING for PartitionConfig) is cancelled and fails', async () => {
    const { fake, ex } = setUp();
    const h = await ex.submit(spec('', { vcpus: 512 }));
    fake.queue([[idOf(h), 'PENDING', 'PartitionConfig', nameOf(h)]]);
    expect(await waitDone(ex, h)).toMatchObject({
      state: 'FAILED',
      reason: expect.stringMatching(
        /^CannotStartContainerError: SLURM job \d+ can never start as asked \(PartitionConfig\)/,
      ),
    });
    await waitUntil('scancel', () => fake.calls('scancel').includes(idOf(h)));
  });

  it('sbatch refused: the submit fails with SLURM’s reason and the options it was given', async () => {
    const { fake, ex } = setUp({ settings: { partition: 'short', account: 'nolab' } });
    fake.mode('sbatch', 'fail');
    const job = spec('');
    await expect(ex.submit(job)).rejects.toThrow(
      new RegExp(
        `^job ${job.jobId} \\(1 vCPU, 512 MiB, partition short\\): sbatch refused it: Batch job submission failed: Invalid account or account/partition combination specified \\(sbatch --parsable .*--partition=short --account=nolab\\)$`,
      ),
    );
  });

  it('sbatch hanging: a job of the attempt’s name is kept; without one the submit fails saying so', async () => {
    const { fake, ex, workRoot } = setUp({ commandTimeoutMs: 300 });
    fake.mode('sbatch', 'hang');
    await expect(ex.submit(spec(''))).rejects.toThrow(
      /^job .*: sbatch did not answer within 0\.3 s$/,
    );
    // SLURM took the next one after all: squeue --name finds it.
    const job = spec('');
    const ref = join(workRoot, `${job.jobId}.1`);
    fake.queue([['2002', 'PENDING', 'Priority', slurmJobName(job.jobId, 1, ref)]]);
    const h = await ex.submit(job);
    expect(h.ref).toBe(ref);
    expect(idOf(h)).toBe('2002');
  });

  it('killed between sbatch and recording the job id: a restarted Strand finds the job by name', async () => {
    const { fake, ex, make } = setUp();
    const job = spec('');
    const h = await ex.submit(job);
    const id = idOf(h);
    // As if the process had died before writing the id.
    rmSync(`${h.ref}.slurm`);
    fake.queue([[id, 'RUNNING', 'None', nameOf(h)]]);
    const again = await make().submit(job);
    expect(again).toEqual(h);
    expect(idOf(h)).toBe(id);
    expect(fake.calls('sbatch')).toHaveLength(1);
  });

  it('kill: a pending job is cancelled, a running one sent SIGTERM; the reason is the end', async () => {
    const { fake, ex } = setUp({ exitGraceMs: 60_000 });
    const h = await ex.submit(spec(''));
    const id = idOf(h);
    await ex.kill(h, 'Terminated by user');
    expect(fake.calls('scancel')).toEqual([`--state=PENDING ${id}`, `--batch --signal=TERM ${id}`]);
    // Cancelled before its wrapper claimed the attempt: nothing ran, nothing to wait for.
    fake.queue([[id, 'CANCELLED', 'None', nameOf(h)]]);
    expect(await waitDone(ex, h, 5000)).toEqual({ state: 'FAILED', reason: 'Terminated by user' });
  });
});

describe.runIf(nativeLauncher())('the launcher a SLURM job runs (strand-launcher run)', () => {
  it('runs argv with exactly its environment and the SLURM variables, records the exit, runs once', () => {
    const dir = mkdtempSync(join(root, 'run-'));
    const ref = join(dir, 'job.1');
    mkdirSync(dir, { recursive: true });
    const request = nativeRequest('0', {
      pidPath: `${ref}.pid`,
      stopPath: `${ref}.stop`,
      dirs: [ref, join(ref, 'out')],
      logPath: `${ref}.log`,
      limits: '256::1',
      command: [
        'sh',
        '-c',
        'echo "argv=$1 x=$X home=${HOME:-none} job=$SLURM_JOB_ID"; pwd; exit 4',
        'sh',
        '$(reboot); x',
      ],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', X: 'a b' },
      readOnly: [],
    })!;
    writeFileSync(`${ref}.request`, request);
    const run = () =>
      spawnSync(nativeLauncher()!, ['run', `${ref}.request`], {
        env: { HOME: '/root', SLURM_JOB_ID: '77', PATH: process.env.PATH },
      });
    expect(run().status).toBe(4);
    expect(readFileSync(`${ref}.log`, 'utf8')).toBe(
      `argv=$(reboot); x x=a b home=none job=77\n${ref}\n`,
    );
    expect(readFileSync(`${ref}.pid`, 'utf8')).toMatch(
      /^\d+ \d+ 256::1 v2:wrapper\nexit 4 cpu=[\d.]+ mem=[\d.]+\n$/,
    );
    expect(existsSync(join(ref, 'out'))).toBe(true);
    // A second job of the same attempt runs nothing.
    expect(run().status).toBe(0);
    expect(readFileSync(`${ref}.log`, 'utf8').split('\n')).toHaveLength(3);
  });
});

describe('strand run --executor slurm where SLURM does not answer', () => {
  it('exits 2 before any job, saying why', async () => {
    const p = inlinePipeline([
      'name: nowhere',
      'samples: [ { id: A } ]',
      'steps:',
      '  one: { image: debian:bookworm-slim, command: [true] }',
    ]);
    // No SLURM command on PATH (node is run by its absolute path).
    const r = await spawnStrand(['run', p.file, '--home', p.home, '--executor', 'slurm'], {
      PATH: '/nonexistent',
    }).done;
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /executor slurm \(from --executor\): SLURM does not answer here \(sinfo is not on PATH\); Strand must run where sbatch works/,
    );
  });
});
