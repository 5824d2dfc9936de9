/**
 * The server over a socket with AWS's own SDK clients (@aws-sdk/client-sfn, client-batch): a
 * state machine that runs a Batch job, followed to SUCCEEDED; jobs registered, submitted,
 * described and terminated; callbacks by task token; and the exceptions the clients raise.
 */
import {
  CancelJobCommand,
  CreateComputeEnvironmentCommand,
  CreateJobQueueCommand,
  DeregisterJobDefinitionCommand,
  DescribeComputeEnvironmentsCommand,
  DescribeJobDefinitionsCommand,
  DescribeJobQueuesCommand,
  DescribeJobsCommand,
  ListJobsCommand,
  RegisterJobDefinitionCommand,
  SubmitJobCommand,
  TerminateJobCommand,
  UpdateComputeEnvironmentCommand,
  UpdateJobQueueCommand,
  ClientException,
  type BatchClient,
} from '@aws-sdk/client-batch';
import {
  CreateStateMachineCommand,
  DeleteStateMachineCommand,
  DescribeExecutionCommand,
  DescribeStateMachineCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  GetExecutionHistoryCommand,
  InvalidArn,
  InvalidDefinition,
  InvalidExecutionInput,
  InvalidToken,
  ListExecutionsCommand,
  ListStateMachinesCommand,
  RedriveExecutionCommand,
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  StartExecutionCommand,
  StateMachineDoesNotExist,
  StopExecutionCommand,
  TaskTimedOut,
  UpdateStateMachineCommand,
  ValidateStateMachineDefinitionCommand,
  ValidationException,
  type HistoryEvent,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StrandServerHandle } from '../../src/server/serve.js';
import { batchClient, nodeJob, serverOn, sfnClient, tempHome, waitUntil } from './helpers.js';

let server: StrandServerHandle;
let sfn: SFNClient;
let batch: BatchClient;
let home: string;
const log: string[] = [];

beforeAll(async () => {
  home = tempHome();
  server = await serverOn(home, { log: (l) => log.push(l) });
  sfn = sfnClient(server);
  batch = batchClient(server);
});
afterAll(async () => {
  sfn?.destroy();
  batch?.destroy();
  await server?.close();
});

const ROLE = 'arn:aws:iam::123456789012:role/StatesRole';

async function createStateMachine(name: string, definition: object): Promise<string> {
  const r = await sfn.send(
    new CreateStateMachineCommand({ name, roleArn: ROLE, definition: JSON.stringify(definition) }),
  );
  return r.stateMachineArn!;
}

async function finished(executionArn: string) {
  return waitUntil(`execution ${executionArn} to end`, async () => {
    const d = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    return d.status === 'RUNNING' ? undefined : d;
  });
}

async function jobEnded(jobId: string) {
  return waitUntil(`job ${jobId} to end`, async () => {
    const [job] = (await batch.send(new DescribeJobsCommand({ jobs: [jobId] }))).jobs ?? [];
    return job && (job.status === 'SUCCEEDED' || job.status === 'FAILED') ? job : undefined;
  });
}

/** Every event of an execution's history, read a page of `size` at a time. */
async function historyInPages(executionArn: string, size: number) {
  const events: HistoryEvent[] = [];
  let pages = 0;
  let nextToken: string | undefined;
  do {
    const r = await sfn.send(
      new GetExecutionHistoryCommand({ executionArn, maxResults: size, nextToken }),
    );
    events.push(...(r.events ?? []));
    nextToken = r.nextToken;
    pages++;
  } while (nextToken);
  return { events, pages };
}

