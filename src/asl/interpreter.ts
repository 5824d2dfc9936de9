/**
 * The ASL interpreter: a deterministic state machine over `ExecutionState`.
 *
 * `start(input)` and `step(state, event)` return the commands the driver must carry out
 * (invoke a task, start a timer, …) and the history events produced. Nothing here touches
 * the file system, the network, the clock or randomness: the event carries the time and
 * randomness is injected. The state object is updated in place and returned; it is plain
 * JSON and can be persisted between steps.
 */
import { taskToken } from './task-token.js';
import { PathNotFoundError, StatesError } from './errors.js';
import type {
  AgendaItem,
  ChildProgress,
  Command,
  ExecutionInfo,
  ExecutionState,
  HistoryEvent,
  InputEvent,
  Pending,
  RedrivePoint,
  StepResult,
  Thread,
} from './execution.js';
import { seededRandom } from './intrinsics.js';
import { evaluateJsonataTemplate, type JsonataScope } from './jsonata.js';
import { applyResultPath, selectPath, type EvalScope } from './path.js';
import { evaluatePayloadTemplate } from './payload.js';
import { indexRanges } from './redrive.js';
import { findHandler, maxAttempts, retryDelayMs } from './retry.js';
import type { Runtime, StatesExtras } from './runtime.js';
import { STATE_HANDLERS } from './states/index.js';
import type {
  Catcher,
  Json,
  JsonObject,
  QueryLanguage,
  Retrier,
  StateDefinition,
  StateMachineDefinition,
} from './types.js';

export interface InterpreterOptions {
  /** Randomness for JitterStrategy FULL, States.MathRandom, States.UUID, $random. */
  random?: () => number;
  /**
   * History events after which a step stops and asks to be continued (command `Continue`), so
   * a large Map is persisted in pieces instead of one step holding all its events (default
   * Infinity: one step runs until the execution waits).
   */
  maxEventsPerStep?: number;
}

export interface StartOptions {
  executionName?: string;
  stateMachineName?: string;
  executionArn?: string;
  stateMachineArn?: string;
  roleArn?: string;
  /** Epoch ms of the start. */
  time: number;
}

type Agenda = AgendaItem;

const MAX_ERROR_LENGTH = 256;
const MAX_CAUSE_LENGTH = 32768;

/** Runs one state machine definition. One interpreter can drive many executions. */
export class Interpreter implements Runtime {
  readonly random: () => number;
  private readonly maxEventsPerStep: number;
  private readonly scopes = new Map<string, StateMachineDefinition>();
  private readonly rootQueryLanguage: QueryLanguage;

  // Per-step working data.
  private exec!: ExecutionState;
  private commands: Command[] = [];
  private events: HistoryEvent[] = [];
  private agenda: Agenda[] = [];
  /** Index of the next agenda item (a queue without Array#shift, which is O(n)). */
  private agendaHead = 0;
  private time = 0;

  constructor(
    readonly definition: StateMachineDefinition,
    options: InterpreterOptions = {},
  ) {
    this.random = options.random ?? seededRandom(0x5eed);
    this.maxEventsPerStep = options.maxEventsPerStep ?? Infinity;
    this.rootQueryLanguage = definition.QueryLanguage ?? 'JSONPath';
    this.indexScopes('', definition);
  }

  private indexScopes(key: string, def: StateMachineDefinition): void {
    this.scopes.set(key, def);
    for (const [name, state] of Object.entries(def.States ?? {})) {
      if (state.Type === 'Parallel') {
        (state.Branches ?? []).forEach((branch, i) =>
          this.indexScopes(`${key}/${name}/Branches/${i}`, branch),
        );
      } else if (state.Type === 'Map') {
        const processor = state.ItemProcessor ?? state.Iterator;
        if (processor) {
          const field = state.ItemProcessor ? 'ItemProcessor' : 'Iterator';
          this.indexScopes(`${key}/${name}/${field}`, processor);
        }
      }
    }
  }

