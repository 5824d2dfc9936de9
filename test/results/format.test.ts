import { describe, expect, it } from 'vitest';
import { formatRows } from '../../src/results/format.js';

const steps = [
  { sample: 'S1', step: 'qc', status: 'SUCCEEDED', exitCode: 0, attempt: 1 },
  {
    sample: 'S10',
    step: 'assemble',
    status: 'FAILED',
    exitCode: 137,
    attempt: 2,
    error: 'States.TaskFailed',
  },
  { sample: '_all', step: 'report', status: 'SKIPPED' },
];

describe('formatRows', () => {
  it('table: an upper-case header, columns two spaces apart, numbers right-aligned, blanks for missing', () => {
    expect(formatRows(steps, 'table')).toBe(
      [
        'SAMPLE  STEP      STATUS     EXIT CODE  ATTEMPT  ERROR',
        'S1      qc        SUCCEEDED          0        1',
        'S10     assemble  FAILED           137        2  States.TaskFailed',
        '_all    report    SKIPPED',
        '',
      ].join('\n'),
    );
  });

  it('table: chosen columns in the order given; escaped line breaks and tabs keep it aligned', () => {
    const rows = [
      { sample: 'S1', distance: 0.0123, cause: 'exit 1:\nno reads\tat all' },
      { sample: 'S2', distance: 1.5e-7, cause: null },
    ];
    expect(formatRows(rows, 'table', ['distance', 'sample', 'cause'])).toBe(
      [
        'DISTANCE  SAMPLE  CAUSE',
        '  0.0123  S1      exit 1:\\nno reads\\tat all',
        '  1.5e-7  S2',
        '',
      ].join('\n'),
    );
  });

  it('table: a column mixing numbers and text is left-aligned; objects are shown as JSON', () => {
    const rows = [
      { n50: 133000, tags: ['plasmid'] },
      { n50: 'n/a', tags: { a: 1 } },
    ];
    expect(formatRows(rows, 'table')).toBe('N50     TAGS\n133000  ["plasmid"]\nn/a     {"a":1}\n');
  });

  it('csv: a header line and RFC 4180 quoting of commas, quotes and line breaks', () => {
    const rows = [
      {
        sample: 'S1',
        organism: 'Escherichia coli, strain K-12',
        notes: 'contains "plasmid" contigs',
        reads: 1234567,
      },
      { sample: 'S2', organism: 'Unknown', notes: 'line one\nline two', reads: null },
    ];
    expect(formatRows(rows, 'csv')).toBe(
      'sample,organism,notes,reads\n' +
        'S1,"Escherichia coli, strain K-12","contains ""plasmid"" contigs",1234567\n' +
        'S2,Unknown,"line one\nline two",\n',
    );
    expect(formatRows(rows, 'csv', ['reads', 'sample'])).toBe('reads,sample\n1234567,S1\n,S2\n');
  });

  it('json: an array of objects with every chosen column, null for missing', () => {
    expect(formatRows(steps.slice(1), 'json', ['sample', 'exitCode', 'error'])).toBe(
      `[
  {
    "sample": "S10",
    "exitCode": 137,
    "error": "States.TaskFailed"
  },
  {
    "sample": "_all",
    "exitCode": null,
    "error": null
  }
]
`,
    );
  });

  it('no rows: nothing for a table or CSV without columns, a header with them, [] in JSON', () => {
    expect(formatRows([], 'table')).toBe('');
    expect(formatRows([], 'csv')).toBe('');
    expect(formatRows([], 'table', ['sample', 'n50'])).toBe('SAMPLE  N50\n');
    expect(formatRows([], 'csv', ['sample', 'n50'])).toBe('sample,n50\n');
    expect(formatRows([], 'json')).toBe('[]\n');
  });
});
