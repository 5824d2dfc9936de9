/** `strand batch …`: the local AWS Batch with the AWS CLI's verbs and flag names. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Command } from 'commander';
import { readAttemptLog } from '../app/index.js';
import { listedJobs, readJobs } from '../batch/local-batch.js';
import { readWaitingReasons, type WaitingReason } from '../batch/waiting.js';
import { BatchInputError } from '../batch/resources.js';
import type {
  JobDetail,
  JobStatus,
  RegisterJobDefinitionRequest,
  SubmitJobRequest,
} from '../batch/types.js';
import type { Engine } from '../engine/engine.js';
import { EXIT_FAILED, EXIT_OK, InputError } from './errors.js';
import { openScheduler, strandHome } from './home.js';
import { readTextFile } from './input.js';
import type { Io } from './io.js';
import { formatTable } from './table.js';
import { painter, statusColumns } from './color.js';
import { jobAttempts } from '../report/attempts.js';

/** A JSON option value: inline JSON or file://path, as the AWS CLI accepts. */
function jsonOption<T>(flag: string, value: string | undefined): T | undefined {
  if (value === undefined) return undefined;
  const text = value.startsWith('file://') ? readTextFile(value.slice(7), flag) : value;
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new InputError(`${flag}: not valid JSON (${(err as Error).message})`);
  }
}

export async function withBatch<T>(
  io: Io,
  home: string | undefined,
  fn: (engine: Engine) => Promise<T> | T,
): Promise<T> {
  const engine = await openScheduler(io, strandHome(home));
  try {
    return await fn(engine);
  } catch (err) {
    if (err instanceof BatchInputError) throw new InputError(err.message);
    throw err;
  } finally {
    engine.close();
  }
}

/**
 * The home's jobs as recorded, read without opening its engine: listing and describing work
 * beside a run in progress in another process (which owns the home).
 */
function recordedJobs(home: string | undefined): JobDetail[] {
  return withDatabase(home, readJobs, []);
}

/** Why each job not yet placed waits, from the home's database (as `strand server` shows it). */
function recordedWaits(home: string | undefined): Map<string, WaitingReason> {
  return withDatabase(home, (db) => readWaitingReasons(db, Date.now()), new Map());
}

