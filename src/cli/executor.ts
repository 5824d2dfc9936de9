/**
 * What a `strand run` runs its jobs on: the executor chosen by flag, profile, pipeline or the
 * home's config.yaml (src/app/config.ts), checked before any job starts: the container runtime
 * answers and every image the run needs is there; for AWS Batch, the settings are complete and
 * the job queue answers with the credentials at hand; for SLURM, `sinfo` answers and the
 * partition has nodes.
 */
import { ConfigError, chooseExecutor, configPath, readConfig } from '../app/config.js';
import { openAwsBatch, openSlurm } from '../app/index.js';
import { AwsBatchError } from '../executors/aws-batch/errors.js';
import {
  ContainerRuntimeError,
  detectRuntime,
  type RuntimeName,
} from '../executors/container/runtime.js';
import { nativeLauncher } from '../executors/local/local-executor.js';
import { SlurmError } from '../executors/slurm/slurm-executor.js';
import { checkPipelineImages } from '../images/images.js';
import type { LoadedPipeline } from '../pipeline/load.js';
import { InputError } from './errors.js';

export interface RunExecutor {
  executor: 'local' | 'podman' | 'docker' | 'aws-batch' | 'slurm';
  /** What chose it (`--executor`, `profile x`, `the pipeline`, the config file, `the default`). */
  from: string;
  /** Images built before the Dockerfile last changed: they run, and the user is told. */
  outdated: string[];
}

/**
 * Chooses the run's executor and, for a container executor, checks the runtime and the images
 * of the steps in `steps` (every step when empty). Throws InputError (exit 2) naming each
 * problem and the command that fixes it.
 */
export function runExecutor(
  home: string,
  loaded: LoadedPipeline,
  options: { executor?: string; profile?: string; steps?: string[]; file?: string },
): RunExecutor {
  let chosen: ReturnType<typeof chooseExecutor>;
  try {
    chosen = chooseExecutor(
      readConfig(home),
      { flag: options.executor, profile: options.profile, pipeline: loaded.spec.executor },
      configPath(home),
    );
  } catch (err) {
    if (err instanceof ConfigError) throw new InputError(err.message);
    throw err;
  }
  if (chosen.executor === 'local') return { ...chosen, outdated: [] };
  if (chosen.executor === 'aws-batch') {
    try {
      openAwsBatch({ home }).close();
    } catch (err) {
      if (err instanceof ConfigError)
        throw new InputError(`executor aws-batch (from ${chosen.from}): ${err.message}`);
      throw err;
    }
    return { ...chosen, outdated: [] };
  }
  if (chosen.executor === 'slurm') {
    // SLURM answers here (a login node) and has the partition; jobs run the native launcher.
    if (!nativeLauncher())
      throw new InputError(
        `executor slurm (from ${chosen.from}) needs Strand's native launcher (dist/strand-launcher), which was not built: install a C compiler (apt-get install gcc libc6-dev) and run npm run build`,
      );
    try {
      openSlurm({ home }).capacity();
    } catch (err) {
      if (
        err instanceof ConfigError ||
        err instanceof SlurmError ||
        err instanceof ContainerRuntimeError
      )
        throw new InputError(`executor slurm (from ${chosen.from}): ${err.message}`);
      throw err;
    }
    return { ...chosen, outdated: [] };
  }
  let runtime;
  try {
    runtime = detectRuntime(chosen.executor as RuntimeName);
  } catch (err) {
    if (err instanceof ContainerRuntimeError)
      throw new InputError(`executor ${chosen.executor} (from ${chosen.from}): ${err.message}`);
    throw err;
  }
  if (!nativeLauncher())
    throw new InputError(
      `executor ${chosen.executor} (from ${chosen.from}) needs Strand's native launcher (dist/strand-launcher), which was not built: install a C compiler (apt-get install gcc libc6-dev) and run npm run build`,
    );
  const check = checkPipelineImages(loaded.spec, runtime, {
    ...(options.steps ? { steps: options.steps } : {}),
    ...(options.file ? { pipelineArg: options.file } : {}),
  });
  if (check.problems.length > 0)
    throw new InputError(
      `${options.file ?? loaded.spec.file}: ${check.problems.length} image problem(s) for executor ${chosen.executor} (from ${chosen.from}); nothing was run`,
      check.problems.map((p) => `steps.${p.steps.join(', steps.')}: ${p.message} (fix: ${p.fix})`),
    );
  return {
    ...chosen,
    outdated: check.outdated.map((o) => o.image),
  };
}

/**
 * Asks AWS Batch, before a run submits anything, whether its settings work: the endpoint
 * answers, the credentials are taken, the job queue exists and is enabled. A problem of the
 * settings is bad input (exit 2), naming the endpoint and region; nothing else is checked for
 * the other executors.
 */
export async function checkRunExecutor(home: string, ran: RunExecutor): Promise<void> {
  if (ran.executor !== 'aws-batch') return;
  const executor = openAwsBatch({ home });
  try {
    await executor.check();
  } catch (err) {
    if (err instanceof AwsBatchError && err.configuration)
      throw new InputError(
        `executor aws-batch (from ${ran.from}): ${err.message}; nothing was run`,
      );
    throw err;
  } finally {
    executor.close();
  }
}
