/**
 * Ctrl-C during `strand run`: the running jobs are terminated, the execution is recorded as
 * stopped, and `strand redrive` carries it on to the end.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import {
  heldPipeline,
  inlinePipeline,
  processesWith,
  releaseHolders,
  spawnStrand,
  waitUntil,
} from './cli.js';

const strand = (args: string[]) => spawnStrand(args, { STRAND_GRACE_SECONDS: '1' });
afterEach(releaseHolders);

describe('Ctrl-C during strand run', () => {
  it('terminates running jobs, records the stop, and redrive finishes the run', async () => {
    // The jobs wait for a holder process (tail --pid) and ignore SIGTERM: only the SIGKILL after
    // the grace period ends them.
    const p = heldPipeline('held', true);
    const token = p.token;
    const dir = p.dir;
    const home = join(dir, 'home');
    const run = strand(['run', p.file, '--home', home, '--name', 'int']);
    await waitUntil('both jobs to run', () => processesWith(token, 'tail').length === 2);
    run.kill('SIGINT');
    const first = await run.done;
    // As a program ended by SIGINT: 128 + 2.
    expect(first.code, first.err).toBe(130);
    expect(first.err).toMatch(/stopping: terminating running jobs/);
    expect(first.err).toMatch(/int: ABORTED/);
    expect(first.err).toMatch(/to carry on: strand redrive int/);
    expect(first.err).not.toMatch(/TypeError|database connection is not open/);
    // When `strand run` has exited, its jobs are gone and recorded as ended, not RUNNING.
    expect(processesWith(token, 'tail')).toEqual([]);
    const reader = Engine.open({ home, readOnly: true });
    const jobs = reader.listBatchJobs().filter((j) => j.tags?.['strand:execution'] === 'int');
    reader.close();
    expect(jobs.map((j) => j.status)).toEqual(['FAILED', 'FAILED']);
    // Let the jobs finish at once from now on, and carry the run on.
    p.release();
    const again = strand(['redrive', 'int', '--home', home]);
    const second = await again.done;
    expect(second.code, second.err).toBe(0);
    expect(second.err).toMatch(/int: SUCCEEDED/);
    for (const sample of ['A', 'B'])
      expect(existsSync(join(home, 'store', 'held', sample, 'after', 'out.txt'))).toBe(true);
  }, 60_000);
});

describe('SIGINT and SIGTERM at random points of strand run', () => {
  // The seed is printed, so a failing point can be replayed (STRAND_SIGNAL_SEED).
  const seed = Number(process.env.STRAND_SIGNAL_SEED ?? Date.now() % 100_000);
  let state = seed;
  const random = (): number => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)(
    '%s: jobs ended and recorded, ABORTED, no stack trace, exit %i; redrive finishes',
    async (signal, code) => {
      console.log(`seed ${seed}`);
      const p = inlinePipeline([
        `name: sig-${signal.toLowerCase()}`,
        'samples: [ { id: A }, { id: B }, { id: C } ]',
        'defaults: { vcpus: 0.5, memory: 64MiB }',
        'steps:',
        '  one: { image: debian:bookworm-slim, command: [sleep, "0.4"] }',
        '  two: { image: debian:bookworm-slim, command: [sleep, "0.4"] }',
      ]);
      const run = strand(['run', p.file, '--home', p.home, '--name', 'sig']);
      // Once the run has started, at a random point of its first seconds.
      await waitUntil('the first job to start', () => run.err().includes(' started '));
      await new Promise((r) => setTimeout(r, Math.floor(random() * 1500)));
      run.kill(signal);
      const first = await run.done;
      expect(first.err).not.toMatch(/TypeError|Error: |\n {4}at /);
      const reader = Engine.open({ home: p.home, readOnly: true });
      const status = reader.describeExecution('sig').status;
      const jobs = reader.listBatchJobs().map((j) => j.status);
      reader.close();
      if (status === 'SUCCEEDED') {
        // The run had finished before the signal arrived: it exited 0, or the signal ended the
        // process on its way out, as it ends any program then.
        expect(first.code === 0 || first.signal === signal, `${first.code} ${first.signal}`).toBe(
          true,
        );
        return;
      }
      expect(first.code, first.err).toBe(code);
      expect(status).toBe('ABORTED');
      expect(jobs.filter((s) => !['SUCCEEDED', 'FAILED'].includes(s))).toEqual([]);
      const again = await strand(['redrive', 'sig', '--home', p.home]).done;
      expect(again.code, again.err).toBe(0);
    },
    60_000,
  );
});
