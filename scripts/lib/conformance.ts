/**
 * The ASL conformance runner: runs the corpus cases (execution cases recorded against AWS,
 * validation cases with a valid/invalid verdict) and compares outcomes.
 *
 * Cases run in worker threads so that a case the interpreter loops on forever (a synchronous
 * loop never yields to the event loop, so no in-thread timer could stop it) fails with a
 * timeout instead of hanging the run: the worker is terminated and a fresh one takes the rest.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { StatesError } from '../../src/asl/errors.js';
import { jsonEqual } from '../../src/asl/intrinsics.js';
import { runInMemory, type ExecutionResult } from '../../src/asl/run-in-memory.js';
import type { Json, StateMachineDefinition } from '../../src/asl/types.js';
import { validate, validateText } from '../../src/asl/validate.js';

/** One recorded Task result: the integration's raw result, or the error it failed with. */
export type TaskOutcome = { returns: Json } | { throws: { error: string; cause?: Json } };

export interface ConformanceCase {
  name: string;
  source?: string;
  definition: StateMachineDefinition;
  definitionText?: string;
  input?: Json;
  /** By state name: the n-th invocation of that state gets the n-th entry (the last repeats). */
  tasks?: Record<string, TaskOutcome[]>;
  expect: {
    status?: 'SUCCEEDED' | 'FAILED';
    output?: Json;
    error?: string;
    /** A string matches exactly; an object or array matches the cause text parsed as JSON. */
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
  /** Cases that failed, and listed exceptions (which count as failed whatever their result). */
  failed: string[];
  results: CaseResult[];
}

export interface ConformanceOptions {
  /** Per-case limit in milliseconds (default 5000). */
  timeoutMs?: number;
  /**
   * Worker threads to run cases in (default: the CPU count, at most 4). 0 runs them in this
   * thread, concurrently: faster to start, but a synchronous infinite loop then hangs the run.
   */
  workers?: number;
}

/** Every *.json case file under a directory (recursively), in path order. */
export function loadCases(dir: string): ConformanceCase[] {
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d).sort()) {
      const p = join(d, entry);
      if (statSync(p).isDirectory()) walk(p);
      else if (entry.endsWith('.json')) files.push(p);
    }
  };
  walk(dir);
  return files.map((f) => {
    let c: ConformanceCase;
    try {
      c = JSON.parse(readFileSync(f, 'utf8')) as ConformanceCase;
    } catch (err) {
      throw new Error(`${f}: not a JSON case file (${(err as Error).message})`, { cause: err });
    }
    if (typeof c !== 'object' || c === null || typeof c.expect !== 'object' || !c.expect) {
      throw new Error(`${f}: a case needs an "expect" object`);
    }
    c.name ??= relative(dir, f).replace(/\.json$/, '');
    return c;
  });
}

/** Reads conformance/exceptions.json: `[{ "name": …, "reason": … }]`. */
export function loadExceptions(path: string): Exception[] {
  const list = JSON.parse(readFileSync(path, 'utf8')) as unknown;
  if (!Array.isArray(list)) throw new Error(`${path}: expected an array of {name, reason}`);
  for (const [i, x] of list.entries()) {
    const e = x as Partial<Exception> | null;
    if (typeof e?.name !== 'string' || typeof e.reason !== 'string' || e.reason.trim() === '') {
      throw new Error(`${path}: entry ${i} needs a "name" and a non-empty "reason"`);
    }
  }
  return list as Exception[];
}

function short(value: unknown, max = 300): string {
  const text = value === undefined ? 'undefined' : JSON.stringify(value);
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

/** The category of a case: its name up to the first slash. */
export function categoryOf(name: string): string {
  return name.split('/')[0];
}

/** Compares an execution's outcome with a case's `expect`; returns the differences, one each. */
export function compareOutcome(
  expected: ConformanceCase['expect'],
  actual: Pick<ExecutionResult, 'status' | 'output' | 'error' | 'cause'>,
): string[] {
  const problems: string[] = [];
  if (expected.status !== undefined && actual.status !== expected.status) {
    problems.push(`status ${expected.status} ≠ ${actual.status}`);
  }
  if ('output' in expected && !jsonEqual(expected.output as Json, actual.output ?? null)) {
    problems.push(`output ${short(expected.output)} ≠ ${short(actual.output)}`);
  }
  if ('error' in expected && expected.error !== actual.error) {
    problems.push(`error ${short(expected.error)} ≠ ${short(actual.error)}`);
  }
  if ('cause' in expected && !causeMatches(expected.cause as Json, actual.cause)) {
    problems.push(`cause ${short(expected.cause)} ≠ ${short(actual.cause)}`);
  }
  if (problems.length > 0 && actual.status === 'FAILED' && !('error' in expected)) {
    problems.push(`(failed with ${actual.error}: ${short(actual.cause, 200)})`);
  }
  return problems;
}

/** Runs one case in this thread and compares its outcome with the recorded one. */
export async function runCase(c: ConformanceCase, timeoutMs = 5000): Promise<CaseResult> {
  const category = categoryOf(c.name);
  if (c.expect.valid !== undefined) {
    let problems;
    try {
      problems =
        c.definitionText !== undefined
          ? validateText(c.definitionText).problems
          : validate(c.definition);
    } catch (err) {
      return { name: c.name, category, passed: false, diff: `validator crashed: ${errText(err)}` };
    }
    const valid = problems.length === 0;
    if (valid === c.expect.valid) return { name: c.name, category, passed: true };
    const got = valid ? 'valid' : `invalid: ${problems[0].pointer}: ${problems[0].message}`;
    return {
      name: c.name,
      category,
      passed: false,
      diff: `expected ${c.expect.valid ? 'valid' : 'invalid'}, got ${got}`,
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
    return { name: c.name, category, passed: false, diff: `crashed: ${errText(err)}` };
  }
  const problems = compareOutcome(c.expect, result);
  return problems.length === 0
    ? { name: c.name, category, passed: true }
    : { name: c.name, category, passed: false, diff: problems.join('; ') };
}

function errText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/**
 * Runs every case and summarises. Cases named in `exceptions` still run but always count as
 * failed in the summary.
 */
export async function runConformance(
  cases: ConformanceCase[],
  exceptions: Exception[] = [],
  options: ConformanceOptions = {},
): Promise<ConformanceSummary> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const workers = options.workers ?? Math.min(4, availableParallelism());
  const results =
    workers > 0 && cases.length > 0
      ? await runInWorkers(cases, timeoutMs, workers)
      : await runHere(cases, timeoutMs);
  const excepted = new Set(exceptions.map((x) => x.name));
  const failed = results.filter((r) => !r.passed || excepted.has(r.name)).map((r) => r.name);
  return { total: results.length, passed: results.length - failed.length, failed, results };
}

async function runHere(cases: ConformanceCase[], timeoutMs: number): Promise<CaseResult[]> {
  const results: CaseResult[] = new Array<CaseResult>(cases.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < cases.length) {
      const i = next++;
      results[i] = await runCase(cases[i], timeoutMs);
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, cases.length) }, worker));
  return results;
}

