/** The `strand` command line. */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { EXIT_FAILED, EXIT_INPUT, EXIT_OK, InputError } from './errors.js';
import { registerBatchCommands } from './batch.js';
import { registerResourceCommands } from './batch-resources.js';
import { registerExecutionCommands } from './executions.js';
import { registerImagesCommands } from './images.js';
import { loadOrExplain, parseParams, registerPipelineCommands } from './pipeline.js';
import { PipelineError } from '../pipeline/errors.js';
import { readTextFile } from './input.js';
import { registerClean } from './clean.js';
import { registerCompletion } from './completion.js';
import { registerDeployCommands } from './deploy.js';
import { registerStageCommands } from './stage.js';
import { registerServerCommand } from '../server/command.js';
import { registerReportCommand } from '../report/command.js';
import { createLogUpdate } from 'log-update';
import type { Io } from './io.js';
import { colorWanted, errorPrefix, painter } from './color.js';
import { formatProblemAt, validateText } from '../asl/validate.js';

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/** The live table's renderer on standard error (log-update redraws it across resizes). */
const liveErr = createLogUpdate(process.stderr, { showCursor: true });

const defaultIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  isTTY: Boolean(process.stderr.isTTY),
  color: { out: colorWanted(process.stdout.isTTY), err: colorWanted(process.stderr.isTTY) },
  live: {
    render: (text) => liveErr(text),
    done: () => liveErr.done(),
    columns: () => process.stderr.columns || 80,
    rows: () => process.stderr.rows || 24,
  },
};

function buildProgram(io: Io, setExit: (code: number) => void): Command {
  const program = new Command('strand')
    .description(
      'Strand runs containerised pipelines as Amazon States Language state machines and AWS Batch ' +
        'jobs, on this machine or on AWS unchanged.',
    )
    .version(VERSION, '--version', 'print the version')
    .option('--debug', 'print stack traces for errors')
    .configureOutput({
      writeOut: io.out,
      writeErr: io.err,
      // Usage errors (`error: unknown option …`): the prefix in red on a terminal.
      outputError: (text, write) =>
        write(text.replace(/^error:/, errorPrefix(painter(io.color?.err)))),
    })
    .exitOverride()
    .showHelpAfterError('(run strand --help for usage)');

  program
    .command('validate')
    .description(
      'check a pipeline (pipeline.yaml) or a state machine definition (.asl.json) and report every\n' +
        'problem with its file, line and column (exit 2 when there are problems)',
    )
    .argument('<file>', 'the definition file')
    .option('--json', 'print the problems as JSON')
    .option('--samples <sheet|ids>', 'for a pipeline: check this samples sheet too')
    .option(
      '--param <name=value>',
      'for a pipeline: a parameter value (repeatable)',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .action((file: string, opts: { json?: boolean; samples?: string; param: string[] }) => {
      if (!/\.json$/i.test(file)) {
        let loaded: ReturnType<typeof loadOrExplain>;
        try {
          loaded = loadOrExplain(file, { samples: opts.samples, params: parseParams(opts.param) });
        } catch (err) {
          const cause = err instanceof InputError ? err.cause : undefined;
          if (!(opts.json && cause instanceof PipelineError)) throw err;
          io.out(JSON.stringify({ file, valid: false, problems: cause.problems }, null, 2) + '\n');
          setExit(EXIT_INPUT);
          return;
        }
        const { spec, samples } = loaded;
        const jobs = spec.steps.reduce((n, s) => n + s.jobs.length, 0);
        io.out(
          opts.json
            ? JSON.stringify({ file, valid: true, problems: [] }, null, 2) + '\n'
            : `${file}: valid (${spec.steps.length} steps, ${jobs} jobs, ${samples.length} samples)\n`,
        );
        setExit(EXIT_OK);
        return;
      }
      const { definition, problems } = validateText(
        readTextFile(file, 'the state machine definition'),
      );
      if (opts.json) {
        io.out(JSON.stringify({ file, valid: problems.length === 0, problems }, null, 2) + '\n');
      } else if (problems.length === 0) {
        const states = Object.keys((definition as { States?: object }).States ?? {}).length;
        io.out(`${file}: valid (${states} state${states === 1 ? '' : 's'} at the top level)\n`);
      } else {
        for (const p of problems) io.err(`${formatProblemAt(file, p)}\n`);
        io.err(
          `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}; nothing was run\n`,
        );
      }
      setExit(problems.length === 0 ? EXIT_OK : EXIT_INPUT);
    });

  registerPipelineCommands(program, io, setExit);
  registerReportCommand(program, io, setExit);
  registerExecutionCommands(program, io, setExit);
  registerResourceCommands(registerBatchCommands(program, io, setExit), io, setExit);
  registerImagesCommands(program, io, setExit);
  registerClean(program, io, setExit);
  registerDeployCommands(program, io, setExit);
  registerCompletion(program, io, setExit);
  registerStageCommands(program, io, setExit);
  registerServerCommand(program, io, setExit);

  return program;
}

/**
 * A reader that went away (`strand batch ls | head -5`) ends the command quietly, as it ends
 * other Unix tools: exit 0, nothing on stderr. Whatever runs stops where it is, as after a
 * kill (jobs go on; `strand resume` carries on).
 */
function quietOnClosedPipes(): void {
  for (const stream of [process.stdout, process.stderr])
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(EXIT_OK);
      throw err;
    });
}

/** Runs the CLI with `argv` (as process.argv) and returns the exit code. */
export async function run(argv: string[], io: Io = defaultIo): Promise<number> {
  if (io === defaultIo) quietOnClosedPipes();
  let code = EXIT_OK;
  const program = buildProgram(io, (c) => (code = c));
  const debug = argv.includes('--debug');
  const strand = errorPrefix(painter(io.color?.err), 'strand:');
  try {
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed by commander.
      return err.exitCode === 0 ? EXIT_OK : EXIT_INPUT;
    }
    if (err instanceof InputError) {
      io.err(`${strand} ${err.message}\n`);
      for (const d of err.details) io.err(`  ${d}\n`);
      if (debug && err.stack) io.err(err.stack + '\n');
      return EXIT_INPUT;
    }
    io.err(`${strand} ${err instanceof Error ? err.message : String(err)}\n`);
    if (debug && err instanceof Error && err.stack) io.err(err.stack + '\n');
    else io.err('(run again with --debug for the stack trace)\n');
    return EXIT_FAILED;
  }
}
