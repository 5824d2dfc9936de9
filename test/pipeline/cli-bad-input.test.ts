/**
 * Bad input through the command line: every malformed pipeline and samples fixture makes
 * `strand run` exit 2 with the problem's file:line:col, and nothing is written — no engine
 * database, no store, no results database.
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { strand } from './cli.js';
import { BAD_CASES } from './bad-cases.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/pipelines');
const EXAMPLE = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../examples/word-count/pipeline.yaml',
);

/** Nothing at all was written under the home. */
function untouched(home: string): void {
  expect(existsSync(home) ? readdirSync(home) : []).toEqual([]);
}

describe('strand run with a malformed pipeline or samples sheet', () => {
  it('covers at least 40 malformed inputs', () =>
    expect(BAD_CASES.length).toBeGreaterThanOrEqual(40));

  it.each(BAD_CASES)('%s %j: exit 2, located, nothing written', async (name, options, expected) => {
    const home = join(mkdtempSync(join(tmpdir(), 'strand-bad-')), 'home');
    const args = ['run', join(FIXTURES, 'bad', name), '--home', home];
    if (options.samples !== undefined) args.push('--samples', options.samples);
    for (const [k, v] of Object.entries(options.params ?? {})) args.push('--param', `${k}=${v}`);
    const r = await strand(...args);
    expect(r.code, r.err).toBe(2);
    for (const [where, message] of expected) {
      expect(r.err).toContain(where);
      expect(r.err).toContain(message);
    }
    expect(r.err).toMatch(/nothing was run/);
    untouched(home);
  });

  it.each([
    [['--from', 'frequnt'], '--from frequnt: no such step; did you mean "frequent"?'],
    [
      ['--to', 'nosuchstep'],
      '--to nosuchstep: no such step (steps: words, count, frequent, summary)',
    ],
    [['--only', 'words', '--from', 'count'], '--only runs one step'],
    [['--from', 'frequent', '--to', 'words'], '--from frequent comes after --to words'],
    [['--samples', 'alpha,gama'], 'gama'],
    [['--param', 'NOPE=1'], 'NOPE'],
    [['--param', 'novalue'], 'write NAME=value'],
  ])('%j is refused before anything runs', async (extra, message) => {
    const home = join(mkdtempSync(join(tmpdir(), 'strand-bad-')), 'home');
    const r = await strand('run', EXAMPLE, '--home', home, ...extra);
    expect(r.code, r.err).toBe(2);
    expect(r.err).toContain(message);
    untouched(home);
  });

  it('strand validate locates the same problems (exit 2) and accepts good pipelines (exit 0)', async () => {
    for (const [name, options, expected] of BAD_CASES.slice(0, 10)) {
      if (options.samples || options.params) continue;
      const r = await strand('validate', join(FIXTURES, 'bad', name));
      expect(r.code).toBe(2);
      expect(r.err).toContain(expected[0][0]);
    }
    for (const good of [
      ...readdirSync(join(FIXTURES, 'good'))
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => join(FIXTURES, 'good', f)),
      EXAMPLE,
    ]) {
      const r = await strand('validate', good);
      expect(r.code, `${good}: ${r.err}`).toBe(0);
      expect(r.out).toMatch(/valid \(\d+ steps/);
    }
  });
});
