/**
 * The pipeline commands: run, compile, schema, results. They load and compile pipeline.yaml
 * (src/pipeline), then hand the state machine to the engine; no business logic lives here.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { HistoryEvent } from '../asl/execution.js';
import type { JsonObject } from '../asl/types.js';
import { formatRows, type RowsFormat } from '../results/format.js';
import { compilePipeline, type CompiledPipeline } from '../pipeline/compile.js';
import { AGGREGATE_SAMPLE, ERROR, FUNCTIONS, STATE, TAG, stepKey } from '../pipeline/contract.js';
import { selectSteps } from '../pipeline/dag.js';
import { PipelineError, formatPipelineProblem } from '../pipeline/errors.js';
import { loadPipeline, type LoadedPipeline, type LoadOptions } from '../pipeline/load.js';
import { pipelineJsonSchema } from '../pipeline/schema.js';
import { pipelineGraph, type GraphFormat } from '../pipeline/graph.js';
import { scaffoldPipeline } from '../pipeline/scaffold.js';
import { openStore } from '../storage/store.js';
import { StorageError } from '../storage/errors.js';
import type { JobDetail } from '../batch/types.js';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { EXIT_FAILED, EXIT_OK, InputError } from './errors.js';
import {
  openEngine,
  openResultsReader,
  openSchedulerIfFree,
  refusedHome,
  resultsOf,
  strandHome,
} from './home.js';
import {
  chooseStore,
  ConfigError,
  configPath,
  configuredResults,
  readConfig,
} from '../app/config.js';
import {
  executorCapacity,
  openStrandWhenFree,
  readAttemptLog,
  rememberedDigests,
} from '../app/index.js';
import { parseLogRef } from '../executors/aws-batch/aws-batch-executor.js';
import { maskUrlPassword } from '../results/postgres.js';
import { registerIfChanged } from '../batch/register.js';
import { thisMachine } from '../batch/local-batch.js';
import { askOwner, ownedByLiveEngine, RequestFailedError } from '../engine/control.js';
import { Engine, EngineInputError, type ExecutionDescription } from '../engine/engine.js';
import cliTruncate from 'cli-truncate';
import { checkRunExecutor, runExecutor } from './executor.js';
import { knownName } from './names.js';
import type { Io } from './io.js';
import { errorPrefix, painter, status, statusColumns } from './color.js';
import { formatTable } from './table.js';
import { dryRun, type PlannedJob } from '../functions/dry-run.js';

interface RunOptions {
  samples?: string;
  from?: string;
  to?: string;
  only?: string;
  param: string[];
  dryRun?: boolean;
  json?: boolean;
  cache: boolean;
  deepCache?: boolean;
  store?: string;
  name?: string;
  home?: string;
  queue?: string;
  executor?: string;
  profile?: string;
  results?: string;
  skipMissing?: boolean;
}

/** Loads a pipeline; its problems become one InputError (exit 2) listing each with its place. */
export function loadOrExplain(
  file: string,
  options: {
    samples?: string;
    params?: Record<string, string>;
    /** The store URL outputs go to (path limits are checked against it); default `<home>/store`. */
    store?: string;
    /** About to run here: secrets must be readable on this machine now. */
    runLocally?: boolean;
    /** Leave out samples whose input files are not there (see LoadOptions). */
    skipMissing?: boolean;
    /** Where the jobs will run: ranges must fit it (see LoadOptions). */
    capacity?: LoadOptions['capacity'];
  } = {},
): LoadedPipeline {
  const store = options.store ?? join(strandHome(), 'store');
  // Only a local store's path counts against Linux's limits.
  const local = store.startsWith('file:')
    ? fileURLToPath(store)
    : store.includes('://')
      ? ''
      : store;
  try {
    return loadPipeline(file, { ...options, store: local });
  } catch (err) {
    if (err instanceof PipelineError) {
      const n = err.problems.length;
      throw new InputError(
        `${file}: ${n} problem${n === 1 ? '' : 's'}; nothing was run`,
        err.problems.map(formatPipelineProblem),
        { cause: err },
      );
    }
    throw err;
  }
}

