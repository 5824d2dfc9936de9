/** `strand start`, `strand resume` and `strand executions …`: the execution API on the command line. */
import type { Command } from 'commander';
import { historyEventForApi, type HistoryEvent } from '../asl/execution.js';
import type { Json } from '../asl/types.js';
import { runInMemory, type TaskHandler } from '../asl/run-in-memory.js';
import { mockedAnswer, type MockCase } from '../asl/mock-config.js';
import { StatesError } from '../asl/errors.js';
import { EngineInputError, type Engine, type ExecutionDescription } from '../engine/engine.js';
import { askOwner, ownedByLiveEngine, RequestFailedError } from '../engine/control.js';
import type { StateMachineResolver } from '../engine/states-integration.js';
import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { LambdaFunction } from '../engine/integrations.js';
import { EXIT_FAILED, EXIT_OK, InputError } from './errors.js';
import { loadDefinition, loadMockCase, parseInputOption, parseJsonArg } from './input.js';
import type { Io } from './io.js';
import {
  resultsOf,
  openEngine,
  openScheduler,
  openSchedulerIfFree,
  openStrandScheduler,
  strandHome,
} from './home.js';
import { followPipeline, followRemote, pipelineRunOf, type EventHook } from './pipeline.js';
import { ERROR, STATE } from '../pipeline/contract.js';
import { formatDetails, formatTable } from './table.js';
import { errorPrefix, painter, status, statusColumns } from './color.js';

/**
 * Turns history events into progress lines: each state entered, with the Map iteration it
 * belongs to. Events chain through previousEventId, so an iteration's label follows its
 * events from the MapIterationStarted event on.
 */
