/**
 * Compiled pipelines are plain ASL and AWS Batch job definitions. For every good fixture and the
 * word-count example: the definition passes Strand's validator and asl-validator, the job
 * definitions follow the spec (names, Ref:: parameters, output paths, resources, timeouts), the
 * state machine's shape follows the pipeline (Map over samples, Parallel or chained substeps,
 * aggregate steps after Collect, router, retries), and `strand compile` writes the same bytes
 * every time. No job runs here.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { RegisterJobDefinitionRequest } from '../../src/batch/types.js';
import { evaluatePayloadTemplate } from '../../src/asl/payload.js';
import { validate } from '../../src/asl/validate.js';
import { compilePipeline, jobDefinitionName } from '../../src/pipeline/compile.js';
import { loadPipeline, loadPipelineText } from '../../src/pipeline/load.js';
import type { JobSpec, PipelineSpec, StepSpec } from '../../src/pipeline/model.js';
import { strand } from './cli.js';
import { stepOrder } from './step-order.js';
import { stepKey } from '../../src/pipeline/contract.js';

// asl-validator 4 is CommonJS without type declarations: `import aslValidator from
// 'asl-validator'` works at run time but not under strict TypeScript, so require it, typed.
const aslValidator = createRequire(import.meta.url)('asl-validator') as (definition: unknown) => {
  isValid: boolean;
  errors: unknown[];
};

const HERE = dirname(fileURLToPath(import.meta.url));
const GOOD = resolve(HERE, '../fixtures/pipelines/good');
const EXAMPLE = resolve(HERE, '../../examples/word-count/pipeline.yaml');
const FILES = [
  ...readdirSync(GOOD)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => join(GOOD, f)),
  EXAMPLE,
];
/** Every output directory of this file, removed at the end. */
const TMP = mkdtempSync(join(tmpdir(), 'strand-compile-test-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
/** Short names for test titles. */
const NAMED = FILES.map((f) => [relative(resolve(HERE, '../..'), f), f] as const);

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Compiles as `strand compile` does: the samples' columns become environment variables. */
function compiled(file: string) {
  const { spec, samples } = loadPipeline(file);
  const out = compilePipeline(spec, { columns: Object.keys(samples[0]?.values ?? {}) });
  return { spec, definition: out.definition as unknown as Obj, jobDefinitions: out.jobDefinitions };
}

function compiledText(text: string) {
  const { spec } = loadPipelineText(text, join(tmpdir(), 'shape.yaml'));
  const out = compilePipeline(spec);
  return { spec, definition: out.definition as unknown as Obj, jobDefinitions: out.jobDefinitions };
}

function expectValid(definition: Obj): void {
  expect(validate(definition as never)).toEqual([]);
  // asl-validator writes QueryLanguage into every state it checks: give it a copy.
  const result = aslValidator(structuredClone(definition));
  expect(result.errors).toEqual([]);
  expect(result.isValid).toBe(true);
}

/** Every state in `states`, the states of Parallel branches included, by name. */
function withBranches(states: Obj, out: Record<string, Obj> = {}): Record<string, Obj> {
  for (const [name, state] of Object.entries(states)) {
    expect(out, `state "${name}" twice`).not.toHaveProperty(name);
    out[name] = state as Obj;
    for (const b of (state as Obj).Branches ?? []) withBranches(b.States, out);
  }
  return out;
}

/** The Map over samples: at the top, or beside the aggregate steps that start early. */
function samplesMap(definition: Obj): Obj {
  const top = definition.States;
  return top.Samples.Type === 'Map'
    ? top.Samples
    : top['Samples and aggregates'].Branches[0].States['Each sample'];
}

/**
 * The states a step's states live among: the Map's processor, or the top level (with the
 * branches of its Parallel states, where the aggregate steps that start early are).
 */
function scopeOf(definition: Obj, step: StepSpec): Record<string, Obj> {
  return withBranches(
    step.scope === 'sample' ? samplesMap(definition).ItemProcessor.States : definition.States,
  );
}

/**
 * The aggregate steps that may start before every sample has ended, worked out from the spec:
 * those that need (directly or through other steps) some per-sample steps only. With one of
 * them, every aggregate step runs beside the samples.
 */
function startEarly(spec: PipelineSpec): StepSpec[] {
  const perSample = spec.steps.filter((s) => s.scope === 'sample');
  if (perSample.length === 0) return [];
  const needs = (name: string, seen = new Set<string>()): Set<string> => {
    for (const n of spec.steps.find((s) => s.name === name)!.needs)
      if (!seen.has(n)) needs(n, seen.add(n));
    return seen;
  };
  return spec.steps.filter(
    (s) => s.scope === 'all' && perSample.some((p) => !needs(s.name).has(p.name)),
  );
}

/** The state a step is entered by: its Choice that passes over it when the run skips it. */
function entry(step: StepSpec): string {
  return `${step.name}: run?`;
}

/** Where a step goes when it is done (or skipped): its entry Choice's skip target. */
function after(definition: Obj, step: StepSpec): string {
  return scopeOf(definition, step)[entry(step)].Choices[0].Next;
}

/** The states a state may go to next. */
function successors(state: Obj): string[] {
  return [
    state.Next,
    state.Default,
    ...(state.Choices ?? []).map((c: Obj) => c.Next),
    ...(state.Catch ?? []).map((c: Obj) => c.Next),
  ].filter((n): n is string => typeof n === 'string');
}

/** The top-level states reachable from `start`, not going through `avoid`. */
function reachable(states: Obj, start: string, avoid?: string): Set<string> {
  const seen = new Set<string>();
  const todo = [start];
  while (todo.length > 0) {
    const name = todo.pop()!;
    if (seen.has(name) || name === avoid) continue;
    seen.add(name);
    todo.push(...successors(states[name] ?? {}));
  }
  return seen;
}

const REFERENCE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

/**
 * What command item `i` must be in the job definition, worked out independently of the
 * compiler. AWS Batch replaces only a whole `Ref::name` item, so: one variable alone is
 * `Ref::NAME`; text mixed with variables, or several, is the job's own parameter `Ref::argI`
 * (the state machine formats it); text alone (`$$` is `$`, the job's own outputs their relative
 * paths) stays as written, unless it holds `Ref::`, which then travels as a parameter too.
 */
function expectedItem(item: string, i: number, outputs: Record<string, string>): string {
  const whole = /^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))$/.exec(item);
  const single = whole?.[1] ?? whole?.[2];
  if (single !== undefined && !(single in outputs)) return `Ref::${single}`;
  let variables = 0;
  const text = item.replace(REFERENCE, (m, braced?: string, bare?: string) => {
    if (m === '$$') return '$';
    const name = (braced ?? bare)!;
    if (name in outputs) return outputs[name];
    variables++;
    return '';
  });
  return variables > 0 || text.includes('Ref::') ? `Ref::arg${i}` : text;
}

