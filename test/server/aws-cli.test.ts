/**
 * The server with the AWS CLI (Debian's awscli at /usr/bin/aws; .ci/run installs it), pointed at
 * it with --endpoint-url and the home's credentials file, as a user would.
 */
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StrandServerHandle } from '../../src/server/serve.js';
import { serverOn, tempHome, waitUntil } from './helpers.js';

const AWS = '/usr/bin/aws';

let server: StrandServerHandle;
let home: string;

beforeAll(async () => {
  home = tempHome();
  server = await serverOn(home);
});
afterAll(() => server?.close());

/** Runs the AWS CLI (asynchronously: the server answers in this process). */
function aws(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      AWS,
      ['--endpoint-url', server.endpoint, '--region', 'us-east-1', '--output', 'json', ...args],
      {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: home,
          AWS_SHARED_CREDENTIALS_FILE: server.credentials.path,
          AWS_CONFIG_FILE: join(home, 'no-config'),
          AWS_PROFILE: 'strand',
          AWS_PAGER: '',
          ...env,
        },
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) =>
        resolve({
          code: error ? ((error as { code?: number }).code ?? 1) : 0,
          out: stdout,
          err: stderr,
        }),
    );
  });
}

async function awsJson<T>(args: string[]): Promise<T> {
  const r = await aws(args);
  if (r.code !== 0) throw new Error(`aws ${args.join(' ')} exited ${r.code}: ${r.err}`);
  return (r.out.trim() === '' ? {} : JSON.parse(r.out)) as T;
}

