/**
 * Bad input through the command line. Every malformed pipeline and samples fixture, and every
 * bad run option, makes `strand run` exit 2 with the problem at its file:line:col, and nothing
 * is written: the engine and the results database are never opened, and the Strand home stays
 * empty (no strand.db, no results.db, no store/). `strand validate` reports the same problems;
 * `strand compile` writes no output.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  afterAll,
  beforeAll,
  beforeEach,
  describe,
  expect,
  it,
  vi,
  type MockInstance,
} from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { shownPath } from '../../src/pipeline/errors.js';
import type { LoadOptions } from '../../src/pipeline/load.js';
import { SqliteResults } from '../../src/results/sqlite.js';
import { BAD_CASES } from './bad-cases.js';
import { strand } from './cli.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const FIXTURES = resolve(HERE, '../fixtures/pipelines');
const BAD = join(FIXTURES, 'bad');
const GOOD = join(FIXTURES, 'good');
const EXAMPLE = resolve(HERE, '../../examples/word-count/pipeline.yaml');
/** A pipeline without samples whose one step uses no variable: a sheet's problems are its own. */
const MINIMAL = join(GOOD, 'minimal.yaml');

type Expected = [string, string][];

/** Every home and output directory of this file, removed at the end. */
const TMP = mkdtempSync(join(tmpdir(), 'strand-cli-bad-input-'));

/** Every distinct malformed input sent through `strand run` (the test at the end counts them). */
const inputs = new Set<string>();

let opened: [string, MockInstance][] = [];
beforeAll(() => {
  opened = [
    ['Engine.open', vi.spyOn(Engine, 'open')],
    ['Engine.openWhenFree', vi.spyOn(Engine, 'openWhenFree')],
    ['SqliteResults.open', vi.spyOn(SqliteResults, 'open')],
    ['SqliteResults.inHome', vi.spyOn(SqliteResults, 'inHome')],
  ];
});
beforeEach(() => {
  for (const [, spy] of opened) spy.mockClear();
});
afterAll(() => {
  vi.restoreAllMocks();
  rmSync(TMP, { recursive: true, force: true });
});

/** A fresh, empty Strand home. */
function freshHome(): string {
  return mkdtempSync(join(TMP, 'home-'));
}

/** The engine and the results database were never opened, and the home is still empty. */
function expectNothingWritten(home: string): void {
  for (const [name, spy] of opened) expect(spy, `${name} was called`).not.toHaveBeenCalled();
  expect(existsSync(join(home, 'strand.db')), 'strand.db: the engine was opened').toBe(false);
  expect(existsSync(join(home, 'results.db')), 'results.db was created').toBe(false);
  const store = join(home, 'store');
  expect(existsSync(store) ? readdirSync(store, { recursive: true }) : [], 'store/').toEqual([]);
  expect(readdirSync(home, { recursive: true }), `written under ${home}`).toEqual([]);
}

/** Command-line arguments for loader options. */
function optionArgs(options: LoadOptions): string[] {
  const args: string[] = [];
  if (options.samples !== undefined) args.push('--samples', options.samples);
  for (const [k, v] of Object.entries(options.params ?? {})) args.push('--param', `${k}=${v}`);
  return args;
}

/**
 * stderr is the headline `strand: <file>: N problems; nothing was run`, then each problem on its
 * own line, in order: `  <dir>/<file>:line:col path: message`, or `  --option: message`.
 */
function expectProblems(err: string, file: string, dir: string, expected: Expected): void {
  const lines = err.split('\n');
  const n = expected.length;
  expect(lines[0]).toBe(`strand: ${file}: ${n} problem${n === 1 ? '' : 's'}; nothing was run`);
  expect(lines.slice(1, -1), err).toHaveLength(n);
  expected.forEach(([prefix, part], i) => {
    const where = prefix.startsWith('--') ? prefix : `${shownPath(dir)}${sep}${prefix}`;
    const line = lines[i + 1];
    expect(line.startsWith(`  ${where}: `), `${line}\ndoes not start with "  ${where}: "`).toBe(
      true,
    );
    expect(line).toContain(part);
  });
}

describe('strand run: every malformed pipeline fixture', () => {
  it.each(BAD_CASES)('%s %j: exit 2, located, nothing written', async (name, options, expected) => {
    const home = freshHome();
    const file = join(BAD, name);
    const args = optionArgs(options);
    inputs.add(`${name} ${args.join(' ')}`);
    const r = await strand('run', file, '--home', home, ...args);
    expect(r.code, r.err).toBe(2);
    expect(r.out).toBe('');
    expectProblems(r.err, file, BAD, expected);
    expectNothingWritten(home);
  });
});

