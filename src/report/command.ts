/** `strand report EXECUTION`: a pipeline run as one self-contained HTML page (html.ts). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { knownName } from '../cli/names.js';
import { EXIT_OK, InputError } from '../cli/errors.js';
import { openEngine, strandHome } from '../cli/home.js';
import type { Io } from '../cli/io.js';
import type { Engine, ExecutionDescription } from '../engine/engine.js';
import { executionAttempts } from './attempts.js';
import { renderReport, reportData, type ReportData } from './html.js';
import type { ExecutionInfo } from './summary.js';

/** What a pipeline run's input says of it (`$.run` and the samples). */
interface RunInput {
  run?: { pipeline?: unknown };
  samples?: { id?: unknown }[];
}

function runInput(d: ExecutionDescription): RunInput {
  try {
    return JSON.parse(d.input ?? '{}') as RunInput;
  } catch {
    return {};
  }
}

/** The pipeline runs of the home (executions whose input names a pipeline), latest first. */
function pipelineRuns(engine: Engine): ExecutionDescription[] {
  return engine
    .listExecutions()
    .filter((d) => typeof runInput(d).run?.pipeline === 'string')
    .sort((a, b) => Date.parse(b.startDate) - Date.parse(a.startDate));
}

/**
 * The report's data for the pipeline run `name` (a name or an ARN): refused with exit 2 when
 * the home has no such run, naming the likely one.
 */
export function executionReport(engine: Engine, name: string, now = Date.now()): ReportData {
  const d = engine.findExecution(name);
  const input = d && runInput(d);
  if (!d || typeof input?.run?.pipeline !== 'string') {
    const runs = pipelineRuns(engine).map((r) => r.name);
    if (d)
      throw new InputError(
        `${name} is an execution of a state machine, not a pipeline run: strand report shows pipeline runs (strand executions history ${name} shows its events)`,
      );
    knownName('execution', name, runs, 'pipeline run', 'in this home');
    throw new InputError(`no pipeline run named "${name}" in this home`);
  }
  const description = d;
  const info: ExecutionInfo = {
    execution: description.name,
    pipeline: input!.run!.pipeline as string,
    status: description.status,
    startedAt: Date.parse(description.startDate),
    ...(description.stopDate ? { stoppedAt: Date.parse(description.stopDate) } : {}),
    samples: (input!.samples ?? []).flatMap((s) => (typeof s.id === 'string' ? [s.id] : [])),
    ...(description.error ? { error: description.error } : {}),
    ...(description.cause ? { cause: description.cause } : {}),
  };
  const attempts = executionAttempts(
    engine.listBatchJobs(),
    description.name,
    engine.getExecutionHistory(description.executionArn),
  );
  return reportData(info, attempts, now);
}

/** The default file of a run's report: `<execution>.report.html` here. */
export function defaultReportPath(execution: string): string {
  return `${execution.replace(/[/\\]/g, '_')}.report.html`;
}

/** Registers `strand report`. */
export function registerReportCommand(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
): void {
  program
    .command('report')
    .description(
      'write a pipeline run as one HTML page, complete in itself (nothing is fetched when it is\n' +
        'opened): a summary (status, times, samples, jobs run / cached / failed, CPU hours), a\n' +
        'timeline with a bar per job attempt, grouped by sample or by step (hover a bar for its CPU\n' +
        'time and peak memory), and each step’s use of CPU time, memory and vCPUs against what its\n' +
        'jobs were given (min / median / max across samples)',
    )
    .argument('<execution>', 'the pipeline run (its name, as `strand run` printed it)')
    .option('-o, --out <file>', 'where to write it (default: <execution>.report.html)')
    .option('--json', "print the report's data as JSON instead of writing the page")
    .option('--home <dir>', 'the Strand home directory')
    .addHelpText(
      'after',
      '\nPeak memory is measured by the local, container and SLURM executors (all of an attempt’s\n' +
        'processes together); AWS Batch does not report it. A run still going is reported as it\n' +
        'stands.\n\nExamples:\n  strand report word-count-2026-12-06T03-10-00-000Z\n' +
        '  strand report word-count-2026-12-06T03-10-00-000Z -o reports/today.html\n',
    )
    .action((execution: string, opts: { out?: string; json?: boolean; home?: string }) => {
      const engine = openEngine(strandHome(opts.home));
      let data: ReportData;
      try {
        data = executionReport(engine, execution);
      } finally {
        engine.close();
      }
      if (opts.json) {
        io.out(`${JSON.stringify(data, null, 2)}\n`);
        setExit(EXIT_OK);
        return;
      }
      const path = resolve(opts.out ?? defaultReportPath(data.execution.execution));
      try {
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, renderReport(data));
      } catch (err) {
        throw new InputError(
          `-o ${opts.out ?? path}: cannot write the report: ${(err as Error).message}`,
        );
      }
      const s = data.summary;
      io.out(`${path}\n`);
      io.err(
        `${data.execution.execution}: ${data.execution.status}, ${s.jobs} job(s) (${s.ran} ran, ${s.cached} cached, ${s.failed} failed), ${s.attempts} attempt(s)\n`,
      );
      setExit(EXIT_OK);
    });
}
