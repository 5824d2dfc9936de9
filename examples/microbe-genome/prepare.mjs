#!/usr/bin/env node
// Prepares the microbe-genome example: paired reads simulated with ART from the Helicobacter
// pylori genomes Debian ships (package ragout-examples), and the samples sheet data/samples.csv.
// Tools run as argv (no shell). Existing files are kept, so a second run is instant.
//
//   node examples/microbe-genome/prepare.mjs --help
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

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

const USAGE = `Usage: node examples/microbe-genome/prepare.mjs [options]

Simulates paired 150 bp Illumina reads (ART, fixed seeds) from the Helicobacter pylori genomes
of Debian's ragout-examples and writes the samples sheet. Files already there are kept.

Options:
  --strains LIST    comma-separated strains (default: all five: ${ALL.join(',')})
  --coverage N      read coverage, e.g. 10 or 30 (default 30)
  --count N         number of samples; past the strains, replicates with other seeds
  --corrupt NAME    add a sample NAME whose reads are not FASTQ (it fails; the others go on)
  --out DIR         where reads and samples.csv go (default: data/ next to this script)
  -h, --help        this help
`;

let opts;
try {
  opts = parseArgs({
    options: {
      strains: { type: 'string', default: ALL.join(',') },
      coverage: { type: 'string', default: '30' },
      count: { type: 'string' },
      corrupt: { type: 'string', default: '' },
      out: { type: 'string', default: join(HERE, 'data') },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
} catch (e) {
  process.stderr.write(`prepare: ${e.message}\n\n${USAGE}`);
  process.exit(2);
}
if (opts.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
function bad(message) {
  process.stderr.write(`prepare: ${message}\n`);
  process.exit(2);
}
const chosen = opts.strains.split(',');
for (const strain of chosen)
  if (!ALL.includes(strain))
    bad(`--strains: unknown strain "${strain}" (known: ${ALL.join(', ')})`);
const count = Number(opts.count ?? chosen.length);
if (!Number.isInteger(count) || count < 1)
  bad(`--count: "${opts.count}" is not a whole number ≥ 1`);
const coverage = opts.coverage;
if (!/^[1-9][0-9]*$/.test(coverage)) bad(`--coverage: "${coverage}" is not a whole number ≥ 1`);
const corrupt = opts.corrupt;
if (corrupt && !/^[A-Za-z0-9_.-]+$/.test(corrupt))
  bad(`--corrupt: "${corrupt}" is not a sample id (letters, digits, _ . -)`);
const out = opts.out;

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

// Sample i is strain i mod the chosen ones; past the first round, a replicate with another seed.
const strains = Array.from({ length: count }, (_, i) => chosen[i % chosen.length]);
mkdirSync(out, { recursive: true });
const rows = ['id,READS_1,READS_2'];
strains.forEach((strain, i) => {
  const round = Math.floor(i / chosen.length);
  const id = round === 0 ? strain : `${strain}-r${round + 1}`;
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
  // A sample whose reads are not FASTQ: fastp lets them through, assembly fails; the others go on.
  writeFileSync(join(out, `${corrupt}_1.fq`), 'this is not a FASTQ file\n');
  writeFileSync(join(out, `${corrupt}_2.fq`), 'neither is this\n');
  rows.push(`${corrupt},${corrupt}_1.fq,${corrupt}_2.fq`);
}
writeFileSync(join(out, 'samples.csv'), rows.join('\n') + '\n');
process.stdout.write(`${join(out, 'samples.csv')}: ${rows.length - 1} samples\n`);
