/**
 * Task tokens: `$$.Task.Token` in every Task's context, `.waitForTaskToken`, and
 * `strand executions send-task-success|send-task-failure|send-task-heartbeat`, from the job
 * itself while `strand start` owns the home, and from a later process after a restart.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { registerJobDefinition, spawnStrand, strand, waitUntil } from '../pipeline/cli.js';
import type { StateMachineDefinition } from '../../src/asl/types.js';
import { Engine } from '../../src/engine/engine.js';

const dir = mkdtempSync(join(tmpdir(), 'strand-token-'));

function file(name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

/** The CLI from source, as a job's command (argv). */
const cli = [
  process.execPath,
  '--import',
  `file://${join(process.cwd(), 'node_modules/tsx/dist/loader.mjs')}`,
  join(process.cwd(), 'test/pipeline/strand-cli.mts'),
];

const register = (home: string, name: string, command: string[]) =>
  registerJobDefinition(home, name, command);

/** A Task that submits `definition`'s job with the token as its `token` parameter. */
function callbackMachine(name: string, definition: string, extra: Record<string, unknown> = {}) {
  return file(`${name}.asl.json`, {
    StartAt: 'Wait for the job',
    States: {
      'Wait for the job': {
        Type: 'Task',
        Resource: 'arn:aws:states:::batch:submitJob.waitForTaskToken',
        Parameters: {
          JobName: name,
          JobQueue: 'default',
          JobDefinition: definition,
          Parameters: { 'token.$': '$$.Task.Token' },
        },
        ResultPath: '$.answer',
        End: true,
        ...extra,
      },
    },
  });
}

function execution(home: string, name: string) {
  const e = Engine.open({ home, readOnly: true });
  try {
    return e.describeExecution(name);
  } finally {
    e.close();
  }
}

describe('task tokens', () => {
  it('a job answers its own token while `strand start` waits: the answer is the output', async () => {
    const home = join(dir, 'home-1');
    await register(home, 'answer', [
      ...cli,
      'executions',
      'send-task-success',
      '--task-token',
      'Ref::token',
      '--task-output',
      '{"from":"the job"}',
      '--home',
      home,
    ]);
    const r = await strand(
      'start',
      callbackMachine('answer', 'answer'),
      '--home',
      home,
      '--input',
      '{"sample":"S1"}',
      '--quiet',
    );
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ sample: 'S1', answer: { from: 'the job' } });
  }, 60_000);

  it('send-task-failure: Catch sees the error; a used or unknown token: exit 2 in AWS terms', async () => {
    const home = join(dir, 'home-2');
    await register(home, 'refuse', [
      ...cli,
      'executions',
      'send-task-failure',
      '--task-token',
      'Ref::token',
      '--error',
      'Lab.SampleRejected',
      '--cause',
      'too few reads',
      '--home',
      home,
    ]);
    const def = file('refuse.asl.json', {
      StartAt: 'Wait for the job',
      States: {
        'Wait for the job': {
          Type: 'Task',
          Resource: 'arn:aws:states:::batch:submitJob.waitForTaskToken',
          Parameters: {
            JobName: 'refuse',
            JobQueue: 'default',
            JobDefinition: 'refuse',
            Parameters: { 'token.$': '$$.Task.Token' },
          },
          Catch: [{ ErrorEquals: ['Lab.SampleRejected'], ResultPath: '$.why', Next: 'Rejected' }],
          Next: 'Done',
        },
        Done: { Type: 'Succeed' },
        Rejected: { Type: 'Pass', End: true },
      },
    });
    const r = await strand('start', def, '--home', home, '--name', 'r1', '--quiet');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).why).toEqual({ Error: 'Lab.SampleRejected', Cause: 'too few reads' });

    // The token the job used, from the history: answering it again is refused.
    const history = JSON.parse(
      (await strand('executions', 'history', 'r1', '--home', home, '--json')).out,
    ).events as { taskScheduledEventDetails?: { parameters: string } }[];
    const scheduled = history.find((e) => e.taskScheduledEventDetails)!;
    const token = JSON.parse(scheduled.taskScheduledEventDetails!.parameters).Parameters.token;
    expect(token).toMatch(/^strand1\./);
    const again = await strand(
      'executions',
      'send-task-success',
      '--task-token',
      token,
      '--task-output',
      '{}',
      '--home',
      home,
    );
    expect(again.code, again.err).toBe(2);
    expect(again.err).toMatch(
      /Task Timed Out: the task of this token has ended \(execution r1 is SUCCEEDED\)/,
    );
    const bad = await strand(
      'executions',
      'send-task-heartbeat',
      '--task-token',
      'not-a-token',
      '--home',
      home,
    );
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("Invalid Token: 'not-a-token'");
    const json = await strand(
      'executions',
      'send-task-success',
      '--task-token',
      token,
      '--task-output',
      '{oops',
      '--home',
      home,
    );
    expect(json.code).toBe(2);
    expect(json.err).toContain("--task-output: the task's output is not valid JSON");
  }, 60_000);

  it('a token outlives its engine: kill -9, answer from another process, resume', async () => {
    const home = join(dir, 'home-3');
    // The job only prints its token; the answer comes from outside.
    await register(home, 'print', ['echo', 'Ref::token']);
    const def = callbackMachine('print', 'print', { HeartbeatSeconds: 600 });
    const child = spawnStrand(['start', def, '--home', home, '--name', 'k1', '--quiet']);
    const token = await waitUntil('the token in the history', async () => {
      const h = await strand('executions', 'history', 'k1', '--home', home, '--json');
      if (h.code !== 0) return undefined;
      const events = JSON.parse(h.out).events as {
        taskScheduledEventDetails?: { parameters: string };
      }[];
      const s = events.find((e) => e.taskScheduledEventDetails);
      return s
        ? (JSON.parse(s.taskScheduledEventDetails!.parameters).Parameters.token as string)
        : undefined;
    });
    await waitUntil('the job to end', async () => {
      const ls = await strand('batch', 'ls', '--home', home, '--job-status', 'SUCCEEDED');
      return ls.out.includes('print');
    });
    child.kill('SIGKILL');
    await child.done;
    // No engine runs: the answer is recorded by this process, the execution carries on.
    const hb = await strand(
      'executions',
      'send-task-heartbeat',
      '--task-token',
      token,
      '--home',
      home,
    );
    expect(hb.code, hb.err).toBe(0);
    const ok = await strand(
      'executions',
      'send-task-success',
      '--task-token',
      token,
      '--task-output',
      '{"checked":true}',
      '--home',
      home,
    );
    expect(ok.code, ok.err).toBe(0);
    await strand('resume', '--home', home);
    const d = execution(home, 'k1');
    expect(d.status).toBe('SUCCEEDED');
    expect(JSON.parse(d.output!)).toEqual({ answer: { checked: true } });
    // The job ran once: the service was not called again after the restart.
    const jobs = JSON.parse(
      (await strand('batch', 'ls', '--home', home, '--json')).out,
    ).jobSummaryList;
    expect(jobs).toHaveLength(1);
  }, 60_000);
});

