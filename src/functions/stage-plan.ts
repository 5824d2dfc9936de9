/**
 * Staging plans (docs/adr/0002-staging.md) for executors whose jobs run where neither the store's
 * files nor this machine's are (AWS Batch): what `strand stage in` makes available in the job's
 * working directory before the tool starts, and what `strand stage out` publishes after it ends.
 *
 * The plan is made here, on the engine's machine, when an attempt is submitted: every value of
 * the job (an environment value, a command item after the program) that names an object of the
 * job's store, or a file on this machine (one beside the pipeline, uploaded to the store first),
 * becomes an input with a path under `inputs/` in the working directory, and the value the tool
 * gets is that path. The fingerprint of a job that succeeds is taken here too, from the job as
 * submitted, as the local stage-out takes it: the job cache compares the same thing on every
 * backend.
 */
import { basename, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { statSync } from 'node:fs';
import type { JobDetail } from '../batch/types.js';
import { AGGREGATE_SAMPLE, TAG } from '../pipeline/contract.js';
import { digestFile } from '../storage/digest.js';
import { checkKey } from '../storage/keys.js';
import { stepPrefix } from '../storage/layout.js';
import type { PublishInfo } from '../storage/publish.js';
import type { ObjectStore } from '../storage/store.js';
import { fingerprintDetail, type DigestMemo } from './fingerprint.js';
import { RESULT_OUTPUT, samplesKey } from './stage-out.js';

export const STAGE_PLAN_VERSION = 1;

/** An object (or every object below a prefix) of the store, and where the job finds it. */
export interface StagedInput {
  key: string;
  /** Relative to the working directory. */
  path: string;
  /** The key is a prefix: a directory output of an earlier step. */
  directory?: true;
  /**
   * The object is a list strand-collect wrote for a step over all samples (one location a line):
   * each location is staged too, and the list names the staged copies.
   */
  list?: true;
}

/** Keys of the lists strand-collect writes for the steps over all samples. */
const INPUT_LIST = /\/_all\/_inputs\/[^/]+\/[^/]+\.txt$/;

/** What the stage-in and stage-out of one attempt do, where the job runs. JSON. */
export interface StagePlan {
  version: typeof STAGE_PLAN_VERSION;
  /** The directory the job's files are under where it runs (see taskPaths). */
  root: string;
  /** The store URL (none for a job that is not a pipeline's: nothing is staged). */
  store?: string;
  /** The step's prefix in the store. */
  prefix?: string;
  inputs: StagedInput[];
  /** Variable → path relative to the working directory (results files under RESULT_OUTPUT). */
  outputs: Record<string, string>;
  /** Directories the tool writes into without making them, relative to the working directory. */
  outputDirs: string[];
  /**
   * The variables whose values name staged inputs, as the tool gets them (kept in
   * `run/environment.json`); the rest of its environment travels with its container only.
   */
  environment: Record<string, string>;
  info?: Omit<PublishInfo, 'fingerprint' | 'exitCode' | 'startedAt' | 'stoppedAt'>;
  /** The job's fingerprint, recorded in a SUCCEEDED manifest. */
  fingerprint?: { fingerprint: string; parts: Record<string, string> };
}

/** The files of a staged job under the plan's root, where it runs. */
export function taskPaths(root: string) {
  return {
    /** The tool's working directory. */
    work: posix.join(root, 'work'),
    run: posix.join(root, 'run'),
    /** The wrapper's pid file: its second line is the exit it recorded. */
    pid: posix.join(root, 'run', 'pid'),
    stop: posix.join(root, 'run', 'stop'),
    log: posix.join(root, 'run', 'log'),
    environment: posix.join(root, 'run', 'environment.json'),
    /** Written by a stage-in that failed: why. */
    stageInError: posix.join(root, 'run', 'stage-in.error'),
    launcher: posix.join(root, 'bin', 'strand-launcher'),
  };
}

/** A staged attempt: its plan, and the command and environment the tool runs with. */
export interface StagedAttempt {
  plan: StagePlan;
  command: string[];
  environment: Record<string, string>;
}

export interface StagePlanOptions {
  store: (url: string) => ObjectStore;
  /** The executor's name (part of a successful job's fingerprint). */
  executor: string;
  digests?: DigestMemo;
  /**
   * Whether a value naming a regular file of this machine is uploaded and staged (default
   * true: the plan is made on the engine's machine). Where the job itself makes its plan, a path
   * names the job's own file system, never an input.
   */
  localFiles?: boolean;
}

function json<T>(text: string | undefined, fallback: T): T {
  if (text === undefined) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

/** Where files of this machine go in the store, by content, so each is uploaded once. */
const FILES_PREFIX = '_strand/files';

/** Why `key` is not a key a store takes, or undefined when it is one. */
function keyProblem(key: string): string | undefined {
  try {
    checkKey(key);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** A relative path inside the working directory (as `outputFiles` accepts). */
const inside = (path: string) =>
  path !== '' && !path.startsWith('/') && !path.split('/').includes('..');

/**
 * The key a value names in `store`: a URL below the store's, or for a file store a path below
 * its directory; undefined otherwise.
 */
export function storeKey(store: ObjectStore, value: string): string | undefined {
  const url = store.url.replace(/\/+$/, '');
  if (value.startsWith(`${url}/`)) {
    const rest = value.slice(url.length + 1);
    return url.startsWith('file:') ? rest.split('/').map(decodeURIComponent).join('/') : rest;
  }
  if (url.startsWith('file:') && value.startsWith('/')) {
    const root = fileURLToPath(url);
    if (value.startsWith(`${root}/`)) return value.slice(root.length + 1);
  }
  return undefined;
}

/**
 * The staging plan of attempt `attempt` of `job`, its files under `root` where it runs, and the
 * command (`command`, as the Batch sized it) and environment the tool gets there.
 */
export async function stagePlan(
  job: JobDetail,
  attempt: { attempt: number; command: string[]; environment: Record<string, string> },
  root: string,
  options: StagePlanOptions,
): Promise<StagedAttempt> {
  const paths = taskPaths(root);
  const env = { ...attempt.environment };
  const outputDirs = (env.STRAND_OUTPUT_DIRS ?? '').split(':').filter(inside);
  const base: StagePlan = {
    version: STAGE_PLAN_VERSION,
    root,
    inputs: [],
    outputs: {},
    outputDirs,
    environment: {},
  };
  const tags = job.tags ?? {};
  const [url, pipeline, step, execution] = [
    tags[TAG.store],
    tags[TAG.pipeline],
    tags[TAG.step],
    tags[TAG.execution],
  ];
  if (!url || !pipeline || !step || !execution)
    return { plan: base, command: attempt.command, environment: env };
  const store = options.store(url);
  const sample = tags[TAG.sample];
  const layoutSample = sample === undefined || sample === AGGREGATE_SAMPLE ? null : sample;
  const prefix = stepPrefix(pipeline, layoutSample, step);
  const outputs: Record<string, string> = json(env.STRAND_OUTPUTS, {});
  for (const from of json<string[]>(env.STRAND_RESULTS, []))
    outputs[`${RESULT_OUTPUT}${from}`] = from;

  // Every value that names an input, by value: each staged once, under the first name using it.
  const staged = new Map<string, string>();
  const inputs: StagedInput[] = [];
  const stage = async (value: string, name: string): Promise<string | undefined> => {
    const known = staged.get(value);
    if (known !== undefined) return known;
    let key = storeKey(store, value);
    if (
      key === undefined &&
      options.localFiles !== false &&
      value.startsWith('/') &&
      !/^\/(proc|sys|dev)(\/|$)/.test(value)
    ) {
      let file = false;
      try {
        file = statSync(value).isFile();
      } catch {
        // not a file of this machine: an ordinary value
      }
      if (!file) return undefined;
      // A file beside the pipeline: the job cannot read this machine's, so it goes to the store.
      const { sha256 } = await digestFile(value);
      key = `${FILES_PREFIX}/${sha256.slice(0, 32)}/${basename(value)}`;
      if (!(await store.exists(key))) await store.putFile(key, value);
    }
    if (key === undefined || key === '' || keyProblem(key)) return undefined;
    let directory = false;
    if (!(await store.head(key))) {
      if ((await store.list(key)).length === 0) return undefined; // nothing there (yet): text
      directory = true;
    }
    const leaf = key.split('/').at(-1) ?? 'input';
    const path = `inputs/${name}/${leaf}`;
    inputs.push({
      key,
      path,
      ...(directory ? { directory: true as const } : {}),
      ...(!directory && INPUT_LIST.test(key) ? { list: true as const } : {}),
    });
    const local = posix.join(paths.work, path);
    staged.set(value, local);
    return local;
  };
  const stagedEnv: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith('STRAND_')) continue;
    const local = await stage(value, name.replace(/[^A-Za-z0-9_.-]/g, '_'));
    if (local !== undefined) env[name] = stagedEnv[name] = local;
  }
  const command = [...attempt.command];
  for (let i = 1; i < command.length; i++) {
    const local = await stage(command[i], `arg${i}`);
    if (local !== undefined) command[i] = local;
  }

  const samples =
    layoutSample === null && (await store.exists(samplesKey(pipeline, execution)))
      ? json<string[] | undefined>(
          (await store.get(samplesKey(pipeline, execution))).toString('utf8'),
          undefined,
        )
      : undefined;
  const fingerprint = await fingerprintDetail(
    {
      image: job.container.image,
      command: job.container.command,
      environment: new Map(job.container.environment.map((kv) => [kv.name, kv.value])),
      executor: options.executor,
    },
    { memo: options.digests },
  );
  return {
    plan: {
      ...base,
      store: store.url,
      prefix,
      inputs,
      outputs,
      environment: stagedEnv,
      info: {
        pipeline,
        sample: layoutSample,
        step,
        execution,
        jobId: job.jobId,
        attempt: attempt.attempt,
        ...(samples ? { samples } : {}),
      },
      fingerprint,
    },
    command,
    environment: env,
  };
}

/** A plan read back (from a file or a variable): checked enough to act on safely. */
export function parseStagePlan(text: string, from: string): StagePlan {
  let plan: unknown;
  try {
    plan = JSON.parse(text);
  } catch (err) {
    throw new Error(`${from}: not a staging plan (${(err as Error).message})`, { cause: err });
  }
  const p = plan as Partial<StagePlan> | null;
  if (!p || typeof p !== 'object' || p.version !== STAGE_PLAN_VERSION)
    throw new Error(
      `${from}: not a version ${STAGE_PLAN_VERSION} staging plan (made by another Strand?)`,
    );
  if (typeof p.root !== 'string' || !p.root.startsWith('/'))
    throw new Error(`${from}: root must be an absolute path`);
  for (const i of p.inputs ?? [])
    if (typeof i?.key !== 'string' || typeof i.path !== 'string' || !inside(i.path))
      throw new Error(`${from}: input ${JSON.stringify(i)} must have a key and a relative path`);
  for (const d of p.outputDirs ?? [])
    if (!inside(d)) throw new Error(`${from}: output directory ${JSON.stringify(d)} is outside`);
  if ((p.store === undefined) !== (p.prefix === undefined))
    throw new Error(`${from}: store and prefix go together`);
  return {
    ...(p as StagePlan),
    inputs: p.inputs ?? [],
    outputs: p.outputs ?? {},
    outputDirs: p.outputDirs ?? [],
    environment: p.environment ?? {},
  };
}