describe('Step Functions through @aws-sdk/client-sfn', () => {
  it('a state machine that submits a Batch job (submitJob.sync) runs to SUCCEEDED; its history pages', async () => {
    await batch.send(
      new RegisterJobDefinitionCommand(
        nodeJob('hello', 'console.log("hello from", process.env.WHO)'),
      ),
    );
    const arn = await createStateMachine('with-job', {
      StartAt: 'Run',
      States: {
        Run: {
          Type: 'Task',
          Resource: 'arn:aws:states:::batch:submitJob.sync',
          Parameters: {
            JobName: 'hello',
            JobQueue: 'default',
            JobDefinition: 'hello',
            ContainerOverrides: { Environment: [{ Name: 'WHO', 'Value.$': '$.who' }] },
          },
          ResultSelector: { 'status.$': '$.Status', 'exit.$': '$.Attempts[0].Container.ExitCode' },
          End: true,
        },
      },
    });
    const { executionArn, startDate } = await sfn.send(
      new StartExecutionCommand({ stateMachineArn: arn, name: 'first', input: '{"who":"sdk"}' }),
    );
    expect(executionArn).toBe('arn:aws:states:local:000000000000:execution:with-job:first');
    expect(startDate).toBeInstanceOf(Date);
    const d = await finished(executionArn!);
    expect(d).toMatchObject({
      status: 'SUCCEEDED',
      name: 'first',
      stateMachineArn: arn,
      input: '{"who":"sdk"}',
    });
    expect(JSON.parse(d.output!)).toEqual({ status: 'SUCCEEDED', exit: 0 });
    expect(d.stopDate!.getTime()).toBeGreaterThanOrEqual(d.startDate!.getTime());

    const whole = await sfn.send(
      new GetExecutionHistoryCommand({ executionArn, maxResults: 1000 }),
    );
    expect(whole.nextToken).toBeUndefined();
    const types = whole.events!.map((e) => e.type);
    expect(types[0]).toBe('ExecutionStarted');
    expect(types).toEqual(expect.arrayContaining(['TaskStateEntered', 'TaskSucceeded']));
    expect(types.at(-1)).toBe('ExecutionSucceeded');
    const paged = await historyInPages(executionArn!, 2);
    expect(paged.pages).toBe(Math.ceil(whole.events!.length / 2));
    expect(paged.events).toEqual(whole.events);
    const reversed = await sfn.send(
      new GetExecutionHistoryCommand({ executionArn, reverseOrder: true, maxResults: 3 }),
    );
    expect(reversed.events!.map((e) => e.id)).toEqual(
      whole
        .events!.slice(-3)
        .map((e) => e.id)
        .reverse(),
    );
    const bare = await sfn.send(
      new GetExecutionHistoryCommand({ executionArn, includeExecutionData: false }),
    );
    expect(bare.events![0].executionStartedEventDetails?.input).toBeUndefined();

    const listed = await sfn.send(new ListExecutionsCommand({ stateMachineArn: arn }));
    expect(listed.executions!.map((e) => e.name)).toEqual(['first']);
    expect(
      (await sfn.send(new ListExecutionsCommand({ stateMachineArn: arn, statusFilter: 'FAILED' })))
        .executions,
    ).toEqual([]);
  });

  it('create, describe, update, list and delete state machines; validate definitions', async () => {
    const definition = { StartAt: 'P', States: { P: { Type: 'Pass', Result: 1, End: true } } };
    const arn = await createStateMachine('crud', definition);
    // The same request again answers as the first did; another definition is refused.
    expect(await createStateMachine('crud', definition)).toBe(arn);
    await expect(
      createStateMachine('crud', { StartAt: 'Q', States: { Q: { Type: 'Succeed' } } }),
    ).rejects.toThrow(/State Machine Already Exists/);
    const d = await sfn.send(new DescribeStateMachineCommand({ stateMachineArn: arn }));
    expect(d).toMatchObject({ name: 'crud', status: 'ACTIVE', type: 'STANDARD', roleArn: ROLE });
    expect(JSON.parse(d.definition!)).toEqual(definition);
    expect(d.creationDate).toBeInstanceOf(Date);

    const updated = await sfn.send(
      new UpdateStateMachineCommand({
        stateMachineArn: arn,
        definition: JSON.stringify({ StartAt: 'S', States: { S: { Type: 'Succeed' } } }),
      }),
    );
    expect(updated.updateDate).toBeInstanceOf(Date);
    expect(
      JSON.parse(
        (await sfn.send(new DescribeStateMachineCommand({ stateMachineArn: arn }))).definition!,
      ).StartAt,
    ).toBe('S');

    const names: string[] = [];
    let nextToken: string | undefined;
    do {
      const page = await sfn.send(new ListStateMachinesCommand({ maxResults: 1, nextToken }));
      names.push(...page.stateMachines!.map((s) => s.name!));
      nextToken = page.nextToken;
    } while (nextToken);
    expect(names).toContain('crud');
    expect([...names].sort()).toEqual(names);

    const ok = await sfn.send(
      new ValidateStateMachineDefinitionCommand({ definition: JSON.stringify(definition) }),
    );
    expect(ok).toMatchObject({ result: 'OK', diagnostics: [] });
    const fail = await sfn.send(
      new ValidateStateMachineDefinitionCommand({
        definition: '{"StartAt":"X","States":{"Y":{"Type":"Pass","End":true}}}',
      }),
    );
    expect(fail.result).toBe('FAIL');
    expect(fail.diagnostics![0]).toMatchObject({
      severity: 'ERROR',
      code: expect.any(String),
      message: expect.any(String),
    });

    await sfn.send(new DeleteStateMachineCommand({ stateMachineArn: arn }));
    await expect(
      sfn.send(new DescribeStateMachineCommand({ stateMachineArn: arn })),
    ).rejects.toBeInstanceOf(StateMachineDoesNotExist);
  });

  it('SendTaskSuccess, -Heartbeat and -Failure answer .waitForTaskToken tasks', async () => {
    await batch.send(new RegisterJobDefinitionCommand(nodeJob('noop', '')));
    const arn = await createStateMachine('callback', {
      StartAt: 'Wait for token',
      States: {
        'Wait for token': {
          Type: 'Task',
          Resource: 'arn:aws:states:::batch:submitJob.waitForTaskToken',
          Parameters: {
            JobName: 'callback',
            JobQueue: 'default',
            JobDefinition: 'noop',
            ContainerOverrides: {
              Environment: [{ Name: 'TASK_TOKEN', 'Value.$': '$$.Task.Token' }],
            },
          },
          HeartbeatSeconds: 600,
          End: true,
        },
      },
    });
    // The job is handed the token, as a worker would be; the test plays the worker.
    const tokenOf = async (executionArn: string) =>
      waitUntil('the job holding the token', async () => {
        const jobs = await batch.send(
          new ListJobsCommand({
            jobQueue: 'default',
            filters: [{ name: 'JOB_NAME', values: ['callback'] }],
          }),
        );
        const ids = jobs.jobSummaryList!.map((j) => j.jobId!);
        const described = ids.length
          ? (await batch.send(new DescribeJobsCommand({ jobs: ids }))).jobs!
          : [];
        const env = described
          .flatMap((j) => j.container?.environment ?? [])
          .filter((e) => e.name === 'TASK_TOKEN')
          .map((e) => e.value!);
        return env.find((t) =>
          Buffer.from(t.slice(t.indexOf('.') + 1), 'base64url')
            .toString()
            .includes(executionArn),
        );
      });

    const ok = await sfn.send(new StartExecutionCommand({ stateMachineArn: arn, name: 'cb-ok' }));
    const token = await tokenOf(ok.executionArn!);
    await sfn.send(new SendTaskHeartbeatCommand({ taskToken: token }));
    await sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: '{"answer":42}' }));
    const d = await finished(ok.executionArn!);
    expect(d).toMatchObject({ status: 'SUCCEEDED', output: '{"answer":42}' });
    // The task has ended: its token is spent.
    await expect(
      sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: '{}' })),
    ).rejects.toBeInstanceOf(TaskTimedOut);

    const bad = await sfn.send(
      new StartExecutionCommand({ stateMachineArn: arn, name: 'cb-fail' }),
    );
    await sfn.send(
      new SendTaskFailureCommand({
        taskToken: await tokenOf(bad.executionArn!),
        error: 'Worker.Refused',
        cause: 'no',
      }),
    );
    expect(await finished(bad.executionArn!)).toMatchObject({
      status: 'FAILED',
      error: 'Worker.Refused',
      cause: 'no',
    });

    await expect(
      sfn.send(new SendTaskSuccessCommand({ taskToken: 'made-up', output: '{}' })),
    ).rejects.toBeInstanceOf(InvalidToken);
  });

  it('StopExecution aborts a running execution; RedriveExecution carries a failed one on', async () => {
    const arn = await createStateMachine('waits', {
      StartAt: 'W',
      States: { W: { Type: 'Wait', Seconds: 3600, End: true } },
    });
    const { executionArn } = await sfn.send(
      new StartExecutionCommand({ stateMachineArn: arn, name: 'to-stop' }),
    );
    const stopped = await sfn.send(
      new StopExecutionCommand({ executionArn, error: 'Test.Stop', cause: 'enough' }),
    );
    expect(stopped.stopDate).toBeInstanceOf(Date);
    expect(await finished(executionArn!)).toMatchObject({
      status: 'ABORTED',
      error: 'Test.Stop',
      redriveStatus: 'REDRIVABLE',
    });

    const flag = join(home, 'redrive-flag');
    await batch.send(
      new RegisterJobDefinitionCommand(
        nodeJob(
          'needs-flag',
          `process.exit(require("fs").existsSync(${JSON.stringify(flag)}) ? 0 : 3)`,
        ),
      ),
    );
    const flaky = await createStateMachine('flaky', {
      StartAt: 'Run',
      States: {
        Run: {
          Type: 'Task',
          Resource: 'arn:aws:states:::batch:submitJob.sync',
          Parameters: { JobName: 'needs-flag', JobQueue: 'default', JobDefinition: 'needs-flag' },
          End: true,
        },
      },
    });
    const run = await sfn.send(
      new StartExecutionCommand({ stateMachineArn: flaky, name: 'flaky-1' }),
    );
    expect(await finished(run.executionArn!)).toMatchObject({ status: 'FAILED' });
    writeFileSync(flag, '');
    const redriven = await sfn.send(
      new RedriveExecutionCommand({ executionArn: run.executionArn }),
    );
    expect(redriven.redriveDate).toBeInstanceOf(Date);
    expect(await finished(run.executionArn!)).toMatchObject({
      status: 'SUCCEEDED',
      redriveCount: 1,
    });
    const listed = await sfn.send(
      new ListExecutionsCommand({ stateMachineArn: flaky, redriveFilter: 'REDRIVEN' }),
    );
    expect(listed.executions!.map((e) => e.name)).toEqual(['flaky-1']);
  });

  it('the client raises the exceptions it knows', async () => {
    const arn = await createStateMachine('errors', {
      StartAt: 'P',
      States: { P: { Type: 'Pass', End: true } },
    });
    await expect(
      sfn.send(
        new DescribeExecutionCommand({
          executionArn: `${arn.replace(':stateMachine:', ':execution:')}:nope`,
        }),
      ),
    ).rejects.toBeInstanceOf(ExecutionDoesNotExist);
    await expect(
      sfn.send(new DescribeExecutionCommand({ executionArn: 'not-an-arn' })),
    ).rejects.toBeInstanceOf(InvalidArn);
    await expect(
      sfn.send(new StartExecutionCommand({ stateMachineArn: `${arn}-missing` })),
    ).rejects.toBeInstanceOf(StateMachineDoesNotExist);
    await expect(
      sfn.send(new StartExecutionCommand({ stateMachineArn: arn, input: '{' })),
    ).rejects.toBeInstanceOf(InvalidExecutionInput);
    await expect(
      sfn.send(
        new StartExecutionCommand({
          stateMachineArn: arn,
          input: JSON.stringify('x'.repeat(300_000)),
        }),
      ),
    ).rejects.toBeInstanceOf(ValidationException);
    await expect(
      sfn.send(
        new CreateStateMachineCommand({
          name: 'broken',
          roleArn: ROLE,
          definition: '{"StartAt":"A","States":{}}',
        }),
      ),
    ).rejects.toBeInstanceOf(InvalidDefinition);
    await sfn.send(new StartExecutionCommand({ stateMachineArn: arn, name: 'once' }));
    await finished(`${arn.replace(':stateMachine:', ':execution:')}:once`);
    await expect(
      sfn.send(new StartExecutionCommand({ stateMachineArn: arn, name: 'once' })),
    ).rejects.toBeInstanceOf(ExecutionAlreadyExists);
    await expect(
      sfn.send(new ListStateMachinesCommand({ nextToken: 'v1.tampered.token' })),
    ).rejects.toBeInstanceOf(InvalidToken);
  });
});

