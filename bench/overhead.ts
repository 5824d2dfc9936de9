/**
 * Engine + Batch overhead: N samples × 4 chained batch:submitJob.sync tasks running `true`
 * on a 2-vCPU compute environment, 1 vCPU per job; against the floor measured in the same
 * run: the same number of processes spawned directly from Node, 2 at a time; and Snakemake on
 * the same DAG when it is installed. Best of five rounds each. Target: strand_s / floor_s ≤ 1.5.
 *
 *   npm run -s bench -- overhead [--samples 250] [--dir DIR] [--no-wait]
 *   npm run -s bench -- overhead --executor podman [--samples 10]
 *   npm run -s bench -- overhead --executor slurm [--samples 10]
 *
 * With `--executor podman` (or docker) the jobs run in containers of debian:bookworm-slim
 * (`strand images base` makes it), and the figures are per job: Strand on that executor, the
 * container runtime's own `run --rm` of the same image and command 2 at a time (its floor), and
 * Strand's local executor on the same jobs; the ratio is Strand's container jobs to the floor.
 *
 * With `--executor slurm` the jobs are SLURM batch jobs on the cluster `sinfo` answers for (the
 * single node of `bash scripts/slurm-local.sh start` here), and the figures are per job: Strand
 * on SLURM; SLURM's own batch jobs (`sbatch` of the same command, each seen to end by a file it
 * writes) and `srun` of it (an allocation and a step, no batch script), 2 at a time; and
 * Strand's local executor on the same jobs. The summary also says how many
 * `squeue` and `sbatch` calls Strand made.
 *
 * Strand's homes and Snakemake's directory go in DIR (default: the system's temporary
 * directory). Each attempt creates three entries there (its directory, log and pid file), which
 * the floor does not, so the bench first measures what creating a file costs in DIR and prints
 * it (`create_us`): on an ext4 file system without a journal, inodes freed in the last 60–300 s
 * are skipped one by one when a new one is allocated, and creating files right after deleting
 * thousands can cost 30 times the usual ~30 µs. When it is that slow the bench waits (up to five
 * minutes, `--no-wait` to skip) for it to settle. Nothing is deleted until every side has run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StateMachineDefinition } from '../src/asl/types.js';
import { Engine } from '../src/engine/engine.js';
import { openExecutor } from '../src/app/index.js';
import type { Executor } from '../src/executors/executor.js';
import { SlurmExecutor } from '../src/executors/slurm/slurm-executor.js';
import { detectRuntime, type RuntimeName } from '../src/executors/container/runtime.js';
import { cpuTicks, option } from './machine.js';

/** The `true` program (not the shell's built-in): the floor and every job run the same binary. */
const TRUE =
  ['/usr/bin/true', '/bin/true'].find((p) => spawnSync(p).status === 0) ??
  (() => {
    throw new Error('no true program in /usr/bin or /bin');
  })();

/** Seconds to run `argv` `jobs` times, 2 at a time, spawned from Node. */
async function twoAtATime(jobs: number, argv: string[], check = false): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < jobs) {
      next++;
      await new Promise<void>((resolve, reject) => {
        const p = spawn(argv[0], argv.slice(1), { stdio: 'ignore' });
        p.on('exit', (code) =>
          !check || code === 0 ? resolve() : reject(new Error(`${argv[0]} exited ${code}`)),
        );
        p.on('error', reject);
      });
    }
  };
  await Promise.all([worker(), worker()]);
  return (performance.now() - t0) / 1000;
}

/** The floor: the same `true` program spawned directly from Node, 2 at a time. */
const floor = (jobs: number): Promise<number> => twoAtATime(jobs, [TRUE]);

/** Above this, creating files in the bench's directory is slowed by recent deletions. */
const SLOW_CREATE_US = 60;

/** Microseconds to create one empty file in a new directory of `dir` (mean of 500). */
function createCost(dir: string): number {
  const probe = mkdtempSync(join(dir, 'fs-'));
  const t0 = performance.now();
  for (let i = 0; i < 500; i++) writeFileSync(join(probe, String(i)), '');
  return ((performance.now() - t0) * 1000) / 500;
}

const IMAGE = 'debian:bookworm-slim';