export function parseParams(values: string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new InputError(`--param ${JSON.stringify(v)}: write NAME=value`);
    params[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return params;
}

/**
 * `--from/--to/--only` checked against the steps (did-you-mean): the steps the run runs (`--from
 * X`: X and what depends on it; `--to X`: X and what it needs), and `$.run.skip` for the others.
 */
function slice(
  loaded: LoadedPipeline,
  opts: RunOptions,
): { from: string; to: string; steps: string[]; skip: Record<string, boolean> } {
  const all = loaded.spec.steps;
  const names = all.map((s) => s.name);
  const check = (flag: string, name: string | undefined): string =>
    name === undefined ? '' : knownName(flag, name, names, 'step');
  if (opts.only && (opts.from || opts.to))
    throw new InputError('--only runs one step; it cannot be combined with --from or --to');
  const from = check(opts.only ? '--only' : '--from', opts.only ?? opts.from);
  const to = check(opts.only ? '--only' : '--to', opts.only ?? opts.to);
  const steps = selectSteps(all, from, to);
  if (steps.length === 0)
    throw new InputError(
      `--to ${to} does not depend on --from ${from}: no step runs after ${from} and before ${to}`,
    );
  const skip = Object.fromEntries(
    names.filter((n) => !steps.includes(n)).map((n) => [stepKey(n), true]),
  );
  if (steps.length === names.length) return { from: '', to: '', steps, skip };
  return { from, to, steps, skip };
}

/**
 * What the default compute environment of this machine has (the local Batch's), against which
 * a range of resources must fit at its low end.
 */
function machineCapacity(): { vcpus: number; memoryMiB: number; where: string } {
  return { ...thisMachine(), where: 'this machine' };
}

/** The slice flags as given, for the run's headline: `--from assemble --to stats`. */
function sliceFlags(opts: RunOptions): string {
  if (opts.only) return `--only ${opts.only}`;
  return [opts.from ? `--from ${opts.from}` : '', opts.to ? `--to ${opts.to}` : '']
    .filter(Boolean)
    .join(' ');
}

/**
 * Follows a run: its history (jobs submitted, published, cached, failed) and its Batch jobs
 * (when each one actually starts). Piped: one line per job started, finished, cached or failed.
 * On a terminal: a table of steps × (done, running, waiting, failed) redrawn in place, with
 * elapsed time and an estimate of what is left.
 */
function progress(
  io: Io,
  json: boolean,
  started: number,
  plan: { execution: string; jobs: { name: string; total: number }[] },
) {
  type Count = {
    total: number;
    samples: Set<string>;
    done: number;
    cached: number;
    failed: number;
  };
  const counts = new Map<string, Count>(
    plan.jobs.map((j) => [
      j.name,
      { total: j.total, samples: new Set(), done: 0, cached: 0, failed: 0 },
    ]),
  );
  /** A step's jobs: as planned, or more once more samples turned up (a redrive's plan is a guess). */
  const total = (c: Count): number => Math.max(c.total, c.samples.size);
  /** Where each step × sample's current job is, by step then sample. */
  const current = new Map<string, Map<string, 'waiting' | 'running'>>();
  const place = (step: string, sample: string, where?: 'waiting' | 'running'): void => {
    let m = current.get(step);
    if (!m) current.set(step, (m = new Map()));
    if (where) m.set(sample, where);
    else m.delete(sample);
  };
  const howMany = (step: string, where: 'waiting' | 'running'): number =>
    [...(current.get(step)?.values() ?? [])].filter((w) => w === where).length;
  /** Jobs seen started, and how many attempts each step × sample has started. */
  const seen = new Set<string>();
  const attempts = new Map<string, number>();
  /** Without the Batch's status changes (another process runs the jobs), submitted = started. */
  let startsKnown = true;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const live = io.isTTY && !json;
  const draw = (): void => {
    const elapsed = (Date.now() - started) / 1000;
    let finished = 0;
    let totalJobs = 0;
    const lines: string[] = [];
    for (const [name, c] of counts) {
      finished += c.done + c.failed;
      totalJobs += total(c);
      const width = 20;
      const filled = total(c) ? Math.round(((c.done + c.failed) / total(c)) * width) : 0;
      const running = howMany(name, 'running');
      const waiting = howMany(name, 'waiting');
      lines.push(
        `  ${name.padEnd(20)} ${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${String(c.done).padStart(4)}/${total(c)} done` +
          `${c.cached ? ` (${c.cached} cached)` : ''}${running ? `, ${running} running` : ''}` +
          `${waiting ? `, ${waiting} waiting` : ''}${c.failed ? `, ${painter(io.color?.err)('red', `${c.failed} failed`)}` : ''}`,
      );
    }
    const eta =
      finished > 0 && finished < totalJobs
        ? `, about ${Math.ceil((elapsed / finished) * (totalJobs - finished))}s left`
        : '';
    lines.unshift(`  ${finished}/${totalJobs} jobs, ${elapsed.toFixed(0)}s elapsed${eta}`);
    if (io.live) io.live.render(fitToTerminal(lines, io.live.columns(), io.live.rows()).join('\n'));
    else io.err(`${lines.join('\n')}\n`);
  };
  type Kind = 'queued' | 'started' | 'done' | 'cached' | 'failed';
  const report = (kind: Kind, step: string, sample: string): void => {
    let c = counts.get(step);
    if (!c) counts.set(step, (c = { total: 0, samples: new Set(), done: 0, cached: 0, failed: 0 }));
    c.samples.add(sample);
    let attempt: number | undefined;
    if (kind === 'queued') place(step, sample, 'waiting');
    else if (kind === 'started') {
      place(step, sample, 'running');
      attempt = (attempts.get(`${step}\0${sample}`) ?? 0) + 1;
      attempts.set(`${step}\0${sample}`, attempt);
    } else {
      place(step, sample);
      if (kind === 'failed') c.failed++;
      else c.done++;
      if (kind === 'cached') c.cached++;
    }
    const t = (Date.now() - started) / 1000;
    if (json) {
      io.out(
        JSON.stringify({
          event: `step.${kind}`,
          sample,
          step,
          ...(attempt ? { attempt } : {}),
          elapsed_s: +t.toFixed(2),
        }) + '\n',
      );
    } else if (!live && kind !== 'queued') {
      io.err(
        `${t.toFixed(1).padStart(7)}s  ${kind.padEnd(7)} ${step.padEnd(18)} ${sample === AGGREGATE_SAMPLE ? '(all samples)' : sample}` +
          `${attempt && attempt > 1 ? ` (attempt ${attempt})` : ''}\n`,
      );
    }
  };
  /** What the run wants the user to know; on a live table, printed below it at the end. */
  const pending: string[] = [];
  const note = (message: string): void => {
    if (json) io.out(JSON.stringify({ event: 'run.note', message }) + '\n');
    else if (live) pending.push(message);
    else io.err(`note: ${message}\n`);
  };
  return {
    start(): void {
      if (live) timer = setInterval(draw, 250);
    },
    stop(): void {
      if (stopped) return;
      stopped = true;
      if (timer) clearInterval(timer);
      if (live) {
        draw();
        io.live?.done();
      }
      for (const message of pending.splice(0)) io.err(`note: ${message}\n`);
    },
    /** The jobs run in another process: their starts are not seen here. */
    startsUnknown(): void {
      startsKnown = false;
    },
    /** A Batch job changed status: the jobs of this run that start running are reported. */
    onJob(job: JobDetail): void {
      const tags = job.tags ?? {};
      if (tags[TAG.execution] !== plan.execution) return;
      const step = tags[TAG.step];
      const sample = tags[TAG.sample];
      const ended = job.status === 'SUCCEEDED' || job.status === 'FAILED';
      // A short job may end before it is seen running: its attempt says it started.
      const ran =
        job.status === 'RUNNING' || (ended && job.attempts.some((a) => a.startedAt !== undefined));
      if (ran && !seen.has(job.jobId)) {
        seen.add(job.jobId);
        report('started', step, sample);
      }
      // Its outcome is reported once published (or synced as a failure); a failed attempt that
      // is retried is followed by a new job.
      if (ended && current.get(step)?.get(sample) === 'running') place(step, sample);
    },
    onEvent(e: HistoryEvent): void {
      if (e.type === 'TaskStateExited') {
        const d = e.stateExitedEventDetails as { name?: string; output?: unknown } | undefined;
        if (d?.name !== STATE.collect) return;
        const output = (typeof d.output === 'string' ? JSON.parse(d.output) : d.output) as
          { run?: { notes?: unknown } } | undefined;
        const notes = output?.run?.notes;
        for (const message of Array.isArray(notes) ? notes : []) note(String(message));
        return;
      }
      if (e.type !== 'TaskScheduled') return;
      const d = e.taskScheduledEventDetails as { resource: string; parameters: JsonObject };
      const p = d.parameters ?? {};
      if (d.resource.includes(':batch:')) {
        const tags = (p.Tags ?? {}) as Record<string, string>;
        if (tags[TAG.execution] === plan.execution)
          report(startsKnown ? 'queued' : 'started', tags[TAG.step], tags[TAG.sample]);
        return;
      }
      const payload = (p.Payload ?? {}) as JsonObject;
      const fn = String(p.FunctionName ?? '');
      const step = String((payload.plan as JsonObject | undefined)?.name ?? '');
      const sample = String(payload.sample ?? '');
      if (fn === FUNCTIONS.publish) {
        const job = payload.job as { Tags?: Record<string, string> } | undefined;
        report(job?.Tags?.[TAG.cached] === 'true' ? 'cached' : 'done', step, sample);
      } else if (fn === FUNCTIONS.syncFailure) {
        report('failed', step, sample);
      }
    },
  };
}

/** Where the engine's history events go once a run is being followed. */
export interface EventHook {
  onEvent?: (executionArn: string, event: HistoryEvent) => void;
}

/** A run being followed: its name, where its outputs go, and its jobs per step. */
export interface FollowedRun {
  execution: string;
  pipeline: string;
  store: string;
  json: boolean;
  jobs: { name: string; total: number }[];
  /** How `strand results` finds the run's results when not by default (`--results …`). */
  resultsFlag?: string;
}

type Watch = ReturnType<typeof progress>;

/** Prints how a run ended (its outcome, what failed, where outputs and results are). */
function printOutcome(
  io: Io,
  run: FollowedRun,
  d: ExecutionDescription,
  started: number,
  interrupted: boolean,
): number {
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (run.json) {
    io.out(
      JSON.stringify({
        event: 'run.end',
        execution: run.execution,
        status: d.status,
        error: d.error,
        cause: d.cause,
        elapsed_s: +seconds,
      }) + '\n',
    );
  } else {
    const paint = painter(io.color?.err);
    io.err(`${run.execution}: ${status(paint, d.status)} in ${seconds}s\n`);
    if (d.status !== 'SUCCEEDED') {
      io.err(
        `${errorPrefix(paint)} ${d.error ?? ''}\n${d.cause ? `${readableCause(d.cause)}\n` : ''}`,
      );
      if (interrupted || /^Strand\.(SamplesFailed|StepFailed)$/.test(d.error ?? ''))
        io.err(`to carry on: strand redrive ${run.execution}\n`);
    }
    io.err(
      `outputs: ${run.store}/${run.pipeline}/\nresults: strand results${run.resultsFlag ? ` ${run.resultsFlag}` : ''} --pipeline ${run.pipeline}\n`,
    );
  }
  return d.status === 'SUCCEEDED' ? EXIT_OK : EXIT_FAILED;
}

/**
 * Ctrl-C (SIGINT) or SIGTERM while following a run: the first stops the execution and waits for
 * its jobs to be terminated (SIGTERM, then SIGKILL after the grace period); a second one leaves
 * at once, the jobs' own wrappers finishing the termination (`strand resume` records it). The
 * command then exits as a program ended by that signal does: 130 or 143.
 */
function onInterrupt(io: Io, stop: () => Promise<unknown>) {
  const state = {
    interrupted: false,
    signal: undefined as NodeJS.Signals | undefined,
    stopped: Promise.resolve() as Promise<unknown>,
  };
  let leave: () => void = () => {};
  const left = new Promise<void>((resolve) => (leave = resolve));
  const handler = (signal: NodeJS.Signals): void => {
    if (state.interrupted) {
      io.err(
        'leaving now: the jobs are being terminated on their own; `strand resume` records them\n',
      );
      leave();
      return;
    }
    state.interrupted = true;
    state.signal = signal;
    io.err(
      `\nstopping${signal === 'SIGINT' ? '' : ` (${signal})`}: terminating running jobs (Ctrl-C again to leave at once)…\n`,
    );
    state.stopped = stop().catch((err: unknown) =>
      io.err(`strand: could not stop the run: ${(err as Error).message}\n`),
    );
  };
  for (const signal of STOP_SIGNALS) process.on(signal, handler);
  return {
    state,
    /** Resolves when the stop has finished (jobs ended), or at a second signal. */
    settled: () => Promise.race([state.stopped, left]),
    off: () => {
      for (const signal of STOP_SIGNALS) process.off(signal, handler);
    },
    /**
     * The exit code: 128 + the signal's number once interrupted, unless the run succeeded
     * all the same (the signal came as it ended), else `code`.
     */
    exit: (code: number): number =>
      state.signal === undefined || code === EXIT_OK ? code : state.signal === 'SIGINT' ? 130 : 143,
  };
}

/** The signals that stop a followed run. */
const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

/**
 * Starts (or carries on) a pipeline execution with `begin` on an engine this process owns, and
 * follows it to its end: progress, Ctrl-C to stop it (its running jobs are terminated), then the
 * outcome, what failed and where the outputs and results are. Returns the exit code.
 * `resume` takes over following from `followRemote` (its progress, and the last event it saw).
 */
export async function followPipeline(
  io: Io,
  engine: Engine,
  hook: EventHook,
  run: FollowedRun & { begin: () => Promise<void> },
  resume?: { watch: Watch; afterEventId: number; started: number },
): Promise<number> {
  const { execution: name, json } = run;
  const started = resume?.started ?? Date.now();
  const watch = resume?.watch ?? progress(io, json, started, { execution: name, jobs: run.jobs });
  let arn: string | undefined;
  let lastId = resume?.afterEventId ?? 0;
  const feed = (e: HistoryEvent): void => {
    if (e.id <= lastId) return;
    lastId = e.id;
    watch.onEvent(e);
  };
  hook.onEvent = (eventArn, e) => {
    // The engine may run other executions (another process's run, handed to it).
    arn ??= engine.describeExecution(name).executionArn;
    if (eventArn === arn) feed(e);
  };
  if (engine.batch) engine.batch.onJobStatus((job) => watch.onJob(job));
  else watch.startsUnknown();
  const interrupt = onInterrupt(io, () =>
    engine.stopExecution(name, ERROR.interrupted, 'stopped with Ctrl-C', {
      waitForJobs: true,
    }),
  );
  try {
    watch.start();
    await run.begin();
    arn ??= engine.describeExecution(name).executionArn;
    // Events another owner committed before this engine took over.
    if (resume) for (const e of engine.store.history(arn, lastId)) feed(e);
    const halted = new Promise<never>((_, reject) => engine.onHalt(reject));
    const d = await Promise.race([engine.waitForExecution(name), halted]);
    if (interrupt.state.interrupted) await interrupt.settled();
    else if (d.status === 'ABORTED') {
      // Stopped from elsewhere (`strand stop`): its jobs are being terminated; this process
      // owns them, so it stays until they have ended and are recorded so.
      await Promise.race([engine.waitForJobs(name), halted]);
    }
    watch.stop();
    return interrupt.exit(printOutcome(io, run, d, started, interrupt.state.interrupted));
  } finally {
    watch.stop();
    interrupt.off();
  }
}

/**
 * Follows a run that an engine of another process executes (it was handed to it): progress
 * read from the database, Ctrl-C sent to the owner as a stop request. If the owner goes away
 * while the run is unfinished, this process takes the home over and carries the run on.
 */
export async function followRemote(io: Io, home: string, run: FollowedRun): Promise<number> {
  const { execution: name } = run;
  const started = Date.now();
  const watch = progress(io, run.json, started, { execution: name, jobs: run.jobs });
  const reader = Engine.open({ home, readOnly: true });
  let readerOpen = true;
  const closeReader = (): void => {
    if (readerOpen) reader.close();
    readerOpen = false;
  };
  const arn = reader.describeExecution(name).executionArn;
  const since = Date.parse(reader.describeExecution(name).startDate);
  let lastId = 0;
  const jobState = new Map<string, string>();
  const interrupt = onInterrupt(io, async () => {
    const outcome = await askOwner(home, 'StopExecution', {
      name,
      error: ERROR.interrupted,
      cause: 'stopped with Ctrl-C',
    });
    // Nobody owns the home any more: the loop below takes it over, and stops there.
    if (!outcome.served) stopWhenOwned = true;
  });
  let stopWhenOwned = false;
  try {
    watch.start();
    for (;;) {
      for (const e of reader.store.history(arn, lastId, 5000)) {
        lastId = e.id;
        watch.onEvent(e);
      }
      for (const job of readJobsSince(reader, since)) {
        if (job.tags?.[TAG.execution] !== name) continue;
        const key = `${job.status}/${job.attempts.length}`;
        if (jobState.get(job.jobId) === key) continue;
        jobState.set(job.jobId, key);
        watch.onJob(job);
      }
      const d = reader.describeExecution(name);
      if (d.status !== 'RUNNING' && reader.store.history(arn, lastId, 1).length === 0) {
        if (interrupt.state.interrupted) await interrupt.settled();
        watch.stop();
        return interrupt.exit(printOutcome(io, run, d, started, interrupt.state.interrupted));
      }
      if (d.status === 'RUNNING' && !ownedByLiveEngine(reader.store)) {
        // The owner left the run unfinished: carry it on here.
        const hook: EventHook = {};
        const own = openSchedulerIfFree(home, (a, e) => hook.onEvent?.(a, e));
        if (own) {
          closeReader();
          interrupt.off();
          try {
            if (stopWhenOwned || interrupt.state.interrupted)
              void own.engine.stopExecution(name, ERROR.interrupted, 'stopped with Ctrl-C', {
                waitForJobs: true,
              });
            if (!run.json)
              io.err(`${name}: the engine that ran it has gone; carrying it on in this process\n`);
            return await followPipeline(
              io,
              own.engine,
              hook,
              { ...run, begin: async () => {} },
              { watch, afterEventId: lastId, started },
            );
          } finally {
            own.engine.close();
          }
        }
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    watch.stop();
    interrupt.off();
    closeReader();
  }
}

/** The Batch jobs created since `since` (epoch ms), as recorded. */
function readJobsSince(engine: Engine, since: number): JobDetail[] {
  return engine.listBatchJobs().filter((j) => j.createdAt >= since);
}

/**
 * What `strand redrive` needs to follow a pipeline execution as `strand run` does: its pipeline,
 * store and jobs (each step with the samples it was submitted for). Undefined for an execution
 * that is not a pipeline run.
 */
export function pipelineRunOf(
  engine: Engine,
  name: string,
): { pipeline: string; store: string; jobs: { name: string; total: number }[] } | undefined {
  let run: { pipeline?: unknown; store?: unknown } | undefined;
  try {
    run = (JSON.parse(engine.describeExecution(name).input) as { run?: typeof run }).run;
  } catch {
    return undefined;
  }
  if (typeof run?.pipeline !== 'string' || typeof run.store !== 'string') return undefined;
  const samples = new Map<string, Set<string>>();
  for (const e of engine.getExecutionHistory(name)) {
    if (e.type !== 'TaskScheduled') continue;
    const d = e.taskScheduledEventDetails as { resource: string; parameters?: JsonObject };
    const tags = (d.parameters?.Tags ?? {}) as Record<string, string>;
    if (!d.resource.includes(':batch:') || !tags[TAG.step]) continue;
    const set = samples.get(tags[TAG.step]) ?? new Set<string>();
    set.add(tags[TAG.sample]);
    samples.set(tags[TAG.step], set);
  }
  return {
    pipeline: run.pipeline,
    store: run.store,
    jobs: [...samples].map(([step, set]) => ({ name: step, total: set.size })),
  };
}

/** A function's error arrives as Lambda's `{ errorMessage, errorType }` JSON: show the message. */
function readableCause(cause: string): string {
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown };
    if (typeof parsed.errorMessage === 'string') return parsed.errorMessage;
  } catch {
    // plain text
  }
  return cause;
}

function writeCompiled(dir: string, compiled: CompiledPipeline, name: string): string[] {
  mkdirSync(join(dir, 'job-definitions'), { recursive: true });
  const files = [join(dir, `${name}.asl.json`)];
  writeFileSync(files[0], JSON.stringify(compiled.definition, null, 2) + '\n');
  for (const def of compiled.jobDefinitions) {
    const f = join(dir, 'job-definitions', `${def.jobDefinitionName}.json`);
    writeFileSync(f, JSON.stringify(def, null, 2) + '\n');
    files.push(f);
  }
  return files;
}

/** A job's log from byte `offset` on: its file, or an AWS Batch job's CloudWatch Logs. */
async function logFrom(home: string, log: string, offset: number): Promise<string> {
  if (!parseLogRef(log)) return readFrom(log, offset);
  const text = (await readAttemptLog(home, log)) ?? '';
  return Buffer.from(text).subarray(offset).toString('utf8');
}

/** The bytes of a file from `offset` on. */
function readFrom(path: string, offset: number): string {
  const size = existsSync(path) ? statSync(path).size : 0;
  if (size <= offset) return '';
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(size - offset);
    readSync(fd, buf, 0, buf.length, offset);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * The live table's lines cut to the terminal: each to its width (a cut line ends in `…`), and
 * at most its height less one (the lines past it summed up in a last line), so a redraw never
 * scrolls.
 */
export function fitToTerminal(lines: string[], columns: number, rows: number): string[] {
  const room = Math.max(2, rows - 1);
  let shown = lines;
  if (lines.length > room) {
    const hidden = lines.length - (room - 1);
    shown = [...lines.slice(0, room - 1), `  … ${hidden} more step${hidden === 1 ? '' : 's'}`];
  }
  return shown.map((l) => cliTruncate(l, Math.max(1, columns - 1)));
}

/**
 * The jobs (steps and substeps) and samples of an execution of a pipeline: the step tags of the
 * Batch tasks in its state machine, and the samples of its input (steps over all samples are
 * `_all`).
 */
function executionNames(engine: Engine, execution: string): { steps: string[]; samples: string[] } {
  const row = engine.store.getExecution(execution);
  const steps = new Set<string>();
  const samples = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      const tags = (node as { Tags?: Record<string, unknown> }).Tags;
      const step = tags?.[TAG.step];
      if (typeof step === 'string') steps.add(step);
      if (tags?.[TAG.sample] === AGGREGATE_SAMPLE) samples.add(AGGREGATE_SAMPLE);
      Object.values(node).forEach(walk);
    }
  };
  if (row) {
    walk(JSON.parse(row.definition));
    const input = JSON.parse(row.input) as { samples?: { id?: unknown }[] };
    for (const s of input.samples ?? []) if (typeof s.id === 'string') samples.add(s.id);
  }
  return { steps: [...steps], samples: [...samples] };
}