describe('Batch through @aws-sdk/client-batch', () => {
  it('register, submit, describe and list jobs', async () => {
    const reg = await batch.send(
      new RegisterJobDefinitionCommand(nodeJob('echo', 'console.log(process.argv.length)')),
    );
    expect(reg).toMatchObject({ jobDefinitionName: 'echo', revision: 1 });
    expect(reg.jobDefinitionArn).toBe('arn:aws:batch:local:000000000000:job-definition/echo:1');
    const { jobId, jobArn } = await batch.send(
      new SubmitJobCommand({
        jobName: 'echo-1',
        jobQueue: 'default',
        jobDefinition: 'echo',
        tags: { project: 'sdk' },
      }),
    );
    expect(jobArn).toBe(`arn:aws:batch:local:000000000000:job/${jobId}`);
    const job = await jobEnded(jobId!);
    expect(job).toMatchObject({ jobName: 'echo-1', status: 'SUCCEEDED', tags: { project: 'sdk' } });
    expect(job.attempts![0].container!.exitCode).toBe(0);
    expect(typeof job.createdAt).toBe('number');

    const succeeded = await batch.send(
      new ListJobsCommand({ jobQueue: 'default', jobStatus: 'SUCCEEDED' }),
    );
    expect(succeeded.jobSummaryList!.map((j) => j.jobId)).toContain(jobId);
    // Without a status, ListJobs lists RUNNING jobs only, as AWS's does.
    expect(
      (await batch.send(new ListJobsCommand({ jobQueue: 'default' }))).jobSummaryList!.map(
        (j) => j.jobId,
      ),
    ).not.toContain(jobId);
    const byName = await batch.send(
      new ListJobsCommand({
        jobQueue: 'default',
        filters: [{ name: 'JOB_NAME', values: ['ECHO-*'] }],
      }),
    );
    expect(byName.jobSummaryList!.map((j) => j.jobId)).toEqual([jobId]);
    expect((await batch.send(new DescribeJobsCommand({ jobs: ['no-such-job'] }))).jobs).toEqual([]);
  });

  it('terminate a running job and cancel a waiting one', async () => {
    await batch.send(
      new RegisterJobDefinitionCommand(nodeJob('sleeper', 'setTimeout(() => {}, 600000)')),
    );
    const { jobId } = await batch.send(
      new SubmitJobCommand({ jobName: 'sleeper', jobQueue: 'default', jobDefinition: 'sleeper' }),
    );
    await waitUntil(
      'the sleeper to run',
      async () =>
        (await batch.send(new DescribeJobsCommand({ jobs: [jobId!] }))).jobs![0].status ===
        'RUNNING',
    );
    await batch.send(new TerminateJobCommand({ jobId, reason: 'test says stop' }));
    expect(await jobEnded(jobId!)).toMatchObject({
      status: 'FAILED',
      statusReason: 'test says stop',
    });

    // A job that waits for another does not start: cancelling it ends it.
    const first = await batch.send(
      new SubmitJobCommand({ jobName: 'blocker', jobQueue: 'default', jobDefinition: 'sleeper' }),
    );
    const waiting = await batch.send(
      new SubmitJobCommand({
        jobName: 'waiter',
        jobQueue: 'default',
        jobDefinition: 'sleeper',
        dependsOn: [{ jobId: first.jobId }],
      }),
    );
    await batch.send(new CancelJobCommand({ jobId: waiting.jobId, reason: 'not needed' }));
    expect(await jobEnded(waiting.jobId!)).toMatchObject({
      status: 'FAILED',
      statusReason: 'not needed',
    });
    await batch.send(new TerminateJobCommand({ jobId: first.jobId, reason: 'done' }));
    await jobEnded(first.jobId!);
    await expect(
      batch.send(new TerminateJobCommand({ jobId: 'nope', reason: 'x' })),
    ).rejects.toBeInstanceOf(ClientException);
  });

  it('deregistered revisions are INACTIVE and cannot be submitted', async () => {
    await batch.send(new RegisterJobDefinitionCommand(nodeJob('versions', '')));
    await batch.send(new RegisterJobDefinitionCommand(nodeJob('versions', 'console.log(2)')));
    await batch.send(new DeregisterJobDefinitionCommand({ jobDefinition: 'versions:2' }));
    const defs = await batch.send(
      new DescribeJobDefinitionsCommand({ jobDefinitionName: 'versions' }),
    );
    expect(defs.jobDefinitions!.map((d) => [d.revision, d.status])).toEqual([
      [1, 'ACTIVE'],
      [2, 'INACTIVE'],
    ]);
    const active = await batch.send(
      new DescribeJobDefinitionsCommand({ jobDefinitionName: 'versions', status: 'ACTIVE' }),
    );
    expect(active.jobDefinitions!.map((d) => d.revision)).toEqual([1]);
    await expect(
      batch.send(
        new SubmitJobCommand({ jobName: 'v', jobQueue: 'default', jobDefinition: 'versions:2' }),
      ),
    ).rejects.toThrow(/INACTIVE/);
    // By name, the latest ACTIVE revision runs.
    const { jobId } = await batch.send(
      new SubmitJobCommand({ jobName: 'v', jobQueue: 'default', jobDefinition: 'versions' }),
    );
    expect((await jobEnded(jobId!)).jobDefinition).toMatch(/versions:1$/);
  });

  it('compute environments and job queues: create, update, describe', async () => {
    const ce = await batch.send(
      new CreateComputeEnvironmentCommand({
        computeEnvironmentName: 'small',
        type: 'MANAGED',
        computeResources: { type: 'EC2', maxvCpus: 2, minvCpus: 0, subnets: [], instanceRole: 'x' },
      }),
    );
    expect(ce.computeEnvironmentArn).toBe(
      'arn:aws:batch:local:000000000000:compute-environment/small',
    );
    const q = await batch.send(
      new CreateJobQueueCommand({
        jobQueueName: 'small-q',
        priority: 5,
        computeEnvironmentOrder: [{ order: 1, computeEnvironment: 'small' }],
      }),
    );
    expect(q.jobQueueArn).toBe('arn:aws:batch:local:000000000000:job-queue/small-q');
    await batch.send(
      new UpdateComputeEnvironmentCommand({
        computeEnvironment: 'small',
        computeResources: { maxvCpus: 3 },
      }),
    );
    await batch.send(
      new UpdateJobQueueCommand({ jobQueue: q.jobQueueArn, state: 'DISABLED', priority: 7 }),
    );
    const envs = await batch.send(
      new DescribeComputeEnvironmentsCommand({ computeEnvironments: ['small', 'not-there'] }),
    );
    expect(
      envs.computeEnvironments!.map((c) => [
        c.computeEnvironmentName,
        c.computeResources?.maxvCpus,
      ]),
    ).toEqual([['small', 3]]);
    const queues = await batch.send(new DescribeJobQueuesCommand({ jobQueues: ['small-q'] }));
    expect(queues.jobQueues![0]).toMatchObject({ state: 'DISABLED', priority: 7 });
    await expect(
      batch.send(
        new SubmitJobCommand({ jobName: 'x', jobQueue: 'small-q', jobDefinition: 'echo' }),
      ),
    ).rejects.toThrow(/DISABLED/);
    await expect(
      batch.send(
        new CreateJobQueueCommand({
          jobQueueName: 'bad',
          priority: 1,
          computeEnvironmentOrder: [{ order: 1, computeEnvironment: 'nope' }],
        }),
      ),
    ).rejects.toBeInstanceOf(ClientException);
  });
});