/** A message to a conformance worker: run this case. */
export interface WorkerRequest {
  index: number;
  case: ConformanceCase;
  timeoutMs: number;
}

/** A conformance worker's messages: ready once loaded, then one result per request. */
export type WorkerReply = { ready: true } | { index: number; result: CaseResult };

/** Grace beyond the in-worker timeout before the worker is presumed stuck in a loop. */
const STUCK_GRACE_MS = 1000;

/**
 * A worker that loads the TypeScript worker module through tsx's loader, whether this thread
 * runs under tsx (the npm script) or Vitest (which transforms only its own thread). On Node 20,
 * `--import` in a worker's execArgv does not apply to the worker's entry module, so the entry
 * is a small script that registers tsx first.
 */
function startWorker(): Worker {
  const tsxDir = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const api = pathToFileURL(join(tsxDir, 'dist/esm/api/index.mjs')).href;
  const entry = new URL('./conformance-worker.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true });
}

function runInWorkers(
  cases: ConformanceCase[],
  timeoutMs: number,
  count: number,
): Promise<CaseResult[]> {
  const results: CaseResult[] = new Array<CaseResult>(cases.length);
  let next = 0;
  let anyReady = false;
  let failure: Error | undefined;
  let settled = false;
  const live = new Set<Worker>();

  return new Promise<CaseResult[]>((resolve, reject) => {
    const finish = (): void => {
      if (settled) return;
      settled = true;
      for (const w of live) void w.terminate();
      live.clear();
      if (failure) reject(failure);
      else resolve(results);
    };
    const record = (index: number, result: CaseResult): void => {
      if (results[index] !== undefined) return;
      results[index] = result;
    };
    const spawn = (): void => {
      if (failure || next >= cases.length) {
        if (live.size === 0) finish();
        return;
      }
      const worker = startWorker();
      live.add(worker);
      let current: number | undefined;
      let timer: NodeJS.Timeout | undefined;
      const retire = (): void => {
        clearTimeout(timer);
        live.delete(worker);
        worker.removeAllListeners();
        void worker.terminate();
      };
      const feed = (): void => {
        if (failure || next >= cases.length) {
          retire();
          if (live.size === 0) finish();
          return;
        }
        const index = next++;
        current = index;
        worker.postMessage({ index, case: cases[index], timeoutMs } satisfies WorkerRequest);
        timer = setTimeout(() => {
          record(index, {
            name: cases[index].name,
            category: categoryOf(cases[index].name),
            passed: false,
            diff: `timed out: no result within ${timeoutMs + STUCK_GRACE_MS} ms (the interpreter never yielded; an infinite loop?)`,
          });
          retire();
          spawn();
        }, timeoutMs + STUCK_GRACE_MS);
      };
      worker.on('message', (reply: WorkerReply) => {
        if ('ready' in reply) {
          anyReady = true;
          feed();
          return;
        }
        clearTimeout(timer);
        record(reply.index, reply.result);
        current = undefined;
        feed();
      });
      worker.on('error', (err: Error) => {
        retire();
        if (!anyReady && current === undefined) {
          // No worker has ever loaded: a new one would fail the same way.
          failure = new Error(`conformance worker failed to start: ${errText(err)}`);
        } else if (current !== undefined) {
          record(current, {
            name: cases[current].name,
            category: categoryOf(cases[current].name),
            passed: false,
            diff: `crashed the worker: ${errText(err)}`,
          });
        }
        spawn();
      });
      worker.on('exit', (code) => {
        if (!live.has(worker)) return; // retired on purpose
        live.delete(worker);
        clearTimeout(timer);
        if (current !== undefined) {
          record(current, {
            name: cases[current].name,
            category: categoryOf(cases[current].name),
            passed: false,
            diff: `the worker exited with code ${code} while running this case`,
          });
        }
        spawn();
      });
    };
    for (let i = 0; i < Math.min(count, cases.length); i++) spawn();
  });
}
