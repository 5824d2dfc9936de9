/**
 * The composition root: the one place that picks Strand's backends by name or URL — the
 * executor jobs run on, the object stores outputs go to, the results sink — builds them, and
 * hands them to the engine and to Strand's pipeline functions. Nothing below it constructs a
 * backend, so the next one (containers, SLURM, AWS Batch, S3, Postgres) is a new case here and a
 * folder of its own, not an edit of the engine.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readConfig } from './config.js';
import type { HistoryEvent } from '../asl/execution.js';
import { Engine, type EngineBusyError, type EngineOptions } from '../engine/engine.js';
import type { LambdaFunction } from '../engine/integrations.js';
import type { Executor } from '../executors/executor.js';
import { ContainerExecutor } from '../executors/container/container-executor.js';
import { detectRuntime } from '../executors/container/runtime.js';
import { LocalExecutor } from '../executors/local/local-executor.js';
import {
  pipelineFunctions,
  pipelineHistory,
  pipelineJobCache,
} from '../functions/pipeline-functions.js';
import type { DigestMemo } from '../functions/fingerprint.js';
import { pipelineStageIn } from '../functions/stage-in.js';
import { pipelineStageOut } from '../functions/stage-out.js';
import type { ResultsSink } from '../results/sink.js';
import { SqliteResults } from '../results/sqlite.js';
import { openStore } from '../storage/store.js';
import type { ObjectStore } from '../storage/store.js';

export { openStore };

/** The executors Strand can run jobs on. */
export const EXECUTORS = ['local', 'podman', 'docker'] as const;
export type ExecutorName = (typeof EXECUTORS)[number];

export interface ExecutorConfig {
  /** The Strand home: the local executor keeps attempts under `<home>/work`. */
  home: string;
  /** Seconds between SIGTERM and SIGKILL when a job is stopped (default: the executor's). */
  graceSeconds?: number;
  /** The network a container job joins (default: the home's config.yaml, else `none`). */
  network?: string;
  /** More mounts for container jobs (default: the home's config.yaml). */
  volumes?: string[];
}

/**
 * The grace period between SIGTERM and SIGKILL: the config's, else `STRAND_GRACE_SECONDS`, else
 * the executor's default.
 */
function graceSeconds(config: ExecutorConfig): number | undefined {
  if (config.graceSeconds !== undefined) return config.graceSeconds;
  const text = process.env.STRAND_GRACE_SECONDS;
  if (text === undefined || text === '') return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0)
    throw new Error(`STRAND_GRACE_SECONDS=${text}: give a number of seconds (0 or more)`);
  return n;
}

/** Builds the executor called `name`. */
export function openExecutor(name: string, config: ExecutorConfig): Executor {
  const grace = graceSeconds(config);
  switch (name) {
    case 'local':
      return new LocalExecutor({
        workRoot: join(config.home, 'work'),
        ...(grace === undefined ? {} : { graceSeconds: grace }),
      });
    case 'podman':
    case 'docker': {
      const settings = readConfig(config.home).executors?.[name] ?? {};
      const network = config.network ?? settings.network;
      const volumes = config.volumes ?? settings.volumes;
      return new ContainerExecutor({
        runtime: detectRuntime(name),
        workRoot: join(config.home, 'work'),
        ...(grace === undefined ? {} : { graceSeconds: grace }),
        ...(network === undefined ? {} : { network }),
        ...(volumes === undefined ? {} : { volumes }),
      });
    }
    default:
      throw new Error(`no executor named "${name}" (executors: ${EXECUTORS.join(', ')})`);
  }
}

/**
 * Opens the results sink at `url`; none (the default) is `<home>/results.db`. `check` reads the
 * whole database for damage first, so a run refuses it before any job starts.
 */