  /** Starts an execution: returns its initial state and first commands. */
  async start(input: Json, options: StartOptions): Promise<StepResult> {
    const smName = options.stateMachineName ?? 'StateMachine';
    const exName = options.executionName ?? 'execution';
    const smArn =
      options.stateMachineArn ?? `arn:aws:states:local:000000000000:stateMachine:${smName}`;
    const info: ExecutionInfo = {
      executionArn:
        options.executionArn ?? `arn:aws:states:local:000000000000:execution:${smName}:${exName}`,
      executionName: exName,
      stateMachineArn: smArn,
      stateMachineName: smName,
      roleArn: options.roleArn ?? 'arn:aws:iam::000000000000:role/strand',
      startTime: options.time,
      input,
      redriveCount: 0,
    };
    const state: ExecutionState = {
      status: 'RUNNING',
      info,
      threads: {},
      tasks: {},
      timers: {},
      seq: 0,
      lastEventId: 0,
      transitions: 0,
    };
    this.begin(state, options.time);
    this.emit(undefined, 'ExecutionStarted', {
      executionStartedEventDetails: { input, roleArn: info.roleArn },
    });
    if (this.definition.TimeoutSeconds !== undefined) {
      const timerId = 'execution-timeout';
      state.timers[timerId] = '';
      this.commands.push({
        type: 'StartTimer',
        timerId,
        dueTime: options.time + this.definition.TimeoutSeconds * 1000,
      });
    }
    const root = this.newThread('', undefined, undefined, input);
    this.agenda.push({ kind: 'enter', threadId: root.id, state: this.definition.StartAt, input });
    await this.drain();
    return this.finish();
  }

  /** Applies one event to an execution. */
  async step(state: ExecutionState, event: InputEvent): Promise<StepResult> {
    this.begin(state, event.time);
    if (state.status === 'RUNNING') {
      // Work left by a step that stopped at its budget comes first, whatever the event.
      this.agenda = state.agenda ?? [];
      delete state.agenda;
      if (event.type !== 'Continue') await this.apply(event);
      await this.drain();
    }
    return this.finish();
  }

  private begin(state: ExecutionState, time: number): void {
    this.exec = state;
    this.time = time;
    this.commands = [];
    this.events = [];
    this.agenda = [];
    this.agendaHead = 0;
  }

  private finish(): StepResult {
    if (this.exec.status !== 'RUNNING') delete this.exec.agenda;
    const result = { state: this.exec, commands: this.commands, events: this.events };
    this.commands = [];
    this.events = [];
    return result;
  }

  private async apply(event: InputEvent): Promise<void> {
    switch (event.type) {
      case 'TaskStarted': {
        const thread = this.taskThread(event.taskId);
        if (thread) {
          this.emit(thread, 'TaskStarted', {
            taskStartedEventDetails: { resource: this.taskResourceOf(thread, thread.pending) },
          });
        }
        return;
      }
      case 'TaskSucceeded': {
        const thread = this.taskThread(event.taskId);
        if (!thread) return;
        const pending = thread.pending as Extract<Pending, { kind: 'task' }>;
        this.clearTask(thread, pending);
        const resource = this.taskResourceOf(thread, pending);
        if (pending.itemReader) {
          // An ItemReader's result is the item list, which may be larger than a state's data.
          const reader = pending.itemReader;
          await this.guard(thread, () =>
            STATE_HANDLERS.Map.itemsRead!(this, thread, event.output, reader.maxItems),
          );
          return;
        }
        if (pending.resultWriter) {
          const writer = pending.resultWriter;
          await this.guard(thread, () =>
            STATE_HANDLERS.Map.resultsWritten!(this, thread, writer.output, writer.failure),
          );
          return;
        }
        if (byteLength(event.output) > 262144) {
          this.emit(thread, 'TaskFailed', {
            taskFailedEventDetails: { resource, error: 'States.DataLimitExceeded' },
          });
          await this.guard(thread, () =>
            this.handleError(
              thread,
              'States.DataLimitExceeded',
              `The state/task '${resource}' returned a result with a size exceeding the maximum number of bytes service limit.`,
            ),
          );
          return;
        }
        this.emit(thread, 'TaskSucceeded', {
          taskSucceededEventDetails: { resource, output: event.output },
        });
        await this.guard(thread, () => this.completeWithResult(thread, event.output));
        return;
      }
      case 'TaskFailed': {
        // A driver may hand over a structured cause; Step Functions causes are strings.
        const cause: string | undefined =
          event.cause === undefined || typeof event.cause === 'string'
            ? event.cause
            : JSON.stringify(event.cause);
        const thread = this.taskThread(event.taskId);
        if (!thread) return;
        const pending = thread.pending as Extract<Pending, { kind: 'task' }>;
        this.clearTask(thread, pending);
        const resource = this.taskResourceOf(thread, pending);
        this.emit(thread, 'TaskFailed', {
          taskFailedEventDetails: {
            resource,
            error: event.error,
            cause,
          },
        });
        await this.guard(thread, () => this.handleError(thread, event.error, cause));
        return;
      }
      case 'TaskHeartbeat': {
        const thread = this.taskThread(event.taskId);
        if (!thread) return;
        const pending = thread.pending as Extract<Pending, { kind: 'task' }>;
        if (pending.heartbeatTimerId && pending.heartbeatSeconds !== undefined) {
          this.commands.push({ type: 'CancelTimer', timerId: pending.heartbeatTimerId });
          this.commands.push({
            type: 'StartTimer',
            timerId: pending.heartbeatTimerId,
            dueTime: this.time + pending.heartbeatSeconds * 1000,
          });
        }
        return;
      }
      case 'TimerFired':
        await this.timerFired(event.timerId);
        return;
      case 'StopExecution':
        this.terminate('ABORTED', event.error, event.cause);
        return;
    }
  }

