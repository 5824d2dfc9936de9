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
import { afterAll, describe, expect, it } from 'vitest';
import {
  parseExitLine,
  type JobAttemptSpec,
  type JobHandle,
} from '../../src/executors/executor.js';
import {
  LocalExecutor,
  nativeLauncher,
  workDirOfLog,
  type LocalExecutorOptions,
} from '../../src/executors/local/local-executor.js';
import {
  executorConformance,
  IGNORES_TERM,
  ignoringTerm,
  killReported,
  reportedPids,
  running,
  spec,
  starter,
  waitDone,
} from './conformance.js';

const root = mkdtempSync(join(tmpdir(), 'strand-local-exec-'));
const make = () => new LocalExecutor({ workRoot: join(root, 'work'), graceSeconds: 1 });

executorConformance('local', make, () => root, { contained: true });
executorConformance(
  'local, Node launcher and sh wrapper',
  () => new LocalExecutor({ workRoot: join(root, 'work'), graceSeconds: 1, launcher: 'node' }),
  () => root,
);

/**
 * Runs `body` in another process (a Strand engine of its own) with `ex`, a LocalExecutor on the
 * same work root made with `options`; once `body` has written its answer (a JSON line), kills
 * that process with SIGKILL, before any timer of its own can fire, and returns the answer.
 */
