/**
 * What the SLURM tests share: a SLURM cluster to run on — the single-node one
 * `scripts/slurm-local.sh` starts on this machine (started here when it is not running), or one
 * that already answers — and whether the tests must run (STRAND_REQUIRE_SLURM=1, as CI sets: then
 * a cluster that cannot be had fails them instead of skipping them).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const SCRIPT = join(process.cwd(), 'scripts/slurm-local.sh');

function onPath(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}

/** A cluster whose node is idle, or why there is none. */
function probe(): { ready: boolean; why?: string } {
  if (!onPath('sbatch') || !onPath('sinfo'))
    return { ready: false, why: 'slurm-wlm is not installed (apt-get install slurm-wlm munge)' };
  const conf = spawnSync('bash', [SCRIPT, 'conf'], { encoding: 'utf8' }).stdout.trim();
  if (spawnSync('bash', [SCRIPT, 'status']).status !== 0) {
    const started = spawnSync('bash', [SCRIPT, 'start'], { encoding: 'utf8', timeout: 120_000 });
    if (started.status !== 0)
      return {
        ready: false,
        why: `bash scripts/slurm-local.sh start failed: ${(started.stderr || started.error?.message || '').trim()}`,
      };
  }
  // The clients (this process's executors, and Strand processes the tests start) read the test
  // cluster's configuration wherever the script wrote it.
  process.env.SLURM_CONF = conf;
  return { ready: true };
}

const found = probe();
export const slurmRequired = process.env.STRAND_REQUIRE_SLURM === '1';
if (slurmRequired && !found.ready)
  throw new Error(`STRAND_REQUIRE_SLURM=1 but there is no SLURM cluster to test on: ${found.why}`);
/** Whether the SLURM tests run here. */
export const slurmReady = found.ready;
/** Why they do not (for the skip message). */
export const slurmMissing = found.why;