describe('task tokens in the engine', () => {
  const machine = (heartbeatSeconds: number): StateMachineDefinition => ({
    StartAt: 'Ask',
    States: {
      Ask: {
        Type: 'Task',
        Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
        Parameters: { FunctionName: 'ask', Payload: { 'token.$': '$$.Task.Token' } },
        HeartbeatSeconds: heartbeatSeconds,
        Retry: [{ ErrorEquals: ['States.Timeout'], MaxAttempts: 1, IntervalSeconds: 1 }],
        End: true,
      },
    },
  });

  it('the function is called once, also across a restart; its result is not the output; heartbeats hold the task', async () => {
    const home = mkdtempSync(join(tmpdir(), 'strand-token-engine-'));
    const tokens: string[] = [];
    let engine = Engine.open({ home });
    engine.registerFunction('ask', (p) => {
      tokens.push((p as { token: string }).token);
      return 'ignored';
    });
    await engine.startExecution({ definition: machine(3), input: {}, name: 'e1' });
    await waitUntil('the function called', () => tokens.length === 1);
    await engine.idle();
    engine.close();
    // Reopened: the call was made before, so it is not made again.
    engine = Engine.open({ home });
    engine.registerFunction('ask', (p) => {
      tokens.push((p as { token: string }).token);
      return 'ignored';
    });
    try {
      // Heartbeats every second keep the 3-second heartbeat clock from running out for 5 s.
      for (let i = 0; i < 5; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        await engine.sendTaskHeartbeat(tokens[0]);
      }
      expect(engine.describeExecution('e1').status).toBe('RUNNING');
      await engine.sendTaskSuccess(tokens[0], { answer: 42 });
      const d = await engine.waitForExecution('e1');
      expect(d.status).toBe('SUCCEEDED');
      expect(JSON.parse(d.output!)).toEqual({ answer: 42 });
      expect(tokens).toHaveLength(1);
      await expect(engine.sendTaskSuccess(tokens[0], {})).rejects.toMatchObject({
        code: 'TaskTimedOut',
      });
    } finally {
      engine.close();
    }
  }, 30_000);

  it('a missed heartbeat is a States.HeartbeatTimeout that the States.Timeout retrier retries', async () => {
    const home = mkdtempSync(join(tmpdir(), 'strand-token-engine-'));
    const tokens: string[] = [];
    const engine = Engine.open({ home });
    engine.registerFunction('ask', (p) => {
      tokens.push((p as { token: string }).token);
      return null;
    });
    try {
      await engine.startExecution({ definition: machine(1), input: {}, name: 'e2' });
      // Nobody answers: the task times out, is retried once with a new token, times out again.
      const d = await engine.waitForExecution('e2');
      expect(d).toMatchObject({ status: 'FAILED', error: 'States.HeartbeatTimeout' });
      expect(tokens).toHaveLength(2);
      expect(tokens[1]).not.toBe(tokens[0]);
      const types = engine.getExecutionHistory('e2').map((e) => e.type);
      expect(types.filter((t) => t === 'TaskTimedOut')).toHaveLength(2);
    } finally {
      engine.close();
    }
  }, 30_000);
});
