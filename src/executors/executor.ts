/**
 * The contract every compute backend implements (local processes, containers; SLURM and AWS
 * Batch later). Placement is decided by the Batch scheduler, not here.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { readText } from '../host.js';

/** The reasons AWS Batch gives, which every backend gives alike. */
export const OOM_REASON = 'OutOfMemoryError: Container killed due to memory usage';
export const TIMEOUT_REASON = 'Job attempt duration exceeded timeout';

/** A path relative to the working directory and inside it (no `/` first, no `..`). */
const inside = (path: string) =>
  path !== '' && !path.startsWith('/') && !path.split('/').includes('..');

/**
 * The directories an attempt needs (its working directory first, then the output directories a
 * pipeline step declared in STRAND_OUTPUT_DIRS) and the file its standard output goes to when the
 * step sends it to a file (STRAND_STDOUT); both relative to the working directory, inside it.
 */
export function outputFiles(
  work: string,
  env: Record<string, string>,
): { dirs: string[]; stdoutPath?: string } {
  const dirs = [work];
  for (const d of (env.STRAND_OUTPUT_DIRS ?? '').split(':'))
    if (inside(d)) dirs.push(join(work, d));
  const stdout = env.STRAND_STDOUT;
  return stdout !== undefined && inside(stdout)
    ? { dirs, stdoutPath: join(work, stdout) }
    : { dirs };
}

/** One attempt of one job, as the scheduler hands it to a backend. */
export interface JobAttemptSpec {
  jobId: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** argv: the command is never passed through a shell. */
  command: string[];
  environment: Record<string, string>;
  vcpus: number;
  memoryMiB: number;
  timeoutSeconds?: number;
  image?: string;
  /**
   * Absolute paths the attempt must not change (its inputs: regular files and directories). A
   * backend mounts them read-only where it can; where it cannot, it records each regular file
   * before the start and fails the attempt, naming the file, if it changed by the end.
   */
  readOnlyPaths?: string[];
}

/** What a backend needs to find an attempt again, even from another process. JSON-serialisable. */
export interface JobHandle {
  jobId: string;
  attempt: number;
  /** Backend-specific location (for local: the attempt directory). */
  ref: string;
  logPath: string;
}

export type AttemptState =
  | { state: 'RUNNING' }
  | {
      state: 'SUCCEEDED' | 'FAILED';
      exitCode?: number;
      reason?: string;
      startedAt?: number;
      stoppedAt?: number;
      /** User and system CPU time of all of the attempt's processes, when known. */
      cpuSeconds?: number;
      /** The peak memory (MiB) of the attempt's processes together, when known (see launcher.c). */
      peakMemoryMiB?: number;
    };

/** What an exit line says (see parseExitLine). */
export interface ExitLineInfo {
  code: string;
  cause?: string;
  cpuSeconds?: number;
  peakMemoryMiB?: number;
}

/**
 * The wrapper's exit line after `exit `: "CODE[ CAUSE][ cpu=SECONDS][ mem=MIB]" (CAUSE: oom,
 * timeout, terminated; SECONDS: the CPU time of all of the attempt's processes; MIB: their peak
 * memory together). Fields it does not know (a later build's) are passed over.
 */
export function parseExitLine(text: string): ExitLineInfo {
  const [code, ...rest] = text.trim().split(' ');
  const out: ExitLineInfo = { code };
  for (const token of rest) {
    const eq = token.indexOf('=');
    if (eq < 0) {
      if (token !== '' && out.cause === undefined) out.cause = token;
      continue;
    }
    const n = Number(token.slice(eq + 1));
    if (!Number.isFinite(n) || n < 0) continue;
    const key = token.slice(0, eq);
    if (key === 'cpu') out.cpuSeconds = n;
    else if (key === 'mem') out.peakMemoryMiB = n;
  }
  return out;
}

