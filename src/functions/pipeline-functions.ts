/**
 * Strand's own functions, which compiled pipelines call through `lambda:invoke`: preflight
 * (samples → Map items, a sliced run's inputs checked before any job), publish (the manifest
 * the job's stage-out wrote, results rows and metrics), sync-failure (what the stage-out kept
 * of a failed job, a FAILED row, then the error naming step, sample and log) and collect (every
 * sample's outputs listed for the steps that run once for all samples; when those run beside the
 * samples, it also keeps the run's sample ledger and waits on it: see `ledgerPrefix`). Each works from its
 * payload, the store (by key: never a job's directory, which is where the job ran, see
 * stage-out.ts) and the results sink, so the same handlers can be bundled as the Lambda on AWS.
 * Also the job cache: a job whose fingerprint matches a successful manifest is not run again.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Json, JsonObject } from '../asl/types.js';
import type { JobHistory, LocalBatch } from '../batch/local-batch.js';
import type { SubmitJobRequest } from '../batch/types.js';
import type { LambdaFunction } from '../engine/integrations.js';
import {
  AGGREGATE_SAMPLE,
  ERROR,
  FUNCTIONS,
  inputsDigestVar,
  perSampleNeeds,
  TAG,
  stepKey,
  type RunSettings,
} from '../pipeline/contract.js';
import { ancestors, samplesAwaited } from '../pipeline/dag.js';
import { extractMetrics } from '../results/extract.js';
import type { ResultsSink } from '../results/sink.js';
import { stepPrefix } from '../storage/layout.js';
import { jobFingerprint, type DigestMemo } from './fingerprint.js';
import { samplesKey } from './stage-out.js';

export { jobFingerprint };

import {
  outputLocations,
  readManifest,
  verifyManifest,
  type OutputManifest,
} from '../storage/publish.js';
import type { ObjectStore } from '../storage/store.js';

/** What a step's outputs and results are, as the compiler embeds them in payloads. */
export interface JobPlan {
  name: string;
  outputs: Record<string, string>;
  /** Variables the job's command and env use. */
  uses?: string[];
  results: {
    from: string;
    format: 'tsv' | 'csv' | 'json';
    columns?: Record<string, string>;
    header?: string[];
  }[];
}

export interface StepPlan {
  name: string;
  scope: 'sample' | 'all';
  /** The steps it waits for (see PipelineSpec). */
  needs: string[];
  jobs: JobPlan[];
}

/** Whether the run leaves `step` out (`--from/--to/--only`). */
function skipped(run: RunSettings, step: string): boolean {
  return run.skip?.[stepKey(step)] === true;
}

/**
 * Of `steps` (one scope), those the run leaves out whose outputs the steps it runs see: their
 * published outputs are loaded from the store, as a whole run would have given them.
 */
function loadedForSlice(run: RunSettings, all: StepPlan[], scope: StepPlan['scope']): StepPlan[] {
  const needed = new Set(running(run, all).flatMap((s) => [...ancestors(all, s.name)]));
  return all.filter((s) => s.scope === scope && skipped(run, s.name) && needed.has(s.name));
}

/** The steps the run does not leave out. */
function running(run: RunSettings, steps: StepPlan[]): StepPlan[] {
  return steps.filter((s) => !skipped(run, s.name));
}

/** What a sliced run needs that is not in the store, as the error it fails with. */
function missingInputs(run: RunSettings, missing: string[]): StrandError {
  const shown = missing.slice(0, 20).join('\n  ');
  const more = missing.length > 20 ? `\n  … and ${missing.length - 20} more` : '';
  const slice = run.from ? `--from ${run.from}` : `--to ${run.to}`;
  return new StrandError(
    ERROR.missingInputs,
    `${slice} needs outputs that are not in the store:\n  ${shown}${more}`,
  );
}

/** How a job that has ended ran, wherever it ran: what strand-publish and sync-failure record. */
export interface JobInfo {
  jobId: string;
  /** How many attempts the job had. */
  attempts: number;
  /** The last attempt, when one started. */
  last?: {
    exitCode?: number;
    /** The container's reason (OutOfMemoryError…), when it gave one. */
    reason?: string;
    /** Where its log is: the local log file, or the CloudWatch Logs stream. */
    logStreamName?: string;
    startedAt?: number;
    stoppedAt?: number;
    vcpus?: number;
    memoryMiB?: number;
    cpuSeconds?: number;
    peakMemoryMiB?: number;
  };
  statusReason?: string;
  /** The executor that ran it (`local`, `container`, `aws-batch`…). */
  executor: string;
  /** The image it ran in; null where none was used (the local executor). */
  image: string | null;
}

/** Finds a job by its Batch job id; undefined when no Batch it can ask knows it. */
export type JobLookup = (jobId: string) => Promise<JobInfo | undefined>;

