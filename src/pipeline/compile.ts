/**
 * Compiles a pipeline to plain Amazon States Language and AWS Batch job definitions. Every
 * feature is ordinary ASL, so the same definition runs on Strand's engine and on Step Functions:
 *
 * - samples fan out through a Map (MaxConcurrency; with `continue_on_failure` a Distributed
 *   Map tolerating every failure, so one bad sample does not stop the others);
 * - each job is a `batch:submitJob.sync` Task; inputs reach it as Batch `Parameters` (argv
 *   `$NAME` became `Ref::NAME` in the job definition) and as environment variables;
 * - after a job, `lambda:invoke` of `strand-publish` puts its outputs in the store and records
 *   results; the Task's Catch runs `strand-sync-failure` (partial outputs and a FAILED row),
 *   then a Fail state naming step and sample;
 * - steps run in the order their data needs: steps with no path between them are branches of
 *   a Parallel state (see `seriesParallel`);
 * - substeps are a Parallel state (branches) or a sequence of Tasks;
 * - `--from/--to/--only` leave steps out through `$.run.skip`, which each step's entry Choice
 *   reads, so one definition serves every slice;
 * - `strand-preflight` checks a sliced run's inputs before any job, and `strand-collect`
 *   gathers every sample's outputs for the steps that run once for all samples;
 * - when an aggregate step waits for some per-sample steps only, the aggregate steps run beside
 *   the samples, each once every sample has ended the per-sample steps it waits for (see
 *   `earlyAggregates` and `samplesBeside`).
 *
 * The state passed between states is always `{ run, vars }`: `run` holds the run's settings,
 * `vars` every variable the next step may use (sample columns, SAMPLE, params, published outputs).
 */
import { createHash } from 'node:crypto';
import type { JsonObject, StateMachineDefinition } from '../asl/types.js';
import type { RegisterJobDefinitionRequest } from '../batch/types.js';
import { templateParts, type TemplatePart } from './template.js';
import {
  AGGREGATE_SAMPLE,
  ERROR,
  FUNCTIONS,
  INPUTS_DIGEST,
  STATE,
  TAG,
  inputsDigestVar,
  perSampleNeeds,
  stepKey,
} from './contract.js';
import {
  ancestors,
  earlyAggregates,
  planSteps,
  samplesAwaited,
  seriesParallel,
  type Plan,
} from './dag.js';
import { RANGE_TAG, SIZE_VARIABLES, sizeParameters } from '../batch/elastic.js';
import type { JobSpec, PipelineSpec, StepSpec } from './model.js';

export interface CompileOptions {
  /** Job queue every job is submitted to (default `default`). */
  jobQueue?: string;
  /** The samples' columns (each reaches every per-sample job as an environment variable). */
  columns?: string[];
}

export interface CompiledPipeline {
  definition: StateMachineDefinition;
  jobDefinitions: RegisterJobDefinitionRequest[];
}

/** States are built as plain JSON; Strand's validator and asl-validator check the result. */
type State = JsonObject;

const LAMBDA = 'arn:aws:states:::lambda:invoke';
const BATCH = 'arn:aws:states:::batch:submitJob.sync';
const SAMPLE_DONE = 'Sample done';
const OUTCOME = 'Outcome';
const AGGREGATES = 'All samples?';
/** The states of a pipeline whose aggregate steps run beside the samples (see samplesBeside). */
const BESIDE = 'Samples and aggregates';
const EACH_SAMPLE = 'Each sample';
const SAMPLES_ENDED = 'Each sample: ended';
const AGGREGATED = 'Aggregates';
const AGGREGATED_START = 'Aggregates: start';
const AGGREGATED_DONE = 'Aggregates: done';
const AGGREGATED_CAUGHT = 'Aggregates: failed';
const AGGREGATED_FAILED = 'Aggregates failed?';
const AGGREGATED_STOP = 'Aggregate failed';

/**
 * The job definition name of a job: `microbe-genome-annotate-genes`. Step names may contain
 * `-`, so the substep `a.b` and a step `a-b` would read the same: the substep then gets a short
 * checksum of its name as a suffix, keeping every job's definition its own.
 */
