/**
 * Runs one compiled pipeline on two ASL implementations and records what each did.
 *
 * 1. `strand run` (in-process) runs the pipeline on Strand's engine. From the home it left we
 *    take the definition and input that execution ran with, its outcome, and from its history
 *    every Task call (state, sample, resolved Parameters, result or error) and the states
 *    entered, per sample.
 * 2. The same definition and input run on aws-local-stepfunctions (an independent ASL
 *    implementation) with `taskResourceLocalHandlers`:
 *    - `batch:submitJob.sync` Tasks are answered with the result Strand's run got for the same
 *      state and sample (the job's Tags carry strand:step and strand:sample), or fail with the
 *      same error and cause, as Step Functions reports a failed job (States.TaskFailed, the
 *      job description as Cause);
 *    - `lambda:invoke` Tasks call Strand's real function handlers, over the same home (store,
 *      results database, and the engine's LocalBatch, where publish finds a job's work
 *      directory), answering `{ ExecutedVersion, Payload, StatusCode }` as the optimised
 *      integration does; a handler's error becomes Error = its type and Cause = Lambda's
 *      `{ errorMessage, errorType }` JSON (real Lambda adds a `trace`).
 */
import type { HistoryEvent } from '../../src/asl/execution.js';
import type { Json, JsonObject } from '../../src/asl/types.js';
import { openStrand, type Strand } from '../../src/app/index.js';
import { polyfillWithResolvers } from '../../scripts/lib/with-resolvers.js';
import { strand } from './cli.js';

export interface Outcome {
  status: string;
  output?: Json;
  error?: string;
  cause?: string;
}

/** One Task call: the state, the sample it is for, its resolved input and how it ended. */
export interface TaskCall {
  resource: 'batch' | 'lambda';
  input: Json;
  result: { output: Json } | { error: string; cause: string };
}

/** What one engine did. */
export interface Trace {
  outcome: Outcome;
  /** `state | sample` → the calls of that Task state for that sample, in order. */
  tasks: Record<string, TaskCall[]>;
  /**
   * `sample machine` → the states entered there, in order. The sample is the Map iteration's
   * sample id, or `(run)` outside the Map; the machine is `top`, the Map state's name, or
   * `Parallel[branch]`. Within one machine states run one after another, so the order is
   * the same on any correct engine; only the interleaving across machines may differ.
   */
  entered: Record<string, string[]>;
}

export interface BothRuns {
  /** Exit code of `strand run`. */
  code: number;
  /** What `strand run` printed on standard error. */
  err: string;
  definition: JsonObject;
  input: JsonObject;
  strand: Trace;
  peer: Trace;
}

const BATCH = 'arn:aws:states:::batch:submitJob.sync';
const LAMBDA = 'arn:aws:states:::lambda:invoke';
const TOP = '(run)';

/** The sample a Task call is for: the job's strand:sample tag, or the function payload's. */
function sampleOf(input: Json): string {
  const i = (input ?? {}) as JsonObject;
  const tags = i.Tags as Record<string, string> | undefined;
  const payload = i.Payload as JsonObject | undefined;
  return tags?.['strand:sample'] ?? (payload?.sample as string | undefined) ?? TOP;
}

const taskKey = (state: string, input: Json): string => `${state} | ${sampleOf(input)}`;

function push<T>(into: Record<string, T[]>, key: string, value: T): void {
  (into[key] ??= []).push(value);
}

/** Every state: its machine (`top`, the Map's name, or `Parallel[i]`) and Task resource. */
function machines(definition: JsonObject): Map<string, { machine: string; resource?: string }> {
  const out = new Map<string, { machine: string; resource?: string }>();
  const visit = (states: JsonObject, machine: string): void => {
    for (const [name, s] of Object.entries(states)) {
      // Names are unique in compiled pipelines, so a name tells its machine.
      if (out.has(name)) throw new Error(`state name ${name} is used twice; cannot tell machines`);
      const state = s as JsonObject;
      out.set(name, { machine, resource: state.Resource as string | undefined });
      const processor = (state.ItemProcessor ?? state.Iterator) as JsonObject | undefined;
      if (processor) visit(processor.States as JsonObject, name);
      ((state.Branches as JsonObject[] | undefined) ?? []).forEach((b, i) =>
        visit(b.States as JsonObject, `${name}[${i}]`),
      );
    }
  };
  visit(definition.States as JsonObject, 'top');
  return out;
}

