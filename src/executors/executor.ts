/**
 * The contract every compute backend implements (local processes now; containers, SLURM and
 * AWS Batch later). Placement is decided by the Batch scheduler, not here.
 */

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
    };

export interface Executor {
  readonly name: string;
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
  /** Optional: called when an attempt this process started may have ended (so it can poll now). */
  onSettled?(listener: (handle: JobHandle) => void): void;
  /** Optional: releases helpers of this process (jobs keep running). */
  close?(): void;
}
