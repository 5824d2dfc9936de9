/**
 * Task integrations: what answers a Task state's Resource. The engine hands each InvokeTask
 * command to the integration that supports its resource; the integration reports back
 * through callbacks, possibly much later (a Batch job) or after an engine restart.
 */
import { createHash } from 'node:crypto';
import type { Json, JsonObject } from '../asl/types.js';
import { exhausted } from '../faults.js';

export interface TaskInvocation {
  executionArn: string;
  taskId: string;
  resource: string;
  input: Json;
  stateName: string;
  attempt: number;
  context: Json;
  /** Set for a Map state's ItemReader: its ReaderConfig. */
  itemReader?: JsonObject;
}

/**
 * A stable hex digest of one task of one execution: what an integration names the work it
 * starts for the task after, so that invoking the task again after a restart finds that work.
 */
export function taskDigest(executionArn: string, taskId: string): string {
  return createHash('sha256').update(`${executionArn}\n${taskId}`).digest('hex');
}

export interface TaskCallbacks {
  succeeded(output: Json): void;
  failed(error: string, cause?: string): void;
  heartbeat(): void;
}

export interface TaskIntegration {
  /** A short name for messages ("lambda", "batch"). */
  readonly name: string;
  /** True when this integration answers the resource ARN. */
  supports(resource: string): boolean;
  /**
   * Starts (or, after a restart, re-attaches to) the task. Must be idempotent per taskId:
   * the engine calls it again for tasks outstanding when it restarts.
   */
  invoke(task: TaskInvocation, callbacks: TaskCallbacks): void | Promise<void>;
  /** Stops a task the execution no longer waits for. */
  cancel?(task: { executionArn: string; taskId: string }): void | Promise<void>;
}

/** A function registered in-process and invoked through `lambda:invoke`. */
export type LambdaFunction = (
  payload: Json,
  context: { functionName: string },
) => Json | Promise<Json>;

const OPTIMISED = /^arn:aws:states:::lambda:invoke$/;
const DIRECT = /^arn:aws:lambda:[^:]*:[^:]*:function:([^:]+)(:[^:]+)?$/;

/** `lambda:invoke` (and direct `arn:aws:lambda:…:function:NAME` resources) for in-process functions. */
export class LambdaIntegration implements TaskIntegration {
  readonly name = 'lambda';
  private readonly functions = new Map<string, LambdaFunction>();

  register(name: string, fn: LambdaFunction): void {
    this.functions.set(name, fn);
  }

  supports(resource: string): boolean {
    return OPTIMISED.test(resource) || DIRECT.test(resource);
  }

  async invoke(task: TaskInvocation, callbacks: TaskCallbacks): Promise<void> {
    const direct = DIRECT.exec(task.resource);
    let functionName: string;
    let payload: Json;
    if (direct) {
      functionName = direct[1];
      payload = task.input;
    } else {
      const input = (task.input ?? {}) as JsonObject;
      const name = typeof input.FunctionName === 'string' ? input.FunctionName : '';
      functionName = DIRECT.exec(name)?.[1] ?? name.split(':').pop() ?? name;
      payload = input.Payload ?? null;
    }
    const fn = this.functions.get(functionName);
    if (!fn) {
      callbacks.failed(
        'Lambda.ResourceNotFoundException',
        `Function not found: ${functionName} (registered: ${[...this.functions.keys()].join(', ') || 'none'}; \`strand start\` takes one as --lambda ${functionName}=MODULE)`,
      );
      return;
    }
    try {
      const result = await fn(payload, { functionName });
      callbacks.succeeded(
        direct ? result : { ExecutedVersion: '$LATEST', Payload: result, StatusCode: 200 },
      );
    } catch (err) {
      // A full disk is not the function's failure: the engine stops and runs it again later.
      if (exhausted(err)) throw err;
      const e = err instanceof Error ? err : new Error(String(err));
      const errorType = e.name && e.name !== 'Error' ? e.name : 'Exception';
      callbacks.failed(errorType, JSON.stringify({ errorMessage: e.message, errorType }));
    }
  }
}
