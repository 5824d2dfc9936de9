/**
 * `strand clean`: what finished executions' jobs left in <home>/work goes; the store and the
 * records stay; executions redrive could carry on are kept unless --all.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inlinePipeline, resultsJson, strand } from './cli.js';

describe('strand clean', () => {
  it('removes finished jobs’ directories, keeps redrivable ones unless --all, and the store', async () => {
    const p = inlinePipeline(
      [
        'name: tidy',
        'samples: samples.csv',
        'steps:',
        "  one: { image: debian:bookworm-slim, command: [sh, -c, 'echo $0 > out.txt; test $0 != bad', $SAMPLE], outputs: { OUT: out.txt } }",
      ],
      { 'samples.csv': 'id\ngood\n' },
    );
    expect((await strand('run', p.file, '--home', p.home, '--name', 'ok')).code).toBe(0);
    writeFileSync(join(p.dir, 'samples.csv'), 'id\nbad\n');
    expect((await strand('run', p.file, '--home', p.home, '--name', 'broken')).code).toBe(1);
    const work = join(p.home, 'work');
    const before = readdirSync(work);
    expect(before.length).toBeGreaterThanOrEqual(6); // two attempts: directory, log, pid, …

    const dry = await strand('clean', '--home', p.home, '--dry-run');
    expect(dry.code).toBe(0);
    // A table of what would go, by execution: how many entries and their size.
    expect(dry.out).toMatch(/^EXECUTION +ENTRIES +SIZE\nok +\d+ +[\d.]+ k?B\n$/);
    expect(dry.err).toMatch(/^would free [\d.]+ k?B \(\d+ entries\)/);
    expect(readdirSync(work)).toEqual(before);

    const clean = await strand('clean', '--home', p.home);
    expect(clean.out).toMatch(/^ok +\d+ /m);
    expect(clean.out).not.toContain('broken');
    expect(clean.err).toMatch(/kept 1 execution\(s\) that are running or could be redriven/);
    const left = readdirSync(work);
    expect(left.length).toBeGreaterThan(0);
    expect(left.length).toBeLessThan(before.length);
    // The store and the records stay.
    expect(existsSync(join(p.home, 'store/tidy/good/one/out.txt'))).toBe(true);
    expect(existsSync(join(p.home, 'store/tidy/good/one/_strand.log'))).toBe(true);
    expect(await resultsJson(p.home, '--execution', 'ok')).toHaveLength(1);

    const all = await strand('clean', '--home', p.home, '--all');
    expect(all.out).toMatch(/^broken +\d+ /m);
    expect(readdirSync(work)).toEqual([]);

    const unknown = await strand('clean', 'brokn', '--home', p.home);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('did you mean "broken"?');
  });
});
