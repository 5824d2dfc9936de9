/**
 * The local executor. Each attempt runs in its own process group under a tiny wrapper that only
 * (1) claims the attempt by creating its pid file exclusively, so it never runs twice (the file
 * records the wrapper's pid, its start time and the attempt's limits), (2) runs the command as
 * argv, looked up on PATH (user values never become shell text) and (3) appends the exit code to
 * that file. The wrapper survives the engine, so a restarted engine re-attaches through the pid
 * file alone. Where the native launcher was built (launcher.c, a static program, by
 * `npm run build`), each wrapper is a child it forks; else a Node launcher spawns the same steps
 * as an `sh` script. The native way saves the exec of a shell and a spawn from a Node process:
 * about 1.7 ms of CPU per job, measured on a 2-core virtual machine.
 *
 * An attempt is three entries in the work root: `{job}.{n}/` (the command's working
 * directory), `{job}.{n}.log` (its output) and `{job}.{n}.pid`. Creating files and directories
 * is most of what an attempt costs the file system, and on a busy disk the part that varies most
 * (on one virtual machine, 0.006 to 0.8 ms of kernel time each), so an attempt makes no more
 * than it needs. Attempts started by an earlier Strand keep their layout,
 * `{job}/attempt-{n}/{work/,log.txt,pid}`, and are found there.
 *
 * While a process of Strand watches an attempt, it enforces the memory limit (the RSS of the
 * attempt's processes; over it: SIGKILL, exit 137, reason OutOfMemoryError as AWS Batch reports)
 * and the timeout (SIGTERM, then SIGKILL after a grace period). A restarted engine resumes that
 * supervision when it re-attaches.
 */
import {
  accessSync,
  constants,
  existsSync,
  readFileSync,
  readdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AttemptState, Executor, JobAttemptSpec, JobHandle } from '../executor.js';
import { NativeLauncher, NodeLauncher, type Launcher } from './launcher.js';

/**
 * The `sh` wrapper: $1 is the pid file, $2 the file whose existence means "terminated before the
 * start", $3 the limits to record ("memoryMiB:timeoutSeconds", the timeout empty when there is
 * none), the rest is the command's argv, run by `exec` in a subshell: its first word is always a
 * program found on PATH, as in a container, never a built-in of the shell (dash's `echo` differs
 * from coreutils') or one of the wrapper's functions. Only shell built-ins run besides the
 * command (no extra processes). The pid file holds "pid starttime limits", then, once the
 * command has ended, "exit CODE"; a line counts once it ends in a newline.
 */
const WRAPPER = `pidfile=$1; stop=$2; limits=$3; shift 3
set -C
record() { read -r line < /proc/$$/stat; set -- $line; printf '%s %s %s\\n' "$$" "\${22}" "$limits" > "$pidfile"; }
record 2>/dev/null || exit 0
if [ -e "$stop" ]; then printf 'exit 143\\n' >> "$pidfile"; exit 0; fi
(exec "$@")
code=$?
printf 'exit %s\\n' "$code" >> "$pidfile"`;

/** The native launcher built from launcher.c (the same place from src/ and from dist/). */
const NATIVE_LAUNCHER = fileURLToPath(new URL('../../../dist/strand-launcher', import.meta.url));

/** The native launcher's path when it was built and can be run, else undefined. */
export function nativeLauncher(): string | undefined {
  try {
    accessSync(NATIVE_LAUNCHER, constants.X_OK);
    return NATIVE_LAUNCHER;
  } catch {
    return undefined;
  }
}

/** The files of one attempt. `ref` (a job handle's) is the attempt's directory. */
interface AttemptFiles {
  /** The command's working directory. */
  work: string;
  log: string;
  pid: string;
  /** Why Strand stopped it (memory, timeout), written before the signal. */
  reason: string;
  /** The exit code to report instead of the wrapper's (137 for a memory kill). */
  forcedExit: string;
  /** Written by a terminate: the reason, and a wrapper that has not started will not start. */
  terminate: string;
}

const LEGACY = /[/\\]attempt-\d+$/;