describe('authentication with the SDKs', () => {
  it.each([
    [
      'a wrong secret',
      'InvalidSignatureException',
      {
        credentials: () => ({
          accessKeyId: server.credentials.accessKeyId,
          secretAccessKey: 'wrong',
        }),
      },
    ],
    [
      'an unknown key',
      'UnrecognizedClientException',
      { credentials: () => ({ accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'x' }) },
    ],
    [
      'a clock 20 minutes slow',
      'InvalidSignatureException',
      { systemClockOffset: -20 * 60_000, maxAttempts: 1 },
    ],
  ])('%s: both clients get 403 %s', async (_what, name, extra) => {
    const options = {
      ...('credentials' in extra ? { credentials: extra.credentials() } : {}),
      ...('systemClockOffset' in extra
        ? { systemClockOffset: extra.systemClockOffset, maxAttempts: extra.maxAttempts }
        : {}),
    };
    const s = sfnClient(server, options);
    const b = batchClient(server, options);
    try {
      const sfnErr = await s.send(new ListStateMachinesCommand({})).catch((e: unknown) => e);
      const batchErr = await b.send(new DescribeJobQueuesCommand({})).catch((e: unknown) => e);
      for (const err of [sfnErr, batchErr])
        expect(err).toMatchObject({ name, $metadata: { httpStatusCode: 403 } });
    } finally {
      s.destroy();
      b.destroy();
    }
  });

  it('a client whose clock is off corrects it from the answer and retries, as against AWS', async () => {
    const s = sfnClient(server, { systemClockOffset: -20 * 60_000 });
    try {
      const r = await s.send(new ListStateMachinesCommand({}));
      expect(r.$metadata.httpStatusCode).toBe(200);
      expect(r.$metadata.attempts).toBe(2);
    } finally {
      s.destroy();
    }
  });

  it('the secret is in the credentials file only, never in the log', () => {
    expect(existsSync(server.credentials.path)).toBe(true);
    expect(log.join('\n')).not.toContain(server.credentials.secretAccessKey);
  });
});
