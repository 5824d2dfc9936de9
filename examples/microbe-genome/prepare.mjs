#!/usr/bin/env node
// Prepares the microbe-genome example: paired reads simulated with ART from the Helicobacter
// pylori genomes Debian ships (package ragout-examples), and the samples sheet data/samples.csv.
// Tools run as argv (no shell). Existing files are kept, so a second run is instant.
//
//   node examples/microbe-genome/prepare.mjs [--strains G27,ELS37] [--coverage 30] [--corrupt NAME]
//   node examples/microbe-genome/prepare.mjs --count 8   # more samples than strains: replicates (other seeds)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const REFERENCES = '/usr/share/doc/ragout/examples/H.Pylori/references';
const ALL = ['G27', 'ELS37', 'Gambia94_24', 'Puno120', 'SJM180'];
const PACKAGES = [
  'fastp',
  'megahit',
  'seqkit',
  'prodigal',
  'barrnap',
  'mash',
  'art-nextgen-simulation-tools',
  'ragout-examples',
];
const TOOLS = ['fastp', 'megahit', 'seqkit', 'prodigal', 'barrnap', 'mash', 'art_illumina'];

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) {
    process.stderr.write(
      `prepare: ${cmd} ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr}\n`,
    );
    process.exit(1);
  }
}

const missing = TOOLS.filter(
  (t) => spawnSync('sh', ['-c', 'command -v "$1"', 'sh', t]).status !== 0,
);
if (missing.length > 0 || !existsSync(REFERENCES)) {
  const line = `apt-get install -y ${PACKAGES.join(' ')}`;
  if (process.getuid?.() !== 0) {
    process.stderr.write(
      `prepare: missing ${missing.join(', ') || 'ragout-examples'}; run as root:\n  ${line}\n`,
    );
    process.exit(2);
  }
  process.stderr.write(`prepare: installing ${PACKAGES.join(' ')} (Debian packages)…\n`);
  const r = spawnSync('apt-get', ['install', '-y', '-q', ...PACKAGES], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status !== 0) {
    process.stderr.write(`prepare: apt-get failed; try: apt-get update && ${line}\n`);
    process.exit(1);
  }
}

const chosen = option('strains', ALL.join(',')).split(',');
const count = Number(option('count', String(chosen.length)));
// Sample i is strain i mod the chosen ones; past the first round, a replicate with another seed.
const strains = Array.from({ length: count }, (_, i) => chosen[i % chosen.length]);
const coverage = option('coverage', '30');
const out = option('out', join(HERE, 'data'));
const corrupt = option('corrupt', '');
mkdirSync(out, { recursive: true });
const rows = ['id,READS_1,READS_2'];
strains.forEach((strain, i) => {
  const round = Math.floor(i / chosen.length);
  const id = round === 0 ? strain : `${strain}-r${round + 1}`;
  if (!ALL.includes(strain)) {
    process.stderr.write(`prepare: unknown strain ${strain} (known: ${ALL.join(', ')})\n`);
    process.exit(2);
  }
  const seed = String(ALL.indexOf(strain) + 1 + 100 * round);
  const fasta = join(out, `${strain}.fa`);
  const prefix = join(out, `${id}_${coverage}x_`);
  if (!existsSync(fasta))
    run('seqkit', ['seq', '-o', fasta, join(REFERENCES, `${strain}.fasta.gz`)]);
  if (!existsSync(`${prefix}2.fq`)) {
    process.stderr.write(`prepare: simulating ${coverage}× paired 150 bp reads of ${id}…\n`);
    run('art_illumina', [
      '-ss',
      'HS25',
      '-p',
      '-l',
      '150',
      '-f',
      coverage,
      '-m',
      '300',
      '-s',
      '10',
      '-rs',
      seed,
      '-na',
      '-i',
      fasta,
      '-o',
      prefix,
    ]);
  }
  rows.push(`${id},${id}_${coverage}x_1.fq,${id}_${coverage}x_2.fq`);
});
if (corrupt) {
  // A sample whose reads are not FASTQ: its QC fails, the others go on.
  writeFileSync(join(out, `${corrupt}_1.fq`), 'this is not a FASTQ file\n');
  writeFileSync(join(out, `${corrupt}_2.fq`), 'neither is this\n');
  rows.push(`${corrupt},${corrupt}_1.fq,${corrupt}_2.fq`);
}
writeFileSync(join(out, 'samples.csv'), rows.join('\n') + '\n');
process.stdout.write(`${join(out, 'samples.csv')}: ${rows.length - 1} samples\n`);
