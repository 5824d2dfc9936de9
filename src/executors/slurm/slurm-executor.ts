/**
 * The SLURM executor: each attempt the local Batch hands it is one SLURM batch job, which SLURM
 * places on a node of its cluster (the Batch does not hold it back for this machine's cores: its
 * compute environment is the cluster's size, see `capacity`). Strand runs where `sbatch` works
 * (a login node) and the attempts' files are on a file system the nodes share (docs/slurm.md).
 *
 * The job is Strand's static launcher in its `run` mode, exec'd by a batch script that holds no
 * value of the job's: it reads the job's argv and environment from the attempt's request file,
 * then does on the node what it does for the local executor on this machine. It claims the
 * attempt by creating its pid file exclusively (a second job of the same attempt runs nothing),
 * runs the command as argv, enforces the memory limit over all of its processes, the timeout and
 * a terminate (SIGTERM, then SIGKILL after the grace period), and appends the exit line ("exit
 * CODE[ CAUSE] cpu=S mem=M": CPU time and peak memory, measured over the attempt's processes as
 * on this machine) once every process of the attempt has ended. The exit code is read from
 * that file, not from SLURM: accounting (`sacct`) needs slurmdbd, which many clusters' users
 * cannot query and a small cluster does not run.
 *
 * An attempt is, in the work root: `{job}.{n}/` (the working directory), `{job}.{n}.log` (the
 * command's output, and SLURM's own messages about the job), `{job}.{n}.pid` (claim and exit
 * line), `{job}.{n}.request` (argv and environment, readable by the owner only), `{job}.{n}.sh`
 * (the batch script), `{job}.{n}.slurm` (the SLURM job id, written as soon as `sbatch` answers),
 * `{job}.{n}.stop` and `{job}.{n}.reason` (a terminate), `{job}.{n}.state` (an end decided without
 * an exit line, kept so that every later poll gives the same answer) and `{job}.{n}.inputs` (the
 * read-only inputs as they were before the start, checked after the end).
 *
 * Never submitted twice: a submit that finds the job id file returns at once. A submit that
 * finds the attempt's request file from an earlier process but no job id (that process died
 * between `sbatch` and writing the id) asks `squeue --name` for a job of the attempt's unique
 * name before submitting again; and whatever happens, the pid file lets only one job run the
 * command.
 *
 * Polls read the pid file first (the usual end costs no SLURM command). Jobs whose exit has not
 * been recorded are looked up in one `squeue` call for all of them (every job of the user, in any
 * state, at most every `pollMs`, in the background: a slow or failing `squeue` never holds up the
 * Batch). A job that ended in SLURM without an exit line, or vanished from `squeue`, is decided
 * after `exitGraceMs`: the file may just not be visible yet (a shared file system caches
 * directory entries and attributes on each machine, NFS up to a minute). While `squeue` fails,
 * attempts stay RUNNING (their exit lines still end them); once it has failed for
 * `schedulerLostMs`, those without an exit line are failed, naming the error.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import {
  OOM_REASON,
  TIMEOUT_REASON,
  outputFiles,
  recordedExit,
  type AttemptState,
  type Executor,
  type JobAttemptSpec,
  type JobHandle,
} from '../executor.js';
import { imageEntrypoint, type ContainerRuntime } from '../container/runtime.js';
import { nativeRequest } from '../local/launcher.js';
import { changedInputs, nativeLauncher, recordInputs } from '../local/local-executor.js';
import { readText } from '../../host.js';
import {
  SINFO_FORMAT,
  SQUEUE_FORMAT,
  batchViewOf,
  neverRuns,
  parseSacct,
  parseSbatch,
  parseSinfo,
  parseSqueue,
  partitionCapacity,
  slurmError,
  type SlurmJobInfo,
} from './parse.js';
import { RUNTIME_VARIABLES, containerCommand } from './container.js';
import {
  batchScript,
  sbatchArguments,
  sbatchEnvironment,
  slurmJobName,
  type SbatchSettings,
} from './script.js';

/** A SLURM command that failed in a way the user must fix (not there, refused, no partition). */
export class SlurmError extends Error {
  readonly code = 'SLURM';
  constructor(message: string) {
    super(message);
    this.name = 'SlurmError';
  }
}

