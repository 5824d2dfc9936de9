/**
 * The data the interpreter works on: the execution state (plain, JSON-serialisable), the
 * events it consumes, the commands it emits and the history events it appends.
 */
import type { IndexRanges } from './redrive.js';
import type { Json, JsonObject } from './types.js';

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED' | 'TIMED_OUT';

/** Facts about an execution that the Context object (`$$`) exposes. */
export interface ExecutionInfo {
  executionArn: string;
  executionName: string;
  stateMachineArn: string;
  stateMachineName: string;
  roleArn: string;
  startTime: number;
  input: Json;
  redriveCount: number;
}

/** What a Task state, Wait state or Retry is blocked on. */
export type Pending =
  | {
      kind: 'task';
      taskId: string;
      /** The task's input after InputPath/Parameters (or Arguments). */
      effectiveInput: Json;
      timeoutTimerId?: string;
      heartbeatTimerId?: string;
      heartbeatSeconds?: number;
      /** Set when the task is a Map state's ItemReader: its result is the item list. */
      itemReader?: { maxItems?: number };
      /**
       * Set when the task is a Map state's ResultWriter: `output` is the Map's result once the
       * write succeeds; `failure`, when the Map run failed, is the error the state then fails with.
       */
      resultWriter?: { output: Json; failure?: { error: string; cause?: string } };
    }
  | { kind: 'wait'; timerId: string }
  | { kind: 'retry'; timerId: string }
  | {
      kind: 'parallel';
      effectiveInput: Json;
      children: string[];
      results: Json[];
      remaining: number;
      /** Branches that succeeded (a redrive does not run them again). */
      succeeded?: number[];
    }
  | {
      kind: 'map';
      effectiveInput: Json;
      items: Json[];
      /** Iteration inputs, precomputed when an ItemSelector/ItemBatcher applies, else undefined. */
      next: number;
      running: Record<string, string>;
      runningCount: number;
      results: Json[];
      completed: number;
      failed: number;
      toleratedCount: number;
      toleratedPercentage: number;
      maxConcurrency: number;
      firstFailure?: { error: string; cause?: string };
      /** Indices whose iteration succeeded in this run (a redrive does not run them again). */
      succeeded: number[];
      /**
       * On a redrive: the iterations that had succeeded before (their results are in `results`),
       * and the position in those ranges that `next` has reached.
       */
      skipRanges?: IndexRanges;
      skipAt?: number;
      /** On a redrive: where each unsuccessful iteration not launched yet continues, by index. */
      resume?: Record<string, RedrivePoint>;
      /** Iterations that failed within the tolerated threshold: where a redrive continues them. */
      failedPoints?: Record<string, RedrivePoint>;
      /** Before skipRanges: ascending indices to skip (states persisted by an older Strand). */
      skip?: number[];
      /** Kept when the Map has a ResultWriter: what each iteration did, for its records. */
      runs?: IterationRuns;
    };

/** Per iteration index, what a Map with a ResultWriter records of it. */
export interface IterationRuns {
  /** 0 not started, 1 running, 2 succeeded, 3 failed, 4 aborted. */
  state: number[];
  /** Epoch ms of its start and end (0: not known). */
  start: number[];
  stop: number[];
  /** Its input, when an ItemSelector made it differ from its item. */
  input?: Json[];
}

/** One line of execution: the root state machine, a Parallel branch or a Map iteration. */
export interface Thread {
  id: string;
  /** Key of the States scope the thread runs in ('' is the root; see Interpreter.scopes). */
  scope: string;
  /** The thread running the Parallel/Map state that owns this branch or iteration. */
  parentId?: string;
  /** Branch index or Map item index. */
  index?: number;
  /** Current state name. */
  state: string;
  /** The raw input of the current state. */
  input: Json;
  enteredEventId: number;
  enteredTime: number;
  lastEventId: number;
  /** Attempts used so far by each retrier of the current state. */
  retries: number[];
  /** Variables assigned in this scope. Lookup continues to the parent thread. */
  variables: Record<string, Json>;
  mapItem?: { Index: number; Value: Json };
  pending?: Pending;
  /** Set on a thread rebuilt by a redrive: what its Map or Parallel state had done before. */
  resume?: ChildProgress;
  /** Set when the thread's Map or Parallel state failed: what it had done, for a redrive. */
  stopped?: ChildProgress;
}

/**
 * Where RedriveExecution continues one line of execution (the root, a Parallel branch or a Map
 * iteration): the state that had not finished is entered again with the input it had, and the
 * states before it are not run again. A tree: a Map or Parallel state there carries, in
 * `progress`, a point for each of its own unsuccessful iterations or branches.
 */
export interface RedrivePoint {
  /** The state that had not finished. */
  state: string;
  /** Its raw input. */
  input: Json;
  /** The thread's own variables (enclosing scopes keep theirs in their own points). */
  variables: Record<string, Json>;
  /** Set when `state` is a Map or Parallel state that had started its iterations or branches. */
  progress?: ChildProgress;
  /** Written by an older Strand: the top-level Map's progress. */
  mapProgress?: { state: string; results: Json[]; succeeded: number[] };
}