export function openResults(
  url: string | undefined,
  options: { home: string; check?: boolean },
): ResultsSink {
  if (url === undefined || url === '')
    return SqliteResults.inHome(options.home, { check: options.check });
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(url) && !url.startsWith('sqlite://'))
    throw new Error(`results ${url}: only SQLite results are supported yet (a file path)`);
  return SqliteResults.open(url.replace(/^sqlite:\/\//, ''), { check: options.check });
}

/**
 * The results sink to read from, or undefined when there is none yet (the home's SQLite file
 * has not been made): readers such as `strand status` then have nothing to show.
 */
export function openResultsIfAny(
  url: string | undefined,
  options: { home: string },
): ResultsSink | undefined {
  if ((url === undefined || url === '') && !SqliteResults.existsInHome(options.home))
    return undefined;
  return openResults(url, options);
}

/** What an engine of the CLI runs pipelines with: Strand's functions over stores and results. */
export interface PipelineServices {
  /** The results sink (opened now if it was not yet). */
  results(): ResultsSink;
  close(): Promise<void>;
}

export interface StrandOptions {
  home: string;
  /** The executor jobs run on (default `local`). */
  executor?: ExecutorName;
  /** Capacity of the local Batch's default compute environment (default: this machine). */
  batch?: EngineOptions['batch'];
  /**
   * The results sink. When it is the home's SQLite file and it exists, it is opened (and
   * checked) with the engine, so a damaged one is refused before anything runs; otherwise it is
   * made on first use.
   */
  results?: string;
  onEvent?: (executionArn: string, event: HistoryEvent) => void;
  /** Extra engine options (tests: clocks, functions). */
  engine?: Partial<EngineOptions>;
}

/**
 * The input digests remembered in a home, for a look that runs nothing (`strand run --dry-run`):
 * read, never written; none when the home has no database yet or it cannot be opened.
 */
export function rememberedDigests(home: string): { digests: DigestMemo; close: () => void } {
  let engine: Engine | undefined;
  try {
    if (existsSync(join(home, 'strand.db'))) engine = Engine.open({ home, readOnly: true });
  } catch {
    engine = undefined;
  }
  return {
    digests: { get: (identity) => engine?.store.fileDigest(identity), set: () => {} },
    close: () => engine?.close(),
  };
}

/**
 * Input digests remembered in the home's strand.db. What is learnt is written once per turn of
 * the event loop, in one transaction (a directory's thousand files are one commit, not a
 * thousand); a database that cannot be written only costs a read of the file next time.
 */
function digestMemo(engine: () => Engine | undefined): DigestMemo {
  const pending = new Map<string, string>();
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    try {
      engine()?.store.rememberFileDigests(pending, Date.now());
    } catch {
      // not remembered: computed again next time
    }
    pending.clear();
  };
  return {
    get: (identity) => pending.get(identity) ?? engine()?.store.fileDigest(identity),
    set: (identity, sha256) => {
      pending.set(identity, sha256);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
  };
}

/**
 * The pieces of one home: stores by URL (opened once each), the results sink (opened lazily,
 * or now when `eager`), and the pipeline functions and job cache over them.
 */
function services(options: StrandOptions, engine: () => Engine | undefined) {
  const stores = new Map<string, ObjectStore>();
  let sink: ResultsSink | undefined;
  const results = (): ResultsSink =>
    (sink ??= openResults(options.results, { home: options.home, check: true }));
  const lazy: ResultsSink = {
    upsertStep: (row) => results().upsertStep(row),
    putMetrics: (key, table) => results().putMetrics(key, table),
    listSteps: (filter) => results().listSteps(filter),
    listMetrics: (pipeline, step, filter) => results().listMetrics(pipeline, step, filter),
    stepHistory: (pipeline, step, limit) => results().stepHistory(pipeline, step, limit),
    close: async () => {
      await sink?.close();
      sink = undefined;
    },
  };
  const fnOptions = {
    store: (url: string) => {
      let s = stores.get(url);
      if (!s) stores.set(url, (s = openStore(url, { home: options.home })));
      return s;
    },
    results: lazy,
    batch: () => engine()?.batch,
    digests: digestMemo(() => engine()),
  };
  return {
    functions: pipelineFunctions(fnOptions),
    jobCache: pipelineJobCache(fnOptions),
    stageOut: pipelineStageOut({
      store: fnOptions.store,
      executorOf: (job) => engine()?.batch?.queueExecutor(job.jobQueue) ?? 'local',
      digests: fnOptions.digests,
    }),
    history: pipelineHistory(lazy),
    services: { results, close: () => lazy.close() } satisfies PipelineServices,
  };
}

/** An engine opened with its backends and services. */
export interface Strand {
  engine: Engine;
  services: PipelineServices;
  /** Strand's pipeline functions as the engine runs them (`lambda:invoke` handlers). */
  functions: Record<string, LambdaFunction>;
}

function engineOptions(options: StrandOptions, s: ReturnType<typeof services>): EngineOptions {
  return {
    home: options.home,
    onEvent: options.onEvent,
    functions: s.functions,
    jobCache: s.jobCache,
    ...options.engine,
    batch: {
      ...options.batch,
      executor:
        options.batch?.executor ??
        openExecutor(options.executor ?? 'local', { home: options.home }),
      // Compute environments of other executors (`strand run --executor podman`) open theirs
      // on their first job.
      executors:
        options.batch?.executors ?? ((name: string) => openExecutor(name, { home: options.home })),
      stageOut: options.batch?.stageOut ?? s.stageOut,
      stageIn: options.batch?.stageIn ?? pipelineStageIn,
      history: options.batch?.history ?? s.history,
    },
  };
}

/**
 * Opens the scheduling engine of a home with its executor, stores and results sink. Throws
 * EngineBusyError while another live engine owns the home (see `openStrandWhenFree`).
 */
export function openStrand(options: StrandOptions): Strand {
  let engine: Engine | undefined;
  const s = services(options, () => engine);
  engine = Engine.open({
    ...engineOptions(options, s),
    onOpened: (e) => {
      engine = e;
      // A damaged results database is refused before anything resumes or runs.
      if (options.results || SqliteResults.existsInHome(options.home)) s.services.results();
      options.engine?.onOpened?.(e);
    },
  });
  engine.onClose(() => void s.services.close());
  return { engine, services: s.services, functions: s.functions };
}

/** Like openStrand, but waits while another engine owns the home. */
export async function openStrandWhenFree(
  options: StrandOptions,
  onWait?: (holder: EngineBusyError['holder']) => void,
): Promise<Strand> {
  let told = false;
  for (;;) {
    try {
      return openStrand(options);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENGINE_BUSY') throw err;
      if (!told) onWait?.((err as EngineBusyError).holder);
      told = true;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
