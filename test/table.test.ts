/**
 * The CLI's one table formatter (every listing: `batch ls`, `executions ls`, `status`,
 * `results`, `images ls`, `clean`) and its detail view (`executions describe`), and when the
 * CLI colours.
 */
import { stripVTControlCharacters } from 'node:util';
import stringWidth from 'string-width';
import { describe, expect, it } from 'vitest';
import { colorWanted, painter, status, statusColumns } from '../src/cli/color.js';
import { escapeControls, formatDetails, formatTable, headerOf } from '../src/cli/table.js';

/** Where each cell starts on a line, in terminal columns (cells are two spaces or more apart). */
function starts(line: string): number[] {
  const found: number[] = [];
  let spaces = 2;
  let at = 0;
  for (const ch of stripVTControlCharacters(line)) {
    if (ch !== ' ' && spaces >= 2) found.push(at);
    spaces = ch === ' ' ? spaces + 1 : 0;
    at += stringWidth(ch);
  }
  return found;
}

describe('formatTable', () => {
  const jobs = [
    { jobId: 'a1', jobName: 'qc', status: 'SUCCEEDED', exitCode: 0, statusReason: 'done' },
    { jobId: 'b22', jobName: 'assemble', status: 'FAILED', exitCode: 137, statusReason: 'OOM' },
    { jobId: 'c333', jobName: 'sketch', status: 'RUNNABLE' },
  ];

  it('upper-case headers, two spaces apart, numbers right-aligned, empty cells blank', () => {
    expect(formatTable(jobs)).toBe(
      [
        'JOB ID  JOB NAME  STATUS     EXIT CODE  STATUS REASON',
        'a1      qc        SUCCEEDED          0  done',
        'b22     assemble  FAILED           137  OOM',
        'c333    sketch    RUNNABLE',
        '',
      ].join('\n'),
    );
  });

  it('columns chosen in order, with their own headers and alignment; a blank cell keeps its place', () => {
    const table = formatTable(
      [
        { name: 'run-1', seconds: '12.50', note: null, n: 3n },
        { name: 'run-22', seconds: '0.25', note: 'redriven', n: 10n },
      ],
      [{ key: 'n', header: '#' }, 'name', { key: 'seconds', align: 'right' }, 'note'],
    );
    expect(table).toBe(
      [
        ' #  NAME    SECONDS  NOTE',
        ' 3  run-1     12.50',
        '10  run-22     0.25  redriven',
        '',
      ].join('\n'),
    );
  });

  it('headers: camelCase words apart, snake_case kept', () => {
    expect(['exitCode', 'outputLocation', 'num_seqs', 'n50', 'IMAGE'].map(headerOf)).toEqual([
      'EXIT CODE',
      'OUTPUT LOCATION',
      'NUM_SEQS',
      'N50',
      'IMAGE',
    ]);
  });

  it('control characters, escape sequences and bidi overrides are shown escaped, on one line', () => {
    const rows = [
      { cause: 'line one\nline two\tcol\r', next: 'x' },
      { cause: '\x1b[31mred\x1b[0m \x07\x7f\x9b \u202egnp.exe', next: 'y' },
    ];
    const table = formatTable(rows);
    expect(table).toBe(
      [
        'CAUSE                                          NEXT',
        'line one\\nline two\\tcol\\r                      x',
        '\\x1b[31mred\\x1b[0m \\x07\\x7f\\x9b \\u202egnp.exe  y',
        '',
      ].join('\n'),
    );
    expect(table.split('\n')).toHaveLength(4);
    expect(escapeControls('plain: é, 基因, 🧬')).toBe('plain: é, 基因, 🧬');
  });

  it('wide and combining characters are measured as the terminal shows them', () => {
    const rows = [
      { sample: '基因组-1', organism: 'H. pylori', reads: 12 },
      { sample: 'café', organism: '🧬 plasmid', reads: 3456 },
      { sample: 'Zoë', organism: 'E. coli', reads: 7 }, // e + combining diaeresis
    ];
    const lines = formatTable(rows).trimEnd().split('\n');
    expect(lines[1]).toBe('基因组-1  H. pylori      12');
    // The sample is 8 columns wide (each ideograph takes two), the organism 10 (so does 🧬).
    expect(starts(lines[0])).toEqual([0, 10, 22]);
    for (const line of lines.slice(1)) expect(starts(line).slice(0, 2)).toEqual([0, 10]);
    // Right-aligned numbers end at the same column.
    expect(new Set(lines.map((l) => stringWidth(l)))).toEqual(new Set([stringWidth(lines[0])]));
  });

  it('colour is laid over padded cells: the same table, with escapes only around the text', () => {
    const rows = [
      { name: 'a', status: 'SUCCEEDED', seconds: 1.5 },
      { name: 'bbbb', status: 'FAILED', seconds: 12 },
      { name: 'cc', status: null, seconds: null },
    ];
    const plain = formatTable(rows);
    const coloured = formatTable(rows, undefined, statusColumns(painter(true)));
    expect(coloured).not.toBe(plain);
    expect(coloured).toContain('\x1b[32mSUCCEEDED\x1b[39m');
    expect(coloured).toContain('\x1b[31mFAILED\x1b[39m   ');
    expect(coloured.split('\n')[0]).toBe(plain.split('\n')[0]); // headers are never coloured
    expect(stripVTControlCharacters(coloured)).toBe(plain);
    // Colour off: the options do nothing, byte for byte.
    expect(formatTable(rows, undefined, statusColumns(painter(false)))).toBe(plain);
  });

  it('no columns: nothing; no rows: the header alone', () => {
    expect(formatTable([])).toBe('');
    expect(formatTable([], ['name', 'status'])).toBe('NAME  STATUS\n');
  });
});

