/**
 * `arn:aws:states:::states:startExecution` (and `.sync`, `.sync:2`): a Task that starts another
 * execution on this engine. The child's name is derived from the parent's task when the task
 * gives none, so a restarted engine that invokes the task again finds the child it started
 * (StartExecution is idempotent by name) instead of starting another. Outputs as AWS gives them:
 * `{ ExecutionArn, StartDate }` at once; with `.sync`, the child's DescribeExecution with its
 * input and output as JSON text; with `.sync:2`, as JSON values.
 */
import type { Json, JsonObject, StateMachineDefinition } from '../asl/types.js';
import type { Engine, ExecutionDescription } from './engine.js';
import {
  taskDigest,
  type TaskCallbacks,
  type TaskIntegration,
  type TaskInvocation,
} from './integrations.js';

export const STATES_RESOURCE = /^arn:aws:states:::states:startExecution(\.sync(:2)?)?$/;

/** How deep executions may start one another before the start is refused as a loop. */
export const MAX_NESTING = 16;

/** Finds the definition a StateMachineArn (or name) names; undefined when none. */
export type StateMachineResolver = (
  name: string,
) => { name: string; definition: StateMachineDefinition } | undefined;

/** The state machine name in a StateMachineArn (`…:stateMachine:NAME`), or the name itself. */
export function stateMachineName(arnOrName: string): string {
  const m = /:stateMachine:([^:]+)(:[^:]*)?$/.exec(arnOrName);
  return m ? m[1] : arnOrName;
}

export class StatesIntegration implements TaskIntegration {
  readonly name = 'states';
  constructor(
    private readonly engine: Engine,
    private readonly resolve: StateMachineResolver,
  ) {}

  supports(resource: string): boolean {
    return STATES_RESOURCE.test(resource);
  }

  async invoke(task: TaskInvocation, callbacks: TaskCallbacks): Promise<void> {
    const mode = STATES_RESOURCE.exec(task.resource)?.[2]
      ? 'sync2'
      : task.resource.endsWith('.sync')
        ? 'sync'
        : 'start';
    const p = (task.input ?? {}) as JsonObject;
    const arn = typeof p.StateMachineArn === 'string' ? p.StateMachineArn : '';
    if (!arn) {
      callbacks.failed('States.Runtime', `${task.stateName}: Parameters need a StateMachineArn`);
      return;
    }
    const wanted = stateMachineName(arn);
    const name =
      typeof p.Name === 'string' && p.Name !== ''
        ? p.Name
        : `${wanted.slice(0, 40)}-${taskDigest(task.executionArn, task.taskId).slice(0, 16)}`;
    let child: ExecutionDescription;
    const existing = this.engine.findExecution(name);
    if (existing) child = existing;
    else {
      // Looked up only to start it: a child started before a restart carries on as it is.
      const found = this.resolve(wanted);
      if (!found) {
        callbacks.failed(
          'StepFunctions.StateMachineDoesNotExistException',
          `State Machine Does Not Exist: '${arn}' (Strand looks for ${wanted}.asl.json beside the definition it started, a --state-machine ${wanted}=FILE, or a state machine of that name it has run)`,
        );
        return;
      }
      const chain = this.engine.ancestry(task.executionArn);
      if (chain.length >= MAX_NESTING) {
        callbacks.failed(
          'States.Runtime',
          `${task.stateName}: executions started one another ${chain.length} deep (${chain.map((a) => stateMachineName(this.engine.findExecution(a)?.stateMachineArn ?? a)).join(' → ')}); a loop? Strand stops at ${MAX_NESTING}`,
        );
        return;
      }
      let input: Json = p.Input ?? {};
      if (typeof input === 'string') {
        try {
          input = JSON.parse(input) as Json;
        } catch {
          callbacks.failed(
            'States.Runtime',
            `${task.stateName}: Input is a string that is not JSON`,
          );
          return;
        }
      }
      child = await this.engine.startExecution({
        definition: found.definition,
        input,
        name,
        stateMachineName: found.name,
        parentArn: task.executionArn,
      });
    }
    this.children.set(`${task.executionArn}|${task.taskId}`, child.executionArn);
    if (mode === 'start') {
      callbacks.succeeded({
        ExecutionArn: child.executionArn,
        StartDate: Date.parse(child.startDate),
      });
      return;
    }
    const done = await this.engine.waitForExecution(child.executionArn);
    const shaped = describeForTask(done, mode === 'sync2');
    if (done.status === 'SUCCEEDED') callbacks.succeeded(shaped);
    else
      callbacks.failed(
        done.status === 'TIMED_OUT' ? 'States.Timeout' : 'States.TaskFailed',
        JSON.stringify(shaped),
      );
  }

  /** The child each task started (this process's), for cancel. */
  private readonly children = new Map<string, string>();

  /** The parent stops waiting (a stop, a timeout): its child is stopped too. */
  async cancel(task: { executionArn: string; taskId: string }): Promise<void> {
    const key = `${task.executionArn}|${task.taskId}`;
    const child = this.children.get(key);
    this.children.delete(key);
    if (child && this.engine.findExecution(child)?.status === 'RUNNING')
      await this.engine
        .stopExecution(child, 'States.Aborted', 'the parent execution stopped waiting for it')
        .catch(() => undefined);
  }
}

/** DescribeExecution as a `.sync` task's output: PascalCase; `.sync:2` parses input and output. */
function describeForTask(d: ExecutionDescription, parsed: boolean): JsonObject {
  const json = (text: string | undefined): Json =>
    text === undefined ? null : parsed ? (JSON.parse(text) as Json) : text;
  const out: JsonObject = {
    ExecutionArn: d.executionArn,
    StateMachineArn: d.stateMachineArn,
    Name: d.name,
    Status: d.status,
    StartDate: Date.parse(d.startDate),
    Input: json(d.input),
    InputDetails: { Included: true },
  };
  if (d.stopDate) out.StopDate = Date.parse(d.stopDate);
  if (d.output !== undefined) {
    out.Output = json(d.output);
    out.OutputDetails = { Included: true };
  }
  if (d.error !== undefined) out.Error = d.error;
  if (d.cause !== undefined) out.Cause = d.cause;
  out.RedriveCount = d.redriveCount;
  return out;
}
