/**
 * The genome pipeline head to head: examples/microbe-genome through Strand and the same tools,
 * commands and thread counts through Snakemake (bench/peers/microbe-genome.smk), same samples,
 * same 2 cores, one after the other, caches off. Strand runs the assembly with `vcpus: 1-2`
 * (from a fresh home: it learns how the assembly scales during the run); Snakemake runs it at 2
 * threads (the top of the range), then at 1, and `snakemake_best_s` is the faster of the two. Reads are simulated once (prepare.mjs) and
 * shared. `strand_cpu_busy`: the fraction of the machine's core-seconds during Strand's run spent
 * outside Strand's own process (that is, in the tools), from /proc/stat. `strand_bound_s`: the
 * shortest any scheduler could take with the jobs' own durations and reservations, Σ(duration ×
 * vCPU) / cores; `strand_packing` = bound / strand_s (1.0: no reserved core ever idle).
 *
 *   npm run -s bench -- genome [--samples 8] [--coverage 10] [--strand-only] [--keep]
 *
 * `--keep` leaves the run's directory (Strand's home, the example, Snakemake's work) in place
 * and prints it, so that each job's sizing decision can be read with `strand batch describe`.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { readJobs } from '../src/batch/local-batch.js';
import { run } from '../src/cli/main.js';
import { cpuTicks, option } from './machine.js';

export async function main(args: string[]): Promise<void> {
  const samples = Number(option(args, 'samples', '8'));
  const coverage = option(args, 'coverage', '10');
  const dir = mkdtempSync(join(tmpdir(), 'strand-bench-genome-'));
  const example = join(dir, 'example');
  cpSync(resolve('examples/microbe-genome'), example, { recursive: true });
  const prep = spawnSync(
    process.execPath,
    [
      join(example, 'prepare.mjs'),
      '--count',
      String(samples),
      '--coverage',
      coverage,
      '--out',
      join(example, 'data'),
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (prep.status !== 0) throw new Error('prepare.mjs failed');
  const ids = readFileSync(join(example, 'data', 'samples.csv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split(',')[0]);
  process.stdout.write(`${samples} samples at ${coverage}×, ${cpus().length} cores\n`);

  const io = { out: () => {}, err: () => {}, isTTY: false };
  const t0 = performance.now();
  const c0 = cpuTicks();
  const own0 = process.cpuUsage();
  const code = await run(
    [
      'node',
      'strand',
      'run',
      join(example, 'pipeline.yaml'),
      '--home',
      join(dir, 'home'),
      '--no-cache',
    ],
    io,
  );
  const strandS = (performance.now() - t0) / 1000;
  const c1 = cpuTicks();
  const own = process.cpuUsage(own0);
  if (code !== 0) throw new Error(`strand run exited ${code}`);
  // Reserved core-seconds of every attempt, from the Batch records of the run.
  const db = new Database(join(dir, 'home', 'strand.db'), { readonly: true });
  let reserved = 0;
  // How the assemblies were sized (the example's `vcpus: 1-2`).
  const sizes: Record<string, number> = {};
  for (const job of readJobs(db)) {
    const vcpus = Number(
      job.container.resourceRequirements.find((r) => r.type === 'VCPU')?.value ?? 1,
    );
    for (const a of job.attempts)
      if (a.startedAt && a.stoppedAt)
        reserved += ((a.stoppedAt - a.startedAt) / 1000) * (a.vcpus ?? vcpus);
    if (job.tags?.['strand:step'] === 'assemble') {
      const got = `${job.attempts.at(-1)?.vcpus ?? vcpus} vCPU`;
      sizes[got] = (sizes[got] ?? 0) + 1;
    }
  }
  db.close();
  const boundS = reserved / cpus().length;
  const tick = 100; // USER_HZ
  const ownTicks = ((own.user + own.system) / 1e6) * tick;
  const busy = (c1.busy - c0.busy - ownTicks) / (c1.total - c0.total);
  process.stdout.write(
    `strand:    ${strandS.toFixed(1)} s, tools kept the cores ${(busy * 100).toFixed(0)}% busy; ` +
      `the jobs' reserved core-seconds / ${cpus().length} cores = ${boundS.toFixed(1)} s ` +
      `(packing ${(boundS / strandS).toFixed(2)}); Strand's own process ` +
      `${((own.user + own.system) / 1e6).toFixed(1)} CPU s; assemblies at ${Object.entries(sizes)
        .map(([size, n]) => `${size} × ${n}`)
        .join(', ')}\n`,
  );

  /** Snakemake on the same commands, the assembly at `threads`; seconds. */
  const snakemake = (threads: number): number => {
    const t1 = performance.now();
    const r = spawnSync(
      'snakemake',
      [
        '-s',
        resolve('bench/peers/microbe-genome.smk'),
        '--cores',
        String(cpus().length),
        '--directory',
        join(dir, `smk-${threads}`),
        '--config',
        `data=${join(example, 'data')}`,
        `coverage=${coverage}`,
        `samples=${ids.join(',')}`,
        `summary=${join(example, 'summary.awk')}`,
        `asm_threads=${threads}`,
        '--quiet',
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    if (r.status !== 0) throw new Error(`snakemake exited ${r.status}`);
    const seconds = (performance.now() - t1) / 1000;
    process.stdout.write(`snakemake, assembly at ${threads} threads: ${seconds.toFixed(1)} s\n`);
    return seconds;
  };
  let smkS: number | null = null;
  let bestS: number | null = null;
  if (args.includes('--strand-only')) {
    process.stdout.write('snakemake: left out (--strand-only)\n');
  } else if (spawnSync('sh', ['-c', 'command -v snakemake']).status === 0) {
    // The thread count the pipeline declares (the top of its range), then Snakemake's best
    // fixed count for the assembly: it tries 1 and 2.
    smkS = snakemake(2);
    bestS = Math.min(smkS, snakemake(1));
  } else {
    process.stdout.write('snakemake: not installed (apt-get install snakemake)\n');
  }
  if (args.includes('--keep')) process.stdout.write(`kept: ${dir} (Strand's home: ${dir}/home)\n`);
  else rmSync(dir, { recursive: true, force: true });
  const ratio = smkS === null ? null : strandS / smkS;
  const ratioBest = bestS === null ? null : strandS / bestS;
  process.stdout.write(
    `ratio ${ratio === null ? 'n/a' : ratio.toFixed(2)} (target ≤ 0.9), ` +
      `ratio to Snakemake's best ${ratioBest === null ? 'n/a' : ratioBest.toFixed(2)} (target ≤ 1.0), ` +
      `CPU busy ${busy.toFixed(2)} (target ≥ 0.93)\n`,
  );
  process.stdout.write(
    JSON.stringify({
      samples,
      strand_s: +strandS.toFixed(1),
      snakemake_s: smkS === null ? null : +smkS.toFixed(1),
      snakemake_best_s: bestS === null ? null : +bestS.toFixed(1),
      ratio: ratio === null ? null : +ratio.toFixed(2),
      ratio_best: ratioBest === null ? null : +ratioBest.toFixed(2),
      strand_cpu_busy: +busy.toFixed(2),
      strand_bound_s: +boundS.toFixed(1),
      strand_own_cpu_s: +((own.user + own.system) / 1e6).toFixed(1),
      strand_packing: +(boundS / strandS).toFixed(2),
      samples_per_hour: +((samples / strandS) * 3600).toFixed(1),
    }) + '\n',
  );
}