async function strand(
  samples: number,
  dir: string,
  executor = 'local',
  opened: Executor[] = [],
): Promise<number> {
  const home = mkdtempSync(join(dir, 'home-'));
  const engine = Engine.open({
    home,
    batch: {
      executor: openExecutor('local', { home }),
      executors: (name) => {
        const e = openExecutor(name, { home });
        opened.push(e);
        return e;
      },
      maxvCpus: 2,
      memoryMiB: 4096,
    },
  });
  const queue = executor === 'local' ? 'default' : engine.batch!.ensureExecutorQueue(executor);
  engine.batch!.registerJobDefinition({
    jobDefinitionName: 'noop',
    type: 'container',
    containerProperties: {
      image: IMAGE,
      command: [TRUE],
      resourceRequirements: [
        { type: 'VCPU', value: '1' },
        { type: 'MEMORY', value: '64' },
      ],
    },
  });
  const step = (name: string, next?: string) => ({
    Type: 'Task' as const,
    Resource: 'arn:aws:states:::batch:submitJob.sync',
    Parameters: {
      'JobName.$': `States.Format('${name}-{}', $)`,
      JobQueue: queue,
      JobDefinition: 'noop',
    },
    ResultPath: null,
    ...(next ? { Next: next } : { End: true as const }),
  });
  const definition: StateMachineDefinition = {
    StartAt: 'Samples',
    States: {
      Samples: {
        Type: 'Map',
        ItemProcessor: {
          StartAt: 'qc',
          States: {
            qc: step('qc', 'assemble'),
            assemble: step('assemble', 'annotate'),
            annotate: step('annotate', 'sketch'),
            sketch: step('sketch'),
          },
        },
        End: true,
      },
    },
  };
  const t0 = performance.now();
  await engine.startExecution({
    definition,
    input: Array.from({ length: samples }, (_, i) => i),
    name: 'overhead',
  });
  const d = await engine.waitForExecution('overhead');
  const seconds = (performance.now() - t0) / 1000;
  engine.close();
  if (d.status !== 'SUCCEEDED') throw new Error(`strand run ${d.status}: ${d.error} ${d.cause}`);
  return seconds;
}

function snakemake(samples: number, parent: string): number | null {
  if (spawnSync('sh', ['-c', 'command -v snakemake']).status !== 0) return null;
  const dir = mkdtempSync(join(parent, 'snakemake-'));
  const rules = ['qc', 'assemble', 'annotate', 'sketch'];
  let text = `SAMPLES = range(${samples})\nrule all:\n    input: expand("sketch/{s}.done", s=SAMPLES)\n`;
  rules.forEach((r, i) => {
    text += `rule ${r}:\n${i ? `    input: "${rules[i - 1]}/{s}.done"\n` : ''}    output: touch("${r}/{s}.done")\n    threads: 1\n    shell: "true"\n`;
  });
  writeFileSync(join(dir, 'Snakefile'), text);
  const t0 = performance.now();
  const r = spawnSync('snakemake', ['--cores', '2', '--quiet'], { cwd: dir, stdio: 'ignore' });
  const seconds = (performance.now() - t0) / 1000;
  return r.status === 0 ? seconds : null;
}

/**
 * `--samples` (a positive whole number, else exit 2) and one new directory for everything this
 * run makes (the file-system probe, Strand's homes, Snakemake's files) inside `--dir`: its
 * entries share the parent's place on the disk, so the probe measures where the homes are.
 * Removed once every side has been measured, not between rounds.
 */
function setUp(args: string[], defaultSamples: number) {
  const samples = Number(option(args, 'samples') ?? defaultSamples);
  if (!Number.isInteger(samples) || samples < 1) {
    process.stderr.write(`--samples must be a positive integer, got ${option(args, 'samples')}\n`);
    process.exit(2);
  }
  const parent = option(args, 'dir') ?? tmpdir();
  mkdirSync(parent, { recursive: true });
  return { samples, parent, dir: mkdtempSync(join(parent, 'strand-bench-')) };
}

/** The container runtime's own `run --rm` of the same trivial job, 2 at a time. */
function containerFloor(name: RuntimeName, jobs: number): Promise<number> {
  const runtime = detectRuntime(name);
  const run = ['run', '--rm', '--pull', 'never', '--network', 'none', ...runtime.runOptions];
  return twoAtATime(jobs, [runtime.program, ...run, IMAGE, TRUE], true);
}