/** A command item with every variable replaced by `vars` (the job's outputs by their paths). */
function substituted(
  item: string,
  vars: Record<string, string>,
  outputs: Record<string, string>,
): string {
  return item.replace(REFERENCE, (m, braced?: string, bare?: string) => {
    if (m === '$$') return '$';
    const name = (braced ?? bare)!;
    return name in outputs ? outputs[name] : vars[name];
  });
}

describe('compiled pipelines are valid ASL', () => {
  it('covers the good fixtures and the example', () => expect(FILES.length).toBeGreaterThan(4));

  it.each(NAMED)('%s passes Strand’s validator and asl-validator', (_name, file) => {
    expectValid(compiled(file).definition);
  });
});

describe.each(NAMED)('job definitions of %s', (_name, file) => {
  const { spec, definition, jobDefinitions } = compiled(file);
  const jobs = spec.steps.flatMap((step) => step.jobs.map((job) => ({ step, job })));
  const defOf = (job: JobSpec): RegisterJobDefinitionRequest =>
    jobDefinitions.find((d) => d.jobDefinitionName === jobDefinitionName(spec, job))!;

  it('one per job, named <pipeline>-<step>[-<substep>], unique, valid for AWS Batch', () => {
    const names = jobs.map(({ step, job }) =>
      step.hasSubsteps
        ? `${spec.name}-${step.name}-${job.name.slice(step.name.length + 1)}`
        : `${spec.name}-${step.name}`,
    );
    expect(jobDefinitions.map((d) => d.jobDefinitionName)).toEqual(names);
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) expect(n).toMatch(/^[A-Za-z0-9_-]{1,128}$/);
  });

  it('commands: $VAR alone became Ref::VAR, mixed items Ref::argN, outputs their relative paths', () => {
    for (const { job } of jobs) {
      const command = defOf(job).containerProperties.command ?? [];
      expect(command, job.name).toEqual(job.command.map((c, i) => expectedItem(c, i, job.outputs)));
      // No variable is left for a shell to expand (a literal `$$x` is meant to stay `$x`).
      command.forEach((item, i) => {
        if (!job.command[i].includes('$$'))
          expect(item, `${job.name}: a variable left in ${item}`).not.toMatch(/\$[A-Za-z_{]/);
      });
    }
  });

  it('the Task passes exactly the placeholders, and they give every item as written', () => {
    for (const { step, job } of jobs) {
      const task = scopeOf(definition, step)[job.name];
      expect(task.Resource).toBe('arn:aws:states:::batch:submitJob.sync');
      expect(task.Parameters.JobDefinition).toBe(defOf(job).jobDefinitionName);
      const command = defOf(job).containerProperties.command ?? [];
      const refs = command.flatMap((c) => /^Ref::([A-Za-z0-9_]+)$/.exec(c)?.[1] ?? []);
      // Each variable's value names it, with the characters a States.Format must escape.
      const vars = Object.fromEntries(job.vars.map((v) => [v, `<${v} '{}\\>`]));
      const scope = {
        input: { vars },
        context: {},
        variable: () => undefined,
        random: Math.random,
      };
      const parameters = evaluatePayloadTemplate(task.Parameters.Parameters, scope, 'Parameters');
      expect(Object.keys(parameters as object).sort(), job.name).toEqual([...refs].sort());
      // What Batch then runs: each whole Ref:: item replaced by its parameter.
      const run = command.map((c) => {
        const ref = /^Ref::([A-Za-z0-9_]+)$/.exec(c)?.[1];
        return ref === undefined ? c : (parameters as Record<string, string>)[ref];
      });
      expect(run, job.name).toEqual(job.command.map((c) => substituted(c, vars, job.outputs)));
    }
  });

  it('environment: no Ref:: (Batch does not substitute there), names sorted', () => {
    for (const { job } of jobs) {
      const env = defOf(job).containerProperties.environment ?? [];
      for (const { value } of env) expect(value, job.name).not.toContain('Ref::');
      const names = env.map((e) => e.name);
      expect(names).toEqual([...names].sort((a, b) => a.localeCompare(b)));
    }
  });

  it('image, VCPU and MEMORY as strings, timeout only when set, tags, one Batch attempt', () => {
    for (const { job } of jobs) {
      const def = defOf(job);
      expect(def.type).toBe('container');
      expect(def.containerProperties.image).toBe(job.image);
      expect(def.containerProperties.resourceRequirements).toEqual([
        { type: 'VCPU', value: String(job.vcpus) },
        { type: 'MEMORY', value: String(job.memoryMiB) },
      ]);
      if (job.timeoutSeconds === undefined) expect(def).not.toHaveProperty('timeout');
      else expect(def.timeout).toEqual({ attemptDurationSeconds: job.timeoutSeconds });
      expect(def.retryStrategy).toEqual({ attempts: 1 });
      expect(def.tags).toEqual({ 'strand:pipeline': spec.name, 'strand:step': job.name });
    }
  });
});

