/**
 * Intrinsic functions (`States.Format('{}', $.a)` …): a parser producing a small AST and an
 * evaluator. Parsed expressions are cached: the same template runs many times.
 */
import { md5, sha1 } from '@noble/hashes/legacy.js';
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { PathNotFoundError, StatesError } from './errors.js';
import { readPath, type EvalScope } from './path.js';
import type { Json, JsonObject } from './types.js';

export type IntrinsicArgument =
  | { kind: 'literal'; value: Json; raw?: string }
  | { kind: 'path'; path: string }
  | { kind: 'call'; call: IntrinsicExpression };

export interface IntrinsicExpression {
  name: string;
  args: IntrinsicArgument[];
  /** The source text, for error messages. */
  text: string;
}

/** A malformed intrinsic call, with the offset where parsing stopped. */
export class IntrinsicSyntaxError extends Error {
  readonly code = 'ASL_INTRINSIC_SYNTAX';
  constructor(
    message: string,
    readonly text: string,
    readonly position: number,
  ) {
    super(`${message} at offset ${position} in ${text}`);
    this.name = 'IntrinsicSyntaxError';
  }
}

/** [min, max] argument counts of each function. */
const ARITY: Record<string, [number, number]> = {
  'States.Format': [1, Infinity],
  'States.StringToJson': [1, 1],
  'States.JsonToString': [1, 1],
  'States.Array': [0, Infinity],
  'States.ArrayPartition': [2, 2],
  'States.ArrayContains': [2, 2],
  'States.ArrayRange': [3, 3],
  'States.ArrayGetItem': [2, 2],
  'States.ArrayLength': [1, 1],
  'States.ArrayUnique': [1, 1],
  'States.Base64Encode': [1, 1],
  'States.Base64Decode': [1, 1],
  'States.Hash': [2, 2],
  'States.JsonMerge': [3, 3],
  'States.MathRandom': [2, 3],
  'States.MathAdd': [2, 2],
  'States.StringSplit': [2, 2],
  'States.UUID': [0, 0],
};

/** Names of every intrinsic function. */
export const INTRINSIC_FUNCTIONS: readonly string[] = Object.keys(ARITY);

