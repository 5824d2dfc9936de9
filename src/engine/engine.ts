/**
 * The durable engine: Step Functions' execution API over the pure interpreter, persisted in
 * SQLite. Each event an execution receives (task result, timer, stop) is applied by the
 * interpreter and its new state, history events, timers and outstanding tasks are written in
 * one transaction; effects (invoking tasks) happen only after that commit. On open, the engine
 * re-arms timers and hands outstanding tasks back to their integrations, so executions carry
 * on after a crash.
 */
import { hostname } from 'node:os';
import type {
  Command,
  ExecutionState,
  ExecutionStatus,
  HistoryEvent,
  InputEvent,
  StepResult,
} from '../asl/execution.js';
import { Interpreter } from '../asl/interpreter.js';
import { mockedAnswer, type MockCase } from '../asl/mock-config.js';
import { parseTaskToken } from '../asl/task-token.js';
import type { Json, StateMachineDefinition } from '../asl/types.js';
import { formatProblem, validate } from '../asl/validate.js';
import {
  LocalBatch,
  readJobs,
  type LocalBatchOptions,
  type StageOut,
} from '../batch/local-batch.js';
import { registerIfChanged } from '../batch/register.js';
import type { JobDetail, RegisterJobDefinitionRequest } from '../batch/types.js';
import type { Executor } from '../executors/executor.js';
import { TAG } from '../pipeline/contract.js';
import { BATCH_RESOURCE, BatchIntegration, jobIdFor, type JobCache } from './batch-integration.js';
import { pidAlive } from './control.js';
import { exhausted } from '../faults.js';
import { EngineHaltedError } from './faults.js';
import { LambdaIntegration, type LambdaFunction, type TaskIntegration } from './integrations.js';
import { StatesIntegration, type StateMachineResolver } from './states-integration.js';
import { Store, type ExecutionRow, type RequestRow } from './store.js';

/** Bad input to the engine's API (invalid definition, name clash, unknown execution): exit 2. */
export class EngineInputError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details: string[] = [],
  ) {
    super(message);
    this.name = 'EngineInputError';
  }
}

/** The DescribeExecution response shape. */
export interface ExecutionDescription {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: ExecutionStatus;
  input: string;
  output?: string;
  startDate: string;
  stopDate?: string;
  error?: string;
  cause?: string;
  redriveCount: number;
  /** Strand: the execution whose `states:startExecution` task started this one. */
  parentExecutionArn?: string;
}

export interface EngineOptions {
  /** The Strand home (holds strand.db). */
  home: string;
  /** Integrations besides the built-in lambda, batch and states ones. */
  integrations?: TaskIntegration[];
  /**
   * Finds the definition of a state machine a `states:startExecution` task names (besides
   * those this home has run, the latest definition of each name).
   */
  stateMachines?: StateMachineResolver;
  /** In-process functions for `lambda:invoke`, registered before anything resumes. */
  functions?: Record<string, LambdaFunction>;
  /** Answers `batch:submitJob.sync` tasks from a cache when it can (see BatchIntegration). */
  jobCache?: JobCache;
  /**
   * The local Batch: the executor its jobs run on (from the composition root, see src/app), the
   * executors other compute environments name, and the capacity of its default compute
   * environment (default: this machine). Without an executor the engine answers no Batch
   * resources.
   */
  batch?: {
    executor?: Executor;
    executors?: (name: string) => Executor;
    /** Where an ended attempt's outputs go before the job counts as ended (see LocalBatch). */
    stageOut?: StageOut;
    /** The inputs an attempt must leave as they are (see LocalBatch). */
    stageIn?: LocalBatchOptions['stageIn'];
    /** Inputs in a remote store, made local before an attempt starts (see LocalBatch). */
    fetchInputs?: LocalBatchOptions['fetchInputs'];
    /** Earlier runs of a kind of job, for jobs with a range of vCPUs (see LocalBatch). */
    history?: LocalBatchOptions['history'];
    maxvCpus?: number;
    memoryMiB?: number;
    starvationMs?: number;
  };
  /**
   * Called once the engine holds the home and its Batch exists, before unfinished work resumes:
   * what the engine's functions need of it (its Batch) is there when the first task runs.
   */
  onOpened?: (engine: Engine) => void;
  /** Epoch ms; injectable for tests. */
  now?: () => number;
  random?: () => number;
  /** Called with every history event appended, after it is committed. */
  onEvent?: (executionArn: string, event: HistoryEvent) => void;
  /**
   * Read the home without scheduling: no lease, no timers, no tasks resumed (for listing and
   * describing while another engine runs).
   */
  readOnly?: boolean;
}

/** The suffix of a Task resource that waits for its task token (the callback pattern). */
const WAIT_FOR_TOKEN = '.waitForTaskToken';

/** The service call of a Task resource: without `.waitForTaskToken`, which any one may have. */
function serviceResource(resource: string): string {
  return resource.endsWith(WAIT_FOR_TOKEN) ? resource.slice(0, -WAIT_FOR_TOKEN.length) : resource;
}

