/**
 * The genome pipeline head to head: examples/microbe-genome through Strand and the same tools,
 * commands and thread counts through Snakemake (bench/peers/microbe-genome.smk), same samples,
 * same 2 cores, one after the other, caches off. Strand runs the assembly with `vcpus: 1-2`;
 * Snakemake runs it at 2 threads (the top of the range), then at 1, and `snakemake_best_s` is the
 * faster of the two. Reads are simulated once (prepare.mjs) and shared.
 *
 * Strand sizes a job from how its step scaled in earlier runs (the results database). So Strand
 * first runs once from an empty home, as a new user's first run does (`strand_cold_s`, with
 * `ratio_cold` against the median of Snakemake at 2 threads); every round's Strand run then starts
 * from a copy of the home that run left, that is with the history of one earlier run, as a lab's
 * daily runs do (`strand_s`).
 *
 * `strand_cpu_busy`: the fraction of the machine's core-seconds during Strand's run spent
 * outside Strand's own process (that is, in the tools), from /proc/stat. `strand_bound_s`: the
 * shortest any scheduler could take with the jobs' own durations and reservations, Σ(duration ×
 * vCPU) / cores; `strand_packing` = bound / strand_s (1.0: no reserved core ever idle).
 *
 * A virtual machine's speed drifts over minutes by as much as the difference measured (see
 * docs/benchmarks.md), so the three runs are repeated in `--rounds` rounds (3 by
 * default), each in another order (Strand, Snakemake at 2, at 1; then Snakemake at 2, at 1,
 * Strand; then at 1, Strand, at 2), and the summary compares medians: a drift over the whole
 * benchmark then weighs on each tool alike. Every round is printed too.
 *
 *   npm run -s bench -- genome [--samples 8] [--coverage 10] [--rounds 3] [--strand-only] [--keep]
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
  const rounds = Number(option(args, 'rounds', '3'));
  if (!Number.isInteger(rounds) || rounds < 1) {
    process.stderr.write(
      `genome: --rounds ${option(args, 'rounds')}: give a whole number, 1 or more\n`,
    );
    process.exit(2);
  }
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
  process.stdout.write(
    `${samples} samples at ${coverage}×, ${cpus().length} cores, ${rounds} round${rounds === 1 ? '' : 's'}\n`,
  );

  /** Strand in `home-<name>`, a copy of `from` when given (its history), else empty. */
  const strand = async (name: string, from?: string): Promise<StrandRun> => {
    const home = join(dir, `home-${name}`);
    if (from) cpSync(from, home, { recursive: true });
    const io = { out: () => {}, err: () => {}, isTTY: false };
    const t0 = performance.now();
    const startedAt = Date.now();
    const c0 = cpuTicks();
    const own0 = process.cpuUsage();
    const code = await run(
      ['node', 'strand', 'run', join(example, 'pipeline.yaml'), '--home', home, '--no-cache'],
      io,
    );
    const seconds = (performance.now() - t0) / 1000;
    const c1 = cpuTicks();
    const own = process.cpuUsage(own0);
    if (code !== 0) throw new Error(`strand run exited ${code} (its home: ${home})`);
    // Reserved core-seconds of every attempt, from the Batch records of the run.
    const db = new Database(join(home, 'strand.db'), { readonly: true });
    let reserved = 0;
    // How the assemblies were sized (the example's `vcpus: 1-2`).
    const sizes: Record<string, number> = {};
    // This run's jobs only: a home copied from an earlier run holds that run's too.
    for (const job of readJobs(db).filter((j) => j.createdAt >= startedAt)) {
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
    const ownS = (own.user + own.system) / 1e6;
    const busy = (c1.busy - c0.busy - ownS * tick) / (c1.total - c0.total);
    const assemblies = Object.entries(sizes)
      .map(([size, n]) => `${size} × ${n}`)
      .join(', ');
    process.stdout.write(
      `strand${from ? '' : ' (empty home)'}: ${seconds.toFixed(1)} s, tools kept the cores ${(busy * 100).toFixed(0)}% busy; ` +
        `the jobs' reserved core-seconds / ${cpus().length} cores = ${boundS.toFixed(1)} s ` +
        `(packing ${(boundS / seconds).toFixed(2)}); Strand's own process ` +
        `${ownS.toFixed(1)} CPU s; assemblies at ${assemblies}\n`,
    );
    return { seconds, busy, boundS, ownS, assemblies, home };
  };

  /** Snakemake on the same commands, the assembly at `threads`; seconds. */
  const snakemake = (threads: number, round: number): number => {
    const t1 = performance.now();
    const r = spawnSync(
      'snakemake',
      [
        '-s',
        resolve('bench/peers/microbe-genome.smk'),
        '--cores',
        String(cpus().length),
        '--directory',
        join(dir, `smk-${threads}-${round}`),
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

  let withSnakemake = true;
  if (args.includes('--strand-only')) {
    process.stdout.write('snakemake: left out (--strand-only)\n');
    withSnakemake = false;
  } else if (spawnSync('sh', ['-c', 'command -v snakemake']).status !== 0) {
    process.stdout.write('snakemake: not installed (apt-get install snakemake)\n');
    withSnakemake = false;
  }
  // Snakemake at the thread count the pipeline declares (the top of its range), and at 1: its
  // best fixed count for the assembly is the faster of the two.
  const order = (['strand', 2, 1] as const).filter((x) => withSnakemake || x === 'strand');
  process.stdout.write('Strand from an empty home, once (its first run)\n');
  const cold = await strand('cold');
  const done: Round[] = [];
  for (let r = 0; r < rounds; r++) {
    if (rounds > 1) process.stdout.write(`round ${r + 1} of ${rounds}\n`);
    const round: Partial<Round> = {};
    for (let i = 0; i < order.length; i++) {
      const what = order[(i + r) % order.length];
      if (what === 'strand') round.strand = await strand(String(r), cold.home);
      else if (what === 2) round.smk2 = snakemake(2, r);
      else round.smk1 = snakemake(1, r);
    }
    done.push(round as Round);
    if (round.smk2 !== undefined && rounds > 1)
      process.stdout.write(
        `round ${r + 1}: ratio ${(round.strand!.seconds / round.smk2).toFixed(2)}, to the best ` +
          `${(round.strand!.seconds / Math.min(round.smk2, round.smk1!)).toFixed(2)}\n`,
      );
  }
  if (args.includes('--keep'))
    process.stdout.write(`kept: ${dir} (Strand's homes: ${dir}/home-cold, ${dir}/home-N)\n`);
  else rmSync(dir, { recursive: true, force: true });

  const strandS = median(done.map((d) => d.strand.seconds));
  const smkS = withSnakemake ? median(done.map((d) => d.smk2!)) : null;
  const smk1S = withSnakemake ? median(done.map((d) => d.smk1!)) : null;
  const bestS = smkS === null || smk1S === null ? null : Math.min(smkS, smk1S);
  const busy = median(done.map((d) => d.strand.busy));
  const boundS = median(done.map((d) => d.strand.boundS));
  const ratio = smkS === null ? null : strandS / smkS;
  const ratioBest = bestS === null ? null : strandS / bestS;
  const ratioCold = smkS === null ? null : cold.seconds / smkS;
  const of = rounds > 1 ? `medians of ${rounds} rounds: ` : '';
  process.stdout.write(
    `${of}ratio ${ratio === null ? 'n/a' : ratio.toFixed(2)} (target ≤ 0.9), ` +
      `ratio to Snakemake's best ${ratioBest === null ? 'n/a' : ratioBest.toFixed(2)} (target ≤ 1.0), ` +
      `CPU busy ${busy.toFixed(2)} (target ≥ 0.93); from an empty home ${cold.seconds.toFixed(1)} s, ` +
      `ratio ${ratioCold === null ? 'n/a' : ratioCold.toFixed(2)}\n`,
  );
  const s1 = (x: number | null | undefined): number | null =>
    x === null || x === undefined ? null : +x.toFixed(1);
  process.stdout.write(
    JSON.stringify({
      samples,
      strand_s: s1(strandS),
      snakemake_s: s1(smkS),
      snakemake_best_s: s1(bestS),
      ratio: ratio === null ? null : +ratio.toFixed(2),
      ratio_best: ratioBest === null ? null : +ratioBest.toFixed(2),
      strand_cpu_busy: +busy.toFixed(2),
      strand_bound_s: s1(boundS),
      strand_own_cpu_s: s1(median(done.map((d) => d.strand.ownS))),
      strand_packing: +(boundS / strandS).toFixed(2),
      samples_per_hour: +((samples / strandS) * 3600).toFixed(1),
      strand_cold_s: s1(cold.seconds),
      ratio_cold: ratioCold === null ? null : +ratioCold.toFixed(2),
      strand_cold_cpu_busy: +cold.busy.toFixed(2),
      cold_assemblies: cold.assemblies,
      rounds: done.map((d) => ({
        strand_s: s1(d.strand.seconds),
        snakemake_s: s1(d.smk2),
        snakemake_1_s: s1(d.smk1),
        assemblies: d.strand.assemblies,
      })),
    }) + '\n',
  );
}

interface StrandRun {
  seconds: number;
  busy: number;
  boundS: number;
  ownS: number;
  /** The sizes the assemblies got, e.g. "1 vCPU × 8". */
  assemblies: string;
  home: string;
}

interface Round {
  strand: StrandRun;
  /** Snakemake with the assembly at 2 threads, and at 1; seconds. */
  smk2?: number;
  smk1?: number;
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