function jobLog(job: JobDetail): string | undefined {
  return job.container.logStreamName ?? job.attempts.at(-1)?.container.logStreamName;
}

/** The `--results` option of the commands that read results. */
const RESULTS_TO_READ =
  'the results database: a file path, sqlite://PATH or postgres://USER@HOST:PORT/DATABASE\n' +
  "(default: the profile's, <home>/config.yaml's results:, then <home>/results.db)";

export function registerPipelineCommands(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
): void {
  program
    .command('run')
    .description(
      'run a pipeline: every sample through every step (or a slice of them), jobs on the local Batch,\n' +
        'outputs published to the store and results to the results database. Exit 0 when every sample\n' +
        'succeeded, 1 when any failed (the others still finish), 2 for bad input. Ctrl-C stops the run;\n' +
        '`strand redrive <execution>` carries it on.',
    )
    .argument('<pipeline>', 'the pipeline file (pipeline.yaml)')
    .option(
      '--samples <sheet|ids>',
      'a samples sheet (.csv/.tsv) or a comma-separated subset of ids',
    )
    .option('--from <step>', 'start at this step (earlier outputs are read from the store)')
    .option('--to <step>', 'stop after this step')
    .option('--only <step>', 'run this one step (same as --from X --to X)')
    .option(
      '--param <name=value>',
      'set a parameter (repeatable)',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option('--dry-run', 'check and compile, show what would run, run nothing')
    .option(
      '--skip-missing',
      'run the samples whose input files are all there, leaving out (and naming) the others;\n' +
        'without it a missing input file stops the run before any job',
    )
    .option('--json', 'print progress events and the outcome as JSON lines')
    .option('--no-cache', 'run every step even when a previous run produced the same outputs')
    .option(
      '--deep-cache',
      'a cached step counts only when the sha256 of every stored output still matches its manifest\n' +
        '(reads them all; without it, each file must be there with its recorded size)',
    )
    .option('--store <url>', 'where outputs go (default: the store in the Strand home)')
    .option('--name <name>', 'execution name (default: pipeline name and time)')
    .option(
      '--executor <name>',
      'what jobs run on: local (processes on this machine, the default), podman or docker (each\n' +
        "job in its step's image; build them with `strand images build`), aws-batch (AWS Batch, as\n" +
        "<home>/config.yaml's executors.aws-batch says), slurm (SLURM batch jobs, from a login node;\n" +
        "see docs/slurm.md). Without it: the profile's, the pipeline's\n" +
        "executor:, then <home>/config.yaml's executor:",
    )
    .option(
      '--profile <name>',
      'a profile: its executor, store and results (built in: local, containers, aws; those of\n' +
        '<home>/config.yaml override them)',
    )
    .option(
      '--results <url>',
      'where results are recorded: a file path, sqlite://PATH or postgres://USER@HOST:PORT/DATABASE\n' +
        "(default: the profile's, <home>/config.yaml's results:, then <home>/results.db)",
    )
    .option('--queue <name>', "job queue (default: the executor's; `default` for local)")
    .option('--home <dir>', 'the Strand home directory')
    .action(async (file: string, opts: RunOptions) => {
      if (opts.deepCache && !opts.cache)
        throw new InputError('--deep-cache checks cached steps; --no-cache runs every step');
      const params = parseParams(opts.param);
      const home = strandHome(opts.home);
      let store: ReturnType<typeof openStore>;
      try {
        store = openStore(storeOf(home, opts), { home });
        // A remote store that cannot be written is found now, before any job runs.
        await store.check?.();
      } catch (err) {
        if (err instanceof StorageError) throw new InputError(`--store: ${err.message}`);
        throw err;
      }
      const loaded = loadOrExplain(file, {
        samples: opts.samples,
        params,
        store: store.url,
        runLocally: true,
        capacity: machineCapacity(),
        skipMissing: Boolean(opts.skipMissing),
      });
      for (const skipped of loaded.skipped ?? [])
        io.err(`skipping sample ${skipped.id} (--skip-missing): ${skipped.reason}\n`);
      const { from, to, steps: selected, skip } = slice(loaded, opts);
      const { spec, samples } = loaded;
      if (samples.length === 0 && spec.steps.some((s) => s.scope === 'sample'))
        throw new InputError(`${file}: no samples (give a sheet under samples: or --samples)`);
      const ran = runExecutor(home, loaded, {
        executor: opts.executor,
        profile: opts.profile,
        steps: selected,
        file,
      });
      if (ran.executor !== 'local' && opts.queue !== undefined && opts.queue !== ran.executor)
        throw new InputError(
          `--queue ${opts.queue} with executor ${ran.executor}: a queue's compute environment decides what its jobs run on; give one of them`,
        );
      const results = resultsOf(home, { results: opts.results, profile: opts.profile });
      const queue = opts.queue ?? (ran.executor === 'local' ? 'default' : ran.executor);
      const compiled = compilePipeline(spec, {
        jobQueue: queue,
        columns: Object.keys(samples[0]?.values ?? {}),
      });
      const name = opts.name ?? `${spec.name}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      const input = {
        run: {
          pipeline: spec.name,
          file,
          execution: name,
          store: store.url,
          from,
          to,
          skip,
          cache: !opts.cache ? 'false' : opts.deepCache ? 'deep' : 'true',
        },
        samples: samples.map((s) => ({ id: s.id, values: s.values })),
        params: { ...spec.params },
      };
      if (opts.dryRun) {
        const steps = spec.steps.filter((s) => selected.includes(s.name));
        const remembered = rememberedDigests(home);
        let planned: PlannedJob[];
        try {
          planned = await dryRun({
            spec,
            compiled,
            input,
            steps: selected,
            store,
            executor: ran.executor,
            digests: remembered.digests,
          });
        } finally {
          remembered.close();
        }
        const cached = planned.filter((j) => j.action === 'cached').length;
        const toRun = planned.filter((j) => j.action === 'runs').length;
        if (opts.json) {
          io.out(
            JSON.stringify({
              pipeline: spec.name,
              samples: samples.map((s) => s.id),
              steps: steps.map((s) => s.name),
              executor: ran.executor,
              jobs: planned,
            }) + '\n',
          );
        } else {
          const paint = painter(io.color?.out);
          io.out(
            `${spec.name}: ${samples.length} sample(s) × ${steps.length} step(s), ${planned.length} job(s): ${cached} from the cache, ${toRun} to run${planned.length - cached - toRun > 0 ? `, ${planned.length - cached - toRun} blocked` : ''}\n` +
              `store: ${store.url}\nexecutor: ${ran.executor} (from ${ran.from})\n` +
              formatTable(
                planned.map((j) => ({
                  ...j,
                  sample: j.sample === AGGREGATE_SAMPLE ? '(all samples)' : j.sample,
                })),
                [{ key: 'sample' }, { key: 'job' }, { key: 'action' }, { key: 'reason' }],
                {
                  style: (key, value, text) =>
                    key !== 'action'
                      ? text
                      : paint(
                          value === 'cached' ? 'green' : value === 'blocked' ? 'red' : 'yellow',
                          text,
                        ),
                },
              ) +
              'nothing was run (--dry-run)\n',
          );
        }
        const blocked = planned.filter((j) => j.action === 'blocked');
        if (blocked.length > 0) {
          // As the run would: it stops in its preflight, before any job.
          const { action: _a, ...first } = blocked[0];
          void _a;
          io.err(
            `strand: the run would stop before any job: ${blocked.length} job(s) cannot run, first ${first.job} of ${first.sample}: ${first.reason}\n`,
          );
          setExit(EXIT_FAILED);
          return;
        }
        setExit(EXIT_OK);
        return;
      }
      const jobs = spec.steps
        .filter((st) => selected.includes(st.name))
        .flatMap((st) =>
          st.jobs.map((j) => ({ name: j.name, total: st.scope === 'all' ? 1 : samples.length })),
        );
      const followed: FollowedRun = {
        execution: name,
        pipeline: spec.name,
        store: store.url,
        json: Boolean(opts.json),
        jobs,
        ...(results.from === '--results' && results.url
          ? { resultsFlag: `--results ${maskUrlPassword(results.url)}` }
          : results.from.startsWith('profile ')
            ? { resultsFlag: `--profile ${opts.profile}` }
            : {}),
      };
      const headline = (): void => {
        if (opts.json) return;
        io.err(
          `${name}: ${spec.name}, ${samples.length} sample(s), ${from || to ? `${selected.length} of ${spec.steps.length} step(s) (${sliceFlags(opts)})` : `${spec.steps.length} step(s)`}` +
            (ran.executor === 'local' ? '' : `, on ${ran.executor}`) +
            '\n',
        );
        for (const image of ran.outdated)
          io.err(
            `note: image ${image} is older than its Dockerfile (strand images build ${file} rebuilds it)\n`,
          );
      };
      const start = {
        definition: compiled.definition,
        input,
        name,
        stateMachineName: spec.name,
      };
      // AWS Batch's endpoint, credentials and queue, before anything is submitted.
      await checkRunExecutor(home, ran);
      const hook: EventHook = {};
      let own = openSchedulerIfFree(home, (arn, e) => hook.onEvent?.(arn, e), results.url);
      if (!own) {
        // The engine that owns the home records results where the home's config.yaml says.
        const configured = configuredResults(home);
        if (results.url !== undefined && results.url !== configured)
          throw new InputError(
            `another Strand engine owns ${home} and records results in ${configured ? maskUrlPassword(configured) : join(home, 'results.db')}, not in ${maskUrlPassword(results.url)} (from ${results.from}); run again when it has finished, or set results: in ${configPath(home)}`,
          );
        // Another engine owns the home: it runs this execution too, and this process follows.
        const outcome = await askOwner(
          home,
          'StartExecution',
          { ...start, jobDefinitions: compiled.jobDefinitions, executor: ran.executor },
          {
            onWait: (h) =>
              opts.json ||
              io.err(
                `handing the run to the Strand engine that owns ${home} (pid ${h.pid} on ${h.host})\n`,
              ),
          },
        ).catch((err: unknown) => {
          if (err instanceof RequestFailedError) throw new InputError(err.message, err.details);
          throw err;
        });
        if (outcome.served) {
          headline();
          setExit(await followRemote(io, home, followed));
          return;
        }
        own = await openStrandWhenFree({
          home,
          onEvent: (arn, e) => hook.onEvent?.(arn, e),
          results: results.url,
        }).catch((err: unknown) => {
          throw refusedHome(err);
        });
      }
      const { engine } = own;
      try {
        // The results database is checked (made, or its server reached) before any job runs.
        await own.services.ready().catch((err: unknown) => {
          throw refusedHome(err);
        });
        registerIfChanged(engine.batch!, compiled.jobDefinitions);
        if (ran.executor !== 'local')
          engine.batch!.ensureExecutorQueue(ran.executor, executorCapacity(home, ran.executor));
        headline();
        setExit(
          await followPipeline(io, engine, hook, {
            ...followed,
            begin: async () => {
              await engine.startExecution(start);
            },
          }),
        );
      } finally {
        engine.close();
      }
    });

  program
    .command('logs')
    .description(
      "print the logs of a run's jobs (stdout and stderr of each), headed by sample and step;\n" +
        '--follow keeps printing as they grow until the run ends',
    )
    .argument('<execution>', 'the execution name (as `strand run` printed it)')
    .option('--sample <id>', 'only this sample')
    .option('--step <name>', 'only this step (or step.substep)')
    .option('--follow', 'keep following until the execution ends')
    .option('--home <dir>', 'the Strand home directory')
    .action(
      async (
        execution: string,
        opts: { sample?: string; step?: string; follow?: boolean; home?: string },
      ) => {
        const engine = openEngine(strandHome(opts.home));
        try {
          try {
            engine.describeExecution(execution);
          } catch (err) {
            if (err instanceof EngineInputError) throw new InputError(err.message);
            throw err;
          }
          const names = executionNames(engine, execution);
          if (opts.sample)
            knownName('--sample', opts.sample, names.samples, 'sample', `in ${execution}`);
          if (opts.step) {
            const steps = [...names.steps, ...names.steps.map((s) => s.split('.')[0])];
            knownName('--step', opts.step, steps, 'step', `in ${execution}`);
          }
          const offsets = new Map<string, number>();
          let last = '';
          const home = strandHome(opts.home);
          const pass = async (): Promise<number> => {
            let printed = 0;
            for (const job of engine.listBatchJobs()) {
              const tags = job.tags ?? {};
              if (tags[TAG.execution] !== execution) continue;
              const step = tags[TAG.step] ?? '';
              const sample = tags[TAG.sample] ?? '';
              if (opts.sample && sample !== opts.sample) continue;
              if (opts.step && step !== opts.step && !step.startsWith(`${opts.step}.`)) continue;
              const log = jobLog(job);
              if (!log) continue;
              const text = await logFrom(home, log, offsets.get(log) ?? 0);
              if (!text) continue;
              offsets.set(log, (offsets.get(log) ?? 0) + Buffer.byteLength(text));
              if (last !== log) {
                io.out(
                  `==> ${sample === AGGREGATE_SAMPLE ? '(all samples)' : sample} ${step} (job ${job.jobId}, ${job.status}) <==\n`,
                );
                last = log;
              }
              io.out(text.endsWith('\n') ? text : `${text}\n`);
              printed++;
            }
            return printed;
          };
          const printed = await pass();
          if (opts.follow) {
            while (engine.describeExecution(execution).status === 'RUNNING') {
              await new Promise((r) => setTimeout(r, 500));
              await pass();
            }
            await pass();
          } else if (printed === 0) {
            io.err(
              `${execution}: no job logs${opts.sample || opts.step ? ' for that sample/step' : ''} yet\n`,
            );
          }
          setExit(EXIT_OK);
        } finally {
          engine.close();
        }
      },
    );

  program
    .command('status')
    .description(
      'list pipeline runs in the Strand home with their progress (from the results database)',
    )
    .option('--json', 'print JSON')
    .option('--results <url>', RESULTS_TO_READ)
    .option('--profile <name>', 'a profile of <home>/config.yaml (its results)')
    .option('--home <dir>', 'the Strand home directory')
    .action(async (opts: { json?: boolean; home?: string; results?: string; profile?: string }) => {
      const home = strandHome(opts.home);
      const { url } = resultsOf(home, opts);
      const engine = openEngine(home);
      let db: Awaited<ReturnType<typeof openResultsReader>>;
      try {
        db = await openResultsReader(home, url, { ifAny: true });
      } catch (err) {
        engine.close();
        throw err;
      }
      try {
        const runs = [];
        for (const d of engine.listExecutions()) {
          const steps = db ? await db.listSteps({ execution: d.name }) : [];
          if (!db || steps.length === 0) {
            // Only pipeline runs (they record results); a plain ASL execution is listed by `executions ls`.
            const input = JSON.parse(d.input ?? '{}') as { run?: { pipeline?: string } };
            if (!input.run?.pipeline) continue;
          }
          const count = (st: string) => steps.filter((r) => r.status === st).length;
          const jobs = engine.listBatchJobs().filter((j) => j.tags?.[TAG.execution] === d.name);
          runs.push({
            execution: d.name,
            status: d.status,
            started: d.startDate,
            running: jobs.filter((j) => ['STARTING', 'RUNNING'].includes(j.status)).length,
            waiting: jobs.filter((j) => ['SUBMITTED', 'PENDING', 'RUNNABLE'].includes(j.status))
              .length,
            succeeded: count('SUCCEEDED'),
            cached: count('CACHED'),
            failed: count('FAILED'),
          });
        }
        if (opts.json) io.out(JSON.stringify(runs, null, 2) + '\n');
        else if (runs.length === 0) io.err('no pipeline runs in this home yet\n');
        else io.out(formatRows(runs, 'table', undefined, statusColumns(painter(io.color?.out))));
        setExit(EXIT_OK);
      } finally {
        await db?.close();
        engine.close();
      }
    });

  program
    .command('compile')
    .description('compile a pipeline to an ASL state machine and AWS Batch job definitions (JSON)')
    .argument('<pipeline>', 'the pipeline file')
    .option('-o, --out <dir>', 'output directory', 'build')
    .option('--samples <sheet|ids>', 'the samples sheet (its columns become environment variables)')
    .option('--queue <name>', 'job queue', 'default')
    .option(
      '--param <name=value>',
      'set a parameter (repeatable)',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .action(
      (file: string, opts: { out: string; samples?: string; queue: string; param: string[] }) => {
        const { spec, samples } = loadOrExplain(file, {
          samples: opts.samples,
          params: parseParams(opts.param),
        });
        const compiled = compilePipeline(spec, {
          jobQueue: opts.queue,
          columns: Object.keys(samples[0]?.values ?? {}),
        });
        const files = writeCompiled(resolve(opts.out), compiled, spec.name);
        io.out(files.map((f) => `${f}\n`).join(''));
        setExit(EXIT_OK);
      },
    );

  program
    .command('init')
    .description(
      'write a small pipeline to start from (pipeline.yaml, samples.csv, data/) into a directory',
    )
    .argument('[dir]', 'where (default: the current directory)', '.')
    .option('--name <name>', 'pipeline name (default: the directory name)')
    .action((dir: string, opts: { name?: string }) => {
      const target = resolve(dir);
      const name =
        (opts.name ?? basename(target))
          .toLowerCase()
          .replace(/[^a-z0-9_-]+/g, '-')
          .replace(/^[^a-z0-9]+/, '') || 'my-pipeline';
      const files = scaffoldPipeline(name);
      const clash = Object.keys(files).filter((f) => existsSync(join(target, f)));
      if (clash.length > 0)
        throw new InputError(
          `${target}: ${clash.join(', ')} already exist${clash.length === 1 ? 's' : ''}; nothing was written`,
        );
      for (const [f, content] of Object.entries(files)) {
        mkdirSync(dirname(join(target, f)), { recursive: true });
        writeFileSync(join(target, f), content);
      }
      io.out(
        `${Object.keys(files)
          .map((f) => join(target, f))
          .join('\n')}\nnext: strand run ${join(dir, 'pipeline.yaml')}\n`,
      );
      setExit(EXIT_OK);
    });

  program
    .command('graph')
    .description('show the steps of a pipeline and what flows between them')
    .argument('<pipeline>', 'the pipeline file')
    .option('--format <format>', 'text, mermaid or dot', 'text')
    .action((file: string, opts: { format: string }) => {
      if (!['text', 'mermaid', 'dot'].includes(opts.format))
        throw new InputError(`--format ${opts.format}: use text, mermaid or dot`);
      const { spec } = loadOrExplain(file);
      io.out(pipelineGraph(spec, opts.format as GraphFormat));
      setExit(EXIT_OK);
    });

  program
    .command('schema')
    .description('print the JSON Schema of pipeline.yaml (for editor completion)')
    .action(() => {
      io.out(JSON.stringify(pipelineJsonSchema(), null, 2) + '\n');
      setExit(EXIT_OK);
    });

  program
    .command('results')
    .description('show results: one row per execution × sample × step')
    .option('--pipeline <name>', 'only this pipeline')
    .option('--execution <name>', 'only this execution')
    .option('--sample <id>', 'only this sample')
    .option('--step <name>', "only this step; with --metrics, that step's metrics")
    .option(
      '--metrics',
      "show the metrics extracted from the step's results file (needs --pipeline and --step)",
    )
    .option('--columns <list>', 'only these columns, in this order (comma-separated)')
    .option('--format <format>', 'table, csv or json', 'table')
    .option('--results <url>', RESULTS_TO_READ)
    .option('--profile <name>', 'a profile of <home>/config.yaml (its results)')
    .option('--home <dir>', 'the Strand home directory')
    .action(
      async (opts: {
        pipeline?: string;
        execution?: string;
        sample?: string;
        step?: string;
        metrics?: boolean;
        columns?: string;
        format: string;
        home?: string;
        results?: string;
        profile?: string;
      }) => {
        if (!['table', 'csv', 'json'].includes(opts.format))
          throw new InputError(`--format ${opts.format}: use table, csv or json`);
        const home = strandHome(opts.home);
        const { url } = resultsOf(home, opts);
        const db = (await openResultsReader(home, url))!;
        try {
          let rows: Record<string, unknown>[];
          if (opts.metrics) {
            if (!opts.pipeline || !opts.step)
              throw new InputError('--metrics needs --pipeline and --step');
            rows = (
              await db.listMetrics(opts.pipeline, opts.step, {
                execution: opts.execution,
                sample: opts.sample,
              })
            ).map((r) => ({ execution: r.execution, sample: r.sample, ...r.values }));
          } else {
            rows = (
              await db.listSteps({
                pipeline: opts.pipeline,
                execution: opts.execution,
                sample: opts.sample,
                step: opts.step,
              })
            ).map((r) => ({ ...r }));
          }
          const all = opts.metrics
            ? [...new Set(rows.flatMap((r) => Object.keys(r)))]
            : [
                'execution',
                'sample',
                'step',
                'status',
                'exitCode',
                'startedAt',
                'stoppedAt',
                'cpuSeconds',
                'peakMemoryMiB',
                'outputLocation',
                'executor',
                'image',
                'cause',
              ];
          // Also recorded, shown when asked for with --columns.
          const allowed = opts.metrics
            ? all
            : [...all, 'jobId', 'attempt', 'logLocation', 'error', 'vcpus', 'memoryMiB'];
          let columns = all;
          if (opts.columns !== undefined) {
            columns = opts.columns.split(',').map((c) => c.trim());
            const unknown = columns.filter((c) => !allowed.includes(c));
            // With no rows there is nothing to check the names against.
            if (rows.length > 0 && unknown.length > 0)
              throw new InputError(
                `--columns: no column ${unknown.map((c) => `"${c}"`).join(', ')}; the columns are: ${allowed.join(', ')}`,
              );
          }
          // Nothing matched: a name that is nowhere in the results is a typo, not an empty answer.
          if (rows.length === 0) {
            const all = (await db.listSteps({})).sort((a, b) =>
              a.execution.localeCompare(b.execution),
            );
            const where = 'in the results';
            if (opts.pipeline)
              knownName(
                '--pipeline',
                opts.pipeline,
                all.map((r) => r.pipeline),
                'pipeline',
                where,
              );
            const mine = all.filter((r) => !opts.pipeline || r.pipeline === opts.pipeline);
            const of = opts.pipeline ? `of ${opts.pipeline} ${where}` : where;
            const fields = [
              ['--execution', opts.execution, 'execution'],
              ['--sample', opts.sample, 'sample'],
              ['--step', opts.step, 'step'],
            ] as const;
            for (const [flag, value, field] of fields)
              if (value)
                knownName(
                  flag,
                  value,
                  mine.map((r) => r[field]),
                  field,
                  of,
                );
          }
          io.out(
            formatRows(
              rows,
              opts.format as RowsFormat,
              columns,
              statusColumns(painter(io.color?.out)),
            ),
          );
          if (opts.format === 'table' && rows.length === 0) io.err('no results yet\n');
          setExit(EXIT_OK);
        } finally {
          await db.close();
        }
      },
    );
}

/** The store a run writes to: `--store`, the profile's `store:`, the home's (exit 2 otherwise). */
function storeOf(home: string, opts: { store?: string; profile?: string }): string | undefined {
  try {
    return chooseStore(readConfig(home), { flag: opts.store, profile: opts.profile }, home).url;
  } catch (err) {
    if (err instanceof ConfigError) throw new InputError(err.message);
    throw err;
  }
}
