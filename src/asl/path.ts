/**
 * JSONPath as the States language uses it: Paths (`$.a.b`, `$$.Execution.Input`,
 * `$var.field`), Reference Paths for ResultPath, and InputPath/OutputPath selection.
 * Simple paths are walked directly; filters, wildcards, slices and recursive descent go
 * through jsonpath-plus.
 */
import { JSONPath } from 'jsonpath-plus';
import { PathNotFoundError, StatesError } from './errors.js';
import type { Json, JsonObject } from './types.js';

/** What a JSONPath-mode expression can see. */
export interface EvalScope {
  /** What `$` refers to. */
  input: Json;
  /** What `$$` refers to: the Context object. */
  context: Json;
  /** `$name` variables; undefined when not declared. */
  variable: (name: string) => Json | undefined;
  /** Randomness in [0, 1) for States.MathRandom and States.UUID. */
  random: () => number;
}

type Segment = string | number;

/** A parsed path: which root it reads and, when simple, its segments. */
interface ParsedPath {
  root: 'input' | 'context' | 'variable';
  variable?: string;
  /** The path relative to its root, as a JSONPath starting with `$`. */
  rest: string;
  /** Segments when the path is definite and simple; undefined means use jsonpath-plus. */
  segments?: Segment[];
  /** True when the path can select several values (wildcard, filter, slice, union, `..`). */
  indefinite: boolean;
}

const cache = new Map<string, ParsedPath | null>();
const VARIABLE = /^\$([A-Za-z_][A-Za-z0-9_]*)/;

/** Splits `.a.b[0]['x y']` into segments; undefined when it is not that simple. */
function simpleSegments(rest: string): Segment[] | undefined {
  const segments: Segment[] = [];
  let i = 0;
  while (i < rest.length) {
    const ch = rest[i];
    if (ch === '.') {
      let j = i + 1;
      while (j < rest.length && rest[j] !== '.' && rest[j] !== '[') j++;
      const name = rest.slice(i + 1, j);
      if (name === '' || name === '*' || /[()?@,:'"\s]/.test(name)) return undefined;
      segments.push(name);
      i = j;
    } else if (ch === '[') {
      const close = rest.indexOf(']', i);
      if (close < 0) return undefined;
      const inner = rest.slice(i + 1, close).trim();
      if (/^\d+$/.test(inner)) {
        segments.push(Number(inner));
      } else {
        const quoted = /^'([^'\\]*)'$|^"([^"\\]*)"$/.exec(inner);
        if (!quoted) return undefined;
        segments.push(quoted[1] ?? quoted[2]);
      }
      i = close + 1;
    } else {
      return undefined;
    }
  }
  return segments;
}