export interface SlurmExecutorOptions {
  /** Where attempts get their files: on a file system every node shares. */
  workRoot: string;
  /** What every job is submitted with: partition, account, QOS, more `sbatch` options. */
  settings?: SbatchSettings;
  /** Seconds between SIGTERM and SIGKILL when an attempt is stopped (default 10). */
  graceSeconds?: number;
  /** Least time between two `squeue` calls (default 10 s). */
  pollMs?: number;
  /** How long a SLURM command may take before it counts as failed (default 30 s). */
  commandTimeoutMs?: number;
  /**
   * How long a job that ended in SLURM (or vanished from `squeue`) may go without its exit line
   * showing before it is decided without (default 60 s: NFS's longest attribute cache).
   */
  exitGraceMs?: number;
  /** How long `squeue` may keep failing before attempts without an exit line fail (default 10 min). */
  schedulerLostMs?: number;
  /**
   * The static launcher jobs run (default: the one `npm run build` made). It is copied beside
   * the work root, so nodes that see the work root see it too.
   */
  launcher?: string;
  /** The SLURM programs (default: found on PATH). */
  programs?: Partial<Record<'sbatch' | 'squeue' | 'scancel' | 'sinfo' | 'sacct', string>>;
  /**
   * Runs each job in its step's image, with this runtime on the node (its images must be in the
   * node's store); none: the command runs on the node itself.
   */
  container?: { runtime: ContainerRuntime; network?: string; volumes?: string[] };
  /**
   * The vCPUs and memory Strand hands to SLURM at once (the compute environment's size); what is
   * not given: the partition's nodes', from `sinfo`.
   */
  capacity?: { vcpus?: number; memoryMiB?: number };
}

interface Files {
  work: string;
  log: string;
  pid: string;
  stop: string;
  reason: string;
  request: string;
  script: string;
  jobId: string;
  state: string;
  inputs: string;
}

function filesOf(ref: string): Files {
  return {
    work: ref,
    log: `${ref}.log`,
    pid: `${ref}.pid`,
    stop: `${ref}.stop`,
    reason: `${ref}.reason`,
    request: `${ref}.request`,
    script: `${ref}.sh`,
    jobId: `${ref}.slurm`,
    state: `${ref}.state`,
    inputs: `${ref}.inputs`,
  };
}

/** An end decided without an exit line (`{job}.{n}.state`). */
interface FinalState {
  version: 1;
  state: 'FAILED';
  exitCode?: number;
  reason: string;
}

/** Writes a file whole: a reader sees the old content or the new, never part of it. */
function writeWhole(path: string, text: string, mode?: number): void {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, text, mode === undefined ? {} : { mode });
  renameSync(temp, path);
}

