/**
 * `strand run --dry-run`: every job the run would submit, whether the cache would answer it
 * and why not; checked against what the real run then does, job by job.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exampleWorkspace, strand } from './cli.js';

interface Planned {
  sample: string;
  job: string;
  action: 'cached' | 'runs' | 'blocked';
  reason: string;
}

async function plan(file: string, home: string, ...args: string[]) {
  const r = await strand('run', file, '--home', home, '--dry-run', '--json', ...args);
  return { code: r.code, err: r.err, jobs: JSON.parse(r.out).jobs as Planned[] };
}

/** What a real run did with each job: `cached` or `runs`, by "sample job". */
async function ran(file: string, home: string, name: string, ...args: string[]) {
  const r = await strand('run', file, '--home', home, '--json', '--name', name, ...args);
  expect(r.code, r.err).toBe(0);
  const done: Record<string, string> = {};
  for (const line of r.out.trim().split('\n')) {
    const e = JSON.parse(line) as { event: string; sample?: string; step?: string };
    if (e.event === 'step.cached') done[`${e.sample} ${e.step}`] = 'cached';
    if (e.event === 'step.started') done[`${e.sample} ${e.step}`] = 'runs';
  }
  return done;
}

const byJob = (jobs: Planned[]) =>
  Object.fromEntries(jobs.map((j) => [`${j.sample} ${j.job}`, j.action]));

describe('strand run --dry-run', () => {
  it('says which jobs the cache answers and why the others run, as the run then does', async () => {
    const ws = exampleWorkspace('word-count');
    const samples = ['--samples', 'alpha,beta'];
    // Nothing run yet: every job runs, and the plan writes nothing.
    const first = await plan(ws.file, ws.home, ...samples);
    expect(first.code, first.err).toBe(0);
    expect(first.jobs).toHaveLength(11);
    expect(first.jobs.find((j) => j.job === 'words')!.reason).toBe('no published outputs yet');
    expect(existsSync(join(ws.home, 'store'))).toBe(false);
    expect(await ran(ws.file, ws.home, 'one', ...samples)).toEqual(byJob(first.jobs));

    // Run again: all from the cache, the summary over both samples too.
    const again = await plan(ws.file, ws.home, ...samples);
    expect(again.jobs.every((j) => j.action === 'cached')).toBe(true);
    expect(again.jobs[0].reason).toBe('same as execution one');

    const summary = join(ws.home, 'store/word-count/_all/summary/summary.tsv');
    const before = readFileSync(summary, 'utf8');
    // One input file changed: that sample's jobs and the summary run, the other's do not.
    appendFileSync(join(ws.dir, 'data', 'alpha.txt'), 'one more line\n');
    const changed = await plan(ws.file, ws.home, ...samples);
    const words = changed.jobs.find((j) => j.sample === 'alpha' && j.job === 'words')!;
    expect(words).toMatchObject({ action: 'runs' });
    expect(words.reason).toMatch(/^changed: \$TEXT|^changed: its command/);
    expect(changed.jobs.find((j) => j.sample === 'alpha' && j.job === 'count.sorted')!.reason).toBe(
      'after words, which runs',
    );
    expect(
      changed.jobs.filter((j) => j.sample === 'beta').every((j) => j.action === 'cached'),
    ).toBe(true);
    expect(await ran(ws.file, ws.home, 'two', ...samples)).toEqual(byJob(changed.jobs));
    // The summary over all samples ran again: its list of locations did not change, the file
    // it names did (the cache once answered it from before the change).
    expect(readFileSync(summary, 'utf8')).not.toBe(before);
    expect(readFileSync(summary, 'utf8')).toMatch(/^alpha\t/m);

    // A parameter: the jobs that see it are named with it.
    const param = await plan(ws.file, ws.home, ...samples, '--param', 'MIN_COUNT=3');
    expect(param.jobs.find((j) => j.job === 'words')!.reason).toBe(
      'changed: $MIN_COUNT (since execution two)',
    );
    expect(await ran(ws.file, ws.home, 'three', ...samples, '--param', 'MIN_COUNT=3')).toEqual(
      byJob(param.jobs),
    );

    // --no-cache: everything runs, and says so.
    const none = await plan(ws.file, ws.home, ...samples, '--no-cache');
    expect(new Set(none.jobs.map((j) => `${j.action} ${j.reason}`))).toEqual(
      new Set(['runs --no-cache']),
    );
  }, 60_000);

  it('a step over all samples runs again only for a change in the per-sample steps it reads', async () => {
    const ws = exampleWorkspace('word-count');
    const samples = ['--samples', 'alpha,beta'];
    await ran(ws.file, ws.home, 'one', ...samples);
    const summary = join(ws.home, 'store/word-count/_all/summary/_strand.json');
    const before = readFileSync(summary, 'utf8');
    // frequent.keep keeps fewer words: its outputs change, which the summary does not read
    // (it reads count's $STATS only).
    const yaml = readFileSync(ws.file, 'utf8');
    writeFileSync(ws.file, yaml.replace('$$1 >= min', '$$1 > min'));
    const changed = await plan(ws.file, ws.home, ...samples);
    expect(changed.jobs.find((j) => j.job === 'frequent.keep')!.reason).toMatch(
      /^changed: its command/,
    );
    expect(changed.jobs.find((j) => j.job === 'summary')).toMatchObject({ action: 'cached' });
    expect(await ran(ws.file, ws.home, 'two', ...samples)).toEqual(byJob(changed.jobs));
    expect(readFileSync(summary, 'utf8')).toBe(before);
    // count.stats changes what it writes: the summary, which reads it, runs again.
    writeFileSync(ws.file, readFileSync(ws.file, 'utf8').replace('%.3f', '%.2f'));
    const stats = await plan(ws.file, ws.home, ...samples);
    expect(stats.jobs.find((j) => j.job === 'summary')).toMatchObject({ action: 'runs' });
    expect(await ran(ws.file, ws.home, 'three', ...samples)).toEqual(byJob(stats.jobs));
    expect(JSON.parse(readFileSync(summary, 'utf8')).execution).toBe('three');
  }, 60_000);

  it('a slice whose inputs are not in the store: blocked jobs named, exit 1, nothing written', async () => {
    const ws = exampleWorkspace('word-count');
    const r = await plan(ws.file, ws.home, '--samples', 'alpha', '--from', 'count');
    expect(r.code).toBe(1);
    expect(r.jobs.find((j) => j.job === 'count.sorted')).toEqual({
      sample: 'alpha',
      job: 'count.sorted',
      action: 'blocked',
      reason: '$WORDS of words not in the store (the run leaves that step out)',
    });
    expect(r.jobs.find((j) => j.job === 'frequent.tally')!.reason).toBe(
      'after count, which cannot run',
    );
    expect(r.err).toMatch(/the run would stop before any job/);
    expect(existsSync(join(ws.home, 'store'))).toBe(false);
    const text = await strand('run', ws.file, '--home', ws.home, '--dry-run', '--from', 'count');
    expect(text.out).toMatch(/^SAMPLE +JOB +ACTION +REASON$/m);
    expect(text.out).toMatch(/^alpha +count\.sorted +blocked +\$WORDS of words/m);
  }, 30_000);
});
