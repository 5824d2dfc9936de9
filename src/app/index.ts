/**
 * The composition root: the one place that picks Strand's backends by name or URL — the
 * executor jobs run on, the object stores outputs go to, the results sink — builds them, and
 * hands them to the engine and to Strand's pipeline functions. Nothing below it constructs a
 * backend, so the next one (containers, SLURM, AWS Batch, S3, Postgres) is a new case here and a
 * folder of its own, not an edit of the engine.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, configPath, configuredResults, readConfig } from './config.js';
import type { HistoryEvent } from '../asl/execution.js';
import { Engine, type EngineBusyError, type EngineOptions } from '../engine/engine.js';
import type { LambdaFunction } from '../engine/integrations.js';
import { bucketsIn, StoreIntegration } from '../engine/store-integration.js';
import type { Executor, JobHandle } from '../executors/executor.js';
import {
  AwsBatchExecutor,
  awsBatchCapacity,
  parseLogRef,
  type StagePlanner,
} from '../executors/aws-batch/aws-batch-executor.js';
import { ContainerExecutor } from '../executors/container/container-executor.js';
import { detectRuntime } from '../executors/container/runtime.js';
import { LocalExecutor } from '../executors/local/local-executor.js';
import { SlurmExecutor } from '../executors/slurm/slurm-executor.js';
import {
  pipelineFunctions,
  pipelineHistory,
  pipelineJobCache,
} from '../functions/pipeline-functions.js';
import type { DigestMemo } from '../functions/fingerprint.js';
import { pipelineFetchInputs, pipelineStageIn } from '../functions/stage-in.js';
import { pipelineStageOut } from '../functions/stage-out.js';
import { stagePlan } from '../functions/stage-plan.js';
import { ResultsError } from '../results/errors.js';
import { isPostgresUrl, maskUrlPassword, PostgresResults } from '../results/postgres.js';
import type { ResultsSink } from '../results/sink.js';
import { SqliteResults } from '../results/sqlite.js';
import { openStore } from '../storage/store.js';
import type { ObjectStore } from '../storage/store.js';

export { openStore };

/** The executors Strand can run jobs on. */
export const EXECUTORS = ['local', 'podman', 'docker', 'aws-batch', 'slurm'] as const;
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
  /** The staging of attempts of executors that stage where jobs run (aws-batch). */
  stagePlanner?: StagePlanner;
}

/**
 * The AWS Batch executor of a home, from its config.yaml (`executors.aws-batch`); ConfigError
 * naming the file and keys when one it needs is not set.
 */
export function openAwsBatch(config: ExecutorConfig): AwsBatchExecutor {
  const file = configPath(config.home);
  const s = readConfig(config.home).executors?.['aws-batch'] ?? {};
  const missing = (['jobQueue', 'stageImage'] as const).filter((k) => s[k] === undefined);
  if (missing.length > 0)
    throw new ConfigError(
      `${file}: executors.aws-batch.${missing.join(' and executors.aws-batch.')} not set: the aws-batch executor needs the job queue to submit to and the image of its stage containers (docs/aws-batch-executor.md)`,
    );
  return new AwsBatchExecutor({
    jobQueue: s.jobQueue!,
    stageImage: s.stageImage!,
    ...(s.region ? { region: s.region } : {}),
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    ...(s.jobRoleArn ? { jobRoleArn: s.jobRoleArn } : {}),
    ...(s.executionRoleArn ? { executionRoleArn: s.executionRoleArn } : {}),
    ...(s.logGroup ? { logGroup: s.logGroup } : {}),
    ...(s.pollSeconds ? { pollMs: s.pollSeconds * 1000 } : {}),
    ...(s.maxvCpus ? { maxvCpus: s.maxvCpus } : {}),
    ledgerDir: join(config.home, 'work', 'aws-batch'),
    planner:
      config.stagePlanner ??
      (() =>
        Promise.reject(
          new Error('this aws-batch executor was opened to read logs, not to submit jobs'),
        )),
  });
}

/**
 * The SLURM executor of a home, from its config.yaml (`executors.slurm`): attempts under
 * `<home>/work`, which must be on a file system the cluster's nodes share (docs/slurm.md).
 */
