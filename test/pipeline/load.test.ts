import { readFileSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import {
  PipelineError,
  formatPipelineProblem,
  shownPath,
  type PipelineProblem,
} from '../../src/pipeline/errors.js';
import {
  loadPipeline,
  loadPipelineText,
  templateParts,
  type LoadOptions,
} from '../../src/pipeline/load.js';
import type { JobSpec } from '../../src/pipeline/model.js';
import { pipelineJsonSchema } from '../../src/pipeline/schema.js';
import { BAD_CASES } from './bad-cases.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/pipelines');
const GOOD = resolve(FIXTURES, 'good');
const BAD = resolve(FIXTURES, 'bad');

function thrown(load: () => unknown): PipelineError {
  try {
    load();
  } catch (err) {
    if (err instanceof PipelineError) return err;
    throw err;
  }
  throw new Error('expected a PipelineError');
}

/** Every problem, formatted, with the fixture directory left out. */
function problemsOf(file: string, options: LoadOptions = {}): string[] {
  const dirPrefix = shownPath(dirname(file)) + sep;
  return thrown(() => loadPipeline(file, options)).problems.map((p) =>
    formatPipelineProblem(p).split(dirPrefix).join(''),
  );
}

describe('malformed pipelines: every problem, at its file:line:col', () => {
  it.each(BAD_CASES)('%s %j', (name, options, expected) => {
    const got = problemsOf(resolve(BAD, name), options);
    expect(got, got.join('\n')).toHaveLength(expected.length);
    got.forEach((line, i) => {
      const [prefix, part] = expected[i];
      expect(line.startsWith(`${prefix}: `), `${line}\ndoes not start with ${prefix}`).toBe(true);
      expect(line).toContain(part);
    });
  });

  it('has at least 40 malformed fixtures, each in the table', () => {
    const used = new Set(BAD_CASES.map(([name]) => name));
    expect(used.size).toBeGreaterThanOrEqual(40);
  });

  it('throws one PipelineError with a stable code; its message starts with the first problem', () => {
    const err = thrown(() => loadPipeline(resolve(BAD, 'many-problems.yaml')));
    expect(err.code).toBe('PIPELINE_INVALID');
    expect(err.message.split('\n')).toHaveLength(4);
    expect(err.message.split('\n')[0]).toBe(formatPipelineProblem(err.problems[0]));
  });

  it('formats the example from STYLE.md exactly', () => {
    const p: PipelineProblem = {
      file: 'pipeline.yaml',
      line: 14,
      column: 9,
      path: 'steps.assemble.memory',
      message: '"4 GB" is not a size',
      hint: 'use 4GiB or 4096MiB',
    };
    expect(formatPipelineProblem(p)).toBe(
      'pipeline.yaml:14:9 steps.assemble.memory: "4 GB" is not a size (use 4GiB or 4096MiB)',
    );
  });

  it('reports a pipeline file that does not exist', () => {
    const [problem] = thrown(() => loadPipeline(resolve(BAD, 'absent.yaml'))).problems;
    expect(problem).toMatchObject({ line: 0, message: 'not found' });
  });
});

/** The parts of a JobSpec the loader computes, without its position. */
function jobOf(job: JobSpec): Omit<JobSpec, 'at'> {
  const { at: _at, ...rest } = job;
  return rest;
}

