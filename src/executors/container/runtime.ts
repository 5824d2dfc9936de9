/**
 * The container runtime a container executor drives: podman, or docker when a daemon answers.
 * Both are driven through their command line with argv (never a shell string).
 *
 * Some machines need options podman does not pick itself, and Strand detects them rather than
 * hard-coding them:
 * - rlimits: a container's default open-files limit (1,048,576 for rootful podman) is set by the
 *   OCI runtime, which fails ("error setting rlimit type 7: operation not permitted") where the
 *   calling process's hard limit is lower and it may not raise it. Strand then passes the
 *   caller's own limits (`--ulimit nofile=H:H --ulimit nproc=N:N`, N no more than the kernel's pid_max).
 * - the OCI runtime: crun fails on a hybrid cgroup layout (cgroup v1 controllers with a cgroup2
 *   mount beside them); where podman's runtime is crun on cgroup v1 and runc is installed, Strand
 *   passes `--runtime runc`.
 * `notes` says what was chosen and why, for `strand images base` and the executor's first use.
 */
import { execFile, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { readText } from '../../host.js';

export const RUNTIMES = ['podman', 'docker'] as const;
export type RuntimeName = (typeof RUNTIMES)[number];

export interface ContainerRuntime {
  name: RuntimeName;
  /** The runtime's program (an absolute path). */
  program: string;
  /** Options every `run` (and `build`) needs on this machine. */
  runOptions: string[];
  /** Why each of `runOptions` is there, one sentence each. */
  notes: string[];
}

/** No usable container runtime: the message says what is missing and how to get it. */
export class ContainerRuntimeError extends Error {
  readonly code = 'CONTAINER_RUNTIME';
}

/** The hard limit this process has for a resource of /proc/self/limits, or undefined. */
function hardLimit(label: string): number | undefined {
  const line = readText('/proc/self/limits')
    ?.split('\n')
    .find((l) => l.startsWith(label));
  const hard = line?.slice(26).trim().split(/\s+/)[1];
  return hard === undefined || hard === 'unlimited' ? undefined : Number(hard);
}

/** The program called `name` on PATH, or undefined. */
export function which(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Rootful podman's default open-files limit for a container (see containers.conf). */
const PODMAN_DEFAULT_NOFILE = 1_048_576;
/** Rootful podman's default process limit for a container (the kernel's largest pid_max). */
const PODMAN_DEFAULT_NPROC = 4_194_304;

const INSTALL: Record<RuntimeName, string> = {
  podman: 'apt-get install podman runc',
  docker: 'install Docker Engine and start its daemon',
};

const detected = new Map<RuntimeName, ContainerRuntime>();

/**
 * Finds and checks the runtime called `name` (once per process): its program, that it answers,
 * and the options this machine needs. Throws ContainerRuntimeError naming the fix.
 */
export function detectRuntime(name: RuntimeName): ContainerRuntime {
  const known = detected.get(name);
  if (known) return known;
  const program = which(name);
  if (!program)
    throw new ContainerRuntimeError(
      `${name} is not installed (no ${name} on PATH): ${INSTALL[name]}, or run with --executor local`,
    );
  const info = spawnSync(program, ['info', '--format', 'json'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (info.status !== 0) {
    const why = (info.stderr || info.error?.message || `exit ${info.status}`).trim().split('\n')[0];
    throw new ContainerRuntimeError(
      `${name} does not answer (${program} info: ${why})${
        name === 'docker' ? ': is the Docker daemon running?' : ''
      }`,
    );
  }
  const runOptions: string[] = [];
  const notes: string[] = [];
  if (name === 'podman') {
    let parsed: {
      host?: { ociRuntime?: { name?: string }; cgroupVersion?: string };
    } = {};
    try {
      parsed = JSON.parse(info.stdout) as typeof parsed;
    } catch {
      // an answer we cannot read: no runtime options
    }
    const oci = parsed.host?.ociRuntime?.name;
    if (oci === 'crun' && parsed.host?.cgroupVersion === 'v1' && which('runc')) {
      runOptions.push('--runtime', 'runc');
      notes.push('crun fails on cgroup v1 (a hybrid layout): containers run with runc');
    }
    // The OCI runtime may not raise a limit above the caller's, and the kernel takes no process
    // limit above pid_max: a container gets the caller's own limits.
    const nofile = hardLimit('Max open files');
    const pidMax = Number(readText('/proc/sys/kernel/pid_max') ?? NaN);
    const nprocHard = hardLimit('Max processes');
    const nproc = Math.min(nprocHard ?? Infinity, Number.isFinite(pidMax) ? pidMax : Infinity);
    if (nofile !== undefined && nofile < PODMAN_DEFAULT_NOFILE) {
      runOptions.push('--ulimit', `nofile=${nofile}:${nofile}`);
      notes.push(
        `this process may open at most ${nofile} files, fewer than podman's default for a container (${PODMAN_DEFAULT_NOFILE}): containers get this limit`,
      );
    }
    if (Number.isFinite(nproc) && nproc < PODMAN_DEFAULT_NPROC) {
      runOptions.push('--ulimit', `nproc=${nproc}:${nproc}`);
      notes.push(
        `this process may start at most ${nproc} processes (its limit, or the kernel's pid_max), fewer than podman's default for a container: containers get this limit`,
      );
    }
  }
  const runtime: ContainerRuntime = { name, program, runOptions, notes };
  detected.set(name, runtime);
  return runtime;
}

/** Runs the runtime with argv; its output and exit status. */
export function runtimeSync(
  runtime: ContainerRuntime,
  args: string[],
  options: { input?: string | Buffer; timeoutMs?: number } = {},
): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(runtime.program, args, {
    encoding: 'utf8',
    input: options.input,
    timeout: options.timeoutMs ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return {
    status: r.status ?? 1,
    stdout: r.stdout ?? '',
    stderr: (r.stderr ?? '') + (r.error ? r.error.message : ''),
  };
}

/** Whether the runtime has the image `ref` locally. */
export function hasImage(runtime: ContainerRuntime, ref: string): boolean {
  return runtimeSync(runtime, ['image', 'inspect', '--format', '{{.Id}}', ref]).status === 0;
}

/**
 * An image's entrypoint as `program` (podman or docker) knows it, which a job's command follows
 * (as on AWS Batch); none when the image is not there or says nothing: a missing image fails at
 * the run, with the runtime's own reason.
 */
export function imageEntrypoint(
  program: string,
  image: string,
  timeoutMs?: number,
): Promise<string[]> {
  return new Promise((resolve) => {
    execFile(
      program,
      ['image', 'inspect', '--format', '{{json .Config.Entrypoint}}', image],
      timeoutMs === undefined ? {} : { timeout: timeoutMs },
      (err, out) => {
        if (err) return resolve([]);
        try {
          const parsed = JSON.parse(out.trim()) as unknown;
          resolve(Array.isArray(parsed) ? parsed.map(String) : []);
        } catch {
          resolve([]);
        }
      },
    );
  });
}
