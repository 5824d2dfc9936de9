/**
 * Linux's limits on what a job is started with and where its outputs go, checked before a run
 * submits anything: a value too long for one argument or environment string, a command and
 * environment together too long to exec, a sample id that makes a path too long. Each problem
 * points at the value to blame (a sample's cell, a parameter, a sample id) and names the
 * sample, the step and the limit, so it never surfaces as an E2BIG or ENAMETOOLONG deep inside
 * a run. Sizes are bytes of UTF-8, as the kernel counts them.
 */
import { compilePipeline, jobDefinitionName } from './compile.js';
import type { PipelineProblem } from './errors.js';
import { templateParts, type TemplatePart } from './template.js';
import type { JobSpec, PipelineSpec, SampleRow, SourcePos, StepSpec } from './model.js';
import type { SamplePositions } from './samples.js';
import { AGGREGATE_SAMPLE } from './contract.js';
import { earlyAggregates } from './dag.js';

/** The longest argument or environment string the kernel copies, its NUL included. */
export const MAX_ARG_STRLEN = 131_072;
/**
 * What Strand lets a command and its environment come to, counting each string, its NUL and its
 * pointer: half of the 2 MiB Linux allows with the usual 8 MiB stack (a quarter of the stack),
 * so a job also starts under a 4 MiB stack, with room for what Batch and the container add.
 */
export const ARG_MAX = 1_048_576;
/** The longest name of one file or directory. */
export const NAME_MAX = 255;
/** The longest path, its NUL included. */
export const PATH_MAX = 4096;

/** What is added at launch and not known here: PATH, HOME, AWS_BATCH_*, the wrapper's own argv. */
const LAUNCH_ALLOWANCE = 16_384;
/** A store writes each file under a temporary name first (`.strand-tmp-{pid}-{uuid}`). */
const TEMP_NAME = 64;
/** The manifest written beside a step's outputs. */
const MANIFEST = '_strand.json';
/**
 * An aggregate step's inputs are lists under `{pipeline}/_all/_inputs/{execution}/`, named
 * `{NAME}.txt`, or `{step}.{NAME}.txt` for a step that starts before every sample has ended.
 */
const EXECUTION_NAME = 128;
const STEP_NAME = 32;
const POINTER = 8;

/** Where a value came from, to point a problem at it. */
interface Origin {
  /** undefined: a command-line option. */
  at?: SourcePos;
  path: string;
  bytes: number;
}

export interface LimitsInput {
  spec: PipelineSpec;
  /** The samples of this run, and where each id and value was written (aligned). */
  samples: SampleRow[];
  positions: SamplePositions[];
  columns: string[];
  /** Where each parameter's value came from; undefined for `--param`. */
  paramAt: Record<string, SourcePos | undefined>;
  /** The local directory outputs are published to; undefined: paths are checked without it. */
  store?: string;
}

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');
const kib = (n: number): string => `${Math.round(n / 1024)} KiB`;