describe('formatDetails', () => {
  it('a field per line, values two spaces past the longest name, left-aligned; none left out', () => {
    const details = formatDetails({
      name: 'run-1',
      status: 'ABORTED',
      redriveCount: 0,
      stopDate: undefined,
      cause: 'stopped\nfrom the command line',
    });
    expect(details).toBe(
      [
        'name          run-1',
        'status        ABORTED',
        'redriveCount  0',
        'cause         stopped\\nfrom the command line',
        '',
      ].join('\n'),
    );
    const coloured = formatDetails(
      { name: 'FAILED', status: 'FAILED' },
      statusColumns(painter(true)),
    );
    // Only the status field's value is coloured, not another field that reads the same.
    expect(coloured).toBe('name    FAILED\nstatus  \x1b[31mFAILED\x1b[39m\n');
  });
});

describe('colour', () => {
  it('on a terminal; never with NO_COLOR; always with FORCE_COLOR unless 0 or false', () => {
    expect(colorWanted(true, {})).toBe(true);
    expect(colorWanted(false, {})).toBe(false);
    expect(colorWanted(undefined, {})).toBe(false);
    expect(colorWanted(true, { TERM: 'dumb' })).toBe(false);
    expect(colorWanted(true, { NO_COLOR: '1' })).toBe(false);
    expect(colorWanted(true, { NO_COLOR: '' })).toBe(true); // set but empty: ignored
    expect(colorWanted(false, { FORCE_COLOR: '1' })).toBe(true);
    expect(colorWanted(false, { FORCE_COLOR: '' })).toBe(true);
    expect(colorWanted(true, { FORCE_COLOR: '0' })).toBe(false);
    expect(colorWanted(true, { FORCE_COLOR: 'false' })).toBe(false);
    expect(colorWanted(false, { FORCE_COLOR: '1', NO_COLOR: '1' })).toBe(false);
  });

  it('statuses in their colours; anything else, and everything when off, as it is', () => {
    const on = painter(true);
    expect(status(on, 'SUCCEEDED')).toBe('\x1b[32mSUCCEEDED\x1b[39m');
    expect(status(on, 'TIMED_OUT')).toBe('\x1b[31mTIMED_OUT\x1b[39m');
    expect(status(on, 'RUNNING')).toBe('\x1b[36mRUNNING\x1b[39m');
    expect(status(on, 'RUNNABLE')).toBe('\x1b[33mRUNNABLE\x1b[39m');
    expect(status(on, 'ABORTED')).toBe('\x1b[35mABORTED\x1b[39m');
    expect(status(on, 'whatever')).toBe('whatever');
    expect(status(painter(false), 'FAILED')).toBe('FAILED');
  });
});