function attemptFiles(ref: string): AttemptFiles {
  if (LEGACY.test(ref))
    return {
      work: join(ref, 'work'),
      log: join(ref, 'log.txt'),
      pid: join(ref, 'pid'),
      reason: join(ref, 'reason'),
      forcedExit: join(ref, 'forced-exit'),
      terminate: join(ref, 'terminate-reason'),
    };
  return {
    work: ref,
    log: `${ref}.log`,
    pid: `${ref}.pid`,
    reason: `${ref}.reason`,
    forcedExit: `${ref}.forced-exit`,
    terminate: `${ref}.terminate-reason`,
  };
}

/** Whether `root` holds a job directory of the earlier layout (a name without `.{n}`). */
function hasLegacyAttempts(root: string): boolean {
  try {
    return readdirSync(root, { withFileTypes: true }).some(
      (e) => e.isDirectory() && !/\.\d+$/.test(e.name),
    );
  } catch {
    return false; // no work root yet
  }
}

/** The working directory of the attempt whose log this is (for outputs and results). */
export function workDirOfLog(logPath: string): string {
  return attemptFiles(logPath.endsWith('.log') ? logPath.slice(0, -4) : dirname(logPath)).work;
}

const OOM_REASON = 'OutOfMemoryError: Container killed due to memory usage';
const TIMEOUT_REASON = 'Job attempt duration exceeded timeout';
const PAGE = 4096;

export interface LocalExecutorOptions {
  /** Where attempts get their directories: {workRoot}/{jobId}.{n}/, log and pid file beside. */
  workRoot: string;
  /** Seconds between SIGTERM and SIGKILL (default 10). */
  graceSeconds?: number;
  /**
   * How long a launched attempt may go without its wrapper recording its pid before it counts as
   * lost (default 30 s).
   */
  startGraceMs?: number;
  /**
   * `node`: the Node launcher and `sh` wrapper even when the native launcher was built; `native`:
   * the native one, or an error if it was not built (default: native when built).
   */
  launcher?: 'native' | 'node';
}

interface WrapperInfo {
  pid: number;
  startTime?: string;
  startedAt: number;
  memoryMiB?: number;
  timeoutSeconds?: number;
  /** Set once the command has ended. */
  exitCode?: string;
  stoppedAt?: number;
}

let bootTimeMs: number | undefined;
/** When the machine booted (ms since the epoch), from /proc/stat. */
function bootTime(): number {
  bootTimeMs ??= Number(/^btime (\d+)$/m.exec(readText('/proc/stat') ?? '')?.[1] ?? 0) * 1000;
  return bootTimeMs;
}

/** What the winning wrapper recorded (the pid file): its pid, start time, limits, and exit. */
function wrapperInfo(ref: string): WrapperInfo | undefined {
  const path = attemptFiles(ref).pid;
  const text = readText(path);
  if (!text?.includes('\n')) return undefined;
  const [first, second] = text.split('\n');
  const [pid, startTime, limits = ''] = first.split(' ');
  const [memory, timeout] = limits.split(':');
  const stat = statSync(path);
  // The file is created at the start (its birth time; else the start time in clock ticks).
  const startedAt = stat.birthtimeMs || bootTime() + Number(startTime) * 10;
  const info: WrapperInfo = { pid: Number(pid), startTime, startedAt };
  if (memory) info.memoryMiB = Number(memory);
  if (timeout) info.timeoutSeconds = Number(timeout);
  const exit = second?.startsWith('exit ') && text.endsWith('\n') ? second.slice(5) : undefined;
  // Attempts started by an earlier Strand (no limits in the pid file) recorded the exit in a
  // file of its own.
  const legacy = exit === undefined && !limits ? readText(join(ref, 'exit.code')) : undefined;
  if (exit !== undefined) {
    info.exitCode = exit;
    info.stoppedAt = stat.mtimeMs;
  } else if (legacy?.endsWith('\n')) {
    info.exitCode = legacy.trim();
    info.stoppedAt = statSync(join(ref, 'exit.code')).mtimeMs;
  }
  return info;
}

interface Watched {
  handle: JobHandle;
  pid: number;
  memoryBytes: number;
  /** When this process began to watch it. */
  since: number;
  deadline?: number;
  killAt?: number;
}