describe('job definitions against the YAML as written', () => {
  // [file, job definition, VCPU, MEMORY, attemptDurationSeconds]
  const table: [string, string, string, string, number | undefined][] = [
    // vcpus: 2, memory: 2GiB, timeout: 30m
    ['microbe-genome.yaml', 'microbe-genome-qc', '2', '2048', 1800],
    // vcpus: 2.5, memory: 4G, timeout: none
    ['microbe-genome.yaml', 'microbe-genome-assemble', '2.5', '4096', undefined],
    // the step's memory: 512MiB; defaults timeout: 2h
    ['microbe-genome.yaml', 'microbe-genome-annotate-genes', '1', '512', 7200],
    // the substep's own memory: 1.5GiB
    ['microbe-genome.yaml', 'microbe-genome-annotate-rrna', '1', '1536', 7200],
    // defaults: vcpus 0.5, timeout 90 (seconds); the step's memory 2Gi
    ['inline.yaml', 'inline-demo-map-align', '0.5', '2048', 90],
    // timeout: 1d
    ['inline.yaml', 'inline-demo-map-index', '0.5', '2048', 86400],
    // defaults memory: 256 (MiB)
    ['inline.yaml', 'inline-demo-report-merge', '0.5', '256', 90],
    // built-in defaults: 1 vCPU, 1GiB, no timeout
    ['minimal.yaml', 'hello-greet', '1', '1024', undefined],
    ['example', 'word-count-count-stats', '1', '256', 300],
  ];
  it.each(table)('%s %s: VCPU %s, MEMORY %s, timeout %s', (name, def, vcpu, memory, timeout) => {
    const { jobDefinitions } = compiled(name === 'example' ? EXAMPLE : join(GOOD, name));
    const d = jobDefinitions.find((j) => j.jobDefinitionName === def)!;
    expect(d.containerProperties.resourceRequirements).toEqual([
      { type: 'VCPU', value: vcpu },
      { type: 'MEMORY', value: memory },
    ]);
    expect(d.timeout?.attemptDurationSeconds).toBe(timeout);
  });

  it('microbe-genome qc: the command, literal and output-only env static, $SAMPLE env per job', () => {
    const { definition, jobDefinitions } = compiled(join(GOOD, 'microbe-genome.yaml'));
    const qc = jobDefinitions.find((d) => d.jobDefinitionName === 'microbe-genome-qc')!;
    expect(qc.containerProperties.image).toBe('strand/fastp:0.23');
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
    expect(qc.containerProperties.environment).toEqual([
      { name: 'LITERAL', value: 'cost: $5' },
      { name: 'STRAND_OUTPUT_DIRS', value: 'out' },
      // The output declaration, for the job cache's fingerprint.
      {
        name: 'STRAND_OUTPUTS',
        value: '{"QC_JSON":"out/fastp.json","QC_R1":"out/r1.fq.gz","QC_R2":"out/r2.fq.gz"}',
      },
    ]);
    const task = samplesMap(definition).ItemProcessor.States.qc;
    expect(task.Parameters.ContainerOverrides.Environment).toContainEqual({
      Name: 'FOO',
      'Value.$': "States.Format('x-{}', $.vars.SAMPLE)",
    });
    // Sample columns reach the job as environment variables too.
    expect(task.Parameters.ContainerOverrides.Environment).toContainEqual({
      Name: 'STRAIN',
      'Value.$': '$.vars.STRAIN',
    });
  });

  it('matrix (aggregate): `--genus=$GENUS` is formatted whole by the state machine', () => {
    const { definition, jobDefinitions } = compiled(join(GOOD, 'microbe-genome.yaml'));
    const matrix = jobDefinitions.find((d) => d.jobDefinitionName === 'microbe-genome-matrix')!;
    expect(matrix.containerProperties.command).toEqual([
      'mash',
      'paste',
      '-l',
      'out/all',
      'Ref::SKETCH',
      'Ref::arg5',
    ]);
    expect(withBranches(definition.States).matrix.Parameters.Parameters).toEqual({
      'SKETCH.$': '$.vars.SKETCH',
      'arg5.$': "States.Format('--genus={}', $.vars.GENUS)",
    });
  });
});