describe.skipIf(!existsSync(AWS))('the AWS CLI against strand server', () => {
  it('a state machine that submits a Batch job, followed to SUCCEEDED, its history read in pages', async () => {
    await awsJson([
      'batch',
      'register-job-definition',
      '--job-definition-name',
      'cli-hello',
      '--type',
      'container',
      '--container-properties',
      JSON.stringify({
        command: [process.execPath, '-e', 'console.log("hello")'],
        resourceRequirements: [
          { type: 'VCPU', value: '1' },
          { type: 'MEMORY', value: '128' },
        ],
      }),
    ]);
    const { stateMachineArn } = await awsJson<{ stateMachineArn: string }>([
      'stepfunctions',
      'create-state-machine',
      '--name',
      'cli-pipeline',
      '--role-arn',
      'arn:aws:iam::123456789012:role/StatesRole',
      '--definition',
      JSON.stringify({
        StartAt: 'Hello',
        States: {
          Hello: {
            Type: 'Task',
            Resource: 'arn:aws:states:::batch:submitJob.sync',
            Parameters: { JobName: 'cli-hello', JobQueue: 'default', JobDefinition: 'cli-hello' },
            ResultSelector: { 'status.$': '$.Status' },
            Next: 'Done',
          },
          Done: { Type: 'Pass', End: true },
        },
      }),
    ]);
    const { executionArn } = await awsJson<{ executionArn: string }>([
      'stepfunctions',
      'start-execution',
      '--state-machine-arn',
      stateMachineArn,
      '--name',
      'cli-1',
      '--input',
      '{"sample":"S1"}',
    ]);
    const done = await waitUntil(
      'the execution to end',
      async () => {
        const d = await awsJson<{ status: string; output?: string }>([
          'stepfunctions',
          'describe-execution',
          '--execution-arn',
          executionArn,
        ]);
        return d.status === 'RUNNING' ? undefined : d;
      },
      120_000,
      200,
    );
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output!)).toEqual({ status: 'SUCCEEDED' });

    const all = await awsJson<{ events: { id: number; type: string }[] }>([
      'stepfunctions',
      'get-execution-history',
      '--execution-arn',
      executionArn,
      '--no-paginate',
    ]);
    expect(all.events[0].type).toBe('ExecutionStarted');
    expect(all.events.at(-1)!.type).toBe('ExecutionSucceeded');
    // The CLI follows nextToken page after page (two events a page) and joins them.
    const paged = await awsJson<{ events: { id: number }[] }>([
      'stepfunctions',
      'get-execution-history',
      '--execution-arn',
      executionArn,
      '--page-size',
      '2',
    ]);
    expect(paged.events.map((e) => e.id)).toEqual(all.events.map((e) => e.id));
    const firstThree = await awsJson<{ events: { id: number }[]; NextToken: string }>([
      'stepfunctions',
      'get-execution-history',
      '--execution-arn',
      executionArn,
      '--max-items',
      '3',
    ]);
    expect(firstThree.events.map((e) => e.id)).toEqual([1, 2, 3]);
    const rest = await awsJson<{ events: { id: number }[] }>([
      'stepfunctions',
      'get-execution-history',
      '--execution-arn',
      executionArn,
      '--starting-token',
      firstThree.NextToken,
    ]);
    expect(rest.events.map((e) => e.id)).toEqual(all.events.slice(3).map((e) => e.id));

    const listed = await awsJson<{ executions: { name: string; status: string }[] }>([
      'stepfunctions',
      'list-executions',
      '--state-machine-arn',
      stateMachineArn,
    ]);
    expect(listed.executions).toEqual([
      expect.objectContaining({ name: 'cli-1', status: 'SUCCEEDED' }),
    ]);
  });

  it('register, submit, describe and terminate jobs', async () => {
    await awsJson([
      'batch',
      'register-job-definition',
      '--job-definition-name',
      'cli-sleep',
      '--type',
      'container',
      '--container-properties',
      JSON.stringify({
        command: ['sleep', '600'],
        resourceRequirements: [
          { type: 'VCPU', value: '1' },
          { type: 'MEMORY', value: '64' },
        ],
      }),
    ]);
    const { jobId } = await awsJson<{ jobId: string }>([
      'batch',
      'submit-job',
      '--job-name',
      'cli-sleep',
      '--job-queue',
      'default',
      '--job-definition',
      'cli-sleep',
    ]);
    const describe = () =>
      awsJson<{ jobs: { status: string; statusReason?: string }[] }>([
        'batch',
        'describe-jobs',
        '--jobs',
        jobId,
      ]);
    await waitUntil(
      'the job to run',
      async () => (await describe()).jobs[0].status === 'RUNNING',
      60_000,
      200,
    );
    const running = await awsJson<{ jobSummaryList: { jobId: string }[] }>([
      'batch',
      'list-jobs',
      '--job-queue',
      'default',
    ]);
    expect(running.jobSummaryList.map((j) => j.jobId)).toContain(jobId);
    await awsJson([
      'batch',
      'terminate-job',
      '--job-id',
      jobId,
      '--reason',
      'terminated from the AWS CLI',
    ]);
    const ended = await waitUntil(
      'the job to end',
      async () => {
        const j = (await describe()).jobs[0];
        return j.status === 'FAILED' ? j : undefined;
      },
      60_000,
      200,
    );
    expect(ended.statusReason).toBe('terminated from the AWS CLI');
  });

  it('refuses unsigned requests, a wrong secret, an unknown key and a tampered token, in the words the CLI knows', async () => {
    const unsigned = await aws(['stepfunctions', 'list-state-machines', '--no-sign-request']);
    expect(unsigned.code).not.toBe(0);
    expect(unsigned.err).toMatch(/\(MissingAuthenticationTokenException\)/);

    const wrong = join(home, 'wrong-credentials');
    writeFileSync(
      wrong,
      `[strand]\naws_access_key_id = ${server.credentials.accessKeyId}\naws_secret_access_key = not-the-secret\n[stranger]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = x\n`,
    );
    const badSecret = await aws(['batch', 'describe-job-queues'], {
      AWS_SHARED_CREDENTIALS_FILE: wrong,
    });
    expect(badSecret.err).toMatch(/\(InvalidSignatureException\)/);
    const stranger = await aws(['stepfunctions', 'list-state-machines'], {
      AWS_SHARED_CREDENTIALS_FILE: wrong,
      AWS_PROFILE: 'stranger',
    });
    expect(stranger.err).toMatch(/\(UnrecognizedClientException\)/);

    const tampered = await aws([
      'stepfunctions',
      'list-state-machines',
      '--starting-token',
      'v1.e30.forged',
    ]);
    expect(tampered.err).toMatch(/\(InvalidToken\).*altered/);
    const missing = await aws([
      'stepfunctions',
      'describe-execution',
      '--execution-arn',
      'arn:aws:states:local:000000000000:execution:x:y',
    ]);
    expect(missing.err).toMatch(/\(ExecutionDoesNotExist\)/);
  });
});
