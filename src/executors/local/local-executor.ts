/**
 * The local executor. Each attempt runs under a tiny wrapper that (1) claims the attempt by
 * creating its pid file exclusively, so it never runs twice (the file records the wrapper's pid,
 * its start time, the attempt's limits and who enforces them), (2) runs the command as argv,
 * looked up on PATH (user values never become shell text) and (3) appends the exit code to that
 * file. The wrapper survives the engine, so a restarted engine re-attaches through the pid file
 * alone.
 *
 * Where the native launcher was built (launcher.c, a static program, by `npm run build`), each
 * wrapper is a child it forks, and that wrapper contains its attempt: it is a child subreaper, so
 * every process the command starts stays its descendant however it detaches (setsid, a double
 * fork); it enforces the memory limit over all of them, the timeout, and a terminate (a SIGTERM
 * this executor sends it; SIGKILL after the grace period) whether or not a Strand process is
 * alive; and it kills whatever the command left behind before it records the exit, so a recorded
 * exit means no process of the attempt remains. Run as root, it also mounts the attempt's
 * read-only inputs read-only for the command.
 *
 * Without it a Node launcher spawns the same steps as an `sh` script, which cannot contain
 * anything: then this executor does what it can while it runs (the attempt's processes are the
 * wrapper's descendants, its process group and session, and every process it has seen in them;
 * limits and the SIGTERM-to-SIGKILL escalation are enforced by the Strand process watching the
 * attempt; what is left when the exit is read is killed then). The native way also saves the
 * exec of a shell and a spawn from a Node process: about 1.7 ms of CPU per job, measured on a
 * 2-core virtual machine.
 *
 * An attempt is three entries in the work root: `{job}.{n}/` (the command's working
 * directory), `{job}.{n}.log` (its output) and `{job}.{n}.pid`; a fourth, `{job}.{n}.inputs`,
 * when the job has read-only inputs (what they were before the start, checked after the end: a
 * change fails the attempt, naming the file). Creating files and directories is most of what an
 * attempt costs the file system, and on a busy disk the part that varies most (on one virtual
 * machine, 0.006 to 0.8 ms of kernel time each), so an attempt makes no more than it needs.
 * Attempts started by an earlier Strand keep their layout, `{job}/attempt-{n}/{work/,log.txt,pid}`,
 * and are found there.
 *
 * The pid file's first line is "pid starttime memoryMiB:timeoutSeconds:graceSeconds v2:WHO",
 * WHO being `wrapper` (the native wrapper enforces the limits) or `engine` (the `sh` wrapper: the
 * watching Strand process does); an earlier build wrote "pid starttime memoryMiB:timeoutSeconds"
 * (its attempts are supervised as the `sh` wrapper's). The exit line is "exit CODE", or
 * "exit CODE CAUSE" when the native wrapper stopped the command (`oom`, `timeout`, `terminated`);
 * the native wrapper adds "cpu=SECONDS mem=MIB" (CPU time and peak memory of all of the
 * attempt's processes). Under the `sh` wrapper the watching Strand process measures the peak and
 * keeps it in `{job}.{n}.memory-peak` (MiB), so a Strand started after it ends carries on from
 * it rather than from nothing.
 */
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  OOM_REASON,
  parseExitLine,
  TIMEOUT_REASON,
  outputFiles,
  type AttemptState,
  type Executor,
  type JobAttemptSpec,
  type JobHandle,
} from '../executor.js';
import { readText, statFields } from '../../host.js';
import { NativeLauncher, NodeLauncher, type Launcher } from './launcher.js';

/**
 * The `sh` wrapper: $1 is the pid file, $2 the file whose existence means "terminated before the
 * start", $3 the limits to record ("memoryMiB:timeoutSeconds:graceSeconds", the timeout empty
 * when there is none), the rest is the command's argv, run by `exec` in a subshell: its first
 * word is always a program found on PATH, as in a container, never a built-in of the shell
 * (dash's `echo` differs from coreutils') or one of the wrapper's functions. Only shell built-ins
 * run besides the command (no extra processes). The pid file holds "pid starttime limits
 * v2:engine", then, once the command has ended, "exit CODE"; a line counts once it ends in a
 * newline.
 */