function mtimeOf(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** One `squeue` answer for every job of the user. */
interface Snapshot {
  /** When the call was made (a job submitted after it cannot be in it). */
  askedAt: number;
  jobs?: Map<string, SlurmJobInfo>;
  error?: string;
}

/** A duration for messages: whole seconds, tenths below ten. */
const seconds = (ms: number) =>
  ms >= 10_000 ? `${Math.round(ms / 1000)} s` : `${Number((ms / 1000).toFixed(1))} s`;

export class SlurmExecutor implements Executor {
  readonly name = 'slurm';
  /** With containers, jobs see only their image and what is mounted (see Executor.isolated). */
  readonly isolated: boolean;
  /** Images' entrypoints, looked up once each. */
  private readonly entrypoints = new Map<string, Promise<string[]>>();
  /** Submits in flight in this process, by attempt directory. */
  private readonly starting = new Map<string, Promise<JobHandle>>();
  private snapshot: Snapshot | undefined;
  private refreshing: Promise<void> | undefined;
  /** Since when `squeue` has failed without a success in between. */
  private failingSince: number | undefined;
  /** Attempts whose job ended in SLURM, or left `squeue`, without an exit line: since when. */
  private readonly unsettled = new Map<string, number>();
  /** Attempts whose stop has been made sure of with a plain `scancel`. */
  private readonly cancelled = new Set<string>();
  private launcherCopy: string | undefined;
  private clusterSize: { vcpus: number; memoryMiB: number } | undefined;
  /** `squeue` and `sbatch` calls made (what the benchmark and the tests count). */
  readonly calls = { squeue: 0, sbatch: 0 };

  constructor(private readonly options: SlurmExecutorOptions) {
    this.isolated = options.container !== undefined;
  }

  private get graceSeconds(): number {
    return this.options.graceSeconds ?? 10;
  }

  private get exitGraceMs(): number {
    return this.options.exitGraceMs ?? 60_000;
  }

  private program(name: keyof NonNullable<SlurmExecutorOptions['programs']>): string {
    return this.options.programs?.[name] ?? name;
  }

  /** Runs a SLURM command (argv, never a shell), within the command timeout. */
  private command(name: 'sbatch' | 'squeue' | 'scancel' | 'sacct', args: string[]) {
    return new Promise<CommandResult>((resolve) => {
      execFile(
        this.program(name),
        args,
        {
          timeout: this.options.commandTimeoutMs ?? 30_000,
          killSignal: 'SIGKILL',
          env: sbatchEnvironment(process.env),
        },
        (err, stdout, stderr) => {
          const e = err as (NodeJS.ErrnoException & { killed?: boolean; code?: unknown }) | null;
          resolve({
            code: e ? (typeof e.code === 'number' ? e.code : 1) : 0,
            stdout: String(stdout),
            stderr: e && typeof e.code === 'string' ? `${name}: ${e.message}` : String(stderr),
            timedOut: Boolean(e?.killed),
          });
        },
      );
    });
  }

  private handleOf(jobId: string, attempt: number): JobHandle {
    const safe = jobId.replace(/[^A-Za-z0-9._-]/g, '_');
    const ref = join(this.options.workRoot, `${safe}.${attempt}`);
    return { jobId, attempt, ref, logPath: filesOf(ref).log };
  }

  workDir(handle: JobHandle): string {
    return filesOf(handle.ref).work;
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

  /**
   * The launcher where the nodes find it: a copy beside the work root, named by its content (a
   * rebuilt launcher is a new file; a job that runs the old one keeps it).
   */
  private launcherOnShare(): string {
    if (this.launcherCopy) return this.launcherCopy;
    const source = this.options.launcher ?? nativeLauncher();
    if (!source)
      throw new SlurmError(
        "the slurm executor needs Strand's native launcher (dist/strand-launcher), which was not built: run npm run build with a C compiler (apt-get install gcc libc6-dev)",
      );
    const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 12);
    const target = join(dirname(this.options.workRoot), 'bin', `strand-launcher-${hash}`);
    if (!existsSync(target)) {
      mkdirSync(dirname(target), { recursive: true });
      const temp = `${target}.${process.pid}.tmp`;
      copyFileSync(source, temp);
      chmodSync(temp, 0o755);
      renameSync(temp, target);
    }
    this.launcherCopy = target;
    return target;
  }

  private async start(spec: JobAttemptSpec, handle: JobHandle): Promise<JobHandle> {
    const f = filesOf(handle.ref);
    if (existsSync(f.jobId) || existsSync(f.state)) return handle; // submitted before
    const name = slurmJobName(spec.jobId, spec.attempt, handle.ref);
    // An earlier process wrote the request and may have died between `sbatch` and recording the
    // job's id: a job of this attempt's name (or its claim, if it already ran) means it did.
    if (existsSync(f.request)) {
      const found = await this.findByName(name);
      if (found) {
        writeWhole(f.jobId, `${found}\n`);
        return handle;
      }
      // It ran (its wrapper claimed the attempt) and SLURM has forgotten it: the pid file is all.
      if (existsSync(f.pid)) return handle;
    }
    mkdirSync(this.options.workRoot, { recursive: true });
    const launcher = this.launcherOnShare();
    const run = await this.runOnNode(spec, handle, launcher);
    const request = nativeRequest('0', {
      pidPath: f.pid,
      stopPath: f.stop,
      logPath: f.log,
      ...run,
    });
    if (request === undefined)
      throw new SlurmError(`job ${spec.jobId}: a path, argument or variable holds a NUL byte`);
    // Only the owner reads it: it holds the job's environment (its secrets among them).
    writeWhole(f.request, request, 0o600);
    if (spec.readOnlyPaths?.length) recordInputs(f.inputs, spec.readOnlyPaths);
    writeWhole(
      f.script,
      batchScript({ launcher, request: f.request, jobId: spec.jobId, attempt: spec.attempt }),
      0o700,
    );
    writeFileSync(
      f.log,
      !spec.image
        ? ''
        : this.options.container
          ? `[strand] slurm: image ${spec.image}, run by ${this.options.container.runtime.name} on the node\n`
          : `[strand] slurm: image ${spec.image} is not used; the command runs on the node\n`,
      { flag: 'a' },
    );
    const args = sbatchArguments(
      {
        name,
        vcpus: spec.vcpus,
        memoryMiB: spec.memoryMiB,
        ...(spec.timeoutSeconds === undefined ? {} : { timeoutSeconds: spec.timeoutSeconds }),
        graceSeconds: this.graceSeconds,
        output: f.log,
        chdir: this.options.workRoot,
        script: f.script,
      },
      this.options.settings,
    );
    this.calls.sbatch++;
    const r = await this.command('sbatch', args);
    const id = r.code === 0 ? parseSbatch(r.stdout) : undefined;
    if (id === undefined) {
      // A timed-out sbatch may have been taken: look before calling it refused.
      const found = r.timedOut ? await this.findByName(name) : undefined;
      if (found === undefined) {
        const why = r.timedOut
          ? `sbatch did not answer within ${seconds(this.options.commandTimeoutMs ?? 30_000)}`
          : `sbatch refused it: ${slurmError(r.stderr, `exit code ${r.code}`)}`;
        throw new SlurmError(
          `job ${spec.jobId} (${this.describe(spec)}): ${why}${r.timedOut ? '' : ` (sbatch ${args.slice(0, -1).join(' ')})`}`,
        );
      }
      writeWhole(f.jobId, `${found}\n`);
      return handle;
    }
    writeWhole(f.jobId, `${id}\n`);
    return handle;
  }

  /**
   * What the node's launcher runs for an attempt: the step's command on the node with the
   * attempt's limits; or, with containers, the runtime's `run` of its image in the foreground,
   * under the container's limits (the launcher inside enforces the timeout), the runtime's own
   * variables for it, and the job's passed into the container by name.
   */
  private async runOnNode(
    spec: JobAttemptSpec,
    handle: JobHandle,
    launcher: string,
  ): Promise<{
    dirs: string[];
    stdoutPath?: string;
    limits: string;
    command: string[];
    env: Record<string, string>;
    readOnly: string[];
  }> {
    const f = filesOf(handle.ref);
    const { dirs, stdoutPath } = outputFiles(f.work, spec.environment);
    const container = this.options.container;
    if (!container)
      return {
        dirs,
        ...(stdoutPath === undefined ? {} : { stdoutPath }),
        limits: `${spec.memoryMiB}:${spec.timeoutSeconds ?? ''}:${this.graceSeconds}`,
        command: spec.command,
        env: spec.environment,
        readOnly: spec.readOnlyPaths ?? [],
      };
    if (!spec.image)
      throw new SlurmError(
        `job ${spec.jobId} has no image (executors.slurm.containers runs each job in its step's image)`,
      );
    const { argv, environment } = containerCommand(
      {
        jobId: spec.jobId,
        attempt: spec.attempt,
        ref: handle.ref,
        image: spec.image,
        entrypoint: await this.entrypoint(spec.image),
        command: spec.command,
        environment: spec.environment,
        vcpus: spec.vcpus,
        memoryMiB: spec.memoryMiB,
        ...(spec.timeoutSeconds === undefined ? {} : { timeoutSeconds: spec.timeoutSeconds }),
        graceSeconds: this.graceSeconds,
        ...(stdoutPath === undefined ? {} : { stdoutPath }),
        // An input that is not there yet (a store nothing was published to) has nothing to show.
        readOnlyPaths: (spec.readOnlyPaths ?? []).filter((p) => existsSync(p)),
      },
      { ...container, launcher },
    );
    const runtimeEnv: Record<string, string> = {};
    for (const [name, value] of Object.entries(process.env))
      if (value !== undefined && RUNTIME_VARIABLES.test(name)) runtimeEnv[name] = value;
    return {
      // The mounted directory of the wrapper inside (its pid and stop files) is made first.
      dirs: [...dirs, `${handle.ref}.run`],
      // Memory: the container's; the timeout: the wrapper's inside, the grace period its too.
      limits: `0::${this.graceSeconds + 5}`,
      command: argv,
      env: { ...runtimeEnv, ...environment },
      readOnly: [],
    };
  }

  /** The image's entrypoint as this machine's runtime knows it; none when it does not. */
  private entrypoint(image: string): Promise<string[]> {
    let known = this.entrypoints.get(image);
    if (!known) {
      // Not here: the node's runtime says so, in the job's log.
      known = imageEntrypoint(
        this.options.container!.runtime.program,
        image,
        this.options.commandTimeoutMs ?? 30_000,
      );
      this.entrypoints.set(image, known);
    }
    return known;
  }

  /** What a job asks SLURM for, for messages. */
  private describe(spec: JobAttemptSpec): string {
    const s = this.options.settings ?? {};
    return [
      `${spec.vcpus} vCPU`,
      `${spec.memoryMiB} MiB`,
      ...(spec.timeoutSeconds ? [`timeout ${spec.timeoutSeconds} s`] : []),
      `partition ${s.partition ?? '(default)'}`,
    ].join(', ');
  }

  /** The id of a job of the user called `name` that SLURM still knows, if any. */
  private async findByName(name: string): Promise<string | undefined> {
    const r = await this.command('squeue', [
      '--me',
      '--noheader',
      '--states=all',
      `--name=${name}`,
      `--format=${SQUEUE_FORMAT}`,
    ]);
    if (r.code !== 0) return undefined;
    return [...parseSqueue(r.stdout).values()].find((j) => j.name === name)?.id;
  }

  /** Starts a `squeue` call for every job of the user, unless one is running or was just made. */
  private refresh(now: number): void {
    if (this.refreshing) return;
    if (this.snapshot && now - this.snapshot.askedAt < (this.options.pollMs ?? 10_000)) return;
    const askedAt = Date.now();
    this.calls.squeue++;
    this.refreshing = this.command('squeue', [
      '--me',
      '--noheader',
      '--states=all',
      `--format=${SQUEUE_FORMAT}`,
    ]).then((r) => {
      this.refreshing = undefined;
      if (r.code === 0) {
        this.failingSince = undefined;
        this.snapshot = { askedAt, jobs: parseSqueue(r.stdout) };
      } else {
        this.failingSince ??= askedAt;
        this.snapshot = {
          askedAt,
          error: r.timedOut
            ? `squeue did not answer within ${seconds(this.options.commandTimeoutMs ?? 30_000)}`
            : `squeue failed: ${slurmError(r.stderr, `exit code ${r.code}`)}`,
        };
      }
    });
  }

  /** Waits for the `squeue` call in flight, if any (tests, and the benchmark's end). */
  async settledQueue(): Promise<void> {
    await this.refreshing;
  }

  /** What the last `squeue` call said went wrong, while it keeps failing. */
  get schedulerProblem(): string | undefined {
    return this.snapshot?.error;
  }

  async poll(handle: JobHandle): Promise<AttemptState> {
    const f = filesOf(handle.ref);
    const final = readText(f.state);
    if (final !== undefined) {
      const { version: _version, ...state } = JSON.parse(final) as FinalState;
      return state;
    }
    const exit = recordedExit(f.pid);
    if (exit) return this.finishRecorded(handle, exit);
    if (this.starting.has(handle.ref)) return { state: 'RUNNING' };
    const id = readText(f.jobId)?.trim();
    if (!id) {
      // Submitted by nothing, or its files are gone: after the grace period, it never will be.
      const since = mtimeOf(f.pid) ?? mtimeOf(f.request) ?? mtimeOf(f.script) ?? 0;
      if (Date.now() - since < this.exitGraceMs) return { state: 'RUNNING' };
      const late = recordedExit(f.pid);
      if (late) return this.finishRecorded(handle, late);
      return this.settle(handle, {
        version: 1,
        state: 'FAILED',
        reason: existsSync(f.pid)
          ? `Host lost: job ${handle.jobId} attempt ${handle.attempt} started, but neither its SLURM job id (${f.jobId}) nor its exit line is recorded`
          : `CannotStartContainerError: job ${handle.jobId} attempt ${handle.attempt} was never submitted to SLURM (no job id in ${f.jobId})`,
      });
    }
    const now = Date.now();
    this.refresh(now);
    const snap = this.snapshot;
    const submittedAt = mtimeOf(f.jobId) ?? 0;
    // No answer yet that could list the job.
    if (!snap || snap.askedAt < submittedAt) return { state: 'RUNNING' };
    if (snap.error !== undefined) {
      const failing = now - (this.failingSince ?? now);
      if (failing < (this.options.schedulerLostMs ?? 600_000)) return { state: 'RUNNING' };
      void this.command('scancel', [id]);
      return this.settle(handle, {
        version: 1,
        state: 'FAILED',
        reason: `Host lost: SLURM has not answered for ${seconds(failing)} (${snap.error}); the state of SLURM job ${id} is unknown, and it was cancelled if it still runs`,
      });
    }
    const name = slurmJobName(handle.jobId, handle.attempt, handle.ref);
    const job = snap.jobs?.get(id);
    // An id SLURM gave another job since (a cluster that started over) is not this attempt's.
    const known = job !== undefined && job.name === name ? job : undefined;
    if (known) {
      const view = batchViewOf(id, known.state, known.reason);
      if (view.status === 'RUNNABLE' && neverRuns(known.reason)) {
        void this.command('scancel', [id]);
        return this.settle(handle, {
          version: 1,
          state: 'FAILED',
          reason: `CannotStartContainerError: ${view.statusReason}: no node of the partition can give it what it asks for, or its account or QOS may not (see sinfo and the job's sbatch options in ${f.script} and the executor's settings)`,
        });
      }
      if (view.status === 'RUNNABLE' || view.status === 'STARTING' || view.status === 'RUNNING') {
        this.unsettled.delete(handle.ref);
        this.makeSureStopped(handle, id, now);
        return { state: 'RUNNING' };
      }
    }
    // Ended in SLURM (or gone from squeue) without an exit line: the line may not show yet.
    const since = this.unsettled.get(handle.ref) ?? now;
    this.unsettled.set(handle.ref, since);
    const stopped = readText(f.reason);
    // A job stopped by a terminate before its wrapper claimed the attempt never had a command.
    const neverStarted =
      known?.state === 'CANCELLED' && stopped !== undefined && !existsSync(f.pid);
    if (!neverStarted && now - since < this.exitGraceMs) return { state: 'RUNNING' };
    const late = recordedExit(f.pid);
    if (late) return this.finishRecorded(handle, late);
    this.unsettled.delete(handle.ref);
    const ended = known ?? (await this.accounting(id, name));
    const base = `the exit line of SLURM job ${id} did not appear in ${f.pid} within ${seconds(this.exitGraceMs)} of its end (is the work root on a file system the nodes share?)`;
    if (stopped !== undefined)
      return this.settle(handle, { version: 1, state: 'FAILED', reason: stopped });
    if (!ended)
      return this.settle(handle, {
        version: 1,
        state: 'FAILED',
        reason: `Host lost: SLURM job ${id} is gone from squeue, and ${base}`,
      });
    const view = batchViewOf(id, ended.state, ended.reason);
    if (view.status !== 'FAILED')
      return this.settle(handle, {
        version: 1,
        state: 'FAILED',
        reason: `SLURM job ${id} ended as ${ended.state}, but ${base}`,
      });
    const exitCode = view.exitCode ?? sacctExitCode(ended.exitCode);
    return this.settle(handle, {
      version: 1,
      state: 'FAILED',
      reason: view.statusReason,
      ...(exitCode === undefined ? {} : { exitCode }),
    });
  }

  /** The job as `sacct` remembers it, where the cluster keeps accounting; else undefined. */
  private async accounting(id: string, name: string): Promise<SlurmJobInfo | undefined> {
    const r = await this.command('sacct', [
      '--noheader',
      '--parsable2',
      `--jobs=${id}`,
      '--format=JobID,State,ExitCode,JobName',
    ]);
    if (r.code !== 0) return undefined;
    const job = parseSacct(r.stdout).get(id);
    return job?.name === name ? job : undefined;
  }

  /**
   * A terminated attempt still running after the grace period and some (its wrapper never got
   * the signal: the job was between pending and running when it was sent) is cancelled outright.
   */
  private makeSureStopped(handle: JobHandle, id: string, now: number): void {
    if (this.cancelled.has(handle.ref)) return;
    const asked = mtimeOf(filesOf(handle.ref).reason);
    if (asked === undefined || now - asked < (this.graceSeconds + 30) * 1000) return;
    this.cancelled.add(handle.ref);
    void this.command('scancel', [id]);
  }

  /** The end of an attempt whose wrapper recorded its exit. */
  private finishRecorded(
    handle: JobHandle,
    outer: NonNullable<ReturnType<typeof recordedExit>>,
  ): AttemptState {
    this.unsettled.delete(handle.ref);
    const f = filesOf(handle.ref);
    // In a container, the wrapper inside says how the command ended (an OOM kill among others).
    const inner = this.options.container ? recordedExit(`${handle.ref}.run/pid`) : undefined;
    if (this.options.container && !inner && outer.cause === undefined && outer.code >= 125) {
      const error = lastError(readText(f.log) ?? '');
      return {
        state: 'FAILED',
        exitCode: outer.code,
        reason: /image not known|no such image|unable to find image/i.test(error ?? '')
          ? `CannotPullContainerError: ${error} (the image must be in ${this.options.container.runtime.name}'s store on the node)`
          : `CannotStartContainerError: ${this.options.container.runtime.name} could not run the job's container on the node (exit ${outer.code}${error ? `: ${error}` : ''})`,
        startedAt: outer.startedAt,
        stoppedAt: outer.stoppedAt,
      };
    }
    const exit = inner ?? outer;
    const reason =
      exit.cause === 'oom'
        ? OOM_REASON
        : exit.cause === 'timeout'
          ? TIMEOUT_REASON
          : exit.cause === 'terminated'
            ? (readText(f.reason) ?? 'Terminated')
            : undefined;
    const state: AttemptState = {
      state: exit.code === 0 && exit.cause === undefined ? 'SUCCEEDED' : 'FAILED',
      exitCode: exit.code,
      ...(reason === undefined ? {} : { reason }),
      startedAt: exit.startedAt,
      stoppedAt: exit.stoppedAt,
      ...(exit.cpuSeconds === undefined ? {} : { cpuSeconds: exit.cpuSeconds }),
    };
    // The wrapper outside a container measures the container runtime's client, not the job.
    const peak = this.options.container ? inner?.peakMemoryMiB : outer.peakMemoryMiB;
    if (peak !== undefined) state.peakMemoryMiB = peak;
    // An input changed fails the attempt whatever its exit code: its outputs may rest on it.
    const changed = existsSync(f.inputs) ? changedInputs(f.inputs) : undefined;
    if (changed !== undefined) return { ...state, state: 'FAILED', reason: changed };
    return state;
  }

  private settle(handle: JobHandle, state: FinalState): AttemptState {
    writeWhole(filesOf(handle.ref).state, JSON.stringify(state));
    this.unsettled.delete(handle.ref);
    const { version: _version, ...rest } = state;
    return rest;
  }

  reattach(handle: JobHandle): Promise<AttemptState> {
    return this.poll(handle);
  }

  async kill(handle: JobHandle, reason: string): Promise<void> {
    const f = filesOf(handle.ref);
    await this.starting.get(handle.ref)?.catch(() => undefined);
    try {
      writeFileSync(f.reason, reason, { flag: 'wx' });
    } catch {
      // stopped before: the first reason stands
    }
    // A wrapper that has not claimed the attempt yet will not run the command.
    writeFileSync(f.stop, reason);
    if (this.options.container)
      try {
        writeFileSync(`${handle.ref}.run/stop`, reason); // the wrapper in the container's
      } catch {
        // its directory is made on the node, when the job starts: the outer wrapper's file serves
      }
    const id = readText(f.jobId)?.trim();
    if (!id) return;
    // Pending: cancelled (nothing runs). Running: the wrapper alone is sent SIGTERM, and it ends
    // the command (SIGKILL after its grace period) and records the exit, as on this machine.
    await this.command('scancel', ['--state=PENDING', id]);
    await this.command('scancel', ['--batch', '--signal=TERM', id]);
  }

  /**
   * The vCPUs and memory of the nodes of the partition jobs go to, from `sinfo` (or as the
   * options declare): what the Batch hands SLURM at once. Throws SlurmError naming the problem
   * when SLURM does not answer or has no such partition.
   */
  capacity(): { vcpus: number; memoryMiB: number } {
    const declared = this.options.capacity;
    if (declared?.vcpus !== undefined && declared.memoryMiB !== undefined)
      return { vcpus: declared.vcpus, memoryMiB: declared.memoryMiB };
    if (this.clusterSize) return this.clusterSize;
    let text: string;
    const timeout = this.options.commandTimeoutMs ?? 30_000;
    try {
      text = execFileSync(
        this.program('sinfo'),
        ['--noheader', '--Node', `--format=${SINFO_FORMAT}`],
        { encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] },
      );
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      const said = e.stderr ? slurmError(e.stderr, '') : '';
      const why =
        e.code === 'ENOENT'
          ? 'sinfo is not on PATH'
          : e.code === 'ETIMEDOUT'
            ? `sinfo did not answer within ${seconds(timeout)}${said ? `: ${said}` : ''}`
            : `sinfo: ${said || e.message}`;
      throw new SlurmError(
        `SLURM does not answer here (${why}); Strand must run where sbatch works (a login node), with SLURM_CONF set if the cluster's slurm.conf is not in /etc/slurm`,
      );
    }
    const nodes = parseSinfo(text);
    const partition = this.options.settings?.partition;
    const size = partitionCapacity(nodes, partition);
    if (!size) {
      const partitions = [...new Set(nodes.flatMap((n) => n.partitions))];
      throw new SlurmError(
        partition
          ? `SLURM partition "${partition}" has no node that can run jobs (partitions: ${partitions.join(', ') || 'none'})`
          : `SLURM has no default partition with a node that can run jobs (partitions: ${partitions.join(', ') || 'none'}; set executors.slurm.partition)`,
      );
    }
    this.clusterSize = {
      vcpus: declared?.vcpus ?? size.vcpus,
      memoryMiB: declared?.memoryMiB ?? size.memoryMiB,
    };
    return this.clusterSize;
  }

  close(): void {
    // Nothing runs in this process: jobs are SLURM's, and a `squeue` in flight ends by itself.
  }
}

/** The last `Error: …` line a container runtime wrote to a log, without its prefix. */
function lastError(log: string): string | undefined {
  return log
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^Error:/i.test(l))
    .at(-1)
    ?.replace(/^Error:\s*/i, '');
}

/** sacct's "CODE:SIGNAL" as an exit code (128 + the signal when one ended it). */
function sacctExitCode(text: string | undefined): number | undefined {
  const m = /^(\d+):(\d+)$/.exec(text ?? '');
  if (!m) return undefined;
  return Number(m[2]) > 0 ? 128 + Number(m[2]) : Number(m[1]);
}