/**
 * History events after which a step is committed and continued: a 100,000-item Map is then
 * persisted in pieces, so memory does not hold every event of the whole Map at once.
 */
const MAX_EVENTS_PER_STEP = 20_000;

/** Another live engine owns this home. */
export class EngineBusyError extends Error {
  readonly code = 'ENGINE_BUSY';
  constructor(
    readonly holder: { pid: number; host: string; expires: number },
    home: string,
  ) {
    super(`another Strand engine (pid ${holder.pid} on ${holder.host}) is running on ${home}`);
    this.name = 'EngineBusyError';
  }
}

const LEASE_TTL_MS = 10_000;
const LEASE_RENEW_MS = 3_000;
/** How often the owner looks for requests of other processes (they are answered within it). */
const REQUEST_POLL_MS = 200;
/** Answered requests are kept this long, for a requester that looks late. */
/** How long a file's digest is remembered (then the file is read again once). */
const DIGEST_KEEP_MS = 90 * 24 * 3600 * 1000;
const REQUEST_KEEP_MS = 24 * 3600 * 1000;

export interface StartExecutionRequest {
  definition: StateMachineDefinition;
  input?: Json;
  name?: string;
  stateMachineName?: string;
  /** The execution whose task starts this one (states:startExecution). */
  parentArn?: string;
  /** Mocked responses (a test case of a mock configuration): mocked states call no service. */
  mock?: MockCase;
}

const MAX_TIMER_DELAY = 2 ** 31 - 1;

/** Every Task, ItemReader and ResultWriter resource in a definition, with its state and pointer. */
function taskResources(
  def: StateMachineDefinition,
  base = '',
): { state: string; pointer: string; resource: string }[] {
  const out: { state: string; pointer: string; resource: string }[] = [];
  for (const [name, state] of Object.entries(def.States ?? {})) {
    const pointer = `${base}/States/${name}`;
    if (state.Type === 'Task') out.push({ state: name, pointer, resource: state.Resource });
    if (state.Type === 'Parallel')
      state.Branches.forEach((b, i) => out.push(...taskResources(b, `${pointer}/Branches/${i}`)));
    if (state.Type === 'Map') {
      const processor = state.ItemProcessor ?? state.Iterator;
      if (processor)
        out.push(
          ...taskResources(
            processor,
            `${pointer}/${state.ItemProcessor ? 'ItemProcessor' : 'Iterator'}`,
          ),
        );
      if (state.ItemReader)
        out.push({
          state: name,
          pointer: `${pointer}/ItemReader`,
          resource: state.ItemReader.Resource,
        });
      const writer = state.ResultWriter?.Resource;
      if (typeof writer === 'string')
        out.push({ state: name, pointer: `${pointer}/ResultWriter`, resource: writer });
    }
  }
  return out;
}

function describe(row: ExecutionRow): ExecutionDescription {
  const d: ExecutionDescription = {
    executionArn: row.arn,
    stateMachineArn: row.arn.replace(':execution:', ':stateMachine:').replace(/:[^:]+$/, ''),
    name: row.name,
    status: row.status,
    input: row.input,
    startDate: new Date(row.startDate).toISOString(),
    redriveCount: row.redriveCount,
  };
  if (row.output !== null) d.output = row.output;
  if (row.stopDate !== null) d.stopDate = new Date(row.stopDate).toISOString();
  if (row.error !== null) d.error = row.error;
  if (row.cause !== null) d.cause = row.cause;
  if (row.parentArn !== null) d.parentExecutionArn = row.parentArn;
  return d;
}

export class Engine {
  readonly store: Store;
  readonly lambda = new LambdaIntegration();
  /**
   * Where `states:startExecution` tasks find the state machines they name (set by the CLI:
   * definitions beside the one started, `--state-machine NAME=FILE`).
   */
  stateMachines: StateMachineResolver | undefined;
  /** The local AWS Batch jobs run on (started once the engine holds the lease). */
  batch: LocalBatch | undefined;
  private readonly integrations: TaskIntegration[];
  private readonly now: () => number;
  private readonly random?: () => number;
  private readonly interpreters = new Map<string, Interpreter>();
  /** Each execution's mock test case (null: none), read once from its row. */
  private readonly mocks = new Map<string, MockCase | null>();
  private readonly states = new Map<string, ExecutionState>();
  private readonly waiters = new Map<
    string,
    { resolve: (d: ExecutionDescription) => void; reject: (err: Error) => void }[]
  >();
  private queue: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private requestTimer: NodeJS.Timeout | undefined;
  private serving = false;
  private closed = false;
  private halted: EngineHaltedError | undefined;
  private readonly closeHooks: (() => void)[] = [];
  private readonly haltHooks: ((err: EngineHaltedError) => void)[] = [];
  private readonly owner = {
    id: `${process.pid}-${Math.random().toString(36).slice(2)}`,
    pid: process.pid,
    host: hostname(),
  };

