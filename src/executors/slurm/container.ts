/**
 * A SLURM job in its step's image: the command the node's launcher runs instead of the step's
 * own, `podman run` (or `docker run`) in the foreground, so that the SLURM job lasts as long as
 * the container. Inside, as for the container executor, the first process is Strand's static
 * launcher in its `wrap` mode (mounted read-only), which runs the step's command as argv, enforces
 * the timeout and a terminate, and records the exit line (with `oom` when the container's cgroup
 * saw its OOM killer) in the attempt's `{job}.{n}.run/pid`. Pure: argv from an attempt.
 */
import { createHash } from 'node:crypto';
import type { ContainerRuntime } from '../container/runtime.js';

/** Where the launcher is mounted in every container (as for the container executor). */
export const CONTAINER_LAUNCHER = '/.strand/strand-launcher';

/**
 * Variables that steer the runtime's own programs (podman finds conmon and the OCI runtime on
 * PATH): a job's value for one of these reaches the container as `--env NAME=value`; every
 * other variable as `--env NAME`, its value taken from the runtime's environment (the request's),
 * so no value (a secret) is on a command line.
 */
export const RUNTIME_VARIABLES =
  /^(PATH|HOME|TMPDIR|USER|LOGNAME|SHELL|XDG_\w+|CONTAINERS_\w+|LD_\w+)$/;

export interface ContainerJob {
  jobId: string;
  attempt: number;
  /** The attempt's directory (its working directory, mounted at the same path). */
  ref: string;
  image: string;
  /** The image's entrypoint, which the command follows (as on AWS Batch). */
  entrypoint: string[];
  command: string[];
  environment: Record<string, string>;
  vcpus: number;
  memoryMiB: number;
  timeoutSeconds?: number;
  graceSeconds: number;
  /** Where the standard output goes, when not to the log (relative paths resolved already). */
  stdoutPath?: string;
  /** The attempt's inputs, mounted read-only at their own paths. */
  readOnlyPaths: string[];
}

export interface ContainerSettings {
  runtime: ContainerRuntime;
  /** The launcher on the shared file system, mounted at CONTAINER_LAUNCHER. */
  launcher: string;
  /** The network a job's container joins (default `none`). */
  network?: string;
  /** More mounts for every job, `HOST:CONTAINER[:ro]`. */
  volumes?: string[];
}

/** The container's name: the runtime's allowed characters, bounded, unique to the attempt. */
export function containerName(jobId: string, attempt: number, ref: string): string {
  const safe = jobId.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64);
  const hash = createHash('sha256').update(ref).digest('hex').slice(0, 10);
  return `strand-${safe}-${attempt}-${hash}`;
}

/**
 * The runtime's argv (its program first) that runs the attempt in its image, and the variables
 * the runtime's own environment must hold for it (the job's, passed by name).
 */
export function containerCommand(
  job: ContainerJob,
  settings: ContainerSettings,
): { argv: string[]; environment: Record<string, string> } {
  const run = `${job.ref}.run`;
  const log = `${job.ref}.log`;
  const args = [
    settings.runtime.program,
    'run',
    '--rm',
    '--name',
    containerName(job.jobId, job.attempt, job.ref),
    '--label',
    `strand.job=${job.jobId}`,
    '--label',
    `strand.attempt=${job.attempt}`,
    '--label',
    `strand.ref=${job.ref}`,
    '--pull',
    'never',
    ...settings.runtime.runOptions,
    '--network',
    settings.network ?? 'none',
    '--cpus',
    String(job.vcpus),
    '--memory',
    `${job.memoryMiB}m`,
    '--memory-swap',
    `${job.memoryMiB}m`,
    // A rootless runtime maps the container's root to the job's user, whose files they stay.
    '--user',
    '0:0',
    '--entrypoint',
    CONTAINER_LAUNCHER,
    '--workdir',
    job.ref,
    '--volume',
    `${settings.launcher}:${CONTAINER_LAUNCHER}:ro`,
    '--volume',
    `${job.ref}:${job.ref}`,
    '--volume',
    `${log}:${log}`,
    '--volume',
    `${run}:${run}`,
  ];
  for (const v of settings.volumes ?? []) args.push('--volume', v);
  for (const p of job.readOnlyPaths) args.push('--volume', `${p}:${p}:ro`);
  // The job's SLURM variables (its id, its CPUs), from the node's launcher: podman takes a
  // pattern; docker has no way but naming each, which is not known here.
  if (settings.runtime.name === 'podman') args.push('--env', 'SLURM_*');
  const environment: Record<string, string> = {};
  for (const [name, value] of Object.entries(job.environment)) {
    if (RUNTIME_VARIABLES.test(name)) args.push('--env', `${name}=${value}`);
    else {
      args.push('--env', name);
      environment[name] = value;
    }
  }
  args.push(
    job.image,
    'wrap',
    `${run}/pid`,
    `${run}/stop`,
    log,
    job.stdoutPath ?? '',
    // The container's cgroup enforces the memory limit; the wrapper, the timeout.
    `0:${job.timeoutSeconds ?? ''}:${job.graceSeconds}`,
    '--',
    ...job.entrypoint,
    ...job.command,
  );
  return { argv: args, environment };
}
