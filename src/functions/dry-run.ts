/**
 * What a run would do, job by job, without running anything: for each job of each sample,
 * whether the job cache would answer it and, if not, why (`strand run --dry-run`). It builds
 * each SubmitJob request from the compiled state machine's own Task (so the environment is the
 * one the run would give), resolves it against the compiled job definition, fingerprints it as
 * the cache does and compares with the manifest in the store. Nothing is written; files are
 * only read to be fingerprinted (through the digest memo, like a run).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluatePayloadTemplate } from '../asl/payload.js';
import type { Json, JsonObject } from '../asl/types.js';
import { resolveContainer } from '../batch/register.js';
import type { JobDefinition, SubmitJobRequest } from '../batch/types.js';
import type { CompiledPipeline } from '../pipeline/compile.js';
import { AGGREGATE_SAMPLE, TAG, type RunSettings } from '../pipeline/contract.js';
import { ancestors, planSteps, seriesParallel } from '../pipeline/dag.js';
import type { JobSpec, PipelineSpec, StepSpec } from '../pipeline/model.js';
import { stepPrefix } from '../storage/layout.js';
import {
  outputLocations,
  readManifest,
  verifyManifest,
  type OutputManifest,
} from '../storage/publish.js';
import type { ObjectStore } from '../storage/store.js';
import { fingerprintDetail, type DigestMemo } from './fingerprint.js';
import { collectedDigests } from './pipeline-functions.js';

/** One job of the run, as the dry run sees it. */
export interface PlannedJob {
  sample: string;
  /** `annotate.genes` */
  job: string;
  /**
   * `cached`: the cache answers it; `runs`: it runs; `blocked`: an output it reads from a step
   * the run leaves out is not in the store, so the run would stop before any job.
   */
  action: 'cached' | 'runs' | 'blocked';
  /** Why: the execution it is cached from, or what makes it run. */
  reason: string;
}

export interface DryRunOptions {
  spec: PipelineSpec;
  compiled: CompiledPipeline;
  /** The run's input as `strand run` would start it. */
  input: {
    run: RunSettings;
    samples: { id: string; values: Record<string, string> }[];
    params: Record<string, string>;
  };
  /** The steps the run runs (`--from/--to/--only`). */
  steps: string[];
  store: ObjectStore;
  /** What the queue runs jobs on (part of the fingerprint). */
  executor: string;
  digests?: DigestMemo;
}

type State = Record<string, unknown>;

/** The `batch:submitJob.sync` Task of each job in a compiled definition, by job name. */
function tasksByJob(definition: Json): Map<string, State> {
  const tasks = new Map<string, State>();
  const visit = (states: Record<string, State>): void => {
    for (const state of Object.values(states)) {
      const params = state.Parameters as { Tags?: Record<string, string> } | undefined;
      const step = params?.Tags?.[TAG.step];
      if (state.Type === 'Task' && typeof step === 'string') tasks.set(step, state);
      for (const b of (state.Branches ?? []) as { States: Record<string, State> }[])
        visit(b.States);
      const processor = state.ItemProcessor as { States: Record<string, State> } | undefined;
      if (processor) visit(processor.States);
    }
  };
  visit((definition as { States: Record<string, State> }).States);
  return tasks;
}

/** camelCase keys for a SubmitJob request, as the Batch integration turns the Task's ones. */
function submitRequest(parameters: JsonObject): SubmitJobRequest {
  const overrides = (parameters.ContainerOverrides ?? {}) as {
    Environment?: { Name: string; Value: string }[];
  };
  return {
    jobName: String(parameters.JobName),
    jobQueue: String(parameters.JobQueue),
    jobDefinition: String(parameters.JobDefinition),
    parameters: (parameters.Parameters ?? {}) as Record<string, string>,
    containerOverrides: {
      environment: (overrides.Environment ?? []).map((e) => ({ name: e.Name, value: e.Value })),
    },
    tags: (parameters.Tags ?? {}) as Record<string, string>,
  };
}