  private constructor(private readonly options: EngineOptions) {
    this.store = Store.open(options.home, { check: !options.readOnly });
    this.now = options.now ?? Date.now;
    this.integrations = [
      ...(options.integrations ?? []),
      this.lambda,
      new StatesIntegration(this, (name) => {
        const given = (this.stateMachines ?? options.stateMachines)?.(name);
        if (given) return given;
        const known = this.store.latestDefinition(name);
        return known === undefined
          ? undefined
          : { name, definition: JSON.parse(known) as StateMachineDefinition };
      }),
    ];
    for (const [name, fn] of Object.entries(options.functions ?? {}))
      this.lambda.register(name, fn);
    this.random = options.random;
  }

  /**
   * Opens the engine on a home directory and resumes its unfinished executions. Only one
   * engine schedules a home at a time: throws EngineBusyError while another live one holds
   * the lease (see `openWhenFree`).
   */
  static open(options: EngineOptions): Engine {
    const engine = new Engine(options);
    if (options.readOnly) return engine;
    const holder = engine.store.acquireLease(engine.owner, engine.now(), LEASE_TTL_MS, pidAlive);
    if (holder) {
      engine.store.close();
      throw new EngineBusyError(holder, options.home);
    }
    engine.leaseTimer = setInterval(() => engine.renewLease(), LEASE_RENEW_MS);
    engine.leaseTimer.unref();
    try {
      const { executor, ...capacity } = options.batch ?? {};
      if (executor) {
        engine.batch = new LocalBatch({
          db: engine.store.db,
          executor,
          ...capacity,
          onFault: (err) => engine.halt(err),
        });
        engine.integrations.push(new BatchIntegration(engine.batch, options.jobCache));
      }
      options.onOpened?.(engine);
      engine.resumeOutstanding();
    } catch (err) {
      engine.close();
      throw err;
    }
    engine.store.pruneRequests(engine.now() - REQUEST_KEEP_MS);
    engine.store.pruneFileDigests(engine.now() - DIGEST_KEEP_MS);
    engine.requestTimer = setInterval(() => void engine.serveRequests(), REQUEST_POLL_MS);
    engine.requestTimer.unref();
    return engine;
  }

