/** `strand graph` (text, Mermaid, dot) and `strand init` (a scaffold that validates and runs). */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { strand } from './cli.js';

const EXAMPLE = resolve('examples/word-count/pipeline.yaml');

describe('strand graph', () => {
  it('text: steps as the data orders them, substeps in their step, data flowing in and out', async () => {
    const r = await strand('graph', EXAMPLE);
    expect(r.code).toBe(0);
    expect(r.out).toBe(
      [
        'word-count: per sample',
        '  words          awk          1 vCPU, 256 MiB   → WORDS',
        '  count (substeps side by side)',
        '  ├ sorted       sort         1 vCPU, 256 MiB   ← WORDS  → SORTED',
        '  └ stats        awk          1 vCPU, 256 MiB   ← WORDS  → STATS',
        '  frequent (substeps in order)',
        '  ├ tally        uniq         1 vCPU, 256 MiB   ← SORTED  → TALLY',
        '  └ keep         awk          1 vCPU, 256 MiB   ← TALLY  → FREQUENT',
        // The summary reads count's STATS only: it starts once every sample's count has ended.
        'meanwhile once for all samples',
        "  summary        awk          1 vCPU, 256 MiB   ← STATS  → SUMMARY  (once every sample's count has ended)",
        '',
      ].join('\n'),
    );
  });

  it.each([
    [
      'mermaid',
      [
        'flowchart TD',
        '  subgraph count["count (parallel)"]',
        '  count_stats -->|all samples: STATS| summary',
      ],
    ],
    [
      'dot',
      [
        'digraph "word-count" {',
        '  subgraph "cluster_count" {',
        '  "count.stats" -> "summary" [label="all samples: STATS"];',
      ],
    ],
  ])('%s', async (format, lines) => {
    const r = await strand('graph', EXAMPLE, '--format', format);
    expect(r.code).toBe(0);
    for (const line of lines) expect(r.out.split('\n')).toContain(line);
  });

  it('an unknown format is bad input', async () => {
    expect((await strand('graph', EXAMPLE, '--format', 'png')).code).toBe(2);
  });
});

describe('strand init', () => {
  it('writes a pipeline that validates and runs, and never overwrites', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'strand-init-')), 'my-first');
    expect((await strand('init', dir)).code).toBe(0);
    expect(readFileSync(join(dir, 'pipeline.yaml'), 'utf8')).toContain('name: my-first');
    expect((await strand('validate', join(dir, 'pipeline.yaml'))).code).toBe(0);
    const home = join(dir, '.strand');
    const r = await strand('run', join(dir, 'pipeline.yaml'), '--home', home);
    expect(r.code, r.err).toBe(0);
    expect(
      readFileSync(join(home, 'store', 'my-first', '_all', 'table', 'table.tsv'), 'utf8'),
    ).toBe('sample\tlong_words\none\t5\ntwo\t6\n');
    const again = await strand('init', dir);
    expect(again.code).toBe(2);
    expect(again.err).toMatch(/already exist; nothing was written/);
    expect(existsSync(join(dir, '.gitignore'))).toBe(true);
  });
});