  private async timerFired(timerId: string): Promise<void> {
    const threadId = this.exec.timers[timerId];
    if (threadId === undefined) return;
    delete this.exec.timers[timerId];
    if (timerId === 'execution-timeout') {
      this.terminate('TIMED_OUT', 'States.Timeout', 'The execution timed out.');
      return;
    }
    const thread = this.exec.threads[threadId];
    const pending = thread?.pending;
    if (!thread || !pending) return;
    if (pending.kind === 'task') {
      const resource = this.taskResourceOf(thread, pending);
      const heartbeat = timerId === pending.heartbeatTimerId;
      this.commands.push({ type: 'CancelTask', taskId: pending.taskId });
      this.clearTask(thread, pending);
      const error = heartbeat ? 'States.HeartbeatTimeout' : 'States.Timeout';
      this.emit(thread, 'TaskTimedOut', {
        taskTimedOutEventDetails: { resource, error },
      });
      await this.guard(thread, () => this.handleError(thread, error, undefined));
      return;
    }
    if (pending.kind === 'wait') {
      this.setPending(thread, undefined);
      await this.guard(thread, () => STATE_HANDLERS.Wait.resume!(this, thread));
      return;
    }
    if (pending.kind === 'retry') {
      this.setPending(thread, undefined);
      this.agenda.push({ kind: 'run', threadId: thread.id });
    }
  }

  /** The resource of the thread's task: a Task state's, or a Map's ItemReader or ResultWriter. */
  private taskResourceOf(thread: Thread, pending: Pending | undefined): string {
    const def = this.stateDef(thread);
    if (def.Type !== 'Map') return (def as { Resource: string }).Resource;
    if (pending?.kind === 'task' && pending.resultWriter) return def.ResultWriter?.Resource ?? '';
    return def.ItemReader?.Resource ?? '';
  }

  private taskThread(taskId: string): Thread | undefined {
    const threadId = this.exec.tasks[taskId];
    if (threadId === undefined) return undefined;
    const thread = this.exec.threads[threadId];
    if (!thread || thread.pending?.kind !== 'task' || thread.pending.taskId !== taskId)
      return undefined;
    return thread;
  }

  private clearTask(thread: Thread, pending: Extract<Pending, { kind: 'task' }>): void {
    delete this.exec.tasks[pending.taskId];
    for (const timerId of [pending.timeoutTimerId, pending.heartbeatTimerId]) {
      if (timerId) {
        delete this.exec.timers[timerId];
        this.commands.push({ type: 'CancelTimer', timerId });
      }
    }
    this.setPending(thread, undefined);
  }

  // ---- the agenda ---------------------------------------------------------------------

  private async drain(): Promise<void> {
    while (this.agendaHead < this.agenda.length && this.exec.status === 'RUNNING') {
      if (this.events.length >= this.maxEventsPerStep) {
        // Enough for one step: hand the rest over as state, to be continued.
        this.exec.agenda = this.agenda.slice(this.agendaHead);
        this.agenda = [];
        this.agendaHead = 0;
        this.commands.push({ type: 'Continue' });
        return;
      }
      const item = this.agenda[this.agendaHead++];
      if (this.agendaHead > 4096 && this.agendaHead * 2 > this.agenda.length) {
        // Drop consumed items so a long step does not keep them alive.
        this.agenda = this.agenda.slice(this.agendaHead);
        this.agendaHead = 0;
      }
      const thread = this.exec.threads[item.threadId];
      if (!thread) continue;
      switch (item.kind) {
        case 'enter':
          await this.enter(thread, item.state, item.input);
          break;
        case 'run':
          await this.guard(thread, () => this.run(thread));
          break;
        case 'threadSucceeded':
          await this.threadSucceeded(thread, item.output);
          break;
        case 'threadFailed':
          await this.threadFailed(thread, item.error, item.cause);
          break;
      }
    }
  }

  private async enter(thread: Thread, stateName: string, input: Json): Promise<void> {
    const def = this.scopes.get(thread.scope)!.States[stateName];
    thread.state = stateName;
    thread.input = input;
    thread.retries = [];
    thread.stopped = undefined;
    thread.enteredTime = this.time;
    this.exec.transitions++;
    thread.enteredEventId = this.emit(thread, `${def.Type}StateEntered`, {
      stateEnteredEventDetails: { name: stateName, input },
    });
    await this.guard(thread, () => this.run(thread));
  }

