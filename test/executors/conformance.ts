/**
 * The behaviour every executor backend must show (local, container, SLURM; AWS Batch against a
 * fake of its API, without the tests of what only a real machine enforces). Commands are small
 * `node -e` programs so they run wherever Node does; the processes they leave behind are looked
 * up in this machine's /proc.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type {
  AttemptState,
  Executor,
  JobAttemptSpec,
  JobHandle,
} from '../../src/executors/executor.js';

export async function waitDone(
  executor: Executor,
  handle: JobHandle,
  timeoutMs = 30_000,
): Promise<AttemptState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await executor.poll(handle);
    if (s.state !== 'RUNNING') return s;
    if (Date.now() > deadline)
      throw new Error(`${handle.jobId} still RUNNING after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let counter = 0;
export function spec(script: string, extra: Partial<JobAttemptSpec> = {}): JobAttemptSpec {
  return {
    jobId: `job-${process.pid}-${Date.now()}-${counter++}`,
    attempt: 1,
    command: [process.execPath, '-e', script],
    environment: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    vcpus: 1,
    memoryMiB: 512,
    ...extra,
  };
}

/** Whether a process is running (a zombie is not: it has ended). */
export function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** Every pid a test's job reported: whatever still runs after the tests is ended by its pid. */
const reported = new Set<number>();

/** Ends (SIGKILL) every reported process that still runs, so that no failed test leaves one. */
export function killReported(): void {
  for (const pid of reported) if (running(pid)) process.kill(pid, 'SIGKILL');
}