/** The job lookup of the local Batch (the engine's own jobs). */
export function localJobLookup(batch: () => LocalBatch | undefined): JobLookup {
  return (jobId) => {
    const b = batch();
    const detail = b?.getJob(jobId);
    if (!b || !detail) return Promise.resolve(undefined);
    const executor = b.queueExecutor(detail.jobQueue);
    const last = detail.attempts.at(-1);
    return Promise.resolve({
      jobId: detail.jobId,
      attempts: detail.attempts.length,
      ...(last
        ? {
            last: {
              exitCode: last.container.exitCode,
              reason: last.container.reason,
              logStreamName: last.container.logStreamName,
              startedAt: last.startedAt,
              stoppedAt: last.stoppedAt,
              vcpus: last.vcpus,
              memoryMiB: last.memoryMiB,
              cpuSeconds: last.cpuSeconds,
              peakMemoryMiB: last.peakMemoryMiB,
            },
          }
        : {}),
      ...(detail.statusReason === undefined ? {} : { statusReason: detail.statusReason }),
      executor,
      image: executor === 'local' ? null : (detail.container.image ?? null),
    });
  };
}

export interface PipelineFunctionsOptions {
  store: (url: string) => ObjectStore;
  results: ResultsSink;
  /** The local Batch: the job cache, and how long strand-collect waits (none on Lambda). */
  batch: () => LocalBatch | undefined;
  /**
   * Where strand-publish and strand-sync-failure look a finished job up (default: the local
   * Batch; on Lambda, AWS Batch's DescribeJobs).
   */
  jobs?: JobLookup;
  /** Digests of input files remembered across runs (the home's). */
  digests?: DigestMemo;
}

/** The samples aggregate step `step` was given in `execution`, when it ran beside the samples. */
function stepSamplesKey(pipeline: string, execution: string, step: string): string {
  return `${pipeline}/_all/_inputs/${execution}/_samples.${step}.json`;
}

/** The longest Wait between two looks at the sample ledger (see awaitSamples). */
const MAX_WAIT_SECONDS = 10;
/**
 * How long one look at the sample ledger keeps looking when Strand's functions run as a Lambda
 * (no local Batch beside them): fewer state transitions, which Step Functions bills.
 */
const LAMBDA_LOOK_SECONDS = 20;

/**
 * Where a run records, for the aggregate steps that run beside the samples, how far each sample
 * got: `_items.json` (the Map's items, when the ledger was started), one object
 * per sample and job published (`{sample}/{job}.json`: its output locations), one per sample
 * that failed (`{sample}/_failed.json`), `_ended.json` once the Map has ended (each sample's
 * final variables, or null for a failed one), and what the run should say of an aggregate step
 * (`_notes/{step}.json`, which Collect says at the end). Written by strand-publish, strand-sync-failure and
 * strand-collect; read by strand-collect only, for those steps.
 */
export function ledgerPrefix(run: Pick<RunSettings, 'pipeline' | 'execution'>): string {
  return `${run.pipeline}/_all/_inputs/${run.execution}/_ledger`;
}

/** A step failed; its error name is what the Fail state shows. */
class StrandError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/** The store layout's sample: none for a step over all samples (results say `_all`). */
function layoutSample(sample: string | undefined): string | null {
  return sample === undefined || sample === AGGREGATE_SAMPLE ? null : sample;
}

const iso = (ms: number | undefined): string | undefined =>
  ms === undefined ? undefined : new Date(ms).toISOString();

/**
 * The manifest the stage-out wrote for job `jobId` at `prefix` (for no job id: whatever manifest
 * is there), or undefined when there is none of it.
 */
async function stagedManifest(
  store: ObjectStore,
  prefix: string,
  jobId: string | undefined,
): Promise<OutputManifest | undefined> {
  const manifest = await readManifest(store, prefix).catch(() => undefined);
  return manifest && (jobId === undefined || manifest.jobId === jobId) ? manifest : undefined;
}