/** What the iterations of a Map state or the branches of a Parallel state had done. */
export interface ChildProgress {
  /** The Map or Parallel state. */
  state: string;
  /**
   * Outputs by iteration or branch index; only those of `succeeded` count (a Map keeps the
   * array it already held, so a large Map adds nothing per iteration).
   */
  results: Json[];
  /** The indices that succeeded, as ranges. */
  succeeded: IndexRanges;
  /**
   * Unsuccessful iterations or branches that had started (failed, or aborted when a sibling
   * failed or the execution stopped), by index: where each continues. The other unsuccessful
   * ones start from the beginning.
   */
  children: Record<string, RedrivePoint>;
}

/** Work the interpreter has yet to do within the current step (see `Continue`). */
export type AgendaItem =
  | { kind: 'enter'; threadId: string; state: string; input: Json }
  | { kind: 'run'; threadId: string }
  | { kind: 'threadSucceeded'; threadId: string; output: Json }
  | { kind: 'threadFailed'; threadId: string; error: string; cause?: string };

export interface ExecutionState {
  status: ExecutionStatus;
  /**
   * Set when a step stopped at its event budget: the work left, which the `Continue` event
   * resumes. Part of the state, so a crash between the two loses nothing.
   */
  agenda?: AgendaItem[];
  info: ExecutionInfo;
  threads: Record<string, Thread>;
  /** Which thread each outstanding task and timer belongs to. */
  tasks: Record<string, string>;
  timers: Record<string, string>;
  seq: number;
  lastEventId: number;
  transitions: number;
  output?: Json;
  error?: string;
  cause?: string;
  /** Set when the execution FAILED, was ABORTED or TIMED_OUT: where RedriveExecution resumes. */
  redrive?: RedrivePoint;
}

/** Events the driver feeds in. `time` is epoch milliseconds from the driver's clock. */
export type InputEvent =
  | { type: 'TaskStarted'; taskId: string; time: number }
  | { type: 'TaskSucceeded'; taskId: string; output: Json; time: number }
  | { type: 'TaskFailed'; taskId: string; error: string; cause?: string; time: number }
  | { type: 'TaskHeartbeat'; taskId: string; time: number }
  | { type: 'TimerFired'; timerId: string; time: number }
  | { type: 'StopExecution'; error?: string; cause?: string; time: number }
  /** Resumes a step that stopped at its event budget (the driver feeds it after a `Continue`). */
  | { type: 'Continue'; time: number };

/** Effects the driver must carry out. */
export type Command =
  | {
      type: 'InvokeTask';
      taskId: string;
      resource: string;
      input: Json;
      stateName: string;
      /** 0 for the first attempt, then 1, 2, … per retry. */
      attempt: number;
      timeoutSeconds?: number;
      heartbeatSeconds?: number;
      credentials?: Json;
      /** For a Map state's ItemReader: its ReaderConfig (InputType, CSV header options, …). */
      itemReader?: JsonObject;
      /** The Context object as the task sees it (`$$`). */
      context: Json;
    }
  | { type: 'CancelTask'; taskId: string }
  | { type: 'StartTimer'; timerId: string; dueTime: number }
  | { type: 'CancelTimer'; timerId: string }
  /** The step stopped at its event budget: persist, then feed a `Continue` event. */
  | { type: 'Continue' }
  | {
      type: 'ExecutionCompleted';
      status: Exclude<ExecutionStatus, 'RUNNING'>;
      output?: Json;
      error?: string;
      cause?: string;
    };

/** A history event, named as in Step Functions' GetExecutionHistory. */
export interface HistoryEvent {
  id: number;
  previousEventId: number;
  type: string;
  timestamp: number;
  [details: string]: unknown;
}

/** What one call to the interpreter produces. */
export interface StepResult {
  state: ExecutionState;
  commands: Command[];
  events: HistoryEvent[];
}

/** Fields of history event details that GetExecutionHistory gives as JSON text. */
const JSON_TEXT_FIELDS = ['input', 'output', 'parameters'];

/**
 * A history event as GetExecutionHistory returns it: `input`, `output` and `parameters` of its
 * details as JSON text (with `inputDetails` / `outputDetails`), the timestamp as ISO 8601 (as
 * the AWS CLI prints it). Kept as values inside Strand, which reads them.
 */
export function historyEventForApi(
  event: HistoryEvent,
): Omit<HistoryEvent, 'timestamp'> & { timestamp: string } {
  const out: Record<string, unknown> = {
    ...event,
    timestamp: new Date(event.timestamp).toISOString(),
  };
  for (const [key, value] of Object.entries(event)) {
    if (!key.endsWith('EventDetails') || value === null || typeof value !== 'object') continue;
    const details: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    for (const field of JSON_TEXT_FIELDS) {
      if (!(field in details) || typeof details[field] === 'string') continue;
      details[field] = JSON.stringify(details[field]);
      if (field !== 'parameters') details[`${field}Details`] = { truncated: false };
    }
    out[key] = details;
  }
  return out as Omit<HistoryEvent, 'timestamp'> & { timestamp: string };
}
