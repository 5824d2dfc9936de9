/**
 * A Strand home's settings file, `<home>/config.yaml`: which executor runs jobs by default, the
 * options of each container executor, and named profiles a run picks with `--profile`.
 *
 *   executor: podman              # the default for runs that say nothing
 *   executors:
 *     podman: { network: none, volumes: [/data/refs:/data/refs:ro] }
 *     aws-batch: { region: eu-west-1, jobQueue: strand, stageImage: …/strand-stage:0.1.0 }
 *     slurm: { partition: short, account: lab42, sbatchArgs: [--constraint=avx2] }
 *   profiles:
 *     laptop: { executor: local }
 *     hpc: { executor: slurm }
 *     containers: { executor: podman }
 *
 * Which executor a run uses, first that applies: `--executor`, the profile `--profile` names,
 * the pipeline's `executor:`, the file's `executor:`, `local`.
 *
 *   results: postgres://strand@db.lab:5432/results   # where the home's runs record results
 *   profiles:
 *     shared: { results: postgres://strand@db.lab:5432/results }
 *
 * Where results are recorded and read, first that applies: `--results`, the profile
 * `--profile` names, the file's `results:`, `<home>/results.db`.
 *
 * Where a run's outputs go, first that applies: `--store`, the profile's `store:`, `<home>/store`.
 *
 * Built-in profiles (BUILTIN_PROFILES): `local`, `containers` (podman) and `aws` (aws-batch,
 * which needs a store given and `executors.aws-batch`); a profile of the same name in the file
 * overrides them key by key.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';

const executorName = z.enum(['local', 'podman', 'docker', 'aws-batch', 'slurm']);
export type ExecutorChoice = z.infer<typeof executorName>;

const containerOptions = z.strictObject({
  network: z.string().min(1).optional(),
  volumes: z
    .array(
      z
        .string()
        .regex(/^\/[^:]*:\/[^:]*(:(ro|rw))?$/, 'expected HOST:CONTAINER or HOST:CONTAINER:ro'),
    )
    .optional(),
});
export type ContainerOptions = z.infer<typeof containerOptions>;

/**
 * Where `--executor aws-batch` submits (docs/aws-batch-executor.md). Region, endpoint and
 * credentials default to the standard AWS variables and files (AWS_REGION, AWS_ENDPOINT_URL_BATCH,
 * AWS_PROFILE, …); the job queue and the stage image have no default.
 */
const awsBatchOptions = z.strictObject({
  region: z.string().min(1).optional(),
  jobQueue: z.string().min(1).optional(),
  /** The role the job's containers run with (the store's bucket is written with it). */
  jobRoleArn: z
    .string()
    .regex(/^arn:aws[\w-]*:iam::/, 'expected an IAM role ARN')
    .optional(),
  /** The role ECS pulls images and writes logs with. */
  executionRoleArn: z
    .string()
    .regex(/^arn:aws[\w-]*:iam::/, 'expected an IAM role ARN')
    .optional(),
  logGroup: z.string().min(1).optional(),
  /** The image of the stage-in and stage-out containers: Node and Strand (`strand stage`). */
  stageImage: z.string().min(1).optional(),
  /** A Batch endpoint other than AWS's (both Batch and CloudWatch Logs when one URL). */
  endpoint: z.url().optional(),
  /** Seconds between DescribeJobs calls (default 10). */
  pollSeconds: z.number().positive().optional(),
  /** The vCPUs Strand lets run on the queue at once (default 256). */
  maxvCpus: z.number().int().positive().optional(),
});
export type AwsBatchOptions = z.infer<typeof awsBatchOptions>;

/**
 * How `--executor slurm` submits (docs/slurm.md): what every job's `sbatch` gets besides its
 * own CPUs, memory and time, and how often Strand asks `squeue`.
 */