describe('good pipelines: the normalised PipelineSpec', () => {
  it('minimal: built-in defaults, no samples', () => {
    const file = resolve(GOOD, 'minimal.yaml');
    const { spec, samples } = loadPipeline(file);
    const at = { file: shownPath(file), line: 3, column: 3 };
    expect(samples).toEqual([]);
    expect(spec).toEqual({
      name: 'hello',
      file,
      samples: { kind: 'none' },
      params: {},
      maxConcurrency: 0,
      continueOnFailure: true,
      steps: [
        {
          name: 'greet',
          scope: 'sample',
          hasSubsteps: false,
          parallel: false,
          needs: [],
          after: [],
          at,
          jobs: [
            {
              name: 'greet',
              image: 'alpine',
              command: ['echo', 'hello'],
              env: {},
              outputs: {},
              vars: [],
              secrets: [],
              vcpus: 1,
              memoryMiB: 1024,
              retry: 0,
              at,
            },
          ],
        },
      ],
      results: [],
    });
  });

  it('microbe-genome: defaults applied, units converted, vars collected, paths resolved', () => {
    const file = resolve(GOOD, 'microbe-genome.yaml');
    const { spec, samples } = loadPipeline(file);
    expect(spec.name).toBe('microbe-genome');
    expect(spec.description).toMatch(/^QC, assembly/);
    expect(spec.samples).toEqual({
      kind: 'sheet',
      path: resolve(GOOD, 'samples.csv'),
      at: { file: shownPath(file), line: 4, column: 1 },
    });
    // Numbers reach tools as written: 1.10 is not 1.1.
    expect(spec.params).toEqual({ MIN_LEN: '500', GENUS: 'Helicobacter', VERSION: '1.10' });
    expect(spec.maxConcurrency).toBe(4);
    expect(spec.continueOnFailure).toBe(false);
    expect(spec.steps.map((s) => [s.name, s.scope, s.hasSubsteps, s.parallel])).toEqual([
      ['qc', 'sample', false, false],
      ['assemble', 'sample', false, false],
      ['annotate', 'sample', true, true],
      ['sketch', 'sample', false, false],
      ['matrix', 'all', false, false],
    ]);
    const jobs = spec.steps.flatMap((s) => s.jobs);
    expect(jobOf(jobs[0])).toEqual({
      name: 'qc',
      image: 'strand/fastp:0.23',
      command: [
        'fastp',
        '-i',
        '$READS_1',
        '-I',
        '$READS_2',
        '-o',
        '$QC_R1',
        '-O',
        '$QC_R2',
        '-j',
        'out/fastp.json',
        '-w',
        '2',
      ],
      env: { FOO: 'x-$SAMPLE', LITERAL: 'cost: $$5' },
      outputs: { QC_R1: 'out/r1.fq.gz', QC_R2: 'out/r2.fq.gz', QC_JSON: 'out/fastp.json' },
      vars: ['READS_1', 'READS_2', 'QC_R1', 'QC_R2', 'SAMPLE'],
      secrets: [],
      vcpus: 2,
      memoryMiB: 2048,
      retry: 1,
      timeoutSeconds: 1800,
    });
    expect(jobs[0].at).toEqual({ file: shownPath(file), line: 13, column: 3 });
    const resources = jobs.map((j) => [j.name, j.vcpus, j.memoryMiB, j.retry, j.timeoutSeconds]);
    expect(resources).toEqual([
      ['qc', 2, 2048, 1, 1800],
      // timeout: none drops the default timeout.
      ['assemble', 2.5, 4096, 2, undefined],
      // The step's memory is its substeps' default; a substep may override it.
      ['annotate.genes', 1, 512, 2, 7200],
      ['annotate.rrna', 1, 1536, 2, 7200],
      ['sketch', 1, 1024, 2, 7200],
      ['matrix', 1, 1024, 2, 7200],
    ]);
    expect(jobs.map((j) => j.vars)).toEqual([
      ['READS_1', 'READS_2', 'QC_R1', 'QC_R2', 'SAMPLE'],
      ['QC_R1', 'QC_R2', 'MIN_LEN'],
      ['CONTIGS'],
      ['CONTIGS'],
      ['CONTIGS'],
      ['SKETCH', 'GENUS'],
    ]);
    expect(spec.results.map(({ at: _at, ...r }) => r)).toEqual([
      {
        step: 'qc',
        from: 'out/fastp.json',
        format: 'json',
        columns: { 'summary.before_filtering.total_reads': 'integer' },
      },
      { step: 'annotate.genes', from: 'out/count.tsv', format: 'tsv', columns: {} },
    ]);
    expect(samples.map((s) => s.id)).toEqual(['S1', 'S2']);
    expect(samples[0].values.READS_1).toBe(resolve(GOOD, 'reads/S1_R1.fq'));
    expect(samples[0].values.STRAIN).toBe('26695; rm -rf ~');
  });

  it('inline: inline samples, substeps in sequence, aggregate substeps, headerless results', () => {
    const file = resolve(GOOD, 'inline.yaml');
    const { spec, samples } = loadPipeline(file);
    expect(samples).toEqual([
      { id: '001', values: { READS: resolve(GOOD, 'reads/S1_R1.fq'), DEPTH: '30' } },
      { id: 'S-2', values: { READS: '/data/S2.fq', DEPTH: '12.50' } },
    ]);
    expect(spec.samples).toMatchObject({ kind: 'inline', rows: samples });
    expect(spec.params).toEqual({ DEBUG: 'true', THREADS: '4' });
    const [map, report] = spec.steps;
    expect([map.scope, map.parallel, report.scope]).toEqual(['sample', false, 'all']);
    expect(map.jobs.map(jobOf)).toEqual([
      {
        name: 'map.align',
        image: 'strand/bwa',
        command: ['bwa', 'mem', '-t', '$THREADS', 'ref.fa', '$READS'],
        env: {},
        outputs: { BAM: 'out/aln.bam' },
        vars: ['THREADS', 'READS'],
        secrets: [],
        vcpus: 0.5,
        memoryMiB: 2048,
        retry: 9,
        timeoutSeconds: 90,
      },
      {
        name: 'map.index',
        image: 'strand/samtools',
        command: ['samtools', 'index', '$BAM'],
        env: {},
        outputs: { BAI: 'out/aln.bam.bai' },
        vars: ['BAM'],
        secrets: [],
        vcpus: 0.5,
        memoryMiB: 2048,
        retry: 9,
        timeoutSeconds: 86400,
      },
    ]);
    expect(report.jobs.map((j) => [j.name, j.vars, j.memoryMiB])).toEqual([
      ['report.merge', ['BAM'], 256],
      ['report.stats', ['ALL_BAM', 'DEBUG'], 256],
    ]);
    expect(report.jobs[1].env).toEqual({ DEBUG: '${DEBUG}', PRICE: '$$1' });
    expect(spec.results.map(({ at: _at, ...r }) => r)).toEqual([
      {
        step: 'report.stats',
        from: 'out/stats.txt',
        format: 'tsv',
        columns: { value: 'real' },
        header: ['metric', 'value'],
      },
      { step: 'map.align', from: 'out/flagstat.csv', format: 'csv', columns: {} },
    ]);
  });

  it('nf-core sheet: `sample` ids, FASTQ_1 … columns', () => {
    const { spec, samples } = loadPipeline(resolve(GOOD, 'nfcore.yaml'));
    expect(spec.steps[0].jobs[0].vars).toEqual(['FASTQ_1', 'FASTQ_2', 'SINGLE_END']);
    expect(samples.map((s) => s.id)).toEqual(['S1', 'S2']);
  });
});