  /** Runs (or re-runs, after a retry) the body of the thread's current state. */
  private async run(thread: Thread): Promise<void> {
    const def = this.stateDef(thread);
    await STATE_HANDLERS[def.Type].run(this, thread, def as never);
  }

  /** Runs `fn`; an error it throws goes through the state's Retry/Catch. */
  private async guard(thread: Thread, fn: () => Promise<void> | void): Promise<void> {
    try {
      await fn();
    } catch (err) {
      const { error, cause } = this.describeError(thread, err);
      try {
        await this.handleError(thread, error, cause);
      } catch (err2) {
        const again = this.describeError(thread, err2);
        this.failThread(thread, again.error, again.cause);
      }
    }
  }

  private describeError(thread: Thread, err: unknown): { error: string; cause?: string } {
    if (err instanceof StatesError) {
      return {
        error: err.error,
        cause: err.statePrefix ? this.prefixCause(thread, err.causeText) : err.causeText,
      };
    }
    if (err instanceof PathNotFoundError) {
      return {
        error: 'States.Runtime',
        cause: this.prefixCause(
          thread,
          `Invalid path '${err.path}' : No results for path: $['${err.path.replace(/^\$\.?/, '')}']`,
        ),
      };
    }
    const message = err instanceof Error ? err.message : String(err);
    return { error: 'States.Runtime', cause: this.prefixCause(thread, message) };
  }

  private prefixCause(thread: Thread, detail: string | undefined): string {
    return `An error occurred while executing the state '${thread.state}' (entered at the event id #${thread.enteredEventId}).${detail ? ` ${detail}` : ''}`;
  }

  // ---- Runtime services ---------------------------------------------------------------

  now(): number {
    return this.time;
  }

  queryLanguage(state: StateDefinition): QueryLanguage {
    return state.QueryLanguage ?? this.rootQueryLanguage;
  }

  emit(thread: Thread | undefined, type: string, details?: Record<string, unknown>): number {
    const id = ++this.exec.lastEventId;
    const previousEventId = thread ? thread.lastEventId : id - 1;
    if (thread) thread.lastEventId = id;
    this.events.push({ id, previousEventId, type, timestamp: this.time, ...details });
    return id;
  }

  context(thread: Thread): JsonObject {
    const info = this.exec.info;
    const ctx: JsonObject = {
      Execution: {
        Id: info.executionArn,
        Input: info.input,
        Name: info.executionName,
        RoleArn: info.roleArn,
        StartTime: new Date(info.startTime).toISOString(),
        RedriveCount: info.redriveCount,
      },
      State: {
        EnteredTime: new Date(thread.enteredTime).toISOString(),
        Name: thread.state,
        RetryCount: thread.retries.reduce((a, b) => a + b, 0),
      },
      StateMachine: { Id: info.stateMachineArn, Name: info.stateMachineName },
    };
    const item = this.mapItemOf(thread);
    if (item) ctx.Map = { Item: { Index: item.Index, Value: item.Value } };
    // In a Task state, the token of the task it is about to start (its Parameters may pass it).
    if (this.stateDef(thread).Type === 'Task')
      ctx.Task = { Token: taskToken(info.executionArn, this.nextTaskId(thread)) };
    return ctx;
  }

  /** The id the thread's next task gets (see invokeTask). */
  private nextTaskId(thread: Thread): string {
    return `${thread.id}.${this.exec.seq + 1}`;
  }

  private mapItemOf(thread: Thread): { Index: number; Value: Json } | undefined {
    return thread.mapItem;
  }

  /** A variable visible from the thread: its own scope first, then enclosing ones. */
  lookupVariable(thread: Thread, name: string): Json | undefined {
    for (
      let t: Thread | undefined = thread;
      t;
      t = t.parentId ? this.exec.threads[t.parentId] : undefined
    ) {
      if (Object.prototype.hasOwnProperty.call(t.variables, name)) return t.variables[name];
    }
    return undefined;
  }

  private variableNames(thread: Thread): string[] {
    const names = new Set<string>();
    for (
      let t: Thread | undefined = thread;
      t;
      t = t.parentId ? this.exec.threads[t.parentId] : undefined
    ) {
      for (const k of Object.keys(t.variables)) names.add(k);
    }
    return [...names];
  }

  pathScope(thread: Thread, input: Json): EvalScope {
    return new ThreadScope(this, thread, input);
  }