const slurmOptions = z.strictObject({
  partition: z.string().min(1).optional(),
  account: z.string().min(1).optional(),
  qos: z.string().min(1).optional(),
  /** More sbatch options, one argv word each (`--constraint=avx2`). */
  sbatchArgs: z
    .array(z.string().regex(/^-/, 'expected an sbatch option (starting with -)'))
    .optional(),
  /** The time limit of jobs without a timeout, as sbatch reads it (`2:00:00`, `1-00:00:00`). */
  time: z
    .string()
    .regex(/^(\d+-)?\d+(:\d+){0,2}$/, 'expected a SLURM time (MINUTES, HH:MM:SS or D-HH:MM:SS)')
    .optional(),
  /** Seconds between squeue calls (default 10). */
  pollSeconds: z.number().positive().optional(),
  /** Seconds an ended job may go without its exit line showing (default 60: NFS's caches). */
  exitGraceSeconds: z.number().nonnegative().optional(),
  /** The vCPUs Strand hands to SLURM at once (default: the partition's, from sinfo). */
  maxvCpus: z.number().int().positive().optional(),
  /** The memory in MiB Strand hands to SLURM at once (default: the partition's, from sinfo). */
  memoryMiB: z.number().int().positive().optional(),
  /**
   * Run each job in its step's image with this runtime on the node (its network and volumes
   * from `executors.<runtime>`); none: the command runs on the node itself.
   */
  containers: z.enum(['podman', 'docker']).optional(),
});
export type SlurmOptions = z.infer<typeof slurmOptions>;

/** A results database: a file path (relative to the home), `sqlite://PATH` or a Postgres URL. */
const resultsLocation = z
  .string()
  .min(1)
  .refine(
    (v) =>
      !/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(v) || /^(sqlite|postgres|postgresql):\/\//i.test(v),
    'expected a file path, sqlite://PATH or postgres://USER@HOST:PORT/DATABASE',
  );

const configSchema = z.strictObject({
  executor: executorName.optional(),
  results: resultsLocation.optional(),
  executors: z
    .strictObject({
      podman: containerOptions.optional(),
      docker: containerOptions.optional(),
      'aws-batch': awsBatchOptions.optional(),
      slurm: slurmOptions.optional(),
    })
    .optional(),
  profiles: z
    .record(
      z.string(),
      z.strictObject({
        executor: executorName.optional(),
        results: resultsLocation.optional(),
        /** Where the runs' outputs go (`s3://BUCKET`, a `file://` URL or a directory). */
        store: z.string().min(1).optional(),
      }),
    )
    .optional(),
});
export type StrandConfig = z.infer<typeof configSchema>;
export type ProfileConfig = NonNullable<StrandConfig['profiles']>[string];

/**
 * The profiles every home has, which a config file's profile of the same name overrides key by
 * key: `local` (processes on this machine, the home's store and results.db), `containers` (each
 * job in its step's image under podman) and `aws` (AWS Batch, as `executors.aws-batch` says,
 * with a store the user gives: `--store s3://BUCKET` or the profile's `store:`).
 */
export const BUILTIN_PROFILES: Readonly<Record<string, ProfileConfig>> = {
  local: { executor: 'local' },
  containers: { executor: 'podman' },
  aws: { executor: 'aws-batch' },
};

/** The profile `name`: the file's, over the built-in one of that name; undefined if neither. */
export function profileOf(config: StrandConfig, name: string): ProfileConfig | undefined {
  const builtin = BUILTIN_PROFILES[name];
  const own = config.profiles?.[name];
  if (!builtin && !own) return undefined;
  return { ...builtin, ...own };
}

/** A config file that cannot be used: the message names the file, line and key. */
export class ConfigError extends Error {
  readonly code = 'STRAND_CONFIG';
}

export function configPath(home: string): string {
  return join(home, 'config.yaml');
}