const WRAPPER = `pidfile=$1; stop=$2; limits=$3; shift 3
set -C
record() { read -r line < /proc/$$/stat; set -- $line; printf '%s %s %s v2:engine\\n' "$$" "\${22}" "$limits" > "$pidfile"; }
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
  /**
   * Why the watching Strand process stopped it (memory, timeout), written before the signal;
   * for attempts under the `sh` wrapper (the native wrapper records its cause with the exit).
   */
  reason: string;
  /** The exit code to report instead of the `sh` wrapper's (137 for a memory kill). */
  forcedExit: string;
  /** Written by a terminate: the reason, and a wrapper that has not started will not start. */
  terminate: string;
  /** The read-only inputs as they were before the start (InputsRecord), when there are any. */
  inputs: string;
  /** The peak memory (MiB) the watching Strand process measured, under the `sh` wrapper. */
  peak: string;
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
      inputs: join(ref, 'inputs'),
      peak: join(ref, 'memory-peak'),
    };
  return {
    work: ref,
    log: `${ref}.log`,
    pid: `${ref}.pid`,
    reason: `${ref}.reason`,
    forcedExit: `${ref}.forced-exit`,
    terminate: `${ref}.terminate-reason`,
    inputs: `${ref}.inputs`,
    peak: `${ref}.memory-peak`,
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
  /**
   * `false`: never mount an attempt's read-only inputs read-only, even where the native wrapper
   * could (as root); a change to them is still detected after the end (default true).
   */
  readOnlyMounts?: boolean;
}

interface WrapperInfo {
  pid: number;
  startTime?: string;
  startedAt: number;
  memoryMiB?: number;
  timeoutSeconds?: number;
  graceSeconds?: number;
  /** Who enforces the limits and ends the attempt's processes: the native wrapper, or Strand. */
  supervisor: 'wrapper' | 'engine';
  /** Set once the command has ended. */
  exitCode?: string;
  /** Why the native wrapper stopped the command: `oom`, `timeout`, `terminated`. */
  cause?: string;
  cpuSeconds?: number;
  peakMemoryMiB?: number;
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
  const [pid, startTime, limits = '', format] = first.split(' ');
  const [memory, timeout, grace] = limits.split(':');
  const stat = statSync(path);
  // The file is created at the start (its birth time; else the start time in clock ticks).
  const startedAt = stat.birthtimeMs || bootTime() + Number(startTime) * 10;
  const info: WrapperInfo = {
    pid: Number(pid),
    startTime,
    startedAt,
    supervisor: format === 'v2:wrapper' ? 'wrapper' : 'engine',
  };
  if (memory) info.memoryMiB = Number(memory);
  if (timeout) info.timeoutSeconds = Number(timeout);
  if (grace) info.graceSeconds = Number(grace);
  const exit = second?.startsWith('exit ') && text.endsWith('\n') ? second.slice(5) : undefined;
  // Attempts started by an earlier Strand (no limits in the pid file) recorded the exit in a
  // file of its own.
  const legacy = exit === undefined && !limits ? readText(join(ref, 'exit.code')) : undefined;
  if (exit !== undefined) {
    const { code, cause, cpuSeconds, peakMemoryMiB } = parseExitLine(exit);
    info.exitCode = code;
    if (cause) info.cause = cause;
    if (cpuSeconds !== undefined) info.cpuSeconds = cpuSeconds;
    if (peakMemoryMiB !== undefined) info.peakMemoryMiB = peakMemoryMiB;
    info.stoppedAt = stat.mtimeMs;
  } else if (legacy?.endsWith('\n')) {
    info.exitCode = legacy.trim();
    info.stoppedAt = statSync(join(ref, 'exit.code')).mtimeMs;
  }
  return info;
}

/** An attempt whose limits this process enforces (one under the `sh` wrapper, or an older one). */
interface Watched {
  handle: JobHandle;
  /** The wrapper's pid and start time (clock ticks since boot). */
  pid: number;
  startTicks: number;
  memoryBytes: number;
  graceMs: number;
  /** When this process began to watch it. */
  since: number;
  deadline?: number;
  killAt?: number;
  /**
   * Every process seen in the attempt (pid → start time): one that left the session after its
   * parent ended is still known by it.
   */
  members: Map<number, number>;
  /** The attempt's peak memory so far (see overMemory), and the largest sum of RSS seen. */
  peakBytes: number;
  peakRss: number;
  /** The peak last written to the attempt's `.memory-peak` file. */
  peakSaved: number;
}

/** One line of the process table. */
interface ProcessInfo {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** Start time, in clock ticks since boot. */
  start: number;
  /** Resident size, in bytes. */
  rss: number;
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

/** Every process of the machine (that this user can see). */
function processTable(): ProcessInfo[] {
  const table: ProcessInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (entry.charCodeAt(0) > 57) continue; // not a pid
    const f = statFields(entry);
    if (!f) continue;
    table.push({
      pid: Number(entry),
      ppid: Number(f[1]),
      pgid: Number(f[2]),
      sid: Number(f[3]),
      start: Number(f[19]),
      rss: Number(f[21]) * PAGE,
    });
  }
  return table;
}

/**
 * The processes of an attempt under the `sh` wrapper (not the wrapper itself): its descendants,
 * the members of its process group and session, and every process seen in it before. Group and
 * session members count only if they started between the wrapper and `untilTicks`: after the
 * wrapper has ended, its pid may name another group.
 */
function attemptProcesses(
  table: ProcessInfo[],
  w: { pid: number; startTicks: number; members: Map<number, number> },
  untilTicks = Infinity,
): ProcessInfo[] {
  const children = new Map<number, ProcessInfo[]>();
  for (const p of table) {
    const list = children.get(p.ppid);
    if (list) list.push(p);
    else children.set(p.ppid, [p]);
  }
  const found = new Map<number, ProcessInfo>();
  const below = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      if (found.has(c.pid)) continue;
      found.set(c.pid, c);
      below(c.pid);
    }
  };
  below(w.pid);
  for (const p of table) {
    const inGroup =
      (p.pgid === w.pid || p.sid === w.pid) && p.start >= w.startTicks && p.start <= untilTicks;
    if (inGroup || w.members.get(p.pid) === p.start) {
      found.set(p.pid, p);
      below(p.pid);
    }
  }
  found.delete(w.pid);
  return [...found.values()];
}

/** A number (kB) after `key` in a /proc status-like file, in bytes; undefined when absent. */
function kbField(path: string, key: string): number | undefined {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readText(path) ?? '');
  return m ? Number(m[1]) * 1024 : undefined;
}

/**
 * Whether `processes` use more than `limit` bytes (0: no limit), recording their peak in `w`
 * (as the native wrapper's over_memory() does). Resident sizes first: their sum is an upper
 * bound, but counts a page shared by several processes (a library, memory a forked child shares
 * with its parent) once per process, so 200 forked `sleep`s would look like 150 MB. The fair
 * measure, the proportional set size (each shared page divided among its users; smaps_rollup
 * walks the page tables, so it is not read every time), is taken only over the limit or, for the
 * peak, when the sum passes the largest seen before. A single process's peak is its RSS.
 */
function overMemory(
  processes: ProcessInfo[],
  limit: number,
  w: { peakBytes: number; peakRss: number },
): boolean {
  const rss = processes.reduce((sum, p) => sum + p.rss, 0);
  const over = limit > 0 && rss > limit;
  const higher = rss > w.peakRss;
  if (higher) w.peakRss = rss;
  // The fair measure, when taken (for one process, its RSS).
  let measured = processes.length <= 1 ? rss : undefined;
  if (over || (higher && processes.length > 1)) {
    measured = 0;
    for (const p of processes) measured += kbField(`/proc/${p.pid}/smaps_rollup`, 'Pss') ?? p.rss;
  }
  if (measured !== undefined && measured > w.peakBytes) w.peakBytes = measured;
  return over && (measured ?? 0) > limit;
}

/** MiB, to one decimal, as the native wrapper's exit line gives them. */
function mib(bytes: number): number {
  return Math.round((bytes / 1048576) * 10) / 10;
}

/** The peak (MiB) in an attempt's `.memory-peak` file; 0 when there is none. */
function recordedPeak(path: string): number {
  const n = Number(readText(path) ?? '');
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/**
 * Writes a watched attempt's peak to its `.memory-peak` file so that it outlives this process:
 * at the end (`final`), and meanwhile when it has grown by a MiB and 5% since last written (a
 * restart may lose less than that, and a growing job costs no write every pass).
 */
function savePeak(w: Watched, final = false): void {
  const grown = w.peakBytes - w.peakSaved;
  if (grown <= 0 || (!final && (grown < 1048576 || grown < w.peakSaved / 20))) return;
  const path = attemptFiles(w.handle.ref).peak;
  try {
    // Whole or not at all: a Strand killed mid-write must not leave a smaller number behind.
    writeFileSync(`${path}.tmp`, `${mib(w.peakBytes)}\n`);
    renameSync(`${path}.tmp`, path);
    w.peakSaved = w.peakBytes;
  } catch {
    // The attempt's files are gone (cleaned): nothing to keep the peak for.
  }
}

/** Clock ticks since boot `ms` milliseconds ago (ticks are what /proc's start times count). */
function ticksAgo(ms: number): number {
  const uptime = Number((readText('/proc/uptime') ?? '0').split(' ')[0]);
  return Math.floor(uptime * 100 - ms / 10);
}

function mtimeOf(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/** A read-only input as it was before the attempt started. */
interface InputState {
  path: string;
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
}

/** The `.inputs` file of an attempt. */
interface InputsRecord {
  version: 1;
  files: InputState[];
}

function inputState(path: string): InputState | undefined {
  try {
    const s = statSync(path, { bigint: true });
    if (!s.isFile()) return undefined;
    return {
      path,
      dev: String(s.dev),
      ino: String(s.ino),
      size: String(s.size),
      mtimeNs: String(s.mtimeNs),
      ctimeNs: String(s.ctimeNs),
    };
  } catch {
    return undefined;
  }
}

/** How a read-only input differs from what was recorded before the start; undefined if not. */
function inputChange(before: InputState): string | undefined {
  const now = inputState(before.path);
  if (!now) return 'removed, or no longer a regular file';
  const what: string[] = [];
  if (now.dev !== before.dev || now.ino !== before.ino)
    what.push(`replaced (inode ${before.ino} → ${now.ino})`);
  if (now.size !== before.size) what.push(`size ${before.size} → ${now.size} bytes`);
  if (now.mtimeNs !== before.mtimeNs) what.push('modification time changed');
  if (now.ctimeNs !== before.ctimeNs && what.length === 0) what.push('status change time changed');
  return what.length > 0 ? what.join(', ') : undefined;
}

/**
 * Records an attempt's read-only regular files as they are before its start in `path` (its
 * `.inputs` file), for changedInputs after its end (the SLURM executor's too); an attempt
 * submitted again keeps what was recorded the first time. Whether there was any to record.
 */
export function recordInputs(path: string, readOnly: string[]): boolean {
  const files = readOnly.flatMap((p) => inputState(p) ?? []);
  if (files.length === 0) return false;
  const record: InputsRecord = { version: 1, files };
  mkdirSync(dirname(path), { recursive: true }); // the launcher makes the rest at the start
  try {
    writeFileSync(path, JSON.stringify(record), { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return true;
}

/** The reason an attempt fails when one of its read-only inputs changed; undefined if none did. */
export function changedInputs(path: string): string | undefined {
  const record = readJson<InputsRecord>(path);
  for (const f of record?.files ?? []) {
    const change = inputChange(f);
    if (change)
      return `InputChangedError: read-only input ${f.path} changed while the job ran (${change})`;
  }
  return undefined;
}

function imageNote(image: string | undefined): string | undefined {
  return image
    ? `[strand] local executor: image ${image} is not used; the command runs on the host\n`
    : undefined;
}

export class LocalExecutor implements Executor {
  readonly name = 'local';
  private readonly listeners: ((handle: JobHandle) => void)[] = [];
  /** Attempts under the `sh` wrapper (or an earlier build's) whose limits this process enforces. */
  private readonly watched = new Map<string, Watched>();
  /** The processes seen in watched attempts whose wrapper has ended, until their exit is read. */
  private readonly remembered = new Map<string, Map<number, number>>();
  /** Attempts under the `sh` wrapper whose leftovers this process has killed. */
  private readonly cleaned = new Set<string>();
  private monitor: NodeJS.Timeout | undefined;
  /** Whether attempts start under the native wrapper, which contains and supervises them. */
  private readonly native: boolean;
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
  /** Attempts of this process with read-only inputs to check at the end. */
  private readonly withInputs = new Set<string>();
  /** When this process asked for each attempt's start (an earlier attempt's log may be older). */
  private readonly launchedAt = new Map<string, number>();

  constructor(private readonly options: LocalExecutorOptions) {
    const native = options.launcher === 'node' ? undefined : nativeLauncher();
    if (options.launcher === 'native' && !native)
      throw new Error(`the native job launcher ${NATIVE_LAUNCHER} is missing: run npm run build`);
    this.native = native !== undefined;
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

  private get graceSeconds(): number {
    return this.options.graceSeconds ?? 10;
  }

  workDir(handle: JobHandle): string {
    return attemptFiles(handle.ref).work;
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
    const readOnly = spec.readOnlyPaths ?? [];
    if (readOnly.length > 0) this.recordInputs(files.inputs, readOnly, handle.ref);
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
        limits: `${spec.memoryMiB}:${spec.timeoutSeconds ?? ''}:${this.graceSeconds}`,
        command: spec.command,
        env: spec.environment,
        readOnly: this.options.readOnlyMounts === false ? [] : readOnly,
      },
      () => {
        this.forget(handle.ref);
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
    // The native wrapper enforces the limits itself. The `sh` wrapper is watched from here; if
    // another wrapper claimed the attempt, this one exits at once and drops out of the watch.
    if (!this.native)
      this.watch(handle, result.pid, undefined, spec.memoryMiB, spec.timeoutSeconds, startedAt);
    return handle;
  }

  /**
   * Records the attempt's read-only regular files as they are before the start, so that this
   * process or a re-attaching one can tell a change after the end. An attempt submitted again
   * keeps what was recorded the first time.
   */
  private recordInputs(path: string, readOnly: string[], ref: string): void {
    if (recordInputs(path, readOnly)) this.withInputs.add(ref);
  }

  private watch(
    handle: JobHandle,
    pid: number,
    startTime: string | undefined,
    memoryMiB: number,
    timeoutSeconds: number | undefined,
    startedAt: number,
    graceSeconds = this.graceSeconds,
  ): void {
    if (this.watched.has(handle.ref)) return;
    // Watched again after a restart: the peak carries on from what the earlier Strand saw.
    const peakBytes = recordedPeak(attemptFiles(handle.ref).peak) * 1048576;
    const w: Watched = {
      handle,
      pid,
      // Not recorded yet (just spawned): the wrapper started after the launch was asked for.
      startTicks:
        startTime === undefined ? ticksAgo(Date.now() - startedAt) - 2 : Number(startTime),
      memoryBytes: memoryMiB * 1024 * 1024,
      graceMs: graceSeconds * 1000,
      since: Date.now(),
      members: new Map(),
      peakBytes,
      peakRss: 0,
      peakSaved: peakBytes,
    };
    if (timeoutSeconds) w.deadline = startedAt + timeoutSeconds * 1000;
    this.watched.set(handle.ref, w);
    if (!this.monitor) {
      this.monitor = setInterval(() => this.supervise(), 100);
      this.monitor.unref();
    }
  }

  /** Stops watching an attempt whose wrapper has ended; what it had seen is kept for cleanUp. */
  private forget(ref: string): void {
    const w = this.watched.get(ref);
    if (!w) return;
    this.watched.delete(ref);
    this.remembered.set(ref, w.members);
    savePeak(w, true);
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
    const table = processTable();
    const byPid = new Map(table.map((p) => [p.pid, p]));
    for (const w of this.watched.values()) {
      const wrapper = byPid.get(w.pid);
      if (!wrapper || wrapper.start < w.startTicks) {
        this.forget(w.handle.ref);
        continue;
      }
      const processes = attemptProcesses(table, w);
      for (const p of processes) w.members.set(p.pid, p.start);
      const over = overMemory(processes, w.memoryBytes, w);
      savePeak(w);
      if (over) {
        this.stop(w, processes, OOM_REASON, 'SIGKILL', '137');
      } else if (w.deadline !== undefined && now >= w.deadline && w.killAt === undefined) {
        this.stop(w, processes, TIMEOUT_REASON, 'SIGTERM');
      } else if (w.killAt !== undefined && now >= w.killAt) {
        signalAll(processes, 'SIGKILL');
      }
    }
  }

  private stop(
    w: Watched,
    processes: ProcessInfo[],
    reason: string,
    signal: NodeJS.Signals,
    forcedExit?: string,
  ): void {
    this.stopped.add(w.handle.ref);
    const files = attemptFiles(w.handle.ref);
    if (!existsSync(files.reason)) writeFileSync(files.reason, reason);
    if (forcedExit) writeFileSync(files.forcedExit, forcedExit);
    w.killAt ??= Date.now() + w.graceMs;
    signalAll(processes, signal);
  }

  /**
   * Kills what an attempt under the `sh` wrapper left when its command ended (the native wrapper
   * does it itself before it records the exit): the processes this process saw in it, and its
   * group's and session's, started before the exit was recorded. Returns once they have ended
   * (or after a few seconds, for one stuck in the kernel).
   */
  private async cleanUp(ref: string, info: WrapperInfo): Promise<void> {
    if (this.cleaned.has(ref)) return;
    this.cleaned.add(ref);
    // Only a poll repeated soon after needs it: the oldest are let go.
    if (this.cleaned.size > 10_000) this.cleaned.delete(this.cleaned.values().next().value!);
    const watched = this.watched.get(ref);
    if (watched) savePeak(watched, true);
    const members = watched?.members ?? this.remembered.get(ref) ?? new Map();
    this.watched.delete(ref);
    this.remembered.delete(ref);
    const until = ticksAgo(Date.now() - (info.stoppedAt ?? Date.now())) + 100;
    const left = attemptProcesses(
      processTable(),
      { pid: info.pid, startTicks: Number(info.startTime), members },
      until,
    );
    signalAll(left, 'SIGKILL');
    const deadline = Date.now() + 5000;
    while (left.some((p) => startTimeOf(p.pid) === String(p.start) && !ended(p.pid))) {
      if (Date.now() > deadline) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async poll(handle: JobHandle): Promise<AttemptState> {
    const info = wrapperInfo(handle.ref);
    if (info?.exitCode !== undefined) {
      this.launchedAt.delete(handle.ref);
      const startedHere = this.startedHere.delete(handle.ref);
      const stoppedHere = this.stopped.delete(handle.ref);
      const withInputs = this.withInputs.delete(handle.ref);
      if (info.supervisor === 'engine') {
        await this.cleanUp(handle.ref, info);
        // Measured by the watching Strand process (this one, or one before a restart).
        const peak = recordedPeak(attemptFiles(handle.ref).peak);
        if (peak > 0) info.peakMemoryMiB = peak;
      }
      // A clean exit of an attempt this process started and never stopped, without inputs to
      // check, has no reason or forced exit code to look for: the usual end of a job costs no
      // lookups of absent files.
      if (info.exitCode === '0' && startedHere && !stoppedHere && !withInputs)
        return {
          state: 'SUCCEEDED',
          exitCode: 0,
          startedAt: info.startedAt,
          stoppedAt: info.stoppedAt,
          ...(info.cpuSeconds === undefined ? {} : { cpuSeconds: info.cpuSeconds }),
          ...(info.peakMemoryMiB === undefined ? {} : { peakMemoryMiB: info.peakMemoryMiB }),
        };
      // Otherwise a look before each read: a failed read costs a thrown ENOENT.
      const files = attemptFiles(handle.ref);
      const read = (path: string) => (existsSync(path) ? readText(path) : undefined);
      const forced = info.supervisor === 'engine' ? read(files.forcedExit) : undefined;
      const exitCode = Number(forced ?? info.exitCode);
      const reason =
        info.cause === 'oom'
          ? OOM_REASON
          : info.cause === 'timeout'
            ? TIMEOUT_REASON
            : info.cause === 'terminated'
              ? (read(files.terminate) ?? 'Terminated')
              : (read(files.reason) ?? read(files.terminate));
      const state: AttemptState = {
        state: exitCode === 0 ? 'SUCCEEDED' : 'FAILED',
        exitCode,
        startedAt: info.startedAt,
        stoppedAt: info.stoppedAt,
        ...(info.cpuSeconds === undefined ? {} : { cpuSeconds: info.cpuSeconds }),
        ...(info.peakMemoryMiB === undefined ? {} : { peakMemoryMiB: info.peakMemoryMiB }),
      };
      if (reason !== undefined && exitCode !== 0) state.reason = reason;
      // An input changed fails the attempt whatever its exit code: its outputs may rest on it.
      const changed = existsSync(files.inputs) ? changedInputs(files.inputs) : undefined;
      if (changed !== undefined) {
        state.state = 'FAILED';
        state.reason = changed;
      }
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
      // Re-attached (e.g. after a restart) to an attempt whose wrapper does not enforce its
      // limits: watch it from this process too.
      const legacy =
        info.supervisor === 'engine' && info.memoryMiB === undefined
          ? readJson<{ memoryMiB: number; timeoutSeconds?: number }>(join(handle.ref, 'spec.json'))
          : undefined;
      const memoryMiB = info.memoryMiB ?? legacy?.memoryMiB;
      if (info.supervisor === 'engine' && memoryMiB !== undefined)
        this.watch(
          handle,
          info.pid,
          info.startTime,
          memoryMiB,
          info.timeoutSeconds ?? legacy?.timeoutSeconds,
          info.startedAt,
          info.graceSeconds,
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
    if (!info || info.exitCode !== undefined || startTimeOf(info.pid) !== info.startTime) return;
    if (info.supervisor === 'wrapper') {
      // The wrapper sends SIGTERM to every process of the attempt, SIGKILL after the grace period
      // it recorded, and records the exit: none of it needs this process to stay alive.
      try {
        process.kill(info.pid, 'SIGTERM');
      } catch {
        // ended meanwhile: its exit is recorded
      }
      return;
    }
    this.watch(
      handle,
      info.pid,
      info.startTime,
      0,
      undefined,
      info.startedAt,
      info.graceSeconds ?? this.graceSeconds,
    );
    const w = this.watched.get(handle.ref)!;
    this.stop(w, attemptProcesses(processTable(), w), reason, 'SIGTERM');
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

/** Whether a process has ended and waits to be reaped (a zombie). */
function ended(pid: number): boolean {
  return statFields(pid)?.[0] === 'Z';
}

function signalAll(processes: ProcessInfo[], signal: NodeJS.Signals): void {
  for (const p of processes) {
    try {
      process.kill(p.pid, signal);
    } catch {
      // already gone
    }
  }
}
