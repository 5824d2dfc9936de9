/**
 * The behaviour every executor backend must show (local now; container, SLURM and AWS Batch
 * later). Commands are small `node -e` programs so they run wherever Node does.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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

/** Runs the shared executor behaviour suite against a backend. */
export function executorConformance(
  name: string,
  make: () => Executor,
  scratch: () => string,
): void {
  describe(`executor conformance: ${name}`, () => {
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
      expect(readFileSync(h.logPath, 'utf8')).toContain('sample S7 ; rm -rf / $(reboot)');
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

    it('over the memory limit the attempt ends with 137 and OutOfMemoryError', async () => {
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

    it('past its timeout the attempt is stopped (SIGTERM, then SIGKILL)', async () => {
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

    it('another executor instance (a restarted engine) re-attaches to a running attempt', async () => {
      const first = make();
      const h = await first.submit(spec('setTimeout(() => process.exit(0), 800)'));
      const second = make();
      expect((await second.reattach(h)).state).toBe('RUNNING');
      expect(await waitDone(second, h)).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
    });
  });
}
