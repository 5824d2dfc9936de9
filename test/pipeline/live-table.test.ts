/**
 * The live table of `strand run` on a terminal: cut to the terminal's width and height, so a
 * redraw never wraps or scrolls; shown on a real pseudo-terminal (`script`) of 40 × 6.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import { fitToTerminal } from '../../src/cli/pipeline.js';
import { exampleWorkspace } from './cli.js';

const visible = (line: string): number => [...stripVTControlCharacters(line)].length;

describe('the live table', () => {
  it('cuts each line to the width and the lines to the height, saying how many are left out', () => {
    const lines = [
      '  0/9 jobs, 1s elapsed',
      ...Array.from({ length: 8 }, (_, i) => `  step${i} ${'█'.repeat(60)}`),
    ];
    const fitted = fitToTerminal(lines, 40, 6);
    expect(fitted).toHaveLength(5);
    expect(fitted.every((l) => visible(l) <= 39)).toBe(true);
    expect(fitted[1].endsWith('…')).toBe(true);
    expect(fitted[4]).toBe('  … 5 more steps');
    expect(fitToTerminal(['  short'], 80, 24)).toEqual(['  short']);
  });

  it('on a 40 × 6 terminal no line of the table is wider than the terminal', () => {
    const w = exampleWorkspace('word-count');
    const cli = `${process.execPath} --import tsx ${join(process.cwd(), 'test/pipeline/strand-cli.mts')}`;
    // One sample of the example fails on purpose: the exit code is 1, the output is what counts.
    const out = spawnSync(
      'script',
      ['-qec', `stty cols 40 rows 6; ${cli} run ${w.file} --home ${w.home}`, '/dev/null'],
      { encoding: 'utf8', env: { ...process.env, TERM: 'xterm' } },
    ).stdout;
    const table = out
      // Each escape sequence (a cursor move, an erase) ends a line as the terminal shows it.
      .split(String.fromCharCode(27))
      .map((part) => part.replace(/^\[[0-9;?]*[A-Za-z]/, ''))
      .flatMap((part) => part.split(/\r?\n/))
      .filter((l) => /[█░]|jobs, \d+s elapsed|more steps?$/.test(l));
    expect(table.length).toBeGreaterThan(0);
    expect(Math.max(...table.map(visible))).toBeLessThanOrEqual(40);
    // Six steps and a headline do not fit in 6 rows: the last line sums up the rest.
    expect(table.some((l) => /… \d+ more steps?$/.test(l))).toBe(true);
  });
});
