import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JobAttemptSpec, JobHandle } from '../../src/executors/executor.js';
import {
  LocalExecutor,
  nativeLauncher,
  workDirOfLog,
} from '../../src/executors/local/local-executor.js';
import { executorConformance, spec, waitDone } from './conformance.js';

const root = mkdtempSync(join(tmpdir(), 'strand-local-exec-'));
const make = () => new LocalExecutor({ workRoot: join(root, 'work'), graceSeconds: 1 });

executorConformance('local', make, () => root);
executorConformance(
  'local, Node launcher and sh wrapper',
  () => new LocalExecutor({ workRoot: join(root, 'work'), graceSeconds: 1, launcher: 'node' }),
  () => root,
);

/**
 * Submits `job` from another process (a Strand engine of its own), kills that process with
 * SIGKILL once the job has started, and returns the job's handle.
 */
async function submitThenKillSubmitter(job: JobAttemptSpec, name: string): Promise<JobHandle> {
  const script = join(root, `${name}.mts`);
  writeFileSync(
    script,
    `import { LocalExecutor } from ${JSON.stringify(join(process.cwd(), 'src/executors/local/local-executor.ts'))};
     const ex = new LocalExecutor({ workRoot: ${JSON.stringify(join(root, 'work'))} });
     const h = await ex.submit(${JSON.stringify(job)});
     process.stdout.write(JSON.stringify(h) + '\\n');
     setInterval(() => {}, 1000);`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const handle = await new Promise<string>((resolve) =>
    child.stdout.on('data', (d: Buffer) => resolve(d.toString())),
  );
  child.kill('SIGKILL');
  return JSON.parse(handle) as JobHandle;
}

describe('local executor', () => {
  it('starts attempts through the native launcher built by npm run build, or the Node one if asked', async () => {
    // The build (part of npm ci) compiles it; a machine without a C compiler uses the Node one.
    expect(nativeLauncher()).toBeDefined();
    for (const [launcher, launcherExe, wrapperExe] of [
      ['native', nativeLauncher(), nativeLauncher()],
      ['node', realpathSync(process.execPath), realpathSync('/bin/sh')],
    ] as const) {
      const ex = new LocalExecutor({ workRoot: join(root, 'work'), launcher });
      const h = await ex.submit(spec('setTimeout(() => {}, 400)'));
      let pid: number | undefined;
      for (let i = 0; i < 100 && pid === undefined; i++) {
        const text = existsSync(`${h.ref}.pid`) ? readFileSync(`${h.ref}.pid`, 'utf8') : '';
        if (text.includes('\n')) pid = Number(text.split(' ')[0]);
        else await new Promise((r) => setTimeout(r, 10));
      }
      expect(realpathSync(`/proc/${pid}/exe`)).toBe(wrapperExe);
      expect(ex.launcherPids.length).toBeGreaterThan(0);
      for (const l of ex.launcherPids) expect(realpathSync(`/proc/${l}/exe`)).toBe(launcherExe);
      expect(await waitDone(ex, h)).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
      ex.close();
    }
  });

  it('an argument or variable with a NUL byte is refused by either launcher, nothing started', async () => {
    for (const launcher of ['native', 'node'] as const) {
      const ex = new LocalExecutor({ workRoot: join(root, 'work'), launcher });
      const arg = spec('', { command: ['echo', 'a\0b'] });
      await expect(ex.submit(arg)).rejects.toThrow(/null bytes|NUL byte/);
      const env = spec('', { command: ['true'], environment: { PATH: '/usr/bin:/bin', X: '\0' } });
      await expect(ex.submit(env)).rejects.toThrow(/null bytes|NUL byte/);
      for (const s of [arg, env])
        expect(existsSync(join(root, 'work', `${s.jobId}.1.pid`))).toBe(false);
      ex.close();
    }
  });

  it('a job keeps running when the process that started it is killed with SIGKILL', async () => {
    const marker = join(root, 'survived.txt');
    const job = spec(
      `setTimeout(() => require("fs").writeFileSync(${JSON.stringify(marker)}, "done"), 700)`,
    );
    const handle = await submitThenKillSubmitter(job, 'starter');
    const s = await waitDone(make(), handle);
    expect(s).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
    expect(readFileSync(marker, 'utf8')).toBe('done');
  });

  it('jobs outlive a killed launcher, which is started again for the next job', async () => {
    const ex = make();
    const h = await ex.submit(spec('setTimeout(() => console.log("late"), 300)'));
    const first = ex.launcherPids;
    expect(first.length).toBeGreaterThan(0);
    for (const pid of first) process.kill(pid, 'SIGKILL');
    expect(await waitDone(ex, h)).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
    expect(readFileSync(h.logPath, 'utf8')).toContain('late');
    const h2 = await ex.submit(spec('console.log("again")'));
    expect(ex.launcherPids.length).toBeGreaterThan(0);
    for (const pid of ex.launcherPids) expect(first).not.toContain(pid);
    expect(await waitDone(ex, h2)).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
    ex.close();
  });

  it("a command's first word is a program on PATH, never a built-in or a function of the wrapper", async () => {
    const ex = make();
    // dash's built-in echo has no -e (it prints it); coreutils' echo takes it as an option.
    const echo = await ex.submit(spec('', { command: ['echo', '-e', 'a\\tb'] }));
    expect(await waitDone(ex, echo)).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
    expect(readFileSync(echo.logPath, 'utf8')).toBe('a\tb\n');
    // `record` is a function of the wrapper; as a command it is looked up on PATH and not found.
    const fn = await ex.submit(spec('', { command: ['record'] }));
    expect(await waitDone(ex, fn)).toMatchObject({ state: 'FAILED', exitCode: 127 });
    ex.close();
  });

  it('the image field is noted in the log, not used', async () => {
    const ex = make();
    const h = await ex.submit(spec('console.log("ok")', { image: 'strand/fastp:0.23' }));
    await waitDone(ex, h);
    expect(readFileSync(h.logPath, 'utf8')).toMatch(
      /image strand\/fastp:0\.23 is not used[\s\S]*ok/,
    );
    // Three entries per attempt: its working directory, and its log and pid file beside it.
    expect(existsSync(h.ref)).toBe(true);
    expect(h.logPath).toBe(`${h.ref}.log`);
    expect(readFileSync(`${h.ref}.pid`, 'utf8')).toMatch(/^\d+ \d+ \d+:\n(exit 0\n)?$/);
  });

  it('attempts an earlier Strand started (a directory per attempt) are found where they are', async () => {
    const ex = make();
    // Layout and pid file of the previous release: {job}/attempt-{n}/{pid,log.txt,work/}.
    const job = spec('process.exit(0)');
    const old = join(root, 'work', job.jobId, 'attempt-1');
    mkdirSync(join(old, 'work', 'out'), { recursive: true });
    writeFileSync(join(old, 'log.txt'), 'from before\n');
    writeFileSync(join(old, 'pid'), '999999 1 64:\nexit 4\n');
    // Submitted again (a restart before the handle was saved): re-attached, not run again.
    const h = await ex.submit(job);
    expect(h).toMatchObject({ ref: old, logPath: join(old, 'log.txt') });
    expect(await ex.poll(h)).toMatchObject({ state: 'FAILED', exitCode: 4 });
    expect(existsSync(join(root, 'work', `${job.jobId}.1.pid`))).toBe(false);
    expect(workDirOfLog(h.logPath)).toBe(join(old, 'work'));
    // Older still: the exit code in a file of its own.
    const older = join(root, 'work', 'older-job', 'attempt-2');
    mkdirSync(older, { recursive: true });
    writeFileSync(join(older, 'pid'), '999999 1\n');
    writeFileSync(join(older, 'exit.code'), '3\n');
    const state = await ex.poll({ jobId: 'older-job', attempt: 2, ref: older, logPath: '' });
    expect(state).toMatchObject({ state: 'FAILED', exitCode: 3 });
    // New attempts: the log and pid file beside the working directory.
    const fresh = await ex.submit(spec('process.exit(0)'));
    expect(workDirOfLog(fresh.logPath)).toBe(fresh.ref);
    expect(await waitDone(ex, fresh)).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
    ex.close();
  });

  it('a job whose launch is slow is not taken for lost until the start grace has passed', async () => {
    const ex = new LocalExecutor({ workRoot: join(root, 'work'), startGraceMs: 300 });
    const job = spec('console.log("late start")');
    // Starts every launcher, so their pids are known.
    for (let i = 0; i < 2; i++) await waitDone(ex, await ex.submit(spec('0')));
    const launchers = ex.launcherPids;
    expect(launchers).toHaveLength(Math.min(2, availableParallelism()));
    // The launch is asked for but nothing starts yet.
    for (const pid of launchers) process.kill(pid, 'SIGSTOP');
    const submitted = ex.submit(job);
    const handle = {
      jobId: job.jobId,
      attempt: 1,
      ref: join(root, 'work', `${job.jobId}.1`),
      logPath: join(root, 'work', `${job.jobId}.1.log`),
    };
    try {
      expect(await ex.poll(handle)).toEqual({ state: 'RUNNING' });
      await new Promise((r) => setTimeout(r, 400)); // now the launch itself is older than the grace
      expect(await ex.poll(handle)).toMatchObject({
        state: 'FAILED',
        reason: 'Host lost: the job process never started',
      });
    } finally {
      for (const pid of launchers) process.kill(pid, 'SIGCONT');
    }
    const h = await submitted;
    expect(await waitDone(ex, h)).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
    ex.close();
  });

  it('a restarted engine enforces the limits the wrapper recorded (memory)', async () => {
    // Starts using memory only after its starter is gone, so only the new executor can stop it.
    const job = spec(
      'setTimeout(() => { const a = []; setInterval(() => a.push(Buffer.alloc(32 * 1024 * 1024, 1)), 20); }, 800)',
      { memoryMiB: 128 },
    );
    const handle = await submitThenKillSubmitter(job, 'starter-oom');
    const ex = make();
    expect((await ex.reattach(handle)).state).toBe('RUNNING');
    expect(await waitDone(ex, handle)).toMatchObject({
      state: 'FAILED',
      exitCode: 137,
      reason: 'OutOfMemoryError: Container killed due to memory usage',
    });
    ex.close();
  });
});