export function progressLines(): (event: HistoryEvent) => string | undefined {
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

/** Waits, reading the home, until an execution another process runs has ended. */
async function waitRemote(home: string, name: string): Promise<ExecutionDescription> {
  for (;;) {
    const reader = openEngine(home);
    try {
      const d = reader.describeExecution(name);
      if (d.status !== 'RUNNING') return d;
      if (!ownedByLiveEngine(reader.store)) {
        // Its engine went away: carry it on here.
        const own = openSchedulerIfFree(home);
        if (own)
          try {
            return await own.engine.waitForExecution(name);
          } finally {
            own.engine.close();
          }
      }
    } finally {
      reader.close();
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A request the owner refused is bad input, as the same call made here would have been. */
function requestRefused(err: unknown): never {
  if (err instanceof RequestFailedError) throw new InputError(err.message, err.details);
  throw err;
}

async function engineCall<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof EngineInputError) throw new InputError(err.message, err.details);
    throw err;
  }
}

/** A `NAME=FILE` option value whose file exists, as [NAME, FILE]; bad input otherwise. */
function nameAndFile(flag: string, value: string, what: string, example: string): [string, string] {
  const eq = value.indexOf('=');
  if (eq <= 0 || eq === value.length - 1)
    throw new InputError(`${flag} ${value}: write NAME=${what} (e.g. ${example})`);
  const path = value.slice(eq + 1);
  if (!existsSync(path)) throw new InputError(`${flag} ${value}: no file ${resolve(path)}`);
  return [value.slice(0, eq), path];
}

/**
 * Where `strand start FILE`'s states:startExecution tasks find the state machines they name:
 * `--state-machine NAME=FILE`, else NAME.asl.json (or NAME.json) beside FILE.
 */
function stateMachineFiles(file: string, given: string[]): StateMachineResolver {
  const named = new Map<string, string>();
  for (const g of given) {
    const [name, path] = nameAndFile('--state-machine', g, 'FILE', 'child=child.asl.json');
    named.set(name, path);
  }
  const dir = dirname(file);
  return (name) => {
    const path =
      named.get(name) ??
      [`${name}.asl.json`, `${name}.json`].map((f) => join(dir, f)).find((f) => existsSync(f));
    return path === undefined ? undefined : { name, definition: loadDefinition(path) };
  };
}

/**
 * `--lambda NAME=MODULE`: each module loaded now (a module that does not load, or exports no
 * `handler` function, is bad input), its handler called as AWS Lambda calls it, `(event,
 * context)`; what it throws fails the task with the error's name, as Lambda reports it.
 */
async function lambdaModules(given: string[]): Promise<Map<string, LambdaFunction>> {
  const out = new Map<string, LambdaFunction>();
  for (const g of given) {
    const [name, file] = nameAndFile('--lambda', g, 'MODULE', 'check=./check.mjs');
    const path = resolve(file);
    let mod: { handler?: unknown };
    try {
      mod = (await import(pathToFileURL(path).href)) as { handler?: unknown };
    } catch (err) {
      throw new InputError(`--lambda ${g}: the module does not load: ${(err as Error).message}`);
    }
    const handler = mod.handler;
    if (typeof handler !== 'function')
      throw new InputError(`--lambda ${g}: the module exports no \`handler\` function`);
    out.set(name, (payload, ctx) =>
      (handler as (e: unknown, c: unknown) => Json | Promise<Json>)(payload, {
        functionName: ctx.functionName,
        awsRequestId: randomUUID(),
      }),
    );
  }
  return out;
}

/** `--in-memory` with a mock case: mocked states answer, any other task fails naming its state. */
function mockedTasks(mock: MockCase): TaskHandler {
  return (request) => {
    const answer = mockedAnswer(mock, request.stateName, request.attempt);
    if (answer === undefined)
      throw new StatesError(
        'States.Runtime',
        `state "${request.stateName}" is not mocked in test case "${mock.testCase}", and --in-memory calls no service`,
        false,
      );
    if ('Return' in answer) return answer.Return;
    if ('Throw' in answer) throw new StatesError(answer.Throw.Error, answer.Throw.Cause, false);
    throw new StatesError('States.Runtime', answer.missing, false);
  };
}

function seconds(d: ExecutionDescription): string {
  const stop = d.stopDate ? Date.parse(d.stopDate) : Date.now();
  return ((stop - Date.parse(d.startDate)) / 1000).toFixed(2);
}

/** Prints an execution's outcome: JSON (DescribeExecution shape) or a headline and the output. */
function report(io: Io, d: ExecutionDescription, json: boolean | undefined): number {
  if (json) {
    io.out(JSON.stringify(d, null, 2) + '\n');
  } else {
    const paint = painter(io.color?.err);
    io.err(`${d.name}: ${status(paint, d.status)} in ${seconds(d)}s\n`);
    if (d.status === 'SUCCEEDED') {
      io.out(JSON.stringify(JSON.parse(d.output ?? 'null'), null, 2) + '\n');
    } else if (d.status !== 'RUNNING') {
      io.err(`${errorPrefix(paint)} ${d.error ?? '(none)'}\n`);
      if (d.cause) io.err(`cause: ${d.cause}\n`);
    }
  }
  return d.status === 'SUCCEEDED' || d.status === 'RUNNING' ? EXIT_OK : EXIT_FAILED;
}

/** `--results` and `--profile`: where the pipeline functions of an execution record results. */
function resultsOptions(command: Command): Command {
  return command
    .option(
      '--results <url>',
      "where results are recorded: a file path, sqlite://PATH or postgres://… (default: the profile's, then <home>/config.yaml's, then <home>/results.db)",
    )
    .option('--profile <name>', 'a profile of <home>/config.yaml (its results)');
}

/** The sinks an engine of these commands opens with. */
function sinksOf(
  home: string,
  opts: { results?: string; profile?: string; store?: string },
): { results?: string; store?: string } {
  const results = resultsOf(home, opts).url;
  return {
    ...(results === undefined ? {} : { results }),
    ...(opts.store === undefined ? {} : { store: opts.store }),
  };
}

interface StartOptions {
  input: string;
  name?: string;
  json?: boolean;
  quiet?: boolean;
  detach?: boolean;
  inMemory?: boolean;
  home?: string;
  stateMachine?: string[];
  lambda?: string[];
  mockConfig?: string;
  mockCase?: string;
  stateMachineName?: string;
  results?: string;
  profile?: string;
  store?: string;
}

export function registerExecutionCommands(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
): void {
  resultsOptions(program.command('start'))
    .description(
      'start an execution of a state machine definition and follow it to the end, printing its output\n' +
        '(exit 0 when it SUCCEEDED, 1 when it FAILED, TIMED_OUT or was ABORTED, 2 for bad input).\n' +
        'Executions are recorded in the Strand home (--home, $STRAND_HOME or ./.strand) and survive a crash:\n' +
        '`strand resume` carries on any that were interrupted.',
    )
    .argument('<definition>', 'the state machine definition (.asl.json)')
    .option('--input <json>', 'execution input: inline JSON, or @file', '{}')
    .option(
      '--name <name>',
      'execution name (default: derived from the file and the time); starting the same name again with the same input returns that execution',
    )
    .option('--json', 'print the DescribeExecution-shaped result as JSON')
    .option('--quiet', 'do not show states as they are entered')
    .option('--detach', 'start the execution and return at once; `strand resume` follows it')
    .option(
      '--in-memory',
      'run in memory on a virtual clock (Wait states do not wait); nothing is recorded',
    )
    .option(
      '--state-machine <name=file>',
      'a state machine its states:startExecution tasks may start (repeatable; NAME.asl.json beside the definition is found without it)',
      (value: string, all: string[] = []) => [...all, value],
    )
    .option(
      '--lambda <name=module>',
      'a Lambda function as a local JavaScript module exporting `handler(event, context)` (repeatable)',
      (value: string, all: string[] = []) => [...all, value],
    )
    .option(
      '--mock-config <file>',
      "mocked service responses in AWS Step Functions Local's MockConfigFile.json format (default $SFN_MOCK_CONFIG)",
    )
    .option(
      '--mock-case <name>',
      'the test case of the mock configuration to run: its mocked states call no service, the others run for real',
    )
    .option(
      '--state-machine-name <name>',
      "the state machine's name (in ARNs and in the mock configuration; default: the file name without .asl.json)",
    )
    .option(
      '--store <url>',
      "the object store Map states' ItemReader and ResultWriter use (a directory, file:// or s3://; default: the home's)",
    )
    .option('--home <dir>', 'the Strand home directory')
    .action(async (file: string, opts: StartOptions) => {
      const definition = loadDefinition(file);
      const smName =
        opts.stateMachineName ?? file.replace(/^.*\//, '').replace(/\.asl\.json$|\.json$/, '');
      const mock = loadMockCase(opts, smName, definition);
      const stateMachines = stateMachineFiles(file, opts.stateMachine ?? []);
      const functions = await lambdaModules(opts.lambda ?? []);
      const input = parseInputOption(opts.input);
      const name = opts.name ?? `${smName}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      const started = Date.now();
      const lines = progressLines();
      const show = !opts.quiet && !opts.json && !opts.detach;
      const onEvent = (event: HistoryEvent) => {
        const line = lines(event);
        if (line) io.err(`  ${((Date.now() - started) / 1000).toFixed(2).padStart(6)}s  ${line}\n`);
      };
      if (opts.inMemory) {
        const r = await runInMemory(definition, input, {
          executionName: name,
          stateMachineName: smName,
          tasks: mock && mockedTasks(mock),
          random: Math.random,
          onEvent: show ? onEvent : undefined,
        });
        const d: ExecutionDescription = {
          executionArn: `arn:aws:states:local:000000000000:execution:${smName}:${name}`,
          stateMachineArn: `arn:aws:states:local:000000000000:stateMachine:${smName}`,
          name,
          status: r.status,
          input: JSON.stringify(input),
          startDate: new Date(started).toISOString(),
          stopDate: new Date().toISOString(),
          redriveCount: 0,
        };
        if (r.output !== undefined) d.output = JSON.stringify(r.output);
        if (r.error !== undefined) d.error = r.error;
        if (r.cause !== undefined) d.cause = r.cause;
        setExit(report(io, d, opts.json));
        return;
      }
      const home = strandHome(opts.home);
      const engine = await openScheduler(
        io,
        home,
        show ? (_arn, e) => onEvent(e) : undefined,
        sinksOf(home, opts),
      );
      engine.stateMachines = stateMachines;
      for (const [fn, handler] of functions) engine.registerFunction(fn, handler);
      try {
        const d = await engineCall(() =>
          engine.startExecution({ definition, input, name, stateMachineName: smName, mock }),
        );
        if (opts.detach) {
          io.out(
            opts.json
              ? JSON.stringify(d, null, 2) + '\n'
              : `${d.name}: ${status(painter(io.color?.out), d.status)}; \`strand resume\` carries it on\n`,
          );
          setExit(EXIT_OK);
          return;
        }
        setExit(report(io, await engine.waitForExecution(d.executionArn), opts.json));
      } finally {
        engine.close();
      }
    });

  resultsOptions(program.command('resume'))
    .description(
      'carry on every unfinished execution in the Strand home and wait for them to end (exit 1 if any did not succeed)',
    )
    .option('--home <dir>', 'the Strand home directory')
    .option('--json', 'print the results as JSON')
    .action(async (opts: { home?: string; json?: boolean; results?: string; profile?: string }) => {
      const home = strandHome(opts.home);
      const engine = await openScheduler(io, home, undefined, sinksOf(home, opts));
      try {
        const running = engine.listExecutions('RUNNING');
        // Batch jobs submitted on their own (strand batch submit --detach) carry on too.
        const jobs = (['SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING'] as const).flatMap(
          (jobStatus) => engine.batch!.listJobs({ jobStatus }),
        );
        if (running.length === 0 && jobs.length === 0 && !opts.json) {
          io.err('nothing to resume: no execution or job is unfinished\n');
        }
        const jobsDone = Promise.all(
          jobs.map(
            (j) => new Promise<void>((resolve) => engine.batch!.onceDone(j.jobId, () => resolve())),
          ),
        );
        const results = await Promise.all(
          running.map((d) => engine.waitForExecution(d.executionArn)),
        );
        await jobsDone;
        if (opts.json) io.out(JSON.stringify(results, null, 2) + '\n');
        else
          for (const d of results)
            io.err(
              `${d.name}: ${status(painter(io.color?.err), d.status)}${d.error ? ` (${d.error})` : ''}\n`,
            );
        setExit(results.every((d) => d.status === 'SUCCEEDED') ? EXIT_OK : EXIT_FAILED);
      } finally {
        engine.close();
      }
    });

  resultsOptions(program.command('redrive'))
    .description(
      'carry on a FAILED, ABORTED or TIMED_OUT execution from where it stopped (RedriveExecution): states, Map iterations and Parallel branches that succeeded, at any depth, are not run again; then follow it',
    )
    .argument('<name>', 'execution name or ARN')
    .option('--home <dir>', 'the Strand home directory')
    .option(
      '--json',
      'print JSON: the DescribeExecution-shaped result; for a pipeline run, one event per line as `strand run --json` does',
    )
    .action(
      async (
        name: string,
        opts: { home?: string; json?: boolean; results?: string; profile?: string },
      ) => {
        const home = strandHome(opts.home);
        const sinks = sinksOf(home, opts);
        const hook: EventHook = {};
        let own = openSchedulerIfFree(home, (arn, e) => hook.onEvent?.(arn, e), sinks.results);
        if (!own) {
          // Another engine owns the home: it carries the execution on, and this process follows.
          const reader = openEngine(home);
          let before: ExecutionDescription;
          let pipeline: ReturnType<typeof pipelineRunOf>;
          try {
            before = await engineCall(() => reader.describeExecution(name));
            pipeline = pipelineRunOf(reader, name);
          } finally {
            reader.close();
          }
          const outcome = await askOwner(
            home,
            'RedriveExecution',
            { name, ...(before.error === ERROR.samplesFailed ? { fromState: STATE.samples } : {}) },
            {
              onWait: (h) =>
                opts.json ||
                io.err(
                  `handing the redrive to the Strand engine that owns ${home} (pid ${h.pid} on ${h.host})\n`,
                ),
            },
          ).catch(requestRefused);
          if (outcome.served) {
            if (pipeline) {
              if (!opts.json) io.err(`${before.name}: carrying on ${pipeline.pipeline}\n`);
              setExit(
                await followRemote(io, home, {
                  ...pipeline,
                  execution: before.name,
                  json: Boolean(opts.json),
                }),
              );
            } else setExit(report(io, await waitRemote(home, before.name), opts.json));
            return;
          }
          own = await openStrandScheduler(io, home, (arn, e) => hook.onEvent?.(arn, e), sinks);
        }
        const { engine } = own;
        try {
          const before = await engineCall(() => engine.describeExecution(name));
          // A pipeline whose samples failed ended in its final Fail state, after the Map that
          // tolerated the failures: carry it on from the Map (finished jobs are cache hits).
          const redrive = () =>
            engineCall(() =>
              engine.redriveExecution(
                name,
                before.error === ERROR.samplesFailed ? { fromState: STATE.samples } : {},
              ),
            );
          const pipeline = pipelineRunOf(engine, name);
          if (pipeline) {
            // Followed as `strand run` follows a run: progress, then outputs and results.
            if (!opts.json) io.err(`${before.name}: carrying on ${pipeline.pipeline}\n`);
            setExit(
              await followPipeline(io, engine, hook, {
                ...pipeline,
                execution: before.name,
                json: Boolean(opts.json),
                begin: async () => void (await redrive()),
              }),
            );
            return;
          }
          const d = await redrive();
          setExit(report(io, await engine.waitForExecution(d.executionArn), opts.json));
        } finally {
          engine.close();
        }
      },
    );

  program
    .command('stop')
    .description(
      'stop a running execution (StopExecution) and terminate its running jobs (SIGTERM, then SIGKILL\n' +
        'after the grace period); returns once it is ABORTED and its jobs have ended. Works while\n' +
        'another process (its `strand run`) owns the home. `strand redrive` can carry it on.',
    )
    .argument('<name>', 'execution name or ARN')
    .option('--error <code>', 'error recorded for the stop', 'Strand.Stopped')
    .option('--cause <text>', 'cause recorded for the stop', 'stopped from the command line')
    .option('--home <dir>', 'the Strand home directory')
    .option('--json', 'print the DescribeExecution-shaped result as JSON')
    .action(
      async (
        name: string,
        opts: { home?: string; json?: boolean; error: string; cause: string },
      ) => {
        const home = strandHome(opts.home);
        for (;;) {
          const own = openSchedulerIfFree(home);
          if (own) {
            try {
              const d = await engineCall(() =>
                own.engine.stopExecution(name, opts.error, opts.cause, { waitForJobs: true }),
              );
              report(io, d, opts.json);
              setExit(EXIT_OK);
              return;
            } finally {
              own.engine.close();
            }
          }
          const outcome = await askOwner(
            home,
            'StopExecution',
            { name, error: opts.error, cause: opts.cause },
            {
              onWait: (h) =>
                io.err(
                  `asking the Strand engine that owns ${home} (pid ${h.pid} on ${h.host}) to stop ${name}…\n`,
                ),
            },
          ).catch(requestRefused);
          if (outcome.served) {
            report(io, outcome.response as unknown as ExecutionDescription, opts.json);
            setExit(EXIT_OK);
            return;
          }
          // The owner went away before taking it: stop it here.
        }
      },
    );

  const executions = program
    .command('executions')
    .description('list and inspect executions recorded in the Strand home');

  /**
   * Answers a task's token (SendTaskSuccess / -Failure / -Heartbeat): by the engine that owns
   * the home when one runs (a `strand start` waiting for it), else here, recorded for when the
   * execution carries on (at once here, or by `strand resume`).
   */
  const answerToken = async (
    home: string,
    kind: 'SendTaskSuccess' | 'SendTaskFailure' | 'SendTaskHeartbeat',
    body: { taskToken: string; output?: Json; error?: string; cause?: string },
    here: (engine: Engine) => Promise<unknown>,
  ): Promise<void> => {
    for (;;) {
      const own = openSchedulerIfFree(home);
      if (own) {
        try {
          await engineCall(() => here(own.engine));
          return;
        } finally {
          own.engine.close();
        }
      }
      const outcome = await askOwner(home, kind, body).catch(requestRefused);
      if (outcome.served) return;
      // The owner went away before taking it: answer it here.
    }
  };
  const tokenCommand = (name: string, description: string) =>
    executions
      .command(name)
      .description(description)
      .requiredOption('--task-token <token>', 'the token ($$.Task.Token) the task was given')
      .option('--home <dir>', 'the Strand home directory');
  tokenCommand(
    'send-task-success',
    'end a task waiting for its token (.waitForTaskToken) with an output (SendTaskSuccess)',
  )
    .requiredOption('--task-output <json>', "the task's output: JSON, or @file")
    .action(async (opts: { taskToken: string; taskOutput: string; home?: string }) => {
      const output = parseJsonArg('--task-output', opts.taskOutput, "the task's output");
      await answerToken(
        strandHome(opts.home),
        'SendTaskSuccess',
        { taskToken: opts.taskToken, output },
        (e) => e.sendTaskSuccess(opts.taskToken, output),
      );
      setExit(EXIT_OK);
    });
  tokenCommand(
    'send-task-failure',
    'fail a task waiting for its token (SendTaskFailure); its Retry and Catch see the error',
  )
    .option('--error <code>', 'the error name (what Retry and Catch match)')
    .option('--cause <text>', 'a longer explanation')
    .action(async (opts: { taskToken: string; error?: string; cause?: string; home?: string }) => {
      await answerToken(
        strandHome(opts.home),
        'SendTaskFailure',
        { taskToken: opts.taskToken, error: opts.error, cause: opts.cause },
        (e) => e.sendTaskFailure(opts.taskToken, opts.error, opts.cause),
      );
      setExit(EXIT_OK);
    });
  tokenCommand(
    'send-task-heartbeat',
    'restart the heartbeat clock (HeartbeatSeconds) of a task holding a token (SendTaskHeartbeat)',
  ).action(async (opts: { taskToken: string; home?: string }) => {
    await answerToken(
      strandHome(opts.home),
      'SendTaskHeartbeat',
      { taskToken: opts.taskToken },
      (e) => e.sendTaskHeartbeat(opts.taskToken),
    );
    setExit(EXIT_OK);
  });
  executions
    .command('ls')
    .description('list executions, newest first')
    .option('--status <status>', 'only RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED')
    .option('--home <dir>', 'the Strand home directory')
    .option('--json', 'print the list as JSON')
    .action(async (opts: { status?: string; home?: string; json?: boolean }) => {
      const statuses = ['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'];
      if (opts.status && !statuses.includes(opts.status)) {
        throw new InputError(`--status ${opts.status}: use one of ${statuses.join(', ')}`);
      }
      const engine = openEngine(strandHome(opts.home));
      try {
        const list = engine.listExecutions(
          opts.status as ExecutionDescription['status'] | undefined,
        );
        if (opts.json) {
          io.out(JSON.stringify(list, null, 2) + '\n');
        } else if (list.length === 0) {
          io.err('no executions\n');
        } else {
          // Executions started by another's task (states:startExecution) name it.
          const nested = list.some((d) => d.parentExecutionArn);
          const parentName = (arn: string | undefined) => arn?.replace(/^.*:/, '');
          io.out(
            formatTable(
              list.map((d) => ({
                name: d.name,
                status: d.status,
                started: d.startDate,
                seconds: seconds(d),
                parent: parentName(d.parentExecutionArn),
              })),
              [
                'name',
                'status',
                'started',
                { key: 'seconds', align: 'right' },
                ...(nested ? ['parent' as const] : []),
              ],
              statusColumns(painter(io.color?.out)),
            ),
          );
        }
        setExit(EXIT_OK);
      } finally {
        engine.close();
      }
    });
  executions
    .command('describe')
    .description('show one execution (DescribeExecution)')
    .argument('<name>', 'execution name or ARN')
    .option('--home <dir>', 'the Strand home directory')
    .option('--json', 'print the DescribeExecution shape as JSON')
    .action(async (name: string, opts: { home?: string; json?: boolean }) => {
      const engine = openEngine(strandHome(opts.home));
      try {
        const d = await engineCall(() => engine.describeExecution(name));
        if (opts.json) io.out(JSON.stringify(d, null, 2) + '\n');
        else io.out(formatDetails({ ...d }, statusColumns(painter(io.color?.out))));
        setExit(EXIT_OK);
      } finally {
        engine.close();
      }
    });
  executions
    .command('history')
    .description('show the history events of one execution (GetExecutionHistory)')
    .argument('<name>', 'execution name or ARN')
    .option('--home <dir>', 'the Strand home directory')
    .option('--json', 'print the events as JSON')
    .action(async (name: string, opts: { home?: string; json?: boolean }) => {
      const engine = openEngine(strandHome(opts.home));
      try {
        const events = await engineCall(() => engine.getExecutionHistory(name));
        if (opts.json) {
          io.out(JSON.stringify({ events: events.map(historyEventForApi) }, null, 2) + '\n');
        } else {
          const rows = events.map((e) => {
            const { id, previousEventId: _p, type, timestamp, ...details } = e;
            const detail = Object.values(details)[0] as
              { name?: string; error?: string } | undefined;
            return {
              id,
              time: new Date(timestamp).toISOString(),
              type,
              detail: detail?.name ?? detail?.error,
            };
          });
          io.out(formatTable(rows, ['id', 'time', 'type', 'detail']));
        }
        setExit(EXIT_OK);
      } finally {
        engine.close();
      }
    });
}