/**
 * The exit the wrapper appended to an attempt's pid file ("exit CODE[ CAUSE][ cpu=S][ mem=M]"),
 * once it has, with the attempt's start and end from the file's times; undefined before.
 */
export function recordedExit(pidPath: string):
  | {
      code: number;
      cause?: string;
      cpuSeconds?: number;
      peakMemoryMiB?: number;
      startedAt: number;
      stoppedAt: number;
    }
  | undefined {
  const text = readText(pidPath);
  const line = text?.split('\n')[1];
  if (!text?.endsWith('\n') || !line?.startsWith('exit ')) return undefined;
  const { code, cause, cpuSeconds, peakMemoryMiB } = parseExitLine(line.slice(5));
  const st = statSync(pidPath);
  return {
    code: Number(code),
    ...(cause ? { cause } : {}),
    ...(cpuSeconds === undefined ? {} : { cpuSeconds }),
    ...(peakMemoryMiB === undefined ? {} : { peakMemoryMiB }),
    startedAt: st.birthtimeMs || st.ctimeMs,
    stoppedAt: st.mtimeMs,
  };
}

export interface Executor {
  readonly name: string;
  /**
   * Jobs run apart from this machine's environment (in their image): the Batch gives them no
   * PATH or HOME of its own, only what their job definition says.
   */
  readonly isolated?: boolean;
  /** Starts the attempt; idempotent: submitting the same attempt again returns its handle and never runs it twice. */
  submit(spec: JobAttemptSpec): Promise<JobHandle>;
  /** Current state of an attempt; once it has ended with an exit code, none of its processes remains. */
  poll(handle: JobHandle): Promise<AttemptState>;
  /**
   * Asks the attempt to stop (SIGTERM, then SIGKILL after the grace period), even if the
   * calling process ends before the grace period does.
   */
  kill(handle: JobHandle, reason: string): Promise<void>;
  /** After an engine restart: the state of an attempt started by an earlier process. */
  reattach(handle: JobHandle): Promise<AttemptState>;
  /**
   * The attempt's working directory on this machine, for executors whose jobs run here (their
   * outputs are staged out from it when the attempt ends); undefined for one that stages out
   * where the job ran.
   */
  workDir?(handle: JobHandle): string | undefined;
  /**
   * Optional: the vCPUs and memory the Batch hands a backend that places jobs itself (a SLURM
   * partition's nodes) at once, as its compute environment's size; absent: this machine's.
   */
  capacity?(): { vcpus: number; memoryMiB: number } | undefined;
  /**
   * Optional: the attempt's log (stdout and stderr) for an executor whose logs are not a file on
   * this machine (AWS Batch: CloudWatch Logs); undefined when there is none yet.
   */
  logs?(handle: JobHandle): Promise<string | undefined>;
  /** Optional: called when an attempt this process started may have ended (so it can poll now). */
  onSettled?(listener: (handle: JobHandle) => void): void;
  /** Optional: releases helpers of this process (jobs keep running). */
  close?(): void;
}

/**
 * The entries of an attempt in its work root, for the executors that run jobs on this machine
 * (local, container): `{job}.{n}/` and its `{job}.{n}.*` files (log, pid file, …), or an earlier
 * build's `{job}/attempt-{n}/`. `logPath` is the attempt's log (JobHandle.logPath).
 */
export function attemptEntries(logPath: string): string[] {
  if (/[/\\]attempt-\d+[/\\]log\.txt$/.test(logPath)) return [dirname(logPath)];
  if (!logPath.endsWith('.log')) return [];
  const ref = logPath.slice(0, -4);
  const base = basename(ref);
  let names: string[];
  try {
    names = readdirSync(dirname(ref));
  } catch {
    return [];
  }
  return names
    .filter(
      (n) => n === base || (n.startsWith(`${base}.`) && !/^\d/.test(n.slice(base.length + 1))),
    )
    .map((n) => join(dirname(ref), n));
}