export function jobDefinitionName(spec: PipelineSpec, job: JobSpec): string {
  const dashed = (name: string) => `${spec.name}-${name.replace(/\./g, '-')}`;
  const name = dashed(job.name);
  const clash = spec.steps.some((s) =>
    s.jobs.some((j) => j.name !== job.name && dashed(j.name) === name),
  );
  if (!clash || !job.name.includes('.')) return name;
  return `${name}-${createHash('sha256').update(job.name).digest('hex').slice(0, 8)}`;
}

/** Escapes literal text for a States.Format template (`'`, `{`, `}` and `\` are special there). */
function formatLiteral(text: string): string {
  return text.replace(/[\\'{}]/g, (c) => `\\${c}`);
}

const isOwnOutput = (name: string, job: JobSpec): boolean => Object.hasOwn(job.outputs, name);

/**
 * A command item or env value without variables of the state (only text and the job's own
 * outputs, which become their paths relative to the job directory).
 */
function literalText(parts: TemplatePart[], job: JobSpec): string {
  return parts.map((p) => ('text' in p ? p.text : job.outputs[p.var])).join('');
}

/** The variables of the state a command item or env value refers to, in order. */
function stateVars(parts: TemplatePart[], job: JobSpec): string[] {
  return parts.flatMap((p) =>
    'var' in p && !isOwnOutput(p.var, job) && !SIZE_VARIABLES.includes(p.var) ? [p.var] : [],
  );
}

/** The job's range tags (`strand:vcpus: 1-4`), when it has a range of vCPUs. */
function rangeTags(job: JobSpec): Record<string, string> {
  if (job.vcpusMin === undefined) return {};
  return {
    [RANGE_TAG.vcpus]: `${job.vcpusMin}-${job.vcpus}`,
    ...(job.memoryMinMiB === undefined
      ? {}
      : { [RANGE_TAG.memory]: `${job.memoryMinMiB}-${job.memoryMiB}` }),
  };
}

/** `States.Format` building the whole text from `$.vars`. */
function formatOf(parts: TemplatePart[], job: JobSpec): string {
  const template = parts
    .map((p) =>
      'text' in p
        ? formatLiteral(p.text)
        : isOwnOutput(p.var, job)
          ? formatLiteral(job.outputs[p.var])
          : '{}',
    )
    .join('');
  const args = stateVars(parts, job).map((v) => `$.vars.${v}`);
  return `States.Format('${template}', ${args.join(', ')})`;
}

/**
 * How command item `index` reaches the job. AWS Batch replaces a command item only when it is
 * exactly `Ref::name`, so an item that is one variable is `Ref::NAME` (the Task passes
 * `NAME.$: $.vars.NAME`); an item that mixes text and variables, or holds several, is formatted
 * whole by the state machine into a parameter of its own, `argN`, whose placeholder is the whole
 * item; text alone stays as written, unless it contains `Ref::`, which then travels as a literal
 * parameter so that Batch cannot take it for a placeholder.
 */
export function commandItem(
  text: string,
  index: number,
  job: JobSpec,
): { item: string; parameter?: { key: string; value: string } } {
  const parts = templateParts(text).parts;
  // The size the attempt gets: a parameter of the job definition, given when it starts.
  const only = parts.length === 1 ? parts[0] : undefined;
  if (only && 'var' in only && SIZE_VARIABLES.includes(only.var))
    return { item: `Ref::${only.var}` };
  const vars = stateVars(parts, job);
  if (parts.length === 1 && vars.length === 1) {
    return {
      item: `Ref::${vars[0]}`,
      parameter: { key: `${vars[0]}.$`, value: `$.vars.${vars[0]}` },
    };
  }
  const name = `arg${index}`;
  if (vars.length === 0) {
    const literal = literalText(parts, job);
    if (!literal.includes('Ref::')) return { item: literal };
    return { item: `Ref::${name}`, parameter: { key: name, value: literal } };
  }
  return { item: `Ref::${name}`, parameter: { key: `${name}.$`, value: formatOf(parts, job) } };
}

/** An env value as an ASL field: a literal, a path, or a States.Format over `$.vars`. */
function envValue(text: string, job: JobSpec): JsonObject {
  const parts = templateParts(text).parts;
  const vars = stateVars(parts, job);
  if (vars.length === 0) return { Value: literalText(parts, job) };
  if (parts.length === 1) return { 'Value.$': `$.vars.${vars[0]}` };
  return { 'Value.$': formatOf(parts, job) };
}

function jobDefinition(spec: PipelineSpec, job: JobSpec): RegisterJobDefinitionRequest {
  const staticEnv = Object.entries(job.env)
    .filter(([, v]) => stateVars(templateParts(v).parts, job).length === 0)
    .map(([name, v]) => ({ name, value: literalText(templateParts(v).parts, job) }));
  // Tools write into directories they do not make (`-o out/r1.fq.gz`): the executor makes the
  // output directories in the job's working directory before it starts.
  const dirs = [
    ...new Set(
      [...Object.values(job.outputs), ...(job.stdout ? [job.stdout] : [])]
        .map((p) => p.split('/').slice(0, -1).join('/'))
        .filter((d) => d !== '' && d !== '.'),
    ),
  ].sort();
  if (dirs.length > 0) staticEnv.push({ name: 'STRAND_OUTPUT_DIRS', value: dirs.join(':') });
  // Standard output to a file (the executor opens it; the job's log keeps standard error).
  if (job.stdout) staticEnv.push({ name: 'STRAND_STDOUT', value: job.stdout });
  // The output declaration, so the job cache's fingerprint changes with it: the same command
  // declaring another file as its output is not the job that published the old one.
  if (Object.keys(job.outputs).length > 0) {
    const declared = Object.entries(job.outputs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const value = JSON.stringify(Object.fromEntries(declared));
    staticEnv.push({ name: 'STRAND_OUTPUTS', value });
  }
  // Results files that are not outputs: the stage-out puts them in the store too, where
  // strand-publish reads them (it never reads a job's directory).
  const outputPaths = [...Object.values(job.outputs), ...(job.stdout ? [job.stdout] : [])];
  const extraResults = spec.results
    .filter((r) => r.step === job.name)
    .map((r) => r.from)
    .filter((from) => !outputPaths.some((o) => from === o || from.startsWith(`${o}/`)));
  if (extraResults.length > 0)
    staticEnv.push({ name: 'STRAND_RESULTS', value: JSON.stringify([...new Set(extraResults)]) });
  const def: RegisterJobDefinitionRequest = {
    jobDefinitionName: jobDefinitionName(spec, job),
    type: 'container',
    containerProperties: {
      image: job.image,
      command: job.command.map((c, i) => commandItem(c, i, job).item),
      environment: staticEnv.sort((a, b) => a.name.localeCompare(b.name)),
      // Where each secret's value is read when the job starts: references only, never values.
      ...(job.secrets.length > 0
        ? { secrets: job.secrets.map(({ name, valueFrom }) => ({ name, valueFrom })) }
        : {}),
      resourceRequirements: [
        { type: 'VCPU', value: String(job.vcpus) },
        { type: 'MEMORY', value: String(job.memoryMiB) },
      ],
    },
    // Retries are the state machine's (Retry), so each attempt is a job of its own.
    retryStrategy: { attempts: 1 },
    tags: { [TAG.pipeline]: spec.name, [TAG.step]: job.name, ...rangeTags(job) },
  };
  // A command reading the size its attempt gets: the top of the range unless the submission
  // (or, on Strand's Batch, the start of the attempt) says otherwise.
  const readsSize = job.command.some((c) =>
    templateParts(c).parts.some((p) => 'var' in p && SIZE_VARIABLES.includes(p.var)),
  );
  if (readsSize) def.parameters = sizeParameters(job.vcpus, job.memoryMiB);
  if (job.timeoutSeconds !== undefined)
    def.timeout = { attemptDurationSeconds: job.timeoutSeconds };
  return def;
}

/** What Strand's functions need to know of a job: its outputs and results files. */
function jobPlan(spec: PipelineSpec, job: JobSpec): JsonObject {
  return {
    name: job.name,
    outputs: { ...job.outputs },
    uses: job.vars.filter((v) => !(v in job.outputs)),
    results: spec.results
      .filter((r) => r.step === job.name)
      .map((r) => {
        const out: JsonObject = { from: r.from, format: r.format };
        if (Object.keys(r.columns).length > 0) out.columns = { ...r.columns };
        if (r.header) out.header = [...r.header];
        return out;
      }),
  };
}

/** The steps as the preflight and collect functions see them. */
function stepPlans(spec: PipelineSpec): JsonObject[] {
  return spec.steps.map((s) => ({
    name: s.name,
    scope: s.scope,
    needs: [...s.needs],
    jobs: s.jobs.map((j) => jobPlan(spec, j)),
  }));
}

/** What compiling the steps of one scope (per sample, or once for all samples) needs. */
interface Scope {
  spec: PipelineSpec;
  aggregate: boolean;
  queue: string;
  steps: Map<string, StepSpec>;
  /** The variables in `$.vars` when a step starts: what comes in, and its needs' outputs. */
  visible: (step: StepSpec) => string[];
  /** Names of the Parallel states made so far (they must be unique). */
  names: Set<string>;
  /**
   * Per sample, when the aggregate steps run beside the samples: each publish and each failure
   * records itself in the run's sample ledger, where those steps learn how far each sample got.
   */
  ledger?: boolean;
  /** Aggregate steps beside the samples: each waits for the samples it reads (see waitStates). */
  waits?: boolean;
}

/** The Task that runs one job, and its publish / failure states. */
function jobStates(
  scope: Scope,
  step: StepSpec,
  job: JobSpec,
  visible: string[],
  next: string,
): { start: string; states: Record<string, State> } {
  const sample: JsonObject = scope.aggregate
    ? { sample: AGGREGATE_SAMPLE }
    : { 'sample.$': '$.vars.SAMPLE' };
  const env: JsonObject[] = visible
    .filter((v) => !(v in job.env))
    .map((name) => ({ Name: name, 'Value.$': `$.vars.${name}` }));
  for (const [name, value] of Object.entries(job.env)) {
    const field = envValue(value, job);
    if ('Value.$' in field) env.push({ Name: name, ...field });
  }
  // The lists it gets hold locations only: this digest of the files they name (of the
  // per-sample steps it reads, set by strand-collect) is what makes the job cache see a
  // sample's changed output.
  if (scope.aggregate && perSampleNeeds(scope.spec.steps, step).length > 0)
    env.push({ Name: INPUTS_DIGEST, 'Value.$': `$.vars.${inputsDigestVar(step.name)}` });
  env.push({ Name: 'STRAND_STEP', Value: job.name });
  env.push({ Name: 'STRAND_PIPELINE', Value: scope.spec.name });
  if (!scope.aggregate) env.push({ Name: 'STRAND_SAMPLE', 'Value.$': '$.vars.SAMPLE' });
  // Exactly what the job definition's placeholders need.
  const params: JsonObject = {};
  job.command.forEach((c, i) => {
    const { parameter } = commandItem(c, i, job);
    if (parameter) params[parameter.key] = parameter.value;
  });
  const failed = `${job.name}: failed`;
  const stop = `${job.name}: stop`;
  const publish = `${job.name}: publish`;
  const task: State = {
    Type: 'Task',
    Resource: BATCH,
    Parameters: {
      JobName: jobDefinitionName(scope.spec, job),
      JobQueue: scope.queue,
      JobDefinition: jobDefinitionName(scope.spec, job),
      Parameters: params,
      ContainerOverrides: { Environment: env },
      Tags: {
        [TAG.pipeline]: scope.spec.name,
        [TAG.step]: job.name,
        ...rangeTags(job),
        ...(scope.aggregate
          ? { [TAG.sample]: AGGREGATE_SAMPLE }
          : { [`${TAG.sample}.$`]: '$.vars.SAMPLE' }),
        [`${TAG.execution}.$`]: '$.run.execution',
        [`${TAG.store}.$`]: '$.run.store',
        [`${TAG.cache}.$`]: '$.run.cache',
      },
    },
    ResultSelector: { 'JobId.$': '$.JobId', 'Tags.$': '$.Tags' },
    ResultPath: '$.job',
    Next: publish,
    Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: failed }],
  };
  if (job.retry > 0)
    task.Retry = [
      // States.TaskFailed matches every error but States.Timeout; a job that can never fit is
      // not worth another attempt, and the first matching retrier decides.
      { ErrorEquals: [ERROR.jobNeverFits], MaxAttempts: 0 },
      {
        ErrorEquals: ['States.TaskFailed'],
        MaxAttempts: job.retry,
        IntervalSeconds: 1,
        BackoffRate: 2,
      },
    ];
  const lambda = (fn: string, payload: JsonObject): JsonObject => ({
    FunctionName: fn,
    Payload: payload,
  });
  return {
    start: job.name,
    states: {
      [job.name]: task,
      [publish]: {
        Type: 'Task',
        Resource: LAMBDA,
        Parameters: lambda(FUNCTIONS.publish, {
          'run.$': '$.run',
          'vars.$': '$.vars',
          'job.$': '$.job',
          plan: jobPlan(scope.spec, job),
          ...sample,
          ...(scope.ledger ? { ledger: true } : {}),
        }),
        OutputPath: '$.Payload',
        Next: next,
        // A job that ran but whose outputs cannot be published failed too.
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: failed }],
      },
      [failed]: {
        Type: 'Task',
        Resource: LAMBDA,
        Parameters: lambda(FUNCTIONS.syncFailure, {
          'run.$': '$.run',
          'vars.$': '$.vars',
          'error.$': '$.error',
          plan: jobPlan(scope.spec, job),
          ...sample,
          ...(scope.ledger ? { ledger: true } : {}),
        }),
        ResultSelector: { 'Error.$': '$.Payload.Error', 'Cause.$': '$.Payload.Cause' },
        ResultPath: '$.failure',
        Next: stop,
      },
      [stop]: { Type: 'Fail', ErrorPath: '$.failure.Error', CausePath: '$.failure.Cause' },
    },
  };
}

