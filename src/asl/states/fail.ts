/** Fail: ends the execution (or the branch/iteration) with an error and a cause. */
import { StatesError } from '../errors.js';
import { evaluateIntrinsic, isIntrinsicCall, parseIntrinsic } from '../intrinsics.js';
import { evaluateJsonataTemplate } from '../jsonata.js';
import { readPath, type EvalScope } from '../path.js';
import type { FailState, Json } from '../types.js';
import type { StateHandler } from './handler.js';

function readStringPath(path: string, scope: EvalScope, field: string): string {
  const value: Json = isIntrinsicCall(path)
    ? evaluateIntrinsic(parseIntrinsic(path), scope)
    : readPath(path, scope);
  if (typeof value !== 'string') {
    throw new StatesError(
      'States.Runtime',
      `The ${field} field refers to value ${JSON.stringify(value)} which is not a valid string: ${path}`,
    );
  }
  return value;
}

export const failState: StateHandler<FailState> = {
  async run(rt, thread, def) {
    let error: string | undefined;
    let cause: string | undefined;
    if (rt.queryLanguage(def) === 'JSONata') {
      const scope = rt.jsonataScope(thread);
      const e =
        def.Error !== undefined
          ? await evaluateJsonataTemplate(def.Error, scope, 'Error')
          : undefined;
      const c =
        def.Cause !== undefined
          ? await evaluateJsonataTemplate(def.Cause, scope, 'Cause')
          : undefined;
      error = e === undefined ? undefined : typeof e === 'string' ? e : JSON.stringify(e);
      cause = c === undefined ? undefined : typeof c === 'string' ? c : JSON.stringify(c);
    } else {
      const scope = rt.pathScope(thread, thread.input);
      error =
        def.ErrorPath !== undefined ? readStringPath(def.ErrorPath, scope, 'ErrorPath') : def.Error;
      cause =
        def.CausePath !== undefined ? readStringPath(def.CausePath, scope, 'CausePath') : def.Cause;
    }
    rt.failThread(thread, error ?? '', cause);
  },
};