describe('command-line overrides', () => {
  const file = resolve(GOOD, 'microbe-genome.yaml');

  it('--samples S2 keeps only that sample', () => {
    const { samples } = loadPipeline(file, { samples: 'S2' });
    expect(samples.map((s) => s.id)).toEqual(['S2']);
  });

  it('--samples with an unknown id names it', () => {
    expect(problemsOf(file, { samples: 'S1, S3' })).toEqual([
      '--samples: no sample "S3"; did you mean "S1"? (samples: S1, S2)',
    ]);
  });

  it('--samples with a sheet replaces the pipeline’s sheet; its paths resolve from its own folder', () => {
    const sheet = resolve(GOOD, 'more-samples.csv');
    const { spec, samples } = loadPipeline(file, { samples: sheet });
    expect(spec.samples).toEqual({
      kind: 'sheet',
      path: sheet,
      at: { file: '', line: 0, column: 0 },
    });
    expect(samples).toEqual([
      {
        id: 'S3',
        values: { READS_1: resolve(GOOD, 'reads/S1_R1.fq'), READS_2: 'missing.fq', STRAIN: 'J99' },
      },
    ]);
  });

  it('--param overrides a default; an undeclared one is an error', () => {
    expect(loadPipeline(file, { params: { MIN_LEN: '1000' } }).spec.params.MIN_LEN).toBe('1000');
    expect(problemsOf(file, { params: { MIN_LEM: '3' } })).toEqual([
      '--param: "MIN_LEM" is not a parameter of this pipeline; did you mean "MIN_LEN"? (parameters: MIN_LEN, GENUS, VERSION)',
    ]);
  });

  it('--param gives a parameter without a default its value', () => {
    const { spec } = loadPipeline(resolve(BAD, 'param-required.yaml'), {
      params: { GENUS: 'Campylobacter' },
    });
    expect(spec.params.GENUS).toBe('Campylobacter');
    expect(spec.steps[0].jobs[0].vars).toContain('GENUS');
  });
});