/**
 * A step behind its entry Choice (skipped when the run leaves it out): its job, or its
 * substeps in sequence or in parallel.
 */
function stepStates(
  scope: Scope,
  step: StepSpec,
  next: string,
): { start: string; states: Record<string, State> } {
  const visible = scope.visible(step);
  const guard = `${step.name}: run?`;
  const states: Record<string, State> = {};
  let body: string;
  if (!step.parallel) {
    // One job, or substeps one after another; each sees the outputs of those before it.
    let target = next;
    const seen = [...visible];
    const chain: { job: JobSpec; visible: string[] }[] = [];
    for (const job of step.jobs) {
      chain.push({ job, visible: [...seen] });
      seen.push(...Object.keys(job.outputs));
    }
    for (const { job, visible: v } of chain.reverse()) {
      const s = jobStates(scope, step, job, v, target);
      Object.assign(states, s.states);
      target = s.start;
    }
    body = target;
  } else {
    Object.assign(
      states,
      parallelState(
        step.name,
        step.jobs.map((job) => {
          const done = `${job.name}: done`;
          const s = jobStates(scope, step, job, visible, done);
          const own = { ...s.states, [done]: { Type: 'Succeed' } };
          return { StartAt: s.start, States: inOrder(own, s.start) };
        }),
        next,
      ),
    );
    body = step.name;
  }
  if (scope.waits) body = waitStates(scope, step, body, next, states);
  states[guard] = {
    Type: 'Choice',
    Choices: [{ Variable: `$.run.skip.${stepKey(step.name)}`, IsPresent: true, Next: next }],
    Default: body,
  };
  return { start: guard, states };
}

