/**
 * A local AWS Batch: job definitions (with revisions), job queues, compute environments sized
 * by vCPU and memory, jobs moving SUBMITTED → PENDING → RUNNABLE → STARTING → RUNNING →
 * SUCCEEDED/FAILED, retryStrategy with evaluateOnExit, timeouts, array jobs and dependencies.
 * Jobs live in SQLite, so a restarted process re-attaches to them through the executor.
 *
 * Placement is multi-resource (vCPU and memory) across the queue's compute environments in
 * order. A job that cannot fit now does not block smaller ones behind it (backfill), but once
 * it has waited longer than `starvationMs`, nothing new starts on its queue until it fits.
 * A job no compute environment of its queue could ever fit fails at submit, naming the values.
 */
import { randomUUID } from 'node:crypto';
import { cpus, totalmem } from 'node:os';
import type Database from 'better-sqlite3';
import { exhausted } from '../faults.js';
import type { AttemptState, Executor, JobHandle } from '../executors/executor.js';
import { resolveSecrets } from './secrets.js';
import { waitingReasons, type WaitingReason } from './waiting.js';
import { resolveContainer } from './register.js';
import {
  chooseSize,
  elasticRange,
  expectedLeft,
  fitScaling,
  memoryFor,
  sizedCommand,
  sizeParameters,
  timeAt,
  type ElasticRange,
  type Observation,
  type OtherJob,
  type Scaling,
} from './elastic.js';
import type {
  ComputeEnvironment,
  AttemptDetail,
  JobDefinition,
  JobDetail,
  JobQueue,
  JobStatus,
  KeyValuePair,
  RegisterJobDefinitionRequest,
  ResourceRequirement,
  SubmitJobRequest,
} from './types.js';
import {
  ARN,
  BatchInputError,
  computeEnvironmentArn,
  computeEnvironmentDetail,
  formatMiB,
  jobQueueArn,
  jobQueueDetail,
  newComputeEnvironment,
  newJobQueue,
  resourceName,
  updatedComputeEnvironment,
  updatedJobQueue,
  type ComputeEnvironmentDetail,
  type CreateComputeEnvironmentRequest,
  type CreateJobQueueRequest,
  type JobQueueDetail,
  type UpdateComputeEnvironmentRequest,
  type UpdateJobQueueRequest,
} from './resources.js';

export interface LocalBatchOptions {
  db: Database.Database;
  /** The executor of compute environments that name none (the default one, "local"). */
  executor: Executor;
  /**
   * Opens the executor a compute environment names (`podman`, `docker`), on its first job; without
   * it every compute environment runs on `executor`.
   */
  executors?: (name: string) => Executor;
  /** Capacity of the default compute environment "local" (default: this machine). */
  maxvCpus?: number;
  memoryMiB?: number;
  /** How long a job may be passed by smaller ones before it reserves its queue (default 60 s). */
  starvationMs?: number;
  /**
   * Told when the Batch cannot go on because the machine failed it (its database cannot be
   * written, a full disk refuses a job's files); it stops scheduling until it is opened again.
   */
  onFault?: (err: unknown) => void;
  /** Scheduler tick (default 50 ms). */
  tickMs?: number;
  /**
   * How long a job given more than the low end of its range may wait for the jobs that follow one
   * that just ended (default 500 ms; see `settling`).
   */
  settleMs?: number;
  /**
   * The stage-out of attempts of executors that run jobs on this machine (those that give an
   * attempt's working directory): called when an attempt ends, the job recorded as ended once
   * it is done.
   */
  stageOut?: StageOut;
  /**
   * The paths a job reads that its attempts must leave as they are (JobAttemptSpec.readOnlyPaths:
   * mounted read-only, or checked after the end); `isolated` when the attempt runs in a
   * container, which sees only what is mounted. Without it, jobs get none.
   */
  stageIn?: (job: JobDetail, isolated: boolean) => string[];
  /**
   * For executors that run jobs on this machine: makes the inputs a job's values name in a
   * remote store (s3://) local files before an attempt starts, and gives the values that name
   * them instead (and the paths to mount read-only). Undefined: the values are used as they are.
   */
  fetchInputs?: (
    job: JobDetail,
    values: { command: string[]; environment: Record<string, string> },
  ) => Promise<
    { command: string[]; environment: Record<string, string>; readOnlyPaths: string[] } | undefined
  >;
  /**
   * How earlier runs of a job's kind went, for jobs with a range of vCPUs (see elastic.ts):
   * `key` groups jobs of one kind (a pipeline's step), `load` reads their runs. Without it every
   * such job gets the top of its range.
   */
  history?: JobHistory;
  now?: () => number;
}

export interface JobHistory {
  key(job: JobDetail): string | undefined;
  load(key: string): Promise<Observation[]>;
}

/** What this machine has: the default compute environment's size. */
export function thisMachine(): { vcpus: number; memoryMiB: number } {
  return { vcpus: cpus().length, memoryMiB: Math.floor(totalmem() / 1024 / 1024) };
}
const TERMINAL: JobStatus[] = ['SUCCEEDED', 'FAILED'];

const DDL = `
CREATE TABLE IF NOT EXISTS batch_compute_environments (name TEXT PRIMARY KEY, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batch_job_queues (name TEXT PRIMARY KEY, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batch_job_definitions (
  name TEXT NOT NULL, revision INTEGER NOT NULL, detail TEXT NOT NULL, PRIMARY KEY (name, revision));
CREATE TABLE IF NOT EXISTS batch_jobs (
  job_id TEXT PRIMARY KEY, status TEXT NOT NULL, queue TEXT NOT NULL, created_at INTEGER NOT NULL,
  detail TEXT NOT NULL, run TEXT);
CREATE INDEX IF NOT EXISTS batch_jobs_status ON batch_jobs(status);
`;

/** Every job recorded in a Strand database, read without a running Batch (for logs and status). */
export function readJobs(db: Database.Database): JobDetail[] {
  try {
    const rows = db.prepare('SELECT detail FROM batch_jobs ORDER BY created_at, job_id').all() as {
      detail: string;
    }[];
    return rows.map((r) => JSON.parse(r.detail) as JobDetail);
  } catch {
    return []; // no Batch tables yet
  }
}

export interface JobsFilter {
  /** A queue's name or ARN. */
  jobQueue?: string;
  jobStatus?: JobStatus;
}

/** What ListJobs lists of `jobs`: those `filter` selects, array children left to their parent. */
export function listedJobs(jobs: JobDetail[], filter: JobsFilter = {}): JobDetail[] {
  const queueArn = filter.jobQueue && jobQueueArn(resourceName(filter.jobQueue, 'job-queue'));
  return jobs
    .filter((j) => j.arrayProperties?.index === undefined)
    .filter((j) => !queueArn || j.jobQueue === queueArn)
    .filter((j) => !filter.jobStatus || j.status === filter.jobStatus);
}

/** Where and how a job's current attempt runs (kept beside the job, not in DescribeJobs). */
interface RunInfo {
  computeEnvironment: string;
  vcpus: number;
  memoryMiB: number;
  handle?: JobHandle;
  /** When the job first became RUNNABLE and could not be placed. */
  waitingSince?: number;
}

interface ActiveJob {
  detail: JobDetail;
  run?: RunInfo;
  /**
   * The stage-out of its ended attempt (this process's, not persisted: after a restart the
   * attempt is found ended again and staged out again, which is idempotent): running, or done
   * (`error` when it failed for a reason of the job's).
   */
  staging?: { done: boolean; error?: string };
  /** When its size was first put off for the jobs that follow one that ended (`settling`). */
  settlingSince?: number;
}

/** How an attempt ended, as a stage-out is told. */
export interface EndedAttempt {
  /** The attempt's number (1 for the first). */
  attempt: number;
  /** Its working directory on this machine. */
  workDir: string;
  logPath: string;
  state: 'SUCCEEDED' | 'FAILED';
  exitCode?: number;
  startedAt?: number;
  stoppedAt?: number;
}

/**
 * Puts what an ended attempt left (its outputs, its log) where the job's consumers read it, before
 * the job counts as ended (docs/adr/0002-staging.md). A rejection of a machine fault (a full
 * disk) stops the Batch; any other fails the job with its message.
 */
export type StageOut = (job: JobDetail, attempt: EndedAttempt) => Promise<void>;

