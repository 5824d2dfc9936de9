/** Helpers shared by state types: reading numeric fields given directly, by path or by JSONata. */
import { StatesError } from '../errors.js';
import type { Thread } from '../execution.js';
import { evaluateJsonataTemplate, isJsonataString } from '../jsonata.js';
import { readPath, selectPath } from '../path.js';
import { evaluatePayloadTemplate } from '../payload.js';
import type { Runtime } from '../runtime.js';
import type { Json, JsonObject } from '../types.js';

/**
 * Leaves a state that produces no result (Choice, Wait): JSONPath applies OutputPath to the
 * effective input and evaluates Assign against it; JSONata evaluates Assign and Output
 * (default: the state input).
 */
export async function exitWithoutResult(
  rt: Runtime,
  thread: Thread,
  def: { QueryLanguage?: string; OutputPath?: string | null; Type: string },
  effective: Json,
  next: string | undefined,
  assign: JsonObject | undefined,
  output: Json | undefined,
): Promise<void> {
  if (rt.queryLanguage(def as never) === 'JSONata') {
    const scope = rt.jsonataScope(thread);
    const assigned = assign
      ? ((await evaluateJsonataTemplate(assign, scope, 'Assign')) as JsonObject)
      : undefined;
    const out =
      output !== undefined ? await evaluateJsonataTemplate(output, scope, 'Output') : thread.input;
    rt.exitState(thread, out, assigned, next);
    return;
  }
  const scope = rt.pathScope(thread, effective);
  const assigned = assign
    ? (evaluatePayloadTemplate(assign, scope, 'Assign') as JsonObject)
    : undefined;
  rt.exitState(thread, selectPath(def.OutputPath, scope), assigned, next);
}

/**
 * Reads an integer field that may be given as a literal, a `…Path` field (JSONPath) or a
 * JSONata expression. Returns undefined when neither is present.
 */
export async function readIntegerField(
  rt: Runtime,
  thread: Thread,
  input: Json,
  literal: number | string | undefined,
  path: string | undefined,
  field: string,
  kind: 'integer' | 'float' = 'integer',
): Promise<number | undefined> {
  let value: Json | undefined;
  if (literal !== undefined) {
    value = isJsonataString(literal)
      ? await evaluateJsonataTemplate(literal, rt.jsonataScope(thread), field)
      : literal;
  } else if (path !== undefined) {
    value = readPath(path, rt.pathScope(thread, input));
    if (typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value))) {
      const n = Number(value);
      if (kind === 'float' || Number.isInteger(n)) value = n;
    }
    const ok = typeof value === 'number' && (kind === 'float' || Number.isInteger(value));
    if (!ok) {
      const shown = typeof value === 'string' ? value : JSON.stringify(value);
      throw new StatesError(
        'States.Runtime',
        `The ${field}Path field refers to value "${shown}" which is not a valid ${kind}: ${path}`,
      );
    }
  } else {
    return undefined;
  }
  if (typeof value !== 'number' || (kind === 'integer' && !Number.isInteger(value))) {
    throw new StatesError(
      'States.Runtime',
      `The ${field} field refers to value ${JSON.stringify(value)} which is not a valid ${kind}`,
    );
  }
  return value;
}