/**
 * Before an aggregate step beside the samples (`body`): `strand-collect` looks in the run's sample ledger
 * whether every sample has ended the per-sample steps the step reads, and if so gathers their
 * outputs ("ready"); while not, a Wait of the length it says, and again ("pending"); "none"
 * when no sample got through them (the step is passed over, as after a run whose samples all
 * failed). The state it is given comes back with its answer, so it knows how long the ledger
 * has been quiet. Returns where the step now starts.
 */
function waitStates(
  scope: Scope,
  step: StepSpec,
  body: string,
  next: string,
  states: Record<string, State>,
): string {
  const check = `${step.name}: samples`;
  const ready = `${step.name}: samples ready?`;
  const wait = `${step.name}: samples wait`;
  states[check] = {
    Type: 'Task',
    Resource: LAMBDA,
    Parameters: {
      FunctionName: FUNCTIONS.collect,
      Payload: { mode: 'wait', step: step.name, 'state.$': '$', steps: stepPlans(scope.spec) },
    },
    OutputPath: '$.Payload',
    Next: ready,
  };
  states[ready] = {
    Type: 'Choice',
    Choices: [
      { Variable: '$.wait', StringEquals: 'pending', Next: wait },
      { Variable: '$.wait', StringEquals: 'none', Next: next },
    ],
    Default: body,
  };
  states[wait] = { Type: 'Wait', SecondsPath: '$.seconds', Next: check };
  return check;
}

