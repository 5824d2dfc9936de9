/**
 * `strand batch create-compute-environment`, `describe-job-queues`, …: compute environments and
 * job queues with the AWS CLI's verbs, flags and output, kept in the home.
 */
import type { Command } from 'commander';
import { resourceName, type ResourceState } from '../batch/resources.js';
import { parseSize } from '../pipeline/units.js';
import { withBatch } from './batch.js';
import { EXIT_OK, InputError } from './errors.js';
import type { Io } from './io.js';
import { knownName } from './names.js';
import { structureListOption, structureOption } from './shorthand.js';

const CE_NUMBERS = ['minvCpus', 'maxvCpus', 'desiredvCpus', 'bidPercentage'];
const ORDER_NUMBERS = ['order'];

function state(value: string | undefined): ResourceState | undefined {
  if (value === undefined) return undefined;
  if (value !== 'ENABLED' && value !== 'DISABLED')
    throw new InputError(`--state ${value}: use ENABLED or DISABLED`);
  return value;
}

function wholeNumber(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n))
    throw new InputError(`${flag} ${value}: not a whole number`);
  return n;
}

function memory(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const r = parseSize(value);
  if (!r.ok) throw new InputError(`--memory ${value}: ${r.message}${r.hint ? `; ${r.hint}` : ''}`);
  return r.value;
}

function tags(value: string | undefined): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  const t = structureOption('--tags', value);
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, String(v)]));
}

/** `--compute-resources`, `--unmanagedv-cpus` and `--memory`, as the request's fields. */
function sizeOptions(opts: Record<string, string | undefined>) {
  return {
    ...(opts.computeResources === undefined
      ? {}
      : {
          computeResources: structureOption(
            '--compute-resources',
            opts.computeResources,
            CE_NUMBERS,
          ),
        }),
    unmanagedvCpus: wholeNumber('--unmanagedv-cpus', opts.unmanagedvCpus),
    memoryMiB: memory(opts.memory),
  };
}

const order = (values: string[] | undefined) =>
  values === undefined
    ? undefined
    : (structureListOption('--compute-environment-order', values, ORDER_NUMBERS) as {
        order: number;
        computeEnvironment: string;
      }[]);