/** Runs `use` on a local path holding the object `key` (a temporary copy for a remote store). */
async function withLocalCopy<T>(
  store: ObjectStore,
  key: string,
  use: (path: string) => T,
): Promise<T> {
  const local = store.localPath(key);
  if (local !== undefined) return use(local);
  const dir = await mkdtemp(join(tmpdir(), 'strand-result-'));
  try {
    const path = join(dir, key.split('/').at(-1)!);
    await writeFile(path, await store.get(key));
    return use(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function asRun(v: Json | undefined): RunSettings {
  return v as unknown as RunSettings;
}

function vars(v: Json | undefined): Record<string, string> {
  return { ...((v ?? {}) as Record<string, string>) };
}

/** The handlers, by function name (see FUNCTIONS in pipeline/compile.ts). */
export function pipelineFunctions(
  options: PipelineFunctionsOptions,
): Record<string, LambdaFunction> {
  const lookup = options.jobs ?? localJobLookup(options.batch);
  const job = (id: string | undefined): Promise<JobInfo | undefined> =>
    id ? lookup(id) : Promise.resolve(undefined);
  /** What ran a job and in which image, and the last attempt's size and CPU time. */
  const ranOn = (
    info: JobInfo,
  ): {
    executor: string;
    image: string | null;
    vcpus?: number;
    memoryMiB?: number;
    cpuSeconds?: number;
    peakMemoryMiB?: number;
  } => ({
    executor: info.executor,
    image: info.image,
    ...(info.last?.vcpus === undefined ? {} : { vcpus: info.last.vcpus }),
    ...(info.last?.memoryMiB === undefined ? {} : { memoryMiB: info.last.memoryMiB }),
    ...(info.last?.cpuSeconds === undefined ? {} : { cpuSeconds: info.last.cpuSeconds }),
    ...(info.last?.peakMemoryMiB === undefined ? {} : { peakMemoryMiB: info.last.peakMemoryMiB }),
  });

  /** The metrics of the step's results files, read from the store where the stage-out put them. */
  async function recordMetrics(
    run: RunSettings,
    sample: string,
    plan: JobPlan,
    store: ObjectStore,
    prefix: string,
  ): Promise<void> {
    for (const r of plan.results) {
      const key = `${prefix}/${r.from}`;
      if (!(await store.exists(key))) continue;
      const table = await withLocalCopy(store, key, (path) =>
        extractMetrics(path, {
          format: r.format,
          columns: r.columns as Record<string, 'integer' | 'real' | 'text'> | undefined,
          header: r.header,
        }),
      );
      await options.results.putMetrics(
        { pipeline: run.pipeline, step: plan.name, execution: run.execution, sample },
        table,
      );
    }
  }

  const publish: LambdaFunction = async (payload) => {
    const p = payload as JsonObject;
    const run = asRun(p.run);
    const plan = p.plan as unknown as JobPlan;
    const sample = String(p.sample);
    const store = options.store(run.store);
    const prefix = stepPrefix(run.pipeline, layoutSample(sample), plan.name);
    const j = p.job as { JobId: string; Tags?: Record<string, string> };
    let manifest: OutputManifest | undefined;
    if (j.Tags?.[TAG.cached] === 'true') {
      manifest = await readManifest(store, prefix);
      if (!manifest)
        throw new StrandError(ERROR.cacheMiss, `${prefix}: the cached manifest is gone`);
      await options.results.upsertStep({
        execution: run.execution,
        pipeline: run.pipeline,
        sample,
        step: plan.name,
        status: 'CACHED',
        jobId: manifest.jobId,
        exitCode: manifest.exitCode ?? undefined,
        startedAt: iso(manifest.startedAt ?? undefined),
        stoppedAt: iso(manifest.stoppedAt ?? undefined),
        outputLocation: `${store.url}/${prefix}`,
      });
    } else {
      const detail = await job(j.JobId);
      if (!detail) throw new StrandError(ERROR.publishFailed, `job ${j.JobId} not found`);
      const attempt = detail.last;
      const ran = ranOn(detail);
      // The stage-out put the job's outputs in the store when it ended; only its manifest says
      // how that went.
      manifest = await stagedManifest(store, prefix, detail.jobId);
      if (!manifest)
        throw new StrandError(
          ERROR.publishFailed,
          `job ${detail.jobId} ended, but its outputs were not staged out to ${store.url}/${prefix} (no manifest of it there)`,
        );
      if (manifest.status !== 'SUCCEEDED')
        throw new StrandError(
          ERROR.publishFailed,
          manifest.error ?? `the outputs of job ${detail.jobId} were published as FAILED`,
        );
      await recordMetrics(run, sample, plan, store, prefix);
      await options.results.upsertStep({
        execution: run.execution,
        pipeline: run.pipeline,
        sample,
        step: plan.name,
        status: 'SUCCEEDED',
        jobId: detail.jobId,
        attempt: detail.attempts,
        exitCode: attempt?.exitCode ?? 0,
        startedAt: iso(attempt?.startedAt),
        stoppedAt: iso(attempt?.stoppedAt),
        outputLocation: `${store.url}/${prefix}`,
        logLocation: attempt?.logStreamName,
        ...ran,
        error: null,
        cause: null,
      });
    }
    const outputs = outputLocations(manifest);
    // An aggregate step that reads this step may start before the sample has ended: it learns
    // of it here.
    if (p.ledger === true && sample !== AGGREGATE_SAMPLE)
      await store.putBytes(
        `${ledgerPrefix(run)}/${sample}/${plan.name}.json`,
        JSON.stringify(outputs),
      );
    return { run: p.run ?? null, vars: { ...vars(p.vars), ...outputs } };
  };

  const syncFailure: LambdaFunction = async (payload) => {
    const p = payload as JsonObject;
    const run = asRun(p.run);
    const plan = p.plan as unknown as JobPlan;
    const sample = String(p.sample);
    const error = (p.error ?? {}) as { Error?: string; Cause?: string };
    let cause: { JobId?: string; StatusReason?: string; errorMessage?: string } = {};
    try {
      cause = JSON.parse(error.Cause ?? '{}') as typeof cause;
    } catch {
      // not a job: the cause is plain text
    }
    const detail = await job(cause.JobId);
    const attempt = detail?.last;
    const store = options.store(run.store);
    const prefix = stepPrefix(run.pipeline, layoutSample(sample), plan.name);
    // What the stage-out kept of the failed job (or of the job whose outputs publish refused).
    const staged = await stagedManifest(store, prefix, detail?.jobId);
    const published = staged?.execution === run.execution && staged.status === 'FAILED';
    if (published) await recordMetrics(run, sample, plan, store, prefix).catch(() => undefined);
    const log = attempt?.logStreamName;
    const reason =
      attempt?.reason ??
      (attempt?.exitCode !== undefined
        ? `exit code ${attempt.exitCode}`
        : (detail?.statusReason ?? cause.errorMessage ?? error.Cause ?? error.Error ?? 'failed'));
    await options.results.upsertStep({
      execution: run.execution,
      pipeline: run.pipeline,
      sample,
      step: plan.name,
      status: 'FAILED',
      jobId: detail?.jobId,
      // A job that never started (it could not fit) has no attempt to name.
      attempt: detail?.attempts || undefined,
      exitCode: attempt?.exitCode,
      startedAt: iso(attempt?.startedAt),
      stoppedAt: iso(attempt?.stoppedAt),
      outputLocation: published ? `${store.url}/${prefix}` : undefined,
      logLocation: log,
      ...(detail ? ranOn(detail) : {}),
      error: error.Error ?? 'States.TaskFailed',
      cause: reason,
    });
    const where = sample === AGGREGATE_SAMPLE ? 'for all samples' : `for sample ${sample}`;
    // The sample has ended: aggregate steps waiting for it go on without it.
    if (p.ledger === true && sample !== AGGREGATE_SAMPLE)
      await store.putBytes(
        `${ledgerPrefix(run)}/${sample}/_failed.json`,
        JSON.stringify({ step: plan.name, cause: reason }),
      );
    return {
      Error: ERROR.stepFailed,
      Cause: `step ${plan.name} failed ${where}: ${reason}${log ? `; log: ${log}` : ''}${published ? `; partial outputs: ${store.url}/${prefix}` : ''}`,
    };
  };

  /**
   * Outputs of steps a sliced run leaves out, from the store. Outputs the steps it runs use
   * must be there; others are loaded when present and empty otherwise.
   */
  async function preload(
    run: RunSettings,
    steps: StepPlan[],
    needed: Set<string>,
    sample: string | null,
    missing: string[],
  ): Promise<Record<string, string>> {
    const store = options.store(run.store);
    const out: Record<string, string> = {};
    for (const step of steps) {
      for (const plan of step.jobs) {
        const names = Object.keys(plan.outputs);
        if (names.length === 0) continue;
        for (const n of names) out[n] = '';
        const prefix = stepPrefix(run.pipeline, sample, plan.name);
        const manifest = await readManifest(store, prefix);
        if (manifest?.status === 'SUCCEEDED') {
          Object.assign(out, outputLocations(manifest));
        } else if (names.some((n) => needed.has(n))) {
          const files = names
            .filter((n) => needed.has(n))
            .map((n) => plan.outputs[n])
            .join(', ');
          missing.push(
            `step ${plan.name}${sample ? ` of sample ${sample}` : ''}: ${files} not in ${store.url}/${prefix}; to make it: strand run ${run.file ?? 'pipeline.yaml'} --to ${step.name}${sample ? ` --samples ${sample}` : ''}`,
          );
        }
      }
    }
    return out;
  }

  /** Variables the steps use. */
  function neededBy(steps: StepPlan[]): Set<string> {
    return new Set(steps.flatMap((s) => s.jobs.flatMap((j) => j.uses ?? [])));
  }

  const preflight: LambdaFunction = async (payload) => {
    const p = payload as JsonObject;
    const run = { ...asRun(p.run) };
    const steps = p.steps as unknown as StepPlan[];
    const samples = p.samples as unknown as { id: string; values: Record<string, string> }[];
    const params = vars(p.params);
    run.aggregates = steps.some((s) => s.scope === 'all' && !skipped(run, s.name));
    const load = loadedForSlice(run, steps, 'sample');
    const needed = neededBy(running(run, steps));
    const missing: string[] = [];
    const items = [];
    for (const s of samples) {
      const loaded = load.length > 0 ? await preload(run, load, needed, s.id, missing) : {};
      items.push({ ...params, ...s.values, SAMPLE: s.id, ...loaded });
    }
    if (missing.length > 0) throw missingInputs(run, missing);
    return { run: run as unknown as Json, items, params };
  };

  /**
   * Notes for steps over all samples whose published outputs cover more samples than this run
   * gives them: republishing replaces them with fewer, which the run's output says.
   */
  async function fewerSamples(
    run: RunSettings,
    aggregate: StepPlan[],
    collected: string[],
  ): Promise<string[]> {
    const store = options.store(run.store);
    const notes: string[] = [];
    for (const [step, job] of aggregate.flatMap((s) => s.jobs.map((j) => [s, j] as const))) {
      const before = await readManifest(store, stepPrefix(run.pipeline, null, job.name)).catch(
        () => undefined,
      );
      // Beside the samples, each aggregate step keeps the samples it was given (its manifest
      // has those of the last one to collect: see gather).
      const own = before && stepSamplesKey(run.pipeline, before.execution, step.name);
      const kept =
        own && (await store.exists(own))
          ? (JSON.parse((await store.get(own)).toString('utf8')) as string[])
          : before?.samples;
      const had = before?.status === 'SUCCEEDED' ? kept : undefined;
      if (!had || collected.length >= had.length) continue;
      const gone = had.filter((id) => !collected.includes(id));
      notes.push(
        `${job.name} (all samples) is published again from ${collected.length} sample(s); the outputs it replaces (execution ${before!.execution}) covered ${had.length}` +
          (gone.length > 0
            ? `, including ${gone.slice(0, 10).join(', ')}${gone.length > 10 ? ', …' : ''}`
            : ''),
      );
    }
    return notes;
  }

  /**
   * What aggregate steps `aggregate` are given from the samples `good` (each sample's
   * variables): a list per output of `outputs` (one location a line, at `listKey(name)`), the
   * digests of what they read, and the published outputs of the aggregate steps the run leaves
   * out that they need; and the notes of those republished from fewer samples than before.
   */
  async function gather(
    run: RunSettings,
    steps: StepPlan[],
    aggregate: StepPlan[],
    good: Record<string, string>[],
    outputs: string[],
    listKey: (name: string) => string,
    load: StepPlan[],
    own = false,
  ): Promise<{ vars: Record<string, string>; notes: string[] }> {
    const out: Record<string, string> = {};
    const store = options.store(run.store);
    const collected = good.map((v) => v.SAMPLE).filter((id) => id !== undefined);
    const perSample = steps.some((s) => s.scope === 'sample');
    const notes = perSample ? await fewerSamples(run, aggregate, collected) : undefined;
    // The lists of what each aggregate step gets, written under their prefix's lock (a
    // collect that ran again after a crash sweeps what the first one left half-written).
    const inputs = `${run.pipeline}/_all/_inputs/${run.execution}`;
    const lock = await store.lock(inputs);
    try {
      await store.sweep(inputs);
      // The samples the aggregate steps are given: their stage-out records them in the
      // manifest (see fewerSamples).
      if (perSample)
        await store.putBytes(samplesKey(run.pipeline, run.execution), JSON.stringify(collected));
      // One step's own, for a step beside the samples: another may collect other samples, and
      // replace the list above, while it runs.
      if (own)
        for (const step of aggregate)
          await store.putBytes(
            stepSamplesKey(run.pipeline, run.execution, step.name),
            JSON.stringify(collected),
          );
      for (const name of outputs) {
        const key = `${inputs}/${listKey(name)}`;
        const lines = good.filter((v) => v[name] !== undefined).map((v) => `${v[name]}\n`);
        await lock.check();
        await store.putBytes(key, lines.join(''));
        out[name] = store.localPath(key) ?? `${store.url}/${key}`;
      }
    } finally {
      await lock.release().catch(() => undefined);
    }
    Object.assign(out, await collectedDigests(store, run.pipeline, steps, aggregate, collected));
    if (load.length > 0) {
      const missing: string[] = [];
      Object.assign(out, await preload(run, load, neededBy(aggregate), null, missing));
      if (missing.length > 0) throw missingInputs(run, missing);
    }
    return { vars: out, notes: notes ?? [] };
  }

  /** Aggregate steps `aggregate` do not run: no sample succeeded (their rows say SKIPPED). */
  async function skipAggregates(run: RunSettings, aggregate: StepPlan[]): Promise<string> {
    const names = aggregate.flatMap((s) => s.jobs.map((j) => j.name));
    for (const name of names)
      await options.results.upsertStep({
        execution: run.execution,
        pipeline: run.pipeline,
        sample: AGGREGATE_SAMPLE,
        step: name,
        status: 'SKIPPED',
        error: null,
        cause: 'no sample succeeded',
      });
    return `skipped ${names.join(', ')} (all samples): no sample succeeded; what they published before is left as it was`;
  }

  /**
   * After the Map over samples: how the samples went, and what the aggregate steps get; or,
   * when they ran beside the samples (`aggregated`: what they gave and said), only the former.
   */
  const collectAll = async (p: JsonObject): Promise<Json> => {
    const run = { ...asRun(p.run) };
    const items = (p.items ?? []) as Record<string, string>[];
    const mapped = (p.mapped ?? null) as (JsonObject | null)[] | null;
    const steps = p.steps as unknown as StepPlan[];
    const params = vars(p.params);
    const aggregated = (p.aggregated ?? undefined) as { vars?: Json } | undefined;
    const failures: string[] = [];
    const good: Record<string, string>[] = [];
    items.forEach((item, i) => {
      const m = mapped?.[i];
      if (m && typeof m.Error === 'string') {
        let cause = String(m.Cause ?? m.Error);
        cause = cause.replace(/^step /, '');
        failures.push(`${item.SAMPLE}: ${cause}`);
      } else good.push(m ? vars(m.vars) : item);
    });
    run.failed = failures.length;
    run.failureMessage =
      failures.length === 0
        ? ''
        : `${failures.length} of ${items.length} samples failed:\n  ${failures.join('\n  ')}`;
    const out: Record<string, string> = { ...params, ...vars(aggregated?.vars) };
    const aggregate = aggregated ? [] : steps.filter((s) => s.scope === 'all');
    const perSample = steps.some((s) => s.scope === 'sample');
    const earlier = aggregated ? await ledgerNotes(run, steps) : [];
    if (earlier.length > 0) run.notes = [...earlier];
    if (running(run, aggregate).length === 0) run.aggregates = false;
    if (run.aggregates !== false && aggregate.length > 0 && perSample && good.length === 0) {
      // Nothing to aggregate: the steps over all samples do not run, and what they published
      // before stays as it was (an empty run would replace it under a SUCCEEDED manifest).
      run.aggregates = false;
      run.notes = [...earlier, await skipAggregates(run, running(run, aggregate))];
    } else if (run.aggregates !== false && aggregate.length > 0) {
      const outputs = steps
        .filter((s) => s.scope === 'sample')
        .flatMap((s) => s.jobs.flatMap((j) => Object.keys(j.outputs)));
      const gathered = await gather(
        run,
        steps,
        running(run, aggregate),
        good,
        outputs,
        (name) => `${name}.txt`,
        loadedForSlice(run, steps, 'all'),
      );
      if (perSample) {
        run.collected = good.map((v) => v.SAMPLE).filter((id) => id !== undefined);
        run.notes = [...earlier, ...gathered.notes];
      }
      Object.assign(out, gathered.vars);
    }
    return { run: run as unknown as Json, vars: out };
  };

  /** What the aggregate steps beside the samples left to say, in the order of the steps. */
  async function ledgerNotes(run: RunSettings, steps: StepPlan[]): Promise<string[]> {
    const store = options.store(run.store);
    const prefix = `${ledgerPrefix(run)}/_notes`;
    const keys = new Set((await store.list(prefix)).map((o) => o.key));
    const notes: string[] = [];
    for (const step of steps) {
      const key = `${prefix}/${step.name}.json`;
      if (keys.has(key))
        notes.push(...(JSON.parse((await store.get(key)).toString('utf8')) as string[]));
    }
    return notes;
  }

  /**
   * Starts the run's sample ledger afresh, with the Map's items (a redrive from the samples
   * starts it again: what the samples did before counts no more).
   */
  const startLedger = async (p: JsonObject): Promise<Json> => {
    const run = asRun(p.run);
    const store = options.store(run.store);
    const ledger = ledgerPrefix(run);
    for (let attempt = 1; ; attempt++) {
      try {
        await store.delete(ledger);
        break;
      } catch (e) {
        // A job of the run this one redrives may still be publishing into it: once more.
        if (attempt >= 5) throw e;
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
    await store.putBytes(`${ledger}/_items.json`, JSON.stringify(p.items ?? []));
    return {};
  };

  /** The Map over samples has ended: each sample's final variables, or null where it failed. */
  const endLedger = async (p: JsonObject): Promise<Json> => {
    const run = asRun(p.run);
    const mapped = (p.mapped ?? []) as (JsonObject | null)[];
    const ended = mapped.map((m) => (m && typeof m.Error !== 'string' ? vars(m.vars) : null));
    await options
      .store(run.store)
      .putBytes(`${ledgerPrefix(run)}/_ended.json`, JSON.stringify(ended));
    return {};
  };

  /**
   * Each sample's variables for an aggregate step waiting for `jobs` (the per-sample jobs it
   * reads that the run runs), or null for a sample that did not get through them; while a
   * sample is still on its way, how many entries the ledger has (how far the samples are). A sample has got through when each job has published
   * (the ledger names it); it has not when it failed on the way, or when the Map ended without it.
   */
  async function readLedger(
    store: ObjectStore,
    ledger: string,
    items: Record<string, string>[],
    jobs: JobPlan[],
  ): Promise<(Record<string, string> | null)[] | { entries: number }> {
    const keys = new Set((await store.list(ledger)).map((o) => o.key));
    const ended = keys.has(`${ledger}/_ended.json`)
      ? (JSON.parse((await store.get(`${ledger}/_ended.json`)).toString('utf8')) as (Record<
          string,
          string
        > | null)[])
      : undefined;
    const through = (sample: string) =>
      jobs.every((j) => keys.has(`${ledger}/${sample}/${j.name}.json`));
    const decided: ('through' | 'failed' | Record<string, string>)[] = [];
    let pending = false;
    for (const [i, item] of items.entries()) {
      const sample = item.SAMPLE;
      if (through(sample)) decided.push('through');
      else if (keys.has(`${ledger}/${sample}/_failed.json`)) decided.push('failed');
      else if (ended) decided.push(ended[i] ?? 'failed');
      else pending = true;
    }
    if (pending) return { entries: keys.size };
    return Promise.all(
      decided.map(async (d, i) => {
        if (d === 'failed') return null;
        if (d !== 'through') return d;
        const v = { ...items[i] };
        for (const job of jobs) {
          if (Object.keys(job.outputs).length === 0) continue;
          const key = `${ledger}/${items[i].SAMPLE}/${job.name}.json`;
          Object.assign(v, JSON.parse((await store.get(key)).toString('utf8')) as object);
        }
        return v;
      }),
    );
  }

  /**
   * An aggregate step beside the samples: whether every sample has got through the per-sample
   * steps it reads, or failed on the way. Answers, with the state it was given (`{ run, vars }`,
   * and its own last answer when it waited), `wait`: 'pending' (wait `seconds`, then ask
   * again), 'none' (no sample got through: the step is skipped) or 'ready' (the vars now hold
   * what the step gets from the samples that got through). Beside Strand's engine it looks once
   * and the engine's Wait state does the waiting (a durable timer, which a stopped run drops);
   * as a Lambda it keeps looking for up to LAMBDA_LOOK_SECONDS.
   */
  const awaitSamples = async (p: JsonObject): Promise<Json> => {
    const state = (p.state ?? {}) as JsonObject;
    const run = asRun(state.run);
    const steps = p.steps as unknown as StepPlan[];
    const step = steps.find((s) => s.name === p.step);
    if (!step) throw new Error(`strand-collect: no aggregate step ${JSON.stringify(p.step)}`);
    const store = options.store(run.store);
    const ledger = ledgerPrefix(run);
    const items = JSON.parse((await store.get(`${ledger}/_items.json`)).toString('utf8')) as Record<
      string,
      string
    >[];
    const awaited = samplesAwaited(steps, step.name);
    const jobs = running(run, awaited).flatMap((s) => s.jobs);
    // No local Batch beside it: it runs as a Lambda.
    const lambda = options.batch() === undefined;
    const until = Date.now() + (lambda ? LAMBDA_LOOK_SECONDS * 1000 : 0);
    let samples = await readLedger(store, ledger, items, jobs);
    while (!Array.isArray(samples) && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      samples = await readLedger(store, ledger, items, jobs);
    }
    if (!Array.isArray(samples)) {
      // Beside the engine: soon again while the samples move on, less often the longer the
      // ledger stays as it is (a tenth of that time, up to MAX_WAIT_SECONDS), so that a long
      // job is not looked after every second and the step still starts soon after the last of
      // them ends. As a Lambda it has just waited: again at once.
      const now = Date.now();
      const moved = samples.entries !== state.entries || typeof state.since !== 'number';
      const since = moved ? now : (state.since as number);
      const quiet = Math.floor((now - since) / 10_000);
      return {
        run: state.run ?? null,
        vars: state.vars ?? {},
        wait: 'pending',
        seconds: lambda ? 0 : Math.min(MAX_WAIT_SECONDS, Math.max(1, quiet)),
        entries: samples.entries,
        since,
      };
    }
    const good = samples.filter((v): v is Record<string, string> => v !== null);
    // What the run should tell of the step: said at the end, by Collect (a Parallel state of
    // aggregate steps keeps one branch's `run` only).
    const tell = async (notes: string[]) => {
      if (notes.length > 0)
        await store.putBytes(`${ledger}/_notes/${step.name}.json`, JSON.stringify(notes));
    };
    if (good.length === 0) {
      await tell([await skipAggregates(run, [step])]);
      return { run: state.run ?? null, vars: state.vars ?? {}, wait: 'none' };
    }
    const needed = ancestors(steps, step.name);
    const gathered = await gather(
      run,
      steps,
      [step],
      good,
      awaited.flatMap((s) => s.jobs.flatMap((j) => Object.keys(j.outputs))),
      (name) => `${step.name}.${name}.txt`,
      steps.filter((s) => s.scope === 'all' && skipped(run, s.name) && needed.has(s.name)),
      true,
    );
    await tell(gathered.notes);
    return {
      run: state.run ?? null,
      vars: { ...vars(state.vars), ...gathered.vars },
      wait: 'ready',
    };
  };

  const collect: LambdaFunction = async (payload) => {
    const p = payload as JsonObject;
    switch (p.mode) {
      case 'start':
        return startLedger(p);
      case 'ended':
        return endLedger(p);
      case 'wait':
        return awaitSamples(p);
      default:
        return collectAll(p);
    }
  };

  return {
    [FUNCTIONS.preflight]: preflight,
    [FUNCTIONS.publish]: publish,
    [FUNCTIONS.syncFailure]: syncFailure,
    [FUNCTIONS.collect]: collect,
  };
}

/**
 * How a pipeline step ran before, for the sizes of its jobs that have a range of vCPUs: its
 * last 50 successful runs that recorded their vCPUs, from the results database.
 */
export function pipelineHistory(results: ResultsSink): JobHistory {
  return {
    key: (job) => {
      const pipeline = job.tags?.[TAG.pipeline];
      const step = job.tags?.[TAG.step];
      return pipeline && step ? JSON.stringify([pipeline, step]) : undefined;
    },
    load: async (key) => {
      const [pipeline, step] = JSON.parse(key) as [string, string];
      const rows = await results.stepHistory(pipeline, step, 50);
      return rows.flatMap((r) => {
        const seconds = (Date.parse(r.stoppedAt ?? '') - Date.parse(r.startedAt ?? '')) / 1000;
        if (!(seconds > 0) || r.vcpus === undefined) return [];
        return [
          {
            ...(r.jobId === undefined ? {} : { id: r.jobId }),
            vcpus: r.vcpus,
            seconds,
            ...(r.cpuSeconds === undefined ? {} : { cpuSeconds: r.cpuSeconds }),
          },
        ];
      });
    },
  };
}

/**
 * A digest of what the lists given to a step over all samples point to: for each sample and
 * each job with outputs of the per-sample steps it reads, the sha256 of every file its manifest
 * lists. The lists hold locations, which stay the same when a sample's output changes; with this
 * digest in the aggregate job's environment, its fingerprint changes with the files themselves.
 * One per aggregate step of `aggregate` that reads per-sample steps, under its variable
 * (inputsDigestVar); each manifest is read once however many of them read its step.
 */
export async function collectedDigests<
  S extends {
    name: string;
    scope: string;
    needs: readonly string[];
    jobs: { name: string; outputs: Record<string, string> }[];
  },
>(
  store: ObjectStore,
  pipeline: string,
  steps: readonly S[],
  aggregate: readonly S[],
  samples: string[],
): Promise<Record<string, string>> {
  const manifests = new Map<string, Promise<OutputManifest | undefined>>();
  const manifest = (prefix: string) => {
    let m = manifests.get(prefix);
    if (!m) manifests.set(prefix, (m = readManifest(store, prefix).catch(() => undefined)));
    return m;
  };
  const out: Record<string, string> = {};
  for (const step of aggregate) {
    const jobs = perSampleNeeds(steps, step).flatMap((s) => s.jobs);
    if (jobs.length === 0) continue;
    const h = createHash('sha256');
    for (const sample of samples)
      for (const job of jobs) {
        if (Object.keys(job.outputs).length === 0) continue;
        const m = await manifest(stepPrefix(pipeline, sample, job.name));
        const files =
          m?.status === 'SUCCEEDED'
            ? Object.entries(m.outputs).map(([n, o]) => [n, o.files.map((f) => [f.path, f.sha256])])
            : null;
        h.update(`${JSON.stringify([sample, job.name, files])}\n`);
      }
    out[inputsDigestVar(step.name)] = h.digest('hex');
  }
  return out;
}

/**
 * The job cache: a SUCCEEDED manifest with the same fingerprint answers the submission, when
 * the store still holds every file it lists with its recorded size (and sha256, with the
 * 'deep' cache setting); otherwise the job runs again.
 */
export function pipelineJobCache(options: PipelineFunctionsOptions) {
  return async (request: SubmitJobRequest): Promise<JsonObject | undefined> => {
    const tags = request.tags ?? {};
    const mode = tags[TAG.cache];
    if ((mode !== 'true' && mode !== 'deep') || !tags[TAG.pipeline] || !tags[TAG.store])
      return undefined;
    const batch = options.batch();
    if (!batch) return undefined;
    const sample = tags[TAG.sample];
    const prefix = stepPrefix(tags[TAG.pipeline], layoutSample(sample), tags[TAG.step]);
    const store = options.store(tags[TAG.store]);
    const manifest = await readManifest(store, prefix).catch(() => undefined);
    if (manifest?.status !== 'SUCCEEDED' || !manifest.fingerprint) return undefined;
    // `--deep-cache` reads every input again; otherwise an unchanged file's digest is reused.
    const fingerprint = await jobFingerprint(batch.resolveContainer(request), {
      memo: options.digests,
      fresh: mode === 'deep',
    });
    if (fingerprint !== manifest.fingerprint) return undefined;
    // A file changed or went since it was published: the outputs are not what the manifest says.
    const problems = await verifyManifest(store, prefix, manifest, { deep: mode === 'deep' }).catch(
      (e: unknown) => [String(e)],
    );
    if (problems.length > 0) return undefined;
    return {
      JobId: manifest.jobId,
      JobName: request.jobName,
      Status: 'SUCCEEDED',
      StatusReason: `CACHED: same fingerprint as execution ${manifest.execution}`,
      Tags: { ...tags, [TAG.cached]: 'true' },
    };
  };
}
