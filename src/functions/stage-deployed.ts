/**
 * The staging of a job that Step Functions submitted itself (`strand deploy aws`), where no
 * engine made a plan: the job derives its plan where it runs, from what it has there —
 *
 * - its own environment: what the job definition declares of the step (STRAND_PIPELINE,
 *   STRAND_STEP, STRAND_OUTPUTS, STRAND_OUTPUT_DIRS, STRAND_STDOUT, STRAND_RESULTS: compiled;
 *   STRAND_STORE, STRAND_IMAGE, STRAND_STAGE_TIMEOUT, STRAND_STAGE_SECRETS (the names of the
 *   variables ECS fills from secrets), STRAND_STAGE_LAUNCHER: the stack's and its image's) and the values the state
 *   machine put in its ContainerOverrides (the sample, each input's `s3://` location);
 * - the job's own record in AWS Batch (DescribeJobs of AWS_BATCH_JOB_ID, which Batch sets): its
 *   tags, which name the execution, the sample and the store as the state machine submitted it;
 * - its command: the tool's argv, Batch's `Ref::` parameters already substituted.
 *
 * Stage in makes the plan (stage-plan.ts, with no file of this machine taken for an input),
 * keeps it in `run/plan.json`, stages the inputs (stage-task.ts) and writes the launch request
 * the static launcher runs the tool from (`strand-launcher run run/request`): its argv and
 * environment with each input's value replaced by the staged copy's path. Stage out publishes
 * to `{store}/{pipeline}/{sample}/{step}/`, the manifest last, as every stage-out does.
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import type { JobDetail } from '../batch/types.js';
import { nativeRequest } from '../executors/local/launcher.js';
import { AGGREGATE_SAMPLE, TAG } from '../pipeline/contract.js';
import { parseStagePlan, stagePlan, taskPaths, type StagePlan } from './stage-plan.js';
import { stageIn, stageOut, type StageTaskOptions } from './stage-task.js';

/** Where a deployed job's files are unless STRAND_STAGE_ROOT says otherwise. */
export const DEPLOYED_ROOT = '/strand';

/** Seconds between the wrapper's SIGTERM and SIGKILL of a tool it stops. */
const GRACE_SECONDS = 10;

/** What a job's own record in AWS Batch says of it (DescribeJobs). */
export interface OwnJob {
  jobId: string;
  tags: Record<string, string>;
  attempt?: number;
}

export interface DeployedStageOptions extends StageTaskOptions {
  /** The job's environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Looks the job up in AWS Batch by its id (its tags name the execution). */
  ownJob: (jobId: string) => Promise<OwnJob | undefined>;
}

/** A deployed job's staging cannot start: names the variable or the lookup that is missing. */
export class DeployedStageError extends Error {
  readonly code = 'STAGE_DEPLOYED';
  constructor(message: string) {
    super(message);
    this.name = 'DeployedStageError';
  }
}

/** Variables of the container, not of the job: never inputs, never part of its fingerprint. */
const NOT_THE_JOB = /^(AWS_|ECS_|STRAND_STAGE_|HOSTNAME$|HOME$|PATH$|PWD$|SHLVL$|TERM$|_$)/;

/**
 * The root of a deployed job's files: STRAND_STAGE_ROOT, else /strand (the job image makes it
 * writable by all), else, where the image's user cannot write there, a directory of the system's
 * temporary one.
 */
export function deployedRoot(env: NodeJS.ProcessEnv = process.env): string {
  const root = env.STRAND_STAGE_ROOT;
  if (root !== undefined && root.startsWith('/')) return root;
  try {
    mkdirSync(DEPLOYED_ROOT, { recursive: true });
    accessSync(DEPLOYED_ROOT, constants.W_OK);
    return DEPLOYED_ROOT;
  } catch {
    return join(tmpdir(), 'strand');
  }
}