/** Strand's history as a Trace (events chain through previousEventId). */
function strandTrace(
  history: HistoryEvent[],
  outcome: Outcome,
  samples: string[],
  machineOf: ReturnType<typeof machines>,
): Trace {
  const trace: Trace = { outcome, tasks: {}, entered: {} };
  const byId = new Map(history.map((e) => [e.id, e]));
  // Event id → Map iteration index (undefined outside the Map). An iteration's first state
  // chains from its MapIterationStarted event; the Map's own events stay outside.
  const iterationOf = new Map<number, number | undefined>();
  const iterationStarts = new Map<number, number>();
  const scheduled = new Map<number, { state: string; call: TaskCall }>();
  const enteredName = (e: HistoryEvent) =>
    (e.stateEnteredEventDetails as { name: string } | undefined)?.name;
  const stateOf = (id: number): string => {
    for (let e = byId.get(id); e; e = byId.get(e.previousEventId)) {
      const name = enteredName(e);
      if (name !== undefined) return name;
    }
    throw new Error(`event ${id}: no state entered before it`);
  };
  for (const e of history) {
    let iteration = iterationOf.get(e.previousEventId);
    if (e.type.endsWith('StateEntered') && iterationStarts.has(e.previousEventId))
      iteration = iterationStarts.get(e.previousEventId);
    iterationOf.set(e.id, iteration);
    if (e.type === 'MapIterationStarted')
      iterationStarts.set(e.id, (e.mapIterationStartedEventDetails as { index: number }).index);
    const name = enteredName(e);
    if (e.type.endsWith('StateEntered') && name !== undefined) {
      const sample = iteration === undefined ? TOP : samples[iteration];
      push(trace.entered, `${sample} ${machineOf.get(name)?.machine ?? '?'}`, name);
    }
    if (e.type === 'TaskScheduled') {
      const d = e.taskScheduledEventDetails as { resource: string; parameters: Json };
      const state = stateOf(e.previousEventId);
      const call: TaskCall = {
        resource: d.resource === BATCH ? 'batch' : 'lambda',
        input: d.parameters,
        result: { error: '(no result recorded)', cause: '' },
      };
      scheduled.set(e.id, { state, call });
      push(trace.tasks, taskKey(state, d.parameters), call);
    }
    if (e.type === 'TaskSucceeded' || e.type === 'TaskFailed' || e.type === 'TaskTimedOut') {
      let from = byId.get(e.previousEventId);
      while (from && !scheduled.has(from.id)) from = byId.get(from.previousEventId);
      if (!from) throw new Error(`${e.type} ${e.id}: no TaskScheduled before it`);
      const { call } = scheduled.get(from.id)!;
      if (e.type === 'TaskSucceeded') {
        call.result = { output: (e.taskSucceededEventDetails as { output: Json }).output };
      } else {
        const d = (e.taskFailedEventDetails ?? e.taskTimedOutEventDetails) as {
          error: string;
          cause?: string;
        };
        call.result = { error: d.error, cause: d.cause ?? '' };
      }
    }
  }
  return trace;
}

/** An aggregate step's wait for the samples it reads (`<step>: samples`, strand-collect). */
const WAIT = /^(.*): samples$/;

/**
 * The trace without the rounds an aggregate step waited for the samples it reads: how
 * many it takes (`<step>: samples` answering "pending", `<step>: samples ready?`, `<step>:
 * samples wait`) depends on how long the jobs took, which differs between the engines (the peer
 * answers Batch tasks at once). Only the last look, the one that found the samples ended, is
 * kept, without the answer it was given to the one before (`state.wait`, `seconds`, `entries`,
 * `since`).
 */
export function settled(trace: Trace): Trace {
  const tasks: Record<string, TaskCall[]> = {};
  for (const [key, calls] of Object.entries(trace.tasks)) {
    if (!WAIT.test(key.split(' | ')[0])) {
      tasks[key] = calls;
      continue;
    }
    tasks[key] = calls
      .filter((c) => !('output' in c.result) || waitAnswer(c.result.output) !== 'pending')
      .map((c) => {
        const input = structuredClone(c.input) as JsonObject;
        const state = ((input.Payload ?? {}) as JsonObject).state as JsonObject | undefined;
        if (state) for (const k of ['wait', 'seconds', 'entries', 'since']) delete state[k];
        return { ...c, input };
      });
  }
  const entered: Record<string, string[]> = {};
  for (const [key, names] of Object.entries(trace.entered)) {
    const out: string[] = [];
    for (const name of names) {
      const wait = /^(.*): samples wait$/.exec(name);
      // A wait follows a look that found samples still on their way: drop the three.
      if (wait && out.at(-1) === `${wait[1]}: samples ready?`) out.splice(-2, 2);
      else out.push(name);
    }
    entered[key] = out;
  }
  return { outcome: trace.outcome, tasks, entered };
}

function waitAnswer(output: Json): unknown {
  return ((output as JsonObject | null)?.Payload as JsonObject | undefined)?.wait;
}

/** Runs the pipeline on Strand (`strand run <file> --home <home> --name <name> …args`), then on the peer. */
export async function runOnBothEngines(
  file: string,
  home: string,
  name: string,
  args: string[] = [],
): Promise<BothRuns> {
  const r = await strand('run', file, '--home', home, '--name', name, ...args);

  // The home as `strand run` left it, opened as `strand run` opens it: Strand's functions over
  // its store and results, finding jobs through the engine's LocalBatch.
  const { engine, functions, services } = openStrand({ home });
  try {
    const row = engine.store.getExecution(name);
    if (!row) throw new Error(`strand run did not record execution ${name}:\n${r.err}`);
    const definition = JSON.parse(row.definition) as JsonObject;
    const input = JSON.parse(row.input) as JsonObject;
    const samples = ((input.samples ?? []) as { id: string }[]).map((s) => s.id);
    const machineOf = machines(definition);
    const d = engine.describeExecution(name);
    const outcome: Outcome = { status: d.status };
    if (d.output !== undefined) outcome.output = JSON.parse(d.output) as Json;
    if (d.error !== undefined) outcome.error = d.error;
    if (d.cause !== undefined) outcome.cause = d.cause;
    const mine = strandTrace(engine.getExecutionHistory(name), outcome, samples, machineOf);
    const peer = await runOnPeer(definition, input, mine, functions, samples, machineOf);
    return { code: r.code, err: r.err, definition, input, strand: mine, peer };
  } finally {
    engine.close();
    await services.close();
  }
}

