/**
 * Ctrl-C during `strand run`: the running jobs are terminated, the execution is recorded as
 * stopped, and `strand redrive` carries it on to the end.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { heldPipeline, processesWith, releaseHolders, spawnStrand, waitUntil } from './cli.js';

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
    expect(first.code, first.err).toBe(1);
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