/** `--executor podman`: per-job cost of a container job against its floor and the local one. */
async function containers(args: string[], name: RuntimeName): Promise<void> {
  const { samples, dir } = setUp(args, 10);
  const jobs = samples * 4;
  process.stdout.write(
    `${samples} samples × 4 chained jobs = ${jobs} jobs in ${IMAGE} on ${name}, 2 vCPU, 1 vCPU each\n`,
  );
  let floorS = Infinity;
  let strandS = Infinity;
  let localS = Infinity;
  for (let round = 1; round <= 3; round++) {
    const f = await containerFloor(name, jobs);
    const s = await strand(samples, dir, name);
    const l = await strand(samples, dir, 'local');
    process.stdout.write(
      `round ${round}: ${name} run --rm ${f.toFixed(2)} s, strand on ${name} ${s.toFixed(2)} s, strand local ${l.toFixed(2)} s\n`,
    );
    floorS = Math.min(floorS, f);
    strandS = Math.min(strandS, s);
    localS = Math.min(localS, l);
  }
  rmSync(dir, { recursive: true, force: true });
  const perJob = (s: number) => +((s / jobs) * 1000).toFixed(1);
  const ratio = strandS / floorS;
  process.stdout.write(
    `per job: strand on ${name} ${perJob(strandS)} ms, ${name} run --rm ${perJob(floorS)} ms, strand local ${perJob(localS)} ms; ratio to ${name}'s own ${ratio.toFixed(2)}\n`,
  );
  process.stdout.write(
    JSON.stringify({
      executor: name,
      jobs,
      container_floor_s: +floorS.toFixed(2),
      strand_container_s: +strandS.toFixed(2),
      strand_local_s: +localS.toFixed(2),
      container_ms_per_job: perJob(strandS),
      floor_ms_per_job: perJob(floorS),
      local_ms_per_job: perJob(localS),
      ratio_to_floor: +ratio.toFixed(2),
    }) + '\n',
  );
}

/** SLURM's own `srun` of the trivial job, 2 at a time: an allocation and a step each. */
function slurmFloor(jobs: number): Promise<number> {
  return twoAtATime(
    jobs,
    ['srun', '--quiet', '--nodes=1', '--ntasks=1', '--cpus-per-task=1', '--mem=64M', TRUE],
    true,
  );
}

/**
 * SLURM batch jobs without Strand, 2 at a time: `sbatch` of a job that runs `true` and then
 * creates a file, each seen to end when its file appears (looked for every 10 ms): what SLURM's
 * batch path itself costs, the path Strand's jobs take.
 */
async function sbatchFloor(jobs: number, dir: string): Promise<number> {
  const marks = mkdtempSync(join(dir, 'sbatch-'));
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < jobs) {
      const done = join(marks, String(next++));
      const r = spawnSync(
        'sbatch',
        [
          '--parsable',
          '--nodes=1',
          '--ntasks=1',
          '--cpus-per-task=1',
          '--mem=64M',
          `--output=${done}.out`,
          `--wrap=${TRUE} && touch ${done}`,
        ],
        { encoding: 'utf8' },
      );
      if (r.status !== 0) throw new Error(`sbatch: ${r.stderr.trim()}`);
      while (!existsSync(done)) await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  await Promise.all([worker(), worker()]);
  return (performance.now() - t0) / 1000;
}

/** `--executor slurm`: per-job cost of a SLURM job against SLURM's own and the local one. */
async function slurm(args: string[]): Promise<void> {
  const { samples, dir } = setUp(args, 10);
  const jobs = samples * 4;
  const partition = spawnSync('sinfo', ['--noheader', '--format=%P %D %c %m'], {
    encoding: 'utf8',
  });
  if (partition.status !== 0) {
    process.stderr.write(
      `--executor slurm: sinfo does not answer (${partition.stderr.trim() || partition.error?.message}); start the test cluster: bash scripts/slurm-local.sh start\n`,
    );
    process.exit(2);
  }
  process.stdout.write(
    `${samples} samples × 4 chained jobs = ${jobs} jobs on SLURM (partition, nodes, CPUs, MiB: ${partition.stdout.trim()}), 1 vCPU each\n`,
  );
  let floorS = Infinity;
  let batchS = Infinity;
  let strandS = Infinity;
  let localS = Infinity;
  const calls = { squeue: 0, sbatch: 0 };
  for (let round = 1; round <= 3; round++) {
    const f = await slurmFloor(jobs);
    const b = await sbatchFloor(jobs, dir);
    const opened: Executor[] = [];
    const s = await strand(samples, dir, 'slurm', opened);
    const l = await strand(samples, dir, 'local');
    const used = opened.find((e): e is SlurmExecutor => e instanceof SlurmExecutor);
    process.stdout.write(
      `round ${round}: srun ${f.toFixed(2)} s, sbatch ${b.toFixed(2)} s, strand on slurm ${s.toFixed(2)} s (${used?.calls.sbatch ?? '?'} sbatch, ${used?.calls.squeue ?? '?'} squeue calls), strand local ${l.toFixed(2)} s\n`,
    );
    if (s < strandS && used) Object.assign(calls, used.calls);
    floorS = Math.min(floorS, f);
    batchS = Math.min(batchS, b);
    strandS = Math.min(strandS, s);
    localS = Math.min(localS, l);
  }
  rmSync(dir, { recursive: true, force: true });
  const perJob = (s: number) => +((s / jobs) * 1000).toFixed(1);
  process.stdout.write(
    `per job: strand on slurm ${perJob(strandS)} ms, sbatch ${perJob(batchS)} ms, srun ${perJob(floorS)} ms, strand local ${perJob(localS)} ms; ratio to sbatch ${(strandS / batchS).toFixed(2)}, to local ${(strandS / localS).toFixed(1)}\n`,
  );
  process.stdout.write(
    JSON.stringify({
      executor: 'slurm',
      jobs,
      srun_floor_s: +floorS.toFixed(2),
      sbatch_floor_s: +batchS.toFixed(2),
      strand_slurm_s: +strandS.toFixed(2),
      strand_local_s: +localS.toFixed(2),
      slurm_ms_per_job: perJob(strandS),
      srun_ms_per_job: perJob(floorS),
      sbatch_ms_per_job: perJob(batchS),
      local_ms_per_job: perJob(localS),
      ratio_to_sbatch: +(strandS / batchS).toFixed(2),
      ratio_to_srun: +(strandS / floorS).toFixed(2),
      ratio_to_local: +(strandS / localS).toFixed(1),
      squeue_calls: calls.squeue,
      sbatch_calls: calls.sbatch,
    }) + '\n',
  );
}

