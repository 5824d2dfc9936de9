/**
 * An attempt as SLURM is asked to run it: the `sbatch` options (from the attempt's vCPUs,
 * memory and timeout and the site's settings), the batch script, and the job's name. Pure: the
 * same attempt always gives the same text.
 *
 * The batch script holds no value of the job's: it execs Strand's static launcher
 * (`strand-launcher run REQUEST`) on the node, and the launcher reads the job's argv and
 * environment from the request file, NUL-separated, as the local executor hands them to its
 * launcher. No value is ever shell text, and none (a secret) is on a command line or in SLURM's
 * copy of the script.
 */
import { createHash } from 'node:crypto';

/** What the site decides about every job (the `slurm` section of config.yaml). */
export interface SbatchSettings {
  partition?: string;
  account?: string;
  qos?: string;
  /** More `sbatch` options, as argv words (`--constraint=avx2`, `--exclusive`). */
  extraArgs?: string[];
  /**
   * The time limit of jobs without a timeout of their own, as sbatch reads it (`2:00:00`,
   * `1-00:00:00`); none: the partition's default.
   */
  defaultTime?: string;
}

/** One attempt, as far as `sbatch` is concerned. */
export interface SbatchJob {
  name: string;
  vcpus: number;
  memoryMiB: number;
  timeoutSeconds?: number;
  /** Seconds between SIGTERM and SIGKILL when the wrapper stops the command. */
  graceSeconds: number;
  /** The file SLURM writes the batch script's own output to (the attempt's log). */
  output: string;
  /** The directory SLURM starts the batch script in. */
  chdir: string;
  script: string;
}

/**
 * A SLURM job name for an attempt: readable in `squeue` (the job id and attempt), unique to its
 * attempt directory (two homes may run the same job ids), and what a restarted Strand looks the
 * job up by (`squeue --name`) when it died between `sbatch` and recording the job's id.
 */
export function slurmJobName(jobId: string, attempt: number, ref: string): string {
  const safe = jobId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);
  const hash = createHash('sha256').update(ref).digest('hex').slice(0, 10);
  return `strand.${safe}.${attempt}.${hash}`;
}

/**
 * A time limit in seconds as `sbatch --time` reads it, D-HH:MM:SS, rounded up to a whole minute
 * (SLURM's granularity).
 */
export function slurmTime(seconds: number): string {
  const minutes = Math.max(1, Math.ceil(seconds / 60));
  const d = Math.floor(minutes / 1440);
  const h = Math.floor((minutes % 1440) / 60);
  const m = minutes % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d}-${two(h)}:${two(m)}:00`;
}

/**
 * Slack SLURM's time limit gives beyond the attempt's timeout: the wrapper enforces the timeout
 * itself (SIGTERM, SIGKILL after the grace period) and records it, which needs the job to live a
 * little past it; SLURM's limit only catches a wrapper that could not.
 */
const TIME_SLACK_SECONDS = 60;

/**
 * The `sbatch` argv for an attempt (the script's path last). Whole CPUs (SLURM allocates no
 * fraction of one; 0.25 vCPU is 1), memory in MiB, the timeout plus the grace period and some
 * slack as the time limit, never requeued (a requeued job would run its attempt a second time:
 * a node failure fails the attempt, and the Batch's retry strategy decides), output appended to
 * the attempt's log. The batch script gets sbatch's environment (`--export=ALL`, which
 * sbatchEnvironment keeps small): NONE, or a list of variables, makes slurmd load the user's
 * login environment for every job (a login shell: 0.1 to 1.1 s a job on the test machine), and
 * the launcher replaces it with the job's own anyway.
 */
export function sbatchArguments(job: SbatchJob, settings: SbatchSettings = {}): string[] {
  const args = [
    '--parsable',
    `--job-name=${job.name}`,
    `--output=${job.output}`,
    '--open-mode=append',
    `--chdir=${job.chdir}`,
    '--nodes=1',
    '--ntasks=1',
    `--cpus-per-task=${Math.max(1, Math.ceil(job.vcpus - 1e-9))}`,
    `--mem=${Math.max(1, Math.ceil(job.memoryMiB))}M`,
    '--no-requeue',
    '--export=ALL',
  ];
  if (job.timeoutSeconds !== undefined && job.timeoutSeconds > 0)
    args.push(`--time=${slurmTime(job.timeoutSeconds + job.graceSeconds + TIME_SLACK_SECONDS)}`);
  else if (settings.defaultTime) args.push(`--time=${settings.defaultTime}`);
  if (settings.partition) args.push(`--partition=${settings.partition}`);
  if (settings.account) args.push(`--account=${settings.account}`);
  if (settings.qos) args.push(`--qos=${settings.qos}`);
  args.push(...(settings.extraArgs ?? []), job.script);
  return args;
}

/** What sbatch and the batch script need of Strand's environment (SLURM's own settings). */
const SBATCH_VARIABLES = /^(PATH|HOME|USER|LOGNAME|LANG|LC_\w+|TZ|TMPDIR|SLURM_\w+|SBATCH_\w+)$/;

/**
 * The environment `sbatch` runs with: what it and the batch script need (PATH, HOME, the user,
 * the locale, SLURM's and sbatch's own settings), nothing else of Strand's (a credential in it
 * would be copied into SLURM's job record). The job's own environment reaches it through the
 * request file.
 */
export function sbatchEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(env))
    if (value !== undefined && SBATCH_VARIABLES.test(name)) kept[name] = value;
  return kept;
}

/** A value as one word of sh, whatever it holds. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The batch script: the launcher, run in the foreground from its request file, so that the
 * job lasts as long as the attempt and ends with the command's exit status. Only Strand's own
 * paths appear in it, each quoted as one word.
 */
export function batchScript(options: {
  launcher: string;
  request: string;
  jobId: string;
  attempt: number;
}): string {
  return [
    '#!/bin/sh',
    `# Strand job ${options.jobId.replace(/[\r\n]/g, ' ')}, attempt ${options.attempt}: its argv and`,
    '# environment are in the request file, read by the launcher (never by this shell).',
    `exec ${shellQuote(options.launcher)} run ${shellQuote(options.request)}`,
    '',
  ].join('\n');
}
