/**
 * The container executor: each attempt runs in its step's image under podman (or docker), through
 * the runtime's command line with argv.
 *
 * The step's image needs nothing but its tool. The container's first process is Strand's static
 * launcher (dist/strand-launcher, mounted read-only at /.strand/strand-launcher) in its `wrap`
 * mode, which runs the command as argv and does what it does for the local executor: it claims
 * the attempt by creating its pid file exclusively, sends the command's output to the log (and
 * its standard output to the step's `stdout:` file), enforces the timeout and a terminate
 * (SIGTERM, SIGKILL after the grace period) whether or not a Strand process is alive, and records
 * "exit CODE[ CAUSE] cpu=SECONDS mem=MIB" when the command has ended; "oom" when the container's
 * cgroup saw its OOM killer. The CPU time and peak memory are those of the container's processes
 * as the wrapper, their subreaper, measures them (as it does on the host, not the cgroup's
 * memory peak, which counts the page cache of the files the job wrote). The memory and CPU limits are the container's (`--memory`, equal `--memory-swap`,
 * `--cpus`).
 *
 * An attempt is, in the work root: `{job}.{n}/` (the working directory, mounted read-write at the
 * same path, as the container's working directory), `{job}.{n}.log` (mounted as a file),
 * `{job}.{n}.run/` (mounted: the pid file and the stop file), and on the host only
 * `{job}.{n}.conmon` (the pid of podman's monitor process, alive while the container is),
 * `{job}.{n}.state` (the final state, written once before the container is removed),
 * `{job}.{n}.reason` (why it was stopped) and `{job}.{n}.failed` (why it could not start). The
 * attempt's inputs (the store, the files its variables name) are mounted read-only at their own
 * paths, so its variables keep their values. Creating `{job}.{n}.run/` claims the attempt: a
 * second submit of it, from this process or another, starts nothing.
 *
 * Containers are started detached (`run -d`) and named `strand-{job}-{n}`, with labels naming the
 * job, the attempt and its directory: they outlive the engine, and a restarted engine finds them
 * by their files or, failing those, by label. A poll reads files only (no runtime command) until
 * the container has ended.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  renameSync,
  statSync,
  watch,
  writeFileSync,
  type FSWatcher,
} from 'node:fs';
import { cpus, userInfo } from 'node:os';
import { join } from 'node:path';
import {
  OOM_REASON,
  recordedExit,
  TIMEOUT_REASON,
  outputFiles,
  type AttemptState,
  type Executor,
  type JobAttemptSpec,
  type JobHandle,
} from '../executor.js';
import { nativeLauncher } from '../local/local-executor.js';
import { readText, statFields } from '../../host.js';
import { imageEntrypoint, type ContainerRuntime } from './runtime.js';

/** Where the launcher is mounted in every container. */
const LAUNCHER = '/.strand/strand-launcher';

/**
 * Environment variables that steer the runtime's own programs (podman finds conmon and the OCI
 * runtime on PATH): these reach a job as `-e NAME=value`; every other variable as `-e NAME`, its
 * value taken from the runtime's environment, so no value (a secret) is on a command line.
 */
const RUNTIME_VARIABLES = /^(PATH|HOME|TMPDIR|USER|LOGNAME|SHELL|XDG_\w+|CONTAINERS_\w+|LD_\w+)$/;

export interface ContainerExecutorOptions {
  runtime: ContainerRuntime;
  /** Where attempts get their directories and files. */
  workRoot: string;
  /** Seconds between SIGTERM and SIGKILL (default 10). */
  graceSeconds?: number;
  /**
   * How long an attempt may have no container (not started yet, from another process) before it
   * counts as never started (default 60 s).
   */
  startGraceMs?: number;
  /** The network a job's container joins (default `none`: jobs reach no network). */
  network?: string;
  /** The static launcher mounted into each container (default: the one `npm run build` made). */
  launcher?: string;
  /**
   * More mounts for every job, as `HOST:CONTAINER[:ro]` (a reference database a site keeps on a
   * shared path, say).
   */
  volumes?: string[];
}