/** Which parts of the fingerprint differ from the manifest's, in words. */
function changedParts(before: Record<string, string> | undefined, now: Record<string, string>) {
  if (!before) return 'its command, image, environment or an input changed';
  const keys = [...new Set([...Object.keys(before), ...Object.keys(now)])].sort();
  const changed = keys.filter((k) => before[k] !== now[k]);
  const words = changed.map((k) =>
    k.startsWith('env ') ? `$${k.slice(4)}` : k === 'executor' ? 'the executor' : `its ${k}`,
  );
  if (words.length === 0) return 'its command, image, environment or an input changed';
  const shown = words.length > 4 ? [...words.slice(0, 4), `${words.length - 4} more`] : words;
  return `changed: ${shown.join(', ')}`;
}

/**
 * Every job the run would submit, in the order a run meets them (sample by sample, each in the
 * order of the step graph; then the steps over all samples), cached or not and why.
 */
export async function dryRun(options: DryRunOptions): Promise<PlannedJob[]> {
  const { spec, compiled, input, store } = options;
  const tasks = tasksByJob(compiled.definition as unknown as Json);
  const definitions = new Map(
    compiled.jobDefinitions.map((d) => [d.jobDefinitionName, d as unknown as JobDefinition]),
  );
  const cache = input.run.cache;
  const planned: PlannedJob[] = [];
  const byName = new Map(spec.steps.map((s) => [s.name, s]));
  // The steps whose jobs run (not cached) for each sample: what follows them runs too.
  const runsIn = new Map<string, Set<string>>();

  const manifestOf = async (sample: string | null, job: JobSpec) =>
    readManifest(store, stepPrefix(spec.name, sample, job.name)).catch(() => undefined);

  /** One job: cached or not, and the variables it adds for the jobs after it. */
  const judge = async (
    job: JobSpec,
    sample: string | null,
    vars: Record<string, string>,
    upstreamRuns: string[],
  ): Promise<{ action: PlannedJob['action']; reason: string; manifest?: OutputManifest }> => {
    const manifest = await manifestOf(sample, job);
    if (cache === 'false') return { action: 'runs', reason: '--no-cache', manifest };
    if (upstreamRuns.length > 0)
      return {
        action: 'runs',
        reason: `after ${upstreamRuns.join(', ')}, which run${upstreamRuns.length === 1 ? 's' : ''}`,
        manifest,
      };
    if (!manifest) return { action: 'runs', reason: 'no published outputs yet' };
    if (manifest.status !== 'SUCCEEDED')
      return { action: 'runs', reason: `failed in execution ${manifest.execution}`, manifest };
    const task = tasks.get(job.name);
    const def = definitions.get(String((task?.Parameters as JsonObject)?.JobDefinition));
    if (!task || !def) return { action: 'runs', reason: 'not compiled', manifest };
    const parameters = evaluatePayloadTemplate(
      task.Parameters as Json,
      {
        input: { run: input.run as unknown as Json, vars },
        context: {},
        variable: () => undefined,
        random: Math.random,
      },
      'Parameters',
    ) as JsonObject;
    const container = resolveContainer(def, submitRequest(parameters));
    const now = await fingerprintDetail(
      { ...container, executor: options.executor },
      { memo: options.digests, fresh: cache === 'deep' },
    );
    if (now.fingerprint !== manifest.fingerprint)
      return {
        action: 'runs',
        reason: `${changedParts(manifest.fingerprintParts, now.parts)} (since execution ${manifest.execution})`,
        manifest,
      };
    const problems = await verifyManifest(
      store,
      stepPrefix(spec.name, sample, job.name),
      manifest,
      { deep: cache === 'deep' },
    ).catch((e: unknown) => [String(e)]);
    if (problems.length > 0)
      return { action: 'runs', reason: `its stored outputs changed: ${problems[0]}`, manifest };
    return { action: 'cached', reason: `same as execution ${manifest.execution}`, manifest };
  };

  /** The jobs of the steps of one scope, in graph order, for one sample (null: all samples). */
  const scope = async (steps: StepSpec[], sample: string | null, start: Record<string, string>) => {
    const vars = { ...start };
    const runs = new Set<string>();
    // Outputs of steps the run leaves out that are not in the store, with the job declaring each.
    const absent = new Map<string, string>();
    // Steps that cannot run for want of such an output, and so the steps after them.
    const blocked = new Set<string>();
    for (const name of planSteps(seriesParallel(steps))) {
      const step = byName.get(name)!;
      const selected = options.steps.includes(name);
      // The steps it waits for that run in this run: those it needs directly, else any before.
      const running = (n: string) =>
        runs.has(n) || (sample === null && [...runsIn.values()].some((set) => set.has(n)));
      const direct = step.needs.filter(running);
      const needs = direct.length > 0 ? direct : [...ancestors(spec.steps, name)].filter(running);
      const added: Record<string, string> = {};
      for (const job of step.jobs) {
        // Parallel substeps see what came before the step; a sequence, its earlier substeps too.
        const seen = step.parallel ? vars : { ...vars, ...added };
        if (!selected) {
          const manifest = await manifestOf(sample, job);
          for (const n of Object.keys(job.outputs)) {
            added[n] = '';
            if (manifest?.status !== 'SUCCEEDED') absent.set(n, job.name);
          }
          if (manifest?.status === 'SUCCEEDED') Object.assign(added, outputLocations(manifest));
          continue;
        }
        const lacking = job.vars.filter((v) => absent.has(v));
        const stuck = [...ancestors(spec.steps, name)].filter((n) => blocked.has(n));
        const verdict = stuck.length
          ? {
              action: 'blocked' as const,
              reason: `after ${stuck.join(', ')}, which cannot run`,
              manifest: undefined,
            }
          : lacking.length
            ? {
                action: 'blocked' as const,
                reason: `${lacking.map((v) => `$${v} of ${absent.get(v)!}`).join(', ')} not in the store (the run leaves ${lacking.length === 1 ? 'that step' : 'those steps'} out)`,
                manifest: undefined,
              }
            : await judge(job, sample, seen, needs);
        planned.push({
          sample: sample ?? AGGREGATE_SAMPLE,
          job: job.name,
          action: verdict.action,
          reason: verdict.reason,
        });
        if (verdict.action === 'runs') runs.add(name);
        if (verdict.action === 'blocked') blocked.add(name);
        for (const [n, path] of Object.entries(job.outputs)) {
          // Where publish puts it (the location is the same whether it runs or not).
          const key = `${stepPrefix(spec.name, sample, job.name)}/${path}`;
          added[n] = store.localPath(key) ?? `${store.url}/${key}`;
        }
        if (verdict.action === 'cached' && verdict.manifest)
          Object.assign(added, outputLocations(verdict.manifest));
      }
      Object.assign(vars, added);
    }
    return { vars, runs };
  };

  const perSample = spec.steps.filter((s) => s.scope === 'sample');
  const aggregate = spec.steps.filter((s) => s.scope === 'all');
  const outputsOf = new Map<string, Record<string, string>>();
  if (perSample.length > 0)
    for (const s of input.samples) {
      const start = { ...input.params, ...s.values, SAMPLE: s.id };
      const { vars, runs } = await scope(perSample, s.id, start);
      runsIn.set(s.id, runs);
      outputsOf.set(s.id, vars);
    }
  if (aggregate.length === 0 || !aggregate.some((s) => options.steps.includes(s.name)))
    return planned;
  // The aggregate steps read lists of every sample's outputs, which collect writes for the
  // run; here they go to a temporary directory, to be fingerprinted by content as the run's are.
  const dir = await mkdtemp(join(tmpdir(), 'strand-dry-run-'));
  try {
    const start: Record<string, string> = { ...input.params };
    for (const step of perSample)
      for (const job of step.jobs)
        for (const name of Object.keys(job.outputs)) {
          const file = join(dir, `${name}.txt`);
          const lines = input.samples
            .map((s) => outputsOf.get(s.id)?.[name])
            .filter((v): v is string => v !== undefined && v !== '')
            .map((v) => `${v}\n`);
          await writeFile(file, lines.join(''));
          start[name] = file;
        }
    const given = input.samples.map((s) => s.id);
    Object.assign(start, await collectedDigests(store, spec.name, spec.steps, aggregate, given));
    await scope(aggregate, null, start);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return planned;
}