describe.each(NAMED)('state machine of %s', (_name, file) => {
  const { spec, definition } = compiled(file);
  const top = definition.States;
  const perSample = spec.steps.filter((s) => s.scope === 'sample');
  const aggregate = spec.steps.filter((s) => s.scope === 'all');
  const early = startEarly(spec);
  // The aggregate steps after Collect; with an early one, all are beside the samples.
  const late = early.length > 0 ? [] : aggregate;

  it('Preflight, then the Map over samples (if any per-sample step), then Collect', () => {
    expect(definition.StartAt).toBe('Preflight');
    expect(top.Preflight.Next).toBe(perSample.length > 0 ? 'Samples' : 'Collect');
    if (perSample.length === 0) expect(top).not.toHaveProperty('Samples');
    else if (early.length === 0) {
      expect(top.Samples.Type).toBe('Map');
      expect(top.Samples.Next).toBe('Collect');
    } else {
      // The sample ledger started, then the samples beside the aggregate steps.
      expect(top.Samples.Parameters).toMatchObject({
        FunctionName: 'strand-collect',
        Payload: { mode: 'start' },
      });
      expect(top.Samples.Next).toBe('Samples and aggregates');
      const side = top['Samples and aggregates'];
      expect(side.Type).toBe('Parallel');
      expect(side.Next).toBe('Aggregates failed?');
      expect(top['Aggregates failed?'].Default).toBe('Collect');
      expect(samplesMap(definition).Type).toBe('Map');
      expect(samplesMap(definition).Next).toBe('Each sample: ended');
    }
    expect(top.Collect.Next).toBe(late.length > 0 ? 'All samples?' : 'Outcome');
  });

  it('per-sample steps inside the Map; aggregate steps at the top, reached only through Collect, or beside the samples when one starts early', () => {
    const inside =
      perSample.length > 0 ? withBranches(samplesMap(definition).ItemProcessor.States) : {};
    for (const step of perSample) expect(inside, step.name).toHaveProperty(entry(step));
    for (const step of perSample) expect(top, step.name).not.toHaveProperty(entry(step));
    const fromCollect = reachable(top, 'Collect');
    const notThroughCollect = reachable(top, definition.StartAt, 'Collect');
    for (const step of late) {
      expect(inside, step.name).not.toHaveProperty(entry(step));
      expect(fromCollect.has(entry(step)), `${step.name} after Collect`).toBe(true);
      expect(notThroughCollect.has(entry(step)), `${step.name} before Collect`).toBe(false);
    }
    const beside =
      early.length > 0 ? withBranches(top['Samples and aggregates'].Branches[1].States) : {};
    for (const step of early.length > 0 ? aggregate : []) {
      expect(beside, step.name).toHaveProperty(entry(step));
      expect(beside[entry(step)].Default, step.name).toBe(`${step.name}: samples`);
      expect(top, step.name).not.toHaveProperty(entry(step));
    }
  });

  it('a parallel step is a Parallel state with one branch per substep', () => {
    for (const step of spec.steps.filter((s) => s.parallel)) {
      const state = scopeOf(definition, step)[step.name];
      expect(state.Type).toBe('Parallel');
      expect(state.Branches).toHaveLength(step.jobs.length);
      expect(state.Branches.map((b: Obj) => b.StartAt)).toEqual(step.jobs.map((j) => j.name));
      for (const [i, job] of step.jobs.entries()) {
        const branch = state.Branches[i].States;
        expect(branch[`${job.name}: publish`].Next).toBe(`${job.name}: done`);
        expect(branch[`${job.name}: done`].Type).toBe('Succeed');
      }
      expect(state.Next).toBe(after(definition, step));
      expect(state.Catch[0].Next).toBe(`${step.name}: stop`);
    }
  });

  it('a step’s jobs in sequence chain: each job’s publish goes to the next job', () => {
    for (const step of spec.steps.filter((s) => !s.parallel)) {
      const states = scopeOf(definition, step);
      step.jobs.forEach((job, i) => {
        expect(states[job.name].Type).toBe('Task');
        expect(states[job.name].Next).toBe(`${job.name}: publish`);
        expect(states[`${job.name}: publish`].Next).toBe(
          i + 1 < step.jobs.length ? step.jobs[i + 1].name : after(definition, step),
        );
      });
    }
  });

  it('each step is entered by a Choice that passes over it when $.run.skip names it', () => {
    for (const step of spec.steps) {
      const guard = scopeOf(definition, step)[entry(step)];
      expect(guard.Type).toBe('Choice');
      expect(guard.Choices).toHaveLength(1);
      expect(guard.Choices[0].IsPresent).toBe(true);
      expect(guard.Choices[0].Variable).toBe(`$.run.skip.${stepKey(step.name)}`);
      // An early aggregate step first waits for the samples it reads (its `: samples` Task).
      const body = step.parallel ? step.name : step.jobs[0].name;
      if (early.includes(step)) {
        expect(guard.Default).toBe(`${step.name}: samples`);
        const ready = scopeOf(definition, step)[`${step.name}: samples ready?`];
        expect(ready.Default).toBe(body);
        expect(ready.Choices[1]).toEqual({
          Variable: '$.wait',
          StringEquals: 'none',
          Next: guard.Choices[0].Next,
        });
      } else expect(guard.Default).toBe(body);
    }
  });

  it('every step starts after the steps it needs, and each step is entered once', () => {
    const order = stepOrder(definition);
    expect([...order.keys()].sort()).toEqual(spec.steps.map((s) => s.name).sort());
    for (const step of spec.steps)
      for (const need of step.needs) expect(order.get(step.name), step.name).toContain(need);
    // Steps over all samples start after every per-sample step of every sample, or, when they
    // start early, after those they need, directly or not.
    for (const step of late)
      for (const other of perSample) expect(order.get(step.name)).toContain(other.name);
    for (const step of early)
      expect(perSample.some((other) => !order.get(step.name)!.has(other.name))).toBe(true);
  });

  it('All samples?: the steps over all samples run unless Collect says they do not', () => {
    if (late.length === 0) {
      expect(top).not.toHaveProperty('All samples?');
      return;
    }
    const choice = top['All samples?'];
    expect(choice.Type).toBe('Choice');
    expect(choice.Choices).toEqual([
      { Variable: '$.run.aggregates', BooleanEquals: false, Next: 'Outcome' },
    ]);
    expect(stepOrder(definition).get(choice.Default.replace(/: run\?$/, ''))).toBeDefined();
  });

  it('continue_on_failure and max_concurrency shape the Map', () => {
    if (perSample.length === 0) return;
    expectMap(samplesMap(definition), spec);
  });

  it('retry → Retry MaxAttempts on the job’s Task; failures are caught, synced, then Fail', () => {
    for (const step of spec.steps) {
      const states = scopeOf(definition, step);
      for (const job of step.jobs) expectJobStates(states, job);
    }
  });
});

