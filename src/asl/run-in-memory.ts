/**
 * An in-memory driver for the interpreter: tasks are answered by JavaScript handlers and
 * timers run on a virtual clock that jumps to the next due timer, so Wait states and retry
 * backoffs never sleep. For tests, the conformance runner and the benchmark.
 */
import { StatesError } from './errors.js';
import type { Command, ExecutionStatus, HistoryEvent, InputEvent } from './execution.js';
import { Interpreter } from './interpreter.js';
import type { Json, JsonObject, StateMachineDefinition } from './types.js';

export interface TaskRequest {
  resource: string;
  input: Json;
  stateName: string;
  /** 0 for the first attempt, 1 for the first retry, … */
  attempt: number;
  context: Json;
  /** Set for a Map state's ItemReader: its ReaderConfig (MaxItems resolved). */
  itemReader?: JsonObject;
}

/** Answers a Task; throw `new StatesError(errorName, cause, false)` to fail it. */
export type TaskHandler = (request: TaskRequest) => Json | Promise<Json>;

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

export interface RunInMemoryOptions {
  /** One handler for every Task, or handlers by Resource ARN. */
  tasks?: TaskHandler | Record<string, TaskHandler>;
  /** Where the virtual clock starts (default: 2026-01-01T00:00:00Z). */
  clock?: Clock;
  /** Randomness (default: a seeded PRNG, so runs repeat exactly). */
  random?: () => number;
  executionName?: string;
  stateMachineName?: string;
  /**
   * Waits for real: when given, timers are awaited with it (and `clock` is read after
   * each wait) instead of jumping the virtual clock.
   */
  sleep?: (ms: number) => Promise<void>;
  /** Called with each history event as it is appended (progress display). */
  onEvent?: (event: HistoryEvent) => void;
}

export interface ExecutionResult {
  status: Exclude<ExecutionStatus, 'RUNNING'>;
  output?: Json;
  error?: string;
  cause?: string;
  events: HistoryEvent[];
  /** States entered. */
  transitions: number;
}

const DEFAULT_START = Date.UTC(2026, 0, 1);

function taskHandlerFor(
  tasks: RunInMemoryOptions['tasks'],
  resource: string,
): TaskHandler | undefined {
  if (!tasks) return undefined;
  if (typeof tasks === 'function') return tasks;
  return Object.prototype.hasOwnProperty.call(tasks, resource) ? tasks[resource] : undefined;
}

function failureOf(err: unknown): { error: string; cause?: string } {
  if (err instanceof StatesError) {
    return err.causeText === undefined
      ? { error: err.error }
      : { error: err.error, cause: err.causeText };
  }
  if (err instanceof Error) return { error: err.name || 'Error', cause: err.message };
  return { error: 'Error', cause: String(err) };
}

/** Runs a definition to completion in memory. */
export async function runInMemory(
  definition: StateMachineDefinition,
  input: Json,
  options: RunInMemoryOptions = {},
): Promise<ExecutionResult> {
  const interpreter = new Interpreter(definition, { random: options.random });
  let now = options.clock ? options.clock.now() : DEFAULT_START;
  const timers = new Map<string, number>();
  const inflight = new Set<string>();
  const ready: InputEvent[] = [];
  let wake: (() => void) | undefined;
  const events: HistoryEvent[] = [];
  let completed: Extract<Command, { type: 'ExecutionCompleted' }> | undefined;

  const invoke = (cmd: Extract<Command, { type: 'InvokeTask' }>): void => {
    inflight.add(cmd.taskId);
    const handler = taskHandlerFor(options.tasks, cmd.resource);
    const settle = (event: InputEvent): void => {
      if (!inflight.delete(cmd.taskId)) return;
      ready.push(event);
      wake?.();
    };
    if (!handler) {
      settle({
        type: 'TaskFailed',
        taskId: cmd.taskId,
        error: 'States.Runtime',
        cause: `No task handler for resource ${cmd.resource}`,
        time: now,
      });
      return;
    }
    const request: TaskRequest = {
      resource: cmd.resource,
      input: cmd.input,
      stateName: cmd.stateName,
      attempt: cmd.attempt,
      context: cmd.context,
    };
    if (cmd.itemReader) request.itemReader = cmd.itemReader;
    let value: Json | Promise<Json>;
    try {
      value = handler(request);
    } catch (err) {
      settle({ type: 'TaskFailed', taskId: cmd.taskId, ...failureOf(err), time: now });
      return;
    }
    Promise.resolve(value).then(
      (output) => settle({ type: 'TaskSucceeded', taskId: cmd.taskId, output, time: now }),
      (err: unknown) =>
        settle({ type: 'TaskFailed', taskId: cmd.taskId, ...failureOf(err), time: now }),
    );
  };

  const apply = (commands: Command[], produced: HistoryEvent[]): void => {
    for (const e of produced) {
      events.push(e);
      options.onEvent?.(e);
    }
    for (const cmd of commands) {
      switch (cmd.type) {
        case 'InvokeTask':
          invoke(cmd);
          break;
        case 'CancelTask':
          inflight.delete(cmd.taskId);
          break;
        case 'StartTimer':
          timers.set(cmd.timerId, cmd.dueTime);
          break;
        case 'CancelTimer':
          timers.delete(cmd.timerId);
          break;
        case 'ExecutionCompleted':
          completed = cmd;
          break;
      }
    }
  };

  const first = await interpreter.start(input, {
    time: now,
    executionName: options.executionName,
    stateMachineName: options.stateMachineName,
  });
  const state = first.state;
  apply(first.commands, first.events);

  while (!completed) {
    let event = ready.shift();
    if (!event && inflight.size > 0) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        if (ready.length > 0) resolve();
      });
      wake = undefined;
      continue;
    }
    if (!event) {
      let nextId: string | undefined;
      let nextDue = Infinity;
      for (const [id, due] of timers) {
        if (due < nextDue) {
          nextDue = due;
          nextId = id;
        }
      }
      if (nextId === undefined) {
        throw new Error('execution is stuck: nothing is running and no timer is set');
      }
      if (options.sleep && options.clock) {
        const delay = nextDue - options.clock.now();
        if (delay > 0) {
          await options.sleep(delay);
          continue;
        }
        now = options.clock.now();
      }
      timers.delete(nextId);
      now = Math.max(now, nextDue);
      event = { type: 'TimerFired', timerId: nextId, time: now };
    }
    if (options.sleep && options.clock) now = Math.max(now, options.clock.now());
    event.time = now;
    const result = await interpreter.step(state, event);
    apply(result.commands, result.events);
  }

  const out: ExecutionResult = {
    status: completed.status,
    events,
    transitions: state.transitions,
  };
  if (completed.output !== undefined) out.output = completed.output;
  if (completed.error !== undefined) out.error = completed.error;
  if (completed.cause !== undefined) out.cause = completed.cause;
  return out;
}