const CALL_START = /^States\.[A-Za-z0-9]+\s*\(/;

/** True when the text looks like an intrinsic call (`States.Name(`…). */
export function isIntrinsicCall(text: string): boolean {
  return CALL_START.test(text);
}

const cache = new Map<string, IntrinsicExpression>();

/** Parses an intrinsic call; throws IntrinsicSyntaxError on bad syntax, unknown names, wrong arity. */
export function parseIntrinsic(text: string): IntrinsicExpression {
  const hit = cache.get(text);
  if (hit) return hit;
  let pos = 0;
  const err = (message: string): never => {
    throw new IntrinsicSyntaxError(message, text, pos);
  };
  const ws = () => {
    while (pos < text.length && /\s/.test(text[pos])) pos++;
  };
  const parseCall = (): IntrinsicExpression => {
    const start = pos;
    const m = /^States\.[A-Za-z0-9]+/.exec(text.slice(pos));
    if (!m) return err('expected a function name like States.Format');
    const name = m[0];
    pos += name.length;
    if (!(name in ARITY)) {
      return err(`unknown intrinsic function ${name}`);
    }
    ws();
    if (text[pos] !== '(') return err(`expected "(" after ${name}`);
    pos++;
    const args: IntrinsicArgument[] = [];
    ws();
    if (text[pos] === ')') {
      pos++;
    } else {
      for (;;) {
        ws();
        args.push(parseArg());
        ws();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        if (text[pos] === ')') {
          pos++;
          break;
        }
        return err(pos >= text.length ? 'missing ")"' : `unexpected "${text[pos]}"`);
      }
    }
    const [min, max] = ARITY[name];
    if (args.length < min || args.length > max) {
      const expected =
        min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
      pos = start;
      return err(
        `${name} takes ${expected} argument${min === 1 && max === 1 ? '' : 's'}, got ${args.length}`,
      );
    }
    return { name, args, text: text.slice(start, pos) };
  };
  const parseArg = (): IntrinsicArgument => {
    const ch = text[pos];
    if (ch === "'") {
      pos++;
      const start = pos;
      let value = '';
      for (;;) {
        if (pos >= text.length) return err('unterminated string literal');
        const c = text[pos];
        if (c === '\\') {
          const next = text[pos + 1];
          if (next === undefined) return err('unterminated escape');
          value += next === 'n' ? '\n' : next === 't' ? '\t' : next;
          pos += 2;
          continue;
        }
        if (c === "'") {
          pos++;
          break;
        }
        value += c;
        pos++;
      }
      // The raw text keeps escapes, so States.Format can tell \{ (a brace) from { (a placeholder).
      return { kind: 'literal', value, raw: text.slice(start, pos - 1) };
    }
    if (ch === '$') {
      const start = pos;
      let depth = 0;
      let quote: string | undefined;
      while (pos < text.length) {
        const c = text[pos];
        if (quote) {
          if (c === quote) quote = undefined;
        } else if (c === "'" || c === '"') quote = c;
        else if (c === '[' || c === '(') depth++;
        else if (c === ']' || c === ')') {
          if (depth === 0) break;
          depth--;
        } else if (c === ',' && depth === 0) break;
        pos++;
      }
      const path = text.slice(start, pos).trim();
      if (path.length === 0) return err('empty path');
      return { kind: 'path', path };
    }
    if (text.startsWith('States.', pos)) return { kind: 'call', call: parseCall() };
    const lit = /^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(text.slice(pos));
    if (lit) {
      pos += lit[0].length;
      return { kind: 'literal', value: JSON.parse(lit[0]) as Json };
    }
    return err(pos >= text.length ? 'missing argument' : `unexpected "${ch}"`);
  };
  ws();
  const expr = parseCall();
  ws();
  if (pos < text.length) err(`unexpected text after the call: "${text.slice(pos)}"`);
  cache.set(text, expr);
  return expr;
}

function fail(expr: IntrinsicExpression, detail: string): never {
  throw new StatesError('States.IntrinsicFailure', `Invalid arguments in ${expr.name}: ${detail}`);
}

function typeName(v: Json): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function needArray(expr: IntrinsicExpression, v: Json, what: string): Json[] {
  if (!Array.isArray(v)) fail(expr, `${what} must be an array, got ${typeName(v)}`);
  return v;
}

function needString(expr: IntrinsicExpression, v: Json, what: string): string {
  if (typeof v !== 'string') fail(expr, `${what} must be a string, got ${typeName(v)}`);
  return v;
}

function needInteger(
  expr: IntrinsicExpression,
  v: Json,
  what: string,
  toInteger: (n: number) => number = Math.trunc,
): number {
  if (typeof v !== 'number' || !Number.isFinite(v))
    fail(expr, `${what} must be a number, got ${typeName(v)}`);
  return toInteger(v);
}

/** Structural equality of JSON values (numbers by value, key order ignored). */
export function jsonEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as Json[];
    return a.length === bb.length && a.every((v, i) => jsonEqual(v, bb[i]));
  }
  const ka = Object.keys(a);
  const bo = b as JsonObject;
  if (ka.length !== Object.keys(bo).length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(bo, k) && jsonEqual(a[k], bo[k]));
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function base64Encode(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
    out += i + 1 < bytes.length ? B64[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.length ? B64[n & 63] : '=';
  }
  return out;
}

