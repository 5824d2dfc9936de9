import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  compareOutcome,
  loadCases,
  loadExceptions,
  runConformance,
  type ConformanceCase,
  type ConformanceSummary,
} from '../scripts/lib/conformance.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const corpus = process.env.STRAND_ASL_CORPUS ?? resolve(repo, '../shared/asl-corpus/open');
const exceptions = loadExceptions(join(repo, 'conformance/exceptions.json'));

describe('ASL conformance corpus', () => {
  it('the corpus is present (../shared/asl-corpus/open or STRAND_ASL_CORPUS)', () => {
    expect(existsSync(corpus), `missing conformance corpus at ${corpus}`).toBe(true);
  });

  const cases = existsSync(corpus) ? loadCases(corpus) : [];
  let summary: ConformanceSummary | undefined;
  const run = async () => (summary ??= await runConformance(cases, exceptions));

  it('has the expected size: 563 execution cases and 76 validation cases, names unique', () => {
    expect(cases.filter((c) => c.expect.valid === undefined)).toHaveLength(563);
    expect(cases.filter((c) => c.expect.valid !== undefined)).toHaveLength(76);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  it('every case passes, except those listed with a reason in conformance/exceptions.json', async () => {
    const s = await run();
    const listed = new Set(exceptions.map((e) => e.name));
    const unexpected = s.results.filter((r) => !r.passed && !listed.has(r.name));
    expect(unexpected.map((r) => `${r.name}: ${r.diff}`)).toEqual([]);
    expect(s.passed).toBe(s.total - listed.size);
  });

  it('every listed exception names a real case that still fails, with a reason', async () => {
    const s = await run();
    const byName = new Map(s.results.map((r) => [r.name, r]));
    for (const e of exceptions) {
      expect(e.reason.length, e.name).toBeGreaterThan(40);
      expect(byName.get(e.name), `${e.name} is not in the corpus`).toBeDefined();
      expect(byName.get(e.name)!.passed, `${e.name} passes now: remove it from the list`).toBe(
        false,
      );
    }
  });

  const categories = [...new Set(cases.map((c) => c.name.split('/')[0]))].sort();
  for (const category of categories) {
    it(`category ${category}`, async () => {
      const s = await run();
      const listed = new Set(exceptions.map((e) => e.name));
      const failures = s.results
        .filter((r) => r.category === category && !r.passed && !listed.has(r.name))
        .map((r) => `${r.name}: ${r.diff}`);
      expect(failures).toEqual([]);
    });
  }
});

const pass = (result: unknown): ConformanceCase['definition'] => ({
  StartAt: 'P',
  States: { P: { Type: 'Pass', Result: result as never, End: true } },
});

const forever: ConformanceCase = {
  name: 'loops/forever',
  definition: {
    StartAt: 'A',
    States: {
      A: { Type: 'Pass', Next: 'B' },
      B: {
        Type: 'Choice',
        Choices: [{ Variable: '$.x', IsPresent: true, Next: 'A' }],
        Default: 'A',
      },
    },
  },
  input: { x: 1 },
  expect: { status: 'SUCCEEDED' },
};

/** A Task retried once: the first invocation throws, the second returns. */
const retried: ConformanceCase = {
  name: 'tasks/retried',
  definition: {
    StartAt: 'Call',
    States: {
      Call: {
        Type: 'Task',
        Resource: 'arn:aws:states:::lambda:invoke',
        Retry: [{ ErrorEquals: ['Flaky'], IntervalSeconds: 60, MaxAttempts: 1 }],
        ResultSelector: { 'v.$': '$.Payload' },
        End: true,
      },
    },
  },
  input: {},
  tasks: { Call: [{ throws: { error: 'Flaky', cause: 'once' } }, { returns: { Payload: 7 } }] },
  expect: { status: 'SUCCEEDED', output: { v: 7 } },
};

describe('conformance runner', () => {
  it('compares outputs as JSON values: key order does not matter, numbers by value', () => {
    const expected: ConformanceCase['expect'] = {
      status: 'SUCCEEDED',
      output: { a: [1, 2.5], b: { c: null } },
    };
    expect(
      compareOutcome(expected, { status: 'SUCCEEDED', output: { b: { c: null }, a: [1.0, 2.5] } }),
    ).toEqual([]);
    expect(
      compareOutcome(expected, { status: 'SUCCEEDED', output: { a: [2.5, 1], b: { c: null } } }),
    ).toEqual(['output {"a":[1,2.5],"b":{"c":null}} ≠ {"a":[2.5,1],"b":{"c":null}}']);
    expect(compareOutcome(expected, { status: 'SUCCEEDED', output: { a: [1, 2.5] } })).toHaveLength(
      1,
    );
  });

  it('matches a string cause exactly and an object cause against the parsed cause text', () => {
    const failed = { status: 'FAILED' as const, error: 'E', cause: '{"x":[1,{"y":"z"}],"w":0}' };
    expect(compareOutcome({ status: 'FAILED', error: 'E', cause: failed.cause }, failed)).toEqual(
      [],
    );
    expect(
      compareOutcome({ status: 'FAILED', cause: { w: 0, x: [1, { y: 'z' }] } }, failed),
    ).toEqual([]);
    expect(compareOutcome({ status: 'FAILED', cause: { w: 1 } }, failed)[0]).toMatch(/^cause /);
    // A string cause is compared as text: the same JSON with other key order does not match.
    const reordered = '{"w":0,"x":[1,{"y":"z"}]}';
    expect(compareOutcome({ status: 'FAILED', error: 'E', cause: reordered }, failed)).toEqual([
      `cause ${JSON.stringify(reordered)} ≠ ${JSON.stringify(failed.cause)}`,
    ]);
    expect(
      compareOutcome({ status: 'FAILED', cause: { w: 0 } }, { status: 'FAILED', error: 'E' }),
    ).toEqual(['cause {"w":0} ≠ undefined', '(failed with E: undefined)']);
  });

  it('reports status and error differences, and what a failed run failed with', () => {
    const problems = compareOutcome(
      { status: 'SUCCEEDED', output: 1 },
      { status: 'FAILED', error: 'States.Runtime', cause: 'bad path' },
    );
    expect(problems[0]).toBe('status SUCCEEDED ≠ FAILED');
    expect(problems.at(-1)).toBe('(failed with States.Runtime: "bad path")');
    expect(
      compareOutcome({ status: 'FAILED', error: 'A' }, { status: 'FAILED', error: 'B' }),
    ).toEqual(['error "A" ≠ "B"']);
  });

  it('answers Task states by state name, the n-th invocation from the n-th entry', async () => {
    const s = await runConformance([retried], [], { workers: 0 });
    expect(s.results).toEqual([{ name: 'tasks/retried', category: 'tasks', passed: true }]);
    // With the entries the other way round the first call succeeds and there is no retry.
    const swapped = { ...retried, tasks: { Call: [...retried.tasks!.Call].reverse() } };
    const t = await runConformance([swapped], [], { workers: 0 });
    expect(t.results[0].passed).toBe(true);
    const wrong = { ...retried, expect: { status: 'SUCCEEDED' as const, output: { v: 8 } } };
    const u = await runConformance([wrong], [], { workers: 0 });
    expect(u.results[0]).toMatchObject({ passed: false, diff: 'output {"v":8} ≠ {"v":7}' });
  });

  it('validates definitionText when a validation case has it (duplicate keys are invalid)', async () => {
    const definition = pass(1);
    const text = '{"StartAt":"P","StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}';
    const s = await runConformance(
      [
        { name: 'validation/ok', definition, expect: { valid: true } },
        { name: 'validation/dup', definition, definitionText: text, expect: { valid: false } },
        { name: 'validation/wrong', definition, definitionText: text, expect: { valid: true } },
      ],
      [],
      { workers: 0 },
    );
    expect(s.results.map((r) => r.passed)).toEqual([true, true, false]);
    expect(s.results[2].diff).toMatch(/^expected valid, got invalid: /);
  });

  it('counts a listed exception as failed even when it passes', async () => {
    const c = {
      name: 'x/passes',
      definition: pass({ a: 1 }),
      input: {},
      expect: { output: { a: 1 } },
    };
    const s = await runConformance([c], [{ name: 'x/passes', reason: 'test' }], { workers: 0 });
    expect(s.results[0].passed).toBe(true);
    expect(s).toMatchObject({ total: 1, passed: 0, failed: ['x/passes'] });
  });

  it('stops a case that loops forever and still runs the others (worker threads)', async () => {
    const ok = { name: 'x/ok', definition: pass([1]), input: {}, expect: { output: [1] } };
    const cases = [forever, ok, retried, { ...ok, name: 'x/ok2' }];
    const started = Date.now();
    const s = await runConformance(cases, [], { timeoutMs: 200, workers: 2 });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(s.results.map((r) => [r.name, r.passed])).toEqual([
      ['loops/forever', false],
      ['x/ok', true],
      ['tasks/retried', true],
      ['x/ok2', true],
    ]);
    expect(s.results[0].diff).toMatch(/^timed out/);
    expect(s).toMatchObject({ total: 4, passed: 3, failed: ['loops/forever'] });
  });

  describe('the npm script', () => {
    const dir = mkdtempSync(join(tmpdir(), 'strand-conformance-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const write = (c: ConformanceCase) => {
      mkdirSync(join(dir, c.name.split('/')[0]), { recursive: true });
      writeFileSync(join(dir, `${c.name}.json`), JSON.stringify(c));
    };
    write({ name: 'alpha/one', definition: pass(1), input: {}, expect: { output: 1 } });
    write({ name: 'alpha/two', definition: pass(2), input: {}, expect: { output: 3 } });
    write({ name: 'beta/three', definition: pass(3), input: {}, expect: { output: 3 } });
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', 'scripts/conformance.ts', ...args], {
        cwd: repo,
        encoding: 'utf8',
      });

    it('prints a line per category, the failures, and a JSON summary last; exit 1 on failure', () => {
      const r = cli(dir);
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines).toContain('alpha     1/2');
      expect(lines).toContain('beta      1/1');
      expect(r.stdout).toContain('alpha/two\n    output 3 ≠ 2');
      expect(JSON.parse(lines.at(-1)!)).toEqual({ total: 3, passed: 2, failed: ['alpha/two'] });
      expect(r.status).toBe(1);
    });

    it('--filter runs a subset; exit 0 when all of it passes', () => {
      const r = cli(dir, '--filter', 'beta');
      expect(JSON.parse(r.stdout.trimEnd().split('\n').at(-1)!)).toEqual({
        total: 1,
        passed: 1,
        failed: [],
      });
      expect(r.status).toBe(0);
    });

    it('exits 2 with usage for a missing directory', () => {
      const r = cli(join(dir, 'nope'));
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('no such directory');
    });
  });
});