  jsonataScope(thread: Thread, extras?: StatesExtras): JsonataScope {
    const states: JsonObject = {
      input: extras?.input !== undefined ? extras.input : thread.input,
      context: this.context(thread),
    };
    if (extras?.result !== undefined) states.result = extras.result;
    if (extras?.errorOutput !== undefined) states.errorOutput = extras.errorOutput;
    return {
      states,
      variable: (name) => this.lookupVariable(thread, name),
      variableNames: () => this.variableNames(thread),
      random: this.random,
      now: this.time,
    };
  }

  effectiveInput(thread: Thread, parameters: Json | undefined): Json {
    const def = this.stateDef(thread) as { InputPath?: string | null };
    const selected = selectPath(def.InputPath, this.pathScope(thread, thread.input));
    if (parameters === undefined) return selected;
    return evaluatePayloadTemplate(parameters, this.pathScope(thread, selected), 'Parameters');
  }

  exitState(
    thread: Thread,
    output: Json,
    assign: JsonObject | undefined,
    next: string | undefined,
  ): void {
    if (assign) Object.assign(thread.variables, assign);
    thread.resume = undefined;
    thread.stopped = undefined;
    const def = this.stateDef(thread);
    this.emit(thread, `${def.Type}StateExited`, {
      stateExitedEventDetails: { name: thread.state, output },
    });
    if (next !== undefined) {
      this.agenda.push({ kind: 'enter', threadId: thread.id, state: next, input: output });
    } else {
      this.agenda.push({ kind: 'threadSucceeded', threadId: thread.id, output });
    }
  }

  async completeWithResult(thread: Thread, result: Json): Promise<void> {
    const def = this.stateDef(thread) as StateDefinition & {
      ResultSelector?: JsonObject;
      ResultPath?: string | null;
    };
    if (this.queryLanguage(def) === 'JSONata') {
      const assign = def.Assign
        ? ((await evaluateJsonataTemplate(
            def.Assign,
            this.jsonataScope(thread, { result }),
            'Assign',
          )) as JsonObject)
        : undefined;
      const output =
        def.Output !== undefined
          ? await evaluateJsonataTemplate(
              def.Output,
              this.jsonataScope(thread, { result }),
              'Output',
            )
          : def.Type === 'Pass'
            ? thread.input
            : result;
      this.exitState(thread, output, assign, def.Next);
      return;
    }
    const selected =
      def.ResultSelector !== undefined
        ? evaluatePayloadTemplate(
            def.ResultSelector,
            this.pathScope(thread, result),
            'ResultSelector',
          )
        : result;
    const assign = def.Assign
      ? (evaluatePayloadTemplate(
          def.Assign,
          this.pathScope(thread, selected),
          'Assign',
        ) as JsonObject)
      : undefined;
    const combined = applyResultPath(thread.input, def.ResultPath, selected);
    const output = selectPath(def.OutputPath, this.pathScope(thread, combined));
    this.exitState(thread, output, assign, def.Next);
  }

  async handleError(thread: Thread, error: string, cause: string | undefined): Promise<void> {
    if (this.exec.status !== 'RUNNING') return;
    const def = this.stateDef(thread) as StateDefinition & { Retry?: Retrier[]; Catch?: Catcher[] };
    const r = findHandler(def.Retry, error);
    if (r >= 0) {
      const retrier = def.Retry![r];
      const used = thread.retries[r] ?? 0;
      if (used < maxAttempts(retrier)) {
        thread.retries[r] = used + 1;
        const delay = retryDelayMs(retrier, used, this.random);
        this.startTimer(thread, this.time + delay, 'retry');
        return;
      }
    }
    const c = findHandler(def.Catch, error);
    if (c >= 0) {
      const catcher = def.Catch![c];
      const errorOutput: JsonObject = { Error: error };
      if (cause !== undefined) errorOutput.Cause = cause;
      let output: Json;
      let assign: JsonObject | undefined;
      if (this.queryLanguage(def) === 'JSONata') {
        const scope = this.jsonataScope(thread, { errorOutput });
        assign = catcher.Assign
          ? ((await evaluateJsonataTemplate(catcher.Assign, scope, 'Assign')) as JsonObject)
          : undefined;
        output =
          catcher.Output !== undefined
            ? await evaluateJsonataTemplate(catcher.Output, scope, 'Output')
            : errorOutput;
      } else {
        assign = catcher.Assign
          ? (evaluatePayloadTemplate(
              catcher.Assign,
              this.pathScope(thread, errorOutput),
              'Assign',
            ) as JsonObject)
          : undefined;
        output = applyResultPath(thread.input, catcher.ResultPath, errorOutput);
      }
      this.exitState(thread, output, assign, catcher.Next);
      return;
    }
    this.failThread(thread, error, cause);
  }

  /** The thread's current state failed with nothing to handle it. */
  failThread(thread: Thread, error: string, cause: string | undefined): void {
    this.agenda.push({ kind: 'threadFailed', threadId: thread.id, error, cause });
  }