function variables(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

/**
 * The plan of a deployed job and the tool's argv and environment, its inputs staged: from the
 * job's environment, its AWS Batch record and `command` (the tool's argv).
 */
export async function deployedPlan(
  command: string[],
  options: DeployedStageOptions,
): Promise<{ plan: StagePlan; command: string[]; environment: Record<string, string> }> {
  const env = variables(options.env ?? process.env);
  const need = (name: string): string => {
    const v = env[name];
    if (v === undefined || v === '')
      throw new DeployedStageError(
        `the job's environment has no ${name}; its job definition is not one strand deploy aws made (deploy the stack again)`,
      );
    return v;
  };
  if (command.length === 0)
    throw new DeployedStageError("no command to run: the job definition's command is empty");
  const jobId = need('AWS_BATCH_JOB_ID');
  const pipeline = need('STRAND_PIPELINE');
  const step = need('STRAND_STEP');
  const own = await options.ownJob(jobId);
  if (!own)
    throw new DeployedStageError(
      `AWS Batch does not know job ${jobId} (DescribeJobs); the job's role needs batch:DescribeJobs`,
    );
  const execution = own.tags[TAG.execution];
  if (!execution)
    throw new DeployedStageError(
      `job ${jobId} has no ${TAG.execution} tag: it was not submitted by a Strand state machine`,
    );
  const store = own.tags[TAG.store] || need('STRAND_STORE');
  const sample = own.tags[TAG.sample] ?? env.STRAND_SAMPLE ?? AGGREGATE_SAMPLE;
  const attempt = own.attempt ?? (Number(env.AWS_BATCH_JOB_ATTEMPT) || 1);
  // Secrets reach the container as variables: never part of the fingerprint a manifest keeps.
  const secrets = new Set((env.STRAND_STAGE_SECRETS ?? '').split(',').filter(Boolean));
  const jobVariables = Object.entries(env)
    .filter(
      ([name]) =>
        !NOT_THE_JOB.test(name) &&
        !secrets.has(name) &&
        name !== 'STRAND_STORE' &&
        name !== 'STRAND_IMAGE',
    )
    .map(([name, value]) => ({ name, value }));
  const detail = {
    jobId,
    jobName: step,
    jobArn: '',
    jobQueue: '',
    status: 'RUNNING',
    attempts: [],
    createdAt: 0,
    dependsOn: [],
    jobDefinition: '',
    parameters: {},
    container: {
      ...(env.STRAND_IMAGE ? { image: env.STRAND_IMAGE } : {}),
      command,
      environment: jobVariables,
      resourceRequirements: [],
    },
    tags: {
      ...own.tags,
      [TAG.pipeline]: pipeline,
      [TAG.step]: step,
      [TAG.sample]: sample,
      [TAG.execution]: execution,
      [TAG.store]: store,
    },
  } satisfies JobDetail;
  const staged = await stagePlan(
    detail,
    { attempt, command, environment: env },
    deployedRoot(env),
    { store: options.store, executor: 'aws-batch', localFiles: false },
  );
  return staged;
}

/** The files a deployed stage-in leaves for the tool and the stage-out. */
export function deployedPaths(root: string) {
  return {
    ...taskPaths(root),
    plan: posix.join(root, 'run', 'plan.json'),
    request: posix.join(root, 'run', 'request'),
  };
}

/**
 * Stage in of a deployed job: the plan made and kept, the inputs staged, the tool's launch
 * request written. Throws (after recording why, for the stage-out) when something is missing.
 */
export async function deployedStageIn(
  command: string[],
  options: DeployedStageOptions,
): Promise<StagePlan> {
  const env = options.env ?? process.env;
  const root = deployedRoot(env);
  const p = deployedPaths(root);
  await mkdir(p.run, { recursive: true });
  let staged: Awaited<ReturnType<typeof deployedPlan>>;
  try {
    staged = await deployedPlan(command, options);
  } catch (err) {
    // No plan: the stage-out still learns why, and the tool's wrapper runs nothing.
    await writeFile(p.stageInError, `${(err as Error).message}\n`).catch(() => undefined);
    await writeFile(p.pid, `0 0 0:: v2:stage-in\nexit 1 stage-in\n`, { flag: 'wx' }).catch(
      () => undefined,
    );
    throw err;
  }
  await writeFile(p.plan, JSON.stringify(staged.plan, null, 2) + '\n');
  const launcher = options.launcher ?? env.STRAND_STAGE_LAUNCHER;
  await stageIn(staged.plan, { ...options, ...(launcher ? { launcher } : {}) });
  const stdout = staged.environment.STRAND_STDOUT;
  const timeout = Number(env.STRAND_STAGE_TIMEOUT);
  const request = nativeRequest('deployed', {
    pidPath: p.pid,
    stopPath: p.stop,
    dirs: [p.work],
    logPath: p.log,
    ...(stdout && !stdout.startsWith('/') ? { stdoutPath: posix.join(p.work, stdout) } : {}),
    limits: `0:${Number.isInteger(timeout) && timeout > 0 ? timeout : ''}:${GRACE_SECONDS}`,
    command: staged.command,
    // The tool's environment is the job's: the container's own (PATH…) and the job's values,
    // each input's naming its staged copy; never the staging's own settings.
    env: Object.fromEntries(
      Object.entries(staged.environment).filter(([name]) => !name.startsWith('STRAND_STAGE_')),
    ),
    readOnly: [],
  });
  if (request === undefined)
    throw new DeployedStageError('a value of the job holds a NUL byte, which no tool can be given');
  await writeFile(p.request, request);
  return staged.plan;
}

/**
 * Stage out of a deployed job: publishes what the attempt left under its plan and answers the
 * exit code to end with (the tool's; 1 when it never ran or its outputs could not be published).
 */
export async function deployedStageOut(options: StageTaskOptions & { env?: NodeJS.ProcessEnv }) {
  const root = deployedRoot(options.env ?? process.env);
  const p = deployedPaths(root);
  const text = await readFile(p.plan, 'utf8').catch(() => undefined);
  if (text === undefined) {
    const why = (await readFile(p.stageInError, 'utf8').catch(() => '')).trim();
    process.stderr.write(
      `strand stage out: no plan at ${p.plan}${why ? `: the stage-in failed: ${why}` : ' (the stage-in never ran)'}\n`,
    );
    return 1;
  }
  return stageOut(parseStagePlan(text, p.plan), options);
}
