/**
 * `strand clean`: removes the working directories, logs and pid files the jobs of finished
 * executions left under `<home>/work`, and the inputs fetched for them from a remote store
 * (`<home>/staged/<jobId>`, see pipelineFetchInputs). Their outputs and logs are in the store (the stage-out put
 * them there), and their records stay in strand.db. Executions that `strand redrive` may still
 * carry on (FAILED, ABORTED, TIMED_OUT) keep theirs unless `--all`, so `strand logs` can still
 * show why they failed; running ones are never touched.
 */
import { existsSync, lstatSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { ExecutionDescription } from '../engine/engine.js';
import { attemptEntries } from '../executors/executor.js';
import { formatSize } from '../images/images.js';
import { TAG } from '../pipeline/contract.js';
import { EXIT_OK } from './errors.js';
import { openEngine, strandHome } from './home.js';
import type { Io } from './io.js';
import { knownName } from './names.js';
import { formatTable } from './table.js';

/** Bytes below a path (its files; a directory's entries, walked without following links). */
function sizeOf(path: string): number {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const name of readdirSync(path)) total += sizeOf(join(path, name));
  return total;
}

const REDRIVABLE: ExecutionDescription['status'][] = ['FAILED', 'ABORTED', 'TIMED_OUT'];

export function registerClean(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('clean')
    .description(
      "remove what finished executions' jobs left in <home>/work (working directories, logs, pid\n" +
        'files) and the inputs fetched for them into <home>/staged; their outputs and logs stay in the store, their records in the home. Without\n' +
        '--all, executions `strand redrive` could carry on (FAILED, ABORTED, TIMED_OUT) are kept;\n' +
        'running ones always are',
    )
    .argument('[execution...]', 'only these executions (default: every finished one)')
    .option('--all', 'also remove those of FAILED, ABORTED and TIMED_OUT executions')
    .option('--dry-run', 'list what would be removed, and its size; remove nothing')
    .option('--home <dir>', 'the Strand home directory')
    .action((names: string[], opts: { all?: boolean; dryRun?: boolean; home?: string }): void => {
      const home = strandHome(opts.home);
      const engine = openEngine(home);
      try {
        const executions = engine.listExecutions();
        for (const name of names)
          knownName(
            'execution',
            name,
            executions.map((e) => e.name),
            'execution',
          );
        const chosen = executions.filter(
          (e) =>
            (names.length === 0 || names.includes(e.name)) &&
            e.status !== 'RUNNING' &&
            (opts.all || !REDRIVABLE.includes(e.status)),
        );
        const wanted = new Set(chosen.map((e) => e.name));
        const kept = executions.filter(
          (e) => (names.length === 0 || names.includes(e.name)) && !wanted.has(e.name),
        );
        const entries = new Map<string, string[]>();
        for (const job of engine.listBatchJobs()) {
          const execution = job.tags?.[TAG.execution];
          if (!execution || !wanted.has(execution)) continue;
          // A job still going (a stop that has not ended it yet) keeps its files.
          if (job.status !== 'SUCCEEDED' && job.status !== 'FAILED') continue;
          const list = entries.get(execution) ?? [];
          for (const attempt of job.attempts)
            list.push(...attemptEntries(attempt.container.logStreamName ?? ''));
          // Inputs of an s3:// store fetched for a job that ran on this machine.
          const staged = join(home, 'staged', job.jobId);
          if (existsSync(staged)) list.push(staged);
          entries.set(execution, list);
        }
        let total = 0;
        let count = 0;
        // What is (or would be) removed, by execution, listed before anything goes.
        const rows = [...entries]
          .filter(([, list]) => list.length > 0)
          .map(([execution, list]) => {
            const bytes = list.reduce((sum, p) => sum + sizeOf(p), 0);
            total += bytes;
            count += list.length;
            return { execution, entries: list.length, size: formatSize(bytes), list };
          });
        if (rows.length > 0)
          io.out(formatTable(rows, ['execution', 'entries', { key: 'size', align: 'right' }]));
        if (!opts.dryRun)
          for (const { list } of rows)
            for (const p of list) rmSync(p, { recursive: true, force: true });
        io.err(
          `${opts.dryRun ? 'would free' : 'freed'} ${formatSize(total)} (${count} entries)` +
            (kept.length > 0
              ? `; kept ${kept.length} execution(s) ${opts.all ? 'still running' : 'that are running or could be redriven (--all removes those that are not running)'}`
              : '') +
            '\n',
        );
        setExit(EXIT_OK);
      } finally {
        engine.close();
      }
    });
}