  /** Like open, but waits (polling) while another engine owns the home. */
  static async openWhenFree(
    options: EngineOptions,
    onWait?: (holder: EngineBusyError['holder']) => void,
    timeoutMs = Infinity,
  ): Promise<Engine> {
    const deadline = Date.now() + timeoutMs;
    let told = false;
    for (;;) {
      try {
        return Engine.open(options);
      } catch (err) {
        if (!(err instanceof EngineBusyError) || Date.now() > deadline) throw err;
        if (!told) onWait?.(err.holder);
        told = true;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  private renewLease(): void {
    if (this.closed) return;
    let holder: ReturnType<Store['acquireLease']>;
    try {
      holder = this.store.acquireLease(this.owner, this.now(), LEASE_TTL_MS, pidAlive);
    } catch (err) {
      this.halt(err);
      return;
    }
    if (holder) {
      // Lost the lease (e.g. this process was suspended past its expiry): stop scheduling.
      this.halt(
        new Error(
          `another Strand engine (pid ${holder.pid} on ${holder.host}) took over ${this.options.home}`,
        ),
      );
    }
  }

  /**
   * Stops scheduling after a fault (a full disk, a database that cannot be written, an error
   * the engine cannot recover from): what was committed stays as it was, jobs run on, and
   * `strand resume` carries on once the cause is gone. Whoever waits for an execution is told.
   */
  private halt(reason: unknown): void {
    if (this.closed) return;
    const what = reason instanceof Error ? reason.message : String(reason);
    const where = exhausted(reason) ? ` (${this.options.home})` : '';
    this.halted = new EngineHaltedError(
      `the engine stopped: ${what}${where}. Everything recorded before is kept; ` +
        `running jobs carry on. Once the cause is fixed, \`strand resume\` carries on.`,
      reason,
    );
    const waiters = [...this.waiters.values()].flat();
    this.waiters.clear();
    this.close();
    for (const w of waiters) w.reject(this.halted);
    for (const fn of this.haltHooks.splice(0)) fn(this.halted);
  }

  /** Calls `fn` if the engine halts after a fault. */
  onHalt(fn: (err: EngineHaltedError) => void): void {
    if (this.halted) fn(this.halted);
    else this.haltHooks.push(fn);
  }

  /** Registers an in-process function for `lambda:invoke`. */
  registerFunction(name: string, fn: LambdaFunction): void {
    this.lambda.register(name, fn);
  }

  /** StartExecution: idempotent by name (same definition and input return the same execution). */
  async startExecution(request: StartExecutionRequest): Promise<ExecutionDescription> {
    const problems = validate(request.definition);
    if (problems.length > 0) {
      throw new EngineInputError(
        'INVALID_DEFINITION',
        `the state machine definition has ${problems.length} problem(s)`,
        problems.map(formatProblem),
      );
    }
    const mocked = request.mock?.states ?? {};
    const unknown = taskResources(request.definition).filter(
      (t) =>
        !(t.state in mocked && t.pointer.endsWith(`/States/${t.state}`)) &&
        !this.integrations.some((i) => i.supports(serviceResource(t.resource))),
    );
    if (unknown.length > 0) {
      throw new EngineInputError(
        'UNKNOWN_RESOURCE',
        `no integration answers ${unknown.length === 1 ? 'a resource' : `${unknown.length} resources`} of this state machine (supported: ${this.integrations.map((i) => i.name).join(', ')}); a state whose service is not here can be mocked: --mock-config FILE --mock-case NAME, in AWS Step Functions Local's format`,
        unknown.map((u) => `${u.pointer}/Resource: ${u.resource} (state "${u.state}")`),
      );
    }
    const input = request.input ?? {};
    const definitionText = JSON.stringify(request.definition);
    const inputText = JSON.stringify(input);
    const smName = request.stateMachineName ?? 'StateMachine';
    const name =
      request.name ?? `${smName}-${this.now()}-${Math.floor((this.random ?? Math.random)() * 1e6)}`;
    const existing = this.store.getExecution(name);
    if (existing) {
      if (existing.definition === definitionText && existing.input === inputText)
        return describe(existing);
      throw new EngineInputError(
        'EXECUTION_ALREADY_EXISTS',
        `an execution named "${name}" already exists (${existing.status}) with a different definition or input`,
      );
    }
    const arn = `arn:aws:states:local:000000000000:execution:${smName}:${name}`;
    const interpreter = new Interpreter(request.definition, {
      random: this.random,
      maxEventsPerStep: MAX_EVENTS_PER_STEP,
    });
    this.interpreters.set(arn, interpreter);
    const time = this.now();
    await this.serialised(async () => {
      const result = await interpreter.start(input, {
        time,
        executionName: name,
        stateMachineName: smName,
        executionArn: arn,
        stateMachineArn: `arn:aws:states:local:000000000000:stateMachine:${smName}`,
      });
      this.store.transaction(() => {
        this.store.insertExecution({
          arn,
          name,
          stateMachineName: smName,
          definition: definitionText,
          input: inputText,
          status: 'RUNNING',
          startDate: time,
          state: null,
          parentArn: request.parentArn ?? null,
          mock: request.mock ? JSON.stringify(request.mock) : null,
        });
        this.persist(arn, result);
      });
      this.afterCommit(arn, result);
    });
    return this.describeExecution(arn);
  }

  describeExecution(nameOrArn: string): ExecutionDescription {
    return describe(this.row(nameOrArn));
  }

  /** DescribeExecution, or undefined when there is no such execution. */
  findExecution(nameOrArn: string): ExecutionDescription | undefined {
    const row = this.store.getExecution(nameOrArn);
    return row && describe(row);
  }

  /** The executions that started `arn`, its parent first (states:startExecution). */
  ancestry(arn: string): string[] {
    const chain: string[] = [];
    for (let row = this.store.getExecution(arn); row?.parentArn;) {
      if (chain.includes(row.parentArn)) break;
      chain.push(row.parentArn);
      row = this.store.getExecution(row.parentArn);
    }
    return chain;
  }

  getExecutionHistory(nameOrArn: string): HistoryEvent[] {
    return this.store.history(this.row(nameOrArn).arn);
  }

  listExecutions(status?: ExecutionStatus): ExecutionDescription[] {
    return this.store.listExecutions(status).map(describe);
  }

  /**
   * SendTaskSuccess: the task `token` names ends with `output`, as if its service had answered.
   * Errors in AWS's terms: InvalidToken (not a token), TaskDoesNotExist (no such execution or
   * task), TaskTimedOut (the task has ended: answered, timed out, or its execution stopped).
   */
  async sendTaskSuccess(token: string, output: Json): Promise<Record<string, never>> {
    const { arn, taskId } = this.tokenTask(token);
    await this.apply(arn, { type: 'TaskSucceeded', taskId, output, time: 0 }, { taskId });
    return {};
  }

  /** SendTaskFailure: the task `token` names fails with `error` and `cause`. */
  async sendTaskFailure(
    token: string,
    error?: string,
    cause?: string,
  ): Promise<Record<string, never>> {
    const { arn, taskId } = this.tokenTask(token);
    await this.apply(
      arn,
      { type: 'TaskFailed', taskId, error: error ?? '', cause, time: 0 },
      { taskId },
    );
    return {};
  }

  /** SendTaskHeartbeat: restarts the heartbeat clock of the task `token` names. */
  async sendTaskHeartbeat(token: string): Promise<Record<string, never>> {
    const { arn, taskId } = this.tokenTask(token);
    await this.apply(arn, { type: 'TaskHeartbeat', taskId, time: 0 });
    return {};
  }

  /** The outstanding task a token names (see sendTaskSuccess for the errors). */
  private tokenTask(token: string): { arn: string; taskId: string } {
    const parsed = parseTaskToken(token);
    if (!parsed)
      throw new EngineInputError('InvalidToken', `Invalid Token: '${token.slice(0, 80)}'`);
    const row = this.store.getExecution(parsed.executionArn);
    if (!row)
      throw new EngineInputError(
        'TaskDoesNotExist',
        `Task does not exist anymore: no execution ${parsed.executionArn}`,
      );
    if (row.status !== 'RUNNING' || !this.store.outstandingTask(row.arn, parsed.taskId))
      throw new EngineInputError(
        'TaskTimedOut',
        `Task Timed Out: the task of this token has ended (execution ${row.name} is ${row.status})`,
      );
    this.taskResources.delete(`${row.arn}|${parsed.taskId}`);
    return { arn: row.arn, taskId: parsed.taskId };
  }

  /**
   * StopExecution: aborts a running execution and cancels its outstanding tasks. With
   * `waitForJobs`, resolves only once the Batch jobs it was running have ended too (terminated:
   * SIGTERM, then SIGKILL after the executor's grace period).
   */
  async stopExecution(
    nameOrArn: string,
    error?: string,
    cause?: string,
    options: { waitForJobs?: boolean } = {},
  ): Promise<ExecutionDescription> {
    if (this.closed) throw this.halted ?? new EngineInputError('CLOSED', 'the engine is closed');
    const row = this.row(nameOrArn);
    const jobs = options.waitForJobs ? this.jobsOf(row) : [];
    if (row.status === 'RUNNING') {
      await this.apply(row.arn, { type: 'StopExecution', error, cause, time: this.now() });
    }
    if (options.waitForJobs && this.batch) {
      const batch = this.batch;
      await Promise.all(
        jobs.map((id) => new Promise<void>((resolve) => batch.onceDone(id, () => resolve()))),
      );
    }
    return this.describeExecution(row.arn);
  }

  /**
   * RedriveExecution: a FAILED, ABORTED or TIMED_OUT execution continues from the state that
   * had not finished, with the same input; states that succeeded are not run again, and inside
   * a Map or Parallel state (at any depth) only the iterations and branches that failed or were
   * aborted run again, each from its own state that had not finished.
   *
   * `fromState` (a top-level state) moves the redrive point back to the last time that state
   * was entered, with the input it had then, and runs it whole: a pipeline whose samples failed
   * (a Map that tolerated them, then a Fail state) is redriven from its Map, and the job cache
   * turns the samples that succeeded into cache hits.
   */
  async redriveExecution(
    nameOrArn: string,
    options: { fromState?: string } = {},
  ): Promise<ExecutionDescription> {
    const row = this.row(nameOrArn);
    if (!['FAILED', 'ABORTED', 'TIMED_OUT'].includes(row.status) || row.state === null) {
      throw new EngineInputError(
        'NOT_REDRIVABLE',
        `execution "${row.name}" is ${row.status}; only a FAILED, ABORTED or TIMED_OUT execution can be redriven`,
      );
    }
    await this.serialised(async () => {
      const state = JSON.parse(row.state!) as ExecutionState;
      if (options.fromState && state.redrive) {
        const entered = this.store
          .history(row.arn)
          .filter(
            (e) =>
              e.type.endsWith('StateEntered') &&
              (e.stateEnteredEventDetails as { name?: string } | undefined)?.name ===
                options.fromState,
          )
          .at(-1);
        if (!entered)
          throw new EngineInputError(
            'NOT_REDRIVABLE',
            `execution "${row.name}" never entered state "${options.fromState}"`,
          );
        const input = (entered.stateEnteredEventDetails as { input: unknown }).input;
        state.redrive = {
          state: options.fromState,
          input: (typeof input === 'string' ? JSON.parse(input) : input) as Json,
          variables: {},
        };
      }
      const result = await this.interpreterFor(row).redrive(state, this.now());
      this.store.transaction(() => this.persist(row.arn, result));
      this.afterCommit(row.arn, result);
    });
    return this.describeExecution(row.arn);
  }

  /**
   * The unfinished Batch jobs of an execution: those of its outstanding tasks, and those tagged
   * with its name (pipeline jobs), which an earlier stop may have left ending.
   */
  private jobsOf(row: ExecutionRow): string[] {
    const batch = this.batch;
    if (!batch) return [];
    const ids = new Set(
      this.store
        .outstandingTasks()
        .filter((t) => t.executionArn === row.arn && BATCH_RESOURCE.test(t.resource))
        .map((t) => jobIdFor(row.arn, t.taskId)),
    );
    for (const status of ['SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING'] as const)
      for (const j of batch.listJobs({ jobStatus: status }))
        if (j.tags?.[TAG.execution] === row.name) ids.add(j.jobId);
    return [...ids].filter((id) => {
      const job = batch.getJob(id);
      return job !== undefined && job.status !== 'SUCCEEDED' && job.status !== 'FAILED';
    });
  }

  /** Resolves once every unfinished Batch job of the execution has ended. */
  async waitForJobs(nameOrArn: string): Promise<void> {
    const batch = this.batch;
    if (!batch) return;
    const jobs = this.jobsOf(this.row(nameOrArn));
    await Promise.all(
      jobs.map((id) => new Promise<void>((resolve) => batch.onceDone(id, () => resolve()))),
    );
  }

  /**
   * Resolves when the execution is no longer RUNNING; rejects with EngineHaltedError if the
   * engine stops scheduling first.
   */
  waitForExecution(nameOrArn: string): Promise<ExecutionDescription> {
    if (this.halted) return Promise.reject(this.halted);
    const d = this.describeExecution(nameOrArn);
    if (d.status !== 'RUNNING') return Promise.resolve(d);
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(d.executionArn) ?? [];
      list.push({ resolve, reject });
      this.waiters.set(d.executionArn, list);
    });
  }

  /** Stops timers; outstanding work stays recorded for the next open. */
  /** The Batch jobs recorded in the home; works on a read-only engine too. */
  listBatchJobs(): JobDetail[] {
    return readJobs(this.store.db);
  }

  /** Runs `fn` when the engine closes (e.g. to close what its functions opened). */
  onClose(fn: () => void): void {
    this.closeHooks.push(fn);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fn of this.closeHooks.splice(0)) fn();
    if (this.timer) clearTimeout(this.timer);
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    if (this.requestTimer) clearInterval(this.requestTimer);
    this.batch?.close();
    try {
      // A full disk may refuse even this; the lease then expires on its own.
      if (!this.options.readOnly) this.store.releaseLease(this.owner.id);
    } catch {
      // the lease expires on its own
    }
    this.store.close();
  }

