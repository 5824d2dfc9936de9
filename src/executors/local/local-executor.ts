/**
 * The local executor: each attempt runs under a small wrapper process (job-wrapper.js) in its
 * own process group, with a scratch directory, a log file, a memory limit and a timeout. The
 * wrapper writes its pid first and the exit record last, so any later process can tell whether
 * an attempt is running, finished, or was lost — and never starts it twice.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AttemptState, Executor, JobAttemptSpec, JobHandle } from '../executor.js';

const WRAPPER = fileURLToPath(new URL('./job-wrapper.js', import.meta.url));

export interface LocalExecutorOptions {
  /** Where attempts get their directories: {workRoot}/{jobId}/attempt-{n}/ (scratch in work/). */
  workRoot: string;
  /** Seconds between SIGTERM and SIGKILL (default 10). */
  graceSeconds?: number;
}

function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function statMtime(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export class LocalExecutor implements Executor {
  readonly name = 'local';
  private readonly listeners: ((handle: JobHandle) => void)[] = [];

  onSettled(listener: (handle: JobHandle) => void): void {
    this.listeners.push(listener);
  }
  constructor(private readonly options: LocalExecutorOptions) {}

  private attemptDir(jobId: string, attempt: number): string {
    return join(
      this.options.workRoot,
      jobId.replace(/[^A-Za-z0-9._-]/g, '_'),
      `attempt-${attempt}`,
    );
  }

  async submit(spec: JobAttemptSpec): Promise<JobHandle> {
    const dir = this.attemptDir(spec.jobId, spec.attempt);
    const handle: JobHandle = {
      jobId: spec.jobId,
      attempt: spec.attempt,
      ref: dir,
      logPath: join(dir, 'log.txt'),
    };
    // Started before (perhaps by a process that died): the wrapper recorded itself or the exit.
    if (existsSync(join(dir, 'wrapper.json')) || existsSync(join(dir, 'exit.json'))) return handle;
    // Otherwise (re)start a wrapper. If an earlier one is alive but has not recorded itself
    // yet, the lock file makes this one exit without running anything: never twice.
    const workDir = join(dir, 'work');
    mkdirSync(workDir, { recursive: true });
    if (spec.image && !existsSync(handle.logPath)) {
      writeFileSync(
        handle.logPath,
        `[strand] local executor: image ${spec.image} is not used; the command runs on the host\n`,
      );
    }
    const wrapperSpec = {
      attemptDir: dir,
      workDir,
      logPath: handle.logPath,
      command: spec.command,
      environment: spec.environment,
      memoryMiB: spec.memoryMiB,
      timeoutSeconds: spec.timeoutSeconds,
      graceSeconds: this.options.graceSeconds ?? 10,
    };
    writeFileSync(join(dir, 'spec.json'), JSON.stringify(wrapperSpec));
    const child = spawn(process.execPath, [WRAPPER, join(dir, 'spec.json')], {
      detached: true,
      stdio: 'ignore',
    });
    child.unref();
    // The wrapper is our child while we live: its exit means the exit record is written.
    child.once('exit', () => {
      for (const l of this.listeners) l(handle);
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', reject);
    });
    return handle;
  }

  async poll(handle: JobHandle): Promise<AttemptState> {
    const exit = readJson<{
      exitCode: number;
      reason?: string;
      startedAt: number;
      stoppedAt: number;
    }>(join(handle.ref, 'exit.json'));
    if (exit) {
      const state: AttemptState = {
        state: exit.exitCode === 0 ? 'SUCCEEDED' : 'FAILED',
        exitCode: exit.exitCode,
        startedAt: exit.startedAt,
        stoppedAt: exit.stoppedAt,
      };
      if (exit.reason) state.reason = exit.reason;
      return state;
    }
    const wrapper = readJson<{ pid: number; startTime?: string }>(join(handle.ref, 'wrapper.json'));
    if (!wrapper) {
      // Spawned but not yet recorded, or never got that far: running only if the lock is fresh.
      const specAge = Date.now() - (statMtime(join(handle.ref, 'spec.json')) ?? 0);
      return specAge < 30_000
        ? { state: 'RUNNING' }
        : { state: 'FAILED', reason: 'Host lost: the job process never started' };
    }
    if (startTimeOf(wrapper.pid) === wrapper.startTime) return { state: 'RUNNING' };
    // The wrapper may have written exit.json just after we looked.
    if (existsSync(join(handle.ref, 'exit.json'))) return this.poll(handle);
    return {
      state: 'FAILED',
      reason: 'Host lost: the job process ended without recording an exit code',
    };
  }

  async kill(handle: JobHandle, reason: string): Promise<void> {
    // The reason goes first: a wrapper that has not started the command yet reads it and
    // does not start it at all.
    writeFileSync(join(handle.ref, 'terminate-reason'), reason);
    const deadline = Date.now() + 2000;
    let wrapper = readJson<{ pid: number; startTime?: string }>(join(handle.ref, 'wrapper.json'));
    while (!wrapper && Date.now() < deadline && !existsSync(join(handle.ref, 'exit.json'))) {
      await new Promise((r) => setTimeout(r, 20));
      wrapper = readJson(join(handle.ref, 'wrapper.json'));
    }
    if (!wrapper || startTimeOf(wrapper.pid) !== wrapper.startTime) return;
    try {
      process.kill(wrapper.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }

  reattach(handle: JobHandle): Promise<AttemptState> {
    return this.poll(handle);
  }
}