/**
 * A Parallel state running `branches` side by side, then `next` with `{ run, vars }` whose vars
 * merge every branch's; a failing branch fails it with that branch's error and cause.
 */
function parallelState(name: string, branches: JsonObject[], next: string): Record<string, State> {
  const merged = branches.reduce<string>(
    (acc, _b, i) => (i === 0 ? '$[0].vars' : `States.JsonMerge(${acc}, $[${i}].vars, false)`),
    '',
  );
  return {
    [name]: {
      Type: 'Parallel',
      Branches: branches,
      ResultSelector: { 'run.$': '$[0].run', 'vars.$': merged },
      Next: next,
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: `${name}: stop` }],
    },
    [`${name}: stop`]: { Type: 'Fail', ErrorPath: '$.error.Error', CausePath: '$.error.Cause' },
  };
}

/**
 * The name of a Parallel state of steps: `steps stats, annotate, sketch`, shortened to stay
 * well inside ASL's 80 characters with its `: stop` and branch states, unique in the machine.
 */
function parallelName(steps: string[], used: Set<string>): string {
  let name = `steps ${steps.join(', ')}`;
  if (name.length > 60) {
    let shown = steps.length;
    while (
      shown > 1 &&
      `steps ${steps.slice(0, shown).join(', ')}, … (${steps.length})`.length > 60
    )
      shown--;
    name = `steps ${steps.slice(0, shown).join(', ')}, … (${steps.length})`.slice(0, 60);
  }
  for (let n = 2; used.has(name); n++) name = `${name.replace(/ #\d+$/, '')} #${n}`;
  used.add(name);
  return name;
}