function expectMap(map: Obj, spec: PipelineSpec): void {
  if (spec.continueOnFailure) {
    expect(map.ItemProcessor.ProcessorConfig).toEqual({
      Mode: 'DISTRIBUTED',
      ExecutionType: 'STANDARD',
    });
    expect(map.ToleratedFailurePercentage).toBe(100);
  } else {
    expect(map.ItemProcessor).not.toHaveProperty('ProcessorConfig');
    expect(map).not.toHaveProperty('ToleratedFailurePercentage');
  }
  if (spec.maxConcurrency > 0) expect(map.MaxConcurrency).toBe(spec.maxConcurrency);
  else expect(map).not.toHaveProperty('MaxConcurrency');
}

function expectJobStates(states: Record<string, Obj>, job: JobSpec): void {
  const task = states[job.name];
  if (job.retry > 0)
    expect(task.Retry).toEqual([
      { ErrorEquals: ['Strand.JobNeverFits'], MaxAttempts: 0 },
      {
        ErrorEquals: ['States.TaskFailed'],
        MaxAttempts: job.retry,
        IntervalSeconds: 1,
        BackoffRate: 2,
      },
    ]);
  else expect(task).not.toHaveProperty('Retry');
  expect(task.Catch).toEqual([
    { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: `${job.name}: failed` },
  ]);
  expect(states[`${job.name}: publish`].Catch[0].Next).toBe(`${job.name}: failed`);
  expect(states[`${job.name}: failed`].Next).toBe(`${job.name}: stop`);
  expect(states[`${job.name}: stop`].Type).toBe('Fail');
}

describe('the fixtures cover every shape', () => {
  const specs = FILES.map((f) => loadPipeline(f).spec);
  const steps = specs.flatMap((s) => s.steps);
  it.each<[string, () => boolean]>([
    ['a parallel step', () => steps.some((s) => s.parallel)],
    ['substeps in sequence', () => steps.some((s) => s.hasSubsteps && !s.parallel)],
    ['an aggregate step', () => steps.some((s) => s.scope === 'all')],
    ['aggregate substeps', () => steps.some((s) => s.scope === 'all' && s.hasSubsteps)],
    ['continue_on_failure: true', () => specs.some((s) => s.continueOnFailure)],
    ['continue_on_failure: false', () => specs.some((s) => !s.continueOnFailure)],
    ['max_concurrency', () => specs.some((s) => s.maxConcurrency > 0)],
    ['no max_concurrency', () => specs.some((s) => s.maxConcurrency === 0)],
    ['retry', () => steps.some((s) => s.jobs.some((j) => j.retry > 0))],
    ['no retry', () => steps.some((s) => s.jobs.some((j) => j.retry === 0))],
    [
      'several per-sample steps',
      () => specs.some((s) => s.steps.filter((t) => t.scope === 'sample').length > 2),
    ],
    ['a single step', () => specs.some((s) => s.steps.length === 1)],
  ])('%s', (_what, present) => expect(present()).toBe(true));
});

