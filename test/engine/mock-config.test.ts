/**
 * `strand start --mock-config FILE --mock-case NAME`: mocked services in AWS Step Functions
 * Local's format. Mocked states are answered from the file by retry number; the others run for
 * real (here a Batch job); a service with neither is refused at start with how to mock it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { registerJobDefinition, strand } from '../pipeline/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'strand-mock-'));
const file = (name: string, value: unknown) => {
  const path = join(dir, name);
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  return path;
};

/** A sample's intake: a real Batch job, a Lambda that is throttled once, per-read SNS notices. */
const machine = file('intake.asl.json', {
  StartAt: 'Count',
  States: {
    Count: {
      Type: 'Task',
      Resource: 'arn:aws:states:::batch:submitJob.sync',
      Parameters: { JobName: 'count', JobQueue: 'default', JobDefinition: 'count-reads' },
      ResultSelector: { 'status.$': '$.Status' },
      ResultPath: '$.count',
      Next: 'Classify',
    },
    Classify: {
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: { FunctionName: 'classify', 'Payload.$': '$' },
      Retry: [
        { ErrorEquals: ['Lambda.TooManyRequestsException'], IntervalSeconds: 1, MaxAttempts: 3 },
      ],
      ResultSelector: { 'kind.$': '$.Payload.kind' },
      ResultPath: '$.classified',
      Next: 'Notify',
    },
    Notify: {
      Type: 'Map',
      ItemsPath: '$.reads',
      ItemProcessor: {
        StartAt: 'Publish',
        States: {
          Publish: {
            Type: 'Task',
            Resource: 'arn:aws:states:::sns:publish',
            Parameters: { TopicArn: 'arn:aws:sns:us-east-1:123456789012:reads', 'Message.$': '$' },
            End: true,
          },
        },
      },
      ResultPath: '$.notices',
      Next: 'Approve',
    },
    Approve: {
      Type: 'Task',
      Resource: 'arn:aws:states:::sqs:sendMessage.waitForTaskToken',
      Parameters: {
        QueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/approvals',
        MessageBody: { 'token.$': '$$.Task.Token' },
      },
      ResultPath: '$.approval',
      End: true,
    },
  },
});

const mocks = {
  StateMachines: {
    intake: {
      TestCases: {
        HappyPath: {
          Classify: 'ClassifyThrottledOnce',
          Publish: 'Published',
          Approve: 'Approved',
        },
        Exhausted: { Classify: 'AlwaysThrottled', Publish: 'Published', Approve: 'Approved' },
        Rejected: { Classify: 'ClassifyThrottledOnce', Publish: 'Published', Approve: 'Refused' },
      },
    },
    classify: { TestCases: { Throttled: { Classify: 'ClassifyThrottledOnce' } } },
  },
  MockedResponses: {
    ClassifyThrottledOnce: {
      '0': { Throw: { Error: 'Lambda.TooManyRequestsException', Cause: 'Rate exceeded' } },
      '1': { Return: { StatusCode: 200, Payload: { kind: 'isolate' } } },
    },
    AlwaysThrottled: {
      '0-1': { Throw: { Error: 'Lambda.TooManyRequestsException', Cause: 'Rate exceeded' } },
    },
    Published: { '0': { Return: { MessageId: 'm-1' } } },
    Approved: { '0': { Return: { approved: true } } },
    Refused: { '0': { Throw: { Error: 'Approval.Refused', Cause: 'not this one' } } },
  },
};
const config = file('MockConfigFile.json', mocks);

async function homeWithJob(name: string): Promise<string> {
  const home = join(dir, name);
  await registerJobDefinition(home, 'count-reads', ['sh', '-c', 'echo counted']);
  return home;
}

const start = (home: string, ...args: string[]) =>
  strand('start', machine, '--home', home, '--input', '{"reads":["r1","r2","r3"]}', ...args);

