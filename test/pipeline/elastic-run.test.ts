/**
 * A pipeline step with a range of vCPUs, through `strand run`: the first run takes the top of
 * the range and records how it went in the results database; the next run sizes its jobs from
 * that history; a range the machine can never give is bad input.
 */
import { cpus } from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { inlinePipeline, resultsJson, strand } from './cli.js';

/** As many samples as this machine has cores (at least 2), each one single-threaded job. */
function serialSteps(range = '1-2') {
  const n = Math.max(2, cpus().length);
  const samples = Array.from({ length: n }, (_, i) => `{ id: s${i} }`).join(', ');
  return inlinePipeline([
    'name: elastic',
    `samples: [ ${samples} ]`,
    'steps:',
    '  work:',
    '    image: debian:bookworm-slim',
    `    vcpus: ${range}`,
    '    memory: 128MiB-256MiB',
    // Busy on one thread for a moment, whatever it is given; writes what it was given.
    '    command: [sh, -c, \'echo "$$1 $$STRAND_MEMORY_MIB" > n.txt; i=0; while [ $$i -lt 200000 ]; do i=$$((i+1)); done\', sh, $STRAND_VCPUS]',
    '    outputs: { N: n.txt }',
  ]);
}

describe('strand run with vcpus: 1-2', () => {
  it('takes the top of the range first, then sizes from the recorded runs', async () => {
    const p = serialSteps();
    const first = await strand('run', p.file, '--home', p.home, '--name', 'first');
    expect(first.code, first.err).toBe(0);
    const rows = (await resultsJson(
      p.home,
      '--execution',
      'first',
      '--columns',
      'sample,vcpus,memoryMiB,cpuSeconds',
    )) as {
      vcpus: number;
      memoryMiB: number;
      cpuSeconds: number;
    }[];
    expect(rows.map((r) => [r.vcpus, r.memoryMiB])).toEqual(rows.map(() => [2, 256]));
    for (const r of rows) expect(r.cpuSeconds).toBeGreaterThan(0);
    const out = (sample: string) =>
      readFileSync(join(p.home, 'store', 'elastic', sample, 'work', 'n.txt'), 'utf8');
    expect(out('s0')).toBe('2 256\n');

    // The next run decides from those runs (which size wins depends on the queue each job
    // meets and on this machine's cores: test/batch/elastic-batch.test.ts pins those).
    const second = await strand('run', p.file, '--home', p.home, '--name', 'second', '--no-cache');
    expect(second.code, second.err).toBe(0);
    const reader = Engine.open({ home: p.home, readOnly: true });
    const jobs = reader.listBatchJobs().filter((j) => j.tags?.['strand:execution'] === 'second');
    reader.close();
    expect(jobs).toHaveLength(rows.length);
    for (const j of jobs) {
      expect(j.sizing?.reason).toMatch(
        /^expected 1 vCPU [\d.]+ s, 2 vCPU [\d.]+ s \(\d+ runs at 2 vCPU using \d\.\d\d of them\)/,
      );
      const got = j.attempts.at(-1)!;
      expect(got.vcpus).toBe(j.sizing!.vcpus);
      // What the job saw is what was recorded for it, memory in proportion to its vCPUs.
      expect(out(j.tags!['strand:sample'])).toBe(`${got.vcpus} ${got.memoryMiB}\n`);
      expect(got.memoryMiB).toBe(got.vcpus === 1 ? 128 : 256);
    }
  }, 60_000);

  it('a range whose low end this machine can never give: exit 2 at the value, nothing written', async () => {
    const p = serialSteps(`${cpus().length + 1}-${cpus().length + 2}`);
    const r = await strand('run', p.file, '--home', p.home);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      new RegExp(
        `pipeline\\.yaml:6:12 steps\\.work\\.vcpus: ${cpus().length + 1}-${cpus().length + 2}: even the low end is more than this machine has`,
      ),
    );
    expect(existsSync(p.home)).toBe(false);
  });
});
