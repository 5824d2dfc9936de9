/**
 * The HTTP app without a socket (`app.request()`): what it answers to bad input, bad signatures
 * and faults, in each protocol's own error shape. Requests are signed here by hand, so bodies no
 * SDK would send can be sent.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { openStrand } from '../../src/app/index.js';
import { serverApp } from '../../src/server/app.js';
import { loadOrCreateCredentials } from '../../src/server/credentials.js';
import { ServerHome } from '../../src/server/home.js';
import { Registry } from '../../src/server/registry.js';
import type { Engine } from '../../src/engine/engine.js';
import {
  batchRequest,
  openSmall,
  sfnRequest,
  signedRequest,
  tempHome,
  waitUntil,
  type Keys,
} from './helpers.js';

const BASE = 'http://strand.test';
const cleanup: (() => void)[] = [];
afterEach(() =>
  cleanup
    .splice(0)
    .reverse()
    .forEach((fn) => fn()),
);

async function appOn(home = tempHome(), open = openSmall(home)) {
  const credentials = loadOrCreateCredentials(home);
  const registry = Registry.open(home);
  const serverHome = new ServerHome({ home, open, retryMs: 50 });
  await serverHome.start();
  cleanup.push(() => {
    serverHome.close();
    registry.close();
  });
  const log: string[] = [];
  const app = serverApp({ home: serverHome, registry, credentials, log: (l) => log.push(l) });
  const keys: Keys = {
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
  };
  return { app, keys, home, serverHome, log };
}

async function answer(res: Response) {
  return {
    status: res.status,
    type: res.headers.get('x-amzn-errortype'),
    contentType: res.headers.get('content-type'),
    body: JSON.parse(await res.text()) as Record<string, unknown>,
  };
}

const PASS = JSON.stringify({ StartAt: 'P', States: { P: { Type: 'Pass', End: true } } });

describe('the Step Functions endpoint (JSON 1.0)', () => {
  it('answers a signed request in the protocol’s content type, with a request id', async () => {
    const { app, keys } = await appOn();
    const res = await app.request(sfnRequest(BASE, keys, 'ListStateMachines', {}));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-amz-json-1.0');
    expect(res.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/);
    expect(await res.json()).toEqual({ stateMachines: [] });
  });

  it.each([
    [
      'malformed JSON',
      'ListStateMachines',
      '{"maxResults": ',
      400,
      'SerializationException',
      /not valid JSON/,
    ],
    [
      'a body that is not an object',
      'ListStateMachines',
      '[1,2]',
      400,
      'SerializationException',
      /must be a JSON object/,
    ],
    [
      'a field of the wrong type',
      'ListStateMachines',
      { maxResults: 'ten' },
      400,
      'SerializationException',
      /maxResults must be a whole number, not string "ten"/,
    ],
    [
      'an unknown action',
      'DescribeActivity',
      {},
      400,
      'UnknownOperationException',
      /DescribeActivity is not an action this server answers/,
    ],
    [
      'no X-Amz-Target',
      undefined,
      {},
      400,
      'UnknownOperationException',
      /AWSStepFunctions.<Action>/,
    ],
    [
      'a missing required field',
      'DescribeExecution',
      {},
      400,
      'ValidationException',
      /Value null at 'executionArn'/,
    ],
    [
      'an ARN of the wrong kind',
      'DescribeExecution',
      { executionArn: 'arn:aws:states:local:000000000000:stateMachine:x' },
      400,
      'InvalidArn',
      /is not an execution ARN/,
    ],
    [
      'an unknown execution',
      'DescribeExecution',
      { executionArn: 'arn:aws:states:local:000000000000:execution:x:y' },
      400,
      'ExecutionDoesNotExist',
      /Execution Does Not Exist/,
    ],
    [
      'an unknown state machine',
      'DescribeStateMachine',
      { stateMachineArn: 'arn:aws:states:local:000000000000:stateMachine:nope' },
      400,
      'StateMachineDoesNotExist',
      /nope/,
    ],
    [
      'a state machine of another account',
      'DescribeStateMachine',
      { stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:x' },
      400,
      'StateMachineDoesNotExist',
      /region local, account 000000000000/,
    ],
    [
      'a tampered paging token',
      'ListStateMachines',
      { nextToken: 'v1.eyJzIjoiTGlzdFN0YXRlTWFjaGluZXMifQ.abc' },
      400,
      'InvalidToken',
      /altered/,
    ],
    [
      'an invalid definition',
      'CreateStateMachine',
      { name: 'x', definition: '{"StartAt":"A","States":{}}' },
      400,
      'InvalidDefinition',
      /Invalid State Machine Definition: '.*A/,
    ],
    [
      'a definition that is not JSON',
      'CreateStateMachine',
      { name: 'x', definition: '{"StartAt":' },
      400,
      'InvalidDefinition',
      /INVALID_JSON_DESCRIPTION/,
    ],
    [
      'a bad name',
      'CreateStateMachine',
      { name: 'a b', definition: PASS },
      400,
      'InvalidName',
      /may not contain " "/,
    ],
    [
      'EXPRESS',
      'CreateStateMachine',
      { name: 'x', definition: PASS, type: 'EXPRESS' },
      400,
      'StateMachineTypeNotSupported',
      /STANDARD/,
    ],
    [
      'a malformed task token',
      'SendTaskSuccess',
      { taskToken: 'abc', output: '{}' },
      400,
      'InvalidToken',
      /Invalid Token/,
    ],
    [
      'output that is not JSON',
      'SendTaskSuccess',
      { taskToken: 'abc', output: '{' },
      400,
      'InvalidOutput',
      /Invalid Output/,
    ],
    [
      'output over 256 KiB',
      'SendTaskSuccess',
      { taskToken: 'abc', output: JSON.stringify('x'.repeat(262_144)) },
      400,
      'ValidationException',
      /less than or equal to 262144/,
    ],
  ])('refuses %s: %i %s', async (_what, action, body, status, type, message) => {
    const { app, keys } = await appOn();
    const r = await answer(await app.request(sfnRequest(BASE, keys, action, body)));
    expect(r.status).toBe(status);
    expect(r.contentType).toBe('application/x-amz-json-1.0');
    expect(r.body.__type).toBe(type);
    expect(r.body.message).toMatch(message);
  });

  it('refuses a body over 1 MiB from its Content-Length, before reading it', async () => {
    const { app, keys } = await appOn();
    const req = sfnRequest(BASE, keys, 'ValidateStateMachineDefinition', {
      definition: 'x'.repeat(1_048_577),
    });
    const r = await answer(await app.request(req));
    expect(r).toMatchObject({ status: 413, body: { __type: 'ValidationException' } });
    expect(r.body.message).toMatch(/larger than this request's limit of 1048576 bytes/);
  });

  it('refuses a streamed body (no Content-Length) once it passes the limit', async () => {
    const { app, keys } = await appOn();
    const signed = sfnRequest(BASE, keys, 'ListStateMachines', {});
    const chunk = new TextEncoder().encode('x'.repeat(65_536));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 40) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const headers = new Headers(signed.headers);
    headers.delete('content-length');
    const req = new Request(signed.url, {
      method: 'POST',
      headers,
      body: stream,
      duplex: 'half',
    } as RequestInit);
    const r = await answer(await app.request(req));
    expect(r).toMatchObject({ status: 413, body: { __type: 'ValidationException' } });
    expect(sent).toBeLessThan(40);
  });

  it('refuses an execution input over 256 KiB and one that is not JSON', async () => {
    const { app, keys } = await appOn();
    await app.request(
      sfnRequest(BASE, keys, 'CreateStateMachine', { name: 'sm', definition: PASS }),
    );
    const arn = 'arn:aws:states:local:000000000000:stateMachine:sm';
    const big = await answer(
      await app.request(
        sfnRequest(BASE, keys, 'StartExecution', {
          stateMachineArn: arn,
          input: JSON.stringify({ x: 'é'.repeat(131_072) }),
        }),
      ),
    );
    expect(big).toMatchObject({ status: 400, body: { __type: 'ValidationException' } });
    const bad = await answer(
      await app.request(
        sfnRequest(BASE, keys, 'StartExecution', { stateMachineArn: arn, input: '{x' }),
      ),
    );
    expect(bad).toMatchObject({ status: 400, body: { __type: 'InvalidExecutionInput' } });
  });

  it('a token from one listing is refused by another', async () => {
    const { app, keys } = await appOn();
    for (const name of ['a', 'b', 'c'])
      await app.request(sfnRequest(BASE, keys, 'CreateStateMachine', { name, definition: PASS }));
    const first = (await (
      await app.request(sfnRequest(BASE, keys, 'ListStateMachines', { maxResults: 1 }))
    ).json()) as { nextToken: string };
    const start = (await (
      await app.request(
        sfnRequest(BASE, keys, 'StartExecution', {
          stateMachineArn: 'arn:aws:states:local:000000000000:stateMachine:a',
          name: 'e1',
        }),
      )
    ).json()) as { executionArn: string };
    const r = await answer(
      await app.request(
        sfnRequest(BASE, keys, 'GetExecutionHistory', {
          executionArn: start.executionArn,
          nextToken: first.nextToken,
        }),
      ),
    );
    expect(r).toMatchObject({ status: 400, body: { __type: 'InvalidToken' } });
    expect(r.body.message).toMatch(/another listing/);
  });
});

describe('authentication', () => {
  it.each([
    [
      'unsigned',
      (_keys: Keys) =>
        new Request(`${BASE}/`, {
          method: 'POST',
          headers: { 'x-amz-target': 'AWSStepFunctions.ListStateMachines', host: 'strand.test' },
          body: '{}',
        }),
      'MissingAuthenticationTokenException',
    ],
    [
      'signed with the wrong secret',
      (keys: Keys) =>
        sfnRequest(BASE, { ...keys, secretAccessKey: 'wrong' }, 'ListStateMachines', {}),
      'InvalidSignatureException',
    ],
    [
      'signed with an unknown key',
      (keys: Keys) =>
        sfnRequest(BASE, { ...keys, accessKeyId: 'AKIAIOSFODNN7EXAMPLE' }, 'ListStateMachines', {}),
      'UnrecognizedClientException',
    ],
    [
      'dated 20 minutes ago',
      (keys: Keys) =>
        sfnRequest(BASE, keys, 'ListStateMachines', {}, { date: Date.now() - 20 * 60_000 }),
      'InvalidSignatureException',
    ],
    [
      'signed for Batch',
      (keys: Keys) => sfnRequest(BASE, keys, 'ListStateMachines', {}, { service: 'batch' }),
      'InvalidSignatureException',
    ],
  ])('a Step Functions request %s gets 403 %s', async (_what, make, type) => {
    const { app, keys } = await appOn();
    const r = await answer(await app.request(make(keys)));
    expect(r).toMatchObject({ status: 403, body: { __type: type } });
  });

  it.each([
    [
      'unsigned',
      (_keys: Keys) =>
        new Request(`${BASE}/v1/listjobs`, {
          method: 'POST',
          headers: { host: 'strand.test' },
          body: '{}',
        }),
      'MissingAuthenticationTokenException',
    ],
    [
      'signed with the wrong secret',
      (keys: Keys) =>
        batchRequest(BASE, { ...keys, secretAccessKey: 'wrong' }, 'listjobs', {
          jobQueue: 'default',
        }),
      'InvalidSignatureException',
    ],
    [
      'dated 20 minutes ahead',
      (keys: Keys) =>
        batchRequest(
          BASE,
          keys,
          'listjobs',
          { jobQueue: 'default' },
          { date: Date.now() + 20 * 60_000 },
        ),
      'InvalidSignatureException',
    ],
  ])('a Batch request %s gets 403 %s in the REST shape', async (_what, make, type) => {
    const { app, keys } = await appOn();
    const r = await answer(await app.request(make(keys)));
    expect(r).toMatchObject({ status: 403, type, body: { message: expect.any(String) } });
  });

  // (The dashboard's pages under /ui are the one exception: they hold no data; ui-app.test.ts.)
  it('no path answers without a signature; a signed request for one that is not there gets 404', async () => {
    const { app, keys } = await appOn();
    const unsigned = await answer(
      await app.request(new Request(`${BASE}/elsewhere`, { headers: { host: 'strand.test' } })),
    );
    expect(unsigned).toMatchObject({
      status: 403,
      body: { __type: 'MissingAuthenticationTokenException' },
    });
    const signed = await answer(
      await app.request(
        signedRequest(`${BASE}/elsewhere`, { method: 'GET' }, { service: 'states', keys }),
      ),
    );
    expect(signed).toMatchObject({ status: 404, body: { __type: 'UnknownOperationException' } });
  });
});

describe('the Batch endpoint (REST-JSON)', () => {
  it.each([
    ['malformed JSON', 'submitjob', '{"jobName":', 400, 'ClientException', /not valid JSON/],
    [
      'a missing field',
      'submitjob',
      { jobName: 'x', jobQueue: 'default' },
      400,
      'ClientException',
      /jobDefinition is required/,
    ],
    [
      'an unknown definition',
      'submitjob',
      { jobName: 'x', jobQueue: 'default', jobDefinition: 'nope' },
      400,
      'ClientException',
      /no job definition "nope"/,
    ],
    [
      'an unknown queue',
      'submitjob',
      { jobName: 'x', jobQueue: 'nope', jobDefinition: 'd' },
      400,
      'ClientException',
      /no job queue named "nope"/,
    ],
    [
      'a multinode definition',
      'registerjobdefinition',
      { jobDefinitionName: 'm', type: 'multinode' },
      400,
      'ClientException',
      /container jobs only/,
    ],
    [
      'a tampered token',
      'listjobs',
      { jobQueue: 'default', nextToken: 'v1.x.y' },
      400,
      'ClientException',
      /nextToken: .*altered/,
    ],
    [
      'an unknown operation',
      'createschedulingpolicy',
      {},
      404,
      'UnknownOperationException',
      /not a Batch operation this server answers/,
    ],
    [
      'a SubmitJob over 30 KiB',
      'submitjob',
      {
        jobName: 'x',
        jobQueue: 'default',
        jobDefinition: 'd',
        parameters: { p: 'x'.repeat(31_000) },
      },
      413,
      'ClientException',
      /limit of 30720 bytes/,
    ],
  ])('refuses %s: %i %s', async (_what, operation, body, status, type, message) => {
    const { app, keys } = await appOn();
    const r = await answer(await app.request(batchRequest(BASE, keys, operation, body)));
    expect(r.status).toBe(status);
    expect(r.type).toBe(type);
    expect(r.contentType).toBe('application/json');
    expect(r.body.message).toMatch(message);
  });
});

describe('state machines and the engine', () => {
  const call = async (
    app: Awaited<ReturnType<typeof appOn>>['app'],
    keys: Keys,
    action: string,
    body: unknown,
  ) => answer(await app.request(sfnRequest(BASE, keys, action, body)));
  const SM = 'arn:aws:states:local:000000000000:stateMachine:';

  it('runs started without the API (strand start, strand run) show as state machines with their executions', async () => {
    const { app, keys, serverHome } = await appOn();
    await serverHome.scheduling('test').startExecution({
      definition: JSON.parse(PASS) as never,
      name: 'from-the-cli',
      stateMachineName: 'cli-run',
    });
    const listed = await call(app, keys, 'ListStateMachines', {});
    expect(listed.body.stateMachines).toEqual([
      expect.objectContaining({
        name: 'cli-run',
        stateMachineArn: `${SM}cli-run`,
        type: 'STANDARD',
      }),
    ]);
    const described = await call(app, keys, 'DescribeStateMachine', {
      stateMachineArn: `${SM}cli-run`,
    });
    expect(described.body).toMatchObject({ name: 'cli-run', definition: PASS, status: 'ACTIVE' });
    expect(described.body.description).toMatch(/known from its executions/);
    const executions = await call(app, keys, 'ListExecutions', { stateMachineArn: `${SM}cli-run` });
    expect(executions.body.executions).toEqual([expect.objectContaining({ name: 'from-the-cli' })]);
  });

  it('what the engine refuses comes back as the exception AWS would raise', async () => {
    const { app, keys } = await appOn();
    const unknownService = JSON.stringify({
      StartAt: 'T',
      States: { T: { Type: 'Task', Resource: 'arn:aws:states:::dynamodb:putItem', End: true } },
    });
    await call(app, keys, 'CreateStateMachine', { name: 'ddb', definition: unknownService });
    const start = await call(app, keys, 'StartExecution', { stateMachineArn: `${SM}ddb` });
    expect(start).toMatchObject({ status: 400, body: { __type: 'InvalidDefinition' } });
    expect(start.body.message).toMatch(/no integration answers a resource.*dynamodb:putItem/);

    await call(app, keys, 'CreateStateMachine', { name: 'a', definition: PASS });
    await call(app, keys, 'CreateStateMachine', { name: 'b', definition: PASS });
    const first = await call(app, keys, 'StartExecution', {
      stateMachineArn: `${SM}a`,
      name: 'shared',
    });
    await waitUntil(
      'the execution to end',
      async () =>
        (await call(app, keys, 'DescribeExecution', { executionArn: first.body.executionArn })).body
          .status === 'SUCCEEDED',
    );
    const clash = await call(app, keys, 'StartExecution', {
      stateMachineArn: `${SM}b`,
      name: 'shared',
    });
    expect(clash).toMatchObject({ status: 400, body: { __type: 'ExecutionAlreadyExists' } });
    expect(clash.body.message).toMatch(/execution names are unique in a Strand home/);
    const redrive = await call(app, keys, 'RedriveExecution', {
      executionArn: first.body.executionArn,
    });
    expect(redrive).toMatchObject({ status: 400, body: { __type: 'ExecutionNotRedrivable' } });
  });
});

describe('faults', () => {
  it('an unexpected fault is a 500 in AWS’s shape with a request id; its stack goes to the log only', async () => {
    const home = tempHome();
    const { app, keys, log } = await appOn(home);
    const broken = serverApp({
      home: {
        reading: () => {
          throw new Error('the disk is on fire');
        },
      } as unknown as ServerHome,
      registry: Registry.open(home),
      credentials: { ...keys },
      log: (l) => log.push(l),
    });
    void app;
    const res = await broken.request(sfnRequest(BASE, keys, 'ListStateMachines', {}));
    const r = await answer(res);
    expect(r).toMatchObject({ status: 500, body: { __type: 'InternalFailure' } });
    expect(r.body.message).toContain(res.headers.get('x-amzn-requestid'));
    expect(JSON.stringify(r.body)).not.toMatch(/disk is on fire|\.ts:\d+/);
    expect(log.join('\n')).toMatch(/the disk is on fire[\s\S]*at /);
    expect(log.join('\n')).not.toContain(keys.secretAccessKey);
  });

  it('beside another engine: reads work, executions are handed to it, Batch changes wait, and the home is taken over when it ends', async () => {
    const home = tempHome();
    const owner = openStrand({ home, batch: { maxvCpus: 2, memoryMiB: 2048 } });
    let ownerClosed = false;
    cleanup.push(() => ownerClosed || owner.engine.close());
    const { app, keys, serverHome } = await appOn(home);
    expect(serverHome.owner).toBe(false);

    await app.request(
      sfnRequest(BASE, keys, 'CreateStateMachine', { name: 'sm', definition: PASS }),
    );
    const started = await answer(
      await app.request(
        sfnRequest(BASE, keys, 'StartExecution', {
          stateMachineArn: 'arn:aws:states:local:000000000000:stateMachine:sm',
          name: 'handed',
        }),
      ),
    );
    expect(started.status).toBe(200);
    // The owner ran it: it is in the home, as the owner finished it.
    await waitUntil(
      'the handed execution to succeed',
      () => owner.engine.findExecution('handed')?.status === 'SUCCEEDED',
    );
    const described = await answer(
      await app.request(
        sfnRequest(BASE, keys, 'DescribeExecution', { executionArn: started.body.executionArn }),
      ),
    );
    expect(described.body).toMatchObject({ status: 'SUCCEEDED', name: 'handed' });

    const refused = await answer(
      await app.request(
        batchRequest(BASE, keys, 'registerjobdefinition', {
          jobDefinitionName: 'd',
          type: 'container',
          containerProperties: { command: ['true'] },
        }),
      ),
    );
    expect(refused).toMatchObject({ status: 503, type: 'ServerException' });
    expect(refused.body.message).toMatch(
      new RegExp(`another Strand engine \\(pid ${process.pid} `),
    );

    owner.engine.close();
    ownerClosed = true;
    await waitUntil('the server to take the home', () => serverHome.owner);
    const registered = await answer(
      await app.request(
        batchRequest(BASE, keys, 'registerjobdefinition', {
          jobDefinitionName: 'd',
          type: 'container',
          containerProperties: { command: ['true'] },
        }),
      ),
    );
    expect(registered).toMatchObject({
      status: 200,
      body: { jobDefinitionName: 'd', revision: 1 },
    });
  });

  it('keeps answering when its engine halts, and opens the home again', async () => {
    const home = tempHome();
    let engine: Engine | undefined;
    const { app, keys, serverHome } = await appOn(home, () => {
      const s = openSmall(home)();
      engine = s.engine;
      return s;
    });
    const first = engine!;
    // A fault of the machine, as the engine meets one (a database it cannot write).
    (first as unknown as { halt(reason: unknown): void }).halt(new Error('disk I/O error'));
    expect(serverHome.owner).toBe(false);
    const during = await answer(
      await app.request(batchRequest(BASE, keys, 'describejobqueues', {})),
    );
    expect([200, 503]).toContain(during.status);
    const listed = await answer(await app.request(sfnRequest(BASE, keys, 'ListStateMachines', {})));
    expect(listed.status).toBe(200);
    await waitUntil('the home to be opened again', () => serverHome.owner && engine !== first);
    const after = await answer(
      await app.request(batchRequest(BASE, keys, 'describejobqueues', {})),
    );
    expect(after.status).toBe(200);
  });
});