  invokeTask(
    thread: Thread,
    resource: string,
    input: Json,
    options: {
      timeoutSeconds?: number;
      heartbeatSeconds?: number;
      credentials?: Json;
      itemReader?: { config: JsonObject; maxItems?: number };
      resultWriter?: { output: Json; failure?: { error: string; cause?: string } };
      parameters?: Json;
    },
  ): void {
    // Its context, with the token of this task, before the id is taken.
    const context = this.context(thread);
    const taskId = this.nextTaskId(thread);
    this.exec.seq++;
    const pending: Extract<Pending, { kind: 'task' }> = {
      kind: 'task',
      taskId,
      effectiveInput: input,
    };
    if (options.itemReader) {
      pending.itemReader =
        options.itemReader.maxItems === undefined ? {} : { maxItems: options.itemReader.maxItems };
    }
    if (options.resultWriter) pending.resultWriter = options.resultWriter;
    this.exec.tasks[taskId] = thread.id;
    const details: Record<string, unknown> = {
      resource,
      parameters: options.parameters ?? input,
      region: 'local',
    };
    if (options.timeoutSeconds !== undefined) details.timeoutInSeconds = options.timeoutSeconds;
    if (options.heartbeatSeconds !== undefined)
      details.heartbeatInSeconds = options.heartbeatSeconds;
    this.emit(thread, 'TaskScheduled', { taskScheduledEventDetails: details });
    if (options.timeoutSeconds !== undefined) {
      pending.timeoutTimerId = `${taskId}:timeout`;
      this.exec.timers[pending.timeoutTimerId] = thread.id;
      this.commands.push({
        type: 'StartTimer',
        timerId: pending.timeoutTimerId,
        dueTime: this.time + options.timeoutSeconds * 1000,
      });
    }
    if (options.heartbeatSeconds !== undefined) {
      pending.heartbeatTimerId = `${taskId}:heartbeat`;
      pending.heartbeatSeconds = options.heartbeatSeconds;
      this.exec.timers[pending.heartbeatTimerId] = thread.id;
      this.commands.push({
        type: 'StartTimer',
        timerId: pending.heartbeatTimerId,
        dueTime: this.time + options.heartbeatSeconds * 1000,
      });
    }
    this.setPending(thread, pending);
    this.commands.push({
      type: 'InvokeTask',
      taskId,
      resource,
      input,
      stateName: thread.state,
      attempt: thread.retries.reduce((a, b) => a + b, 0),
      timeoutSeconds: options.timeoutSeconds,
      heartbeatSeconds: options.heartbeatSeconds,
      credentials: options.credentials,
      itemReader: options.itemReader?.config,
      context,
    });
  }

  startTimer(thread: Thread, dueTime: number, kind: 'wait' | 'retry'): void {
    const timerId = `${thread.id}.${++this.exec.seq}:${kind}`;
    this.exec.timers[timerId] = thread.id;
    this.setPending(thread, { kind, timerId });
    this.commands.push({ type: 'StartTimer', timerId, dueTime });
  }

  private newThread(
    scope: string,
    parent: Thread | undefined,
    index: number | undefined,
    input: Json,
  ): Thread {
    const id = parent ? `${parent.id}/${++this.exec.seq}` : 't0';
    const thread: Thread = {
      id,
      scope,
      state: '',
      input,
      enteredEventId: 0,
      enteredTime: this.time,
      lastEventId: parent ? parent.lastEventId : this.exec.lastEventId,
      retries: [],
      variables: {},
    };
    if (parent) {
      thread.parentId = parent.id;
      thread.index = index;
    }
    this.exec.threads[id] = thread;
    return thread;
  }

  spawn(
    parent: Thread,
    scopeKey: string,
    index: number,
    input: Json,
    mapItem?: { Index: number; Value: Json },
    from?: RedrivePoint,
  ): Thread {
    const def = this.scopes.get(scopeKey)!;
    if (from && def.States[from.state] === undefined) from = undefined;
    const thread = this.newThread(scopeKey, parent, index, from ? from.input : input);
    if (mapItem) thread.mapItem = mapItem;
    if (from) {
      thread.variables = { ...from.variables };
      if (from.progress) thread.resume = from.progress;
    }
    this.agenda.push({
      kind: 'enter',
      threadId: thread.id,
      state: from ? from.state : def.StartAt,
      input: thread.input,
    });
    return thread;
  }

  scopeKey(thread: Thread, ...path: (string | number)[]): string {
    return [thread.scope, thread.state, ...path].join('/');
  }

  scopeDefinition(key: string): StateMachineDefinition {
    return this.scopes.get(key)!;
  }