export function openSlurm(config: ExecutorConfig): SlurmExecutor {
  const executors = readConfig(config.home).executors;
  const s = executors?.slurm ?? {};
  const containers = s.containers ? executors?.[s.containers] : undefined;
  const grace = graceSeconds(config);
  return new SlurmExecutor({
    workRoot: join(config.home, 'work'),
    settings: {
      ...(s.partition ? { partition: s.partition } : {}),
      ...(s.account ? { account: s.account } : {}),
      ...(s.qos ? { qos: s.qos } : {}),
      ...(s.sbatchArgs ? { extraArgs: s.sbatchArgs } : {}),
      ...(s.time ? { defaultTime: s.time } : {}),
    },
    ...(grace === undefined ? {} : { graceSeconds: grace }),
    ...(s.pollSeconds ? { pollMs: s.pollSeconds * 1000 } : {}),
    ...(s.exitGraceSeconds === undefined ? {} : { exitGraceMs: s.exitGraceSeconds * 1000 }),
    ...(s.containers
      ? {
          container: {
            runtime: detectRuntime(s.containers),
            ...(containers?.network ? { network: containers.network } : {}),
            ...(containers?.volumes ? { volumes: containers.volumes } : {}),
          },
        }
      : {}),
    ...(s.maxvCpus || s.memoryMiB
      ? {
          capacity: {
            ...(s.maxvCpus ? { vcpus: s.maxvCpus } : {}),
            ...(s.memoryMiB ? { memoryMiB: s.memoryMiB } : {}),
          },
        }
      : {}),
  });
}

/**
 * The capacity the local Batch gives the compute environment of `executor`; undefined for one
 * that runs jobs on this machine (its size is this machine's).
 */
export function executorCapacity(
  home: string,
  executor: string,
): { vcpus: number; memoryMiB: number } | undefined {
  // SLURM places the jobs: the Batch hands it as many as its partition has room for.
  if (executor === 'slurm') return openSlurm({ home }).capacity();
  if (executor !== 'aws-batch') return undefined;
  return awsBatchCapacity(readConfig(home).executors?.['aws-batch']?.maxvCpus);
}

/**
 * An attempt's log (JobHandle.logPath): the file on this machine, or for an attempt of the
 * aws-batch executor its CloudWatch Logs streams; undefined when there is none yet.
 */
export async function readAttemptLog(home: string, logPath: string): Promise<string | undefined> {
  const ref = parseLogRef(logPath);
  if (!ref) {
    try {
      return readFileSync(logPath, 'utf8');
    } catch {
      return undefined;
    }
  }
  const executor = openAwsBatch({ home });
  try {
    const handle: JobHandle = { jobId: ref.awsJobId, attempt: 0, ref: ref.awsJobId, logPath };
    return await executor.logs(handle);
  } finally {
    executor.close();
  }
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
    case 'aws-batch':
      return openAwsBatch(config);
    case 'slurm':
      return openSlurm(config);
    default:
      throw new Error(`no executor named "${name}" (executors: ${EXECUTORS.join(', ')})`);
  }
}

/**
 * Opens the results sink at `url`: a file path or `sqlite://PATH`, or `postgres://…`; none (the
 * default) is `<home>/results.db`. `check` reads a whole SQLite database for damage first, so a
 * run refuses it before any job starts. A Postgres sink connects on first use (resultsReady).
 */
