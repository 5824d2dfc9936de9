/**
 * The same measured pipeline on the executors that run jobs elsewhere than a local process: in
 * podman containers and as SLURM jobs. Each records the peak memory its wrapper measured (inside
 * the container; on the node), and `strand report` shows it. Skipped without podman or a SLURM
 * cluster, unless STRAND_REQUIRE_CONTAINERS / STRAND_REQUIRE_SLURM say they must run.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { podmanReady } from '../executors/containers.js';
import { slurmMissing, slurmReady } from '../executors/slurm-cluster.js';
import { inlinePipeline, resultsJson, strand } from '../pipeline/cli.js';
import { HELD_MIB, MEASURED_COLUMNS, PIPELINE, type MeasuredRow } from './measured.js';
import { parsePage, tooltip } from './page.js';

/** Runs the pipeline with `args`, then checks what was measured and what the report shows. */
async function runMeasured(
  name: string,
  executor: string,
  args: string[],
  prepare?: (home: string) => void,
) {
  const p = inlinePipeline(PIPELINE);
  mkdirSync(p.home, { recursive: true });
  prepare?.(p.home);
  const r = await strand('run', p.file, '--home', p.home, '--name', name, ...args);
  expect(r.code, r.err).toBe(0);
  const rows = (await resultsJson(
    p.home,
    '--execution',
    name,
    '--columns',
    MEASURED_COLUMNS,
  )) as MeasuredRow[];
  expect(rows).toHaveLength(4);
  for (const row of rows) {
    expect(row).toMatchObject({ status: 'SUCCEEDED', executor });
    expect(row.peakMemoryMiB).toBeGreaterThan(0);
    expect(row.cpuSeconds).toBeGreaterThan(0);
  }
  for (const row of rows.filter((x) => x.step === 'hog')) {
    expect(row.peakMemoryMiB).toBeGreaterThanOrEqual(HELD_MIB);
    expect(row.peakMemoryMiB).toBeLessThan(HELD_MIB * 1.5);
  }
  const out = join(p.dir, 'report.html');
  const report = await strand('report', name, '--home', p.home, '-o', out);
  expect(report.code, report.err).toBe(0);
  const page = parsePage(readFileSync(out, 'utf8'));
  expect(page.data.summary).toMatchObject({ jobs: 4, ran: 4, attempts: 4, failed: 0 });
  const tips = page.bars('sample').map(tooltip);
  expect(tips).toHaveLength(4);
  for (const row of rows) {
    const tip = tips.find((t) => t.startsWith(`${row.step} · ${row.sample} ·`));
    expect(tip, `${row.step} ${row.sample}`).toContain(`peak memory ${row.peakMemoryMiB} MiB`);
  }
}

describe.skipIf(!podmanReady)('peak memory in podman containers', () => {
  it('measured inside the container, recorded and reported', async () => {
    await runMeasured('measured-podman', 'podman', ['--executor', 'podman']);
  }, 180_000);
});

describe.skipIf(!slurmReady)(
  `peak memory of SLURM jobs${slurmReady ? '' : ` (skipped: ${slurmMissing})`}`,
  () => {
    it('measured on the node by the job wrapper (no accounting needed), recorded and reported', async () => {
      await runMeasured('measured-slurm', 'slurm', ['--executor', 'slurm'], (home) =>
        writeFileSync(
          join(home, 'config.yaml'),
          'executors:\n  slurm: { pollSeconds: 0.5, exitGraceSeconds: 5 }\n',
        ),
      );
    }, 180_000);
  },
);
