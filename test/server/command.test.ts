/**
 * `strand server` as a process of its own: the addresses and TLS it accepts, what it prints, how
 * it stops, and a server killed mid-run whose successor carries the run on.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import {
  DescribeJobsCommand,
  ListJobsCommand,
  RegisterJobDefinitionCommand,
} from '@aws-sdk/client-batch';
import {
  CreateStateMachineCommand,
  DescribeExecutionCommand,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { BatchClient } from '@aws-sdk/client-batch';
import { SFNClient } from '@aws-sdk/client-sfn';
import { afterEach, describe, expect, it } from 'vitest';
import { loadOrCreateCredentials } from '../../src/server/credentials.js';
import { spawnStrand, strand } from '../pipeline/cli.js';
import { nodeJob, tempHome, waitUntil } from './helpers.js';

type Child = ReturnType<typeof spawnStrand>;
const children: Child[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    c.kill('SIGKILL');
    await c.done;
  }
});

function serve(args: string[]): Child {
  const c = spawnStrand(['server', '--port', '0', ...args]);
  children.push(c);
  return c;
}

const endpointOf = (c: Child) =>
  waitUntil('the endpoint line', () => /^endpoint: (\S+)$/m.exec(c.out())?.[1]);

describe('strand server', () => {
  it.each([
    [['--host', '0.0.0.0'], /--host 0\.0\.0\.0 is not a loopback address: serving it needs TLS/],
    [['--tls-cert', 'c.pem'], /--tls-cert given alone: HTTPS needs both/],
    [['--port', 'eighty'], /--port eighty: give a port number/],
    [
      ['--tls-cert', '/nonexistent/c.pem', '--tls-key', '/nonexistent/k.pem'],
      /--tls-cert \/nonexistent\/c.pem: cannot be read \(ENOENT\)/,
    ],
  ])('refuses %j with exit 2, before taking the home', async (args, message) => {
    const home = tempHome();
    const r = await strand('server', '--home', home, ...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });

  it('serves loopback over HTTP, prints its endpoint and credentials, and stops on SIGTERM', async () => {
    const home = tempHome();
    const c = serve(['--home', home]);
    const endpoint = await endpointOf(c);
    expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // Written to stderr just after the endpoint to stdout: two pipes, read in either order.
    const line = `credentials: ${join(home, 'credentials')} (profile strand, made now)`;
    await waitUntil('the credentials line', () => c.err().includes(line));
    const creds = loadOrCreateCredentials(home);
    expect(c.err() + c.out()).not.toContain(creds.secretAccessKey);
    const unsigned = await fetch(`${endpoint}/`, { method: 'POST', body: '{}' });
    expect(unsigned.status).toBe(403);
    c.kill('SIGTERM');
    const done = await c.done;
    expect(done.code).toBe(0);
    expect(done.err).toMatch(/stopped \(SIGTERM\)/);
  });

  it('serves another address only over TLS, with the certificate given', async () => {
    const home = tempHome();
    const cert = join(home, 'cert.pem');
    const key = join(home, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
      ],
      { stdio: 'ignore' },
    );
    const c = serve(['--home', home, '--host', '0.0.0.0', '--tls-cert', cert, '--tls-key', key]);
    const endpoint = await endpointOf(c);
    expect(endpoint).toMatch(/^https:\/\/0\.0\.0\.0:\d+$/);
    const port = Number(new URL(endpoint).port);
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/',
          rejectUnauthorized: false,
          headers: { 'x-amz-target': 'AWSStepFunctions.ListStateMachines' },
        },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end('{}');
    });
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body)).toMatchObject({
      __type: 'MissingAuthenticationTokenException',
    });
    const bad = await strand('server', '--home', tempHome(), '--tls-cert', cert, '--tls-key', cert);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--tls-cert\/--tls-key: not a certificate and its private key/);
  });

  it('a server killed mid-run is succeeded by the next, which carries the run on', async () => {
    const home = tempHome();
    const flag = join(home, 'go');
    const first = serve(['--home', home]);
    let endpoint = await endpointOf(first);
    const creds = loadOrCreateCredentials(home);
    const clients = (at: string) => ({
      sfn: new SFNClient({ endpoint: at, region: 'local', credentials: creds }),
      batch: new BatchClient({ endpoint: at, region: 'local', credentials: creds }),
    });
    let { sfn, batch } = clients(endpoint);
    await batch.send(
      new RegisterJobDefinitionCommand(
        nodeJob(
          'waits-for-flag',
          `const t = setInterval(() => require("fs").existsSync(${JSON.stringify(flag)}) && clearInterval(t), 20)`,
        ),
      ),
    );
    const { stateMachineArn } = await sfn.send(
      new CreateStateMachineCommand({
        name: 'survives',
        roleArn: 'arn:aws:iam::123456789012:role/R',
        definition: JSON.stringify({
          StartAt: 'Run',
          States: {
            Run: {
              Type: 'Task',
              Resource: 'arn:aws:states:::batch:submitJob.sync',
              Parameters: {
                JobName: 'waits',
                JobQueue: 'default',
                JobDefinition: 'waits-for-flag',
              },
              End: true,
            },
          },
        }),
      }),
    );
    const { executionArn } = await sfn.send(
      new StartExecutionCommand({ stateMachineArn, name: 'survivor' }),
    );
    await waitUntil('the job to run', async () => {
      const list = await batch.send(
        new ListJobsCommand({ jobQueue: 'default', jobStatus: 'RUNNING' }),
      );
      return list.jobSummaryList!.length === 1;
    });
    sfn.destroy();
    batch.destroy();

    first.kill('SIGKILL');
    await first.done;
    const second = serve(['--home', home]);
    endpoint = await endpointOf(second);
    ({ sfn, batch } = clients(endpoint));
    try {
      expect((await sfn.send(new DescribeExecutionCommand({ executionArn }))).status).toBe(
        'RUNNING',
      );
      writeFileSync(flag, '');
      const d = await waitUntil('the execution to end', async () => {
        const x = await sfn.send(new DescribeExecutionCommand({ executionArn }));
        return x.status === 'RUNNING' ? undefined : x;
      });
      expect(d.status).toBe('SUCCEEDED');
      const job = JSON.parse(d.output!) as { JobId: string; Attempts: unknown[] };
      // The job ran once: the second server re-attached to it rather than starting it again.
      expect(job.Attempts).toHaveLength(1);
      const [described] = (await batch.send(new DescribeJobsCommand({ jobs: [job.JobId] }))).jobs!;
      expect(described.status).toBe('SUCCEEDED');
    } finally {
      sfn.destroy();
      batch.destroy();
    }
  });
});
