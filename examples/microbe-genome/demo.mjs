#!/usr/bin/env node
// `npm run demo`: prepares the five H. pylori samples (installing the Debian packages when
// missing and running as root), runs the microbe-genome pipeline with live progress, then shows
// the summary table and where to look next. A second run is served from the cache.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const node = (args) => spawnSync(process.execPath, args, { stdio: 'inherit', cwd: ROOT });

const prepared = node([join(HERE, 'prepare.mjs')]);
if (prepared.status !== 0) process.exit(prepared.status ?? 1);

const pipeline = relative(ROOT, join(HERE, 'pipeline.yaml'));
const run = node(['bin/strand.js', 'run', pipeline]);
const home = process.env.STRAND_HOME ?? join(ROOT, '.strand');
const summary = join(home, 'store', 'microbe-genome', '_all', 'summary', 'summary.tsv');
if (existsSync(summary)) {
  const rows = readFileSync(summary, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split('\t'));
  // The CLI's own table formatter (built by npm ci, as bin/strand.js is): the demo's table
  // looks like every table `strand` prints, numbers right-aligned. A build older than it: the
  // TSV as it is.
  const formatter = join(ROOT, 'dist', 'cli', 'table.js');
  const { formatTable } = existsSync(formatter)
    ? await import(pathToFileURL(formatter).href)
    : { formatTable: () => readFileSync(summary, 'utf8') };
  const [header, ...cells] = rows;
  const numeric = (i) => cells.every((r) => /^-?\d+(\.\d+)?(e-?\d+)?$/i.test(r[i] ?? ''));
  const table = formatTable(
    cells.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]]))),
    header.map((key, i) => ({ key, align: numeric(i) ? 'right' : 'left' })),
  );
  process.stdout.write('\nSummary (one row per sample):\n' + table.replace(/^(?=.)/gm, '  '));
}
process.stdout.write(`
Outputs:  ${join(home, 'store', 'microbe-genome')}/{sample}/{step}/ (each with a _strand.json manifest)
Next:
  node bin/strand.js results --pipeline microbe-genome                 # a row per sample × step
  node bin/strand.js results --pipeline microbe-genome --step stats --metrics
  node bin/strand.js status                                            # runs, and their logs: strand logs <execution>
  node bin/strand.js run ${pipeline} --only annotate --no-cache   # one step on earlier outputs
  node bin/strand.js run ${pipeline} --from sketch --to distances --samples G27,ELS37
  npm run demo                                                          # again: served from the cache
`);
process.exit(run.status ?? 1);
