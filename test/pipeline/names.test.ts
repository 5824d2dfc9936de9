/**
 * The CLI in ordinary use: a name that matches nothing is exit 2 with the likely name, never an
 * empty success; `run DIR` means DIR/pipeline.yaml; output into a pipe that closed ends quietly.
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { exampleWorkspace, strand } from './cli.js';

const w = exampleWorkspace('word-count');
let execution = '';

beforeAll(async () => {
  const r = await strand('run', w.dir, '--home', w.home, '--name', 'names-1');
  // `run DIR` ran DIR/pipeline.yaml (one sample of the example fails on purpose).
  expect(r.code, r.err).toBe(1);
  execution = 'names-1';
}, 60_000);

describe('names that match nothing', () => {
  it.each([
    [['results', '--pipeline', 'word-cont'], /--pipeline word-cont: .*did you mean "word-count"/],
    [['results', '--step', 'wrods'], /--step wrods: .*did you mean "words"/],
    [['results', '--sample', 'alpah'], /--sample alpah: .*did you mean "alpha"/],
    [['results', '--execution', 'names-2'], /--execution names-2: .*did you mean "names-1"/],
    [
      ['results', '--pipeline', 'word-count', '--step', 'count.stat', '--metrics'],
      /--step count.stat: .*did you mean "count.stats"/,
    ],
  ])('strand %j is exit 2 with the likely name', async (args, message) => {
    const r = await strand(...args, '--home', w.home);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.out).toBe('');
  });

  it('logs: an unknown step or sample of the execution is exit 2; a step name covers its substeps', async () => {
    let r = await strand('logs', execution, '--step', 'wrods', '--home', w.home);
    expect([r.code, r.err]).toEqual([2, expect.stringMatching(/did you mean "words"/)]);
    r = await strand('logs', execution, '--sample', 'zeta', '--home', w.home);
    expect([r.code, r.err]).toEqual([2, expect.stringMatching(/did you mean "beta"/)]);
    r = await strand('logs', execution, '--step', 'count', '--sample', 'alpha', '--home', w.home);
    expect(r.code).toBe(0);
    expect(r.out).toContain('==> alpha count.sorted');
    expect(r.out).toContain('==> alpha count.stats');
  });

  it('results that exist but do not combine are an empty answer, exit 0', async () => {
    const r = await strand('results', '--sample', '_all', '--step', 'words', '--home', w.home);
    expect(r.code).toBe(0);
    expect(r.err).toContain('no results yet');
  });
});

describe('a pipe that closed', () => {
  it('ends the command quietly with exit 0', async () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(process.cwd(), 'test/pipeline/strand-cli.mts'),
        'batch',
        'ls',
        '--home',
        w.home,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    // The reader goes away before the command writes: its first write meets EPIPE.
    child.stdout.destroy();
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(err).toBe('');
    expect(code).toBe(0);
  });
});

describe('input files a samples sheet names', () => {
  /** The word-count example with a sheet of four samples: one file missing, one a directory. */
  function sheetWithHoles() {
    const x = exampleWorkspace('word-count');
    writeFileSync(
      join(x.dir, 'samples.csv'),
      'id,TEXT\nalpha,data/alpha.txt\nbeta,data/beta.txt\ngamma,data/gamma.txt\ndelta,data\n',
    );
    return x;
  }

  it('a missing file or a directory among files is exit 2 at its cell, before any job, in validate and run', async () => {
    const x = sheetWithHoles();
    for (const args of [
      ['validate', x.file],
      ['run', x.file, '--home', x.home],
    ]) {
      const r = await strand(...args);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(
        /samples\.csv:4:7 .*TEXT of sample gamma: file "data\/gamma\.txt" not found/,
      );
      expect(r.err).toMatch(/samples\.csv:5:7 .*TEXT of sample delta: "data" is a directory/);
    }
    expect(existsSync(join(x.home, 'work'))).toBe(false);
  });

  it('--skip-missing runs the other samples and names the ones left out', async () => {
    const x = sheetWithHoles();
    const r = await strand('run', x.file, '--home', x.home, '--skip-missing');
    expect(r.err).toContain('skipping sample gamma (--skip-missing): TEXT of sample gamma');
    expect(r.err).toContain('skipping sample delta (--skip-missing)');
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain('2 sample(s)');
  });
});