describe('loadPipelineText', () => {
  it('loads from text; positions and relative paths as if read from the file named', () => {
    const text = [
      'name: t',
      'samples: [{ sample: A, R1: reads/S1_R1.fq }]',
      'steps:',
      '  s: { image: x, command: [cat, $R1] }',
    ].join('\n');
    const { spec, samples } = loadPipelineText(text, resolve(GOOD, 'virtual.yaml'));
    expect(samples).toEqual([{ id: 'A', values: { R1: resolve(GOOD, 'reads/S1_R1.fq') } }]);
    expect(spec.steps[0].jobs[0].at.line).toBe(4);
  });

  it('names the file it was given in problems', () => {
    const err = thrown(() => loadPipelineText('name: t\nsteps: {}\n', 'pipeline.yaml'));
    expect(err.message).toBe('pipeline.yaml:2:1 steps: a pipeline needs at least one step');
  });
});

describe('templateParts', () => {
  it.each<[string, unknown[]]>([
    ['plain', [{ text: 'plain' }]],
    ['$READS_1', [{ var: 'READS_1' }]],
    ['--out=$OUT', [{ text: '--out=' }, { var: 'OUT' }]],
    ['${QC_R1}_sorted.bam', [{ var: 'QC_R1' }, { text: '_sorted.bam' }]],
    ['$A$B', [{ var: 'A' }, { var: 'B' }]],
    ['cost: $$5', [{ text: 'cost: $5' }]],
    ['$$HOME', [{ text: '$HOME' }]],
    // A `$` that cannot start a reference is text: no shell ever sees it.
    ['{print $1}', [{ text: '{print $1}' }]],
    ['$(id)', [{ text: '$(id)' }]],
    ['end$', [{ text: 'end$' }]],
  ])('%j', (text, parts) => {
    expect(templateParts(text)).toEqual({ parts });
  });

  it.each([
    ['${QC_R1', '"${" is not closed'],
    ['${1X}', '"${1X}" is not a variable reference'],
  ])('%j is an error', (text, message) => {
    expect(templateParts(text).problem?.message).toBe(message);
  });
});

type JsonSchema = Record<string, unknown>;

/** Enough of JSON Schema to check what zod emits: type, enum, pattern, bounds, objects, arrays, anyOf. */
function schemaErrors(schema: JsonSchema, value: unknown, path = ''): string[] {
  if (Array.isArray(schema.anyOf)) {
    const ok = (schema.anyOf as JsonSchema[]).some(
      (s) => schemaErrors(s, value, path).length === 0,
    );
    return ok ? [] : [`${path}: matches no anyOf branch`];
  }
  const kind =
    value === null
      ? 'null'
      : Array.isArray(value)
        ? 'array'
        : typeof value === 'number' && Number.isInteger(value)
          ? 'integer'
          : typeof value;
  if (schema.type !== undefined) {
    const types = ([] as string[]).concat(schema.type as string | string[]);
    const fits = types.includes(kind) || (kind === 'integer' && types.includes('number'));
    if (!fits) return [`${path}: ${kind} is not ${types.join('|')}`];
  }
  const errors: string[] = [];
  if (Array.isArray(schema.enum) && !schema.enum.includes(value))
    errors.push(`${path}: not in enum`);
  if (typeof value === 'string' && typeof schema.pattern === 'string') {
    if (!new RegExp(schema.pattern, 'u').test(value)) errors.push(`${path}: ${value} !~ pattern`);
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) errors.push(`${path}: < min`);
    if (typeof schema.maximum === 'number' && value > schema.maximum) errors.push(`${path}: > max`);
    if (typeof schema.exclusiveMinimum === 'number' && value <= schema.exclusiveMinimum) {
      errors.push(`${path}: <= exclusiveMinimum`);
    }
  }
  if (kind === 'object') {
    const obj = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
    for (const key of (schema.required ?? []) as string[]) {
      if (!(key in obj)) errors.push(`${path}.${key}: required`);
    }
    for (const [key, v] of Object.entries(obj)) {
      if (schema.propertyNames)
        errors.push(...schemaErrors(schema.propertyNames as JsonSchema, key, `${path}[${key}]`));
      if (props[key]) errors.push(...schemaErrors(props[key], v, `${path}.${key}`));
      else if (schema.additionalProperties === false) errors.push(`${path}.${key}: not allowed`);
      else if (typeof schema.additionalProperties === 'object') {
        errors.push(
          ...schemaErrors(schema.additionalProperties as JsonSchema, v, `${path}.${key}`),
        );
      }
    }
  }
  if (kind === 'array' && schema.items) {
    (value as unknown[]).forEach((v, i) =>
      errors.push(...schemaErrors(schema.items as JsonSchema, v, `${path}[${i}]`)),
    );
  }
  return errors;
}

