/**
 * Engine + Batch overhead: N samples × 4 chained batch:submitJob.sync tasks running `true`
 * on a 2-vCPU compute environment, 1 vCPU per job; against the floor measured in the same
 * run: the same number of processes spawned directly from Node, 2 at a time; and Snakemake on
 * the same DAG when it is installed. Best of five rounds each. Target: strand_s / floor_s ≤ 1.5.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StateMachineDefinition } from '../src/asl/types.js';
import { Engine } from '../src/engine/engine.js';

/** The `true` program (not the shell's built-in): the floor and every job run the same binary. */
const TRUE =
  ['/usr/bin/true', '/bin/true'].find((p) => spawnSync(p).status === 0) ??
  (() => {
    throw new Error('no true program in /usr/bin or /bin');
  })();

async function floor(jobs: number): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < jobs) {
      next++;
      await new Promise<void>((resolve, reject) => {
        const p = spawn(TRUE, [], { stdio: 'ignore' });
        p.on('exit', () => resolve());
        p.on('error', reject);
      });
    }
  };
  await Promise.all([worker(), worker()]);
  return (performance.now() - t0) / 1000;
}

const homes: string[] = [];

async function strand(samples: number): Promise<number> {
  const home = mkdtempSync(join(tmpdir(), 'strand-bench-'));
  const engine = Engine.open({ home, batch: { maxvCpus: 2, memoryMiB: 4096 } });
  engine.batch!.registerJobDefinition({
    jobDefinitionName: 'noop',
    type: 'container',
    containerProperties: {
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
      JobQueue: 'default',
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
  homes.push(home); // removed at the end: deleting 1,000 job directories would slow the next round
  if (d.status !== 'SUCCEEDED') throw new Error(`strand run ${d.status}: ${d.error} ${d.cause}`);
  return seconds;
}

function snakemake(samples: number): number | null {
  if (spawnSync('sh', ['-c', 'command -v snakemake']).status !== 0) return null;
  const dir = mkdtempSync(join(tmpdir(), 'strand-bench-smk-'));
  const rules = ['qc', 'assemble', 'annotate', 'sketch'];
  let text = `SAMPLES = range(${samples})\nrule all:\n    input: expand("sketch/{s}.done", s=SAMPLES)\n`;
  rules.forEach((r, i) => {
    text += `rule ${r}:\n${i ? `    input: "${rules[i - 1]}/{s}.done"\n` : ''}    output: touch("${r}/{s}.done")\n    threads: 1\n    shell: "true"\n`;
  });
  writeFileSync(join(dir, 'Snakefile'), text);
  const t0 = performance.now();
  const r = spawnSync('snakemake', ['--cores', '2', '--quiet'], { cwd: dir, stdio: 'ignore' });
  const seconds = (performance.now() - t0) / 1000;
  rmSync(dir, { recursive: true, force: true });
  return r.status === 0 ? seconds : null;
}

export async function main(args: string[]): Promise<void> {
  const i = args.indexOf('--samples');
  const samples = i >= 0 ? Number(args[i + 1]) : 250;
  const jobs = samples * 4;
  process.stdout.write(`${samples} samples × 4 chained jobs = ${jobs} jobs, 2 vCPU, 1 vCPU each\n`);
  // Best of five, floor and Strand alternating: this machine's disk and CPU are shared, and a
  // slow moment should not decide the ratio either way.
  let floorS = Infinity;
  let strandS = Infinity;
  for (let round = 1; round <= 5; round++) {
    const f = await floor(jobs);
    const s = await strand(samples);
    process.stdout.write(
      `round ${round}: floor (Node spawns, 2 at a time) ${f.toFixed(2)} s, strand (engine + local Batch) ${s.toFixed(2)} s\n`,
    );
    floorS = Math.min(floorS, f);
    strandS = Math.min(strandS, s);
  }
  for (const home of homes) rmSync(home, { recursive: true, force: true });
  const smk = snakemake(samples);
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
    }) + '\n',
  );
}