/** The same definition and input on aws-local-stepfunctions. */
async function runOnPeer(
  definition: JsonObject,
  input: JsonObject,
  recorded: Trace,
  functions: Strand['functions'],
  samples: string[],
  machineOf: ReturnType<typeof machines>,
): Promise<Trace> {
  const trace: Trace = { outcome: { status: 'RUNNING' }, tasks: {}, entered: {} };
  // Strand's batch results, consumed in order per state and sample (a retried job has several).
  const answers = new Map<string, TaskCall[]>();
  for (const [key, calls] of Object.entries(recorded.tasks))
    answers.set(
      key,
      calls.filter((c) => c.resource === 'batch'),
    );
  const inflight = new Set<Promise<unknown>>();

  const batch = async (state: string, task: Json): Promise<Json> => {
    const key = taskKey(state, task);
    const answer = answers.get(key)?.shift();
    if (!answer) {
      throw Object.assign(new Error(`Strand's run has no (further) job for ${key}`), {
        name: 'Portability.NoRecordedJob',
      });
    }
    if ('output' in answer.result) return structuredClone(answer.result.output);
    // As Step Functions reports a failed job: States.TaskFailed, the job description as Cause.
    const { error, cause } = answer.result;
    throw Object.assign(new Error(cause), { name: error });
  };
  const lambda = async (task: Json): Promise<Json> => {
    const t = (task ?? {}) as JsonObject;
    const functionName = String(t.FunctionName);
    const fn = functions[functionName];
    if (!fn) {
      throw Object.assign(new Error(`Function not found: ${functionName}`), {
        name: 'Lambda.ResourceNotFoundException',
      });
    }
    try {
      const payload = await fn(t.Payload ?? null, { functionName });
      return { ExecutedVersion: '$LATEST', Payload: payload, StatusCode: 200 };
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      const errorType = e.name || 'Error';
      throw Object.assign(new Error(JSON.stringify({ errorMessage: e.message, errorType })), {
        name: errorType,
      });
    }
  };

  const handlers: Record<string, (task: Json) => Promise<Json>> = {};
  for (const [state, { resource }] of machineOf) {
    if (resource !== BATCH && resource !== LAMBDA) continue;
    handlers[state] = (task) => {
      const call: TaskCall = {
        resource: resource === BATCH ? 'batch' : 'lambda',
        input: structuredClone(task),
        result: { error: '(no result yet)', cause: '' },
      };
      push(trace.tasks, taskKey(state, task), call);
      const p = (resource === BATCH ? batch(state, task) : lambda(task)).then(
        (output) => {
          call.result = { output: structuredClone(output) };
          return output;
        },
        (err: Error) => {
          call.result = { error: err.name, cause: err.message };
          throw err;
        },
      );
      const tracked = p.catch(() => undefined);
      inflight.add(tracked);
      void tracked.then(() => inflight.delete(tracked));
      return p;
    };
  }

  polyfillWithResolvers();
  const { StateMachine } = await import('aws-local-stepfunctions');
  // Validated in full (asl-validator, JSONPaths and ARNs checked) before it runs.
  const machine = new StateMachine(definition as never);
  const execution = machine.run(input as never, {
    overrides: { taskResourceLocalHandlers: handlers as never },
  });
  const logged = (async () => {
    for await (const event of execution.eventLogs) {
      if (event.type !== 'StateEntered') continue;
      const sample = event.index === undefined ? TOP : samples[event.index];
      push(
        trace.entered,
        `${sample} ${machineOf.get(event.state.name)?.machine ?? '?'}`,
        event.state.name,
      );
    }
  })();
  try {
    trace.outcome = { status: 'SUCCEEDED', output: (await execution.result) as Json };
  } catch (err) {
    // ExecutionError: its cause is the error the execution failed with (name = Error).
    const e = (err as Error & { cause?: Error }).cause ?? (err as Error);
    trace.outcome = { status: 'FAILED', error: e.name, cause: e.message };
  }
  await logged;
  // When the Map fails, iterations (and Parallel branches in them) still running carry on in
  // the background on this implementation: let their handlers finish before the home closes.
  for (let quiet = 0; quiet < 3;) {
    await new Promise((r) => setTimeout(r, 10));
    if (inflight.size === 0) quiet++;
    else {
      quiet = 0;
      await Promise.all([...inflight]);
    }
  }
  return trace;
}