describe('pipelineJsonSchema', () => {
  const schema = pipelineJsonSchema();
  const yamlOf = (file: string): unknown => parse(readFileSync(file, 'utf8'));

  it('is a draft 2020-12 object schema naming every top-level key', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.type).toBe('object');
    expect(schema.required).toEqual(['name', 'steps']);
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties as object)).toEqual([
      'name',
      'description',
      'samples',
      'params',
      'defaults',
      'max_concurrency',
      'continue_on_failure',
      'executor',
      'steps',
      'results',
    ]);
    expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
  });

  it.each(['minimal.yaml', 'microbe-genome.yaml', 'inline.yaml', 'nfcore.yaml'])(
    'accepts good/%s',
    (name) => expect(schemaErrors(schema, yamlOf(resolve(GOOD, name)))).toEqual([]),
  );

  it.each([
    ['unknown-key-step.yaml', '.steps.qc.memroy: not allowed'],
    ['size-space.yaml', '.steps.assemble.memory: 4 GB !~ pattern'],
    ['step-name.yaml', '.steps[QC]: QC !~ pattern'],
    ['results-bad-format.yaml', '.results.qc.format: not in enum'],
  ])('flags bad/%s as an editor would', (name, error) =>
    expect(schemaErrors(schema, yamlOf(resolve(BAD, name)))).toContain(error),
  );
});

describe('robustness', () => {
  const file = resolve(GOOD, 'microbe-genome.yaml');
  const text = readFileSync(file, 'utf8');
  const base = parse(text) as unknown;

  function pathsOf(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
    if (value === null || typeof value !== 'object') return [prefix];
    const keys: (string | number)[] = Array.isArray(value)
      ? value.map((_, i) => i)
      : Object.keys(value);
    const inner = keys.flatMap((k) =>
      pathsOf((value as Record<string | number, unknown>)[k], [...prefix, k]),
    );
    return [prefix, ...inner];
  }

  /** A spec, or a PipelineError; anything else thrown is a loader bug. */
  function loadsOrExplains(source: string): boolean {
    try {
      loadPipelineText(source, file);
      return true;
    } catch (err) {
      if (err instanceof PipelineError) return err.problems.length > 0;
      throw err;
    }
  }

  it('any value at any path gives a spec or a PipelineError', () => {
    const paths = pathsOf(base).filter((p) => p.length > 0);
    fc.assert(
      fc.property(fc.constantFrom(...paths), fc.jsonValue({ maxDepth: 2 }), (path, value) => {
        const doc = structuredClone(base) as Record<string | number, unknown>;
        let node = doc;
        for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
        node[path[path.length - 1]] = value;
        return loadsOrExplains(stringify(doc));
      }),
      { numRuns: 300 },
    );
  });

  it('any cut of the text gives a spec or a PipelineError', () => {
    fc.assert(
      fc.property(fc.nat(text.length), fc.nat(40), (start, length) =>
        loadsOrExplains(text.slice(0, start) + text.slice(start + length)),
      ),
      { numRuns: 300 },
    );
  });
});
