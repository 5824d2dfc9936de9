/** The `strand` command line. */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { runInMemory } from '../asl/run-in-memory.js';
import type { HistoryEvent } from '../asl/execution.js';
import { EXIT_FAILED, EXIT_INPUT, EXIT_OK, InputError } from './errors.js';
import { loadDefinition, parseInputOption, readTextFile } from './input.js';
import { formatProblemAt, validateText } from '../asl/validate.js';

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  isTTY: boolean;
}

const defaultIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  isTTY: Boolean(process.stderr.isTTY),
};

/**
 * Turns history events into progress lines: each state entered, with the Map iteration it
 * belongs to. Events chain through previousEventId, so an iteration's label follows its
 * events from the MapIterationStarted event on.
 */
function progressLines(): (event: HistoryEvent) => string | undefined {
  const labels = new Map<number, string>();
  // MapIterationStarted id → the label of the iteration it starts. The Map's own later events
  // chain from it too, so only the iteration's first state takes the new label.
  const iterations = new Map<number, string>();
  return (event) => {
    const parent = labels.get(event.previousEventId) ?? '';
    const iteration = iterations.get(event.previousEventId);
    const label =
      iteration !== undefined && event.type.endsWith('StateEntered') ? iteration : parent;
    if (event.type === 'MapIterationStarted') {
      const d = event.mapIterationStartedEventDetails as { name: string; index: number };
      iterations.set(event.id, `${label}${d.name}[${d.index}] `);
    }
    labels.set(event.id, label);
    if (!event.type.endsWith('StateEntered')) return undefined;
    const details = event.stateEnteredEventDetails as { name?: string } | undefined;
    return `${label}${details?.name ?? '?'} (${event.type.replace('StateEntered', '')})`;
  };
}

function buildProgram(io: Io, setExit: (code: number) => void): Command {
  const program = new Command('strand')
    .description(
      'Strand runs containerised pipelines as Amazon States Language state machines and AWS Batch ' +
        'jobs, on this machine or on AWS unchanged.',
    )
    .version(VERSION, '--version', 'print the version')
    .option('--debug', 'print stack traces for errors')
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .exitOverride()
    .showHelpAfterError('(run strand --help for usage)');

  program
    .command('validate')
    .description(
      'check a state machine definition (.asl.json) and report every problem with its location',
    )
    .argument('<file>', 'the definition file')
    .option('--json', 'print the problems as JSON')
    .action((file: string, opts: { json?: boolean }) => {
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

  program
    .command('start')
    .description(
      'run a state machine definition to completion and print its output\n' +
        '(exit 0 when it SUCCEEDED, 1 when it FAILED, TIMED_OUT or was ABORTED, 2 for bad input)',
    )
    .argument('<definition>', 'the state machine definition (.asl.json)')
    .option('--input <json>', 'execution input: inline JSON, or @file', '{}')
    .option(
      '--name <name>',
      'execution name',
      `execution-${new Date().toISOString().replace(/[:.]/g, '-')}`,
    )
    .option('--json', 'print the DescribeExecution-shaped result as JSON')
    .option('--quiet', 'do not show states as they are entered')
    .option(
      '--fast-clock',
      'run Wait states and retry backoffs on a virtual clock instead of waiting',
    )
    .action(
      async (
        file: string,
        opts: { input: string; name: string; json?: boolean; quiet?: boolean; fastClock?: boolean },
      ) => {
        const definition = loadDefinition(file);
        const input = parseInputOption(opts.input);
        const started = Date.now();
        const showProgress = !opts.quiet && !opts.json;
        const stateEntered = progressLines();
        const result = await runInMemory(definition, input, {
          executionName: opts.name,
          stateMachineName: file.replace(/^.*\//, '').replace(/\.asl\.json$|\.json$/, ''),
          clock: { now: () => Date.now() },
          sleep: opts.fastClock ? undefined : (ms) => new Promise((r) => setTimeout(r, ms)),
          random: Math.random,
          onEvent: showProgress
            ? (event) => {
                const line = stateEntered(event);
                if (line)
                  io.err(`  ${((Date.now() - started) / 1000).toFixed(2).padStart(6)}s  ${line}\n`);
              }
            : undefined,
        });
        const seconds = ((Date.now() - started) / 1000).toFixed(2);
        if (opts.json) {
          const describe: Record<string, unknown> = {
            name: opts.name,
            status: result.status,
            input: JSON.stringify(input),
            startDate: new Date(started).toISOString(),
            stopDate: new Date().toISOString(),
          };
          if (result.output !== undefined) describe.output = JSON.stringify(result.output);
          if (result.error !== undefined) describe.error = result.error;
          if (result.cause !== undefined) describe.cause = result.cause;
          io.out(JSON.stringify(describe, null, 2) + '\n');
        } else {
          io.err(
            `${opts.name}: ${result.status} in ${seconds}s, ${result.transitions} state transitions\n`,
          );
          if (result.status === 'SUCCEEDED') {
            io.out(JSON.stringify(result.output, null, 2) + '\n');
          } else {
            io.err(`error: ${result.error ?? '(none)'}\n`);
            if (result.cause) io.err(`cause: ${result.cause}\n`);
          }
        }
        setExit(result.status === 'SUCCEEDED' ? EXIT_OK : EXIT_FAILED);
      },
    );

  return program;
}

/** Runs the CLI with `argv` (as process.argv) and returns the exit code. */
export async function run(argv: string[], io: Io = defaultIo): Promise<number> {
  let code = EXIT_OK;
  const program = buildProgram(io, (c) => (code = c));
  const debug = argv.includes('--debug');
  try {
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed by commander.
      return err.exitCode === 0 ? EXIT_OK : EXIT_INPUT;
    }
    if (err instanceof InputError) {
      io.err(`strand: ${err.message}\n`);
      for (const d of err.details) io.err(`  ${d}\n`);
      if (debug && err.stack) io.err(err.stack + '\n');
      return EXIT_INPUT;
    }
    io.err(`strand: ${err instanceof Error ? err.message : String(err)}\n`);
    if (debug && err instanceof Error && err.stack) io.err(err.stack + '\n');
    else io.err('(run again with --debug for the stack trace)\n');
    return EXIT_FAILED;
  }
}