  abortThreads(ids: string[]): void {
    for (const id of ids) {
      const thread = this.exec.threads[id];
      if (!thread) continue;
      this.cancelPending(thread);
      delete this.exec.threads[id];
    }
  }

  private cancelPending(thread: Thread): void {
    const pending = thread.pending;
    if (!pending) return;
    if (pending.kind === 'task') {
      this.commands.push({ type: 'CancelTask', taskId: pending.taskId });
      this.clearTask(thread, pending);
    } else if (pending.kind === 'wait' || pending.kind === 'retry') {
      delete this.exec.timers[pending.timerId];
      this.commands.push({ type: 'CancelTimer', timerId: pending.timerId });
    } else if (pending.kind === 'parallel') {
      this.abortThreads(pending.children);
    } else if (pending.kind === 'map') {
      this.abortThreads(Object.values(pending.running));
    }
    thread.pending = undefined;
  }

  setPending(thread: Thread, pending: Pending | undefined): void {
    thread.pending = pending;
  }

  private stateDef(thread: Thread): StateDefinition {
    return this.scopes.get(thread.scope)!.States[thread.state];
  }

  // ---- thread completion --------------------------------------------------------------

  private async threadSucceeded(thread: Thread, output: Json): Promise<void> {
    delete this.exec.threads[thread.id];
    const parent = thread.parentId ? this.exec.threads[thread.parentId] : undefined;
    if (!thread.parentId) {
      this.exec.status = 'SUCCEEDED';
      this.exec.output = output;
      this.emit(undefined, 'ExecutionSucceeded', { executionSucceededEventDetails: { output } });
      this.completeExecution();
      return;
    }
    if (!parent || !parent.pending) return;
    const handler = STATE_HANDLERS[this.stateDef(parent).Type];
    await this.guard(parent, () => handler.childSucceeded!(this, parent, thread, output));
  }

  private async threadFailed(
    thread: Thread,
    error: string,
    cause: string | undefined,
  ): Promise<void> {
    if (!thread.parentId) {
      this.exec.redrive = this.redrivePointOf(thread);
      this.cancelPending(thread);
      delete this.exec.threads[thread.id];
      this.terminate('FAILED', error, cause);
      return;
    }
    this.cancelPending(thread);
    const parent = this.exec.threads[thread.parentId];
    if (!parent || !parent.pending) {
      delete this.exec.threads[thread.id];
      return;
    }
    if (error === 'States.Runtime') {
      // Not catchable anywhere: the whole execution fails (the thread is still in the tree, so
      // the redrive point continues it from the state that failed).
      this.terminate('FAILED', error, cause);
      return;
    }
    delete this.exec.threads[thread.id];
    const handler = STATE_HANDLERS[this.stateDef(parent).Type];
    await this.guard(parent, () => handler.childFailed!(this, parent, thread, error, cause));
  }

  /**
   * Where a redrive continues the thread: the state it is in, with that state's input and the
   * thread's variables; a Map or Parallel state there adds a point for each of its unsuccessful
   * iterations or branches (recursively), and which ones succeeded.
   */
  redrivePointOf(thread: Thread): RedrivePoint {
    const point: RedrivePoint = {
      state: thread.state,
      input: thread.input,
      variables: thread.variables,
    };
    const pending = thread.pending;
    const progress =
      pending?.kind === 'map' || pending?.kind === 'parallel'
        ? this.childProgress(thread, pending, undefined)
        : thread.stopped?.state === thread.state
          ? thread.stopped
          : thread.resume?.state === thread.state
            ? thread.resume // a redrive had not got as far as starting the state's children
            : undefined;
    if (progress) point.progress = progress;
    return point;
  }

  recordProgress(thread: Thread, failed?: Thread): void {
    const pending = thread.pending;
    if (pending?.kind === 'map' || pending?.kind === 'parallel')
      thread.stopped = this.childProgress(thread, pending, failed);
  }

  /** What a running Map or Parallel has done; `failed` is a child that has just failed. */
  private childProgress(
    thread: Thread,
    pending: Extract<Pending, { kind: 'map' | 'parallel' }>,
    failed: Thread | undefined,
  ): ChildProgress {
    const children: Record<string, RedrivePoint> = {};
    let live: string[];
    let succeeded: number[];
    if (pending.kind === 'map') {
      // Iterations a redrive had not launched yet, and failures the Map tolerated, are still
      // unsuccessful.
      Object.assign(children, pending.resume, pending.failedPoints);
      live = Object.values(pending.running);
      succeeded = indexRanges(pending.succeeded, pending.skipRanges);
    } else {
      live = pending.children;
      succeeded = indexRanges(pending.succeeded ?? []);
    }
    for (const id of live) {
      const child = this.exec.threads[id];
      if (child && child !== failed) children[String(child.index)] = this.redrivePointOf(child);
    }
    if (failed) children[String(failed.index)] = this.redrivePointOf(failed);
    return { state: thread.state, results: pending.results, succeeded, children };
  }