/** The malformed sheets (samples.test.ts), each given with `--samples` to a pipeline with none. */
const BAD_SHEETS: [string, Expected][] = [
  [
    'ragged.csv',
    [
      ['ragged.csv:3:1 samples[1]', 'has 2 fields; the header has 3'],
      ['ragged.csv:4:1 samples[2]', 'has 4 fields; the header has 3'],
    ],
  ],
  ['duplicate-ids.csv', [['duplicate-ids.csv:4:1 samples[2].sample', 'sample "S1" is repeated']]],
  [
    'bad-ids.tsv',
    [
      ['bad-ids.tsv:2:1 samples[0].sample', '"S 1" is not a sample id'],
      ['bad-ids.tsv:3:1 samples[1].sample', '"_all" is reserved'],
      ['bad-ids.tsv:4:1 samples[2].sample', 'no sample id'],
    ],
  ],
  ['empty-id.csv', [['empty-id.csv:3:1 samples[1].id', 'no sample id']]],
  ['header-only.csv', [['header-only.csv:1:1 samples', 'no samples (add one row per sample)']]],
  [
    'header-collision.csv',
    [['header-collision.csv:1:12 header', '"fastq_1" and "FASTQ-1" both become $FASTQ_1']],
  ],
  ['no-id-column.csv', [['no-id-column.csv:1:1 header', 'no sample id column']]],
  [
    'reserved-column.csv',
    [['reserved-column.csv:1:20 header', 'column "strand_queue" is reserved']],
  ],
  ['bad-quote.csv', [['bad-quote.csv:2:4 samples', 'a quoted value is never closed']]],
  [
    'blank-lines.csv',
    [['blank-lines.csv:6:1 samples[2].id', 'sample "S2" is repeated (first on line 5)']],
  ],
  [
    'crlf-duplicate.csv',
    [['crlf-duplicate.csv:5:1 samples[2].id', 'sample "S1" is repeated (first on line 2)']],
  ],
];

describe('strand run --samples <malformed sheet>', () => {
  it.each(BAD_SHEETS)(
    '%s: exit 2, located in the sheet, nothing written',
    async (name, expected) => {
      const home = freshHome();
      inputs.add(`minimal.yaml --samples ${name}`);
      const r = await strand('run', MINIMAL, '--samples', join(BAD, name), '--home', home);
      expect(r.code, r.err).toBe(2);
      expectProblems(r.err, MINIMAL, BAD, expected);
      expectNothingWritten(home);
    },
  );

  it('--samples with a sheet that does not exist', async () => {
    const home = freshHome();
    inputs.add('minimal.yaml --samples nowhere.csv');
    const r = await strand('run', MINIMAL, '--samples', join(BAD, 'nowhere.csv'), '--home', home);
    expect(r.code, r.err).toBe(2);
    expectProblems(r.err, MINIMAL, BAD, [['--samples', 'nowhere.csv" not found']]);
    expectNothingWritten(home);
  });
});