function requirement(reqs: ResourceRequirement[] | undefined, type: string): number | undefined {
  const r = reqs?.find((x) => x.type === type);
  return r === undefined ? undefined : Number(r.value);
}

function globMatch(pattern: string | undefined, value: string | undefined): boolean {
  if (pattern === undefined) return true;
  const v = value ?? '';
  return pattern.endsWith('*') ? v.startsWith(pattern.slice(0, -1)) : v === pattern;
}

export class LocalBatch {
  private readonly db: Database.Database;
  /** The default executor, and the others by name once opened. */
  private readonly executor: Executor;
  private readonly opened = new Map<string, Executor>();
  private readonly now: () => number;
  private readonly starvationMs: number;
  private readonly settleMs: number;
  /** When an attempt last ended here (epoch ms). */
  private lastEnded = -Infinity;
  private readonly active = new Map<string, ActiveJob>();
  private readonly listeners = new Map<string, ((job: JobDetail) => void)[]>();
  private readonly statusListeners: ((job: JobDetail) => void)[] = [];
  private readonly statements = new Map<string, Database.Statement>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private again = false;
  private closed = false;

  constructor(private readonly options: LocalBatchOptions) {
    this.db = options.db;
    this.executor = options.executor;
    // Timestamps are whole milliseconds, as AWS Batch gives them.
    const clock = options.now ?? Date.now;
    this.now = () => Math.round(clock());
    this.starvationMs = options.starvationMs ?? 60_000;
    this.settleMs = options.settleMs ?? 500;
    this.db.exec(DDL);
    this.ensureDefaults();
    for (const row of this.sql(
      `SELECT detail, run FROM batch_jobs WHERE status NOT IN ('SUCCEEDED', 'FAILED') ORDER BY created_at, job_id`,
    ).all() as { detail: string; run: string | null }[]) {
      const detail = JSON.parse(row.detail) as JobDetail;
      this.active.set(detail.jobId, {
        detail,
        run: row.run ? (JSON.parse(row.run) as RunInfo) : undefined,
      });
    }
    // Attempts that were being handed to the executor when the last process stopped: hand them
    // again (the executor never runs the same attempt twice).
    for (const a of this.active.values()) {
      if (a.detail.status === 'STARTING' && a.run && !a.run.handle) {
        this.start(a, a.run.computeEnvironment, a.run.vcpus, a.run.memoryMiB);
      }
    }
    this.executor.onSettled?.(() => void this.tick());
    this.opened.set(this.executor.name, this.executor);
    this.timer = setInterval(() => void this.tick(), options.tickMs ?? 50);
    // Outstanding jobs keep the process alive (tick() re-evaluates this each time).
    if (this.active.size === 0) this.timer.unref();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const e of this.opened.values()) e.close?.();
  }

  /** What the executor called `name` says it has room for (see Executor.capacity), if anything. */
  private capacityOf(name: string): { vcpus: number; memoryMiB: number } | undefined {
    try {
      let executor = this.opened.get(name);
      if (!executor && this.options.executors) {
        executor = this.options.executors(name);
        executor.onSettled?.(() => void this.tick());
        this.opened.set(name, executor);
      }
      return executor?.capacity?.();
    } catch {
      // Not to be opened (or asked) here: its first job says why.
      return undefined;
    }
  }

  /** The executor the compute environment called `name` runs its jobs on. */
  private executorOf(computeEnvironment: string): Executor {
    const ce = this.placement().environments.get(computeEnvironment);
    const name = ce?.executor ?? this.executor.name;
    let executor = this.opened.get(name);
    if (!executor) {
      if (!this.options.executors)
        throw new BatchInputError(
          `compute environment "${computeEnvironment}" runs on ${name}, and this Batch has no executor of that name`,
        );
      executor = this.options.executors(name);
      executor.onSettled?.(() => void this.tick());
      this.opened.set(name, executor);
    }
    return executor;
  }

  /** The paths an attempt must leave as they are (its inputs), from the stage-in option. */
  private inputsOf(job: JobDetail, isolated = false): { readOnlyPaths?: string[] } {
    const paths = this.options.stageIn?.(job, isolated) ?? [];
    return paths.length > 0 ? { readOnlyPaths: paths } : {};
  }

  /** The executor of the attempt a job runs (or ran last). */
  private executorOfRun(a: ActiveJob): Executor {
    return this.executorOf(a.run?.computeEnvironment ?? 'local');
  }

  /**
   * The executor a queue's jobs run on: its first compute environment's (`local` for a queue or
   * environment that is not there).
   */
  queueExecutor(queue: string): string {
    const { queues, environments } = this.placement();
    const q = queues.get(jobQueueArn(resourceName(queue, 'job-queue')));
    const first = q?.computeEnvironmentOrder[0]?.computeEnvironment.replace(
      /^.*compute-environment\//,
      '',
    );
    return (first && environments.get(first)?.executor) ?? this.executor.name;
  }

  /**
   * A compute environment and a job queue, both called `executor`, whose jobs run on that
   * executor with this machine's capacity (as the default one) or `capacity` (an executor whose
   * jobs run elsewhere): what `strand run --executor` submits to. Returns the queue's name.
   */
  ensureExecutorQueue(executor: string, capacity?: { vcpus: number; memoryMiB: number }): string {
    // A backend that places its jobs itself (SLURM) has its own size: asked here when the caller
    // did not say (a run another process handed to this engine).
    capacity ??= this.capacityOf(executor);
    const machine = this.computeEnvironment('local');
    const local = capacity
      ? { maxvCpus: capacity.vcpus, memoryMiB: capacity.memoryMiB }
      : { maxvCpus: machine.maxvCpus, memoryMiB: machine.memoryMiB };
    const existing = this.placement().environments.get(executor);
    // One created or updated by a request is the user's: kept as declared.
    if (
      !existing?.declared &&
      (existing?.executor !== executor ||
        existing.maxvCpus !== local.maxvCpus ||
        existing.memoryMiB !== local.memoryMiB)
    )
      this.putComputeEnvironment({
        computeEnvironmentName: executor,
        computeEnvironmentArn: computeEnvironmentArn(executor),
        state: 'ENABLED',
        maxvCpus: local.maxvCpus,
        memoryMiB: local.memoryMiB,
        executor,
      });
    if (!this.placement().queues.has(jobQueueArn(executor)))
      this.putJobQueue({
        jobQueueName: executor,
        jobQueueArn: jobQueueArn(executor),
        state: 'ENABLED',
        priority: 1,
        computeEnvironmentOrder: [
          { order: 1, computeEnvironment: computeEnvironmentArn(executor) },
        ],
      });
    return executor;
  }

  private ensureDefaults(): void {
    const machine = thisMachine();
    const given = this.options.maxvCpus !== undefined || this.options.memoryMiB !== undefined;
    const stored = this.placement().environments.get('local');
    // The default environment follows the options it is opened with (this machine's size),
    // unless a request declared it otherwise.
    if (given || !stored?.declared)
      this.putComputeEnvironment({
        computeEnvironmentName: 'local',
        computeEnvironmentArn: computeEnvironmentArn('local'),
        state: stored?.state ?? 'ENABLED',
        maxvCpus: this.options.maxvCpus ?? machine.vcpus,
        memoryMiB: this.options.memoryMiB ?? machine.memoryMiB,
      });
    if (!this.placement().queues.has(jobQueueArn('default')))
      this.putJobQueue({
        jobQueueName: 'default',
        jobQueueArn: jobQueueArn('default'),
        state: 'ENABLED',
        priority: 1,
        computeEnvironmentOrder: [{ order: 1, computeEnvironment: computeEnvironmentArn('local') }],
      });
  }

  private placementCache:
    | {
        version: number;
        queues: Map<string, JobQueue>;
        environments: Map<string, ComputeEnvironment>;
      }
    | undefined;

  /**
   * Queues and compute environments as placement reads them on every pass: parsed once, and
   * again only when the database changed under them (another connection committed, as
   * SQLite's data_version says) or this one wrote one of them.
   */
  private placement(): NonNullable<LocalBatch['placementCache']> {
    const version = (this.sql('PRAGMA data_version').get() as { data_version: number })
      .data_version;
    if (this.placementCache?.version !== version) {
      const environments = new Map<string, ComputeEnvironment>();
      for (const row of this.sql('SELECT detail FROM batch_compute_environments').all() as {
        detail: string;
      }[]) {
        const ce = JSON.parse(row.detail) as ComputeEnvironment;
        environments.set(ce.computeEnvironmentName, ce);
      }
      this.placementCache = {
        version,
        queues: new Map(this.describeJobQueues().map((q) => [q.jobQueueArn, q])),
        environments,
      };
    }
    return this.placementCache;
  }

  /** A prepared statement, compiled once. */
  private sql(text: string): Database.Statement {
    // A write to the queues or compute environments: placement reads them afresh.
    if (/^INSERT OR \w+ INTO batch_(compute_environments|job_queues)/.test(text))
      this.placementCache = undefined;
    let statement = this.statements.get(text);
    if (!statement) this.statements.set(text, (statement = this.db.prepare(text)));
    return statement;
  }

  // ---- resources --------------------------------------------------------------------------

  /** Stores a compute environment as it is. */
  private putComputeEnvironment(ce: ComputeEnvironment): void {
    this.sql('INSERT OR REPLACE INTO batch_compute_environments (name, detail) VALUES (?, ?)').run(
      ce.computeEnvironmentName,
      JSON.stringify(ce),
    );
  }

  /** Stores a job queue as it is. */
  private putJobQueue(q: JobQueue): void {
    this.sql('INSERT OR REPLACE INTO batch_job_queues (name, detail) VALUES (?, ?)').run(
      q.jobQueueName,
      JSON.stringify(q),
    );
  }

  /** The compute environments' names, sorted. */
  private environmentNames(): string[] {
    return [...this.placement().environments.keys()].sort();
  }

  /** CreateComputeEnvironment: a capacity in vCPU and MiB, on an executor. */
  createComputeEnvironment(req: CreateComputeEnvironmentRequest): {
    computeEnvironmentName: string;
    computeEnvironmentArn: string;
  } {
    const ce = newComputeEnvironment(req, thisMachine());
    if (this.placement().environments.has(ce.computeEnvironmentName))
      throw new BatchInputError(
        `compute environment "${ce.computeEnvironmentName}" already exists (update-compute-environment changes it)`,
      );
    this.putComputeEnvironment(ce);
    return {
      computeEnvironmentName: ce.computeEnvironmentName,
      computeEnvironmentArn: ce.computeEnvironmentArn,
    };
  }

  /** UpdateComputeEnvironment: its state, vCPUs or memory. */
  updateComputeEnvironment(req: UpdateComputeEnvironmentRequest): {
    computeEnvironmentName: string;
    computeEnvironmentArn: string;
  } {
    const ce = updatedComputeEnvironment(this.computeEnvironment(req.computeEnvironment), req);
    this.putComputeEnvironment(ce);
    return {
      computeEnvironmentName: ce.computeEnvironmentName,
      computeEnvironmentArn: ce.computeEnvironmentArn,
    };
  }

  /** DeleteComputeEnvironment: only a DISABLED one that no queue names. */
  deleteComputeEnvironment(nameOrArn: string): void {
    const ce = this.computeEnvironment(nameOrArn);
    if (ce.computeEnvironmentName === 'local')
      throw new BatchInputError(
        'compute environment "local" is where Strand runs jobs by default: it can be disabled or resized, not deleted',
      );
    if (ce.state !== 'DISABLED')
      throw new BatchInputError(
        `compute environment "${ce.computeEnvironmentName}" is ENABLED: disable it first (update-compute-environment --state DISABLED)`,
      );
    const users = this.describeJobQueues().filter((q) =>
      q.computeEnvironmentOrder.some(
        (o) =>
          resourceName(o.computeEnvironment, 'compute-environment') === ce.computeEnvironmentName,
      ),
    );
    if (users.length > 0)
      throw new BatchInputError(
        `compute environment "${ce.computeEnvironmentName}" is used by job queue ${users.map((q) => `"${q.jobQueueName}"`).join(', ')}`,
      );
    this.sql('DELETE FROM batch_compute_environments WHERE name = ?').run(
      ce.computeEnvironmentName,
    );
    this.placementCache = undefined;
  }

  /** DescribeComputeEnvironments: every one, by name. */
  describeComputeEnvironments(): ComputeEnvironmentDetail[] {
    const machine = thisMachine();
    return [...this.placement().environments.values()]
      .sort((a, b) => a.computeEnvironmentName.localeCompare(b.computeEnvironmentName))
      .map((ce) => computeEnvironmentDetail(ce, machine));
  }

  /** CreateJobQueue. */
  createJobQueue(req: CreateJobQueueRequest): { jobQueueName: string; jobQueueArn: string } {
    const q = newJobQueue(req, this.environmentNames());
    if (this.placement().queues.has(q.jobQueueArn))
      throw new BatchInputError(
        `job queue "${q.jobQueueName}" already exists (update-job-queue changes it)`,
      );
    this.putJobQueue(q);
    return { jobQueueName: q.jobQueueName, jobQueueArn: q.jobQueueArn };
  }

  /** UpdateJobQueue: its state, priority or compute environments. */
  updateJobQueue(req: UpdateJobQueueRequest): { jobQueueName: string; jobQueueArn: string } {
    const q = updatedJobQueue(this.queue(req.jobQueue), req, this.environmentNames());
    this.putJobQueue(q);
    return { jobQueueName: q.jobQueueName, jobQueueArn: q.jobQueueArn };
  }

  /** DeleteJobQueue: only a DISABLED one with no job outstanding. */
  deleteJobQueue(nameOrArn: string): void {
    const q = this.queue(nameOrArn);
    if (q.jobQueueName === 'default')
      throw new BatchInputError(
        'job queue "default" is where Strand submits jobs by default: it can be disabled or changed, not deleted',
      );
    if (q.state !== 'DISABLED')
      throw new BatchInputError(
        `job queue "${q.jobQueueName}" is ENABLED: disable it first (update-job-queue --state DISABLED)`,
      );
    const outstanding = [...this.active.values()].filter(
      (a) => a.detail.jobQueue === q.jobQueueArn,
    ).length;
    if (outstanding > 0)
      throw new BatchInputError(
        `job queue "${q.jobQueueName}" still has ${outstanding} job(s) not ended: terminate them first`,
      );
    this.sql('DELETE FROM batch_job_queues WHERE name = ?').run(q.jobQueueName);
    this.placementCache = undefined;
  }

  private computeEnvironment(
    nameOrArn: string,
    environments = this.placement().environments,
  ): ComputeEnvironment {
    const name = resourceName(nameOrArn, 'compute-environment');
    const ce = environments.get(name);
    if (!ce) {
      const names = [...environments.keys()].sort();
      throw new BatchInputError(
        `no compute environment named "${name}" (compute environments: ${names.join(', ')})`,
      );
    }
    return ce;
  }

  /** The queues as stored (see describeJobQueuesDetail for DescribeJobQueues' shape). */
  describeJobQueues(): JobQueue[] {
    return (
      this.sql('SELECT detail FROM batch_job_queues ORDER BY name').all() as {
        detail: string;
      }[]
    ).map((r) => JSON.parse(r.detail) as JobQueue);
  }

  /** DescribeJobQueues: every one, by name. */
  describeJobQueuesDetail(): JobQueueDetail[] {
    return this.describeJobQueues().map(jobQueueDetail);
  }

  private queue(nameOrArn: string): JobQueue {
    const name = resourceName(nameOrArn, 'job-queue');
    const row = this.sql('SELECT detail FROM batch_job_queues WHERE name = ?').get(name) as
      { detail: string } | undefined;
    if (!row) {
      const names = this.describeJobQueues().map((q) => q.jobQueueName);
      throw new BatchInputError(`no job queue named "${name}" (queues: ${names.join(', ')})`);
    }
    return JSON.parse(row.detail) as JobQueue;
  }

  /** RegisterJobDefinition: each registration of a name adds a revision. */
  registerJobDefinition(req: RegisterJobDefinitionRequest): {
    jobDefinitionName: string;
    jobDefinitionArn: string;
    revision: number;
  } {
    if (
      !req.jobDefinitionName ||
      !/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/.test(req.jobDefinitionName)
    ) {
      throw new BatchInputError(
        `jobDefinitionName ${JSON.stringify(req.jobDefinitionName)} must be 1-128 letters, digits, - or _`,
      );
    }
    if (
      !req.containerProperties ||
      (!Array.isArray(req.containerProperties.command) &&
        req.containerProperties.command !== undefined)
    ) {
      throw new BatchInputError(
        `job definition "${req.jobDefinitionName}": containerProperties.command must be an array of strings`,
      );
    }
    const secrets: unknown = req.containerProperties.secrets;
    if (
      secrets !== undefined &&
      !(
        Array.isArray(secrets) &&
        secrets.every(
          (x: { name?: unknown; valueFrom?: unknown } | null) =>
            typeof x?.name === 'string' &&
            /^[A-Za-z_][A-Za-z0-9_]*$/.test(x.name) &&
            typeof x.valueFrom === 'string' &&
            x.valueFrom !== '',
        )
      )
    ) {
      throw new BatchInputError(
        `job definition "${req.jobDefinitionName}": containerProperties.secrets must be a list of { name, valueFrom }, each name an environment variable name`,
      );
    }
    const last = this.sql(
      'SELECT MAX(revision) AS r FROM batch_job_definitions WHERE name = ?',
    ).get(req.jobDefinitionName) as { r: number | null };
    const revision = (last.r ?? 0) + 1;
    const def: JobDefinition = {
      ...req,
      type: 'container',
      revision,
      status: 'ACTIVE',
      jobDefinitionArn: `${ARN}:job-definition/${req.jobDefinitionName}:${revision}`,
    };
    this.sql('INSERT INTO batch_job_definitions (name, revision, detail) VALUES (?, ?, ?)').run(
      req.jobDefinitionName,
      revision,
      JSON.stringify(def),
    );
    return {
      jobDefinitionName: def.jobDefinitionName,
      jobDefinitionArn: def.jobDefinitionArn,
      revision,
    };
  }

  /**
   * A definition by "name", "name:revision" or ARN (the latest ACTIVE revision when none is
   * given, as AWS Batch resolves it).
   */
  jobDefinition(ref: string): JobDefinition {
    const m = /^(?:.*job-definition\/)?([^:]+)(?::(\d+))?$/.exec(ref);
    const row = (
      m?.[2]
        ? this.sql('SELECT detail FROM batch_job_definitions WHERE name = ? AND revision = ?').get(
            m[1],
            Number(m[2]),
          )
        : this.sql(
            `SELECT detail FROM batch_job_definitions WHERE name = ? AND json_extract(detail, '$.status') = 'ACTIVE'
             ORDER BY revision DESC LIMIT 1`,
          ).get(m?.[1] ?? ref)
    ) as { detail: string } | undefined;
    if (!row)
      throw new BatchInputError(
        `no job definition "${ref}"; register it first (strand batch register)`,
      );
    return JSON.parse(row.detail) as JobDefinition;
  }

  /**
   * DeregisterJobDefinition: the revision "name:revision" (or its ARN) becomes INACTIVE; jobs
   * submitted with it carry on, new ones cannot name it.
   */
  deregisterJobDefinition(ref: string): void {
    if (!/^(?:.*job-definition\/)?[^:]+:\d+$/.test(ref))
      throw new BatchInputError(
        `jobDefinition "${ref}": name the revision to deregister (name:revision or its ARN)`,
      );
    const def = this.jobDefinition(ref);
    this.sql('UPDATE batch_job_definitions SET detail = ? WHERE name = ? AND revision = ?').run(
      JSON.stringify({ ...def, status: 'INACTIVE' }),
      def.jobDefinitionName,
      def.revision,
    );
  }

  describeJobDefinitions(name?: string): JobDefinition[] {
    const rows = (
      name
        ? this.sql('SELECT detail FROM batch_job_definitions WHERE name = ? ORDER BY revision').all(
            name,
          )
        : this.sql('SELECT detail FROM batch_job_definitions ORDER BY name, revision').all()
    ) as { detail: string }[];
    return rows.map((r) => JSON.parse(r.detail) as JobDefinition);
  }

  // ---- jobs -------------------------------------------------------------------------------

  /**
   * What a submission would run: the command with `Ref::` parameters substituted, the image and
   * the environment (definition, then overrides). Throws BatchInputError for an unknown definition.
   * As AWS Batch does, a command item is replaced only when it is exactly `Ref::name` of a
   * parameter given; `Ref::` inside longer text, or of no parameter, stays as written.
   */
  resolveContainer(
    req: SubmitJobRequest,
    def: JobDefinition = this.jobDefinition(req.jobDefinition),
  ): {
    parameters: Record<string, string>;
    image?: string;
    command: string[];
    environment: Map<string, string>;
    /** The executor the job's queue runs it on. */
    executor: string;
  } {
    return { ...resolveContainer(def, req), executor: this.queueExecutor(req.jobQueue) };
  }

  /**
   * SubmitJob. `jobId` may be given to make the submission idempotent (the Step Functions
   * integration derives it from the execution and task); submitting an existing id returns it.
   */
  submitJob(
    req: SubmitJobRequest,
    options: { jobId?: string } = {},
  ): { jobId: string; jobName: string; jobArn: string } {
    if (options.jobId) {
      const existing = this.getJob(options.jobId);
      if (existing)
        return { jobId: existing.jobId, jobName: existing.jobName, jobArn: existing.jobArn };
    }
    if (!req.jobName || !/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/.test(req.jobName)) {
      throw new BatchInputError(
        `jobName ${JSON.stringify(req.jobName)} must be 1-128 letters, digits, - or _, starting with a letter or digit`,
      );
    }
    const queue = this.queue(req.jobQueue);
    if (queue.state !== 'ENABLED')
      throw new BatchInputError(
        `job queue "${queue.jobQueueName}" is DISABLED: it takes no new jobs (update-job-queue --state ENABLED)`,
      );
    const def = this.jobDefinition(req.jobDefinition);
    if (def.status !== 'ACTIVE')
      throw new BatchInputError(
        `job definition ${def.jobDefinitionName}:${def.revision} is ${def.status} (deregistered); submit an ACTIVE revision`,
      );
    const size = req.arrayProperties?.size;
    if (size !== undefined && !(Number.isInteger(size) && size >= 2 && size <= 10_000)) {
      throw new BatchInputError(
        `arrayProperties.size must be an integer from 2 to 10,000, not ${size}`,
      );
    }
    for (const d of req.dependsOn ?? []) {
      if (d.jobId && !this.getJob(d.jobId))
        throw new BatchInputError(`dependsOn: no job with id "${d.jobId}"`);
    }
    const { parameters, command, environment: env } = this.resolveContainer(req, def);
    const cp = def.containerProperties;
    const o = req.containerOverrides ?? {};
    const vcpus =
      requirement(o.resourceRequirements, 'VCPU') ??
      o.vcpus ??
      requirement(cp.resourceRequirements, 'VCPU') ??
      cp.vcpus ??
      1;
    const memory =
      requirement(o.resourceRequirements, 'MEMORY') ??
      o.memory ??
      requirement(cp.resourceRequirements, 'MEMORY') ??
      cp.memory ??
      2048;
    if (!(vcpus > 0) || !(memory > 0))
      throw new BatchInputError(
        `job "${req.jobName}" needs a positive VCPU and MEMORY (got ${vcpus} vCPU, ${memory} MiB)`,
      );
    const jobId = options.jobId ?? randomUUID();
    const now = this.now();
    const detail: JobDetail = {
      jobArn: `${ARN}:job/${jobId}`,
      jobName: req.jobName,
      jobId,
      jobQueue: queue.jobQueueArn,
      status: 'SUBMITTED',
      attempts: [],
      createdAt: now,
      dependsOn: req.dependsOn ?? [],
      jobDefinition: def.jobDefinitionArn,
      parameters,
      container: {
        image: cp.image,
        command,
        environment: [...env].map(([name, value]): KeyValuePair => ({ name, value })),
        // Names and sources only: the values are read when each attempt starts (see start()).
        ...(cp.secrets?.length ? { secrets: cp.secrets.map((x) => ({ ...x })) } : {}),
        resourceRequirements: [
          { type: 'VCPU', value: String(vcpus) },
          { type: 'MEMORY', value: String(memory) },
        ],
      },
      retryStrategy: req.retryStrategy ?? def.retryStrategy,
      timeout: req.timeout ?? def.timeout,
      tags: { ...(def.tags ?? {}), ...(req.tags ?? {}) },
    };
    // Fail now what could never run (AWS would leave it RUNNABLE forever).
    const envs = queue.computeEnvironmentOrder.map((o2) =>
      this.computeEnvironment(o2.computeEnvironment),
    );
    const largest = envs.reduce(
      (a, b) => (b.maxvCpus * 1e6 + b.memoryMiB > a.maxvCpus * 1e6 + a.memoryMiB ? b : a),
      envs[0],
    );
    // A job with a range fits when the low end of it does.
    const range = elasticRange(detail.tags);
    const least = { vcpus: range?.vcpus[0] ?? vcpus, memory: range?.memory?.[0] ?? memory };
    if (!envs.some((ce) => ce.maxvCpus >= least.vcpus && ce.memoryMiB >= least.memory)) {
      detail.status = 'FAILED';
      detail.statusReason = `needs ${range ? 'at least ' : ''}${least.vcpus} vCPU, ${formatMiB(least.memory)}; largest compute environment "${largest.computeEnvironmentName}" on queue "${queue.jobQueueName}" has ${largest.maxvCpus} vCPU, ${formatMiB(largest.memoryMiB)}`;
      detail.stoppedAt = now;
    }
    const rows: JobDetail[] = [detail];
    if (size !== undefined) {
      detail.arrayProperties = { size, statusSummary: {} };
      for (let i = 0; i < size; i++) {
        const deps = [];
        for (const d of detail.dependsOn) {
          if (d.type === 'SEQUENTIAL') continue;
          deps.push(d.type === 'N_TO_N' ? { jobId: `${d.jobId}:${i}` } : { jobId: d.jobId });
        }
        if (detail.dependsOn.some((d) => d.type === 'SEQUENTIAL') && i > 0)
          deps.push({ jobId: `${jobId}:${i - 1}` });
        const copy = structuredClone(detail);
        rows.push({
          ...copy,
          jobArn: `${detail.jobArn}:${i}`,
          jobId: `${jobId}:${i}`,
          dependsOn: deps,
          arrayProperties: { index: i },
          container: {
            ...copy.container,
            environment: [
              ...copy.container.environment,
              { name: 'AWS_BATCH_JOB_ARRAY_INDEX', value: String(i) },
            ],
          },
        });
      }
    }
    const insert = this.sql(
      'INSERT INTO batch_jobs (job_id, status, queue, created_at, detail) VALUES (?, ?, ?, ?, ?)',
    );
    this.db.transaction(() => {
      for (const r of rows)
        insert.run(r.jobId, r.status, queue.jobQueueName, now, JSON.stringify(r));
    })();
    for (const r of rows) if (r.status !== 'FAILED') this.active.set(r.jobId, { detail: r });
    if (detail.status === 'FAILED') this.notify(detail);
    setImmediate(() => void this.tick());
    return { jobId, jobName: detail.jobName, jobArn: detail.jobArn };
  }

  getJob(jobId: string): JobDetail | undefined {
    const live = this.active.get(jobId);
    if (live) return live.detail;
    const row = this.sql('SELECT detail FROM batch_jobs WHERE job_id = ?').get(jobId) as
      { detail: string } | undefined;
    return row ? (JSON.parse(row.detail) as JobDetail) : undefined;
  }

  /** DescribeJobs. */
  describeJobs(jobIds: string[]): JobDetail[] {
    return jobIds.map((id) => this.getJob(id)).filter((j): j is JobDetail => j !== undefined);
  }

  /** ListJobs: by queue and status (array children are not listed, as AWS). */
  listJobs(filter: JobsFilter = {}): JobDetail[] {
    return listedJobs(readJobs(this.db), filter);
  }

  /** Calls back once the job is SUCCEEDED or FAILED (at once if it already is). */
  onceDone(jobId: string, cb: (job: JobDetail) => void): void {
    const job = this.getJob(jobId);
    if (job && TERMINAL.includes(job.status)) {
      cb(job);
      return;
    }
    const list = this.listeners.get(jobId) ?? [];
    list.push(cb);
    this.listeners.set(jobId, list);
  }

  /** Calls `listener` whenever a job changes status (after the change is recorded). */
  onJobStatus(listener: (job: JobDetail) => void): void {
    this.statusListeners.push(listener);
  }

  /**
   * Why each job that has not started waits (waiting.ts), from what this Batch knows now,
   * including since when each has waited to be placed.
   */
  waitingReasons(): Map<string, WaitingReason> {
    const { queues, environments } = this.placement();
    return waitingReasons({
      jobs: [...this.active.values()].map((a) => ({ detail: a.detail, run: a.run })),
      queues: [...queues.values()],
      environments: [...environments.values()],
      lookup: (id) => this.getJob(id),
      now: this.now(),
      starvationMs: this.starvationMs,
    });
  }

  /** TerminateJob / CancelJob: stops a job wherever it is; its array children too. */
  async terminateJob(jobId: string, reason: string): Promise<void> {
    const targets = [...this.active.values()].filter(
      (a) => a.detail.jobId === jobId || a.detail.jobId.startsWith(`${jobId}:`),
    );
    if (targets.length === 0 && !this.getJob(jobId))
      throw new BatchInputError(`no job with id "${jobId}"`);
    for (const a of targets) {
      if (a.detail.status === 'RUNNING' && a.run?.handle) {
        a.detail.statusReason = reason;
        this.save(a);
        await this.executorOfRun(a).kill(a.run.handle, reason);
      } else if (!a.detail.arrayProperties?.size) {
        this.finish(a, 'FAILED', reason);
      }
    }
  }

  // ---- the scheduler ---------------------------------------------------------------------

  private save(a: ActiveJob): void {
    this.sql('UPDATE batch_jobs SET status = ?, detail = ?, run = ? WHERE job_id = ?').run(
      a.detail.status,
      JSON.stringify(a.detail),
      a.run ? JSON.stringify(a.run) : null,
      a.detail.jobId,
    );
  }

  private setStatus(a: ActiveJob, status: JobStatus): void {
    a.detail.status = status;
    this.save(a);
    for (const l of this.statusListeners) l(a.detail);
  }

  private finish(a: ActiveJob, status: 'SUCCEEDED' | 'FAILED', reason?: string): void {
    a.detail.status = status;
    if (reason !== undefined) a.detail.statusReason = reason;
    a.detail.stoppedAt = this.now();
    a.run = undefined;
    this.save(a);
    this.active.delete(a.detail.jobId);
    for (const l of this.statusListeners) l(a.detail);
    this.notify(a.detail);
  }

  private notify(job: JobDetail): void {
    const list = this.listeners.get(job.jobId);
    this.listeners.delete(job.jobId);
    for (const cb of list ?? []) cb(job);
  }

  private depsState(a: ActiveJob): 'ready' | 'waiting' | 'failed' {
    for (const d of a.detail.dependsOn) {
      if (!d.jobId) continue;
      const dep = this.getJob(d.jobId);
      if (!dep || dep.status === 'FAILED') return 'failed';
      if (dep.status !== 'SUCCEEDED') return 'waiting';
    }
    return 'ready';
  }

  /** One pass of the scheduler: dependencies, placement, attempt outcomes, array summaries. */
  async tick(): Promise<void> {
    try {
      await this.tickNow();
    } catch (err) {
      this.fault(err);
    }
  }

  /** Stops scheduling after a fault of the machine and reports it (see onFault). */
  private fault(err: unknown): void {
    if (this.closed) return;
    this.close();
    if (this.options.onFault) this.options.onFault(err);
    else throw err;
  }

  /** The runs of each kind of job, as last loaded (see `refreshHistory`). */
  private readonly histories = new Map<string, { at: number; runs: Observation[] }>();
  /**
   * Runs of each kind that ended in this process, by job id: known at once, before the history
   * (written when the job's outputs are published) has them.
   */
  private readonly recent = new Map<string, Map<string, Observation>>();
  /** The scaling of each kind, fitted from both, until either changes. */
  private readonly scalings = new Map<string, Scaling | undefined>();

  /**
   * Loads the history of the kinds of the jobs that wait with a range of vCPUs or run beside
   * them, when not loaded within the last 2 s (or since one of that kind ended), so that
   * `place` decides from it without waiting.
   */
  private async refreshHistory(): Promise<void> {
    const history = this.options.history;
    if (!history) return;
    const jobs = [...this.active.values()];
    if (!jobs.some((a) => a.detail.status === 'RUNNABLE' && elasticRange(a.detail.tags))) return;
    const keys = new Set<string>();
    for (const a of jobs) {
      const live = ['RUNNABLE', 'STARTING', 'RUNNING'].includes(a.detail.status);
      const key = live ? history.key(a.detail) : undefined;
      if (key !== undefined) keys.add(key);
    }
    const now = this.now();
    for (const key of keys) {
      const known = this.histories.get(key);
      if (known && now - known.at < 2000) continue;
      let runs: Observation[] = [];
      try {
        runs = await history.load(key);
      } catch {
        // Unreadable history: decide as without it.
      }
      this.histories.set(key, { at: now, runs });
      this.scalings.delete(key);
    }
  }

  /** A run of `a` that has just ended well, for its kind's scaling. */
  private learn(a: ActiveJob, attempt: AttemptDetail): void {
    const key = this.options.history?.key(a.detail);
    if (key === undefined || !attempt.startedAt || !attempt.stoppedAt || !attempt.vcpus) return;
    const seconds = (attempt.stoppedAt - attempt.startedAt) / 1000;
    if (!(seconds > 0)) return;
    let runs = this.recent.get(key);
    if (!runs) this.recent.set(key, (runs = new Map()));
    runs.set(a.detail.jobId, {
      id: a.detail.jobId,
      vcpus: attempt.vcpus,
      seconds,
      ...(attempt.cpuSeconds === undefined ? {} : { cpuSeconds: attempt.cpuSeconds }),
    });
    this.scalings.delete(key);
    // The history is read again on a later pass (it gains this run once it is published).
    const known = this.histories.get(key);
    if (known) known.at = 0;
  }

  private scalingOf(job: JobDetail): Scaling | undefined {
    const key = this.options.history?.key(job);
    if (key === undefined) return undefined;
    if (!this.scalings.has(key)) {
      const loaded = this.histories.get(key)?.runs ?? [];
      const seen = new Set(loaded.map((o) => o.id));
      const mine = [...(this.recent.get(key)?.values() ?? [])].filter((o) => !seen.has(o.id));
      this.scalings.set(key, fitScaling([...mine, ...loaded].slice(0, 50)));
    }
    return this.scalings.get(key);
  }

  private async tickNow(): Promise<void> {
    if (this.closed) return;
    if (this.ticking) {
      // Another pass is running: run once more after it, so no event is missed.
      this.again = true;
      return;
    }
    // Keep the process alive while jobs are outstanding; let it exit when there are none.
    if (this.active.size > 0) this.timer?.ref();
    else this.timer?.unref();
    this.ticking = true;
    try {
      // Dependencies.
      for (const a of [...this.active.values()]) {
        if (a.detail.arrayProperties?.size) continue;
        if (a.detail.status === 'SUBMITTED' || a.detail.status === 'PENDING') {
          const deps = this.depsState(a);
          if (deps === 'failed') this.finish(a, 'FAILED', 'Dependent job failed');
          else if (deps === 'ready') this.setStatus(a, 'RUNNABLE');
          else if (a.detail.status === 'SUBMITTED') this.setStatus(a, 'PENDING');
        }
      }
      await this.refreshHistory();
      this.place();
      // Running attempts.
      for (const a of [...this.active.values()]) {
        if ((a.detail.status === 'RUNNING' || a.detail.status === 'STARTING') && a.run?.handle) {
          let executor: Executor;
          try {
            executor = this.executorOfRun(a);
          } catch (err) {
            // Its executor cannot be opened here (a container runtime gone since the job
            // started): the job may still run, so the Batch stops rather than lose it.
            this.fault(err);
            return;
          }
          const s = await executor.poll(a.run.handle);
          if (a.detail.status === 'STARTING' && s.state === 'RUNNING') {
            a.detail.startedAt ??= this.now();
            this.setStatus(a, 'RUNNING');
          }
          if (s.state !== 'RUNNING') {
            if (!this.stagedOut(a, s)) continue;
            const stageError = a.staging?.error;
            a.staging = undefined;
            // A stage-out that failed fails the attempt, whatever the command's exit.
            const staged = stageError === undefined;
            this.attemptEnded(
              a,
              s.exitCode,
              staged ? s.reason : stageError,
              s.startedAt,
              s.stoppedAt,
              staged ? s.state : 'FAILED',
              { cpuSeconds: s.cpuSeconds, peakMemoryMiB: s.peakMemoryMiB },
            );
            // Fill the freed place at once: the engine's work on the outcome (a transaction,
            // the next task) comes after, while the next job already runs.
            this.place();
          }
        }
      }
      this.summariseArrays();
    } finally {
      this.ticking = false;
    }
    if (this.again) {
      this.again = false;
      await this.tick();
    }
  }

  private usage(): Map<string, { vcpus: number; memoryMiB: number }> {
    const used = new Map<string, { vcpus: number; memoryMiB: number }>();
    for (const a of this.active.values()) {
      if (!a.run || (a.detail.status !== 'STARTING' && a.detail.status !== 'RUNNING')) continue;
      const u = used.get(a.run.computeEnvironment) ?? { vcpus: 0, memoryMiB: 0 };
      u.vcpus += a.run.vcpus;
      u.memoryMiB += a.run.memoryMiB;
      used.set(a.run.computeEnvironment, u);
    }
    return used;
  }

  private place(): void {
    // An array parent only sums up its children; it never runs itself.
    const runnable = [...this.active.values()].filter(
      (a) => a.detail.status === 'RUNNABLE' && !a.detail.arrayProperties?.size,
    );
    if (runnable.length === 0) return;
    const { queues, environments } = this.placement();
    runnable.sort(
      (x, y) =>
        (queues.get(y.detail.jobQueue)?.priority ?? 0) -
          (queues.get(x.detail.jobQueue)?.priority ?? 0) ||
        x.detail.createdAt - y.detail.createdAt ||
        (x.detail.arrayProperties?.index ?? 0) - (y.detail.arrayProperties?.index ?? 0),
    );
    const used = this.usage();
    /**
     * Cores kept (counted in `used`) for jobs that wait for a larger size, by compute
     * environment, and when the first of those jobs expects them (epoch ms).
     */
    const held = new Map<string, { vcpus: number; until: number }>();
    const reserved = new Set<string>();
    const now = this.now();
    const started = new Set<ActiveJob>();
    for (const a of runnable) {
      const queue = queues.get(a.detail.jobQueue);
      // A DISABLED queue takes no new jobs, but those in it still run (as on AWS Batch).
      if (!queue || reserved.has(queue.jobQueueArn)) continue;
      let vcpus = requirement(a.detail.container.resourceRequirements, 'VCPU') ?? 1;
      let memoryMiB = requirement(a.detail.container.resourceRequirements, 'MEMORY') ?? 2048;
      const range = elasticRange(a.detail.tags);
      let placed = false;
      /** Compute environments where this job waits for a larger size than is free now. */
      const holds: { name: string; maxvCpus: number; until: number }[] = [];
      for (const o of queue.computeEnvironmentOrder) {
        const ce = this.computeEnvironment(o.computeEnvironment, environments);
        if (ce.state !== 'ENABLED') continue;
        const u = used.get(ce.computeEnvironmentName) ?? { vcpus: 0, memoryMiB: 0 };
        if (range) {
          const size = this.elasticSize(a, range, ce, u, runnable, started, now);
          if (size && 'waitSeconds' in size)
            holds.push({
              name: ce.computeEnvironmentName,
              maxvCpus: ce.maxvCpus,
              until: now + size.waitSeconds * 1000,
            });
          if (!size || 'waitSeconds' in size) continue;
          ({ vcpus, memoryMiB } = size);
          a.detail.sizing = size;
        }
        // Kept cores serve a fixed-size job expected to end before they are wanted (as a
        // backfill does): the job that waits starts no later for it.
        const h = held.get(ce.computeEnvironmentName);
        const backfill =
          !range &&
          h !== undefined &&
          vcpus <= h.vcpus &&
          this.endsBy(a.detail, vcpus, now, h.until);
        const inUse = backfill ? u.vcpus - vcpus : u.vcpus;
        if (inUse + vcpus <= ce.maxvCpus && u.memoryMiB + memoryMiB <= ce.memoryMiB) {
          started.add(a);
          if (backfill) h.vcpus -= vcpus;
          used.set(ce.computeEnvironmentName, {
            vcpus: inUse + vcpus,
            memoryMiB: u.memoryMiB + memoryMiB,
          });
          this.start(a, ce.computeEnvironmentName, vcpus, memoryMiB);
          placed = true;
          break;
        }
      }
      if (!placed) {
        // It waits for a larger size: the cores free now are kept for it. Its size was chosen
        // counting them idle meanwhile; a job behind it taking them would put it off again,
        // until it started smaller after all.
        for (const h of holds) {
          const u = used.get(h.name) ?? { vcpus: 0, memoryMiB: 0 };
          const kept = held.get(h.name);
          const free = Math.max(0, h.maxvCpus - u.vcpus);
          held.set(h.name, {
            vcpus: (kept?.vcpus ?? 0) + free,
            until: Math.min(kept?.until ?? Infinity, h.until),
          });
          used.set(h.name, { vcpus: u.vcpus + free, memoryMiB: u.memoryMiB });
        }
        a.run ??= { computeEnvironment: '', vcpus, memoryMiB };
        a.run.waitingSince ??= now;
        // A job passed over for too long reserves its queue: nothing behind it starts.
        if (now - a.run.waitingSince >= this.starvationMs) reserved.add(queue.jobQueueArn);
      }
    }
  }

  /**
   * Whether `job` at `vcpus` is expected to end by `until` (epoch ms): its kind has history
   * that says so. A job of unknown length is not.
   */
  private endsBy(job: JobDetail, vcpus: number, now: number, until: number): boolean {
    const scaling = this.scalingOf(job);
    return scaling !== undefined && now + timeAt(scaling, vcpus) * 1000 <= until;
  }

  /** The definition a job was submitted with, when it is still known. */
  private definitionOf(job: JobDetail): JobDefinition | undefined {
    try {
      return this.jobDefinition(job.jobDefinition);
    } catch {
      return undefined;
    }
  }

  /**
   * The size of a job with a range of vCPUs on a compute environment with `u` in use: the one
   * expected to end the queue soonest (elastic.ts), given the jobs that wait on its queue and
   * those that run there; undefined when not even the low end fits now; `waitSeconds` when it
   * waits for a larger size, free in about that many seconds.
   */
  private elasticSize(
    a: ActiveJob,
    range: ElasticRange,
    ce: { computeEnvironmentName: string; maxvCpus: number; memoryMiB: number },
    u: { vcpus: number; memoryMiB: number },
    runnable: ActiveJob[],
    started: Set<ActiveJob>,
    now: number,
  ): { vcpus: number; memoryMiB: number; reason: string } | { waitSeconds: number } | undefined {
    const free = ce.maxvCpus - u.vcpus;
    // Not even the low end is free (chooseSize would say so): spare the look at the queue, which
    // every pass makes for each waiting job.
    if (free + 1e-9 < range.vcpus[0]) return undefined;
    const vcpuRange: [number, number] = [range.vcpus[0], Math.min(range.vcpus[1], ce.maxvCpus)];
    const others: OtherJob[] = [];
    for (const o of runnable) {
      if (o === a || started.has(o) || o.detail.jobQueue !== a.detail.jobQueue) continue;
      const r = elasticRange(o.detail.tags);
      const fixed = requirement(o.detail.container.resourceRequirements, 'VCPU') ?? 1;
      others.push({ range: r ? r.vcpus : [fixed, fixed], scaling: this.scalingOf(o.detail) });
    }
    for (const o of this.active.values()) {
      if (!o.run || o.run.computeEnvironment !== ce.computeEnvironmentName) continue;
      if (o.detail.status !== 'STARTING' && o.detail.status !== 'RUNNING') continue;
      const scaling = this.scalingOf(o.detail);
      const elapsed = (now - (o.detail.startedAt ?? now)) / 1000;
      const endsIn = scaling ? expectedLeft(timeAt(scaling, o.run.vcpus), elapsed) : undefined;
      others.push({ range: [o.run.vcpus, o.run.vcpus], running: { vcpus: o.run.vcpus, endsIn } });
    }
    const scaling = this.scalingOf(a.detail);
    const choice = chooseSize(vcpuRange, scaling, free, ce.maxvCpus, others);
    if (!choice) return undefined;
    const fixed = requirement(a.detail.container.resourceRequirements, 'MEMORY') ?? 2048;
    const memory = range.memory ?? [fixed, fixed];
    if (choice.wait) {
      // Waits for a larger size to be free; says so in `batch describe` meanwhile.
      const memoryMiB = memoryFor(memory, vcpuRange, choice.vcpus, Infinity)!;
      a.detail.sizing = { vcpus: choice.vcpus, memoryMiB, reason: choice.reason };
      return { waitSeconds: choice.freeIn ?? 0 };
    }
    // Without history the size does not depend on the queue: nothing to wait for.
    const settle = scaling && choice.vcpus > vcpuRange[0] ? this.settling(a, now) : 0;
    if (settle > 0) {
      a.detail.sizing = {
        vcpus: choice.vcpus,
        memoryMiB: memoryFor(memory, vcpuRange, choice.vcpus, Infinity)!,
        reason: `${choice.reason}; deciding once the jobs that follow one that has just ended are queued`,
      };
      return { waitSeconds: settle / 1000 };
    }
    const memoryMiB = memoryFor(memory, vcpuRange, choice.vcpus, ce.memoryMiB - u.memoryMiB);
    if (memoryMiB === undefined) return undefined;
    return { vcpus: choice.vcpus, memoryMiB, reason: choice.reason };
  }

  /**
   * Milliseconds a job about to get more than the low end of its range (chosen for the queue as
   * it is) waits first, 0 when it need not. When an attempt has just ended, the jobs that follow
   * it are not queued yet: the engine submits them some 100–200 ms later. Two samples whose
   * previous steps end together would otherwise have the first assembly sized as if alone, at
   * the top of its range, and the second wait for it, where both at the low end end sooner. So a
   * larger size waits until `settleMs` after the last end, and a job waits so at most `settleMs`
   * in all (a stream of short jobs ending cannot hold it off).
   */
  private settling(a: ActiveJob, now: number): number {
    if (now - this.lastEnded >= this.settleMs) return 0;
    a.settlingSince ??= now;
    return Math.max(
      0,
      Math.min(this.lastEnded + this.settleMs, a.settlingSince + this.settleMs) - now,
    );
  }

  private start(a: ActiveJob, computeEnvironment: string, vcpus: number, memoryMiB: number): void {
    const attempt = a.detail.attempts.length + 1;
    const run: NonNullable<ActiveJob['run']> = { computeEnvironment, vcpus, memoryMiB };
    a.run = run;
    // The status is recorded with the attempt's handle, once the executor answers (as RUNNING:
    // the process exists then): a restart in between finds the job RUNNABLE, starts the same
    // attempt again, and the executor re-attaches to it (an attempt never runs twice).
    a.detail.status = 'STARTING';
    for (const l of this.statusListeners) l(a.detail);
    if (TERMINAL.includes(a.detail.status)) return; // terminated by a listener: nothing starts
    const queueName = resourceName(a.detail.jobQueue, 'job-queue');
    // A job on this machine finds its tools on this PATH; one in a container, on its image's.
    const environment: Record<string, string> = {};
    let executor: Executor;
    try {
      executor = this.executorOf(computeEnvironment);
    } catch (err) {
      this.attemptEnded(a, undefined, `CannotStartContainerError: ${(err as Error).message}`);
      return;
    }
    if (!executor.isolated) {
      environment.PATH = process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin';
      if (process.env.HOME) environment.HOME = process.env.HOME;
    }
    for (const kv of a.detail.container.environment) environment[kv.name] = kv.value;
    // Secrets go into this attempt's environment only, never into the job's record.
    try {
      Object.assign(environment, resolveSecrets(a.detail.container.secrets));
    } catch (err) {
      this.attemptEnded(
        a,
        undefined,
        `ResourceInitializationError: unable to pull secrets or registry auth: ${(err as Error).message}`,
      );
      return;
    }
    // The size it got, for its command (`-t $STRAND_VCPUS`) and its environment.
    Object.assign(environment, sizeParameters(vcpus, memoryMiB));
    const command = sizedCommand(this.definitionOf(a.detail), a.detail, vcpus, memoryMiB);
    environment.AWS_BATCH_JOB_ID = a.detail.jobId;
    environment.AWS_BATCH_JOB_ATTEMPT = String(attempt);
    environment.AWS_BATCH_JQ_NAME = queueName;
    environment.AWS_BATCH_CE_NAME = computeEnvironment;
    const here = executor.workDir !== undefined;
    void Promise.resolve(
      here ? this.options.fetchInputs?.(a.detail, { command, environment }) : undefined,
    )
      .then((fetched) => {
        const mounted = this.inputsOf(a.detail, executor.isolated).readOnlyPaths ?? [];
        const readOnlyPaths = [...mounted, ...(fetched?.readOnlyPaths ?? [])];
        return executor.submit({
          jobId: a.detail.jobId,
          attempt,
          command: fetched?.command ?? command,
          environment: fetched?.environment ?? environment,
          vcpus,
          memoryMiB,
          timeoutSeconds: a.detail.timeout?.attemptDurationSeconds,
          image: a.detail.container.image,
          ...(readOnlyPaths.length > 0 ? { readOnlyPaths } : {}),
        });
      })
      .then(
        (handle) => {
          // Closed meanwhile: the attempt runs on, and the next engine re-attaches to it.
          if (this.closed) return;
          run.handle = handle;
          a.detail.container.logStreamName = handle.logPath;
          // The executor answers once the attempt's process exists: it is RUNNING, recorded
          // with its handle in one write (a restart re-attaches through the handle).
          try {
            if (a.detail.status === 'STARTING') {
              a.detail.startedAt ??= this.now();
              this.setStatus(a, 'RUNNING');
            } else if (TERMINAL.includes(a.detail.status)) {
              // Terminated while it was starting: stop what has just started.
              executor.kill(handle, a.detail.statusReason ?? 'Terminated').catch(() => {});
              return;
            } else this.save(a);
          } catch (err) {
            // The write failed (a full disk): the Batch stops, as a failed tick stops it.
            this.fault(err);
            return;
          }
          void this.tick();
        },
        (err: unknown) => {
          // Closed, or terminated while it was starting: nothing is left to record.
          if (this.closed || TERMINAL.includes(a.detail.status)) return;
          // A full disk is the machine's fault, not the job's: stop, and start it on resume.
          if (exhausted(err)) {
            this.fault(err);
            return;
          }
          this.attemptEnded(a, undefined, `CannotStartContainerError: ${(err as Error).message}`);
        },
      );
  }

  /**
   * Whether the ended attempt of `a` has been staged out (or needs none); if not, starts its
   * stage-out, and the tick after it is done records the end.
   */
  private stagedOut(a: ActiveJob, s: AttemptState): boolean {
    const stageOut = this.options.stageOut;
    const handle = a.run?.handle;
    const executor = this.executorOfRun(a);
    const workDir = handle && executor.workDir?.(handle);
    if (!stageOut || !handle || workDir === undefined || s.state === 'RUNNING') return true;
    if (a.staging) return a.staging.done;
    const staging: NonNullable<ActiveJob['staging']> = { done: false };
    a.staging = staging;
    stageOut(a.detail, {
      attempt: a.detail.attempts.length + 1,
      workDir,
      logPath: handle.logPath,
      state: s.state,
      ...(s.exitCode === undefined ? {} : { exitCode: s.exitCode }),
      ...(s.startedAt === undefined ? {} : { startedAt: s.startedAt }),
      ...(s.stoppedAt === undefined ? {} : { stoppedAt: s.stoppedAt }),
    }).then(
      () => {
        staging.done = true;
        void this.tick();
      },
      (err: unknown) => {
        // A full disk is the machine's fault: stop; the attempt is staged out again on resume.
        if (exhausted(err)) {
          a.staging = undefined;
          this.fault(err);
          return;
        }
        staging.error = `StageOutError: ${(err as Error).message}`;
        staging.done = true;
        void this.tick();
      },
    );
    return false;
  }

  private attemptEnded(
    a: ActiveJob,
    exitCode: number | undefined,
    reason: string | undefined,
    startedAt?: number,
    stoppedAt?: number,
    state?: 'SUCCEEDED' | 'FAILED',
    usage: { cpuSeconds?: number; peakMemoryMiB?: number } = {},
  ): void {
    const { cpuSeconds, peakMemoryMiB } = usage;
    this.lastEnded = this.now();
    const logStreamName = a.run?.handle?.logPath ?? '';
    const statusReason =
      reason ??
      (exitCode === 0
        ? 'Essential container in task exited'
        : `Essential container in task exited`);
    const container: { exitCode?: number; reason?: string; logStreamName: string } = {
      logStreamName,
    };
    if (exitCode !== undefined) container.exitCode = exitCode;
    if (reason !== undefined) container.reason = reason;
    // Whole milliseconds, in order as AWS Batch gives them: createdAt ≤ startedAt ≤ each
    // attempt's start ≤ its stop ≤ the next attempt's start ≤ stoppedAt. The executor's times
    // come from the process (fractional, and the start a little before the job was seen
    // RUNNING): kept within that order.
    const now = this.now();
    const floor = a.detail.attempts.at(-1)?.stoppedAt ?? a.detail.createdAt;
    const start = Math.min(
      Math.max(Math.round(startedAt ?? a.detail.startedAt ?? now), floor),
      now,
    );
    const stop = Math.min(Math.max(Math.round(stoppedAt ?? now), start), now);
    if (a.detail.startedAt === undefined || a.detail.startedAt > start) a.detail.startedAt = start;
    const ended: AttemptDetail = {
      container,
      startedAt: start,
      stoppedAt: stop,
      statusReason,
      ...(a.run ? { vcpus: a.run.vcpus, memoryMiB: a.run.memoryMiB } : {}),
      ...(cpuSeconds === undefined ? {} : { cpuSeconds }),
      ...(peakMemoryMiB === undefined ? {} : { peakMemoryMiB }),
    };
    a.detail.attempts.push(ended);
    if (exitCode === 0 && state !== 'FAILED') this.learn(a, ended);
    if (exitCode !== undefined) a.detail.container.exitCode = exitCode;
    if (reason !== undefined) a.detail.container.reason = reason;
    a.detail.container.logStreamName = logStreamName;
    // The executor may fail an attempt that exited 0 (a read-only input changed).
    if (exitCode === 0 && state !== 'FAILED') {
      this.finish(a, 'SUCCEEDED', statusReason);
      return;
    }
    const strategy = a.detail.retryStrategy;
    const attempts = strategy?.attempts ?? 1;
    let retry = a.detail.attempts.length < attempts;
    // A terminated job is not retried.
    if (a.detail.statusReason !== undefined && reason === a.detail.statusReason) retry = false;
    // Nor one that changed a read-only input: another attempt would start from the changed file.
    if (reason?.startsWith('InputChangedError:')) retry = false;
    if (retry && strategy?.evaluateOnExit?.length) {
      const rule = strategy.evaluateOnExit.find(
        (r) =>
          globMatch(r.onExitCode, exitCode === undefined ? undefined : String(exitCode)) &&
          globMatch(r.onReason, reason) &&
          globMatch(r.onStatusReason, statusReason),
      );
      // With evaluateOnExit, an attempt no rule matches is retried (AWS's default action).
      if (rule) retry = rule.action.toUpperCase() === 'RETRY';
    }
    if (retry) {
      a.run = undefined;
      this.setStatus(a, 'RUNNABLE');
    } else {
      this.finish(
        a,
        'FAILED',
        reason ?? `Essential container in task exited with code ${exitCode}`,
      );
    }
  }

  private summariseArrays(): void {
    for (const a of [...this.active.values()]) {
      const size = a.detail.arrayProperties?.size;
      if (!size) continue;
      const summary: Partial<Record<JobStatus, number>> = {};
      let done = 0;
      let failed = 0;
      for (let i = 0; i < size; i++) {
        const child = this.getJob(`${a.detail.jobId}:${i}`);
        if (!child) continue;
        summary[child.status] = (summary[child.status] ?? 0) + 1;
        if (TERMINAL.includes(child.status)) done++;
        if (child.status === 'FAILED') failed++;
      }
      a.detail.arrayProperties = { size, statusSummary: summary };
      if (done === size) {
        this.finish(
          a,
          failed > 0 ? 'FAILED' : 'SUCCEEDED',
          failed > 0 ? `${failed} of ${size} child jobs failed` : undefined,
        );
      } else {
        const status: JobStatus =
          summary.RUNNING || summary.STARTING
            ? 'RUNNING'
            : summary.RUNNABLE
              ? 'RUNNABLE'
              : 'PENDING';
        if (status !== a.detail.status) this.setStatus(a, status);
        else this.save(a);
      }
    }
  }
}