  /**
   * RedriveExecution: a FAILED, ABORTED or TIMED_OUT execution continues from the state that
   * had not finished, with that state's input. Inside a Map or Parallel state there, only the
   * iterations and branches that failed or were aborted run again, each from its own state
   * that had not finished; the others keep their outputs.
   */
  async redrive(state: ExecutionState, time: number): Promise<StepResult> {
    const point = state.redrive;
    if (state.status === 'RUNNING' || state.status === 'SUCCEEDED' || !point) {
      throw new Error(
        `only a FAILED, ABORTED or TIMED_OUT execution can be redriven (this one is ${state.status})`,
      );
    }
    this.begin(state, time);
    state.status = 'RUNNING';
    delete state.output;
    delete state.error;
    delete state.cause;
    delete state.redrive;
    state.info.redriveCount++;
    this.emit(undefined, 'ExecutionRedriven', {
      executionRedrivenEventDetails: { redriveCount: state.info.redriveCount },
    });
    const root = this.newThread('', undefined, undefined, point.input);
    root.variables = point.variables;
    const progress = point.progress ?? legacyProgress(point);
    if (progress) root.resume = progress;
    this.agenda.push({ kind: 'enter', threadId: root.id, state: point.state, input: point.input });
    await this.drain();
    return this.finish();
  }

  private terminate(
    status: 'FAILED' | 'ABORTED' | 'TIMED_OUT',
    error: string | undefined,
    cause: string | undefined,
  ): void {
    const root = this.exec.threads['t0'];
    if (root && !this.exec.redrive) this.exec.redrive = this.redrivePointOf(root);
    for (const thread of Object.values(this.exec.threads)) this.cancelPending(thread);
    this.exec.threads = {};
    this.exec.status = status;
    // A Fail state without Error (or Cause) fails with none: AWS omits the field.
    const err = error ? error.slice(0, MAX_ERROR_LENGTH) : undefined;
    const cau = cause?.slice(0, MAX_CAUSE_LENGTH);
    if (err !== undefined) this.exec.error = err;
    if (cau !== undefined) this.exec.cause = cau;
    const type =
      status === 'FAILED'
        ? 'ExecutionFailed'
        : status === 'ABORTED'
          ? 'ExecutionAborted'
          : 'ExecutionTimedOut';
    const detailsKey =
      status === 'FAILED'
        ? 'executionFailedEventDetails'
        : status === 'ABORTED'
          ? 'executionAbortedEventDetails'
          : 'executionTimedOutEventDetails';
    const details: Record<string, string> = {};
    if (err !== undefined) details.error = err;
    if (cau !== undefined) details.cause = cau;
    this.emit(undefined, type, { [detailsKey]: details });
    this.completeExecution();
  }

  private completeExecution(): void {
    if (this.exec.timers['execution-timeout'] !== undefined) {
      delete this.exec.timers['execution-timeout'];
      this.commands.push({ type: 'CancelTimer', timerId: 'execution-timeout' });
    }
    const s = this.exec;
    const cmd: Command = { type: 'ExecutionCompleted', status: s.status as 'SUCCEEDED' };
    if (s.output !== undefined) cmd.output = s.output;
    if (s.error !== undefined) cmd.error = s.error;
    if (s.cause !== undefined) cmd.cause = s.cause;
    this.commands.push(cmd);
  }
}

/** A redrive point written by an older Strand kept only the top-level Map's progress. */
function legacyProgress(point: RedrivePoint): ChildProgress | undefined {
  const old = point.mapProgress;
  if (!old) return undefined;
  return {
    state: old.state,
    results: old.results,
    succeeded: indexRanges(old.succeeded),
    children: {},
  };
}

function byteLength(value: Json): number {
  const text = JSON.stringify(value) ?? '';
  if (text.length * 3 <= 262144) return text.length;
  return new TextEncoder().encode(text).length;
}

/** The JSONPath scope of a thread: `$$` is built only when a path asks for it. */
class ThreadScope implements EvalScope {
  private ctx: JsonObject | undefined;
  readonly random: () => number;
  constructor(
    private readonly interpreter: Interpreter,
    private readonly thread: Thread,
    readonly input: Json,
  ) {
    this.random = interpreter.random;
  }
  get context(): Json {
    this.ctx ??= this.interpreter.context(this.thread);
    return this.ctx;
  }
  variable(name: string): Json | undefined {
    return this.interpreter.lookupVariable(this.thread, name);
  }
}