describe('strand run with bad options', () => {
  /** Problems the loader finds in options: listed under the headline like file problems. */
  const loaderCases: [string[], Expected][] = [
    [
      ['--samples', 'UNKNOWN_ID'],
      [['--samples', 'no sample "UNKNOWN_ID" (samples: alpha, beta, empty)']],
    ],
    [['--samples', 'alpha,bta'], [['--samples', 'no sample "bta"; did you mean "beta"?']]],
    [
      ['--param', 'NOPE=1'],
      [['--param', '"NOPE" is not a parameter of this pipeline (parameters: MIN_COUNT)']],
    ],
    [
      ['--param', 'MIN_CONUT=1'],
      [['--param', '"MIN_CONUT" is not a parameter of this pipeline; did you mean "MIN_COUNT"?']],
    ],
    [
      ['--samples', 'UNKNOWN_ID', '--param', 'NOPE=1'],
      // Command-line problems come in the order the loader checks them: --param, then --samples.
      [
        ['--param', '"NOPE" is not a parameter'],
        ['--samples', 'no sample "UNKNOWN_ID"'],
      ],
    ],
  ];
  it.each(loaderCases)(
    '%j: exit 2, every problem listed, nothing written',
    async (extra, expected) => {
      const home = freshHome();
      inputs.add(`word-count ${extra.join(' ')}`);
      const r = await strand('run', EXAMPLE, '--home', home, ...extra);
      expect(r.code, r.err).toBe(2);
      expectProblems(r.err, EXAMPLE, dirname(EXAMPLE), expected);
      expectNothingWritten(home);
    },
  );

  /** Problems the command finds itself: one line, `strand: <message>`. */
  const commandCases: [string[], string][] = [
    [
      ['--from', 'nosuchstep'],
      '--from nosuchstep: no such step (steps: words, count, frequent, summary)',
    ],
    [['--from', 'frequnt'], '--from frequnt: no such step; did you mean "frequent"?'],
    [
      ['--to', 'nosuchstep'],
      '--to nosuchstep: no such step (steps: words, count, frequent, summary)',
    ],
    [['--to', 'sumary'], '--to sumary: no such step; did you mean "summary"?'],
    [['--only', 'nosuchstep'], 'nosuchstep: no such step (steps: words, count, frequent, summary)'],
    [
      ['--only', 'words', '--from', 'count'],
      '--only runs one step; it cannot be combined with --from or --to',
    ],
    [
      ['--only', 'words', '--to', 'count'],
      '--only runs one step; it cannot be combined with --from or --to',
    ],
    [
      ['--from', 'frequent', '--to', 'words'],
      '--to words does not depend on --from frequent: no step runs after frequent and before words',
    ],
    [['--from', 'summary', '--to', 'count'], '--to count does not depend on --from summary'],
    // The summary reads the counts' stats, not what `frequent` makes.
    [['--from', 'frequent', '--to', 'summary'], '--to summary does not depend on --from frequent'],
    [['--param', 'novalue'], '--param "novalue": write NAME=value'],
    [['--param', '=1'], '--param "=1": write NAME=value'],
    [['--samples', ','], 'no samples (give a sheet under samples: or --samples)'],
    [['--dry-run', '--from', 'nosuchstep'], '--from nosuchstep: no such step'],
  ];
  it.each(commandCases)('%j: exit 2, one line, nothing written', async (extra, message) => {
    const home = freshHome();
    inputs.add(`word-count ${extra.join(' ')}`);
    const r = await strand('run', EXAMPLE, '--home', home, ...extra);
    expect(r.code, r.err).toBe(2);
    expect(r.err.startsWith('strand: '), r.err).toBe(true);
    expect(r.err.split('\n'), r.err).toHaveLength(2);
    expect(r.err).toContain(message);
    expectNothingWritten(home);
  });
});

describe('strand run with a file that is not a pipeline', () => {
  const cases: [string, string, string][] = [
    [
      'a file that does not exist',
      join(BAD, 'absent.yaml'),
      `${shownPath(BAD)}${sep}absent.yaml: not found`,
    ],
    // A directory stands for its pipeline.yaml (`strand run .`); this one has none.
    ['a directory without a pipeline.yaml', BAD, `${shownPath(BAD)}${sep}pipeline.yaml: not found`],
    [
      'a samples sheet',
      join(GOOD, 'samples.csv'),
      `${shownPath(GOOD)}${sep}samples.csv:1:1: a pipeline is a mapping of keys`,
    ],
  ];
  it.each(cases)('%s: exit 2, nothing written', async (_what, file, message) => {
    const home = freshHome();
    inputs.add(file);
    const r = await strand('run', file, '--home', home);
    expect(r.code, r.err).toBe(2);
    expect(r.err).toContain(`strand: ${file}: 1 problem; nothing was run\n  ${message}`);
    expectNothingWritten(home);
  });

  it('a pipeline with per-sample steps and no samples: exit 2, nothing written', async () => {
    const home = freshHome();
    inputs.add('minimal.yaml (no samples)');
    const r = await strand('run', MINIMAL, '--home', home);
    expect(r.code, r.err).toBe(2);
    expect(r.err).toBe(
      `strand: ${MINIMAL}: no samples (give a sheet under samples: or --samples)\n`,
    );
    expectNothingWritten(home);
  });
});

