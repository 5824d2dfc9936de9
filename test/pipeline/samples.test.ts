import { dirname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatPipelineProblem, shownPath } from '../../src/pipeline/errors.js';
import type { SamplesSource } from '../../src/pipeline/model.js';
import { loadSamples } from '../../src/pipeline/samples.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/pipelines');
const GOOD = resolve(FIXTURES, 'good');
const BAD = resolve(FIXTURES, 'bad');
const PIPELINE = resolve(BAD, 'pipeline.yaml');
const AT = { file: 'pipeline.yaml', line: 2, column: 1 };

function sheet(dir: string, name: string): SamplesSource {
  return { kind: 'sheet', path: resolve(dir, name), at: AT };
}

/** Formatted problems with the fixture directory left out, as a reader of the table sees them. */
function problemsOf(source: SamplesSource): string[] {
  const dirPrefix = shownPath(BAD) + sep;
  return loadSamples(source, { pipelineFile: PIPELINE }).problems.map((p) =>
    formatPipelineProblem(p).split(dirPrefix).join(''),
  );
}

describe('loadSamples: good sheets', () => {
  it('reads a CSV sheet; relative paths to existing files become absolute, other values stay literal', () => {
    const info = loadSamples(sheet(GOOD, 'samples.csv'), { pipelineFile: PIPELINE });
    expect(info.problems).toEqual([]);
    expect(info.columns).toEqual(['READS_1', 'READS_2', 'STRAIN']);
    expect(info.rows).toEqual([
      {
        id: 'S1',
        values: {
          READS_1: resolve(GOOD, 'reads/S1_R1.fq'),
          READS_2: resolve(GOOD, 'reads/S1_R2.fq'),
          STRAIN: '26695; rm -rf ~',
        },
      },
      {
        id: 'S2',
        values: {
          READS_1: resolve(GOOD, 'reads/S2_R1.fq'),
          READS_2: resolve(GOOD, 'reads/S2_R2.fq'),
          STRAIN: '$(id)',
        },
      },
    ]);
  });

  it('reads an nf-core TSV: `sample` is the id, lower-case headers are upper-cased, empty cells kept', () => {
    const info = loadSamples(sheet(GOOD, 'nfcore.tsv'), { pipelineFile: PIPELINE });
    expect(info.problems).toEqual([]);
    expect(info.columns).toEqual(['FASTQ_1', 'FASTQ_2', 'SINGLE_END']);
    expect(info.rows[1]).toEqual({
      id: 'S2',
      values: { FASTQ_1: resolve(GOOD, 'reads/S2_R1.fq'), FASTQ_2: '', SINGLE_END: 'true' },
    });
  });

  it('keeps a path that does not exist as written', () => {
    const info = loadSamples(sheet(GOOD, 'more-samples.csv'), { pipelineFile: PIPELINE });
    expect(info.rows[0].values.READS_2).toBe('missing.fq');
  });

  it('returns inline rows as they are and nothing for no samples', () => {
    const rows = [{ id: 'S1', values: { A: 'x' } }];
    expect(loadSamples({ kind: 'inline', rows, at: AT }, { pipelineFile: PIPELINE })).toEqual({
      rows,
      positions: [{ id: { ...AT, path: 'samples[0]' }, values: {} }],
      columns: ['A'],
      problems: [],
    });
    expect(loadSamples({ kind: 'none' }, { pipelineFile: PIPELINE }).rows).toEqual([]);
  });
});

describe('loadSamples: bad sheets point into the sheet', () => {
  const cases: [string, string[]][] = [
    [
      'ragged.csv',
      [
        'ragged.csv:3:1 samples[1]: has 2 fields; the header has 3',
        'ragged.csv:4:1 samples[2]: has 4 fields; the header has 3',
      ],
    ],
    ['duplicate-ids.csv', ['duplicate-ids.csv:4:1 samples[2].sample: sample "S1" is repeated']],
    [
      'bad-ids.tsv',
      [
        'bad-ids.tsv:2:1 samples[0].sample: "S 1" is not a sample id',
        'bad-ids.tsv:3:1 samples[1].sample: "_all" is reserved',
        'bad-ids.tsv:4:1 samples[2].sample: no sample id',
      ],
    ],
    ['empty-id.csv', ['empty-id.csv:3:1 samples[1].id: no sample id']],
    ['header-only.csv', ['header-only.csv:1:1 samples: no samples']],
    [
      'header-collision.csv',
      ['header-collision.csv:1:12 header: "fastq_1" and "FASTQ-1" both become $FASTQ_1'],
    ],
    ['no-id-column.csv', ['no-id-column.csv:1:1 header: no sample id column']],
    ['reserved-column.csv', ['reserved-column.csv:1:20 header: column "strand_queue" is reserved']],
    ['bad-quote.csv', ['bad-quote.csv:2:4 samples: a quoted value is never closed']],
    // Blank and whitespace-only lines are skipped but still counted.
    [
      'blank-lines.csv',
      ['blank-lines.csv:6:1 samples[2].id: sample "S2" is repeated (first on line 5)'],
    ],
    // BOM, CRLF and a quoted value spanning two lines: the repeated id is still on line 5.
    ['crlf-duplicate.csv', ['crlf-duplicate.csv:5:1 samples[2].id: sample "S1" is repeated']],
  ];
  it.each(cases)('%s', (name, expected) => {
    const got = problemsOf(sheet(BAD, name));
    expect(got).toHaveLength(expected.length);
    got.forEach((line, i) => expect(line).toContain(expected[i]));
  });

  it('a missing sheet is reported at the samples: key of the pipeline', () => {
    const [problem] = loadSamples(sheet(BAD, 'nowhere.csv'), { pipelineFile: PIPELINE }).problems;
    expect(problem).toMatchObject({ file: 'pipeline.yaml', line: 2, column: 1, path: 'samples' });
    expect(problem.message).toMatch(/^sheet ".*nowhere\.csv" not found$/);
    expect(problem.hint).toBe(`looked for ${resolve(BAD, 'nowhere.csv')}`);
  });

  it('a sheet that is neither CSV nor TSV is reported at the samples: key', () => {
    expect(problemsOf(sheet(BAD, 'samples.xlsx'))).toEqual([
      'pipeline.yaml:2:1 samples: "samples.xlsx" is not a CSV or TSV sheet (name it .csv or .tsv)',
    ]);
  });
});