describe('structure, table-driven over small pipelines', () => {
  /** A pipeline with two samples, `head` at the top, and `steps` below `steps:`. */
  const pipeline = (head: string, steps: string[]) =>
    ['name: shape', 'samples: [ { id: S1 }, { id: S2 } ]', head, 'steps:', ...steps].join('\n');
  const A = '  a: { image: x, command: [sort, -o, a.txt, /dev/null], outputs: { A: a.txt } }';
  const substeps = (parallel: boolean) => [
    '  b:',
    `    parallel: ${parallel}`,
    '    substeps:',
    '      one: { image: x, command: [sort, -o, one.txt, $A], outputs: { ONE: one.txt } }',
    '      two: { image: x, command: [sort, -o, two.txt, $A], outputs: { TWO: two.txt } }',
    '      three: { image: x, command: [sort, $A] }',
  ];

  it.each<[string, string, { distributed: boolean; max?: number }]>([
    ['continue_on_failure: true', 'continue_on_failure: true', { distributed: true }],
    ['continue_on_failure: false', 'continue_on_failure: false', { distributed: false }],
    ['the default (continue on failure)', '', { distributed: true }],
    ['max_concurrency: 3', 'max_concurrency: 3', { distributed: true, max: 3 }],
    ['max_concurrency: 0 (no limit)', 'max_concurrency: 0', { distributed: true }],
    ['both', 'continue_on_failure: false\nmax_concurrency: 16', { distributed: false, max: 16 }],
  ])('%s', (_what, head, want) => {
    const { definition } = compiledText(pipeline(head, [A]));
    expectValid(definition);
    const map = definition.States.Samples;
    if (want.distributed) {
      expect(map.ItemProcessor.ProcessorConfig).toEqual({
        Mode: 'DISTRIBUTED',
        ExecutionType: 'STANDARD',
      });
      expect(map.ToleratedFailurePercentage).toBe(100);
    } else {
      expect(map.ItemProcessor.ProcessorConfig).toBeUndefined();
      expect(map.ToleratedFailurePercentage).toBeUndefined();
    }
    expect(map.MaxConcurrency).toBe(want.max);
  });

  it.each<[string, number | undefined]>([
    ['retry: 0', undefined],
    ['retry: 1', 1],
    ['retry: 3', 3],
    ['retry: 9', 9],
  ])('%s → Retry MaxAttempts %s', (retry, attempts) => {
    const { definition } = compiledText(
      pipeline('', [`  a: { image: x, command: [true], ${retry} }`]),
    );
    expectValid(definition);
    const task = definition.States.Samples.ItemProcessor.States.a;
    // The first retrier keeps a job that can never fit from being retried.
    expect(task.Retry?.[1]?.MaxAttempts).toBe(attempts);
    if (attempts) {
      expect(task.Retry[0]).toEqual({ ErrorEquals: ['Strand.JobNeverFits'], MaxAttempts: 0 });
      expect(task.Retry[1].ErrorEquals).toEqual(['States.TaskFailed']);
    }
  });

  it('parallel: true → a Parallel state, one branch per substep, merging their outputs', () => {
    const { definition } = compiledText(pipeline('', [A, ...substeps(true)]));
    expectValid(definition);
    const b = definition.States.Samples.ItemProcessor.States.b;
    expect(b.Type).toBe('Parallel');
    expect(b.Branches.map((br: Obj) => br.StartAt)).toEqual(['b.one', 'b.two', 'b.three']);
    expect(b.ResultSelector['vars.$']).toBe(
      'States.JsonMerge(States.JsonMerge($[0].vars, $[1].vars, false), $[2].vars, false)',
    );
  });

  it('parallel: false → the substeps chain in order, no Parallel state', () => {
    const { definition } = compiledText(pipeline('', [A, ...substeps(false)]));
    expectValid(definition);
    const states = definition.States.Samples.ItemProcessor.States;
    expect(Object.values(states).some((s) => (s as Obj).Type === 'Parallel')).toBe(false);
    expect(states['b: run?'].Default).toBe('b.one');
    expect(states['b.one: publish'].Next).toBe('b.two');
    expect(states['b.two: publish'].Next).toBe('b.three');
    expect(states['b.three: publish'].Next).toBe('Sample done');
  });

  it.each<[string, string[], Record<string, string[]>]>([
    ['one step', [A], { a: [] }],
    [
      'a chain: each step after the one it reads',
      [
        A,
        '  b: { image: x, command: [sort, $A], outputs: { B: b } }',
        '  c: { image: x, command: [sort, $B] }',
      ],
      { a: [], b: ['a'], c: ['a', 'b'] },
    ],
    [
      'a diamond: b and c side by side between a and d',
      [
        A,
        '  b: { image: x, command: [sort, $A], outputs: { B: b } }',
        '  c: { image: x, command: [sort, $A], outputs: { C: c } }',
        '  d: { image: x, command: [sort, $B, $C] }',
      ],
      { a: [], b: ['a'], c: ['a'], d: ['a', 'b', 'c'] },
    ],
    [
      'written out of order: the data decides',
      [
        '  c: { image: x, command: [sort, $B] }',
        '  b: { image: x, command: [sort, $A], outputs: { B: b } }',
        A,
      ],
      { a: [], b: ['a'], c: ['a', 'b'] },
    ],
    [
      'after: order without data; a step reading nothing runs beside the others',
      [A, '  b: { image: x, command: [true], after: a }', '  c: { image: x, command: [true] }'],
      { a: [], b: ['a'], c: [] },
    ],
    [
      'an N (not series-parallel): d also waits for a, nothing else is added',
      [
        A,
        '  b: { image: x, command: [true], outputs: { B: b } }',
        '  c: { image: x, command: [sort, $A, $B] }',
        '  d: { image: x, command: [sort, $B] }',
      ],
      { a: [], b: [], c: ['a', 'b'], d: ['a', 'b'] },
    ],
  ])('order: %s', (_what, steps, want) => {
    const { definition } = compiledText(pipeline('', steps));
    expectValid(definition);
    const order = stepOrder(definition);
    expect(Object.fromEntries([...order].map(([k, v]) => [k, [...v].sort()]))).toEqual(want);
  });

  it('vcpus: 1-4 with $STRAND_VCPUS: a job definition parameter at the top, range tags, no state variable', () => {
    const { definition, jobDefinitions } = compiledText(
      pipeline('', [
        '  a: { image: x, command: [tool, -t, $STRAND_VCPUS, -m, $STRAND_MEMORY_MIB], vcpus: 1-4, memory: 1GiB-4GiB }',
        '  b: { image: x, command: [tool, -t, $STRAND_VCPUS], vcpus: 2 }',
      ]),
    );
    expectValid(definition);
    const [a, b] = jobDefinitions;
    expect(a.containerProperties.command).toEqual([
      'tool',
      '-t',
      'Ref::STRAND_VCPUS',
      '-m',
      'Ref::STRAND_MEMORY_MIB',
    ]);
    expect(a.parameters).toEqual({ STRAND_VCPUS: '4', STRAND_MEMORY_MIB: '4096' });
    expect(a.containerProperties.resourceRequirements).toEqual([
      { type: 'VCPU', value: '4' },
      { type: 'MEMORY', value: '4096' },
    ]);
    expect(a.tags).toMatchObject({ 'strand:vcpus': '1-4', 'strand:memory': '1024-4096' });
    // A fixed size: the parameter, no range.
    expect(b.parameters).toEqual({ STRAND_VCPUS: '2', STRAND_MEMORY_MIB: '1024' });
    expect(b.tags).not.toHaveProperty('strand:vcpus');
    const states = withBranches(definition.States.Samples.ItemProcessor.States);
    // The Task passes no STRAND_VCPUS: the size is known when the attempt starts.
    expect(states.a.Parameters.Parameters).toEqual({});
    expect(states.a.Parameters.Tags['strand:vcpus']).toBe('1-4');
  });

  it('only aggregate steps: no Map; Preflight → Collect → All samples? → the steps', () => {
    const { definition } = compiledText(
      pipeline('', [
        '  first: { aggregate: true, image: x, command: [sort, -o, f.txt, /dev/null], outputs: { F: f.txt } }',
        '  second: { aggregate: true, image: x, command: [sort, $F] }',
      ]),
    );
    expectValid(definition);
    const s = definition.States;
    expect(s).not.toHaveProperty('Samples');
    expect(s.Preflight.Next).toBe('Collect');
    expect(s.Collect.Next).toBe('All samples?');
    expect(s['All samples?'].Default).toBe('first: run?');
    expect(s['first: publish'].Next).toBe('second: run?');
    expect(s['second: publish'].Next).toBe('Outcome');
  });
});