export function registerResourceCommands(
  batch: Command,
  io: Io,
  setExit: (code: number) => void,
): void {
  const print = (value: unknown) => {
    io.out(JSON.stringify(value, null, 2) + '\n');
    setExit(EXIT_OK);
  };

  batch
    .command('create-compute-environment')
    .description(
      'create a compute environment (CreateComputeEnvironment): a capacity in vCPUs and memory on this machine, which may be declared larger than the machine (its jobs then share the cores)',
    )
    .requiredOption('--compute-environment-name <name>', 'its name')
    .option(
      '--type <type>',
      'MANAGED (sized by --compute-resources maxvCpus) or UNMANAGED',
      'MANAGED',
    )
    .option('--state <state>', 'ENABLED (default) or DISABLED')
    .option(
      '--compute-resources <shorthand|json>',
      'e.g. type=EC2,maxvCpus=8 (as the AWS CLI takes it; maxvCpus is its size here)',
    )
    .option('--unmanagedv-cpus <n>', 'the vCPUs of an UNMANAGED one')
    .option('--memory <size>', "its memory, e.g. 16GiB (default: this machine's)")
    .option(
      '--executor <name>',
      'what runs its jobs: local (processes, default), podman, docker, aws-batch or slurm (SLURM places them: give it the size to hand SLURM at once)',
    )
    .option('--service-role <arn>', 'kept as given')
    .option('--tags <shorthand|json>', 'e.g. team=genomics')
    .option('--home <dir>', 'the Strand home directory')
    .action(async (opts: Record<string, string | undefined>) => {
      const type = opts.type;
      if (type !== 'MANAGED' && type !== 'UNMANAGED')
        throw new InputError(`--type ${type}: use MANAGED or UNMANAGED`);
      const out = await withBatch(io, opts.home, (e) =>
        e.batch!.createComputeEnvironment({
          computeEnvironmentName: opts.computeEnvironmentName!,
          type,
          state: state(opts.state),
          ...sizeOptions(opts),
          executor: opts.executor,
          serviceRole: opts.serviceRole,
          tags: tags(opts.tags),
        }),
      );
      print(out);
    });

  batch
    .command('update-compute-environment')
    .description('change a compute environment (UpdateComputeEnvironment): state, vCPUs, memory')
    .requiredOption('--compute-environment <name|arn>', 'which one')
    .option('--state <state>', 'ENABLED or DISABLED (a DISABLED one starts no new job)')
    .option('--compute-resources <shorthand|json>', 'e.g. maxvCpus=8')
    .option('--unmanagedv-cpus <n>', 'the vCPUs of an UNMANAGED one')
    .option('--memory <size>', 'its memory, e.g. 16GiB')
    .option('--service-role <arn>', 'kept as given')
    .option('--home <dir>', 'the Strand home directory')
    .action(async (opts: Record<string, string | undefined>) => {
      const out = await withBatch(io, opts.home, (e) =>
        e.batch!.updateComputeEnvironment({
          computeEnvironment: opts.computeEnvironment!,
          state: state(opts.state),
          ...sizeOptions(opts),
          serviceRole: opts.serviceRole,
        }),
      );
      print(out);
    });

  batch
    .command('describe-compute-environments')
    .description('describe compute environments (DescribeComputeEnvironments), all or those named')
    .option('--compute-environments <names...>', 'names or ARNs')
    .option('--home <dir>', 'the Strand home directory')
    .action(async (opts: { computeEnvironments?: string[]; home?: string }) => {
      const all = await withBatch(io, opts.home, (e) => e.batch!.describeComputeEnvironments());
      const names = opts.computeEnvironments?.map((n) => resourceName(n, 'compute-environment'));
      for (const n of names ?? [])
        knownName(
          '--compute-environments',
          n,
          all.map((c) => c.computeEnvironmentName),
          'compute environment',
        );
      print({
        computeEnvironments: all.filter((c) => !names || names.includes(c.computeEnvironmentName)),
      });
    });

  batch
    .command('delete-compute-environment')
    .description(
      'delete a compute environment (DeleteComputeEnvironment): a DISABLED one no queue uses',
    )
    .requiredOption('--compute-environment <name|arn>', 'which one')
    .option('--home <dir>', 'the Strand home directory')
    .action(async (opts: { computeEnvironment: string; home?: string }) => {
      await withBatch(io, opts.home, (e) =>
        e.batch!.deleteComputeEnvironment(opts.computeEnvironment),
      );
      setExit(EXIT_OK);
    });

  batch
    .command('create-job-queue')
    .description('create a job queue (CreateJobQueue) over 1 to 3 compute environments, in order')
    .requiredOption('--job-queue-name <name>', 'its name')
    .requiredOption('--priority <n>', 'from 0 to 1000; a higher one is served first')
    .requiredOption(
      '--compute-environment-order <entries...>',
      'e.g. order=1,computeEnvironment=big order=2,computeEnvironment=local',
    )
    .option('--state <state>', 'ENABLED (default) or DISABLED')
    .option('--tags <shorthand|json>', 'e.g. team=genomics')
    .option('--home <dir>', 'the Strand home directory')
    .action(async (opts: Record<string, string | string[] | undefined>) => {
      const out = await withBatch(io, opts.home as string | undefined, (e) =>
        e.batch!.createJobQueue({
          jobQueueName: opts.jobQueueName as string,
          priority: wholeNumber('--priority', opts.priority as string)!,
          computeEnvironmentOrder: order(opts.computeEnvironmentOrder as string[])!,
          state: state(opts.state as string | undefined),
          tags: tags(opts.tags as string | undefined),
        }),
      );
      print(out);
    });

  batch
    .command('update-job-queue')
    .description(
      'change a job queue (UpdateJobQueue): state (a DISABLED one takes no new job), priority, compute environments',
    )
    .requiredOption('--job-queue <name|arn>', 'which one')
    .option('--priority <n>', 'from 0 to 1000')
    .option('--compute-environment-order <entries...>', 'e.g. order=1,computeEnvironment=big')
    .option('--state <state>', 'ENABLED or DISABLED')
    .option('--home <dir>', 'the Strand home directory')
    .action(async (opts: Record<string, string | string[] | undefined>) => {
      const out = await withBatch(io, opts.home as string | undefined, (e) =>
        e.batch!.updateJobQueue({
          jobQueue: opts.jobQueue as string,
          priority: wholeNumber('--priority', opts.priority as string | undefined),
          computeEnvironmentOrder: order(opts.computeEnvironmentOrder as string[] | undefined),
          state: state(opts.state as string | undefined),
        }),
      );
      print(out);
    });

  batch
    .command('describe-job-queues')
    .description('describe job queues (DescribeJobQueues), all or those named')
    .option('--job-queues <names...>', 'names or ARNs')
    .option('--home <dir>', 'the Strand home directory')
    .action(async (opts: { jobQueues?: string[]; home?: string }) => {
      const all = await withBatch(io, opts.home, (e) => e.batch!.describeJobQueuesDetail());
      const names = opts.jobQueues?.map((n) => resourceName(n, 'job-queue'));
      for (const n of names ?? [])
        knownName(
          '--job-queues',
          n,
          all.map((q) => q.jobQueueName),
          'job queue',
        );
      print({ jobQueues: all.filter((q) => !names || names.includes(q.jobQueueName)) });
    });

  batch
    .command('delete-job-queue')
    .description('delete a job queue (DeleteJobQueue): a DISABLED one with no job outstanding')
    .requiredOption('--job-queue <name|arn>', 'which one')
    .option('--home <dir>', 'the Strand home directory')
    .action(async (opts: { jobQueue: string; home?: string }) => {
      await withBatch(io, opts.home, (e) => e.batch!.deleteJobQueue(opts.jobQueue));
      setExit(EXIT_OK);
    });
}