function withDatabase<T>(home: string | undefined, read: (db: Database.Database) => T, none: T): T {
  const path = join(strandHome(home), 'strand.db');
  if (!existsSync(path)) return none;
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/**
 * Jobs as a table: id, name, status, the last attempt's exit code, and why: its status reason,
 * or for a job not yet placed, why it waits.
 */
function jobsTable(
  io: Io,
  jobs: JobDetail[],
  waits: Map<string, WaitingReason> = new Map(),
): string {
  return formatTable(
    jobs.map((j) => ({
      jobId: j.jobId,
      jobName: j.jobName,
      status: j.status,
      exitCode: j.attempts.at(-1)?.container.exitCode,
      statusReason: waits.get(j.jobId)?.message ?? j.statusReason,
    })),
    [
      { key: 'jobId', header: 'JOB ID' },
      { key: 'jobName', header: 'NAME' },
      'status',
      { key: 'exitCode', header: 'EXIT', align: 'right' },
      { key: 'statusReason', header: 'REASON' },
    ],
    statusColumns(painter(io.color?.out)),
  );
}

/**
 * `batch describe --attempts`: a line per attempt (the one waiting or running too), with what it
 * had (vCPUs, memory) and what it used (CPU time, peak memory); the job id first when several
 * jobs are described.
 */
function attemptsTable(io: Io, jobs: JobDetail[], withJob: boolean): string {
  const rows = jobs.flatMap((j) =>
    jobAttempts(j, '').map((a) => ({
      jobId: a.jobId,
      attempt: a.attempt,
      status: a.status,
      startedAt: a.startedAt === undefined ? undefined : new Date(a.startedAt).toISOString(),
      seconds:
        a.startedAt === undefined || a.stoppedAt === undefined
          ? undefined
          : ((a.stoppedAt - a.startedAt) / 1000).toFixed(3),
      vcpus: a.vcpus,
      memoryMiB: a.memoryMiB,
      cpuSeconds: a.cpuSeconds,
      peakMemoryMiB: a.peakMemoryMiB,
      exitCode: a.exitCode,
      reason: a.reason,
    })),
  );
  return formatTable(
    rows,
    [
      ...(withJob ? [{ key: 'jobId', header: 'JOB ID' }] : []),
      'attempt',
      'status',
      { key: 'startedAt', header: 'STARTED' },
      { key: 'seconds', align: 'right' as const },
      { key: 'vcpus', header: 'VCPUS', align: 'right' as const },
      { key: 'memoryMiB', header: 'MEMORY MIB', align: 'right' as const },
      { key: 'cpuSeconds', header: 'CPU SECONDS', align: 'right' as const },
      { key: 'peakMemoryMiB', header: 'PEAK MEMORY MIB', align: 'right' as const },
      { key: 'exitCode', header: 'EXIT', align: 'right' as const },
      'reason',
    ],
    statusColumns(painter(io.color?.out)),
  );
}

/** Registers `strand batch …`'s job commands; returns `batch`, for the commands of other modules. */
export function registerBatchCommands(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
): Command {
  const batch = program
    .command('batch')
    .description(
      'the local AWS Batch: job definitions, compute environments, job queues and jobs (a queue "default" on a compute environment "local" of this machine\'s size exists out of the box)',
    );

  batch
    .command('register')
    .description(
      'register a job definition (the RegisterJobDefinition request shape); each registration adds a revision',
    )
    .argument('<jobdef.json>', 'the job definition')
    .option('--home <dir>', 'the Strand home directory')
    .option('--json', 'print the response as JSON')
    .action(async (file: string, opts: { home?: string; json?: boolean }) => {
      const req = jsonOption<RegisterJobDefinitionRequest>(file, `file://${file}`)!;
      const out = await withBatch(io, opts.home, (e) => e.batch!.registerJobDefinition(req));
      io.out(
        opts.json
          ? JSON.stringify(out, null, 2) + '\n'
          : `${out.jobDefinitionName}:${out.revision}  ${out.jobDefinitionArn}\n`,
      );
      setExit(EXIT_OK);
    });

  batch
    .command('submit')
    .description(
      'submit a job and follow it to the end (exit 1 if it FAILED); --detach returns at once',
    )
    .requiredOption('--job-name <name>', 'job name')
    .option('--job-queue <queue>', 'job queue', 'default')
    .requiredOption('--job-definition <name[:revision]>', 'job definition')
    .option('--parameters <json>', 'Ref:: parameters, e.g. {"reads":"S1.fq"}')
    .option(
      '--container-overrides <json>',
      'e.g. {"command":["echo","hi"],"environment":[{"name":"X","value":"1"}]}',
    )
    .option('--array-properties <json>', 'e.g. {"size":10}')
    .option('--depends-on <json>', 'e.g. [{"jobId":"…","type":"N_TO_N"}]')
    .option('--retry-strategy <json>', 'e.g. {"attempts":3}')
    .option('--timeout <json>', 'e.g. {"attemptDurationSeconds":600}')
    .option('--tags <json>', 'e.g. {"project":"hp"}')
    .option('--detach', 'return once submitted')
    .option('--home <dir>', 'the Strand home directory')
    .option('--json', 'print the job as JSON')
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const req: SubmitJobRequest = {
        jobName: opts.jobName as string,
        jobQueue: opts.jobQueue as string,
        jobDefinition: opts.jobDefinition as string,
        parameters: jsonOption('--parameters', opts.parameters as string | undefined),
        containerOverrides: jsonOption(
          '--container-overrides',
          opts.containerOverrides as string | undefined,
        ),
        arrayProperties: jsonOption(
          '--array-properties',
          opts.arrayProperties as string | undefined,
        ),
        dependsOn: jsonOption('--depends-on', opts.dependsOn as string | undefined),
        retryStrategy: jsonOption('--retry-strategy', opts.retryStrategy as string | undefined),
        timeout: jsonOption('--timeout', opts.timeout as string | undefined),
        tags: jsonOption('--tags', opts.tags as string | undefined),
      };
      const job = await withBatch(io, opts.home as string | undefined, async (e) => {
        const { jobId } = e.batch!.submitJob(req);
        if (opts.detach) return e.batch!.describeJobs([jobId])[0];
        return new Promise<JobDetail>((resolve) => e.batch!.onceDone(jobId, resolve));
      });
      io.out(opts.json ? JSON.stringify(job, null, 2) + '\n' : jobsTable(io, [job]));
      setExit(job.status === 'FAILED' ? EXIT_FAILED : EXIT_OK);
    });

  batch
    .command('ls')
    .description('list jobs (ListJobs); a job not yet running says why it waits')
    .option('--job-queue <queue>', 'only this queue')
    .option(
      '--job-status <status>',
      'only SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING, SUCCEEDED or FAILED',
    )
    .option('--home <dir>', 'the Strand home directory')
    .option('--json', 'print the jobs as JSON')
    .action(
      async (opts: { jobQueue?: string; jobStatus?: string; home?: string; json?: boolean }) => {
        const statuses = [
          'SUBMITTED',
          'PENDING',
          'RUNNABLE',
          'STARTING',
          'RUNNING',
          'SUCCEEDED',
          'FAILED',
        ];
        if (opts.jobStatus && !statuses.includes(opts.jobStatus)) {
          throw new InputError(`--job-status ${opts.jobStatus}: use one of ${statuses.join(', ')}`);
        }
        const jobs = listedJobs(recordedJobs(opts.home), {
          jobQueue: opts.jobQueue,
          jobStatus: opts.jobStatus as JobStatus | undefined,
        });
        if (opts.json) io.out(JSON.stringify({ jobSummaryList: jobs }, null, 2) + '\n');
        else if (jobs.length === 0) io.err('no jobs\n');
        else io.out(jobsTable(io, jobs, recordedWaits(opts.home)));
        setExit(EXIT_OK);
      },
    );

  batch
    .command('describe')
    .description(
      'describe jobs (DescribeJobs); each attempt says the vCPUs and memory (MiB) it had, and\n' +
        'the CPU time (cpuSeconds) and peak memory (peakMemoryMiB) its processes used',
    )
    .argument('<jobId...>', 'job ids')
    .option('--attempts', 'a table of the attempts instead of JSON: one line per attempt')
    .option('--home <dir>', 'the Strand home directory')
    .action(async (ids: string[], opts: { attempts?: boolean; home?: string }) => {
      const jobs = recordedJobs(opts.home).filter((j) => ids.includes(j.jobId));
      const missing = ids.filter((id) => !jobs.some((j) => j.jobId === id));
      if (missing.length > 0)
        throw new InputError(`no job with id ${missing.map((m) => `"${m}"`).join(', ')}`);
      if (opts.attempts) io.out(attemptsTable(io, jobs, ids.length > 1));
      else io.out(JSON.stringify({ jobs }, null, 2) + '\n');
      setExit(EXIT_OK);
    });

  batch
    .command('terminate')
    .description('terminate a job (TerminateJob); works on jobs not yet running too (CancelJob)')
    .argument('<jobId>', 'job id')
    .requiredOption('--reason <text>', 'why (recorded as the statusReason)')
    .option('--home <dir>', 'the Strand home directory')
    .action(async (id: string, opts: { reason: string; home?: string }) => {
      await withBatch(io, opts.home, async (e) => {
        await e.batch!.terminateJob(id, opts.reason);
        await new Promise<void>((resolve) => e.batch!.onceDone(id, () => resolve()));
      });
      setExit(EXIT_OK);
    });

  batch
    .command('logs')
    .description("print a job attempt's log (stdout and stderr)")
    .argument('<jobId>', 'job id')
    .option('--attempt <n>', 'attempt number (default: the last)')
    .option('--home <dir>', 'the Strand home directory')
    .action(async (id: string, opts: { attempt?: string; home?: string }) => {
      const job = recordedJobs(opts.home).find((j) => j.jobId === id);
      if (!job) throw new InputError(`no job with id "${id}"`);
      const attempts = job.attempts.map((a) => a.container.logStreamName);
      const current = job.container.logStreamName;
      const n = opts.attempt === undefined ? undefined : Number(opts.attempt);
      const path = n === undefined ? (current ?? attempts.at(-1)) : attempts[n - 1];
      if (n !== undefined && (!Number.isInteger(n) || n < 1 || n > attempts.length)) {
        throw new InputError(
          `--attempt ${opts.attempt}: job ${id} has ${attempts.length} attempt(s)`,
        );
      }
      // A file here, or an AWS Batch job's CloudWatch Logs.
      const text = path ? await readAttemptLog(strandHome(opts.home), path) : undefined;
      if (text === undefined) throw new InputError(`job ${id} (${job.status}) has no log yet`);
      io.out(text);
      setExit(EXIT_OK);
    });
  return batch;
}