/** Waits (up to `timeoutMs`) for a job to write the pids of the processes it started, one a line. */
export async function reportedPids(
  path: string,
  count: number,
  timeoutMs = 20_000,
): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
    const pids = text
      .split('\n')
      .filter((l) => /^\d+$/.test(l))
      .map(Number);
    for (const pid of pids) reported.add(pid);
    if (pids.length >= count) return pids;
    if (Date.now() > deadline)
      throw new Error(`${path}: ${pids.length} of ${count} pids after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A `node -e` program that starts processes, writes its own pid and theirs to `pidsPath` (one a
 * line, the file complete once it exists) and then does `then`. `start(cmd, args, detached)` starts one
 * (detached: in a session of its own, as setsid does) and records its pid.
 */
export function starter(pidsPath: string, body: string, then: string): string {
  return `const { spawn } = require('node:child_process');
const fs = require('node:fs');
const pids = [process.pid];
const start = (cmd, args, detached) => {
  const c = spawn(cmd, args, { detached, stdio: 'ignore' });
  c.unref();
  pids.push(c.pid);
  return c;
};
(async () => {
  ${body}
  fs.writeFileSync(${JSON.stringify(pidsPath)} + '.tmp', pids.join('\\n') + '\\n');
  fs.renameSync(${JSON.stringify(pidsPath)} + '.tmp', ${JSON.stringify(pidsPath)});
  ${then}
})();`;
}

/** A shell that ignores SIGTERM (the ignored disposition passes to the program it becomes). */
export const IGNORES_TERM = ['sh', ['-c', 'trap "" TERM; exec sleep 300']];

/** A starter that ignores SIGTERM, with two children that do too (one of them setsid). */
export function ignoringTerm(pidsPath: string): string {
  return starter(
    pidsPath,
    `process.on('SIGTERM', () => {});
     start(...${JSON.stringify(IGNORES_TERM)}, false);
     start(...${JSON.stringify(IGNORES_TERM)}, true);`,
    'setInterval(() => {}, 1000)',
  );
}

export interface ConformanceOptions {
  /**
   * The backend contains every process of an attempt, even one that left the attempt's session
   * and lost its parent (a double fork): a cgroup, a container, a subreaper.
   */
  contained?: boolean;
  /**
   * The pids of this machine for the pids a running attempt reported, when its processes see
   * other pids (a container's pid namespace).
   */
  hostPids?: (handle: JobHandle, pids: number[]) => Promise<number[]>;
  /** The attempt's log, for a backend whose log is not a file here (default: JobHandle.logPath). */
  readLog?: (executor: Executor, handle: JobHandle) => Promise<string>;
  /**
   * The backend enforces memory limits, timeouts and terminates on this machine's processes
   * (default true); a fake of a remote service does not, and skips those tests.
   */
  limits?: boolean;
  /** The backend keeps an attempt from changing its read-only inputs (default true). */
  readOnlyInputs?: boolean;
}

/** Runs the shared executor behaviour suite against a backend. */
export function executorConformance(
  name: string,
  make: () => Executor,
  scratch: () => string,
  options: ConformanceOptions = {},
): void {
  const hostPids = async (handle: JobHandle, pids: number[]): Promise<number[]> => {
    if (!options.hostPids) return pids;
    const found = await options.hostPids(handle, pids);
    for (const pid of found) reported.add(pid);
    return found;
  };
  const readLog = (ex: Executor, h: JobHandle): Promise<string> =>
    options.readLog ? options.readLog(ex, h) : Promise.resolve(readFileSync(h.logPath, 'utf8'));
  const limits = options.limits ?? true;
  describe(`executor conformance: ${name}`, () => {
    afterAll(killReported);

    it('runs argv with the environment, captures output in the log, exit 0 is SUCCEEDED', async () => {
      const ex = make();
      const h = await ex.submit(
        spec('console.log("sample", process.env.SAMPLE_ID, process.argv[1])', {
          command: [
            process.execPath,
            '-e',
            'console.log("sample", process.env.SAMPLE_ID, process.argv[1])',
            '; rm -rf / $(reboot)',
          ],
          environment: { PATH: process.env.PATH ?? '', SAMPLE_ID: 'S7' },
        }),
      );
      const s = await waitDone(ex, h);
      expect(s).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
      expect(await readLog(ex, h)).toContain('sample S7 ; rm -rf / $(reboot)');
    });

    it('a non-zero exit is FAILED with its exit code', async () => {
      const ex = make();
      const s = await waitDone(ex, await ex.submit(spec('process.exit(3)')));
      expect(s).toMatchObject({ state: 'FAILED', exitCode: 3 });
    });

    it('a command that does not exist fails', async () => {
      const ex = make();
      const s = await waitDone(
        ex,
        await ex.submit({ ...spec(''), command: ['/nonexistent/tool', '--help'] }),
      );
      expect(s.state).toBe('FAILED');
      expect(s).toMatchObject({ exitCode: 127 });
    });

    it('submitting the same attempt twice runs it once', async () => {
      const ex = make();
      const ledger = join(scratch(), `ledger-${counter++}.txt`);
      const job = spec(`require("fs").appendFileSync(${JSON.stringify(ledger)}, "ran\\n")`);
      const [a, b] = await Promise.all([ex.submit(job), ex.submit(job)]);
      await waitDone(ex, a);
      await waitDone(ex, b);
      expect(await ex.submit(job)).toEqual(a);
      await new Promise((r) => setTimeout(r, 200));
      expect(readFileSync(ledger, 'utf8')).toBe('ran\n');
    });

    it('kill stops a running attempt, with the reason', async () => {
      const ex = make();
      const h = await ex.submit(spec('setTimeout(() => {}, 60000)'));
      await new Promise((r) => setTimeout(r, 300));
      await ex.kill(h, 'Terminated by user');
      const s = await waitDone(ex, h);
      expect(s).toMatchObject({ state: 'FAILED', reason: 'Terminated by user' });
    });

    it('over the memory limit the attempt ends with 137 and OutOfMemoryError', async ({ skip }) => {
      if (!limits) skip();
      const ex = make();
      const h = await ex.submit(
        spec('const a = []; setInterval(() => a.push(Buffer.alloc(32 * 1024 * 1024, 1)), 20)', {
          memoryMiB: 128,
        }),
      );
      const s = await waitDone(ex, h);
      expect(s).toMatchObject({
        state: 'FAILED',
        exitCode: 137,
        reason: 'OutOfMemoryError: Container killed due to memory usage',
      });
    });

    it('past its timeout the attempt is stopped (SIGTERM, then SIGKILL)', async ({ skip }) => {
      if (!limits) skip();
      const ex = make();
      // Ignores SIGTERM, so only the SIGKILL after the grace period ends it.
      const h = await ex.submit(
        spec('process.on("SIGTERM", () => {}); setTimeout(() => {}, 60000)', { timeoutSeconds: 1 }),
      );
      const s = await waitDone(ex, h);
      expect(s).toMatchObject({
        state: 'FAILED',
        exitCode: 137,
        reason: 'Job attempt duration exceeded timeout',
      });
    });

    /**
     * A new executor given the job `job(pidsPath)` makes, once the job has reported the pids of
     * the processes it started (as this machine numbers them).
     */
    const reporting = async (
      name: string,
      count: number,
      job: (pidsPath: string) => JobAttemptSpec,
    ): Promise<{ ex: Executor; h: JobHandle; pids: number[] }> => {
      const ex = make();
      const pidsPath = join(scratch(), `${name}-${counter++}.pids`);
      const h = await ex.submit(job(pidsPath));
      return { ex, h, pids: await hostPids(h, await reportedPids(pidsPath, count)) };
    };

    it.runIf(options.contained)(
      'a child in a session of its own (setsid) ends with the attempt',
      async () => {
        const { ex, h, pids } = await reporting('setsid', 2, (path) =>
          spec(starter(path, `start('sleep', ['300'], true);`, 'process.exit(0)')),
        );
        expect(await waitDone(ex, h)).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
        expect(pids.filter(running)).toEqual([]);
      },
    );

    it.runIf(options.contained)(
      'a grandchild whose parent has ended (a double fork, setsid) ends with the attempt',
      async () => {
        // The middle process starts the grandchild in a session of its own and exits at once:
        // the grandchild has lost both its parent and the attempt's session.
        const { ex, h, pids } = await reporting('double-fork', 2, (path) => {
          const middle = starter(path, `start('sleep', ['300'], true);`, 'process.exit(0)');
          return spec(
            `const c = require('node:child_process').spawn(process.execPath, ['-e', ${JSON.stringify(middle)}], { stdio: 'ignore' });
             c.on('exit', () => process.exit(0));`,
          );
        });
        expect(await waitDone(ex, h)).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
        expect(pids.filter(running)).toEqual([]);
      },
    );

    it('200 background children of a job that exits 0: SUCCEEDED, and none of them remains', async ({
      skip,
    }) => {
      if (!limits) skip();
      // Their resident sizes add up to ~400 MB (each counts the shared C library), their fair
      // share of memory to ~70 MB: under the limit, they must not be taken for a memory kill.
      const { ex, h, pids } = await reporting('children', 201, (path) =>
        spec(
          starter(
            path,
            `for (let i = 0; i < 200; i++) start('sleep', ['300'], false);`,
            'setTimeout(() => process.exit(0), 500)',
          ),
          { memoryMiB: 160 },
        ),
      );
      expect(await waitDone(ex, h)).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
      expect(pids.filter(running)).toEqual([]);
    });

    it('past its timeout, children that ignore SIGTERM (one of them setsid) are killed too', async ({
      skip,
    }) => {
      if (!limits) skip();
      const { ex, h, pids } = await reporting('timeout', 3, (path) =>
        spec(ignoringTerm(path), { timeoutSeconds: 1 }),
      );
      expect(await waitDone(ex, h)).toMatchObject({
        state: 'FAILED',
        exitCode: 137,
        reason: 'Job attempt duration exceeded timeout',
      });
      expect(pids.filter(running)).toEqual([]);
    });

    it('kill ends children that ignore SIGTERM (one of them setsid) after the grace period', async ({
      skip,
    }) => {
      if (!limits) skip();
      const { ex, h, pids } = await reporting('terminate', 3, (path) => spec(ignoringTerm(path)));
      await ex.kill(h, 'Terminated by user');
      expect(await waitDone(ex, h)).toMatchObject({
        state: 'FAILED',
        exitCode: 137,
        reason: 'Terminated by user',
      });
      expect(pids.filter(running)).toEqual([]);
    });

    it('memory used by a child in a session of its own counts against the limit', async ({
      skip,
    }) => {
      if (!limits) skip();
      // It stops at 384 MB, so that a backend that misses it does not exhaust the machine.
      const hog =
        'const a = []; setInterval(() => { if (a.length < 12) a.push(Buffer.alloc(32 * 1024 * 1024, 1)); }, 20)';
      const { ex, h, pids } = await reporting('setsid-memory', 2, (path) =>
        spec(
          starter(
            path,
            `start(process.execPath, ['-e', ${JSON.stringify(hog)}], true);`,
            'setInterval(() => {}, 1000)',
          ),
          { memoryMiB: 128, timeoutSeconds: 20 },
        ),
      );
      expect(await waitDone(ex, h)).toMatchObject({
        state: 'FAILED',
        exitCode: 137,
        reason: 'OutOfMemoryError: Container killed due to memory usage',
      });
      expect(pids.filter(running)).toEqual([]);
    });

    it("records the peak memory of the attempt's processes together", async ({ skip }) => {
      if (!limits) skip();
      const ex = make();
      // 96 MiB in the job's first process and 96 MiB in a child, held together for 1 s.
      const child =
        'const b = Buffer.alloc(96 * 1024 * 1024, 1); setTimeout(() => console.log(b.length), 1000)';
      const h = await ex.submit(
        spec(
          `const keep = Buffer.alloc(96 * 1024 * 1024, 1);
           require('node:child_process').spawnSync(process.execPath, ['-e', ${JSON.stringify(child)}], { stdio: 'inherit' });
           console.log(keep.length);`,
          { memoryMiB: 1024 },
        ),
      );
      const s = await waitDone(ex, h);
      expect(s).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
      if (s.state === 'RUNNING') return;
      expect(s.peakMemoryMiB).toBeGreaterThanOrEqual(192);
      // Two Node processes besides what they allocated: far below the 1024 MiB they could have.
      expect(s.peakMemoryMiB).toBeLessThan(600);
    });

    it('a job that appends to a read-only input fails, and the input is left as it was or named', async ({
      skip,
    }) => {
      if (options.readOnlyInputs === false) skip();
      const ex = make();
      const input = join(scratch(), `input-${counter++}.txt`);
      writeFileSync(input, 'published\n');
      const h = await ex.submit(
        spec(
          `try { require('node:fs').appendFileSync(${JSON.stringify(input)}, 'tampered\\n'); }
           catch (e) { console.log('append failed:', e.code); process.exit(3); }`,
          { readOnlyPaths: [input] },
        ),
      );
      const s = await waitDone(ex, h);
      expect(s.state).toBe('FAILED');
      // Either the write was refused (a read-only mount) or the change was caught and named.
      if (readFileSync(input, 'utf8') === 'published\n')
        expect(await readLog(ex, h)).toMatch(/append failed: (EROFS|EACCES|EPERM)/);
      else expect(s).toMatchObject({ reason: expect.stringContaining(input) });
    });

    it('another executor instance (a restarted engine) re-attaches to a running attempt', async () => {
      const first = make();
      const h = await first.submit(spec('setTimeout(() => process.exit(0), 800)'));
      const second = make();
      expect((await second.reattach(h)).state).toBe('RUNNING');
      expect(await waitDone(second, h)).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
    });
  });
}
