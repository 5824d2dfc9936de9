/**
 * The SLURM executor on a real (single-node) SLURM cluster: the shared conformance suite, what is
 * its own (the job's SLURM environment, SLURM's refusals), a pipeline run through the CLI, and a
 * `kill -9` of Strand while SLURM jobs run, then `strand resume`.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Executor } from '../../src/executors/executor.js';
import {
  SlurmExecutor,
  type SlurmExecutorOptions,
} from '../../src/executors/slurm/slurm-executor.js';
import { inlinePipeline, resultsJson, spawnStrand, strand, waitUntil } from '../pipeline/cli.js';
import { executorConformance, spec, waitDone } from './conformance.js';
import { BASE_IMAGE, hostPidsOf, nodeImage, podman, podmanReady } from './containers.js';
import { slurmMissing, slurmReady } from './slurm-cluster.js';

const root = realpathSync(mkdtempSync(join(tmpdir(), 'strand-slurm-exec-')));
const skipped = slurmReady ? '' : ` (skipped: ${slurmMissing})`;

/** An executor on the test cluster, quick to decide (a local file system shows files at once). */
function make(options: Partial<SlurmExecutorOptions> = {}): SlurmExecutor {
  return new SlurmExecutor({
    workRoot: join(root, 'work'),
    graceSeconds: 1,
    pollMs: 500,
    exitGraceMs: 3000,
    ...options,
  });
}

/** The SLURM jobs whose working directory is `work` (a home's attempts), in any state. */
function slurmJobsIn(work: string): { id: string; state: string; name: string }[] {
  const out = execFileSync(
    'squeue',
    ['--me', '--noheader', '--states=all', '--format=%i|%T|%j|%Z'],
    { encoding: 'utf8' },
  );
  return out
    .split('\n')
    .map((l) => l.trim().split('|'))
    .filter((f) => f.length === 4 && f[3] === work)
    .map(([id, state, name]) => ({ id, state, name }));
}

/** The attempts a home submitted to SLURM: "jobId.attempt" → SLURM job id. */
function submittedIn(home: string): Map<string, string> {
  const work = join(home, 'work');
  if (!existsSync(work)) return new Map();
  return new Map(
    readdirSync(work)
      .filter((f) => f.endsWith('.slurm'))
      .map((f) => [f.slice(0, -6), readFileSync(join(work, f), 'utf8').trim()]),
  );
}

/** Pipelines made here: their jobs are released and cancelled after each test, passed or not. */
const held: { home: string; release: () => void }[] = [];

/** Releases the held jobs of the tests so far and cancels those of their SLURM jobs still there. */
function cleanUpHeld(): void {
  for (const p of held.splice(0)) {
    p.release();
    const left = slurmJobsIn(join(p.home, 'work')).filter(
      (j) => j.state === 'PENDING' || j.state === 'RUNNING',
    );
    if (left.length > 0)
      execFileSync(
        'scancel',
        left.map((j) => j.id),
      );
  }
}

/**
 * A pipeline of `samples` samples whose `hold` step writes a ledger line (sample, step, SLURM job
 * id), then waits for the file `go`; `after` reads its output. The home's settings make SLURM's
 * answers count at once.
 */
