/**
 * Payload templates (Parameters, ResultSelector, ItemSelector, Assign in JSONPath states):
 * a key ending in ".$" takes its value from a path or an intrinsic call and loses the suffix.
 */
import { PathNotFoundError, StatesError } from './errors.js';
import { evaluateIntrinsic, isIntrinsicCall, parseIntrinsic } from './intrinsics.js';
import { readPath, type EvalScope } from './path.js';
import type { Json, JsonObject } from './types.js';

function evaluateDynamic(key: string, expression: Json, scope: EvalScope, field: string): Json {
  if (typeof expression !== 'string') {
    throw new StatesError(
      'States.Runtime',
      `The value for the field '${key}' must be a STRING that contains a JSONPath but was an ${typeof expression}`,
    );
  }
  if (isIntrinsicCall(expression)) {
    return evaluateIntrinsic(parseIntrinsic(expression), scope);
  }
  try {
    return readPath(expression, scope);
  } catch (err) {
    if (err instanceof PathNotFoundError) {
      // As Step Functions: a path ending in a literal index ($.items[0]) that selects
      // nothing yields an empty array rather than an error.
      if (/\[\d+\]$/.test(expression)) return [];
      const where = expression.startsWith('$$') ? 'context object' : 'input';
      const shown = JSON.stringify(expression.startsWith('$$') ? scope.context : scope.input);
      throw new StatesError(
        'States.Runtime',
        `The JSONPath '${expression}' specified for the field '${key}' could not be found in the ${where} '${shown}'`,
      );
    }
    throw err;
  }
  void field;
}

/** Evaluates a payload template against the scope; `field` names the state field for errors. */
export function evaluatePayloadTemplate(template: Json, scope: EvalScope, field: string): Json {
  if (template === null || typeof template !== 'object') return template;
  if (Array.isArray(template)) return template.map((v) => evaluatePayloadTemplate(v, scope, field));
  const out: JsonObject = {};
  for (const key of Object.keys(template)) {
    const value = template[key];
    if (key.endsWith('.$') && key.length > 2) {
      out[key.slice(0, -2)] = evaluateDynamic(key, value, scope, field);
    } else {
      out[key] = evaluatePayloadTemplate(value, scope, field);
    }
  }
  return out;
}
