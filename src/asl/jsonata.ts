/**
 * JSONata as the States language uses it: `{% expr %}` strings inside a state's fields,
 * evaluated with `$states` and the execution's variables bound, plus the functions Step
 * Functions adds ($partition, $range, $hash, $random, $uuid, $parse). Time and randomness
 * come from the caller.
 */
import jsonata from 'jsonata';
import { StatesError } from './errors.js';
import type { Json, JsonObject } from './types.js';
import { hashText, uuidFrom, seededRandom } from './intrinsics.js';

/** What a JSONata expression can see. */
export interface JsonataScope {
  /** `$states`: input, context, and (where the field allows them) result and errorOutput. */
  states: JsonObject;
  variable: (name: string) => Json | undefined;
  variableNames: () => string[];
  random: () => number;
  /** Epoch ms used for $now() and $millis(). */
  now: number;
}

const compiled = new Map<string, jsonata.Expression>();

/** True when a string is a JSONata expression field: `{% … %}`. */
export function isJsonataString(value: unknown): value is string {
  return (
    typeof value === 'string' && value.startsWith('{%') && value.endsWith('%}') && value.length >= 4
  );
}

/** The expression inside `{% … %}`. */
export function jsonataBody(value: string): string {
  return value.slice(2, -2).trim();
}

/** Parses (and caches) a JSONata expression; throws the jsonata syntax error. */
export function compileJsonata(expression: string): jsonata.Expression {
  let expr = compiled.get(expression);
  if (!expr) {
    expr = jsonata(expression);
    compiled.set(expression, expr);
  }
  return expr;
}

function jsonataMessage(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err && 'message' in err) {
    return `${String((err as { code: unknown }).code)}: ${String((err as { message: unknown }).message)}`;
  }
  return err instanceof Error ? err.message : String(err);
}

function partition(array: unknown, size: unknown): unknown {
  if (!Array.isArray(array)) throw new Error('$partition: first argument must be an array');
  if (typeof size !== 'number' || !Number.isInteger(size) || size <= 0) {
    throw new Error('$partition: chunk size must be a positive integer');
  }
  const out: unknown[] = [];
  for (let i = 0; i < array.length; i += size) out.push(array.slice(i, i + size));
  return out;
}

function range(start: unknown, end: unknown, step: unknown): unknown {
  if (typeof start !== 'number' || typeof end !== 'number' || typeof step !== 'number') {
    throw new Error('$range: arguments must be numbers');
  }
  if (step === 0) throw new Error('$range: step must not be 0');
  const out: number[] = [];
  for (let v = start; step > 0 ? v <= end : v >= end; v += step) {
    out.push(v);
    if (out.length > 1000) throw new Error('$range: more than 1000 items');
  }
  // A JSONata sequence of one item is that item.
  return out.length === 1 ? out[0] : out;
}

/** Evaluates one JSONata expression string (without the `{% %}`), for the field named `field`. */
export async function evaluateJsonata(
  expression: string,
  scope: JsonataScope,
  field: string,
): Promise<Json> {
  let expr: jsonata.Expression;
  try {
    expr = compileJsonata(expression);
  } catch (err) {
    throw new StatesError(
      'States.QueryEvaluationError',
      `The JSONata expression '${expression}' specified for the field '${field}' could not be parsed. ${jsonataMessage(err)}`,
    );
  }
  const bindings: Record<string, unknown> = {
    states: scope.states,
    partition,
    range,
    hash: (value: unknown, algorithm: unknown) => {
      if (typeof value !== 'string' || typeof algorithm !== 'string') {
        throw new Error('$hash: arguments must be strings');
      }
      return hashText(value, algorithm);
    },
    random: (seed?: unknown) =>
      seed === undefined ? scope.random() : seededRandom(Number(seed))(),
    uuid: () => uuidFrom(scope.random),
    parse: (text: unknown) => {
      if (typeof text !== 'string') throw new Error('$parse: argument must be a string');
      return JSON.parse(text) as unknown;
    },
    now: () => new Date(scope.now).toISOString(),
    millis: () => scope.now,
  };
  for (const name of scope.variableNames()) {
    if (!(name in bindings)) bindings[name] = scope.variable(name);
  }
  let value: unknown;
  try {
    value = await expr.evaluate(scope.states.input, bindings);
  } catch (err) {
    throw new StatesError(
      'States.QueryEvaluationError',
      `The JSONata expression '${expression}' specified for the field '${field}' threw an error during evaluation. ${jsonataMessage(err)}`,
    );
  }
  if (value === undefined) {
    throw new StatesError(
      'States.QueryEvaluationError',
      `The JSONata expression '${expression}' specified for the field '${field}' returned nothing (undefined).`,
    );
  }
  return normalise(value);
}

/** JSONata returns sequences (arrays with extra flags) and functions; make plain JSON. */
function normalise(value: unknown): Json {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'function') return null;
    if (typeof value === 'number' && !Number.isFinite(value)) return null;
    return value as Json;
  }
  if (Array.isArray(value)) return value.map(normalise);
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined) out[k] = normalise(v);
  }
  return out;
}

/**
 * Evaluates a JSONata template: every `{% %}` string, at any depth, is replaced by its
 * value; everything else is copied. `field` names the field for error messages
 * ("Arguments", "Output", …); nested keys are appended with `/`.
 */
export async function evaluateJsonataTemplate(
  template: Json,
  scope: JsonataScope,
  field: string,
): Promise<Json> {
  if (typeof template === 'string') {
    return isJsonataString(template)
      ? evaluateJsonata(jsonataBody(template), scope, field)
      : template;
  }
  if (template === null || typeof template !== 'object') return template;
  if (Array.isArray(template)) {
    const out: Json[] = [];
    for (let i = 0; i < template.length; i++) {
      out.push(await evaluateJsonataTemplate(template[i], scope, `${field}[${i}]`));
    }
    return out;
  }
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(template)) {
    out[key] = await evaluateJsonataTemplate(value, scope, `${field}/${key}`);
  }
  return out;
}

/** True when a template holds any `{% %}` expression (so constant templates skip evaluation). */
export function hasJsonata(template: Json | undefined): boolean {
  if (typeof template === 'string') return isJsonataString(template);
  if (template === null || typeof template !== 'object') return false;
  if (Array.isArray(template)) return template.some(hasJsonata);
  return Object.values(template).some(hasJsonata);
}
