/**
 * Choice rules in JSONPath mode: a Variable compared by one operator, or And/Or/Not.
 * A comparison between values of different types is false, as in Step Functions.
 */
import { PathNotFoundError } from './errors.js';
import { readPath, type EvalScope } from './path.js';
import type { ChoiceRule, Json } from './types.js';

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function timestamp(v: Json): number | undefined {
  if (typeof v !== 'string' || !TIMESTAMP.test(v)) return undefined;
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? undefined : ms;
}

type Compare = (value: Json, operand: Json) => boolean;

const numeric =
  (op: (a: number, b: number) => boolean): Compare =>
  (a, b) =>
    typeof a === 'number' && typeof b === 'number' && op(a, b);
const string =
  (op: (a: string, b: string) => boolean): Compare =>
  (a, b) =>
    typeof a === 'string' && typeof b === 'string' && op(a, b);
const time =
  (op: (a: number, b: number) => boolean): Compare =>
  (a, b) => {
    const x = timestamp(a);
    const y = timestamp(b);
    return x !== undefined && y !== undefined && op(x, y);
  };

const eq = (a: number | string, b: number | string) => a === b;
const gt = (a: number | string, b: number | string) => a > b;
const ge = (a: number | string, b: number | string) => a >= b;
const lt = (a: number | string, b: number | string) => a < b;
const le = (a: number | string, b: number | string) => a <= b;

const matchCache = new Map<string, RegExp>();

function stringMatches(value: Json, pattern: Json): boolean {
  if (typeof value !== 'string' || typeof pattern !== 'string') return false;
  let re = matchCache.get(pattern);
  if (!re) {
    let source = '';
    for (let i = 0; i < pattern.length; i++) {
      const c = pattern[i];
      if (c === '\\' && i + 1 < pattern.length) {
        source += pattern[++i].replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      } else if (c === '*') {
        source += '[\\s\\S]*';
      } else {
        source += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      }
    }
    re = new RegExp(`^${source}$`);
    matchCache.set(pattern, re);
  }
  return re.test(value);
}

/** Comparisons that take an operand (literal, or read from a path in the …Path form). */
const COMPARISONS: Record<string, Compare> = {
  BooleanEquals: (a, b) => typeof a === 'boolean' && a === b,
  NumericEquals: numeric(eq),
  NumericGreaterThan: numeric(gt),
  NumericGreaterThanEquals: numeric(ge),
  NumericLessThan: numeric(lt),
  NumericLessThanEquals: numeric(le),
  StringEquals: string(eq),
  StringGreaterThan: string(gt),
  StringGreaterThanEquals: string(ge),
  StringLessThan: string(lt),
  StringLessThanEquals: string(le),
  TimestampEquals: time(eq),
  TimestampGreaterThan: time(gt),
  TimestampGreaterThanEquals: time(ge),
  TimestampLessThan: time(lt),
  TimestampLessThanEquals: time(le),
};

/** Type tests: `"IsNumeric": true` holds when the value is a number. */
const TYPE_TESTS: Record<string, (v: Json) => boolean> = {
  IsBoolean: (v) => typeof v === 'boolean',
  IsNull: (v) => v === null,
  IsNumeric: (v) => typeof v === 'number',
  IsString: (v) => typeof v === 'string',
  IsTimestamp: (v) => timestamp(v) !== undefined,
};

/** Names of all comparison operators, for the validator. */
export const COMPARISON_OPERATORS: readonly string[] = [
  ...Object.keys(COMPARISONS),
  ...Object.keys(COMPARISONS)
    .filter((k) => k !== 'StringMatches')
    .map((k) => `${k}Path`),
  'StringMatches',
  'IsPresent',
  ...Object.keys(TYPE_TESTS),
];

const RULE_KEYS = new Set(['Variable', 'Next', 'Comment', 'Assign', 'Output']);

function operatorOf(rule: ChoiceRule): string | undefined {
  for (const key of Object.keys(rule)) {
    if (!RULE_KEYS.has(key)) return key;
  }
  return undefined;
}

function readVariable(rule: ChoiceRule, scope: EvalScope): Json | undefined {
  try {
    return readPath(rule.Variable!, scope);
  } catch (err) {
    if (err instanceof PathNotFoundError) return undefined;
    throw err;
  }
}

/** Evaluates one JSONPath-mode Choice rule against the scope. */
export function evaluateChoiceRule(rule: ChoiceRule, scope: EvalScope): boolean {
  if (rule.And) return rule.And.every((r) => evaluateChoiceRule(r, scope));
  if (rule.Or) return rule.Or.some((r) => evaluateChoiceRule(r, scope));
  if (rule.Not) return !evaluateChoiceRule(rule.Not, scope);
  const op = operatorOf(rule);
  if (op === undefined) throw new Error('a Choice rule has no comparison operator');
  const operand = rule[op] as Json;
  if (op === 'IsPresent') {
    return (readVariable(rule, scope) !== undefined) === operand;
  }
  const value = readVariable(rule, scope);
  if (value === undefined) throw new PathNotFoundError(rule.Variable!);
  const typeTest = TYPE_TESTS[op];
  if (typeTest) return typeTest(value) === operand;
  if (op === 'StringMatches') return stringMatches(value, operand);
  if (op.endsWith('Path')) {
    const compare = COMPARISONS[op.slice(0, -4)];
    return compare(value, readPath(operand as string, scope));
  }
  const compare = COMPARISONS[op];
  if (!compare) throw new Error(`unknown Choice operator ${op}`);
  return compare(value, operand);
}
