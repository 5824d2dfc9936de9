/**
 * The ASL conformance runner: runs the corpus cases (execution cases recorded against AWS,
 * validation cases with a valid/invalid verdict) and compares outcomes.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { StatesError } from '../../src/asl/errors.js';
import { jsonEqual } from '../../src/asl/intrinsics.js';
import { runInMemory, type ExecutionResult } from '../../src/asl/run-in-memory.js';
import type { Json, StateMachineDefinition } from '../../src/asl/types.js';
import { validate, validateText } from '../../src/asl/validate.js';

export interface ConformanceCase {
  name: string;
  source?: string;
  definition: StateMachineDefinition;
  definitionText?: string;
  input?: Json;
  tasks?: Record<string, ({ returns: Json } | { throws: { error: string; cause?: Json } })[]>;
  expect: {
    status?: 'SUCCEEDED' | 'FAILED';
    output?: Json;
    error?: string;
    cause?: Json;
    valid?: boolean;
  };
}

export interface CaseResult {
  name: string;
  category: string;
  passed: boolean;
  /** Why it failed: expected vs actual, one line. */
  diff?: string;
}

export interface Exception {
  name: string;
  reason: string;
}

export interface ConformanceSummary {
  total: number;
  passed: number;
  failed: string[];
  results: CaseResult[];
}

/** Every *.json case file under a directory, sorted. */
export function loadCases(dir: string): ConformanceCase[] {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d).sort()) {
      const p = join(d, entry);
      if (statSync(p).isDirectory()) walk(p);
      else if (entry.endsWith('.json')) files.push(p);
    }
  };
  walk(dir);
  return files.map((f) => {
    const c = JSON.parse(readFileSync(f, 'utf8')) as ConformanceCase;
    c.name ??= relative(dir, f);
    return c;
  });
}

function short(value: unknown, max = 300): string {
  const text = JSON.stringify(value) ?? 'undefined';
  return text.length > max ? text.slice(0, max) + '…' : text;
}

function causeMatches(expected: Json, actual: string | undefined): boolean {
  if (typeof expected === 'string') return expected === actual;
  if (actual === undefined) return false;
  try {
    return jsonEqual(expected, JSON.parse(actual) as Json);
  } catch {
    return false;
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs one case and compares its outcome with the recorded one. */
export async function runCase(c: ConformanceCase, timeoutMs = 5000): Promise<CaseResult> {
  const category = c.name.split('/')[0];
  if (c.expect.valid !== undefined) {
    const problems = c.definitionText
      ? validateText(c.definitionText).problems
      : validate(c.definition);
    const valid = problems.length === 0;
    return valid === c.expect.valid
      ? { name: c.name, category, passed: true }
      : {
          name: c.name,
          category,
          passed: false,
          diff: `expected ${c.expect.valid ? 'valid' : 'invalid'}, got ${valid ? 'valid' : `invalid: ${problems[0].pointer}: ${problems[0].message}`}`,
        };
  }
  const counts: Record<string, number> = {};
  let result: ExecutionResult;
  try {
    result = await withTimeout(
      runInMemory(c.definition, c.input ?? {}, {
        tasks: (request) => {
          const list = c.tasks?.[request.stateName];
          if (!list || list.length === 0) {
            throw new StatesError(
              'States.TaskFailed',
              `the case has no task result for state "${request.stateName}"`,
              false,
            );
          }
          const n = (counts[request.stateName] = (counts[request.stateName] ?? 0) + 1);
          const entry = list[Math.min(n, list.length) - 1];
          if ('throws' in entry) {
            const cause = entry.throws.cause;
            throw new StatesError(
              entry.throws.error,
              cause === undefined || typeof cause === 'string' ? cause : JSON.stringify(cause),
              false,
            );
          }
          return entry.returns;
        },
      }),
      timeoutMs,
      c.name,
    );
  } catch (err) {
    return { name: c.name, category, passed: false, diff: `crashed: ${(err as Error).message}` };
  }
  const e = c.expect;
  const problems: string[] = [];
  if (result.status !== e.status) problems.push(`status ${e.status} ≠ ${result.status}`);
  if ('output' in e && !jsonEqual(e.output as Json, result.output ?? null)) {
    problems.push(`output ${short(e.output)} ≠ ${short(result.output)}`);
  }
  if ('error' in e && e.error !== result.error)
    problems.push(`error ${short(e.error)} ≠ ${short(result.error)}`);
  if ('cause' in e && !causeMatches(e.cause as Json, result.cause)) {
    problems.push(`cause ${short(e.cause)} ≠ ${short(result.cause)}`);
  }
  if (problems.length > 0 && result.status === 'FAILED' && !('error' in e)) {
    problems.push(`(failed with ${result.error}: ${short(result.cause, 200)})`);
  }
  return problems.length === 0
    ? { name: c.name, category, passed: true }
    : { name: c.name, category, passed: false, diff: problems.join('; ') };
}

/**
 * Runs every case. Cases named in `exceptions` still run but always count as failed in the
 * summary, as the corpus README asks.
 */
export async function runConformance(
  cases: ConformanceCase[],
  exceptions: Exception[] = [],
  concurrency = 16,
): Promise<ConformanceSummary> {
  const results: CaseResult[] = new Array(cases.length);
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const i = next++;
      results[i] = await runCase(cases[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, cases.length) }, worker));
  const excepted = new Set(exceptions.map((x) => x.name));
  const failed = results.filter((r) => !r.passed || excepted.has(r.name)).map((r) => r.name);
  return { total: results.length, passed: results.length - failed.length, failed, results };
}

/** Reads conformance/exceptions.json. */
export function loadExceptions(path: string): Exception[] {
  return JSON.parse(readFileSync(path, 'utf8')) as Exception[];
}