interface FinalState {
  version: 1;
  state: 'SUCCEEDED' | 'FAILED';
  exitCode?: number;
  reason?: string;
  startedAt?: number;
  stoppedAt?: number;
  /** From the wrapper's exit line (absent when the container ended without one). */
  cpuSeconds?: number;
  peakMemoryMiB?: number;
}

interface Files {
  work: string;
  log: string;
  run: string;
  pid: string;
  stop: string;
  conmon: string;
  state: string;
  reason: string;
  failed: string;
}

function filesOf(ref: string): Files {
  return {
    work: ref,
    log: `${ref}.log`,
    run: `${ref}.run`,
    pid: `${ref}.run/pid`,
    stop: `${ref}.run/stop`,
    conmon: `${ref}.conmon`,
    state: `${ref}.state`,
    reason: `${ref}.reason`,
    failed: `${ref}.failed`,
  };
}

/** Writes a file whole: a reader sees the old content or the new, never part of it. */
function writeWhole(path: string, text: string): void {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, text);
  renameSync(temp, path);
}

/** Whether a process runs (a zombie has ended). */
function alive(pid: number): boolean {
  const state = statFields(pid)?.[0];
  return state !== undefined && state !== 'Z';
}

/** A container name for an attempt: the runtime's allowed characters, bounded in length. */
function containerName(jobId: string, attempt: number): string {
  const safe = jobId.replace(/[^A-Za-z0-9_.-]/g, '_');
  const name = `strand-${safe}-${attempt}`;
  if (name.length <= 128) return name;
  const hash = createHash('sha256').update(jobId).digest('hex').slice(0, 16);
  return `strand-${safe.slice(0, 80)}-${hash}-${attempt}`;
}

/** The first line of a runtime's error output that says something. */
function firstError(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return (lines.find((l) => /^Error/i.test(l)) ?? lines[0] ?? 'no output').replace(/^Error: /, '');
}

export class ContainerExecutor implements Executor {
  readonly name: string;
  readonly isolated = true;
  private readonly runtime: ContainerRuntime;
  private readonly launcher: string;
  private readonly listeners: ((handle: JobHandle) => void)[] = [];
  /** Submits in flight in this process, by attempt directory. */
  private readonly starting = new Map<string, Promise<JobHandle>>();
  /** Exit-line watchers of attempts started here. */
  private readonly watchers = new Map<string, FSWatcher>();
  /** Images' entrypoints, looked up once each. */
  private readonly entrypoints = new Map<string, Promise<string[]>>();
  /** When each attempt's container was last looked up with the runtime (at most every 2 s). */
  private readonly looked = new Map<string, number>();

  constructor(private readonly options: ContainerExecutorOptions) {
    this.runtime = options.runtime;
    this.name = options.runtime.name;
    const launcher = options.launcher ?? nativeLauncher();
    if (!launcher)
      throw new Error(
        `the ${this.name} executor needs Strand's native launcher (dist/strand-launcher), which was not built: run npm run build with a C compiler (apt-get install gcc libc6-dev)`,
      );
    this.launcher = launcher;
  }

  private get graceSeconds(): number {
    return this.options.graceSeconds ?? 10;
  }

  onSettled(listener: (handle: JobHandle) => void): void {
    this.listeners.push(listener);
  }

