/**
 * `strand stage in|out PLAN`: the staging of one job attempt where it runs (the stage-in and
 * stage-out containers of an AWS Batch job; src/functions/stage-task.ts does the work). PLAN is
 * a file, `-` for standard input, or `env:NAME` for a variable holding the plan's JSON.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { openStore } from '../app/index.js';
import { parseStagePlan, type StagePlan } from '../functions/stage-plan.js';
import { stageIn, stageOut } from '../functions/stage-task.js';
import type { ObjectStore } from '../storage/store.js';
import { EXIT_FAILED, EXIT_OK, InputError } from './errors.js';
import { strandHome } from './home.js';
import type { Io } from './io.js';

/** The plan PLAN names; InputError (exit 2) when it cannot be read. */
function readPlan(arg: string): StagePlan {
  let text: string;
  if (arg.startsWith('env:')) {
    const value = process.env[arg.slice(4)];
    if (value === undefined || value === '')
      throw new InputError(`${arg}: the variable ${arg.slice(4)} is not set`);
    text = value;
  } else {
    try {
      text = readFileSync(arg === '-' ? 0 : arg, 'utf8');
    } catch (err) {
      throw new InputError(`${arg}: ${(err as Error).message}`);
    }
  }
  try {
    return parseStagePlan(text, arg);
  } catch (err) {
    throw new InputError((err as Error).message);
  }
}

export function registerStageCommands(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
): void {
  const stage = program
    .command('stage')
    .description(
      "stage a job attempt where it runs (an AWS Batch job's stage-in and stage-out containers):\n" +
        'inputs from the store into its working directory before the tool, outputs, log and\n' +
        'manifest to the store after it',
    );
  const stores = new Map<string, ObjectStore>();
  const options = (home?: string) => ({
    store: (url: string) => {
      let s = stores.get(url);
      if (!s) stores.set(url, (s = openStore(url, { home: strandHome(home) })));
      return s;
    },
    out: io.out,
  });

  stage
    .command('in')
    .description(
      'make the inputs the plan names available in the working directory (exit 1 when one cannot be)',
    )
    .argument('<plan>', 'the staging plan: a file, - (standard input) or env:NAME')
    .option('--home <dir>', 'the Strand home directory')
    .action(async (arg: string, opts: { home?: string }) => {
      const plan = readPlan(arg);
      try {
        await stageIn(plan, options(opts.home));
      } catch (err) {
        io.err(`strand: stage in: ${(err as Error).message}\n`);
        setExit(EXIT_FAILED);
        return;
      }
      setExit(EXIT_OK);
    });

  stage
    .command('out')
    .description(
      "publish the attempt's outputs, log and manifest; exits with the tool's exit code (1 when\n" +
        'it never ran or its outputs could not be published)',
    )
    .argument('<plan>', 'the staging plan: a file, - (standard input) or env:NAME')
    .option('--home <dir>', 'the Strand home directory')
    .action(async (arg: string, opts: { home?: string }) => {
      setExit(await stageOut(readPlan(arg), options(opts.home)));
    });
}