describe('aggregate steps that read some per-sample steps only', () => {
  const pipeline = (aggregates: string[]) =>
    [
      'name: early',
      'samples: [ { id: S1 }, { id: S2 } ]',
      'steps:',
      '  a: { image: x, command: [sort, -o, a.txt, /dev/null], outputs: { A: a.txt } }',
      '  b: { image: x, command: [sort, -o, b.txt, $A], outputs: { B: b.txt } }',
      ...aggregates,
    ].join('\n');
  /** The functions the definition invokes, at any depth. */
  const functionNames = (definition: Obj): string[] => {
    const out = new Set<string>();
    const visit = (states: Obj): void => {
      for (const state of Object.values(states as Record<string, Obj>)) {
        if (state.Parameters?.FunctionName) out.add(state.Parameters.FunctionName);
        for (const b of state.Branches ?? []) visit(b.States);
        if (state.ItemProcessor) visit(state.ItemProcessor.States);
      }
    };
    visit(definition.States);
    return [...out].sort();
  };

  it('one that reads the last per-sample step (or waits for it): the ASL has nothing more', () => {
    for (const agg of [
      '  t: { aggregate: true, image: x, command: [sort, $B] }',
      '  t: { aggregate: true, image: x, command: [sort, $A], after: b }',
    ]) {
      const { definition } = compiledText(pipeline([agg]));
      expectValid(definition);
      expect(definition.States.Samples.Type).toBe('Map');
      expect(JSON.stringify(definition)).not.toMatch(/ledger|Each sample|Aggregates|"mode"/);
    }
  });

  it('one that reads only `a`: beside the samples, waiting for every sample to end `a`', () => {
    const { definition } = compiledText(
      pipeline(['  t: { aggregate: true, image: x, command: [sort, $A], outputs: { T: t.txt } }']),
    );
    expectValid(definition);
    const order = stepOrder(definition);
    expect([...order.get('t')!]).toEqual(['a']);
    const all = withBranches(definition.States);
    // Waits in a loop: strand-collect looks at the ledger, a Wait of the length it says.
    expect(all['t: run?'].Default).toBe('t: samples');
    expect(all['t: samples'].Parameters.Payload).toMatchObject({
      mode: 'wait',
      step: 't',
      'state.$': '$',
    });
    expect(all['t: samples ready?'].Choices[0]).toEqual({
      Variable: '$.wait',
      StringEquals: 'pending',
      Next: 't: samples wait',
    });
    expect(all['t: samples wait']).toEqual({
      Type: 'Wait',
      SecondsPath: '$.seconds',
      Next: 't: samples',
    });
    // It gets the lists of what it may read: a's outputs, not b's.
    const env = all.t.Parameters.ContainerOverrides.Environment.map((e: Obj) => e.Name);
    expect(env).toContain('A');
    expect(env).not.toContain('B');
    expect(env).toContain('STRAND_INPUTS_DIGEST');
    // Each publish and each failure of a sample records itself in the sample ledger.
    const map = samplesMap(definition).ItemProcessor.States;
    for (const state of ['a: publish', 'b: publish', 'a: failed', 'b: failed'])
      expect(map[state].Parameters.Payload.ledger, state).toBe(true);
    // Still the four functions: the ledger is strand-collect's.
    expect(functionNames(definition)).toEqual([
      'strand-collect',
      'strand-preflight',
      'strand-publish',
      'strand-sync-failure',
    ]);
  });

  it('early and late together: all beside the samples, each waiting for what it needs', () => {
    const { definition } = compiledText(
      pipeline([
        '  t: { aggregate: true, image: x, command: [sort, -o, t.txt, $A], outputs: { T: t.txt } }',
        '  u: { aggregate: true, image: x, command: [sort, -o, u.txt, $T], outputs: { U: u.txt } }',
        '  v: { aggregate: true, image: x, command: [sort, $B, $U] }',
      ]),
    );
    expectValid(definition);
    const order = stepOrder(definition);
    expect([...order.get('t')!].sort()).toEqual(['a']);
    expect([...order.get('u')!].sort()).toEqual(['a', 't']);
    expect([...order.get('v')!].sort()).toEqual(['a', 'b', 't', 'u']);
    const all = withBranches(definition.States);
    // u waits for the samples too (it reads a through t), after t; v, which reads b, waits for
    // every sample to end.
    expect(all['t: publish'].Next).toBe('u: run?');
    expect(all['u: run?'].Default).toBe('u: samples');
    expect(all['u: publish'].Next).toBe('v: run?');
    expect(all['v: run?'].Default).toBe('v: samples');
    expect(definition.States).not.toHaveProperty('All samples?');
    // Collect is told what they gave, and says how the samples went.
    expect(definition.States.Collect.Parameters.Payload).toMatchObject({
      'aggregated.$': '$.aggregated',
    });
    expect(definition.States.Collect.Next).toBe('Outcome');
    const env = all.v.Parameters.ContainerOverrides.Environment.map((e: Obj) => e.Name);
    expect(env).toEqual(expect.arrayContaining(['A', 'B', 'T', 'U']));
    // An aggregate step's failure is kept until the samples are done, then fails the run.
    const beside = definition.States['Samples and aggregates'].Branches[1].States;
    expect(beside.Aggregates.Catch).toEqual([
      { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Aggregates: failed' },
    ]);
    expect(definition.States['Aggregate failed']).toEqual({
      Type: 'Fail',
      ErrorPath: '$.aggregated.error.Error',
      CausePath: '$.aggregated.error.Cause',
    });
  });

  it('one that reads no per-sample step starts at once, beside the samples', () => {
    const { definition } = compiledText(
      pipeline(['  t: { aggregate: true, image: x, command: [sort, -o, t.txt, /dev/null] }']),
    );
    expectValid(definition);
    expect([...stepOrder(definition).get('t')!]).toEqual([]);
  });
});

describe('the genome example as written', () => {
  it('runs stats, annotate and sketch side by side after the assembly, in one Parallel state', () => {
    // Its sheet exists once prepare.mjs ran: the graph needs none.
    const file = resolve(HERE, '../../examples/microbe-genome/pipeline.yaml');
    const { spec } = loadPipeline(file, { readSheet: false });
    const definition = compilePipeline(spec).definition as unknown as Obj;
    expectValid(definition);
    const order = stepOrder(definition);
    const three = ['stats', 'annotate', 'sketch'];
    for (const step of three) {
      expect([...order.get(step)!].sort()).toEqual(['assemble', 'qc']);
    }
    const processor = samplesMap(definition).ItemProcessor;
    const parallel = processor.States['steps stats, annotate, sketch'];
    expect(parallel.Type).toBe('Parallel');
    expect(parallel.Branches.map((b: Obj) => b.StartAt)).toEqual(three.map((n) => `${n}: run?`));
    // The aggregate steps wait for what they read: distances for the sketches, summary for all.
    expect(order.get('summary')).toContain('distances');
  });
});

describe('strand compile', () => {
  /** Runs `strand compile` into a fresh directory; the files it wrote, by relative name. */
  async function compileTo(file: string, dir = mkdtempSync(join(TMP, 'out-'))) {
    const r = await strand('compile', file, '-o', dir);
    expect(r.code, r.err).toBe(0);
    const listed = r.out.trim().split('\n');
    const written = readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name));
    expect([...listed].sort()).toEqual([...written].sort());
    const files: Record<string, string> = {};
    for (const f of listed) files[relative(dir, f)] = readFileSync(f, 'utf8');
    return files;
  }

  it.each(NAMED)(
    '%s: <name>.asl.json and job-definitions/*.json, the same bytes every time',
    async (_name, file) => {
      const { spec, definition, jobDefinitions } = compiled(file);
      const first = await compileTo(file);
      expect(Object.keys(first).sort()).toEqual(
        [
          `${spec.name}.asl.json`,
          ...jobDefinitions.map((d) => join('job-definitions', `${d.jobDefinitionName}.json`)),
        ].sort(),
      );
      expect(JSON.parse(first[`${spec.name}.asl.json`])).toEqual(definition);
      for (const d of jobDefinitions)
        expect(JSON.parse(first[join('job-definitions', `${d.jobDefinitionName}.json`)])).toEqual(
          d,
        );
      for (const text of Object.values(first)) expect(text.endsWith('}\n')).toBe(true);
      // Again into another directory, and again over the first: byte-identical.
      expect(await compileTo(file)).toEqual(first);
      const dir = mkdtempSync(join(TMP, 'out-'));
      await compileTo(file, dir);
      expect(await compileTo(file, dir)).toEqual(first);
    },
  );
});

describe('strand schema', () => {
  it('prints the JSON Schema of pipeline.yaml', async () => {
    const r = await strand('schema');
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.out) as Obj;
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.required).toEqual(['name', 'steps']);
  });
});

describe('job definition names', () => {
  it('a step "a-b" and the substep "b" of step "a" get different job definitions', () => {
    // Step names may contain "-" and a substep "a.b" is written "a-b": without care both jobs
    // would share the definition "p-a-b" (one file over the other, one Task running the other).
    const { jobDefinitions } = compiledText(
      [
        'name: p',
        'samples: [ { id: S1 } ]',
        'steps:',
        '  a:',
        '    substeps:',
        '      b: { image: x, command: [echo, one] }',
        '  a-b: { image: x, command: [echo, two] }',
      ].join('\n'),
    );
    const names = jobDefinitions.map((d) => d.jobDefinitionName);
    expect(new Set(names).size).toBe(names.length);
  });
});