/**
 * `states` in the order a reader follows them from `start` (each state, then where it goes on
 * success, then its failure paths), so the compiled JSON reads from top to bottom.
 */
function inOrder(states: Record<string, State>, start: string): Record<string, State> {
  const out: Record<string, State> = {};
  const visit = (name: string): void => {
    const state = states[name] as Record<string, unknown> | undefined;
    if (!state || name in out) return;
    out[name] = state as State;
    const choices = (state.Choices ?? []) as { Next: string }[];
    const catches = (state.Catch ?? []) as { Next: string }[];
    for (const next of [
      state.Default,
      ...choices.map((c) => c.Next),
      state.Next,
      ...catches.map((c) => c.Next),
    ])
      if (typeof next === 'string') visit(next);
  };
  visit(start);
  for (const name of Object.keys(states)) visit(name);
  return out;
}

/** A series-parallel plan of steps as states leading to `next`; returns where it starts. */
function planStates(scope: Scope, plan: Plan, next: string, states: Record<string, State>): string {
  if (plan.kind === 'step') {
    const s = stepStates(scope, scope.steps.get(plan.name)!, next);
    Object.assign(states, s.states);
    return s.start;
  }
  if (plan.kind === 'seq') {
    let target = next;
    for (const item of [...plan.items].reverse()) target = planStates(scope, item, target, states);
    return target;
  }
  const name = parallelName(planSteps(plan), scope.names);
  const branches = plan.branches.map((branch, i) => {
    const done = `${name}: ${i + 1} done`;
    const own: Record<string, State> = { [done]: { Type: 'Succeed' } };
    const start = planStates(scope, branch, done, own);
    return { StartAt: start, States: inOrder(own, start) };
  });
  Object.assign(states, parallelState(name, branches, next));
  return name;
}

/**
 * The samples and the aggregate steps side by side, for a pipeline where one of those waits
 * for some per-sample steps only. First `Samples` (the state a redrive of failed samples starts
 * again from) has `strand-collect` start the run's sample ledger afresh; then a Parallel state
 * runs
 *
 * - the Map over samples, as without this, then `strand-collect` records in the ledger that
 *   every sample has ended, and how;
 * - the aggregate steps, in the order their data needs, each once every sample has ended the
 *   per-sample steps it waits for (the samples' publishes and failures record themselves in the
 *   ledger): those that wait for every per-sample step, once the samples are done. They sit in a
 *   Parallel of their own whose Catch keeps a failure until the samples are done: an aggregate
 *   step failing never stops them.
 *
 * After it, the run fails with an aggregate step's error if one failed; otherwise `Collect`
 * says how the samples went.
 */
