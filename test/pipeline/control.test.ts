/**
 * Control of a home from any process: while `strand run` in one process owns the home (its
 * engine holds the lease), `strand stop`, `strand redrive` and a second `strand run` in another
 * process reach that engine through requests recorded in the database; if the owner dies, the
 * process that follows a run carries it on.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import {
  heldPipeline,
  processesWith,
  releaseHolders,
  spawnStrand,
  strand,
  waitUntil,
} from './cli.js';

afterEach(releaseHolders);

/** A quick pipeline that runs to the end on its own. */
function quickPipeline(name: string) {
  const dir = mkdtempSync(join(tmpdir(), 'strand-ctl-'));
  writeFileSync(
    join(dir, 'pipeline.yaml'),
    [
      `name: ${name}`,
      'samples: [ { id: A } ]',
      'defaults: { vcpus: 0.25, memory: 64MiB }',
      'steps:',
      '  hello:',
      '    image: debian:bookworm-slim',
      '    command: [printf, "hello %s", $SAMPLE]',
      '    stdout: out.txt',
      '    outputs: { OUT: out.txt }',
      '',
    ].join('\n'),
  );
  return { dir, file: join(dir, 'pipeline.yaml') };
}

function jobsOf(home: string, execution: string) {
  const reader = Engine.open({ home, readOnly: true });
  try {
    return reader.listBatchJobs().filter((j) => j.tags?.['strand:execution'] === execution);
  } finally {
    reader.close();
  }
}

describe('control of a home from another process', () => {
  it('strand stop reaches the engine of a running strand run, and returns once the run is ABORTED and its jobs are gone', async () => {
    const p = heldPipeline('stoppable', true);
    const home = join(p.dir, 'home');
    const run = spawnStrand(['run', p.file, '--home', home, '--name', 'stoppable'], {
      STRAND_GRACE_SECONDS: '1',
    });
    await waitUntil('both jobs to run', () => processesWith(p.token, 'tail').length === 2);
    const stop = await strand('stop', 'stoppable', '--home', home, '--json');
    expect(stop.code, stop.err).toBe(0);
    expect(stop.err).toMatch(/asking the Strand engine that owns .* to stop stoppable/);
    expect(JSON.parse(stop.out)).toMatchObject({ name: 'stoppable', status: 'ABORTED' });
    // By the time stop returned: the jobs (which ignored SIGTERM) are gone, and recorded so.
    expect(processesWith(p.token, 'tail')).toEqual([]);
    const jobs = jobsOf(home, 'stoppable');
    expect(jobs.length).toBeGreaterThanOrEqual(2);
    for (const j of jobs) expect(j.status, j.jobName).toBe('FAILED');
    const first = await run.done;
    expect(first.code, first.err).toBe(1);
    expect(first.err).toMatch(/stoppable: ABORTED/);
  }, 60_000);

  it('a second strand run and a redrive are carried out by the engine that owns the home', async () => {
    const held = heldPipeline('held');
    const home = join(held.dir, 'home');
    // A run that fails until a flag file exists: FAILED now, redriven later.
    const flag = join(held.dir, 'flag');
    const fixable = join(held.dir, 'fixable.yaml');
    writeFileSync(
      fixable,
      [
        'name: fixable',
        'samples: [ { id: A } ]',
        `params: { FLAG: "${flag}" }`,
        'defaults: { vcpus: 0.25, memory: 64MiB }',
        'steps:',
        '  check:',
        '    image: debian:bookworm-slim',
        '    command: [test, -e, $FLAG]',
        '',
      ].join('\n'),
    );
    const failed = await strand('run', fixable, '--home', home, '--name', 'fixable');
    expect(failed.code, failed.err).toBe(1);

    const owner = spawnStrand(['run', held.file, '--home', home, '--name', 'held']);
    await waitUntil('the held jobs to run', () => processesWith(held.token, 'tail').length === 2);

    const quick = quickPipeline('quick');
    const second = await strand('run', quick.file, '--home', home, '--name', 'quick');
    expect(second.code, second.err).toBe(0);
    expect(second.err).toMatch(/handing the run to the Strand engine that owns/);
    expect(second.err).toMatch(/quick: SUCCEEDED/);
    expect(readFileSync(join(home, 'store', 'quick', 'A', 'hello', 'out.txt'), 'utf8')).toBe(
      'hello A',
    );

    writeFileSync(flag, '');
    const redrive = await strand('redrive', 'fixable', '--home', home);
    expect(redrive.code, redrive.err).toBe(0);
    expect(redrive.err).toMatch(/handing the redrive to the Strand engine that owns/);
    expect(redrive.err).toMatch(/fixable: SUCCEEDED/);

    // The owner ran its own run all along, and finishes it.
    expect(processesWith(held.token, 'tail')).toHaveLength(2);
    held.release();
    const done = await owner.done;
    expect(done.code, done.err).toBe(0);
    expect(done.err).toMatch(/held: SUCCEEDED/);
  }, 90_000);

  it('when the owner dies, the process following a handed-over run carries it on', async () => {
    const held = heldPipeline('held');
    const home = join(held.dir, 'home');
    const owner = spawnStrand(['run', held.file, '--home', home, '--name', 'held']);
    await waitUntil('the held jobs to run', () => processesWith(held.token, 'tail').length === 2);
    const slow = heldPipeline('slow');
    const following = strand('run', slow.file, '--home', home, '--name', 'slow');
    await waitUntil('the slow jobs to run', () => processesWith(slow.token, 'tail').length === 2);
    owner.kill('SIGKILL');
    await owner.done;
    slow.release();
    const r = await following;
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/the engine that ran it has gone; carrying it on in this process/);
    expect(r.err).toMatch(/slow: SUCCEEDED/);
    // Each job ran once: two samples, two steps.
    expect(jobsOf(home, 'slow').filter((j) => j.status === 'SUCCEEDED')).toHaveLength(4);
  }, 90_000);
});