export function openResults(
  url: string | undefined,
  options: { home: string; check?: boolean },
): ResultsSink {
  if (url === undefined || url === '')
    return SqliteResults.inHome(options.home, { check: options.check });
  if (isPostgresUrl(url)) return PostgresResults.open(url);
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(url) && !url.startsWith('sqlite://'))
    throw new ResultsError(
      'CONNECT_FAILED',
      `results ${maskUrlPassword(url)}: Strand records results in SQLite (a file path or sqlite://PATH) or Postgres (postgres://USER@HOST:PORT/DATABASE)`,
    );
  return SqliteResults.open(url.replace(/^sqlite:\/\//, ''), { check: options.check });
}

/**
 * Waits until `sink` can be used: a Postgres server answers and its schema is up to date, or
 * the ResultsError saying why not (an SQLite sink was checked when opened).
 */
export async function resultsReady(sink: ResultsSink): Promise<void> {
  if (sink instanceof PostgresResults) await sink.opened();
}

/** The results URL an engine of `options` uses: its own, else the home's config.yaml's. */
function resultsUrl(options: StrandOptions): string | undefined {
  return options.results || configuredResults(options.home);
}

/**
 * The results sink to read from, or undefined when there is none yet (the home's SQLite file
 * has not been made): readers such as `strand status` then have nothing to show.
 */
export function openResultsIfAny(
  url: string | undefined,
  options: { home: string },
): ResultsSink | undefined {
  // A server's database is always there to ask; only the home's own file may not be yet.
  if ((url === undefined || url === '') && !SqliteResults.existsInHome(options.home))
    return undefined;
  return openResults(url, options);
}

/** What an engine of the CLI runs pipelines with: Strand's functions over stores and results. */
export interface PipelineServices {
  /** The results sink (opened now if it was not yet). */
  results(): ResultsSink;
  /** Opens the results sink and waits until it can be used (a Postgres server answers). */
  ready(): Promise<void>;
  close(): Promise<void>;
}

export interface StrandOptions {
  home: string;
  /** The executor jobs run on (default `local`). */
  executor?: ExecutorName;
  /** Capacity of the local Batch's default compute environment (default: this machine). */
  batch?: EngineOptions['batch'];
  /**
   * The results sink (default: `results:` of the home's config.yaml, else `<home>/results.db`).
   * When it is the home's SQLite file and it exists, it is opened (and checked) with the engine,
   * so a damaged one is refused before anything runs; otherwise it is made on first use.
   */
  results?: string;
  /**
   * The object store a Map state's ItemReader reads and its ResultWriter writes, as S3 (see
   * StoreIntegration): a URL or directory; default `<home>/store`.
   */
  store?: string;
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
    (sink ??= openResults(resultsUrl(options), { home: options.home, check: true }));
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
  // The staging of attempts that run where neither the store's files nor this machine's are.
  const stagePlanner: StagePlanner = async (spec, root) => {
    const job = engine()?.batch?.getJob(spec.jobId);
    if (!job) throw new Error(`job ${spec.jobId} is not in this home's Batch: nothing to stage`);
    // Their values were read here: on AWS they would travel in plain text in SubmitJob.
    const secrets = job.container.secrets ?? [];
    if (secrets.length > 0)
      throw new Error(
        `job ${spec.jobId} has secrets (${secrets.map((x) => x.name).join(', ')}): the aws-batch executor does not pass secrets to AWS Batch yet; run it on another executor`,
      );
    const staged = await stagePlan(job, spec, root, {
      store: fnOptions.store,
      executor: 'aws-batch',
      digests: fnOptions.digests,
    });
    return { ...staged, tags: job.tags ?? {} };
  };
  return {
    stagePlanner,
    store: fnOptions.store,
    functions: pipelineFunctions(fnOptions),
    jobCache: pipelineJobCache(fnOptions),
    fetchInputs: pipelineFetchInputs({
      store: fnOptions.store,
      stagingRoot: join(options.home, 'staged'),
    }),
    stageOut: pipelineStageOut({
      store: fnOptions.store,
      executorOf: (job) => engine()?.batch?.queueExecutor(job.jobQueue) ?? 'local',
      digests: fnOptions.digests,
    }),
    history: pipelineHistory(lazy),
    services: {
      results,
      ready: () => resultsReady(results()),
      close: () => lazy.close(),
    } satisfies PipelineServices,
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
    // The S3 calls of Map states (ItemReader, ResultWriter) go to the store; integrations
    // given by the caller come first, so they may answer those resources instead.
    integrations: [
      ...(options.engine?.integrations ?? []),
      new StoreIntegration(bucketsIn(s.store(options.store ?? ''), s.store)),
    ],
    batch: {
      ...options.batch,
      executor:
        options.batch?.executor ??
        openExecutor(options.executor ?? 'local', {
          home: options.home,
          stagePlanner: s.stagePlanner,
        }),
      // Compute environments of other executors (`strand run --executor podman`) open theirs
      // on their first job.
      executors:
        options.batch?.executors ??
        ((name: string) =>
          openExecutor(name, { home: options.home, stagePlanner: s.stagePlanner })),
      stageOut: options.batch?.stageOut ?? s.stageOut,
      stageIn: options.batch?.stageIn ?? pipelineStageIn,
      fetchInputs: options.batch?.fetchInputs ?? s.fetchInputs,
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
      if (resultsUrl(options) || SqliteResults.existsInHome(options.home)) s.services.results();
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
    let strand: Strand;
    try {
      strand = openStrand(options);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENGINE_BUSY') throw err;
      if (!told) onWait?.((err as EngineBusyError).holder);
      told = true;
      await new Promise((r) => setTimeout(r, 250));
      continue;
    }
    // A results server that cannot be used is refused here, as a damaged results.db is when
    // the engine opens.
    try {
      await strand.services.ready();
    } catch (err) {
      strand.engine.close();
      throw err;
    }
    return strand;
  }
}