function samplesBeside(map: State, scope: Scope, plan: Plan): Record<string, State> {
  const lambda = (payload: JsonObject): JsonObject => ({
    FunctionName: FUNCTIONS.collect,
    Payload: payload,
  });
  map.Next = SAMPLES_ENDED;
  const samples: JsonObject = {
    StartAt: EACH_SAMPLE,
    States: {
      [EACH_SAMPLE]: map,
      [SAMPLES_ENDED]: {
        Type: 'Task',
        Resource: LAMBDA,
        Parameters: lambda({ mode: 'ended', 'run.$': '$.run', 'mapped.$': '$.mapped' }),
        ResultPath: null,
        End: true,
      },
    },
  };
  const steps: Record<string, State> = { [AGGREGATED_DONE]: { Type: 'Succeed' } };
  const first = planStates(scope, plan, AGGREGATED_DONE, steps);
  steps[AGGREGATED_START] = {
    Type: 'Pass',
    Parameters: { 'run.$': '$.run', 'vars.$': '$.params' },
    Next: first,
  };
  const aggregates: JsonObject = {
    StartAt: AGGREGATED,
    States: {
      [AGGREGATED]: {
        Type: 'Parallel',
        Branches: [{ StartAt: AGGREGATED_START, States: inOrder(steps, AGGREGATED_START) }],
        ResultSelector: { 'run.$': '$[0].run', 'vars.$': '$[0].vars' },
        End: true,
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: AGGREGATED_CAUGHT }],
      },
      [AGGREGATED_CAUGHT]: { Type: 'Pass', End: true },
    },
  };
  return {
    [STATE.samples]: {
      Type: 'Task',
      Resource: LAMBDA,
      Parameters: lambda({ mode: 'start', 'run.$': '$.run', 'items.$': '$.items' }),
      ResultPath: null,
      Next: BESIDE,
    },
    [BESIDE]: {
      Type: 'Parallel',
      Branches: [samples, aggregates],
      ResultSelector: {
        'run.$': '$[0].run',
        'items.$': '$[0].items',
        'params.$': '$[0].params',
        'mapped.$': '$[0].mapped',
        'aggregated.$': '$[1]',
      },
      Next: AGGREGATED_FAILED,
    },
    [AGGREGATED_FAILED]: {
      Type: 'Choice',
      Choices: [{ Variable: '$.aggregated.error', IsPresent: true, Next: AGGREGATED_STOP }],
      Default: STATE.collect,
    },
    [AGGREGATED_STOP]: {
      Type: 'Fail',
      ErrorPath: '$.aggregated.error.Error',
      CausePath: '$.aggregated.error.Cause',
    },
  };
}