describe('strand validate', () => {
  /** validate has no --param: the cases that need one are for `run` only. */
  const validatable = BAD_CASES.filter(([, options]) => options.params === undefined);

  it.each(validatable)(
    '%s %j: exit 2 with the same problems as run',
    async (name, options, expected) => {
      const file = join(BAD, name);
      const r = await strand('validate', file, ...optionArgs(options));
      expect(r.code, r.err).toBe(2);
      expect(r.out).toBe('');
      expectProblems(r.err, file, BAD, expected);
      for (const [spy, fn] of opened) expect(fn, spy).not.toHaveBeenCalled();
    },
  );

  it.each(BAD_SHEETS)('--samples %s: exit 2, located in the sheet', async (name, expected) => {
    const r = await strand('validate', MINIMAL, '--samples', join(BAD, name));
    expect(r.code, r.err).toBe(2);
    expectProblems(r.err, MINIMAL, BAD, expected);
  });

  const good = [
    ...readdirSync(GOOD)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => join(GOOD, f)),
    EXAMPLE,
  ];
  it('covers every good fixture and the example', () =>
    expect(good.length).toBeGreaterThanOrEqual(5));

  it.each(good)('%s: exit 0, valid', async (file) => {
    const r = await strand('validate', file);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toMatch(
      new RegExp(
        `^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: valid \\(\\d+ steps, \\d+ jobs, \\d+ samples\\)\\n$`,
      ),
    );
    for (const [spy, fn] of opened) expect(fn, spy).not.toHaveBeenCalled();
  });
});

describe('strand compile with bad input writes nothing', () => {
  const compilable = BAD_CASES.filter(([, options]) => options.params === undefined);
  it.each(compilable)('%s %j: exit 2, no output directory', async (name, options, expected) => {
    const out = join(mkdtempSync(join(TMP, 'compile-')), 'build');
    const file = join(BAD, name);
    const r = await strand('compile', file, '-o', out, ...optionArgs(options));
    expect(r.code, r.err).toBe(2);
    expect(r.out).toBe('');
    expectProblems(r.err, file, BAD, expected);
    expect(existsSync(out)).toBe(false);
  });
});

describe('coverage', () => {
  it('at least 40 distinct malformed inputs went through strand run', () => {
    expect(inputs.size).toBeGreaterThanOrEqual(40);
  });

  it('every malformed pipeline fixture in bad/ is in the table', () => {
    const inTable = new Set(BAD_CASES.map(([name]) => name));
    const pipelines = readdirSync(BAD).filter((f) => /\.yaml(\.txt)?$/.test(f));
    expect(pipelines.filter((f) => !inTable.has(f))).toEqual([]);
  });

  it('every malformed sheet in bad/ is given to strand run with --samples', () => {
    const sheets = readdirSync(BAD).filter((f) => /\.(csv|tsv)$/.test(f) && f !== 'ok.csv');
    expect(sheets.sort()).toEqual(BAD_SHEETS.map(([name]) => name).sort());
  });
});

/** Bugs these tests found (now fixed), kept so they stay fixed. */
describe('once bugs', () => {
  it('--only with an unknown step names --only, not --from', async () => {
    const r = await strand('run', EXAMPLE, '--home', freshHome(), '--only', 'nosuchstep');
    expect(r.code).toBe(2);
    expect(r.err).toContain('--only nosuchstep: no such step');
  });

  it('an unsupported or unreachable --store URL is bad input (exit 2), not a failure (exit 1)', async () => {
    // Nothing listens on port 9: the s3:// store is refused before any job, naming the endpoint.
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9',
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'secret',
      AWS_REGION: 'us-east-1',
    });
    try {
      for (const url of ['s3://bucket/x', 'ftp://host/x', 'file://host/x']) {
        const home = freshHome();
        const r = await strand('run', EXAMPLE, '--home', home, '--store', url);
        expect(r.code, r.err).toBe(2);
        if (url.startsWith('s3:')) expect(r.err).toContain('http://127.0.0.1:9');
        expectNothingWritten(home);
      }
    } finally {
      process.env = saved;
    }
  });

  it('strand validate --json prints the problems of a bad pipeline as JSON', async () => {
    const file = join(BAD, 'param-required.yaml');
    const r = await strand('validate', file, '--json');
    expect(r.code).toBe(2);
    expect(JSON.parse(r.out)).toMatchObject({ file, valid: false });
  });

  it('strand validate and compile accept --param (the hint says to pass one)', async () => {
    // param-required.yaml is fine once GENUS is given, but only `run` has --param: validate and
    // compile can never succeed on a pipeline with a parameter without a default.
    const file = join(BAD, 'param-required.yaml');
    expect((await strand('validate', file, '--param', 'GENUS=x')).code).toBe(0);
    const out = mkdtempSync(join(TMP, 'compile-'));
    expect((await strand('compile', file, '-o', out, '--param', 'GENUS=x')).code).toBe(0);
  });
});
