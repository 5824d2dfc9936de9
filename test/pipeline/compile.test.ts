/**
 * Compiled pipelines are plain ASL: every example passes Strand's validator and asl-validator,
 * and the structure follows the pipeline (Map, Parallel, chains, router, retries, job definitions).
 */
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { validate } from '../../src/asl/validate.js';
import { run } from '../../src/cli/main.js';
import { compilePipeline } from '../../src/pipeline/compile.js';
import { loadPipeline, loadPipelineText } from '../../src/pipeline/load.js';

const aslValidator = createRequire(import.meta.url)('asl-validator') as (definition: unknown) => {
  isValid: boolean;
  errors: unknown[];
};
const HERE = dirname(fileURLToPath(import.meta.url));
const GOOD = resolve(HERE, '../fixtures/pipelines/good');
const FILES = [
  ...readdirSync(GOOD)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => join(GOOD, f)),
  resolve(HERE, '../../examples/word-count/pipeline.yaml'),
];

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function compiled(file: string) {
  const { spec, samples } = loadPipeline(file);
  return { spec, ...compilePipeline(spec, { columns: Object.keys(samples[0]?.values ?? {}) }) };
}

/** Every state of a definition, nested ones included, by name. */
function allStates(def: Obj, out: Record<string, Obj> = {}): Record<string, Obj> {
  for (const [name, state] of Object.entries(def.States as Obj)) {
    out[name] = state as Obj;
    for (const b of (state as Obj).Branches ?? []) allStates(b, out);
    if ((state as Obj).ItemProcessor) allStates((state as Obj).ItemProcessor, out);
  }
  return out;
}

describe('compiled pipelines are valid ASL', () => {
  it.each(FILES)('%s passes both validators', (file) => {
    const { definition } = compiled(file);
    expect(validate(definition)).toEqual([]);
    const result = aslValidator(definition);
    expect(result.errors).toEqual([]);
    expect(result.isValid).toBe(true);
  });
});

describe('job definitions', () => {
  it('one per job, $VAR → Ref::VAR, own outputs → their paths, resources as strings', () => {
    const { spec, jobDefinitions } = compiled(join(GOOD, 'microbe-genome.yaml'));
    expect(jobDefinitions.map((d) => d.jobDefinitionName)).toEqual(
      spec.steps.flatMap((s) => s.jobs.map((j) => `microbe-genome-${j.name.replace('.', '-')}`)),
    );
    const qc = jobDefinitions.find((d) => d.jobDefinitionName === 'microbe-genome-qc')!;
    expect(qc.containerProperties.command).toEqual([
      'fastp',
      '-i',
      'Ref::READS_1',
      '-I',
      'Ref::READS_2',
      '-o',
      'out/r1.fq.gz',
      '-O',
      'out/r2.fq.gz',
      '-j',
      'out/fastp.json',
      '-w',
      '2',
    ]);
    expect(qc.containerProperties.resourceRequirements).toEqual([
      { type: 'VCPU', value: '2' },
      { type: 'MEMORY', value: '2048' },
    ]);
    expect(qc.timeout).toEqual({ attemptDurationSeconds: 1800 });
    expect(qc.containerProperties.image).toBe('strand/fastp:0.23');
  });
});

describe('structure', () => {
  const text = (extra: string) =>
    [
      'name: shape',
      'samples: [ { id: S1 }, { id: S2 } ]',
      extra,
      'steps:',
      '  a: { image: x, command: [sort, -o, a.txt, /dev/null], outputs: { A: a.txt }, retry: 3 }',
      '  b:',
      '    parallel: true',
      '    substeps:',
      '      one: { image: x, command: [sort, -o, one.txt, $A], outputs: { ONE: one.txt } }',
      '      two: { image: x, command: [sort, -o, two.txt, $A] }',
      '  c:',
      '    substeps:',
      '      first: { image: x, command: [sort, -o, f.txt, $ONE], outputs: { F: f.txt } }',
      '      second: { image: x, command: [sort, $F] }',
      '  all: { aggregate: true, image: x, command: [sort, $A] }',
    ].join('\n');
  const build = (extra = '') => {
    const { spec } = loadPipelineText(text(extra), join(tmpdir(), 'shape.yaml'));
    return compilePipeline(spec).definition as unknown as Obj;
  };

  it('a Map over samples; parallel substeps a Parallel state; sequential ones a chain', () => {
    const def = build();
    const states = allStates(def);
    expect(def.States.Samples.Type).toBe('Map');
    expect(states.b.Type).toBe('Parallel');
    expect(states.b.Branches.map((br: Obj) => br.StartAt)).toEqual(['b.one', 'b.two']);
    expect(states['c.first: publish'].Next).toBe('c.second');
    expect(states['a'].Retry).toEqual([
      expect.objectContaining({ ErrorEquals: ['States.TaskFailed'], MaxAttempts: 3 }),
    ]);
    expect(states['a'].Catch[0].Next).toBe('a: failed');
    expect(states['a: failed'].Next).toBe('a: stop');
    expect(states['a: stop'].Type).toBe('Fail');
    // Router: one choice per per-sample step after the first, plus the aggregate step.
    expect(states.Route.Choices.map((c: Obj) => c.StringEquals)).toEqual(['b', 'c', 'all']);
    expect(def.States.Collect.Next).toBe('Route all');
    expect(states['c: end?'].Choices[0]).toEqual({
      Variable: '$.run.to',
      StringEquals: 'c',
      Next: 'Sample done',
    });
  });

  it('continue_on_failure picks a Distributed Map tolerating every failure; max_concurrency is MaxConcurrency', () => {
    const tolerant = build('continue_on_failure: true\nmax_concurrency: 3').States.Samples;
    expect(tolerant.ItemProcessor.ProcessorConfig).toEqual({
      Mode: 'DISTRIBUTED',
      ExecutionType: 'STANDARD',
    });
    expect(tolerant.ToleratedFailurePercentage).toBe(100);
    expect(tolerant.MaxConcurrency).toBe(3);
    const strict = build('continue_on_failure: false').States.Samples;
    expect(strict.ItemProcessor.ProcessorConfig).toBeUndefined();
    expect(strict.ToleratedFailurePercentage).toBeUndefined();
    expect(strict.MaxConcurrency).toBeUndefined();
  });
});

describe('strand compile', () => {
  it('writes the ASL and the job definitions, byte-identical when run twice', async () => {
    const file = FILES.at(-1)!;
    const outputs: Record<string, string>[] = [];
    for (let i = 0; i < 2; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'strand-compile-'));
      let out = '';
      const code = await run(['node', 'strand', 'compile', file, '-o', dir], {
        out: (t) => (out += t),
        err: () => {},
        isTTY: false,
      });
      expect(code).toBe(0);
      const files: Record<string, string> = {};
      for (const f of out.trim().split('\n')) files[f.slice(dir.length)] = readFileSync(f, 'utf8');
      outputs.push(files);
    }
    expect(Object.keys(outputs[0])).toContain('/word-count.asl.json');
    expect(Object.keys(outputs[0])).toContain('/job-definitions/word-count-count-stats.json');
    expect(outputs[1]).toEqual(outputs[0]);
  });

  it('strand schema prints a JSON Schema', async () => {
    let out = '';
    await run(['node', 'strand', 'schema'], {
      out: (t) => (out += t),
      err: () => {},
      isTTY: false,
    });
    expect(JSON.parse(out)).toHaveProperty('$schema');
  });
});