  /** Settles once every event queued so far has been applied. */
  idle(): Promise<void> {
    return this.serialised(async () => {});
  }

  // ---- requests of other processes --------------------------------------------------------

  /**
   * Acts on what other processes asked of this engine (`strand stop`, `strand redrive`, a second
   * `strand run` on the same home): each request is taken by exactly one engine, carried out,
   * and answered in the database, where its requester waits for the answer.
   */
  private async serveRequests(): Promise<void> {
    if (this.closed || this.serving) return;
    this.serving = true;
    try {
      for (const r of this.store.pendingRequests()) {
        if (this.closed) return;
        // Each is carried out on its own: a stop that waits for its jobs holds up no other.
        if (this.store.moveRequest(r.id, 'PENDING', 'RUNNING')) void this.serveOne(r);
      }
    } catch (err) {
      this.halt(err);
    } finally {
      this.serving = false;
    }
  }

  private async serveOne(r: RequestRow): Promise<void> {
    let status: 'DONE' | 'FAILED' = 'DONE';
    let response: unknown;
    try {
      response = await this.serveRequest(r);
    } catch (err) {
      if (exhausted(err)) {
        this.halt(err);
        return;
      }
      status = 'FAILED';
      response = {
        code: (err as { code?: unknown }).code ?? 'ERROR',
        message: err instanceof Error ? err.message : String(err),
        details: err instanceof EngineInputError ? err.details : [],
      };
    }
    if (this.closed) return;
    try {
      this.store.moveRequest(r.id, 'RUNNING', status, JSON.stringify(response));
    } catch (err) {
      this.halt(err);
    }
  }