/** The home's settings; none when it has no config.yaml. Throws ConfigError naming the place. */
export function readConfig(home: string): StrandConfig {
  const file = configPath(home);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(`${file}: ${(err as Error).message}`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const at = lines.linePos(e.pos[0]);
    throw new ConfigError(`${file}:${at.line}:${at.col} ${e.message.split('\n')[0]}`);
  }
  const parsed = configSchema.safeParse(doc.toJS() ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const node = doc.getIn(issue.path as (string | number)[], true) as
    { range?: [number, number, number] } | undefined;
  const at = node?.range ? lines.linePos(node.range[0]) : undefined;
  const where = at ? `${file}:${at.line}:${at.col}` : file;
  throw new ConfigError(`${where} ${issue.path.join('.') || '(top)'}: ${issue.message}`);
}

function unknownProfile(config: StrandConfig, profile: string, file: string): ConfigError {
  const names = [
    ...new Set([...Object.keys(BUILTIN_PROFILES), ...Object.keys(config.profiles ?? {})]),
  ];
  return new ConfigError(
    `--profile ${profile}: ${file} has no such profile, nor is one built in (profiles: ${names.join(', ')})`,
  );
}

/**
 * The store a run writes to and what chose it: `--store`, else the profile's `store:`, else the
 * home's (`url` undefined). The `aws` profile's jobs run on AWS and cannot reach this machine's
 * store: without a store given it is a ConfigError naming what to give, as it is when
 * `executors.aws-batch` lacks the job queue or the stage image.
 */
export function chooseStore(
  config: StrandConfig,
  choice: { flag?: string; profile?: string },
  home: string,
): { url: string | undefined; from: string } {
  const profile = choice.profile === undefined ? undefined : profileOf(config, choice.profile);
  if (choice.profile !== undefined && !profile)
    throw unknownProfile(config, choice.profile, configPath(home));
  if (profile?.executor === 'aws-batch') {
    const aws = config.executors?.['aws-batch'] ?? {};
    const missing = [
      ...(choice.flag || profile.store
        ? []
        : [`a store (--store s3://BUCKET, or profiles.${choice.profile}.store)`]),
      ...(aws.jobQueue ? [] : ['executors.aws-batch.jobQueue']),
      ...(aws.stageImage ? [] : ['executors.aws-batch.stageImage']),
    ];
    if (missing.length > 0)
      throw new ConfigError(
        `--profile ${choice.profile} runs jobs on AWS Batch, which needs ${missing.join(', ')}; set ${missing.length === 1 ? 'it' : 'them'} in ${configPath(home)} (docs/aws-batch-executor.md)`,
      );
  }
  if (choice.flag !== undefined && choice.flag !== '') return { url: choice.flag, from: '--store' };
  if (profile?.store) {
    const store = profile.store;
    const url =
      /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(store) || isAbsolute(store) ? store : join(home, store);
    return { url, from: `profile ${choice.profile}` };
  }
  return { url: undefined, from: 'the default' };
}

/**
 * Where results are recorded and read, and what chose it, by the precedence above; `url`
 * undefined is the home's `results.db`. A relative path in the file is taken from the home, one
 * on the command line from the working directory.
 */
export function chooseResults(
  config: StrandConfig,
  choice: { flag?: string; profile?: string },
  home: string,
): { url: string | undefined; from: string } {
  if (choice.flag !== undefined && choice.flag !== '')
    return { url: choice.flag, from: '--results' };
  const fromFile = (url: string): string => {
    const path = url.replace(/^sqlite:\/\//i, '');
    return /^postgres(ql)?:\/\//i.test(url) || isAbsolute(path) ? url : join(home, path);
  };
  if (choice.profile !== undefined) {
    const profile = profileOf(config, choice.profile);
    if (!profile) throw unknownProfile(config, choice.profile, configPath(home));
    if (profile.results)
      return { url: fromFile(profile.results), from: `profile ${choice.profile}` };
  }
  if (config.results) return { url: fromFile(config.results), from: configPath(home) };
  return { url: undefined, from: 'the default' };
}

/** Where the engines of a home record results when no command says (its config.yaml). */
export function configuredResults(home: string): string | undefined {
  return chooseResults(readConfig(home), {}, home).url;
}

/**
 * The executor a run uses and what chose it (for the run's headline), by the precedence above.
 */
export function chooseExecutor(
  config: StrandConfig,
  choice: { flag?: string; profile?: string; pipeline?: ExecutorChoice },
  file: string,
): { executor: ExecutorChoice; from: string } {
  if (choice.flag !== undefined) {
    const parsed = executorName.safeParse(choice.flag);
    if (!parsed.success)
      throw new ConfigError(
        `--executor ${choice.flag}: use one of ${executorName.options.join(', ')}`,
      );
    return { executor: parsed.data, from: '--executor' };
  }
  if (choice.profile !== undefined) {
    const profile = profileOf(config, choice.profile);
    if (!profile) throw unknownProfile(config, choice.profile, file);
    if (profile.executor) return { executor: profile.executor, from: `profile ${choice.profile}` };
  }
  if (choice.pipeline) return { executor: choice.pipeline, from: 'the pipeline' };
  if (config.executor) return { executor: config.executor, from: file };
  return { executor: 'local', from: 'the default' };
}