  close(): void {
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  private handleOf(jobId: string, attempt: number): JobHandle {
    const safe = jobId.replace(/[^A-Za-z0-9._-]/g, '_');
    const ref = join(this.options.workRoot, `${safe}.${attempt}`);
    return { jobId, attempt, ref, logPath: filesOf(ref).log };
  }

  submit(spec: JobAttemptSpec): Promise<JobHandle> {
    const handle = this.handleOf(spec.jobId, spec.attempt);
    let pending = this.starting.get(handle.ref);
    if (!pending) {
      pending = this.start(spec, handle).finally(() => this.starting.delete(handle.ref));
      this.starting.set(handle.ref, pending);
    }
    return pending;
  }

  private async start(spec: JobAttemptSpec, handle: JobHandle): Promise<JobHandle> {
    const f = filesOf(handle.ref);
    mkdirSync(this.options.workRoot, { recursive: true });
    try {
      mkdirSync(f.run); // the claim
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return handle; // started before
      throw err;
    }
    if (!spec.image) {
      const reason = `CannotStartContainerError: job ${spec.jobId} has no image (the ${this.name} executor runs each job in its step's image)`;
      writeWhole(f.failed, reason);
      throw new Error(reason.replace(/^CannotStartContainerError: /, ''));
    }
    const { dirs, stdoutPath } = outputFiles(f.work, spec.environment);
    for (const d of dirs) mkdirSync(d, { recursive: true });
    writeFileSync(f.log, `[strand] ${this.name}: image ${spec.image}\n`, { flag: 'a' });
    const entrypoint = await this.entrypoint(spec.image);
    const limits = `0:${spec.timeoutSeconds ?? ''}:${this.graceSeconds}`;
    const args = [
      'run',
      '--detach',
      '--name',
      containerName(spec.jobId, spec.attempt),
      '--label',
      `strand.job=${spec.jobId}`,
      '--label',
      `strand.attempt=${spec.attempt}`,
      '--label',
      `strand.ref=${handle.ref}`,
      '--pull',
      'never',
      ...this.runtime.runOptions,
      '--network',
      this.options.network ?? 'none',
      '--cpus',
      // A compute environment declared larger than the machine gives jobs more vCPUs than it
      // has cores; the runtime refuses a limit above them, and the job shares them anyway.
      String(Math.min(spec.vcpus, cpus().length)),
      '--memory',
      `${spec.memoryMiB}m`,
      '--memory-swap',
      `${spec.memoryMiB}m`,
      '--user',
      this.user(),
      '--entrypoint',
      LAUNCHER,
      '--workdir',
      f.work,
      '--volume',
      `${this.launcher}:${LAUNCHER}:ro`,
      '--volume',
      `${f.work}:${f.work}`,
      '--volume',
      `${f.log}:${f.log}`,
      '--volume',
      `${f.run}:${f.run}`,
    ];
    if (this.runtime.name === 'podman') args.push('--conmon-pidfile', f.conmon);
    for (const v of this.options.volumes ?? []) args.push('--volume', v);
    // An input that is not there yet (a store nothing was published to) has nothing to show.
    for (const p of spec.readOnlyPaths ?? [])
      if (existsSync(p)) args.push('--volume', `${p}:${p}:ro`);
    const env: Record<string, string> = { ...process.env } as Record<string, string>;
    for (const [name, value] of Object.entries(spec.environment)) {
      if (RUNTIME_VARIABLES.test(name)) args.push('--env', `${name}=${value}`);
      else {
        args.push('--env', name);
        env[name] = value;
      }
    }
    args.push(
      spec.image,
      'wrap',
      f.pid,
      f.stop,
      f.log,
      stdoutPath ?? '',
      limits,
      '--',
      ...entrypoint,
      ...spec.command,
    );
    const result = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(this.runtime.program, args, { env, timeout: 120_000 }, (err, _out, stderr) =>
        resolve({ code: err ? Number((err as { code?: unknown }).code) || 1 : 0, stderr }),
      );
    });
    if (result.code !== 0) {
      const why = firstError(result.stderr);
      const missing = /image not known|no such image|unable to find image/i.test(result.stderr);
      const reason = missing
        ? `CannotPullContainerError: image ${spec.image} is not in ${this.name}'s local store (build it: strand images build)`
        : `CannotStartContainerError: ${why}`;
      writeWhole(f.failed, reason);
      this.removeContainer(containerName(spec.jobId, spec.attempt));
      throw new Error(reason.replace(/^\w+Error: /, ''));
    }
    this.watchExit(handle);
    return handle;
  }

  /** The user a job runs as: its files on the host belong to the caller. */
  private user(): string {
    // A rootless podman maps the container's root to the caller; a root daemon does not.
    if (this.runtime.name === 'podman' && process.getuid?.() !== 0) return '0:0';
    const u = userInfo();
    return `${u.uid}:${u.gid}`;
  }

  /** The image's entrypoint, which a job's command follows (as on AWS Batch). */
  private entrypoint(image: string): Promise<string[]> {
    let known = this.entrypoints.get(image);
    if (!known) {
      known = imageEntrypoint(this.runtime.program, image);
      this.entrypoints.set(image, known);
    }
    return known;
  }

  /** Tells the listeners when the wrapper records the exit of an attempt started here. */
  private watchExit(handle: JobHandle): void {
    const f = filesOf(handle.ref);
    try {
      const watcher = watch(f.run, () => {
        if (!recordedExit(f.pid)) return;
        watcher.close();
        this.watchers.delete(handle.ref);
        for (const l of this.listeners) l(handle);
      });
      watcher.unref();
      this.watchers.set(handle.ref, watcher);
    } catch {
      // no watch: polls find the exit alike
    }
  }

  async poll(handle: JobHandle): Promise<AttemptState> {
    const f = filesOf(handle.ref);
    const final = readText(f.state);
    if (final !== undefined) {
      const s = JSON.parse(final) as FinalState;
      const { version: _version, ...state } = s;
      return state;
    }
    const failed = readText(f.failed);
    if (failed !== undefined) return { state: 'FAILED', reason: failed };
    const exit = recordedExit(f.pid);
    if (exit) return this.finishRecorded(handle, exit);
    if (this.starting.has(handle.ref)) return { state: 'RUNNING' };
    const conmon = Number(readText(f.conmon));
    // The monitor, not another process that got its pid since.
    if (conmon > 0 && alive(conmon) && readText(`/proc/${conmon}/comm`)?.trim() === 'conmon')
      return { state: 'RUNNING' };
    return this.lookUp(handle, conmon > 0);
  }

  workDir(handle: JobHandle): string {
    return filesOf(handle.ref).work;
  }

  reattach(handle: JobHandle): Promise<AttemptState> {
    return this.poll(handle);
  }

  /**
   * The attempt has no recorded exit and no monitor process: asks the runtime about its
   * container (found by label), at most every 2 s for one attempt.
   */
  private async lookUp(handle: JobHandle, monitorEnded: boolean): Promise<AttemptState> {
    const f = filesOf(handle.ref);
    const now = Date.now();
    let age = Infinity;
    try {
      age = now - statSync(f.run).mtimeMs;
    } catch {
      // no claim: the attempt was never submitted here
    }
    if (!monitorEnded && age < (this.options.startGraceMs ?? 60_000)) return { state: 'RUNNING' };
    if (now - (this.looked.get(handle.ref) ?? 0) < 2000) return { state: 'RUNNING' };
    this.looked.set(handle.ref, now);
    const found = await this.inspect(handle);
    // The wrapper may have recorded the exit while the runtime was asked.
    const exit = recordedExit(f.pid);
    if (exit) return this.finishRecorded(handle, exit);
    if (found === undefined) {
      if (!monitorEnded && age < (this.options.startGraceMs ?? 60_000) * 2)
        return { state: 'RUNNING' };
      return this.settle(handle, {
        version: 1,
        state: 'FAILED',
        reason: monitorEnded
          ? 'Host terminated: the container ended without recording an exit, and is gone'
          : 'CannotStartContainerError: the container was never started',
      });
    }
    if (found.running) return { state: 'RUNNING' };
    const terminated = existsSync(f.reason);
    const cause = found.oomKilled
      ? 'oom'
      : terminated
        ? 'terminated'
        : found.exitCode === 137
          ? 'oom' // the wrapper itself was killed: the OOM killer, the only one that would
          : undefined;
    return this.finish(handle, found.exitCode, cause, found.startedAt, found.stoppedAt);
  }

  /** The attempt's container as the runtime sees it, found by its directory's label. */
  private inspect(handle: JobHandle): Promise<
    | {
        running: boolean;
        exitCode: number;
        oomKilled: boolean;
        startedAt?: number;
        stoppedAt?: number;
      }
    | undefined
  > {
    return new Promise((resolve) => {
      execFile(
        this.runtime.program,
        ['ps', '--all', '--quiet', '--filter', `label=strand.ref=${handle.ref}`],
        (err, out) => {
          const id = out?.trim().split('\n')[0];
          if (err || !id) return resolve(undefined);
          execFile(
            this.runtime.program,
            [
              'inspect',
              '--format',
              '{{.State.Running}} {{.State.ExitCode}} {{.State.OOMKilled}} {{.State.StartedAt.Unix}} {{.State.FinishedAt.Unix}}',
              id,
            ],
            (err2, out2) => {
              if (err2) return resolve(undefined);
              const [running, code, oom, started, finished] = out2.trim().split(' ');
              const ms = (s: string) => (Number(s) > 0 ? Number(s) * 1000 : undefined);
              resolve({
                running: running === 'true',
                exitCode: Number(code),
                oomKilled: oom === 'true',
                startedAt: ms(started),
                stoppedAt: ms(finished),
              });
            },
          );
        },
      );
    });
  }

  /** The end of an attempt whose wrapper recorded its exit. */
  private finishRecorded(
    handle: JobHandle,
    exit: NonNullable<ReturnType<typeof recordedExit>>,
  ): AttemptState {
    const { code, cause, startedAt, stoppedAt, cpuSeconds, peakMemoryMiB } = exit;
    return this.finish(handle, code, cause, startedAt, stoppedAt, { cpuSeconds, peakMemoryMiB });
  }

  private finish(
    handle: JobHandle,
    code: number,
    cause: string | undefined,
    startedAt?: number,
    stoppedAt?: number,
    usage: { cpuSeconds?: number; peakMemoryMiB?: number } = {},
  ): AttemptState {
    const { cpuSeconds, peakMemoryMiB } = usage;
    const reason =
      cause === 'oom'
        ? OOM_REASON
        : cause === 'timeout'
          ? TIMEOUT_REASON
          : cause === 'terminated'
            ? (readText(filesOf(handle.ref).reason) ?? 'Terminated')
            : undefined;
    return this.settle(handle, {
      version: 1,
      state: code === 0 && cause === undefined ? 'SUCCEEDED' : 'FAILED',
      exitCode: code,
      ...(reason === undefined ? {} : { reason }),
      ...(startedAt === undefined ? {} : { startedAt }),
      ...(stoppedAt === undefined ? {} : { stoppedAt }),
      ...(cpuSeconds === undefined ? {} : { cpuSeconds }),
      ...(peakMemoryMiB === undefined ? {} : { peakMemoryMiB }),
    });
  }

  /** Records the final state, then removes the container (its state is in the file now). */
  private settle(handle: JobHandle, state: FinalState): AttemptState {
    writeWhole(filesOf(handle.ref).state, JSON.stringify(state));
    this.watchers.get(handle.ref)?.close();
    this.watchers.delete(handle.ref);
    this.removeContainer(containerName(handle.jobId, handle.attempt));
    const { version: _version, ...rest } = state;
    return rest;
  }

  /** Removes a container in a process of its own, which outlives this one if need be. */
  private removeContainer(name: string): void {
    const child = spawn(this.runtime.program, ['rm', '--force', '--time', '0', name], {
      detached: true,
      stdio: 'ignore',
    });
    child.on('error', () => {});
    child.unref();
  }

  kill(handle: JobHandle, reason: string): Promise<void> {
    const f = filesOf(handle.ref);
    try {
      writeFileSync(f.reason, reason, { flag: 'wx' });
    } catch {
      // stopped before, or never claimed: the first reason stands
    }
    try {
      // A wrapper that has not started yet runs nothing.
      writeFileSync(f.stop, reason);
    } catch {
      // not claimed here: there is nothing to stop
      return Promise.resolve();
    }
    // The stop signal reaches the wrapper, which ends the command (SIGKILL after the grace
    // period); the runtime kills what is left a little later. Its own process, so the stop goes on
    // whether or not this one does.
    const child = spawn(
      this.runtime.program,
      [
        'stop',
        '--time',
        String(this.graceSeconds + 5),
        containerName(handle.jobId, handle.attempt),
      ],
      { detached: true, stdio: 'ignore' },
    );
    child.on('error', () => {});
    child.unref();
    return Promise.resolve();
  }
}