  private async serveRequest(r: RequestRow): Promise<ExecutionDescription | Record<string, never>> {
    const body = JSON.parse(r.body) as Record<string, unknown>;
    const name = String(body.name ?? '');
    switch (r.kind) {
      case 'StartExecution': {
        const defs = (body.jobDefinitions ?? []) as RegisterJobDefinitionRequest[];
        const executor = typeof body.executor === 'string' ? body.executor : undefined;
        if (defs.length > 0 || executor) {
          if (!this.batch) throw new EngineInputError('NO_BATCH', 'this engine runs no Batch jobs');
          registerIfChanged(this.batch, defs);
          // The run's jobs go to the queue of its executor (see `strand run --executor`).
          if (executor && executor !== 'local') this.batch.ensureExecutorQueue(executor);
        }
        return this.startExecution({
          definition: body.definition as StateMachineDefinition,
          input: body.input as Json,
          name,
          stateMachineName: body.stateMachineName as string | undefined,
        });
      }
      case 'StopExecution':
        return this.stopExecution(
          name,
          body.error as string | undefined,
          body.cause as string | undefined,
          { waitForJobs: true },
        );
      case 'RedriveExecution':
        return this.redriveExecution(name, {
          fromState: body.fromState as string | undefined,
        });
      case 'SendTaskSuccess':
        return this.sendTaskSuccess(String(body.taskToken), body.output as Json);
      case 'SendTaskFailure':
        return this.sendTaskFailure(
          String(body.taskToken),
          body.error as string | undefined,
          body.cause as string | undefined,
        );
      case 'SendTaskHeartbeat':
        return this.sendTaskHeartbeat(String(body.taskToken));
      default:
        throw new EngineInputError('BAD_REQUEST', `unknown request kind ${String(r.kind)}`);
    }
  }

  // ---- internals ----------------------------------------------------------------------

  private row(nameOrArn: string): ExecutionRow {
    const row = this.store.getExecution(nameOrArn);
    if (!row)
      throw new EngineInputError(
        'NO_SUCH_EXECUTION',
        `no execution named "${nameOrArn}" in ${this.store.path}`,
      );
    return row;
  }

