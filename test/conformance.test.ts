import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  loadCases,
  loadExceptions,
  runConformance,
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

  it('has the expected size: 563 execution cases and 76 validation cases', () => {
    expect(cases.filter((c) => c.expect.valid === undefined)).toHaveLength(563);
    expect(cases.filter((c) => c.expect.valid !== undefined)).toHaveLength(76);
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