function historyOf(home: string, name: string) {
  return strand('executions', 'history', name, '--home', home, '--json').then(
    (r) => (JSON.parse(r.out) as { events: { type: string }[] }).events,
  );
}

describe('strand start --mock-config', () => {
  it('refuses an unmocked service at start, naming the state and how to mock it', async () => {
    const home = await homeWithJob('refused');
    const r = await start(home, '--quiet');
    expect(r.code).toBe(2);
    expect(r.err).toContain('Publish');
    expect(r.err).toContain('arn:aws:states:::sns:publish');
    expect(r.err).toContain('--mock-config FILE --mock-case NAME');
    const ls = await strand('executions', 'ls', '--home', home);
    expect(ls.out).not.toContain('intake');
  });

  it('answers mocked states by retry number and runs the rest for real', async () => {
    const home = await homeWithJob('happy');
    const r = await start(
      home,
      '--mock-config',
      config,
      '--mock-case',
      'HappyPath',
      '--name',
      'happy',
      '--json',
    );
    expect(r.code, r.err).toBe(0);
    const output = JSON.parse(JSON.parse(r.out).output);
    expect(output).toEqual({
      reads: ['r1', 'r2', 'r3'],
      count: { status: 'SUCCEEDED' },
      classified: { kind: 'isolate' },
      notices: [{ MessageId: 'm-1' }, { MessageId: 'm-1' }, { MessageId: 'm-1' }],
      approval: { approved: true },
    });
    const events = await historyOf(home, 'happy');
    // Classify: the throttled first try ("0"), then the retry ("1").
    expect(events.filter((e) => e.type === 'TaskFailed')).toHaveLength(1);
    // The Batch job really ran.
    const jobs = await strand('batch', 'ls', '--home', home, '--json');
    expect(JSON.parse(jobs.out).jobSummaryList).toMatchObject([
      { jobName: 'count', status: 'SUCCEEDED' },
    ]);
  });

  it('fails as AWS would when the mocked retries run out, and catches a mocked Throw', async () => {
    const home = await homeWithJob('exhausted');
    const r = await start(home, '--mock-config', config, '--mock-case', 'Exhausted', '--quiet');
    expect(r.code).toBe(1);
    expect(r.err).toContain('States.Runtime');
    expect(r.err).toContain('no mocked response for state "Classify" and retry number 2');
    const refused = await start(
      home,
      '--mock-config',
      config,
      '--mock-case',
      'Rejected',
      '--quiet',
    );
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('Approval.Refused');
    expect(refused.err).toContain('not this one');
  });

  it('keeps the mocks of an execution across a restart', async () => {
    const home = await homeWithJob('restart');
    const detached = await start(
      home,
      '--mock-config',
      config,
      '--mock-case',
      'HappyPath',
      '--name',
      'later',
      '--detach',
    );
    expect(detached.code, detached.err).toBe(0);
    const resumed = await strand('resume', '--home', home);
    expect(resumed.code, resumed.err).toBe(0);
    const d = await strand('executions', 'describe', 'later', '--home', home, '--json');
    expect(JSON.parse(JSON.parse(d.out).output)).toMatchObject({
      classified: { kind: 'isolate' },
      approval: { approved: true },
    });
  });

  it('runs a mocked test case in memory, without a home', async () => {
    const inMemory = file('in-memory.asl.json', {
      StartAt: 'Classify',
      States: {
        Classify: {
          Type: 'Task',
          Resource: 'arn:aws:states:::lambda:invoke',
          Parameters: { FunctionName: 'classify', 'Payload.$': '$' },
          Retry: [{ ErrorEquals: ['States.ALL'], IntervalSeconds: 3600, MaxAttempts: 1 }],
          OutputPath: '$.Payload',
          End: true,
        },
      },
    });
    const r = await strand(
      'start',
      inMemory,
      '--in-memory',
      '--state-machine-name',
      'classify',
      '--mock-config',
      config,
      '--mock-case',
      'Throttled',
      '--quiet',
    );
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ kind: 'isolate' });
  });

  describe('bad input is exit 2, naming the place', () => {
    const bad = (name: string, value: unknown) => file(name, value);
    const cases: [string, string[], RegExp][] = [
      [
        'not JSON',
        [
          '--mock-config',
          bad('broken.json', '{"StateMachines": {\n  "intake": }'),
          '--mock-case',
          'HappyPath',
        ],
        /broken\.json:2:\d+ .*not valid JSON/,
      ],
      [
        'an unknown state machine, with the one meant',
        ['--mock-config', config, '--mock-case', 'HappyPath', '--state-machine-name', 'intak'],
        /no state machine "intak".*did you mean "intake"/,
      ],
      [
        'an unknown test case, with those there are',
        ['--mock-config', config, '--mock-case', 'Happy'],
        /no test case "Happy".*it has: HappyPath, Exhausted, Rejected/,
      ],
      [
        'no test case chosen',
        ['--mock-config', config],
        /--mock-case NAME says which test case of "intake" to run \(it has: HappyPath, Exhausted, Rejected\)/,
      ],
      ['no mock configuration', ['--mock-case', 'HappyPath'], /Give --mock-config FILE/],
      [
        'a state the state machine does not have',
        [
          '--mock-config',
          bad('nostate.json', {
            StateMachines: { intake: { TestCases: { T: { Clasify: 'Published' } } } },
            MockedResponses: mocks.MockedResponses,
          }),
          '--mock-case',
          'T',
        ],
        /nostate\.json:\d+:\d+ \/StateMachines\/intake\/TestCases\/T\/Clasify: the state machine has no state "Clasify"; did you mean "Classify"/,
      ],
      [
        'a state that is not a Task',
        [
          '--mock-config',
          bad('notask.json', {
            StateMachines: { intake: { TestCases: { T: { Notify: 'Published' } } } },
            MockedResponses: mocks.MockedResponses,
          }),
          '--mock-case',
          'T',
        ],
        /state "Notify" is a Map state; only Task states can be mocked/,
      ],
      [
        'a response set that does not exist',
        [
          '--mock-config',
          bad('noresponse.json', {
            StateMachines: { intake: { TestCases: { T: { Publish: 'Publishd' } } } },
            MockedResponses: mocks.MockedResponses,
          }),
          '--mock-case',
          'T',
        ],
        /no mocked response "Publishd".*did you mean "Published"/,
      ],
      [
        'responses not numbered from 0 on',
        [
          '--mock-config',
          bad('gap.json', {
            StateMachines: { intake: { TestCases: { T: { Publish: 'Gap' } } } },
            MockedResponses: { Gap: { '0': { Return: 1 }, '2-3': { Return: 2 } } },
          }),
          '--mock-case',
          'T',
        ],
        /the next one after "0" is "2-3", expected "1"/,
      ],
      [
        'a response with both Return and Throw',
        [
          '--mock-config',
          bad('both.json', {
            StateMachines: { intake: { TestCases: { T: { Publish: 'Both' } } } },
            MockedResponses: { Both: { '0': { Return: 1, Throw: { Error: 'E' } } } },
          }),
          '--mock-case',
          'T',
        ],
        /exactly one of "Return" and "Throw"/,
      ],
      [
        'a misspelt top-level field',
        [
          '--mock-config',
          bad('singular.json', {
            StateMachines: mocks.StateMachines,
            MockedResponse: mocks.MockedResponses,
          }),
          '--mock-case',
          'HappyPath',
        ],
        /unknown field "MockedResponse"; did you mean "MockedResponses"/,
      ],
    ];
    it.each(cases)('%s', async (_what, args, message) => {
      const home = join(dir, 'bad');
      const r = await start(home, '--quiet', ...args);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toMatch(message);
    });
  });
});