  private serialised(fn: () => Promise<void>): Promise<void> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private interpreterFor(row: ExecutionRow): Interpreter {
    let interpreter = this.interpreters.get(row.arn);
    if (!interpreter) {
      interpreter = new Interpreter(JSON.parse(row.definition) as StateMachineDefinition, {
        maxEventsPerStep: MAX_EVENTS_PER_STEP,
        random: this.random,
      });
      this.interpreters.set(row.arn, interpreter);
    }
    return interpreter;
  }

  /** Applies one event to an execution, durably. */
  private apply(
    arn: string,
    event: InputEvent,
    consumed?: { timerId?: string; taskId?: string },
  ): Promise<void> {
    return this.serialised(() => this.applyNow(arn, event, consumed)).catch((err: unknown) =>
      // A step that cannot be recorded (a full disk, say) stops the engine: the event is not
      // lost, as the outstanding task or timer it answers is still recorded for the next open.
      this.halt(err),
    );
  }

  private async applyNow(
    arn: string,
    event: InputEvent,
    consumed?: { timerId?: string; taskId?: string },
  ): Promise<void> {
    {
      if (this.closed) return;
      // The state of a running execution is kept in memory between its steps (this engine
      // holds the lease, so nobody else changes it); the database copy is read after a restart.
      let state = this.states.get(arn);
      let interpreter = this.interpreters.get(arn);
      if (!state || !interpreter) {
        const row = this.store.getExecution(arn);
        if (!row || row.status !== 'RUNNING' || row.state === null) return;
        state = JSON.parse(row.state) as ExecutionState;
        interpreter = this.interpreterFor(row);
      }
      if (state.status !== 'RUNNING') return;
      const result = await interpreter.step(state, {
        ...event,
        time: this.now(),
      } as InputEvent);
      this.store.transaction(() => {
        if (consumed?.timerId) this.store.deleteTimer(arn, consumed.timerId);
        if (consumed?.taskId) this.store.deleteTask(arn, consumed.taskId);
        this.persist(arn, result);
      });
      this.afterCommit(arn, result);
    }
  }

  /** Writes a step's outcome (inside the caller's transaction). */
  private persist(arn: string, result: StepResult): void {
    const done = result.state.status !== 'RUNNING';
    this.store.saveExecution(arn, result.state, done ? this.now() : null);
    this.store.appendEvents(arn, result.events);
    for (const cmd of result.commands) {
      switch (cmd.type) {
        case 'StartTimer':
          this.store.putTimer(arn, cmd.timerId, cmd.dueTime);
          break;
        case 'CancelTimer':
          this.store.deleteTimer(arn, cmd.timerId);
          break;
        case 'InvokeTask':
          this.store.putTask({
            executionArn: arn,
            taskId: cmd.taskId,
            resource: cmd.resource,
            input: JSON.stringify(cmd.input),
            stateName: cmd.stateName,
            attempt: cmd.attempt,
            command: JSON.stringify(cmd),
          });
          break;
        case 'CancelTask':
          this.store.deleteTask(arn, cmd.taskId);
          break;
        case 'ExecutionCompleted':
          break;
      }
    }
    if (done) this.store.clearOutstanding(arn);
  }

  /** Effects of a committed step: invoke tasks, cancel tasks, re-arm timers, wake waiters. */
  private afterCommit(arn: string, result: StepResult): void {
    if (result.state.status === 'RUNNING') this.states.set(arn, result.state);
    for (const e of result.events) this.options.onEvent?.(arn, e);
    for (const cmd of result.commands) {
      if (cmd.type === 'InvokeTask') this.invoke(arn, cmd);
      else if (cmd.type === 'Continue')
        setImmediate(() => void this.apply(arn, { type: 'Continue', time: 0 }));
      else if (cmd.type === 'CancelTask') {
        const cancelling = Promise.resolve(
          this.integrationFor(undefined, arn, cmd.taskId)?.cancel?.({
            executionArn: arn,
            taskId: cmd.taskId,
          }),
        ).catch(() => undefined);
        this.cancelling.set(arn, [...(this.cancelling.get(arn) ?? []), cancelling]);
      }
    }
    this.armTimer();
    if (result.state.status !== 'RUNNING') {
      this.interpreters.delete(arn);
      this.states.delete(arn);
      this.mocks.delete(arn);
      // Whoever waits for the end (`strand start`) hears of it once the tasks it cancelled
      // (a timed-out Batch job) have ended too, so none is left shown RUNNING.
      const cancelling = this.cancelling.get(arn) ?? [];
      this.cancelling.delete(arn);
      const d = this.describeExecution(arn);
      void Promise.allSettled(cancelling).then(() => {
        for (const w of this.waiters.get(arn) ?? []) w.resolve(d);
        this.waiters.delete(arn);
      });
    }
  }

  /** Cancellations under way, by execution (see afterCommit). */
  private readonly cancelling = new Map<string, Promise<unknown>[]>();

  private readonly taskResources = new Map<string, string>();

  private mockOf(arn: string): MockCase | undefined {
    let mock = this.mocks.get(arn);
    if (mock === undefined) {
      const text = this.store.getExecution(arn)?.mock;
      mock = text ? (JSON.parse(text) as MockCase) : null;
      this.mocks.set(arn, mock);
    }
    return mock ?? undefined;
  }