/** Compiles the pipeline to a state machine and its job definitions. */
export function compilePipeline(
  spec: PipelineSpec,
  options: CompileOptions = {},
): CompiledPipeline {
  const queue = options.jobQueue ?? 'default';
  const perSample = spec.steps.filter((s) => s.scope === 'sample');
  const aggregate = spec.steps.filter((s) => s.scope === 'all');
  const columnsAndParams = ['SAMPLE', ...(options.columns ?? []), ...Object.keys(spec.params)];
  const states: Record<string, State> = {};

  states.Preflight = {
    Type: 'Task',
    Resource: LAMBDA,
    Parameters: {
      FunctionName: FUNCTIONS.preflight,
      Payload: {
        'run.$': '$.run',
        'samples.$': '$.samples',
        'params.$': '$.params',
        steps: stepPlans(spec),
      },
    },
    OutputPath: '$.Payload',
    Next: perSample.length > 0 ? STATE.samples : STATE.collect,
  };
  const names = new Set<string>();
  /**
   * The steps of one scope: `given` says what each sees on entry, and the outputs of the steps
   * of the scope it needs are added.
   */
  const scopeOf = (
    aggregate: boolean,
    steps: StepSpec[],
    given: (step: StepSpec) => string[],
  ): Scope => {
    const byName = new Map(steps.map((st) => [st.name, st]));
    return {
      spec,
      aggregate,
      queue,
      steps: byName,
      names,
      visible: (step) => [
        ...given(step),
        ...[...ancestors(steps, step.name)]
          .filter((n) => byName.has(n))
          .sort((a, b) => steps.indexOf(byName.get(a)!) - steps.indexOf(byName.get(b)!))
          .flatMap((n) => byName.get(n)!.jobs.flatMap((j) => Object.keys(j.outputs))),
      ],
    };
  };
  const outputsOf = (steps: StepSpec[]) =>
    steps.flatMap((s) => s.jobs.flatMap((j) => Object.keys(j.outputs)));
  // When an aggregate step waits for some per-sample steps only, the aggregate steps run beside
  // the samples, each as soon as every sample has ended those it waits for; otherwise all of
  // them once the samples are done, as a whole.
  const beside = earlyAggregates(spec.steps).length > 0;
  if (perSample.length > 0) {
    const sampleStates: Record<string, State> = { [SAMPLE_DONE]: { Type: 'Succeed' } };
    const sampleScope = scopeOf(false, perSample, () => columnsAndParams);
    if (beside) sampleScope.ledger = true;
    const start = planStates(sampleScope, seriesParallel(perSample), SAMPLE_DONE, sampleStates);
    const processor: JsonObject = { StartAt: start, States: inOrder(sampleStates, start) };
    const map: State = {
      Type: 'Map',
      ItemsPath: '$.items',
      ItemSelector: { 'run.$': '$.run', 'vars.$': '$$.Map.Item.Value' },
      ItemProcessor: processor,
      // Each sample's final { run, vars }, or { Error, Cause } for a sample that failed.
      ResultPath: '$.mapped',
      Next: STATE.collect,
    };
    if (spec.maxConcurrency > 0) map.MaxConcurrency = spec.maxConcurrency;
    if (spec.continueOnFailure) {
      processor.ProcessorConfig = { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' };
      map.ToleratedFailurePercentage = 100;
    }
    if (!beside) states.Samples = map;
    else {
      // Each sees the lists of the per-sample steps it waits for.
      const scope = scopeOf(true, aggregate, (step) => [
        ...Object.keys(spec.params),
        ...outputsOf(samplesAwaited(spec.steps, step.name)),
      ]);
      scope.waits = true;
      Object.assign(states, samplesBeside(map, scope, seriesParallel(aggregate)));
    }
  }
  states.Collect = {
    Type: 'Task',
    Resource: LAMBDA,
    Parameters: {
      FunctionName: FUNCTIONS.collect,
      Payload: {
        'run.$': '$.run',
        'items.$': '$.items',
        'params.$': '$.params',
        ...(perSample.length > 0 ? { 'mapped.$': '$.mapped' } : {}),
        steps: stepPlans(spec),
        // The aggregate steps ran beside the samples: what they gave and said.
        ...(beside ? { 'aggregated.$': '$.aggregated' } : {}),
      },
    },
    OutputPath: '$.Payload',
    Next: aggregate.length > 0 && !beside ? AGGREGATES : OUTCOME,
  };
  if (aggregate.length > 0 && !beside) {
    const start = planStates(
      scopeOf(true, aggregate, () => [...Object.keys(spec.params), ...outputsOf(perSample)]),
      seriesParallel(aggregate),
      OUTCOME,
      states,
    );
    // Collect says whether the steps over all samples run: not when the run ends before them,
    // nor when no sample succeeded.
    states[AGGREGATES] = {
      Type: 'Choice',
      Choices: [{ Variable: '$.run.aggregates', BooleanEquals: false, Next: OUTCOME }],
      Default: start,
    };
  }
  states[OUTCOME] = {
    Type: 'Choice',
    Choices: [{ Variable: '$.run.failed', NumericGreaterThan: 0, Next: 'Samples failed' }],
    Default: 'Done',
  };
  states['Samples failed'] = {
    Type: 'Fail',
    Error: ERROR.samplesFailed,
    CausePath: '$.run.failureMessage',
  };
  states.Done = { Type: 'Succeed' };

  const definition = {
    Comment: `Strand pipeline ${spec.name}${spec.description ? `: ${spec.description}` : ''}`,
    StartAt: 'Preflight',
    States: inOrder(states, 'Preflight'),
  } as unknown as StateMachineDefinition;
  return {
    definition,
    jobDefinitions: spec.steps.flatMap((s) => s.jobs.map((j) => jobDefinition(spec, j))),
  };
}