async function inEngineThenKill<T>(
  name: string,
  body: string,
  options: Partial<LocalExecutorOptions> = {},
): Promise<T> {
  const script = join(root, `${name}.mts`);
  writeFileSync(
    script,
    `import { LocalExecutor } from ${JSON.stringify(join(process.cwd(), 'src/executors/local/local-executor.ts'))};
     const ex = new LocalExecutor(${JSON.stringify({ workRoot: join(root, 'work'), ...options })});
     const answer = await (async () => { ${body} })();
     process.stdout.write(JSON.stringify(answer ?? null) + '\\n');
     setInterval(() => {}, 1000);`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const answer = await new Promise<string>((resolve) =>
    child.stdout.on('data', (d: Buffer) => resolve(d.toString())),
  );
  child.kill('SIGKILL');
  return JSON.parse(answer) as T;
}

/**
 * Submits `job` from another process, kills that process with SIGKILL once the job has started,
 * and returns the job's handle.
 */
function submitThenKillSubmitter(
  job: JobAttemptSpec,
  name: string,
  options: Partial<LocalExecutorOptions> = {},
): Promise<JobHandle> {
  return inEngineThenKill<JobHandle>(name, `return ex.submit(${JSON.stringify(job)});`, options);
}

/** Waits (up to `timeoutMs`) for the exit line of an attempt's pid file, read by no executor. */
async function recordedExit(handle: JobHandle, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = existsSync(`${handle.ref}.pid`) ? readFileSync(`${handle.ref}.pid`, 'utf8') : '';
    const exit = text.split('\n').find((l, i, all) => l.startsWith('exit ') && i < all.length - 1);
    if (exit) return exit;
    if (Date.now() > deadline)
      throw new Error(`${handle.ref}.pid: no exit recorded after ${timeoutMs} ms: ${text}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('local executor', () => {
  afterAll(killReported);

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
    expect(readFileSync(`${h.ref}.pid`, 'utf8')).toMatch(
      /^\d+ \d+ \d+::\d+ v2:wrapper\n(exit 0 cpu=\d+\.\d{3} mem=\d+\.\d\n)?$/,
    );
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

  it.each<[string, Partial<LocalExecutorOptions>]>([
    ['the native wrapper', {}],
    ['the sh wrapper (Strand measures)', { launcher: 'node' }],
  ])(
    'the peak memory measured before a restart is kept by the engine after it (%s)',
    async (_what, options) => {
      const released = join(root, `released-${options.launcher ?? 'native'}`);
      const go = `${released}.go`;
      // A child holds 200 MiB for 1.5 s and ends; the job then waits for the test, and goes on
      // for a second using little, which the engine after the restart measures.
      const job = spec(
        `require('node:child_process').spawnSync(process.execPath, ['-e',
           'const b = Buffer.alloc(200 * 1024 * 1024, 1); setTimeout(() => b.length, 1500)']);
         require('node:fs').writeFileSync(${JSON.stringify(released)}, '');
         const t = setInterval(() => {
           if (!require('node:fs').existsSync(${JSON.stringify(go)})) return;
           clearInterval(t);
           setTimeout(() => process.exit(0), 1000);
         }, 20);`,
        { memoryMiB: 1024 },
      );
      // The engine that started it sees the child's peak, and is killed once the child has ended.
      const handle = await inEngineThenKill<JobHandle>(
        `peak-${options.launcher ?? 'native'}`,
        `const h = await ex.submit(${JSON.stringify(job)});
         const fs = await import('node:fs');
         while (!fs.existsSync(${JSON.stringify(released)})) await new Promise((r) => setTimeout(r, 20));
         return h;`,
        options,
      );
      const ex = new LocalExecutor({ workRoot: join(root, 'work'), graceSeconds: 1, ...options });
      expect((await ex.reattach(handle)).state).toBe('RUNNING');
      writeFileSync(go, '');
      const s = await waitDone(ex, handle);
      expect(s).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
      if (s.state === 'RUNNING') return;
      expect(s.peakMemoryMiB).toBeGreaterThanOrEqual(200);
      // Two Node processes besides the 200 MiB; not the 1024 MiB it was allowed.
      expect(s.peakMemoryMiB).toBeLessThan(512);
      ex.close();
    },
  );

  it('a terminate escalates to SIGKILL and the exit is recorded while no Strand process is alive', async () => {
    const pidsPath = join(root, 'orphan-terminate.pids');
    const job = spec(ignoringTerm(pidsPath));
    // Started by an engine that was then killed (as after SIGINT of strand run, or a crash).
    const handle = await submitThenKillSubmitter(job, 'starter-terminate', { graceSeconds: 1 });
    const pids = await reportedPids(pidsPath, 3);
    // Another engine (strand resume, say) terminates it, and is killed in its turn before the
    // grace period is over: nothing of Strand is left to send the SIGKILL.
    await inEngineThenKill(
      'terminator',
      `await ex.kill(${JSON.stringify(handle)}, 'Terminated by user');`,
    );
    expect(await recordedExit(handle)).toMatch(/^exit 137 terminated cpu=\d+\.\d{3} mem=\d+\.\d$/);
    expect(pids.filter(running)).toEqual([]);
    expect(await make().poll(handle)).toMatchObject({
      state: 'FAILED',
      exitCode: 137,
      reason: 'Terminated by user',
    });
  });

  it('the timeout is enforced while no Strand process is alive', async () => {
    const pidsPath = join(root, 'orphan-timeout.pids');
    const job = spec(
      starter(
        pidsPath,
        `process.on('SIGTERM', () => {}); start(...${JSON.stringify(IGNORES_TERM)}, true);`,
        'setInterval(() => {}, 1000)',
      ),
      { timeoutSeconds: 1 },
    );
    const handle = await submitThenKillSubmitter(job, 'starter-timeout', { graceSeconds: 1 });
    const pids = await reportedPids(pidsPath, 2);
    expect(await recordedExit(handle)).toMatch(/^exit 137 timeout cpu=\d+\.\d{3} mem=\d+\.\d$/);
    expect(pids.filter(running)).toEqual([]);
    expect(await make().poll(handle)).toMatchObject({
      state: 'FAILED',
      exitCode: 137,
      reason: 'Job attempt duration exceeded timeout',
    });
  });

  it.runIf(process.getuid?.() === 0)(
    'run as root, a job cannot change a read-only input (a read-only mount); its own directory stays writable',
    async () => {
      const ex = make();
      const input = join(root, 'mounted-input.txt');
      const beside = join(root, 'beside-input.txt');
      writeFileSync(input, 'published\n');
      writeFileSync(beside, 'published\n');
      // The whole scratch directory is read-only too (as a store root is), and the attempt's
      // working directory lies under it.
      const h = await ex.submit(
        spec(
          `const fs = require('node:fs');
           console.log('uid', process.getuid());
           fs.writeFileSync('own.txt', 'mine');
           for (const f of ${JSON.stringify([input, beside])})
             try { fs.appendFileSync(f, 'tampered\\n'); console.log('appended', f); }
             catch (e) { console.log('refused', f, e.code); }`,
          { readOnlyPaths: [root, input] },
        ),
      );
      expect(await waitDone(ex, h)).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
      const log = readFileSync(h.logPath, 'utf8');
      expect(log).toContain('uid 0');
      expect(log).toContain(`refused ${input} EROFS`);
      expect(log).toContain(`refused ${beside} EROFS`);
      expect(readFileSync(input, 'utf8')).toBe('published\n');
      expect(readFileSync(beside, 'utf8')).toBe('published\n');
      expect(readFileSync(join(h.ref, 'own.txt'), 'utf8')).toBe('mine');
      ex.close();
    },
  );

  it('without read-only mounts, a changed input fails the attempt (exit 0), naming the file, for a re-attaching engine too', async () => {
    const ex = new LocalExecutor({
      workRoot: join(root, 'work'),
      graceSeconds: 1,
      readOnlyMounts: false,
    });
    const input = join(root, 'detected-input.txt');
    writeFileSync(input, 'published\n');
    const h = await ex.submit(
      spec(`require('node:fs').appendFileSync(${JSON.stringify(input)}, 'tampered\\n')`, {
        readOnlyPaths: [input],
      }),
    );
    const failed = {
      state: 'FAILED',
      exitCode: 0,
      reason: `InputChangedError: read-only input ${input} changed while the job ran (size 10 → 19 bytes, modification time changed)`,
    };
    expect(await waitDone(ex, h)).toMatchObject(failed);
    expect(readFileSync(input, 'utf8')).toBe('published\ntampered\n');
    // What the input was is in a file of the attempt: another engine reaches the same verdict.
    expect(await make().poll(h)).toMatchObject(failed);
    ex.close();
  });

  it('a running attempt of an earlier build (pid file without a format) is terminated by the engine', async () => {
    const ex = make();
    const job = spec('0');
    const ref = join(root, 'work', `${job.jobId}.1`);
    mkdirSync(ref, { recursive: true });
    // Stands in for that build's wrapper: in a session of its own, it records the exit itself.
    const wrapper = spawn(
      'sh',
      ['-c', 'sleep 300; printf "exit %s\\n" "$?" >> "$0"', `${ref}.pid`],
      { detached: true, stdio: 'ignore' },
    );
    const stat = readFileSync(`/proc/${wrapper.pid}/stat`, 'utf8');
    const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    writeFileSync(`${ref}.pid`, `${wrapper.pid} ${startTime} 64:\n`);
    const h = { jobId: job.jobId, attempt: 1, ref, logPath: `${ref}.log` };
    expect(await ex.poll(h)).toEqual({ state: 'RUNNING' });
    // Its command (sleep) has started.
    const children = `/proc/${wrapper.pid}/task/${wrapper.pid}/children`;
    for (let waited = 0; readFileSync(children, 'utf8').trim() === ''; waited += 10) {
      if (waited > 10_000) throw new Error(`sh ${wrapper.pid} started no sleep`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await ex.kill(h, 'Terminated by user');
    expect(await waitDone(ex, h)).toMatchObject({
      state: 'FAILED',
      exitCode: 143,
      reason: 'Terminated by user',
    });
    ex.close();
  });
});

describe('parseExitLine', () => {
  it.each([
    ['0', { code: '0' }],
    ['0 cpu=1.250', { code: '0', cpuSeconds: 1.25 }],
    ['137 oom cpu=0.010', { code: '137', cause: 'oom', cpuSeconds: 0.01 }],
    ['143 terminated', { code: '143', cause: 'terminated' }],
    ['1 cpu=nonsense', { code: '1' }],
    ['0 cpu=2.500 mem=210.3', { code: '0', cpuSeconds: 2.5, peakMemoryMiB: 210.3 }],
    [
      '137 oom cpu=0.010 mem=128.0',
      { code: '137', cause: 'oom', cpuSeconds: 0.01, peakMemoryMiB: 128 },
    ],
    ['0 mem=-1 later=7', { code: '0' }],
  ])('%s', (text, want) => {
    expect(parseExitLine(text)).toEqual(want);
  });
});