function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

function startTimeOf(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The processes of each process group, with their RSS. */
function processGroups(): Map<number, { pid: number; rss: number }[]> {
  const groups = new Map<number, { pid: number; rss: number }[]>();
  for (const entry of readdirSync('/proc')) {
    if (entry.charCodeAt(0) > 57) continue; // not a pid
    const f = statFields(entry);
    if (!f) continue;
    const pgid = Number(f[2]);
    const list = groups.get(pgid) ?? [];
    list.push({ pid: Number(entry), rss: Number(f[21]) * PAGE });
    groups.set(pgid, list);
  }
  return groups;
}

function mtimeOf(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/** A path relative to the working directory and inside it (no `/` first, no `..`). */
const inside = (path: string) =>
  path !== '' && !path.startsWith('/') && !path.split('/').includes('..');

/**
 * The directories an attempt needs (its working directory first, then the output directories a
 * pipeline step declared in STRAND_OUTPUT_DIRS) and the file its standard output goes to when the
 * step sends it to a file (STRAND_STDOUT); both relative to the working directory, inside it.
 */
function outputFiles(
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

function imageNote(image: string | undefined): string | undefined {
  return image
    ? `[strand] local executor: image ${image} is not used; the command runs on the host\n`
    : undefined;
}

export class LocalExecutor implements Executor {
  readonly name = 'local';
  private readonly listeners: ((handle: JobHandle) => void)[] = [];
  private readonly watched = new Map<string, Watched>();
  private monitor: NodeJS.Timeout | undefined;
  /**
   * Launchers, one per core up to two: a Node launcher waits in each spawn until the child has
   * exec'd, so two of them start two jobs at once; the native one answers at its fork, and two of
   * them spread those forks over two cores (two is what was measured).
   */
  private readonly launchers: Launcher[];
  /** Launches take turns among the launchers. */
  private turn = 0;
  private nextLauncher(): Launcher {
    this.turn = (this.turn + 1) % this.launchers.length;
    return this.launchers[this.turn];
  }
  /** Attempts whose wrapper this process spawned (not found started by an earlier one). */
  private readonly startedHere = new Set<string>();
  /** Attempts this process stopped or terminated (their reason files are worth a look). */
  private readonly stopped = new Set<string>();
  /** When this process asked for each attempt's start (an earlier attempt's log may be older). */
  private readonly launchedAt = new Map<string, number>();

  constructor(private readonly options: LocalExecutorOptions) {
    const native = options.launcher === 'node' ? undefined : nativeLauncher();
    if (options.launcher === 'native' && !native)
      throw new Error(`the native job launcher ${NATIVE_LAUNCHER} is missing: run npm run build`);
    this.launchers = Array.from({ length: Math.max(1, Math.min(2, availableParallelism())) }, () =>
      native
        ? new NativeLauncher(native)
        : new NodeLauncher(['/bin/sh', '-c', WRAPPER, 'strand-job']),
    );
  }

  onSettled(listener: (handle: JobHandle) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Whether the work root holds attempts of an earlier Strand (a directory per job, named by the
   * job id alone, no `.{n}`): looked up once, not for every attempt.
   */
  private legacyRoot: boolean | undefined;

  /** The attempt's directory; an attempt an earlier Strand started keeps its own. */
  private attemptDir(jobId: string, attempt: number): string {
    const safe = jobId.replace(/[^A-Za-z0-9._-]/g, '_');
    this.legacyRoot ??= hasLegacyAttempts(this.options.workRoot);
    const legacy = join(this.options.workRoot, safe, `attempt-${attempt}`);
    return this.legacyRoot && existsSync(join(legacy, 'pid'))
      ? legacy
      : join(this.options.workRoot, `${safe}.${attempt}`);
  }

  async submit(spec: JobAttemptSpec): Promise<JobHandle> {
    const dir = this.attemptDir(spec.jobId, spec.attempt);
    const files = attemptFiles(dir);
    const handle: JobHandle = {
      jobId: spec.jobId,
      attempt: spec.attempt,
      ref: dir,
      logPath: files.log,
    };
    // Started before (perhaps by a process that died), the launcher answers `existing` and this
    // re-attaches. Otherwise it (re)starts a wrapper: if an earlier one is alive but unrecorded,
    // its pid file makes the new one exit without running anything.
    const startedAt = Date.now();
    this.launchedAt.set(handle.ref, startedAt);
    const result = await this.nextLauncher().launch(
      {
        pidPath: files.pid,
        stopPath: files.terminate,
        ...outputFiles(files.work, spec.environment),
        logPath: files.log,
        note: imageNote(spec.image),
        limits: `${spec.memoryMiB}:${spec.timeoutSeconds ?? ''}`,
        command: spec.command,
        env: spec.environment,
      },
      () => {
        this.watched.delete(handle.ref);
        this.launchedAt.delete(handle.ref);
        for (const l of this.listeners) l(handle);
      },
    );
    // Spawned now: the wrapper records its pid in a moment, however long the launch took.
    if (this.launchedAt.has(handle.ref)) this.launchedAt.set(handle.ref, Date.now());
    if ('existing' in result) {
      await this.poll(handle);
      return handle;
    }
    this.startedHere.add(handle.ref);
    // If another wrapper claimed the attempt, this one exits at once and drops out of the watch.
    this.watch(handle, result.pid, spec.memoryMiB, spec.timeoutSeconds, startedAt);
    return handle;
  }

  private watch(
    handle: JobHandle,
    pid: number,
    memoryMiB: number,
    timeoutSeconds: number | undefined,
    startedAt: number,
  ): void {
    if (this.watched.has(handle.ref)) return;
    const w: Watched = { handle, pid, memoryBytes: memoryMiB * 1024 * 1024, since: Date.now() };
    if (timeoutSeconds) w.deadline = startedAt + timeoutSeconds * 1000;
    this.watched.set(handle.ref, w);
    if (!this.monitor) {
      this.monitor = setInterval(() => this.supervise(), 100);
      this.monitor.unref();
    }
  }

  /** One pass over the watched attempts: memory limits, timeouts, grace periods. */
  private supervise(): void {
    if (this.watched.size === 0) {
      clearInterval(this.monitor);
      this.monitor = undefined;
      return;
    }
    const now = Date.now();
    // An attempt watched for less than one pass is looked at in the next one: a queue of short
    // jobs then costs no scan of every process on the machine ten times a second.
    if (![...this.watched.values()].some((w) => w.killAt !== undefined || now - w.since >= 100))
      return;
    const groups = processGroups();
    for (const w of this.watched.values()) {
      const members = (groups.get(w.pid) ?? []).filter((p) => p.pid !== w.pid);
      if (!groups.has(w.pid)) {
        this.watched.delete(w.handle.ref);
        continue;
      }
      if (w.memoryBytes > 0 && members.reduce((sum, p) => sum + p.rss, 0) > w.memoryBytes) {
        this.stop(w, OOM_REASON, 'SIGKILL', '137');
      } else if (w.deadline !== undefined && now >= w.deadline && w.killAt === undefined) {
        this.stop(w, TIMEOUT_REASON, 'SIGTERM');
      } else if (w.killAt !== undefined && now >= w.killAt) {
        this.signal(w.pid, 'SIGKILL');
      }
    }
  }

  /** Signals the attempt's processes, but not its wrapper, which must record the exit. */
  private signal(pgid: number, signal: NodeJS.Signals): void {
    for (const p of processGroups().get(pgid) ?? []) {
      if (p.pid === pgid) continue;
      try {
        process.kill(p.pid, signal);
      } catch {
        // already gone
      }
    }
  }

  private stop(w: Watched, reason: string, signal: NodeJS.Signals, forcedExit?: string): void {
    this.stopped.add(w.handle.ref);
    const files = attemptFiles(w.handle.ref);
    if (!existsSync(files.reason)) writeFileSync(files.reason, reason);
    if (forcedExit) writeFileSync(files.forcedExit, forcedExit);
    w.killAt ??= Date.now() + (this.options.graceSeconds ?? 10) * 1000;
    this.signal(w.pid, signal);
  }

  async poll(handle: JobHandle): Promise<AttemptState> {
    const info = wrapperInfo(handle.ref);
    if (info?.exitCode !== undefined) {
      this.launchedAt.delete(handle.ref);
      const startedHere = this.startedHere.delete(handle.ref);
      const stoppedHere = this.stopped.delete(handle.ref);
      // A clean exit of an attempt this process started and never stopped has no reason or
      // forced exit code to look for: the usual end of a job costs no lookups of absent files.
      if (info.exitCode === '0' && startedHere && !stoppedHere)
        return {
          state: 'SUCCEEDED',
          exitCode: 0,
          startedAt: info.startedAt,
          stoppedAt: info.stoppedAt,
        };
      // Otherwise a look before each read: a failed read costs a thrown ENOENT.
      const files = attemptFiles(handle.ref);
      const read = (path: string) => (existsSync(path) ? readText(path) : undefined);
      const forced = read(files.forcedExit);
      const exitCode = Number(forced ?? info.exitCode);
      const reason = read(files.reason) ?? read(files.terminate);
      const state: AttemptState = {
        state: exitCode === 0 ? 'SUCCEEDED' : 'FAILED',
        exitCode,
        startedAt: info.startedAt,
        stoppedAt: info.stoppedAt,
      };
      if (reason !== undefined && exitCode !== 0) state.reason = reason;
      return state;
    }
    if (!info) {
      // Not started yet: how long since the start was asked for? Known in this process. After a
      // restart only the log or the directory tells (made just before the spawn); a wrapper
      // records its pid within moments of its spawn, long before another engine can have
      // started, so a pid file still missing then means it never started.
      const since =
        this.launchedAt.get(handle.ref) ?? mtimeOf(handle.logPath) ?? mtimeOf(handle.ref) ?? 0;
      return Date.now() - since < (this.options.startGraceMs ?? 30_000)
        ? { state: 'RUNNING' }
        : { state: 'FAILED', reason: 'Host lost: the job process never started' };
    }
    if (startTimeOf(info.pid) === info.startTime) {
      // Re-attached (e.g. after a restart): watch it from this process too.
      const legacy =
        info.memoryMiB === undefined
          ? readJson<{ memoryMiB: number; timeoutSeconds?: number }>(join(handle.ref, 'spec.json'))
          : undefined;
      const memoryMiB = info.memoryMiB ?? legacy?.memoryMiB;
      if (memoryMiB !== undefined)
        this.watch(
          handle,
          info.pid,
          memoryMiB,
          info.timeoutSeconds ?? legacy?.timeoutSeconds,
          info.startedAt,
        );
      return { state: 'RUNNING' };
    }
    // The wrapper may have recorded the exit just after we looked.
    if (wrapperInfo(handle.ref)?.exitCode !== undefined) return this.poll(handle);
    return {
      state: 'FAILED',
      reason: 'Host lost: the job process ended without recording an exit code',
    };
  }

  async kill(handle: JobHandle, reason: string): Promise<void> {
    this.stopped.add(handle.ref);
    // The reason goes first: a wrapper that has not started the command yet will not start it.
    writeFileSync(attemptFiles(handle.ref).terminate, reason);
    let info = wrapperInfo(handle.ref);
    for (let waited = 0; !info && waited < 2000; waited += 20) {
      await new Promise((r) => setTimeout(r, 20));
      info = wrapperInfo(handle.ref);
    }
    if (!info || startTimeOf(info.pid) !== info.startTime) return;
    const w = this.watched.get(handle.ref) ?? {
      handle,
      pid: info.pid,
      memoryBytes: 0,
      since: Date.now(),
    };
    this.watched.set(handle.ref, w);
    if (!this.monitor) {
      this.monitor = setInterval(() => this.supervise(), 100);
      this.monitor.unref();
    }
    this.stop(w, reason, 'SIGTERM');
  }

  reattach(handle: JobHandle): Promise<AttemptState> {
    return this.poll(handle);
  }

  /** The pids of the helper processes that start attempts, while they run. */
  get launcherPids(): number[] {
    return this.launchers.flatMap((l) => (l.pid === undefined ? [] : [l.pid]));
  }

  close(): void {
    for (const l of this.launchers) l.close();
  }
}
