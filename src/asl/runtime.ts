/**
 * The services the interpreter offers to the per-state-type handlers in `states/`.
 * Kept as an interface so that state files depend on this contract, not on the
 * interpreter module (no import cycle).
 */
import type { Pending, RedrivePoint, Thread } from './execution.js';
import type { EvalScope } from './path.js';
import type { JsonataScope } from './jsonata.js';
import type {
  Json,
  JsonObject,
  QueryLanguage,
  StateDefinition,
  StateMachineDefinition,
} from './types.js';

/** Extra `$states` members a JSONata field may see. */
export interface StatesExtras {
  result?: Json;
  errorOutput?: Json;
  input?: Json;
}

export interface Runtime {
  readonly random: () => number;
  /** Time of the event being processed (epoch ms). */
  now(): number;
  queryLanguage(state: StateDefinition): QueryLanguage;
  /** Appends a history event for the thread and returns its id. */
  emit(thread: Thread | undefined, type: string, details?: Record<string, unknown>): number;
  /** JSONPath scope: `$` = input, `$$` = the Context object, `$name` = variables. */
  pathScope(thread: Thread, input: Json): EvalScope;
  /** JSONata scope with `$states.input` = the thread's raw input and `$states.context`. */
  jsonataScope(thread: Thread, extras?: StatesExtras): JsonataScope;
  /** The Context object for the thread's current state. */
  context(thread: Thread): JsonObject;

  /** JSONPath: InputPath then Parameters (when the state has them). */
  effectiveInput(thread: Thread, parameters: Json | undefined): Json;
  /**
   * Finishes the current state: applies Assign, emits `<Type>StateExited`, then moves the
   * thread to `next`, or ends it when `next` is undefined.
   */
  exitState(
    thread: Thread,
    output: Json,
    assign: JsonObject | undefined,
    next: string | undefined,
  ): void;
  /**
   * Completes a state that produced `result` (Pass, Task, Parallel, Map): ResultSelector,
   * ResultPath, OutputPath, Assign in JSONPath; Output and Assign in JSONata.
   */
  completeWithResult(thread: Thread, result: Json): Promise<void>;
  /** Ends the thread with an error that no Retry or Catch of the current state sees (Fail state). */
  failThread(thread: Thread, error: string, cause: string | undefined): void;
  /** Routes an error through the state's Retry and Catch, or fails the thread. */
  handleError(thread: Thread, error: string, cause: string | undefined): Promise<void>;

  /** Emits an InvokeTask command (and timeout/heartbeat timers) and blocks the thread on it. */
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
      /** What the TaskScheduled event shows as the parameters, when not the input. */
      parameters?: Json;
    },
  ): void;
  /** Starts a timer that resumes the thread when it fires. */
  startTimer(thread: Thread, dueTime: number, kind: 'wait' | 'retry'): void;
  /**
   * Starts a child thread running `scopeKey` (a Parallel branch or a Map iteration), from its
   * StartAt, or on a redrive from the state `from` names, with that state's input and variables.
   */
  spawn(
    parent: Thread,
    scopeKey: string,
    index: number,
    input: Json,
    mapItem?: { Index: number; Value: Json },
    from?: RedrivePoint,
  ): Thread;
  /** Where a redrive would continue the thread (recursively through a Map or Parallel there). */
  redrivePointOf(thread: Thread): RedrivePoint;
  /**
   * Keeps, for a redrive, what the thread's running Map or Parallel state had done, before its
   * child `failed` makes it fail and its other children are aborted (or, with no child, before
   * a Map's ResultWriter runs: a redrive then writes again without running the iterations).
   */
  recordProgress(thread: Thread, failed?: Thread): void;
  /** The States scope of a Parallel branch or Map processor. */
  scopeKey(thread: Thread, ...path: (string | number)[]): string;
  scopeDefinition(key: string): StateMachineDefinition;
  /** Stops child threads (cancels their tasks and timers) and forgets them. */
  abortThreads(ids: string[]): void;
  setPending(thread: Thread, pending: Pending | undefined): void;
}