function base64Decode(text: string): string | undefined {
  const clean = text.replace(/=+$/, '');
  if (!/^[A-Za-z0-9+/]*$/.test(clean) || clean.length % 4 === 1) return undefined;
  const bytes: number[] = [];
  let buffer = 0;
  let bits = 0;
  for (const ch of clean) {
    buffer = (buffer << 6) | B64.indexOf(ch);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((buffer >> bits) & 0xff);
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

const HASHES: Record<string, (data: Uint8Array) => Uint8Array> = {
  MD5: md5,
  'SHA-1': sha1,
  'SHA-256': sha256,
  'SHA-384': sha384,
  'SHA-512': sha512,
};

/** Hex digest of a string with one of the algorithms States.Hash accepts; throws on others. */
export function hashText(data: string, algorithm: string): string {
  const fn = HASHES[algorithm];
  if (!fn) {
    throw new Error(
      `unknown hash algorithm "${algorithm}"; use one of ${Object.keys(HASHES).join(', ')}`,
    );
  }
  return bytesToHex(fn(new TextEncoder().encode(data)));
}

/** A seeded PRNG (mulberry32) returning numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = Math.trunc(seed) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A version 4 UUID built from the given randomness. */
export function uuidFrom(random: () => number): string {
  const hex: string[] = [];
  for (let i = 0; i < 16; i++) {
    let byte = Math.floor(random() * 256) & 0xff;
    if (i === 6) byte = (byte & 0x0f) | 0x40;
    if (i === 8) byte = (byte & 0x3f) | 0x80;
    hex.push(byte.toString(16).padStart(2, '0'));
  }
  const h = hex.join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** How States.Format prints a value: strings raw, objects and arrays as Java's toString. */
function formatArgument(v: Json): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return `[${v.map(formatArgument).join(', ')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.entries(v)
      .map(([k, x]) => `${k}=${formatArgument(x)}`)
      .join(', ')}}`;
  }
  return JSON.stringify(v);
}

function evalArg(arg: IntrinsicArgument, scope: EvalScope, expr: IntrinsicExpression): Json {
  if (arg.kind === 'literal') return arg.value;
  if (arg.kind === 'call') return evaluateIntrinsic(arg.call, scope);
  try {
    return readPath(arg.path, scope);
  } catch (err) {
    if (err instanceof PathNotFoundError) {
      throw new StatesError(
        'States.Runtime',
        `The JsonPath argument for the field '${arg.path}' could not be found in the input in ${expr.name}`,
      );
    }
    throw err;
  }
}

/** Evaluates a parsed intrinsic call. */
export function evaluateIntrinsic(expr: IntrinsicExpression, scope: EvalScope): Json {
  const a = expr.args.map((arg) => evalArg(arg, scope, expr));
  switch (expr.name) {
    case 'States.Format': {
      const first = expr.args[0];
      const raw = first.kind === 'literal' && first.raw !== undefined;
      const template = raw ? first.raw! : needString(expr, a[0], 'the format string');
      let next = 1;
      let out = '';
      for (let i = 0; i < template.length; i++) {
        const c = template[i];
        if (raw && c === '\\' && i + 1 < template.length) {
          const escaped = template[++i];
          out += escaped === 'n' ? '\n' : escaped === 't' ? '\t' : escaped;
        } else if (c === '{' && template[i + 1] === '}') {
          if (next >= a.length) fail(expr, 'more {} placeholders than arguments');
          out += formatArgument(a[next++]);
          i++;
        } else {
          out += c;
        }
      }
      if (next !== a.length) fail(expr, 'more arguments than {} placeholders');
      return out;
    }
    case 'States.StringToJson': {
      const text = needString(expr, a[0], 'the argument');
      if (text.trim() === '') return null;
      try {
        return JSON.parse(text) as Json;
      } catch {
        return fail(expr, `${JSON.stringify(text)} is not valid JSON`);
      }
    }
    case 'States.JsonToString':
      return JSON.stringify(a[0]);
    case 'States.Array':
      return a;
    case 'States.ArrayPartition': {
      const arr = needArray(expr, a[0], 'the first argument');
      const size = needInteger(expr, a[1], 'the chunk size');
      if (size <= 0) fail(expr, `the chunk size must be positive, got ${size}`);
      const out: Json[] = [];
      for (let i = 0; i < arr.length; i += size) out.push(arr.slice(i, i + size));
      return out;
    }
    case 'States.ArrayContains':
      return needArray(expr, a[0], 'the first argument').some((v) => jsonEqual(v, a[1]));
    case 'States.ArrayRange': {
      const start = needInteger(expr, a[0], 'start');
      const end = needInteger(expr, a[1], 'end');
      const step = needInteger(expr, a[2], 'step');
      if (step === 0) fail(expr, 'step must not be 0');
      const out: number[] = [];
      for (let v = start; step > 0 ? v <= end : v >= end; v += step) {
        out.push(v);
        if (out.length > 1000) fail(expr, 'the range has more than 1000 items');
      }
      return out;
    }
    case 'States.ArrayGetItem': {
      const arr = needArray(expr, a[0], 'the first argument');
      const index = needInteger(expr, a[1], 'the index');
      if (index < 0 || index >= arr.length)
        fail(expr, `index ${index} is out of bounds (length ${arr.length})`);
      return arr[index];
    }
    case 'States.ArrayLength':
      return needArray(expr, a[0], 'the argument').length;
    case 'States.ArrayUnique': {
      const out: Json[] = [];
      for (const v of needArray(expr, a[0], 'the argument')) {
        if (!out.some((u) => jsonEqual(u, v))) out.push(v);
      }
      return out;
    }
    case 'States.Base64Encode': {
      const text = needString(expr, a[0], 'the argument');
      if (text.length > 10000) fail(expr, 'the input is longer than 10000 characters');
      return base64Encode(text);
    }
    case 'States.Base64Decode': {
      const text = needString(expr, a[0], 'the argument');
      if (text.length > 10000) fail(expr, 'the input is longer than 10000 characters');
      const decoded = base64Decode(text);
      if (decoded === undefined) fail(expr, `${JSON.stringify(text)} is not base64`);
      return decoded;
    }
    case 'States.Hash': {
      const data = typeof a[0] === 'string' ? a[0] : JSON.stringify(a[0]);
      const algorithm = needString(expr, a[1], 'the algorithm');
      if (!HASHES[algorithm]) {
        fail(
          expr,
          `unknown algorithm "${algorithm}"; use one of ${Object.keys(HASHES).join(', ')}`,
        );
      }
      return hashText(data, algorithm);
    }
    case 'States.JsonMerge': {
      const [x, y, deep] = a;
      if (x === null || typeof x !== 'object' || Array.isArray(x))
        fail(expr, 'the first argument must be an object');
      if (y === null || typeof y !== 'object' || Array.isArray(y))
        fail(expr, 'the second argument must be an object');
      if (deep !== false)
        fail(expr, 'only shallow merges are supported: the third argument must be false');
      return { ...(x as JsonObject), ...(y as JsonObject) };
    }
    case 'States.MathRandom': {
      const start = needInteger(expr, a[0], 'start');
      const end = needInteger(expr, a[1], 'end');
      const random =
        a.length === 3 ? seededRandom(needInteger(expr, a[2], 'the seed')) : scope.random;
      return start + Math.floor(random() * (end - start));
    }
    case 'States.MathAdd': {
      // Step Functions rounds each operand half up (-1.5 → -1, 1.5 → 2) before adding.
      const x = needInteger(expr, a[0], 'the first argument', Math.round);
      const y = needInteger(expr, a[1], 'the second argument', Math.round);
      return x + y;
    }
    case 'States.StringSplit': {
      const text = needString(expr, a[0], 'the string');
      const delimiters = needString(expr, a[1], 'the delimiter');
      if (delimiters === '') return [text];
      const out: string[] = [];
      let current = '';
      for (const c of text) {
        if (delimiters.includes(c)) {
          if (current !== '') out.push(current);
          current = '';
        } else {
          current += c;
        }
      }
      if (current !== '') out.push(current);
      return out;
    }
    case 'States.UUID':
      return uuidFrom(scope.random);
  }
  return fail(expr, 'unknown function');
}