function heldPipeline(name: string, samples: number, settings = '') {
  const ledger = realpathSync(mkdtempSync(join(tmpdir(), 'strand-slurm-ledger-')));
  const go = join(ledger, 'go');
  const p = inlinePipeline([
    `name: ${name}`,
    `samples: [ ${Array.from({ length: samples }, (_, i) => `{ id: S${i + 1} }`).join(', ')} ]`,
    // The ledger's directory is named, not its file: files a job names are read-only inputs.
    `params: { LEDGER: "${ledger}", GO: "${go}" }`,
    'defaults: { vcpus: 1, memory: 64MiB }',
    'steps:',
    '  hold:',
    '    image: debian:bookworm-slim',
    `    command: [sh, -c, 'echo "$$0 hold $$SLURM_JOB_ID" >> "$$1/ledger.txt"; while [ ! -e "$$2" ]; do sleep 0.1; done; echo "$$0" > out.txt', $SAMPLE, $LEDGER, $GO]`,
    '    outputs: { HELD: out.txt }',
    '  after:',
    '    image: debian:bookworm-slim',
    `    command: [sh, -c, 'echo "$$0 after $$SLURM_JOB_ID" >> "$$1/ledger.txt"; tr a-z A-Z < "$$2"', $SAMPLE, $LEDGER, $HELD]`,
    '    stdout: upper.txt',
    '    outputs: { UPPER: upper.txt }',
  ]);
  mkdirSync(p.home, { recursive: true });
  writeFileSync(
    join(p.home, 'config.yaml'),
    `executors:\n  slurm: { pollSeconds: 0.5, exitGraceSeconds: 5${settings} }\n`,
  );
  const release = () => writeFileSync(go, '');
  held.push({ home: p.home, release });
  return {
    ...p,
    release,
    /** The ledger's lines: "SAMPLE STEP SLURM_JOB_ID". */
    ledger: (): string[] =>
      existsSync(join(ledger, 'ledger.txt'))
        ? readFileSync(join(ledger, 'ledger.txt'), 'utf8').trim().split('\n')
        : [],
  };
}

