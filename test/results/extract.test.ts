import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ResultsError } from '../../src/results/errors.js';
import { extractMetrics, type ExtractSpec } from '../../src/results/extract.js';

const fixture = (name: string): string =>
  fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

const scratch = mkdtempSync(join(tmpdir(), 'strand-extract-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let counter = 0;
/** A results file with `content`, named `name` in a fresh directory. */
function file(name: string, content: string): string {
  const path = join(scratch, `${counter++}-${name}`);
  writeFileSync(path, content);
  return path;
}

function failure(path: string, spec: ExtractSpec): ResultsError {
  try {
    extractMetrics(path, spec);
  } catch (e) {
    expect(e).toBeInstanceOf(ResultsError);
    expect((e as ResultsError).code).toBe('BAD_RESULTS_FILE');
    return e as ResultsError;
  }
  throw new Error(`${path} was read without an error`);
}

describe('extractMetrics: TSV', () => {
  it('reads seqkit stats with thousands separators as numbers', () => {
    expect(extractMetrics(fixture('seqkit-stats.tsv'), { format: 'tsv' })).toEqual({
      columns: [
        { name: 'file', type: 'text' },
        { name: 'format', type: 'text' },
        { name: 'type', type: 'text' },
        { name: 'num_seqs', type: 'integer' },
        { name: 'sum_len', type: 'integer' },
        { name: 'min_len', type: 'integer' },
        { name: 'avg_len', type: 'real' },
        { name: 'max_len', type: 'integer' },
      ],
      rows: [
        ['S1_R1.fastq.gz', 'FASTQ', 'DNA', 1234567, 185185050, 35, 150, 151],
        ['S1_R2.fastq.gz', 'FASTQ', 'DNA', 1234567, 184950123, 35, 149.8, 151],
      ],
    });
  });

  it('reads seqkit stats -a as printed (columns aligned with spaces), sanitising Q20(%) and GC(%)', () => {
    const table = extractMetrics(fixture('seqkit-stats-all.txt'), { format: 'tsv' });
    expect(table.columns.map((c) => `${c.name}:${c.type}`)).toEqual([
      'file:text',
      'format:text',
      'type:text',
      'num_seqs:integer',
      'sum_len:integer',
      'min_len:integer',
      'avg_len:real',
      'max_len:integer',
      'q1:integer',
      'q2:integer',
      'q3:integer',
      'sum_gap:integer',
      'n50:integer',
      'q20:real',
      'q30:real',
      'gc:real',
    ]);
    expect(table.rows[1]).toEqual([
      'S1_R2.fastq.gz',
      'FASTQ',
      'DNA',
      1234567,
      184950123,
      35,
      149.8,
      151,
      151,
      151,
      151,
      0,
      151,
      96.02,
      90.11,
      50.69,
    ]);
  });

  it('reads a headerless mash dist output with the names given in header', () => {
    const table = extractMetrics(fixture('mash-dist.tsv'), {
      format: 'tsv',
      header: ['reference', 'query', 'distance', 'p-value', 'shared-hashes'],
    });
    expect(table).toEqual({
      columns: [
        { name: 'reference', type: 'text' },
        { name: 'query', type: 'text' },
        { name: 'distance', type: 'real' },
        { name: 'p_value', type: 'real' },
        { name: 'shared_hashes', type: 'text' },
      ],
      rows: [
        ['refs/GCF_000005845.2.fna', 'S1.contigs.fa', 0.0123, 0, '812/1000'],
        ['refs/GCF_000008865.2.fna', 'S1.contigs.fa', 0.0187, 1.2e-250, '734/1000'],
        ['refs/GCF_000006945.2.fna', 'S1.contigs.fa', 0.2107, 3.4e-12, '12/1000'],
      ],
    });
  });

  it('strips the # that marks a header line (mash dist -t)', () => {
    const table = extractMetrics(fixture('mash-dist-table.tsv'), { format: 'tsv' });
    expect(table.columns).toEqual([
      { name: 'query', type: 'text' },
      { name: 's1_contigs_fa', type: 'real' },
      { name: 's2_contigs_fa', type: 'real' },
    ]);
    expect(table.rows).toHaveLength(2);
    const spaced = file('spaced.txt', '# sample  reads\nS1  1,000\n');
    expect(extractMetrics(spaced, { format: 'tsv' })).toEqual({
      columns: [
        { name: 'sample', type: 'text' },
        { name: 'reads', type: 'integer' },
      ],
      rows: [['S1', 1000]],
    });
  });

  it('coerces declared types, found by the name as written or sanitised', () => {
    const table = extractMetrics(fixture('seqkit-stats.tsv'), {
      format: 'tsv',
      columns: { num_seqs: 'text', min_len: 'real', avg_len: 'real', max_len: 'integer' },
    });
    expect(table.columns.slice(3)).toEqual([
      { name: 'num_seqs', type: 'text' },
      { name: 'sum_len', type: 'integer' },
      { name: 'min_len', type: 'real' },
      { name: 'avg_len', type: 'real' },
      { name: 'max_len', type: 'integer' },
    ]);
    // Declared text keeps the value exactly as written.
    expect(table.rows[0].slice(3)).toEqual(['1,234,567', 185185050, 35, 150, 151]);
    const gc = extractMetrics(fixture('seqkit-stats-all.txt'), {
      format: 'tsv',
      columns: { 'GC(%)': 'text', q30: 'text' },
    });
    expect(gc.columns.slice(-2)).toEqual([
      { name: 'q30', type: 'text' },
      { name: 'gc', type: 'text' },
    ]);
    expect(gc.rows[0].slice(-2)).toEqual(['92.93', '50.72']);
  });

  it('a value that does not fit its declared type is an error naming file, line, column and value', () => {
    const path = fixture('seqkit-stats.tsv');
    expect(failure(path, { format: 'tsv', columns: { type: 'integer' } }).message).toBe(
      `${path}:2: column type: "DNA" is not an integer`,
    );
    expect(failure(path, { format: 'tsv', columns: { avg_len: 'integer' } }).message).toBe(
      `${path}:3: column avg_len: "149.8" is not an integer`,
    );
    expect(failure(path, { format: 'tsv', columns: { format: 'real' } }).message).toBe(
      `${path}:2: column format: "FASTQ" is not a number`,
    );
  });

  it('empty cells are null; a column with nothing in it is text', () => {
    const path = file('gaps.tsv', 'sample\treads\tnote\tempty\nS1\t10\t\t\nS2\t\tlow\t\n\n');
    expect(extractMetrics(path, { format: 'tsv' })).toEqual({
      columns: [
        { name: 'sample', type: 'text' },
        { name: 'reads', type: 'integer' },
        { name: 'note', type: 'text' },
        { name: 'empty', type: 'text' },
      ],
      rows: [
        ['S1', 10, null, null],
        ['S2', null, 'low', null],
      ],
    });
  });

  it('a value that only looks numeric in part, or is too grouped, stays text', () => {
    const path = file('mixed.tsv', 'a\tb\tc\td\n1\t1,2\t10\t-0.5e3\nx\t100,200\t1,000.5\t+7\n');
    const table = extractMetrics(path, { format: 'tsv' });
    expect(table.columns.map((c) => c.type)).toEqual(['text', 'text', 'real', 'real']);
    expect(table.rows).toEqual([
      ['1', '1,2', 10, -500],
      ['x', '100,200', 1000.5, 7],
    ]);
  });

  it('sanitises names to [a-z0-9_] and numbers repeats and empties', () => {
    const path = file(
      'names.tsv',
      '#Sample ID\tsample-id\t\tÉchantillon\tN50 (bp)\t__x__\tsample_id\n' +
        'S1\ta\tb\tc\t1\t2\t3\n',
    );
    expect(extractMetrics(path, { format: 'tsv' }).columns.map((c) => c.name)).toEqual([
      'sample_id',
      'sample_id_2',
      'col3',
      'echantillon',
      'n50_bp',
      'x',
      'sample_id_3',
    ]);
  });

  it('keeps a " in a TSV value and tolerates a trailing tab and CRLF line ends', () => {
    const path = file('quotes.tsv', 'name\tdesc\r\nS1\t5" insert\t\r\n');
    expect(extractMetrics(path, { format: 'tsv' }).rows).toEqual([['S1', '5" insert']]);
  });

  it('a row whose field count differs from the header is an error with its line', () => {
    const path = file('ragged.tsv', 'a\tb\tc\n1\t2\t3\n\n4\t5\n');
    expect(failure(path, { format: 'tsv' }).message).toBe(
      `${path}:4: 2 fields, but there are 3 columns (a, b, c)`,
    );
    expect(
      failure(fixture('mash-dist.tsv'), { format: 'tsv', header: ['a', 'b'] }).message,
    ).toMatch(/mash-dist\.tsv:1: 5 fields, but there are 2 columns \(a, b\)$/);
  });

  it('a declared column the file does not have is an error listing the columns it has', () => {
    const path = fixture('seqkit-stats.tsv');
    expect(failure(path, { format: 'tsv', columns: { N50: 'integer' } }).message).toBe(
      `${path}: column N50 is declared but the file has no such column (it has: file, format, type, num_seqs, sum_len, min_len, avg_len, max_len)`,
    );
  });

  it('an empty file needs a header; with one given it has no rows', () => {
    const path = file('empty.tsv', '');
    expect(failure(path, { format: 'tsv' }).message).toMatch(
      /the file is empty; expected a header line/,
    );
    expect(extractMetrics(path, { format: 'tsv', header: ['reference', 'distance'] })).toEqual({
      columns: [
        { name: 'reference', type: 'text' },
        { name: 'distance', type: 'text' },
      ],
      rows: [],
    });
  });

  it('a missing file is an error naming it', () => {
    const path = join(scratch, 'nope.tsv');
    expect(failure(path, { format: 'tsv' }).message).toMatch(
      new RegExp(
        `^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot read the results file: ENOENT`,
      ),
    );
  });
});

describe('extractMetrics: CSV', () => {
  it('reads quoted commas, doubled quotes and a value spanning lines', () => {
    expect(extractMetrics(fixture('assemblies.csv'), { format: 'csv' })).toEqual({
      columns: [
        { name: 'sample', type: 'text' },
        { name: 'organism', type: 'text' },
        { name: 'contigs', type: 'integer' },
        { name: 'total_length', type: 'integer' },
        { name: 'n50', type: 'integer' },
        { name: 'gc', type: 'real' },
        { name: 'notes', type: 'text' },
      ],
      rows: [
        ['S1', 'Escherichia coli, strain K-12', 87, 4641652, 133000, 50.79, null],
        [
          'S2',
          'Salmonella enterica subsp. enterica, serovar Typhimurium',
          112,
          4857450,
          98123,
          52.22,
          'contains "plasmid" contigs',
        ],
        ['S3', 'Unknown', null, null, null, null, 'assembly failed,\nsee the log'],
      ],
    });
  });

  it('reports the line a bad value starts on, and does not read 1,234 as a number in CSV', () => {
    const path = fixture('assemblies.csv');
    expect(failure(path, { format: 'csv', columns: { notes: 'real' } }).message).toBe(
      `${path}:3: column Notes: "contains \\"plasmid\\" contigs" is not a number`,
    );
    const grouped = file('grouped.csv', 'n\n"1,234"\n');
    expect(extractMetrics(grouped, { format: 'csv' }).rows).toEqual([['1,234']]);
  });

  it('malformed quoting is an error with file and line', () => {
    const path = file('bad.csv', 'a,b\n1,"x"y\n');
    expect(failure(path, { format: 'csv' }).message).toMatch(
      /bad\.csv:2: not valid CSV: Invalid Closing Quote/,
    );
  });
});

describe('extractMetrics: JSON', () => {
  it('picks declared dotted paths from a fastp report, named with _', () => {
    const table = extractMetrics(fixture('fastp.json'), {
      format: 'json',
      columns: {
        'summary.before_filtering.total_reads': 'integer',
        'summary.after_filtering.total_reads': 'integer',
        'summary.after_filtering.q30_rate': 'real',
        'filtering_result.too_many_N_reads': 'integer',
        command: 'text',
      },
    });
    expect(table).toEqual({
      columns: [
        { name: 'summary_before_filtering_total_reads', type: 'integer' },
        { name: 'summary_after_filtering_total_reads', type: 'integer' },
        { name: 'summary_after_filtering_q30_rate', type: 'real' },
        { name: 'filtering_result_too_many_n_reads', type: 'integer' },
        { name: 'command', type: 'text' },
      ],
      rows: [
        [
          2469134,
          2401876,
          0.947672,
          112,
          'fastp -i S1_R1.fq.gz -I S1_R2.fq.gz -o out/r1.fq.gz -O out/r2.fq.gz -j out/fastp.json',
        ],
      ],
    });
  });

  it('without dotted paths, flattens scalar leaves up to depth 3 and skips arrays', () => {
    const table = extractMetrics(fixture('fastp.json'), {
      format: 'json',
      columns: { duplication_rate: 'real' },
    });
    const types = Object.fromEntries(table.columns.map((c) => [c.name, c.type]));
    expect(table.rows).toHaveLength(1);
    expect(Object.keys(types)).toHaveLength(37);
    expect(types).toMatchObject({
      summary_fastp_version: 'text',
      summary_sequencing: 'text',
      summary_before_filtering_total_reads: 'integer',
      summary_before_filtering_q20_rate: 'real',
      filtering_result_too_many_n_reads: 'integer',
      duplication_rate: 'real',
      insert_size_peak: 'integer',
      adapter_cutting_read1_adapter_counts_agatcggaagagc: 'integer',
      read1_before_filtering_kmer_count_aaaaa: 'integer',
      command: 'text',
    });
    expect(Object.keys(types).filter((n) => /histogram|quality_curves/.test(n))).toEqual([]);
    const values = Object.fromEntries(table.columns.map((c, j) => [c.name, table.rows[0][j]]));
    expect(values.summary_after_filtering_gc_content).toBe(0.506931);
    expect(values.summary_fastp_version).toBe('0.23.4');
  });

  it('an array of objects gives one row each; keys missing from an object are null', () => {
    expect(extractMetrics(fixture('per-sample.json'), { format: 'json' })).toEqual({
      columns: [
        { name: 'sample', type: 'text' },
        { name: 'stats_reads', type: 'integer' },
        { name: 'stats_gc', type: 'real' },
        { name: 'ok', type: 'text' },
        { name: 'note', type: 'text' },
      ],
      rows: [
        ['S1', 100, 0.5, 'true', null],
        ['S2', 200, 1, 'false', 'low depth'],
      ],
    });
  });

  it('declared types coerce numeric strings and refuse what does not fit', () => {
    const path = file(
      'strings.json',
      '[{"n": "42", "x": "3.5", "s": 7}, {"n": 43, "x": 2, "s": "b"}]',
    );
    expect(
      extractMetrics(path, { format: 'json', columns: { n: 'integer', x: 'real', s: 'text' } })
        .rows,
    ).toEqual([
      [42, 3.5, '7'],
      [43, 2, 'b'],
    ]);
    expect(failure(path, { format: 'json', columns: { x: 'integer' } }).message).toBe(
      `${path}: [0].x: "3.5" is not an integer`,
    );
    const single = file('one.json', '{"summary": {"reads": "many"}}');
    expect(
      failure(single, { format: 'json', columns: { 'summary.reads': 'integer' } }).message,
    ).toBe(`${single}: summary.reads: "many" is not an integer`);
  });

  it('a declared path the report does not have is an error listing what is there', () => {
    const path = fixture('fastp.json');
    expect(
      failure(path, {
        format: 'json',
        columns: { 'summary.after_filtering.total_read': 'integer' },
      }).message,
    ).toBe(
      `${path}: summary.after_filtering.total_read is declared but not in the file (summary.after_filtering has: total_reads, total_bases, q20_bases, q30_bases, q20_rate, q30_rate, read1_mean_length, read2_mean_length, gc_content)`,
    );
    expect(
      failure(path, { format: 'json', columns: { 'summary.before_filtering': 'integer' } }).message,
    ).toBe(
      `${path}: summary.before_filtering is an object, not a single value; declare a field inside it`,
    );
  });

  it.each([
    ['not JSON', '{"a": 1,}', /: not valid JSON: /],
    ['a number', '42', /expected a JSON object or an array of objects, found a number/],
    ['an array of numbers', '[1, 2]', /item \[0\] is a number, not an object/],
  ])('refuses a document that is %s', (_what, content, message) => {
    expect(failure(file('doc.json', content), { format: 'json' }).message).toMatch(message);
  });

  it('refuses more columns than a table should hold, suggesting declared paths', () => {
    const wide = Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`k${i}`, i]));
    const path = file('wide.json', JSON.stringify({ kmer_count: wide }));
    expect(failure(path, { format: 'json' }).message).toMatch(
      /1001 columns, more than the 1000 a results table takes; declare the ones you want .*dotted paths/,
    );
  });
});
