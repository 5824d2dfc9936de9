/**
 * The AWS Batch API (REST-JSON: `POST /v1/<operation>`) over the local Batch: requests in AWS's
 * shapes go to the same LocalBatch calls `strand batch …` makes, answers come back in AWS's
 * shapes (timestamps in epoch milliseconds, as Batch gives them), and what the Batch refuses is a
 * ClientException with its message.
 */
import { readJobs } from '../batch/local-batch.js';
import { BatchInputError, resourceName } from '../batch/resources.js';
import type {
  CreateComputeEnvironmentRequest,
  CreateJobQueueRequest,
  UpdateComputeEnvironmentRequest,
  UpdateJobQueueRequest,
} from '../batch/resources.js';
import type {
  JobDetail,
  JobStatus,
  RegisterJobDefinitionRequest,
  SubmitJobRequest,
} from '../batch/types.js';
import { EngineHaltedError } from '../engine/faults.js';
import { ApiError } from './errors.js';
import { Fields, wrongTypeMessage, type Body, type FieldRules } from './fields.js';
import { HomeBusyError, type ServerHome } from './home.js';
import { page, type Cursor, type PageTokens } from './paging.js';

const client = (message: string) => new ApiError('ClientException', message);

/** Batch calls every bad field a ClientException, naming the field. */
export const BATCH_RULES: FieldRules = {
  missing: (field) => client(`${field} is required`),
  wrongType: (field, expected, value) => client(wrongTypeMessage(field, expected, value)),
  outOfBounds: (field, constraint) => client(`${field}: ${constraint}`),
};

const JOB_STATUSES: readonly JobStatus[] = [
  'SUBMITTED',
  'PENDING',
  'RUNNABLE',
  'STARTING',
  'RUNNING',
  'SUCCEEDED',
  'FAILED',
];

/** What the local Batch or the home refused, in Batch's terms. */
export function batchError(err: unknown): unknown {
  if (err instanceof BatchInputError) return client(err.message);
  if (err instanceof HomeBusyError || err instanceof EngineHaltedError)
    return new ApiError('ServerException', err.message, 503);
  return err;
}

/** Fields Strand's Batch has no counterpart for: refused rather than ignored. */
function refuseUnsupported(f: Fields, fields: string[], why: string): void {
  const given = fields.filter((k) => f.has(k));
  if (given.length > 0) throw client(`${given.join(', ')}: ${why}`);
}

/** A job as ListJobs summarises it. */
function jobSummary(j: JobDetail): Record<string, unknown> {
  const last = j.attempts.at(-1)?.container;
  const exitCode = j.container.exitCode ?? last?.exitCode;
  const reason = j.container.reason ?? last?.reason;
  return {
    jobArn: j.jobArn,
    jobId: j.jobId,
    jobName: j.jobName,
    createdAt: j.createdAt,
    status: j.status,
    ...(j.statusReason !== undefined ? { statusReason: j.statusReason } : {}),
    ...(j.startedAt !== undefined ? { startedAt: j.startedAt } : {}),
    ...(j.stoppedAt !== undefined ? { stoppedAt: j.stoppedAt } : {}),
    ...(exitCode !== undefined || reason !== undefined
      ? {
          container: {
            ...(exitCode !== undefined ? { exitCode } : {}),
            ...(reason !== undefined ? { reason } : {}),
          },
        }
      : {}),
    ...(j.arrayProperties
      ? {
          arrayProperties: {
            ...(j.arrayProperties.size !== undefined ? { size: j.arrayProperties.size } : {}),
            ...(j.arrayProperties.index !== undefined ? { index: j.arrayProperties.index } : {}),
          },
        }
      : {}),
    jobDefinition: j.jobDefinition,
  };
}

/** `value` against a ListJobs filter value: case-insensitive, a trailing `*` matches a prefix. */
function matches(value: string, pattern: string): boolean {
  const v = value.toLowerCase();
  const p = pattern.toLowerCase();
  return p.endsWith('*') ? v.startsWith(p.slice(0, -1)) : v === p;
}