/** Every problem with the limits of argv, environment and paths, one per value to blame. */
export function limitProblems(input: LimitsInput): PipelineProblem[] {
  const { spec, samples, positions, columns } = input;
  const problems = new Map<string, PipelineProblem>();
  const add = (origin: Origin | undefined, job: JobSpec, message: string, hint: string): void => {
    const at = origin?.at ?? (origin ? undefined : job.at);
    const p: PipelineProblem = {
      file: at?.file ?? '',
      line: at?.line ?? 0,
      column: at?.column ?? 0,
      path: origin?.path ?? jobPath(job),
      message,
      hint,
    };
    const key = `${p.file}:${p.line}:${p.column}:${p.path}`;
    if (!problems.has(key)) problems.set(key, p);
  };
  const store = input.store ?? '';
  // The same few templates are measured for every sample: read each once.
  const parsed = new Map<string, TemplatePart[]>();
  const partsOf = (text: string): TemplatePart[] => {
    let parts = parsed.get(text);
    if (!parts) parsed.set(text, (parts = templateParts(text).parts));
    return parts;
  };
  const compiled = compilePipeline(spec, { columns });
  const definitions = new Map(compiled.jobDefinitions.map((d) => [d.jobDefinitionName, d]));
  const staticEnv = new Map(
    spec.steps.flatMap((step) =>
      step.jobs.map((job) => [
        job,
        (definitions.get(jobDefinitionName(spec, job))?.containerProperties.environment ?? []).map(
          (kv) => [kv.name, kv.value] as [string, string],
        ),
      ]),
    ),
  );
  const perSample = spec.steps.filter((s) => s.scope === 'sample');
  const aggregate = spec.steps.filter((s) => s.scope === 'all');
  const perSampleOutputs = perSample.flatMap((s) => s.jobs.flatMap((j) => Object.keys(j.outputs)));
  const params = Object.entries(spec.params);
  const paramOrigin = (name: string, value: string): Origin => ({
    at: input.paramAt[name],
    path: input.paramAt[name] ? `params.${name}` : `--param ${name}`,
    bytes: bytes(value),
  });

  // One value alone: every column and parameter reaches its jobs as "NAME=value".
  for (const [name, value] of params) {
    const n = bytes(name) + 1 + bytes(value) + 1;
    if (n > MAX_ARG_STRLEN) {
      problems.set(`param ${name}`, {
        ...where(paramOrigin(name, value)),
        message: `is ${bytes(value)} bytes; as ${name}=… in a job's environment it would be ${n} bytes with its end, and Linux passes at most ${MAX_ARG_STRLEN} per string (MAX_ARG_STRLEN)`,
        hint: 'put a long value in a file and pass its path',
      });
    }
  }
  samples.forEach((sample, s) => {
    const at = positions[s];
    for (const [name, value] of Object.entries(sample.values)) {
      const n = bytes(name) + 1 + bytes(value) + 1;
      if (n > MAX_ARG_STRLEN) {
        problems.set(`cell ${s} ${name}`, {
          ...where(cellOrigin(at, name, s)),
          message: `sample "${sample.id}": ${name} is ${bytes(value)} bytes; as ${name}=… in a job's environment it would be ${n} bytes with its end, and Linux passes at most ${MAX_ARG_STRLEN} per string (MAX_ARG_STRLEN)`,
          hint: 'put a long value in a file and pass its path',
        });
      }
    }
  });
  if (problems.size > 0) return [...problems.values()];

  const checkJob = (
    job: JobSpec,
    visible: string[],
    vars: Map<string, { value: string; origin?: Origin }>,
    sample: SampleRow | undefined,
    sampleAt: Origin | undefined,
  ): void => {
    const who = sample ? `sample "${sample.id}", step ${job.name}` : `step ${job.name}`;
    // A composite string: its length, and the value that contributes most to it.
    const measure = (text: string): { n: number; blame?: Origin } => {
      let n = 0;
      let blame: Origin | undefined;
      for (const part of partsOf(text)) {
        if ('text' in part) n += bytes(part.text);
        else if (Object.hasOwn(job.outputs, part.var)) n += bytes(job.outputs[part.var]);
        else {
          const v = vars.get(part.var);
          const size = bytes(v?.value ?? '');
          n += size;
          if (v?.origin && (!blame || size > blame.bytes)) blame = { ...v.origin, bytes: size };
        }
      }
      return { n, blame };
    };
    let total = LAUNCH_ALLOWANCE;
    let largest: Origin | undefined;
    const count = (n: number, blame: Origin | undefined, what: string): void => {
      total += n + 1 + POINTER;
      if (blame && (!largest || blame.bytes > largest.bytes)) largest = blame;
      if (n + 1 > MAX_ARG_STRLEN) {
        add(
          blame ?? sampleAt,
          job,
          `${who}: ${what} would be ${n + 1} bytes with its end; Linux passes at most ${MAX_ARG_STRLEN} per string (MAX_ARG_STRLEN)`,
          'put a long value in a file and pass its path',
        );
      }
    };
    job.command.forEach((item, i) => {
      const { n, blame } = measure(item);
      count(n, blame, `argument ${i} of the command`);
    });
    const named = new Set<string>();
    for (const name of visible) {
      if (Object.hasOwn(job.env, name)) continue;
      const v = vars.get(name);
      named.add(name);
      const size = bytes(v?.value ?? '');
      const origin = v?.origin ? { ...v.origin, bytes: size } : undefined;
      count(bytes(name) + 1 + size, origin, `the environment string ${name}=…`);
    }
    for (const [name, value] of Object.entries(job.env)) {
      named.add(name);
      const { n, blame } = measure(value);
      count(bytes(name) + 1 + n, blame, `the environment string ${name}=…`);
    }
    const own: [string, string][] = [
      ['STRAND_STEP', job.name],
      ['STRAND_PIPELINE', spec.name],
      ...(sample ? [['STRAND_SAMPLE', sample.id] as [string, string]] : []),
      ...(staticEnv.get(job) ?? []),
    ];
    for (const [name, value] of own) {
      if (named.has(name)) continue;
      named.add(name);
      count(bytes(name) + 1 + bytes(value), undefined, `the environment string ${name}=…`);
    }
    if (total > ARG_MAX) {
      add(
        largest ?? sampleAt,
        job,
        `${who}: the command and environment would come to ${kib(total)} (each string with its end and pointer, and what is added at launch); Strand keeps them within ${kib(ARG_MAX)}, half of Linux's usual ARG_MAX`,
        'put long values in files and pass their paths',
      );
    }
  };

  /** Each job's view: the variables it sees, as the compiler passes them (see compile.ts). */
  const walk = (
    steps: StepSpec[],
    start: string[],
    each: (job: JobSpec, visible: string[]) => void,
  ): void => {
    const seen = [...start];
    for (const step of steps) {
      const before = [...seen];
      for (const job of step.jobs) {
        each(job, step.parallel ? before : [...seen]);
        if (!step.parallel) seen.push(...Object.keys(job.outputs));
      }
      if (step.parallel) for (const job of step.jobs) seen.push(...Object.keys(job.outputs));
    }
  };

  /** A published output's path, and the problem when it is too long. */
  const checkPaths = (job: JobSpec, sampleDir: string, blame: Origin | undefined): void => {
    const files = [...Object.values(job.outputs), ...(job.stdout ? [job.stdout] : []), MANIFEST];
    for (const rel of files) {
      const parts = rel.split('/');
      const last = parts.pop()!;
      // The temporary name the file is first written under may be the longer one.
      const name = bytes(last) >= TEMP_NAME ? last : 'x'.repeat(TEMP_NAME);
      const path = [store, spec.name, sampleDir, job.name, ...parts, name].join('/');
      const n = bytes(path) + 1;
      if (n > PATH_MAX) {
        add(
          blame,
          job,
          `${sampleDir === AGGREGATE_SAMPLE ? '' : `sample "${sampleDir}": `}the store path of step ${job.name}'s ${rel === MANIFEST ? 'manifest' : `output ${rel}`} would be ${n} bytes with its end (${store || '{store}'}/${spec.name}/${sampleDir}/${job.name}/${rel}); Linux paths have at most ${PATH_MAX} (PATH_MAX)`,
          sampleDir === AGGREGATE_SAMPLE
            ? 'use a store with a shorter path'
            : 'use a shorter sample id, or a store with a shorter path',
        );
        return;
      }
    }
  };

  samples.forEach((sample, s) => {
    const at = positions[s];
    const idOrigin: Origin = {
      at: at?.id,
      path: at?.id.path ?? `samples[${s}].id`,
      bytes: bytes(sample.id),
    };
    if (bytes(sample.id) > NAME_MAX) {
      add(
        idOrigin,
        perSample[0]?.jobs[0] ?? spec.steps[0].jobs[0],
        `sample id "${sample.id.slice(0, 40)}…" is ${bytes(sample.id)} bytes; it names a directory of the store, and a file or directory name has at most ${NAME_MAX} (NAME_MAX)`,
        'use a shorter sample id',
      );
      return;
    }
    const vars = new Map<string, { value: string; origin?: Origin }>();
    for (const [name, value] of params) vars.set(name, { value, origin: paramOrigin(name, value) });
    for (const [name, value] of Object.entries(sample.values)) {
      vars.set(name, { value, origin: cellOrigin(at, name, s) });
    }
    vars.set('SAMPLE', { value: sample.id, origin: idOrigin });
    for (const step of perSample) {
      for (const job of step.jobs) {
        for (const [name, rel] of Object.entries(job.outputs))
          vars.set(name, {
            value: [store, spec.name, sample.id, job.name, rel].join('/'),
            origin: idOrigin,
          });
      }
    }
    walk(perSample, ['SAMPLE', ...columns, ...Object.keys(spec.params)], (job, visible) => {
      checkPaths(job, sample.id, idOrigin);
      checkJob(job, visible, vars, sample, idOrigin);
    });
  });

  if (aggregate.length > 0) {
    const vars = new Map<string, { value: string; origin?: Origin }>();
    for (const [name, value] of params) vars.set(name, { value, origin: paramOrigin(name, value) });
    // The longest list name any of them may get.
    const step = earlyAggregates(spec.steps).length > 0 ? `${'x'.repeat(STEP_NAME)}.` : '';
    for (const name of perSampleOutputs) {
      const list = `_all/_inputs/${'x'.repeat(EXECUTION_NAME)}/${step}${name}.txt`;
      vars.set(name, { value: [store, spec.name, list].join('/') });
    }
    for (const step of aggregate)
      for (const job of step.jobs)
        for (const [name, rel] of Object.entries(job.outputs))
          vars.set(name, { value: [store, spec.name, AGGREGATE_SAMPLE, job.name, rel].join('/') });
    walk(aggregate, [...Object.keys(spec.params), ...perSampleOutputs], (job, visible) => {
      checkPaths(job, AGGREGATE_SAMPLE, undefined);
      checkJob(job, visible, vars, undefined, undefined);
    });
  }
  return [...problems.values()];
}

/** A sample's value as the origin of a problem (its id's place when the value has none). */
function cellOrigin(at: SamplePositions | undefined, name: string, index: number): Origin {
  const cell = at?.values[name];
  return {
    at: cell ?? at?.id,
    path: cell?.path ?? `${at?.id.path ?? `samples[${index}]`}.${name}`,
    bytes: 0,
  };
}

/** A job's place in the document, for a problem no single value is to blame for. */
function jobPath(job: JobSpec): string {
  const [step, sub] = job.name.split('.');
  return sub === undefined ? `steps.${step}` : `steps.${step}.substeps.${sub}`;
}

function where(origin: Origin): Pick<PipelineProblem, 'file' | 'line' | 'column' | 'path'> {
  return {
    file: origin.at?.file ?? '',
    line: origin.at?.line ?? 0,
    column: origin.at?.column ?? 0,
    path: origin.path,
  };
}