describe.skipIf(!slurmReady)(`slurm executor${skipped}`, () => {
  executorConformance('slurm', make, () => root, { contained: true });

  const executors: Executor[] = [];
  afterAll(() => executors.forEach((e) => e.close?.()));
  const ex = (options: Partial<SlurmExecutorOptions> = {}) => {
    const e = make(options);
    executors.push(e);
    return e;
  };

  it('runs on a SLURM node with the job id and the CPUs it asked for', async () => {
    const e = ex();
    const h = await e.submit(
      spec('', {
        command: ['sh', '-c', 'echo "job=$SLURM_JOB_ID cpus=$SLURM_CPUS_PER_TASK sample=$SAMPLE"'],
        environment: { PATH: process.env.PATH ?? '', SAMPLE: "S1 ; $(reboot) 'x'" },
        vcpus: 2,
        memoryMiB: 64,
      }),
    );
    expect(await waitDone(e, h)).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
    const id = readFileSync(`${h.ref}.slurm`, 'utf8').trim();
    expect(readFileSync(h.logPath, 'utf8')).toContain(`job=${id} cpus=2 sample=S1 ; $(reboot) 'x'`);
  });

  it('a partition SLURM does not have is refused at submit, naming it', async () => {
    const e = ex({ settings: { partition: 'no-such-partition' } });
    await expect(e.submit(spec('process.exit(0)'))).rejects.toThrow(
      /sbatch refused it: .*Invalid partition name specified.*--partition=no-such-partition/,
    );
  });

  it('a job no node can ever fit fails instead of pending for ever', async () => {
    const e = ex();
    const h = await e.submit(spec('process.exit(0)', { vcpus: 64, memoryMiB: 64 }));
    const s = await waitDone(e, h);
    expect(s.state).toBe('FAILED');
    expect(s).toMatchObject({ reason: expect.stringMatching(/can never start as asked/) });
  });

  it('killed between sbatch and recording the job id: a new executor finds the job by its name', async () => {
    const job = spec('setTimeout(() => {}, 1500)');
    const h = await ex().submit(job);
    const id = readFileSync(`${h.ref}.slurm`, 'utf8').trim();
    // As if the process had died before writing the id.
    rmSync(`${h.ref}.slurm`);
    const restarted = ex();
    expect(await restarted.submit(job)).toEqual(h);
    expect(restarted.calls.sbatch).toBe(0);
    expect(readFileSync(`${h.ref}.slurm`, 'utf8').trim()).toBe(id);
    expect(await waitDone(restarted, h)).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
  });

  it("the Batch's compute environment is the partition's size, from sinfo", () => {
    const nodes = execFileSync('sinfo', ['--noheader', '--format=%c|%m'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => l.split('|').map((n) => parseInt(n, 10)));
    expect(ex().capacity()).toEqual({
      vcpus: nodes.reduce((sum, [c]) => sum + c, 0),
      memoryMiB: nodes.reduce((sum, [, m]) => sum + m, 0),
    });
    expect(ex({ capacity: { vcpus: 64 } }).capacity().vcpus).toBe(64);
  });
});

/**
 * Jobs in their step's image, run by podman on the node: the conformance suite again (its
 * commands are `node -e` programs: an image with this machine's Node), then what a container
 * adds.
 */
describe.skipIf(!slurmReady || !podmanReady)(`slurm executor, jobs in containers${skipped}`, () => {
  const image = slurmReady && podmanReady ? nodeImage(podman!) : '';
  const inContainers = (options: Partial<SlurmExecutorOptions> = {}): Executor => {
    const ex = make({
      // The suite's jobs write their reports and ledgers here.
      container: { runtime: podman!, volumes: [`${root}:${root}`] },
      ...options,
    });
    return {
      name: ex.name,
      isolated: ex.isolated,
      submit: (s) => ex.submit({ ...s, image: s.image ?? image }),
      poll: (h) => ex.poll(h),
      kill: (h, r) => ex.kill(h, r),
      reattach: (h) => ex.reattach(h),
      close: () => ex.close(),
    };
  };
  // A job's container is removed when it ends (`run --rm`: the SLURM job is the container's
  // life): one already gone has taken its pid namespace, and every process in it, along.
  const hostPids = podmanReady ? hostPidsOf(podman!) : undefined;
  executorConformance('slurm + podman', inContainers, () => root, {
    contained: true,
    hostPids: async (h, pids) => {
      try {
        return await hostPids!(h, pids);
      } catch (err) {
        if (/^no container for /.test((err as Error).message)) return [];
        throw err;
      }
    },
  });

  it("runs in the step's image with its environment, not the node's", async () => {
    const e = inContainers();
    const h = await e.submit(
      spec('', {
        image: BASE_IMAGE,
        command: ['sh', '-c', 'echo "os=$(. /etc/os-release; echo $ID) path=$PATH sample=$SAMPLE"'],
        environment: { SAMPLE: 'S1 ; $(reboot)' },
      }),
    );
    expect(await waitDone(e, h)).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
    const log = readFileSync(h.logPath, 'utf8');
    expect(log).toContain(`[strand] slurm: image ${BASE_IMAGE}, run by podman on the node`);
    // The image's PATH, not the node's.
    expect(log).toContain(
      'os=debian path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin sample=S1 ; $(reboot)',
    );
  });

  it('an image the node does not have fails the attempt, naming it', async () => {
    const e = inContainers();
    const h = await e.submit(
      spec('', { image: 'localhost/strand-no-such-image:1', command: ['true'] }),
    );
    expect(await waitDone(e, h)).toMatchObject({
      state: 'FAILED',
      reason: expect.stringMatching(
        /^CannotPullContainerError: .*strand-no-such-image.*store on the node/,
      ),
    });
  });
});

describe.skipIf(!slurmReady)(`pipelines on SLURM${skipped}`, () => {
  afterEach(cleanUpHeld);

  it('strand run --executor slurm: every job a SLURM job, outputs in the store, results recorded', async () => {
    // More jobs at once than this machine has cores: SLURM holds those it cannot place yet.
    const p = heldPipeline('slurm-run', 6, ', maxvCpus: 16');
    const run = strand('run', p.file, '--home', p.home, '--executor', 'slurm');
    const work = join(p.home, 'work');
    // All six were handed to SLURM at once, none held back here for this machine's cores.
    await waitUntil('six jobs in SLURM', () => slurmJobsIn(work).length === 6, 60_000, 200);
    p.release();
    const r = await run;
    expect(r.code, r.err).toBe(0);
    const rows = (await resultsJson(p.home)) as { status: string }[];
    expect(rows.map((row) => row.status)).toEqual(Array(12).fill('SUCCEEDED'));
    // The compute environment the run's jobs went to is SLURM's size as configured, not this
    // machine's.
    const ce = await strand(
      'batch',
      'describe-compute-environments',
      '--compute-environments',
      'slurm',
      '--home',
      p.home,
    );
    expect(JSON.parse(ce.out)).toMatchObject({
      computeEnvironments: [
        {
          computeEnvironmentName: 'slurm',
          executor: 'slurm',
          statusReason: expect.stringMatching(
            /^hands its jobs to SLURM, which places them on the cluster's nodes \(16 vCPU, /,
          ),
        },
      ],
    });
    for (let i = 1; i <= 6; i++)
      expect(readFileSync(join(p.home, `store/slurm-run/S${i}/after/upper.txt`), 'utf8')).toBe(
        `S${i}\n`,
      );
    // Each job ran once, as the SLURM job recorded for its attempt.
    const ids = new Set(submittedIn(p.home).values());
    expect(ids.size).toBe(12);
    const lines = p.ledger();
    expect(lines).toHaveLength(12);
    for (const line of lines) expect(ids).toContain(line.split(' ')[2]);
  });

  it.runIf(podmanReady)(
    'with executors.slurm.containers: podman, each job runs in its image on the node',
    async () => {
      const p = inlinePipeline([
        'name: slurm-images',
        'samples: [ { id: A } ]',
        'steps:',
        '  which:',
        `    image: ${BASE_IMAGE}`,
        `    command: [sh, -c, '. /etc/os-release; echo "$$ID $$SLURM_JOB_ID" > os.txt']`,
        '    outputs: { OS: os.txt }',
      ]);
      mkdirSync(p.home, { recursive: true });
      writeFileSync(
        join(p.home, 'config.yaml'),
        'executors:\n  slurm: { containers: podman, pollSeconds: 0.5 }\nprofiles:\n  hpc: { executor: slurm }\n',
      );
      const r = await strand('run', p.file, '--home', p.home, '--profile', 'hpc');
      expect(r.code, r.err).toBe(0);
      const [id] = submittedIn(p.home).values();
      expect(readFileSync(join(p.home, 'store/slurm-images/A/which/os.txt'), 'utf8')).toBe(
        `debian ${id}\n`,
      );
    },
  );

  it('kill -9 of strand while SLURM jobs run: resume follows them by job id, none submitted twice', async () => {
    // Room in the Batch for all three at once, whatever the cluster's size.
    const p = heldPipeline('slurm-kill', 3, ', maxvCpus: 8');
    const work = join(p.home, 'work');
    const first = spawnStrand([
      'run',
      p.file,
      '--home',
      p.home,
      '--executor',
      'slurm',
      '--name',
      'k9',
    ]);
    // Killed once every `hold` job is in SLURM and one of them runs its command.
    await waitUntil(
      'three jobs submitted, one running',
      () => submittedIn(p.home).size === 3 && p.ledger().length > 0,
      60_000,
      20,
    );
    first.kill('SIGKILL');
    await first.done;
    // The jobs outlive Strand.
    const live = slurmJobsIn(work).filter((j) => j.state === 'PENDING' || j.state === 'RUNNING');
    expect(live).toHaveLength(3);
    const resumed = spawnStrand(['resume', '--home', p.home]);
    p.release();
    const r = await resumed.done;
    expect(r.code, r.err).toBe(0);
    // Every attempt ran exactly once, and SLURM got one job per attempt.
    const lines = p.ledger();
    expect(lines.map((l) => l.split(' ').slice(0, 2).join(' ')).sort()).toEqual([
      'S1 after',
      'S1 hold',
      'S2 after',
      'S2 hold',
      'S3 after',
      'S3 hold',
    ]);
    const submitted = new Set(submittedIn(p.home).values());
    expect(submitted.size).toBe(6);
    const jobs = slurmJobsIn(work);
    expect(jobs).toHaveLength(6);
    expect(new Set(jobs.map((j) => j.name)).size).toBe(6);
    expect(new Set(jobs.map((j) => j.id))).toEqual(submitted);
    for (const line of lines) expect(submitted).toContain(line.split(' ')[2]);
  });
});