  private integrationFor(
    resource: string | undefined,
    arn: string,
    taskId: string,
  ): TaskIntegration | undefined {
    const key = `${arn}|${taskId}`;
    const r = resource ?? this.taskResources.get(key);
    if (resource) this.taskResources.set(key, resource);
    else this.taskResources.delete(key);
    return r === undefined ? undefined : this.integrations.find((i) => i.supports(r));
  }

  private invoke(
    arn: string,
    cmd: Extract<Command, { type: 'InvokeTask' }>,
    dispatched = false,
  ): void {
    // `.waitForTaskToken`: the service is called as without it, and the task ends when its
    // token comes back (SendTaskSuccess / SendTaskFailure), not when the call returns.
    const resource = serviceResource(cmd.resource);
    const callback = resource !== cmd.resource;
    if (callback && dispatched) return; // called before a restart: only the token is awaited
    const settle = (event: InputEvent) => {
      this.taskResources.delete(`${arn}|${cmd.taskId}`);
      void this.apply(arn, event, { taskId: cmd.taskId });
    };
    // A mocked state calls no service; as in Step Functions Local, a callback task's mocked
    // response is its result at once, with no token to wait for.
    const mock = cmd.itemReader ? undefined : this.mockOf(arn);
    const answer = mock && mockedAnswer(mock, cmd.stateName, cmd.attempt);
    if (answer) {
      const taskId = cmd.taskId;
      setImmediate(() =>
        settle(
          'Return' in answer
            ? { type: 'TaskSucceeded', taskId, output: answer.Return, time: 0 }
            : 'Throw' in answer
              ? {
                  type: 'TaskFailed',
                  taskId,
                  error: answer.Throw.Error,
                  cause: answer.Throw.Cause,
                  time: 0,
                }
              : {
                  type: 'TaskFailed',
                  taskId,
                  error: 'States.Runtime',
                  cause: answer.missing,
                  time: 0,
                },
        ),
      );
      return;
    }
    const integration = this.integrationFor(resource, arn, cmd.taskId);
    if (!integration) {
      settle({
        type: 'TaskFailed',
        taskId: cmd.taskId,
        error: 'States.Runtime',
        cause: `no integration answers ${cmd.resource}`,
        time: 0,
      });
      return;
    }
    const task = {
      executionArn: arn,
      taskId: cmd.taskId,
      resource,
      input: cmd.input,
      stateName: cmd.stateName,
      attempt: cmd.attempt,
      context: cmd.context,
      ...(cmd.itemReader ? { itemReader: cmd.itemReader } : {}),
    };
    Promise.resolve()
      .then(() =>
        integration.invoke(task, {
          succeeded: (output) => {
            if (!callback) settle({ type: 'TaskSucceeded', taskId: cmd.taskId, output, time: 0 });
            else if (!this.closed && this.store.outstandingTask(arn, cmd.taskId))
              this.store.markDispatched(arn, cmd.taskId);
          },
          failed: (error, cause) =>
            settle({ type: 'TaskFailed', taskId: cmd.taskId, error, cause, time: 0 }),
          heartbeat: () =>
            void this.apply(arn, { type: 'TaskHeartbeat', taskId: cmd.taskId, time: 0 }),
        }),
      )
      .catch((err: unknown) => {
        // The machine, not the task: stop (the task stays outstanding and runs again on resume).
        if (exhausted(err)) {
          this.halt(err);
          return;
        }
        settle({
          type: 'TaskFailed',
          taskId: cmd.taskId,
          error: 'States.Runtime',
          cause: `integration ${integration.name} failed: ${(err as Error).message}`,
          time: 0,
        });
      });
  }

  /** Sets one process timer for the earliest durable timer. */
  private armTimer(): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const next = this.store.nextTimer();
    if (!next) return;
    const delay = Math.min(Math.max(0, next.due - this.now()), MAX_TIMER_DELAY);
    this.timer = setTimeout(() => this.fireDueTimers(), delay);
  }

  private fireDueTimers(): void {
    this.timer = undefined;
    if (this.closed) return;
    for (const t of this.store.dueTimers(this.now())) {
      void this.apply(
        t.executionArn,
        { type: 'TimerFired', timerId: t.timerId, time: 0 },
        { timerId: t.timerId },
      );
    }
    void this.idle().then(() => this.armTimer());
  }

  /** After a restart: hand outstanding tasks back to their integrations and re-arm timers. */
  private resumeOutstanding(): void {
    // Steps that stopped at their event budget carry on.
    for (const d of this.listExecutions('RUNNING')) {
      const row = this.store.getExecution(d.executionArn);
      if (row?.state?.includes('"agenda"') && (JSON.parse(row.state) as ExecutionState).agenda)
        setImmediate(() => void this.apply(d.executionArn, { type: 'Continue', time: 0 }));
    }
    for (const task of this.store.outstandingTasks()) {
      this.invoke(
        task.executionArn,
        JSON.parse(task.command) as Extract<Command, { type: 'InvokeTask' }>,
        task.dispatched,
      );
    }
    this.armTimer();
  }
}
