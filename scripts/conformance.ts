/**
 * `npm run -s conformance -- <dir> [--filter TEXT] [--verbose] [--timeout MS]`: runs every ASL conformance
 * case in a directory, prints a pass count per category and, as its last line, one JSON
 * object {"total":N,"passed":P,"failed":[…]}. Exit 0 only if every case passed.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCases, loadExceptions, runConformance } from './lib/conformance.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');

function usage(message?: string): never {
  if (message) process.stderr.write(`conformance: ${message}\n`);
  process.stderr.write(
    'usage: npm run -s conformance -- <corpus dir> [--filter TEXT] [--verbose] [--timeout MS]\n',
  );
  process.exit(2);
}

const args = process.argv.slice(2);
let dir: string | undefined;
let filter = '';
let verbose = false;
let timeoutMs = 5000;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--filter') filter = args[++i] ?? usage('--filter needs a value');
  else if (a === '--verbose' || a === '-v') verbose = true;
  else if (a === '--timeout') {
    timeoutMs = Number(args[++i]);
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) usage('--timeout needs milliseconds');
  } else if (a === '--help' || a === '-h') usage();
  else if (a.startsWith('-')) usage(`unknown option ${a}`);
  else dir = a;
}
if (!dir) usage('give the corpus directory, e.g. ../shared/asl-corpus/open');
if (!existsSync(dir)) usage(`${dir}: no such directory`);

const exceptions = loadExceptions(join(repo, 'conformance', 'exceptions.json'));
const cases = loadCases(dir).filter((c) => c.name.includes(filter));
if (cases.length === 0) usage(`no cases in ${dir}${filter ? ` matching "${filter}"` : ''}`);
const started = performance.now();
const summary = await runConformance(cases, exceptions, { timeoutMs });
const seconds = ((performance.now() - started) / 1000).toFixed(1);

const byCategory = new Map<string, { passed: number; total: number }>();
const excepted = new Map(exceptions.map((x) => [x.name, x.reason]));
for (const r of summary.results) {
  const c = byCategory.get(r.category) ?? { passed: 0, total: 0 };
  c.total++;
  if (r.passed && !excepted.has(r.name)) c.passed++;
  byCategory.set(r.category, c);
}
const width = Math.max(...[...byCategory.keys()].map((k) => k.length));
for (const [category, c] of [...byCategory].sort()) {
  process.stdout.write(`${category.padEnd(width)}  ${String(c.passed).padStart(4)}/${c.total}\n`);
}
const failures = summary.results.filter((r) => !r.passed && !excepted.has(r.name));
if (failures.length > 0) {
  process.stdout.write(`\n${failures.length} failing:\n`);
  for (const r of verbose || failures.length <= 20 ? failures : failures.slice(0, 20)) {
    process.stdout.write(`  ${r.name}\n    ${r.diff}\n`);
  }
  if (!verbose && failures.length > 20)
    process.stdout.write(`  … ${failures.length - 20} more (--verbose)\n`);
}
const listed = summary.results.filter((r) => excepted.has(r.name));
if (listed.length > 0) {
  process.stdout.write(
    `\n${listed.length} listed in conformance/exceptions.json (counted as failed):\n`,
  );
  for (const r of listed) {
    process.stdout.write(
      `  ${r.name}${r.passed ? ' (now passes: remove it from the list)' : ''}\n    why listed: ${excepted.get(r.name)}\n`,
    );
    if (verbose && r.diff) process.stdout.write(`    result: ${r.diff}\n`);
  }
}
process.stdout.write(`\n${summary.passed}/${summary.total} passed in ${seconds}s\n`);
process.stdout.write(
  JSON.stringify({ total: summary.total, passed: summary.passed, failed: summary.failed }) + '\n',
);
process.exitCode = summary.failed.length === 0 ? 0 : 1;