function parsePath(path: string): ParsedPath | null {
  let parsed = cache.get(path);
  if (parsed !== undefined) return parsed;
  parsed = null;
  if (path.startsWith('$$')) {
    parsed = { root: 'context', rest: path.slice(1), indefinite: false };
  } else if (path.startsWith('$')) {
    const m = VARIABLE.exec(path);
    parsed = m
      ? { root: 'variable', variable: m[1], rest: '$' + path.slice(m[0].length), indefinite: false }
      : { root: 'input', rest: path, indefinite: false };
  }
  if (parsed) {
    const tail = parsed.rest.slice(1);
    parsed.segments = simpleSegments(tail);
    if (!parsed.segments) {
      parsed.indefinite = /\*|\.\.|\?\(|:|,/.test(tail.replace(/'[^']*'|"[^"]*"/g, ''));
    }
  }
  cache.set(path, parsed);
  return parsed;
}

function walk(value: Json, segments: Segment[]): Json | undefined {
  let current: Json | undefined = value;
  for (const seg of segments) {
    if (current === null || typeof current !== 'object') return undefined;
    if (Array.isArray(current)) {
      if (typeof seg !== 'number' || seg >= current.length) return undefined;
      current = current[seg];
    } else {
      if (!Object.prototype.hasOwnProperty.call(current, seg)) return undefined;
      current = (current as JsonObject)[String(seg)];
    }
  }
  return current;
}

/**
 * Reads a Path. A definite path returns the value it selects; an indefinite path (wildcard,
 * filter, slice, union, recursive descent) returns the array of matches. Throws
 * PathNotFoundError when a definite path selects nothing.
 */
export function readPath(path: string, scope: EvalScope): Json {
  const parsed = parsePath(path);
  if (!parsed) throw new PathNotFoundError(path);
  let base: Json | undefined;
  if (parsed.root === 'input') base = scope.input;
  else if (parsed.root === 'context') base = scope.context;
  else {
    base = scope.variable(parsed.variable!);
    if (base === undefined) {
      throw new StatesError('States.Runtime', `Variable '${parsed.variable}' is not defined.`);
    }
  }
  if (parsed.segments) {
    const value = walk(base, parsed.segments);
    if (value === undefined) throw new PathNotFoundError(path);
    return value;
  }
  let matches: Json[];
  try {
    matches = JSONPath({
      path: parsed.rest,
      json: base as object,
      wrap: true,
      eval: 'safe',
    }) as Json[];
  } catch {
    throw new PathNotFoundError(path);
  }
  if (parsed.indefinite) return matches ?? [];
  if (!matches || matches.length === 0) throw new PathNotFoundError(path);
  return matches[0];
}

/** InputPath/OutputPath: undefined or "$" → the value; null → {}; otherwise readPath. */
export function selectPath(path: string | null | undefined, scope: EvalScope): Json {
  if (path === undefined || path === '$') return scope.input;
  if (path === null) return {};
  return readPath(path, scope);
}

/** Segments of a Reference Path (`$`, `.name`, `['name']`, `[0]`), or undefined if not one. */
function referenceSegments(path: string): Segment[] | undefined {
  if (!path.startsWith('$') || path.startsWith('$$')) return undefined;
  return simpleSegments(path.slice(1));
}

/**
 * Applies a ResultPath: undefined or "$" → the result replaces the input; null → the input
 * unchanged; "$.a.b" → a copy of the input with the result at a.b (objects created as
 * needed). Never mutates `input`.
 */
export function applyResultPath(
  input: Json,
  resultPath: string | null | undefined,
  result: Json,
): Json {
  if (resultPath === undefined || resultPath === '$') return result;
  if (resultPath === null) return input;
  const segments = referenceSegments(resultPath);
  if (!segments) {
    throw new StatesError(
      'States.ResultPathMatchFailure',
      `Invalid ResultPath '${resultPath}': a ResultPath must be a reference path ($.a.b, $['a'], $.a[0])`,
    );
  }
  const fail = (): never => {
    throw new StatesError(
      'States.ResultPathMatchFailure',
      `Unable to apply ResultPath "${resultPath}" to input ${JSON.stringify(input)}`,
    );
  };
  const set = (target: Json | undefined, i: number): Json => {
    if (i === segments.length) return result;
    const seg = segments[i];
    if (typeof seg === 'number') {
      if (!Array.isArray(target) || seg >= target.length) return fail();
      const copy = target.slice();
      copy[seg] = set(target[seg], i + 1);
      return copy;
    }
    if (target === undefined) target = {};
    if (target === null || typeof target !== 'object' || Array.isArray(target)) return fail();
    const copy: JsonObject = { ...target };
    copy[seg] = set(
      Object.prototype.hasOwnProperty.call(target, seg) ? target[seg] : undefined,
      i + 1,
    );
    return copy;
  };
  return set(input, 0);
}

/** True when the string is a syntactically valid Path (`$…`, `$$…` or `$variable…`). */
export function isValidPath(path: string): boolean {
  const parsed = parsePath(path);
  if (!parsed) return false;
  if (parsed.segments) return true;
  try {
    JSONPath.toPathArray(parsed.rest);
    return /^\$(\.|\[|$)/.test(parsed.rest) && !/\.\s*$|\[\s*$/.test(parsed.rest);
  } catch {
    return false;
  }
}

/** True when the string is a valid Reference Path (what ResultPath accepts). */
export function isValidReferencePath(path: string): boolean {
  return referenceSegments(path) !== undefined;
}
