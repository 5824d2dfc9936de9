/**
 * Per-attempt CPU time and peak memory, end to end on the local executor: a real pipeline run
 * whose step holds a known amount of memory and burns some CPU; `strand results`, `strand batch
 * describe` and `strand report` show what was measured; a second run served from the cache is
 * reported as such; an unknown run is bad input.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { JobDetail } from '../../src/batch/types.js';
import { Engine } from '../../src/engine/engine.js';
import { inlinePipeline, resultsJson, strand } from '../pipeline/cli.js';
import { HELD_MIB, PIPELINE } from './measured.js';
import { parsePage, tooltip } from './page.js';

interface StepRow {
  sample: string;
  step: string;
  status: string;
  cpuSeconds: number | null;
  peakMemoryMiB: number | null;
}

function jobsOf(home: string, execution: string): JobDetail[] {
  const engine = Engine.open({ home, readOnly: true });
  try {
    return engine.listBatchJobs().filter((j) => j.tags?.['strand:execution'] === execution);
  } finally {
    engine.close();
  }
}

describe('peak memory and CPU time of each attempt (local executor)', () => {
  const p = inlinePipeline(PIPELINE);
  let rows: StepRow[];

  beforeAll(async () => {
    const r = await strand('run', p.file, '--home', p.home, '--name', 'measured-1');
    expect(r.code, r.err).toBe(0);
    rows = (await resultsJson(
      p.home,
      '--execution',
      'measured-1',
      '--columns',
      'sample,step,status,cpuSeconds,peakMemoryMiB',
    )) as StepRow[];
  }, 120_000);

  it('records the peak of the step that held 200 MiB, and its CPU time', () => {
    const hogs = rows.filter((r) => r.step === 'hog');
    expect(hogs.map((r) => r.sample).sort()).toEqual(['alpha', 'beta']);
    for (const r of hogs) {
      expect(r.status).toBe('SUCCEEDED');
      expect(r.peakMemoryMiB).toBeGreaterThanOrEqual(HELD_MIB);
      // Perl itself adds a few MiB; a copy of the string would double it.
      expect(r.peakMemoryMiB).toBeLessThan(HELD_MIB * 1.5);
      expect(r.cpuSeconds).toBeGreaterThan(0);
    }
    for (const r of rows.filter((x) => x.step === 'count')) {
      expect(r.peakMemoryMiB).toBeGreaterThan(0);
      expect(r.peakMemoryMiB).toBeLessThan(64);
    }
  });

  it('`strand results` shows CPU seconds and peak memory in its table', async () => {
    const r = await strand('results', '--home', p.home, '--execution', 'measured-1');
    expect(r.code, r.err).toBe(0);
    const [header, ...lines] = r.out.trimEnd().split('\n');
    const columns = header.split(/\s{2,}/);
    expect(columns).toEqual(expect.arrayContaining(['CPU SECONDS', 'PEAK MEMORY MIB']));
    expect(lines).toHaveLength(rows.length);
    for (const row of rows) {
      const line = lines.find((l) => l.includes(` ${row.sample} `) && l.includes(` ${row.step} `));
      expect(line, `${row.sample} ${row.step}`).toBeDefined();
      expect(line!.split(/\s+/)).toEqual(
        expect.arrayContaining([String(row.cpuSeconds), String(row.peakMemoryMiB)]),
      );
    }
  });

  it('`strand batch describe` gives each attempt what it had and what it used', async () => {
    const hog = jobsOf(p.home, 'measured-1').find(
      (j) => j.tags?.['strand:step'] === 'hog' && j.tags['strand:sample'] === 'alpha',
    )!;
    const json = await strand('batch', 'describe', hog.jobId, '--home', p.home);
    expect(json.code, json.err).toBe(0);
    const [attempt] = (JSON.parse(json.out) as { jobs: JobDetail[] }).jobs[0].attempts;
    const recorded = rows.find((r) => r.step === 'hog' && r.sample === 'alpha')!;
    expect(attempt).toMatchObject({
      vcpus: 1,
      memoryMiB: 512,
      cpuSeconds: recorded.cpuSeconds,
      peakMemoryMiB: recorded.peakMemoryMiB,
    });

    const table = await strand('batch', 'describe', hog.jobId, '--attempts', '--home', p.home);
    expect(table.code, table.err).toBe(0);
    const [header, line, ...more] = table.out.trimEnd().split('\n');
    expect(more).toEqual([]);
    const heads = header.trim().split(/\s{2,}/);
    const cells = line.trim().split(/\s{2,}/);
    const cell = (h: string) => cells[heads.indexOf(h)];
    expect(cell('ATTEMPT')).toBe('1');
    expect(cell('STATUS')).toBe('SUCCEEDED');
    expect(cell('VCPUS')).toBe('1');
    expect(cell('MEMORY MIB')).toBe('512');
    expect(cell('CPU SECONDS')).toBe(String(recorded.cpuSeconds));
    expect(cell('PEAK MEMORY MIB')).toBe(String(recorded.peakMemoryMiB));
  });

  it('`strand report` writes one page with every attempt, its tooltip and the per-step use', async () => {
    const out = join(p.dir, 'reports', 'measured-1.html');
    const r = await strand('report', 'measured-1', '--home', p.home, '-o', out);
    expect(r.code, r.err).toBe(0);
    expect(r.out.trim()).toBe(out);
    const html = readFileSync(out, 'utf8');
    // Complete in itself: nothing it would fetch.
    expect(html).not.toMatch(/<(link|img|iframe)\b|\bsrc=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    const page = parsePage(html);

    expect(page.data.execution).toMatchObject({
      execution: 'measured-1',
      pipeline: 'measured',
      status: 'SUCCEEDED',
      samples: ['alpha', 'beta'],
    });
    expect(page.data.summary).toMatchObject({ jobs: 4, ran: 4, cached: 0, failed: 0, attempts: 4 });
    const cpu = rows.reduce((sum, x) => sum + (x.cpuSeconds ?? 0), 0);
    expect(page.data.summary.cpuSeconds).toBeCloseTo(cpu, 6);

    // The timeline: a bar per attempt in each grouping, each with CPU time and peak memory.
    for (const by of ['sample', 'step'] as const) {
      const bars = page.bars(by);
      expect(bars).toHaveLength(4);
      const jobs = jobsOf(p.home, 'measured-1');
      expect(bars.map((b) => b.attrs!.find((a) => a.name === 'data-job')!.value).sort()).toEqual(
        jobs.map((j) => j.jobId).sort(),
      );
      for (const bar of bars) {
        const tip = tooltip(bar);
        expect(tip).toMatch(/CPU time [\d.]+ s/);
        expect(tip).toMatch(/peak memory [\d.]+ MiB/);
        expect(tip).toMatch(/had 1 vCPU, (512|64) MiB/);
      }
    }
    const alphaHog = page
      .bars('sample')
      .map(tooltip)
      .find((t) => t.startsWith('hog · alpha'))!;
    const recorded = rows.find((x) => x.step === 'hog' && x.sample === 'alpha')!;
    expect(alphaHog).toContain(`peak memory ${recorded.peakMemoryMiB} MiB`);

    // The attempts table and the per-step table.
    const attempts = page.attemptRows();
    expect(attempts.map((a) => `${a.Sample} ${a.Step} ${a.Attempt} ${a.Status}`).sort()).toEqual([
      'alpha count 1 SUCCEEDED',
      'alpha hog 1 SUCCEEDED',
      'beta count 1 SUCCEEDED',
      'beta hog 1 SUCCEEDED',
    ]);
    const steps = page.stepRows();
    expect(steps.map((s) => s.Step)).toEqual(['hog', 'count']);
    const hog = page.data.steps.find((s) => s.step === 'hog')!;
    expect(hog).toMatchObject({ jobs: 2, attempts: 2, memoryMiB: { min: 512, max: 512 } });
    expect(hog.peakMemoryMiB!.min).toBeGreaterThanOrEqual(HELD_MIB);
    expect(hog.peakShare).toBeGreaterThan(HELD_MIB / 512);
    expect(hog.peakShare).toBeLessThan(1);
    expect(steps[0]['Memory had']).toBe('512 MiB');
  });

  it('a run served from the cache is reported as cached, with nothing measured', async () => {
    const again = await strand('run', p.file, '--home', p.home, '--name', 'measured-2');
    expect(again.code, again.err).toBe(0);
    const out = join(p.dir, 'measured-2.html');
    const r = await strand('report', 'measured-2', '--home', p.home, '-o', out);
    expect(r.code, r.err).toBe(0);
    const page = parsePage(readFileSync(out, 'utf8'));
    expect(page.data.summary).toMatchObject({ jobs: 4, ran: 0, cached: 4, attempts: 0 });
    expect(page.data.summary.cpuSeconds).toBe(0);
    expect(page.data.attempts.every((a) => a.cached && a.peakMemoryMiB === undefined)).toBe(true);
    expect(page.attemptRows().map((a) => a.Status)).toEqual(Array(4).fill('CACHED'));
    expect(
      page
        .bars('step')
        .map(tooltip)
        .every((t) => t.includes('did not run')),
    ).toBe(true);
  });

  it('an unknown run is exit 2 with the likely name; --help says what the page holds', async () => {
    const r = await strand('report', 'mesured-1', '--home', p.home);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /mesured-1: no such pipeline run in this home; did you mean "measured-1"\?/,
    );
    expect(existsSync('mesured-1.report.html')).toBe(false);
    const help = await strand('report', '--help');
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/-o, --out <file>/);
    expect(help.out).toMatch(/<execution>\.report\.html/);
    expect(help.out).toMatch(/peak memory/i);
  });
});
