/**
 * `strand stage in|out PLAN`: the staging of one job attempt where it runs (the stage-in and
 * stage-out containers of an AWS Batch job; src/functions/stage-task.ts does the work). PLAN is
 * a file, `-` for standard input, or `env:NAME` for a variable holding the plan's JSON.
 *
 * `strand stage job in|out|run`: the same for a job Step Functions submitted itself (`strand
 * deploy aws`), which makes its plan from its own environment and AWS Batch record
 * (src/functions/stage-deployed.ts); `run` is a deployed job's whole life in its one container:
 * stage in, the tool through the static launcher, stage out, exiting with the tool's code.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { openStore } from '../app/index.js';
import { batchClient, describeJob } from '../executors/aws-batch/job-lookup.js';
import {
  deployedPaths,
  deployedRoot,
  deployedStageIn,
  deployedStageOut,
  type OwnJob,
} from '../functions/stage-deployed.js';
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

  /** The job's own record in AWS Batch: its tags name the execution and the store. */
  const ownJob = async (jobId: string): Promise<OwnJob | undefined> => {
    const client = batchClient();
    try {
      const found = await describeJob(client, jobId);
      return found ? { jobId, tags: found.tags ?? {} } : undefined;
    } finally {
      client.destroy();
    }
  };
  const stageJobIn = async (argv: string[], home?: string): Promise<boolean> => {
    try {
      await deployedStageIn(argv, { ...options(home), ownJob });
      return true;
    } catch (err) {
      io.err(`strand: stage job in: ${(err as Error).message}\n`);
      return false;
    }
  };
  /** The tool, through the launcher the stage-in put beside it; resolves when it has ended. */
  const runTool = (): Promise<void> => {
    const p = deployedPaths(deployedRoot());
    return new Promise((resolve) => {
      const child = spawn(p.launcher, ['run', p.request], { stdio: 'inherit' });
      child.on('error', (err) => {
        io.err(`strand: stage job run: ${p.launcher}: ${err.message}\n`);
        resolve();
      });
      child.on('close', () => resolve());
    });
  };

  const jobCommand = stage
    .command('job')
    .description(
      'stage a job Step Functions submitted (strand deploy aws): its plan made from its own\n' +
        'environment and AWS Batch record (AWS_BATCH_JOB_ID), its files under STRAND_STAGE_ROOT\n' +
        '(default /strand)',
    );
  jobCommand
    .command('in')
    .description(
      "stage the inputs and write the tool's launch request (run/request); ARGV is the tool's command",
    )
    .argument('<argv...>', "the tool's command, as the job definition gives it")
    .option('--home <dir>', 'the Strand home directory')
    .action(async (argv: string[], opts: { home?: string }) => {
      setExit((await stageJobIn(argv, opts.home)) ? EXIT_OK : EXIT_FAILED);
    });
  jobCommand
    .command('out')
    .description(
      "publish the attempt's outputs, log and manifest; exits with the tool's exit code (1 when\n" +
        'it never ran or its outputs could not be published)',
    )
    .option('--home <dir>', 'the Strand home directory')
    .action(async (opts: { home?: string }) => {
      setExit(await deployedStageOut(options(opts.home)));
    });
  jobCommand
    .command('run')
    .description(
      "stage in, run the tool through Strand's launcher, stage out: a deployed job's container\n" +
        "entry point; exits with the tool's exit code",
    )
    .argument('<argv...>', "the tool's command, as the job definition gives it")
    .option('--home <dir>', 'the Strand home directory')
    .action(async (argv: string[], opts: { home?: string }) => {
      // A stage-in that failed has claimed the attempt: the launcher runs nothing, and the
      // stage-out publishes a FAILED manifest saying why.
      if (await stageJobIn(argv, opts.home)) await runTool();
      setExit(await deployedStageOut(options(opts.home)));
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