export async function main(args: string[]): Promise<void> {
  const executor = option(args, 'executor') ?? 'local';
  if (executor === 'podman' || executor === 'docker') return containers(args, executor);
  if (executor === 'slurm') return slurm(args);
  if (executor !== 'local') {
    process.stderr.write(`--executor ${executor}: use local, podman, docker or slurm\n`);
    process.exit(2);
  }
  const { samples, dir, parent } = setUp(args, 250);
  const jobs = samples * 4;
  process.stdout.write(`${samples} samples × 4 chained jobs = ${jobs} jobs, 2 vCPU, 1 vCPU each\n`);
  // The file system's own noise is not Strand's overhead: when creating files is slow (files
  // deleted there moments ago, e.g. by the test suite or the previous run of this bench), wait
  // up to five minutes for it to settle, unless told not to.
  let createUs = createCost(dir);
  const waitUntil = Date.now() + (args.includes('--no-wait') ? 0 : 300_000);
  while (createUs > SLOW_CREATE_US && Date.now() < waitUntil) {
    process.stdout.write(
      `creating a file in ${parent} costs ${createUs.toFixed(0)} µs (usually ~30): files were deleted there in the last minutes; waiting for the file system to settle (--no-wait to skip)\n`,
    );
    await new Promise((r) => setTimeout(r, 20_000));
    createUs = createCost(dir);
  }
  process.stdout.write(
    `creating a file in ${parent}: ${createUs.toFixed(0)} µs` +
      (createUs > SLOW_CREATE_US ? ' (still slow: Strand’s figures include that cost)' : '') +
      '\n',
  );
  // Best of five, floor and Strand alternating: this machine's disk and CPU are shared, and a
  // slow moment should not decide the ratio either way.
  const ticks0 = process.platform === 'linux' ? cpuTicks() : undefined;
  let floorS = Infinity;
  let strandS = Infinity;
  for (let round = 1; round <= 5; round++) {
    const f = await floor(jobs);
    const s = await strand(samples, dir);
    process.stdout.write(
      `round ${round}: floor (Node spawns, 2 at a time) ${f.toFixed(2)} s, strand (engine + local Batch) ${s.toFixed(2)} s\n`,
    );
    floorS = Math.min(floorS, f);
    strandS = Math.min(strandS, s);
  }
  const ticks1 = process.platform === 'linux' ? cpuTicks() : undefined;
  // A virtual machine's CPU time taken by its host: the rounds' figures vary with it.
  const stealPct =
    ticks0 && ticks1 && ticks1.total > ticks0.total
      ? (100 * (ticks1.steal - ticks0.steal)) / (ticks1.total - ticks0.total)
      : undefined;
  if (stealPct !== undefined)
    process.stdout.write(
      `CPU time stolen by the host during the rounds: ${stealPct.toFixed(1)}%\n`,
    );
  const smk = snakemake(samples, dir);
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(
    smk === null
      ? 'snakemake: not installed (apt-get install snakemake)\n'
      : `snakemake: ${smk.toFixed(2)} s\n`,
  );
  const ratio = strandS / floorS;
  process.stdout.write(
    `ratio ${ratio.toFixed(2)} (target ≤ 1.5: ${ratio <= 1.5 ? 'met' : 'NOT met'})\n`,
  );
  process.stdout.write(
    JSON.stringify({
      jobs,
      floor_s: +floorS.toFixed(2),
      strand_s: +strandS.toFixed(2),
      ratio: +ratio.toFixed(2),
      snakemake_s: smk === null ? null : +smk.toFixed(2),
      create_us: Math.round(createUs),
      steal_pct: stealPct === undefined ? null : +stealPct.toFixed(1),
    }) + '\n',
  );
}
