/**
 * Steps over all samples (aggregate steps) never replace good published outputs with nothing:
 * with no successful sample they are skipped, and the previous outputs stay as they were; a run
 * that republishes them from fewer samples than they covered says so.
 */
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resultsJson, strand } from './cli.js';

const EXAMPLE = join(process.cwd(), 'examples/word-count');
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('aggregate steps and failed samples', () => {
  const dir = mkdtempSync(join(tmpdir(), 'strand-agg-'));
  cpSync(EXAMPLE, dir, { recursive: true });
  const file = join(dir, 'pipeline.yaml');
  const home = join(dir, 'home');
  const summary = join(home, 'store', 'word-count', '_all', 'summary');

  it('with no successful sample, the aggregate step is skipped and its published outputs kept', async () => {
    const good = await strand(
      'run',
      file,
      '--home',
      home,
      '--name',
      'good',
      '--samples',
      'alpha,beta',
    );
    expect(good.code, good.err).toBe(0);
    const table = sha(join(summary, 'summary.tsv'));
    const manifest = readFileSync(join(summary, '_strand.json'), 'utf8');
    expect(JSON.parse(manifest)).toMatchObject({ status: 'SUCCEEDED', samples: ['alpha', 'beta'] });

    const bad = await strand('run', file, '--home', home, '--name', 'bad', '--samples', 'empty');
    expect(bad.code, bad.err).toBe(1);
    expect(bad.err).toMatch(/1 of 1 samples failed/);
    expect(bad.err).toMatch(
      /note: skipped summary \(all samples\): no sample succeeded; what they published before is left as it was/,
    );
    expect(sha(join(summary, 'summary.tsv'))).toBe(table);
    expect(readFileSync(join(summary, '_strand.json'), 'utf8')).toBe(manifest);
    const rows = (await resultsJson(home, '--execution', 'bad', '--step', 'summary')) as {
      status: string;
      cause: string;
    }[];
    expect(rows).toEqual([
      expect.objectContaining({ status: 'SKIPPED', cause: 'no sample succeeded' }),
    ]);
  });

  it('republishing from fewer samples than the published outputs covered says so', async () => {
    const fewer = await strand(
      'run',
      file,
      '--home',
      home,
      '--name',
      'fewer',
      '--samples',
      'alpha',
    );
    expect(fewer.code, fewer.err).toBe(0);
    expect(fewer.err).toMatch(
      /note: summary \(all samples\) is published again from 1 sample\(s\); the outputs it replaces \(execution good\) covered 2, including beta/,
    );
    const manifest = JSON.parse(readFileSync(join(summary, '_strand.json'), 'utf8')) as {
      samples: string[];
    };
    expect(manifest.samples).toEqual(['alpha']);
    const json = await strand(
      'run',
      file,
      '--home',
      home,
      '--name',
      'json',
      '--samples',
      'alpha',
      '--json',
      '--no-cache',
    );
    expect(json.code, json.err).toBe(0);
    // As many samples as the outputs it replaces covered: nothing to say.
    expect(json.out).not.toMatch(/run\.note/);
  });
});
