/**
 * The microbe-genome example on the real Debian Med tools (fastp, megahit, seqkit, prodigal,
 * barrnap, mash), two H. pylori strains at low coverage plus a sample whose reads are corrupt.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { podmanReady } from '../executors/containers.js';
import { attemptsIn, resultsJson, strand } from '../pipeline/cli.js';

// A copy of the example, so its data/ (reads prepared here) is this test's own.
const dir = mkdtempSync(join(tmpdir(), 'strand-genome-'));
cpSync(resolve('examples/microbe-genome'), dir, { recursive: true });
const PIPELINE = join(dir, 'pipeline.yaml');
const data = join(dir, 'data');
const home = join(dir, 'home');
const store = join(home, 'store', 'microbe-genome');

interface Row {
  sample: string;
  step: string;
  status: string;
  execution: string;
}

async function rows(execution: string): Promise<Row[]> {
  return (await resultsJson(home, '--execution', execution)) as Row[];
}

describe('microbe-genome on real tools', () => {
  let first: { code: number; out: string; err: string };

  beforeAll(async () => {
    const prep = spawnSync(
      process.execPath,
      [
        'examples/microbe-genome/prepare.mjs',
        '--strains',
        'G27,ELS37',
        '--coverage',
        '8',
        '--out',
        data,
        '--corrupt',
        'BAD',
      ],
      { encoding: 'utf8' },
    );
    expect(prep.status, prep.stderr).toBe(0);
    first = await strand('run', PIPELINE, '--home', home, '--name', 'full');
  }, 600_000);

  it('the corrupt sample fails (fastp lets it through; megahit refuses it), named with its log; the others finish', async () => {
    expect(first.code, first.err).toBe(1);
    expect(first.err).toMatch(
      /1 of 3 samples failed:\n {2}BAD: assemble failed for sample BAD: exit code \d+; log: \S+\.log; partial outputs: /,
    );
    const list = await rows('full');
    expect(list.find((r) => r.sample === 'BAD' && r.step === 'assemble')?.status).toBe('FAILED');
    for (const sample of ['G27', 'ELS37'])
      for (const step of ['qc', 'assemble', 'stats', 'annotate.genes', 'annotate.rrna', 'sketch'])
        expect(
          list.find((r) => r.sample === sample && r.step === step)?.status,
          `${sample} ${step}`,
        ).toBe('SUCCEEDED');
    expect(
      JSON.parse(readFileSync(join(store, 'BAD', 'assemble', '_strand.json'), 'utf8')).status,
    ).toBe('FAILED');
  });

  it('every output is at its predictable place, with a manifest', () => {
    for (const sample of ['G27', 'ELS37']) {
      for (const [step, file] of [
        ['qc', 'out/r1.fq.gz'],
        ['assemble', 'out/asm/final.contigs.fa'],
        ['stats', 'out/stats.tsv'],
        ['annotate.genes', 'out/genes.gff'],
        ['annotate.rrna', 'out/rrna.gff'],
        ['sketch', 'out/sketch.msh'],
      ]) {
        expect(existsSync(join(store, sample, step, file)), `${sample}/${step}/${file}`).toBe(true);
        expect(
          JSON.parse(readFileSync(join(store, sample, step, '_strand.json'), 'utf8')).status,
        ).toBe('SUCCEEDED');
      }
    }
    expect(existsSync(join(store, '_all', 'distances.dist', 'out', 'distances.tsv'))).toBe(true);
  });

  it('the summary table: reads, contigs, N50, genes, rRNA and the nearest neighbour of each sample', () => {
    const [header, ...lines] = readFileSync(join(store, '_all', 'summary', 'summary.tsv'), 'utf8')
      .trim()
      .split('\n');
    expect(header).toBe(
      'sample\treads_in\treads_out\tcontigs\ttotal_length\tn50\tgenes\trrnas\tnearest\tdistance',
    );
    const table = Object.fromEntries(
      lines.map((l) => {
        const c = l.split('\t');
        return [
          c[0],
          {
            reads: +c[1],
            contigs: +c[3],
            length: +c[4],
            n50: +c[5],
            genes: +c[6],
            nearest: c[8],
            distance: +c[9],
          },
        ];
      }),
    );
    expect(Object.keys(table).sort()).toEqual(['ELS37', 'G27']);
    for (const s of Object.values(table)) {
      expect(s.reads).toBeGreaterThan(50_000);
      expect(s.length).toBeGreaterThan(1_400_000); // the genomes are ~1.65 Mb
      expect(s.length).toBeLessThan(1_800_000);
      expect(s.n50).toBeGreaterThan(10_000);
      expect(s.genes).toBeGreaterThan(1_300);
      expect(s.genes).toBeLessThan(1_800);
      expect(s.distance).toBeGreaterThan(0);
      expect(s.distance).toBeLessThan(0.1);
    }
    expect(table.G27.nearest).toBe('ELS37');
  });

  it('metrics land in typed columns of the results database', async () => {
    const metrics = async (step: string) =>
      (await resultsJson(
        home,
        '--pipeline',
        'microbe-genome',
        '--step',
        step,
        '--metrics',
      )) as Record<string, unknown>[];
    const qc = await metrics('qc');
    expect(qc).toHaveLength(3);
    for (const m of qc) expect(typeof m.summary_before_filtering_total_reads).toBe('number');
    expect(qc.find((m) => m.sample === 'BAD')?.summary_after_filtering_total_reads).toBe(0);
    const stats = await metrics('stats');
    expect(stats.map((s) => typeof s.n50)).toEqual(['number', 'number']);
  });

  it('--only annotate and --from sketch --to distances reuse the earlier outputs; nothing else runs', async () => {
    const jobs = () => attemptsIn(home).length;
    const before = jobs();
    const only = await strand(
      'run',
      PIPELINE,
      '--home',
      home,
      '--name',
      'only',
      '--only',
      'annotate',
      '--samples',
      'G27,ELS37',
      '--no-cache',
    );
    expect(only.code, only.err).toBe(0);
    expect((await rows('only')).map((r) => `${r.sample} ${r.step}`).sort()).toEqual([
      'ELS37 annotate.genes',
      'ELS37 annotate.rrna',
      'G27 annotate.genes',
      'G27 annotate.rrna',
    ]);
    expect(jobs()).toBe(before + 4);
    const slice = await strand(
      'run',
      PIPELINE,
      '--home',
      home,
      '--name',
      'slice',
      '--from',
      'sketch',
      '--to',
      'distances',
      '--samples',
      'G27,ELS37',
      '--no-cache',
    );
    expect(slice.code, slice.err).toBe(0);
    // The sketches and the distances over them: stats, annotate and summary are not on the way.
    expect((await rows('slice')).map((r) => r.step).sort()).toEqual([
      'distances.dist',
      'distances.paste',
      'sketch',
      'sketch',
    ]);
    expect(jobs()).toBe(before + 8);
  });

  it('without those outputs the slice stops before any job, naming what is missing', async () => {
    const fresh = join(dir, 'fresh-home');
    const r = await strand(
      'run',
      PIPELINE,
      '--home',
      fresh,
      '--only',
      'annotate',
      '--samples',
      'G27',
    );
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /step assemble of sample G27: out\/asm not in file:\/\/\S+; to make it: strand run \S+pipeline\.yaml --to assemble --samples G27/,
    );
    expect(existsSync(join(fresh, 'work'))).toBe(false);
  });
});

/** The summary table of a store, by sample. */
function summary(storeDir: string): Record<string, Record<string, string>> {
  const [header, ...lines] = readFileSync(join(storeDir, '_all', 'summary', 'summary.tsv'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split('\t'));
  return Object.fromEntries(
    lines.map((c) => [c[0], Object.fromEntries(header.map((h, i) => [h, c[i]]))]),
  );
}

describe.skipIf(!podmanReady)('microbe-genome in containers (podman)', () => {
  it('each step in its own image gives the same assemblies and genes as on the host', async () => {
    const built = await strand('images', 'build', PIPELINE);
    expect(built.code, built.err).toBe(0);
    const inContainers = join(dir, 'podman-store');
    const run = await strand(
      'run',
      PIPELINE,
      '--home',
      home,
      '--name',
      'in-podman',
      '--executor',
      'podman',
      '--samples',
      'G27,ELS37',
      '--store',
      inContainers,
    );
    expect(run.code, run.err).toBe(0);
    const host = summary(store);
    const podman = summary(join(inContainers, 'microbe-genome'));
    for (const sample of ['G27', 'ELS37']) {
      // The same contigs, base for base; megahit writes them in an order that varies from run
      // to run with two threads (on the host too), so they are compared as a set.
      const contigs = (root: string) =>
        readFileSync(join(root, sample, 'assemble/out/asm/final.contigs.fa'), 'utf8')
          .split(/^>.*$/m)
          .map((s) => s.replace(/\s/g, ''))
          .filter(Boolean)
          .sort();
      expect(contigs(join(inContainers, 'microbe-genome'))).toEqual(contigs(store));
      for (const column of ['reads_out', 'contigs', 'total_length', 'n50', 'rrnas'])
        expect(podman[sample][column], `${sample} ${column}`).toBe(host[sample][column]);
      // prodigal trains on the contigs in file order, so that order moves its count by a few
      // genes in 1,600 (seen between two runs on the host as well).
      const genes = [Number(podman[sample].genes), Number(host[sample].genes)];
      expect(
        Math.abs(genes[0] - genes[1]),
        `${sample} genes ${genes.join(' vs ')}`,
      ).toBeLessThanOrEqual(genes[1] * 0.005);
    }
    const ran = (await resultsJson(home, '--execution', 'in-podman', '--sample', 'G27')) as {
      step: string;
      executor: string;
      image: string;
    }[];
    expect(ran.find((r) => r.step === 'assemble')).toMatchObject({
      executor: 'podman',
      image: 'strand/megahit:1.2.9',
    });
  }, 900_000);
});

describe('microbe-genome: the engine killed mid-run', () => {
  it('strand resume finishes the run; no job ran twice', async () => {
    const work = mkdtempSync(join(tmpdir(), 'strand-genome-kill-'));
    cpSync(resolve('examples/microbe-genome'), work, { recursive: true });
    const prep = spawnSync(
      process.execPath,
      [
        'examples/microbe-genome/prepare.mjs',
        '--strains',
        'G27',
        '--coverage',
        '8',
        '--out',
        join(work, 'data'),
      ],
      { encoding: 'utf8' },
    );
    expect(prep.status, prep.stderr).toBe(0);
    const khome = join(work, 'home');
    const cli = ['--import', 'tsx', 'test/pipeline/strand-cli.mts'];
    const child = spawn(
      process.execPath,
      [...cli, 'run', join(work, 'pipeline.yaml'), '--home', khome, '--name', 'killed'],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // Kill it while megahit runs (the longest step).
    for (let i = 0; i < 1200 && !/started assemble/.test(err); i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(err).toMatch(/started assemble/);
    await new Promise((r) => setTimeout(r, 1000));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const resumed = spawnSync(process.execPath, [...cli, 'resume', '--home', khome], {
      encoding: 'utf8',
    });
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/killed: SUCCEEDED/);
    // One attempt per job: nothing was started twice.
    const attempts = attemptsIn(khome);
    expect(attempts.every((a) => a.endsWith('.1'))).toBe(true);
    expect(attempts.length).toBe(9); // 6 per-sample jobs + paste, dist, summary
    expect(
      existsSync(join(khome, 'store', 'microbe-genome', '_all', 'summary', 'summary.tsv')),
    ).toBe(true);
  }, 300_000);
});