/** Whether a job passes ListJobs' `filters` (each a name and values; any value may match). */
function passesFilters(j: JobDetail, filters: { name: string; values: string[] }[]): boolean {
  return filters.every(({ name, values }) =>
    values.some((v) => {
      switch (name) {
        case 'JOB_NAME':
          return matches(j.jobName, v);
        case 'JOB_DEFINITION': {
          // An ARN matches the job's ARN; `name:revision` or `name` match its short forms.
          const short = j.jobDefinition.replace(/^.*job-definition\//, '');
          if (v.startsWith('arn:')) return matches(j.jobDefinition, v);
          return matches(v.includes(':') ? short : short.replace(/:\d+$/, ''), v);
        }
        case 'BEFORE_CREATED_AT':
          return j.createdAt < Number(v);
        case 'AFTER_CREATED_AT':
          return j.createdAt > Number(v);
        default:
          throw client(
            `filters: unknown filter ${JSON.stringify(name)} (use JOB_NAME, JOB_DEFINITION, BEFORE_CREATED_AT or AFTER_CREATED_AT)`,
          );
      }
    }),
  );
}

export interface BatchApiOptions {
  home: ServerHome;
  tokens: PageTokens;
}

/** The operations of the Batch API this server answers, by their path (`/v1/<name>`). */
export function batchOperations(
  options: BatchApiOptions,
): Map<string, (body: Body) => Promise<unknown>> {
  const { home, tokens } = options;

  /** The local Batch, which only the engine that schedules the home has. */
  const batchFor = (what: string) => {
    const batch = home.scheduling(what).batch;
    if (!batch) throw new ApiError('ServerException', 'this server runs no Batch jobs', 500);
    return batch;
  };

  /** The jobs recorded in the home (read beside another engine too). */
  const recordedJobs = (): JobDetail[] => readJobs(home.reading().store.db);

  const pageSize = (f: Fields, max: number) => f.integer('maxResults', { min: 1, max }) ?? max;

  const cursorOf = (f: Fields, scope: string): Cursor | undefined => {
    const token = f.string('nextToken');
    if (token === undefined) return undefined;
    const read = tokens.read(scope, token);
    if ('refused' in read) throw client(`nextToken: ${read.refused}`);
    return read.cursor;
  };

  const nextToken = (scope: string, next: Cursor | undefined) =>
    next === undefined ? {} : { nextToken: tokens.issue(scope, next) };

  const operations: Record<string, (f: Fields) => unknown> = {
    registerjobdefinition(f) {
      f.requiredString('jobDefinitionName', { min: 1, max: 128 });
      const type = f.requiredString('type');
      if (type !== 'container')
        throw client(
          `type ${JSON.stringify(type)}: Strand runs container jobs only (type container)`,
        );
      refuseUnsupported(
        f,
        ['nodeProperties', 'eksProperties', 'ecsProperties'],
        'Strand runs container jobs only (containerProperties)',
      );
      if (!f.has('containerProperties'))
        throw client('containerProperties is required for a container job definition');
      f.object('containerProperties');
      f.object('parameters');
      f.object('retryStrategy');
      f.object('timeout');
      f.object('tags');
      return batchFor('RegisterJobDefinition').registerJobDefinition(
        f.body as unknown as RegisterJobDefinitionRequest,
      );
    },

    deregisterjobdefinition(f) {
      batchFor('DeregisterJobDefinition').deregisterJobDefinition(
        f.requiredString('jobDefinition', { min: 1 }),
      );
      return {};
    },

    describejobdefinitions(f) {
      const refs = f.stringList('jobDefinitions', { max: 100 });
      const name = f.string('jobDefinitionName');
      const status = f.oneOf('status', ['ACTIVE', 'INACTIVE'] as const);
      const limit = pageSize(f, 100);
      const scope = `DescribeJobDefinitions|${JSON.stringify([refs ?? null, name ?? null, status ?? null])}`;
      const after = cursorOf(f, scope);
      const wanted = (d: {
        jobDefinitionName: string;
        revision: number;
        jobDefinitionArn: string;
      }) =>
        refs === undefined ||
        refs.some((r) => {
          const short = r.replace(/^.*job-definition\//, '');
          return short.includes(':')
            ? short === `${d.jobDefinitionName}:${d.revision}`
            : short === d.jobDefinitionName;
        });
      const defs = batchFor('DescribeJobDefinitions')
        .describeJobDefinitions(name)
        .filter((d) => wanted(d) && (status === undefined || d.status === status));
      const listed = page(defs, (d) => [d.jobDefinitionName, d.revision], limit, after);
      return { jobDefinitions: listed.items, ...nextToken(scope, listed.next) };
    },

    createcomputeenvironment(f) {
      f.requiredString('computeEnvironmentName', { min: 1, max: 128 });
      f.object('computeResources');
      f.object('tags');
      refuseUnsupported(f, ['eksConfiguration'], 'Strand has no EKS compute environments');
      return batchFor('CreateComputeEnvironment').createComputeEnvironment(
        f.body as unknown as CreateComputeEnvironmentRequest,
      );
    },

    updatecomputeenvironment(f) {
      f.requiredString('computeEnvironment', { min: 1 });
      f.object('computeResources');
      return batchFor('UpdateComputeEnvironment').updateComputeEnvironment(
        f.body as unknown as UpdateComputeEnvironmentRequest,
      );
    },

    deletecomputeenvironment(f) {
      batchFor('DeleteComputeEnvironment').deleteComputeEnvironment(
        f.requiredString('computeEnvironment', { min: 1 }),
      );
      return {};
    },

    describecomputeenvironments(f) {
      const names = f
        .stringList('computeEnvironments', { max: 100 })
        ?.map((n) => resourceName(n, 'compute-environment'));
      const limit = pageSize(f, 100);
      const scope = `DescribeComputeEnvironments|${JSON.stringify(names ?? null)}`;
      const after = cursorOf(f, scope);
      const all = batchFor('DescribeComputeEnvironments')
        .describeComputeEnvironments()
        .filter((c) => names === undefined || names.includes(c.computeEnvironmentName));
      const listed = page(all, (c) => [c.computeEnvironmentName], limit, after);
      return { computeEnvironments: listed.items, ...nextToken(scope, listed.next) };
    },

    createjobqueue(f) {
      f.requiredString('jobQueueName', { min: 1, max: 128 });
      f.integer('priority');
      f.list('computeEnvironmentOrder');
      f.object('tags');
      refuseUnsupported(
        f,
        ['schedulingPolicyArn', 'serviceEnvironmentOrder'],
        'Strand has no scheduling policies or service environments',
      );
      return batchFor('CreateJobQueue').createJobQueue(f.body as unknown as CreateJobQueueRequest);
    },

    updatejobqueue(f) {
      f.requiredString('jobQueue', { min: 1 });
      f.integer('priority');
      f.list('computeEnvironmentOrder');
      return batchFor('UpdateJobQueue').updateJobQueue(f.body as unknown as UpdateJobQueueRequest);
    },

    deletejobqueue(f) {
      batchFor('DeleteJobQueue').deleteJobQueue(f.requiredString('jobQueue', { min: 1 }));
      return {};
    },

    describejobqueues(f) {
      const names = f
        .stringList('jobQueues', { max: 100 })
        ?.map((n) => resourceName(n, 'job-queue'));
      const limit = pageSize(f, 100);
      const scope = `DescribeJobQueues|${JSON.stringify(names ?? null)}`;
      const after = cursorOf(f, scope);
      const all = batchFor('DescribeJobQueues')
        .describeJobQueuesDetail()
        .filter((q) => names === undefined || names.includes(q.jobQueueName));
      const listed = page(all, (q) => [q.jobQueueName], limit, after);
      return { jobQueues: listed.items, ...nextToken(scope, listed.next) };
    },

    submitjob(f) {
      const req: SubmitJobRequest = {
        jobName: f.requiredString('jobName', { min: 1, max: 128 }),
        jobQueue: f.requiredString('jobQueue', { min: 1 }),
        jobDefinition: f.requiredString('jobDefinition', { min: 1 }),
      };
      refuseUnsupported(
        f,
        ['nodeOverrides', 'eksPropertiesOverride', 'ecsPropertiesOverride', 'shareIdentifier'],
        'Strand runs container jobs only, without fair-share scheduling',
      );
      const optional = {
        parameters: f.object('parameters'),
        containerOverrides: f.object('containerOverrides'),
        arrayProperties: f.object('arrayProperties'),
        dependsOn: f.list('dependsOn'),
        retryStrategy: f.object('retryStrategy'),
        timeout: f.object('timeout'),
        tags: f.object('tags'),
      };
      for (const [k, v] of Object.entries(optional))
        if (v !== undefined) Object.assign(req, { [k]: v });
      return batchFor('SubmitJob').submitJob(req);
    },

    describejobs(f) {
      const ids = f.stringList('jobs', { max: 100 });
      if (ids === undefined) throw BATCH_RULES.missing('jobs');
      if (home.owner) return { jobs: batchFor('DescribeJobs').describeJobs(ids) };
      const byId = new Map(recordedJobs().map((j) => [j.jobId, j]));
      return { jobs: ids.map((id) => byId.get(id)).filter((j) => j !== undefined) };
    },

    listjobs(f) {
      const queue = f.string('jobQueue', { min: 1 });
      const arrayJobId = f.string('arrayJobId', { min: 1 });
      if (f.has('multiNodeJobId'))
        throw client('multiNodeJobId: Strand has no multi-node parallel jobs');
      if ((queue === undefined) === (arrayJobId === undefined))
        throw client('give exactly one of jobQueue and arrayJobId');
      const jobStatus = f.oneOf('jobStatus', JOB_STATUSES);
      const filters = (f.list('filters') ?? []).map((x) => {
        const filter = new Fields((x ?? {}) as Body, BATCH_RULES);
        return {
          name: filter.requiredString('name'),
          values: filter.stringList('values') ?? [],
        };
      });
      const limit = pageSize(f, 100);
      const scope = `ListJobs|${JSON.stringify([queue ?? null, arrayJobId ?? null, jobStatus ?? null, filters])}`;
      const after = cursorOf(f, scope);
      const queueName = queue === undefined ? undefined : resourceName(queue, 'job-queue');
      // With filters, any status; without, the status asked for, RUNNING when none (as AWS).
      const status = filters.length > 0 ? undefined : (jobStatus ?? 'RUNNING');
      const jobs = recordedJobs().filter(
        (j) =>
          (queueName === undefined
            ? j.jobId.startsWith(`${arrayJobId}:`)
            : j.arrayProperties?.index === undefined &&
              resourceName(j.jobQueue, 'job-queue') === queueName) &&
          (status === undefined || j.status === status) &&
          passesFilters(j, filters),
      );
      // Newest first, as AWS sorts a filtered listing.
      const listed = page(jobs, (j) => [-j.createdAt, j.jobId], limit, after);
      return { jobSummaryList: listed.items.map(jobSummary), ...nextToken(scope, listed.next) };
    },

    terminatejob(f) {
      return stop(f, 'TerminateJob', () => true);
    },

    canceljob(f) {
      // A job that has started is not cancelled (the call still succeeds), as AWS does.
      return stop(f, 'CancelJob', (j) => ['SUBMITTED', 'PENDING', 'RUNNABLE'].includes(j.status));
    },
  };

  /** TerminateJob and CancelJob: answered at once; the job ends as its executor stops it. */
  const stop = (f: Fields, what: string, applies: (job: JobDetail) => boolean) => {
    const jobId = f.requiredString('jobId', { min: 1 });
    const reason = f.requiredString('reason', { min: 1 });
    const batch = batchFor(what);
    const job = batch.getJob(jobId);
    if (!job) throw client(`no job with id "${jobId}"`);
    if (applies(job))
      batch.terminateJob(jobId, reason).catch(() => {
        // Ended meanwhile, or the executor could not be reached: the job's status says which.
      });
    return {};
  };

  return new Map(
    Object.entries(operations).map(([name, fn]) => [
      name,
      async (body: Body) => {
        try {
          return await fn(new Fields(body, BATCH_RULES));
        } catch (err) {
          throw batchError(err);
        }
      },
    ]),
  );
}
