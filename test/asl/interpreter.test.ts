import { describe, expect, it } from 'vitest';
import type { Command, InputEvent } from '../../src/asl/execution.js';
import { Interpreter } from '../../src/asl/interpreter.js';
import { StatesError } from '../../src/asl/errors.js';
import { runInMemory } from '../../src/asl/run-in-memory.js';
import type { StateMachineDefinition } from '../../src/asl/types.js';
import { passMap } from '../fixtures/definitions.js';

const T0 = Date.UTC(2026, 0, 1);

function ofType<T extends Command['type']>(commands: Command[], type: T) {
  return commands.filter((c): c is Extract<Command, { type: T }> => c.type === type);
}

const taskMachine = (extra: Record<string, unknown> = {}): StateMachineDefinition => ({
  StartAt: 'Work',
  States: {
    Work: {
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: { 'n.$': '$.n' },
      End: true,
      ...extra,
    },
    Caught: { Type: 'Pass', End: true },
  },
});

describe('interpreter commands (no driver)', () => {
  it('a Task becomes an InvokeTask command and its result the output', async () => {
    const interp = new Interpreter(taskMachine({ ResultPath: '$.r' }));
    const first = await interp.start({ n: 3 }, { time: T0 });
    const [invoke] = ofType(first.commands, 'InvokeTask');
    expect(invoke).toMatchObject({
      resource: 'arn:aws:states:::lambda:invoke',
      input: { n: 3 },
      attempt: 0,
    });
    expect(first.state.status).toBe('RUNNING');
    const done = await interp.step(first.state, {
      type: 'TaskSucceeded',
      taskId: invoke.taskId,
      output: 42,
      time: T0 + 5,
    });
    expect(done.state.status).toBe('SUCCEEDED');
    expect(done.state.output).toEqual({ n: 3, r: 42 });
    expect(ofType(done.commands, 'ExecutionCompleted')[0]).toMatchObject({ status: 'SUCCEEDED' });
    expect(done.events.map((e) => e.type)).toEqual([
      'TaskSucceeded',
      'TaskStateExited',
      'ExecutionSucceeded',
    ]);
  });

  it('history events are numbered as Step Functions numbers them', async () => {
    const result = await runInMemory(
      {
        StartAt: 'A',
        States: { A: { Type: 'Pass', Next: 'B' }, B: { Type: 'Pass', End: true } },
      },
      {},
    );
    expect(result.events.map((e) => [e.id, e.previousEventId, e.type])).toEqual([
      [1, 0, 'ExecutionStarted'],
      [2, 1, 'PassStateEntered'],
      [3, 2, 'PassStateExited'],
      [4, 3, 'PassStateEntered'],
      [5, 4, 'PassStateExited'],
      [6, 5, 'ExecutionSucceeded'],
    ]);
  });

  it('Retry backs off with IntervalSeconds × BackoffRate^n, capped by MaxDelaySeconds', async () => {
    const interp = new Interpreter(
      taskMachine({
        Retry: [
          {
            ErrorEquals: ['Boom'],
            IntervalSeconds: 2,
            BackoffRate: 3,
            MaxAttempts: 3,
            MaxDelaySeconds: 10,
          },
        ],
      }),
    );
    let step = await interp.start({ n: 1 }, { time: T0 });
    const delays: number[] = [];
    let now = T0;
    for (let attempt = 0; attempt < 4; attempt++) {
      const [invoke] = ofType(step.commands, 'InvokeTask');
      expect(invoke.attempt).toBe(attempt);
      step = await interp.step(step.state, {
        type: 'TaskFailed',
        taskId: invoke.taskId,
        error: 'Boom',
        time: now,
      });
      const timers = ofType(step.commands, 'StartTimer');
      if (attempt === 3) {
        expect(timers).toHaveLength(0);
        break;
      }
      delays.push(timers[0].dueTime - now);
      now = timers[0].dueTime;
      step = await interp.step(step.state, {
        type: 'TimerFired',
        timerId: timers[0].timerId,
        time: now,
      });
    }
    expect(delays).toEqual([2000, 6000, 10000]);
    expect(step.state.status).toBe('FAILED');
    expect(step.state.error).toBe('Boom');
  });

  it('JitterStrategy FULL scales the delay by the injected randomness', async () => {
    const interp = new Interpreter(
      taskMachine({
        Retry: [{ ErrorEquals: ['States.ALL'], IntervalSeconds: 4, JitterStrategy: 'FULL' }],
      }),
      { random: () => 0.25 },
    );
    const first = await interp.start({ n: 1 }, { time: T0 });
    const [invoke] = ofType(first.commands, 'InvokeTask');
    const next = await interp.step(first.state, {
      type: 'TaskFailed',
      taskId: invoke.taskId,
      error: 'X',
      time: T0,
    });
    expect(ofType(next.commands, 'StartTimer')[0].dueTime - T0).toBe(1000);
  });

  it('Catch takes the first matching catcher; errorOutput lands at its ResultPath', async () => {
    const def = taskMachine({
      Catch: [
        { ErrorEquals: ['Other'], Next: 'Caught' },
        { ErrorEquals: ['States.TaskFailed'], ResultPath: '$.err', Next: 'Caught' },
        { ErrorEquals: ['States.ALL'], Next: 'Caught' },
      ],
    });
    const result = await runInMemory(
      def,
      { n: 1 },
      {
        tasks: () => {
          throw new StatesError('Lambda.Unknown', 'it broke', false);
        },
      },
    );
    expect(result.status).toBe('SUCCEEDED');
    expect(result.output).toEqual({ n: 1, err: { Error: 'Lambda.Unknown', Cause: 'it broke' } });
  });

  it('States.TaskFailed does not match States.Timeout; TimeoutSeconds fails the task', async () => {
    const def = taskMachine({
      TimeoutSeconds: 5,
      Catch: [{ ErrorEquals: ['States.TaskFailed'], Next: 'Caught' }],
    });
    const interp = new Interpreter(def);
    const first = await interp.start({ n: 1 }, { time: T0 });
    const timer = ofType(first.commands, 'StartTimer')[0];
    expect(timer.dueTime).toBe(T0 + 5000);
    const timedOut = await interp.step(first.state, {
      type: 'TimerFired',
      timerId: timer.timerId,
      time: timer.dueTime,
    });
    expect(ofType(timedOut.commands, 'CancelTask')).toHaveLength(1);
    expect(timedOut.state.status).toBe('FAILED');
    expect(timedOut.state.error).toBe('States.Timeout');
  });

  it('HeartbeatSeconds: a heartbeat restarts the timer; silence fails with States.HeartbeatTimeout', async () => {
    const interp = new Interpreter(taskMachine({ HeartbeatSeconds: 10, TimeoutSeconds: 100 }));
    const first = await interp.start({ n: 1 }, { time: T0 });
    const [invoke] = ofType(first.commands, 'InvokeTask');
    const hb = ofType(first.commands, 'StartTimer').find((t) => t.timerId.endsWith('heartbeat'))!;
    const beat = await interp.step(first.state, {
      type: 'TaskHeartbeat',
      taskId: invoke.taskId,
      time: T0 + 8000,
    });
    expect(ofType(beat.commands, 'StartTimer')[0]).toEqual({
      type: 'StartTimer',
      timerId: hb.timerId,
      dueTime: T0 + 18000,
    });
    const dead = await interp.step(beat.state, {
      type: 'TimerFired',
      timerId: hb.timerId,
      time: T0 + 18000,
    });
    expect(dead.state.error).toBe('States.HeartbeatTimeout');
  });

  // Decided by AWS's error-handling guide ("States.Timeout: A Task state either ran longer
  // than the TimeoutSeconds value, or failed to send a heartbeat for a period longer than the
  // HeartbeatSeconds value") and aws/aws-cdk#16084, by the Step Functions team: a Catch on
  // States.Timeout "includes both Task timeout and Task Heartbeat timeout".
  it('a heartbeat timeout is caught by States.Timeout and States.HeartbeatTimeout, not States.TaskFailed', async () => {
    const outcome = async (errorEquals: string) => {
      const interp = new Interpreter(
        taskMachine({
          HeartbeatSeconds: 10,
          Catch: [{ ErrorEquals: [errorEquals], Next: 'Caught' }],
        }),
      );
      const first = await interp.start({ n: 1 }, { time: T0 });
      const hb = ofType(first.commands, 'StartTimer').find((t) => t.timerId.endsWith('heartbeat'))!;
      const dead = await interp.step(first.state, {
        type: 'TimerFired',
        timerId: hb.timerId,
        time: T0 + 10_000,
      });
      return dead.state.status === 'RUNNING' || dead.state.status === 'SUCCEEDED'
        ? 'caught'
        : dead.state.error;
    };
    expect(await outcome('States.Timeout')).toBe('caught');
    expect(await outcome('States.HeartbeatTimeout')).toBe('caught');
    expect(await outcome('States.ALL')).toBe('caught');
    expect(await outcome('States.TaskFailed')).toBe('States.HeartbeatTimeout');
  });

  it('a Wait state is a timer; SecondsPath must be a non-negative integer', async () => {
    const def: StateMachineDefinition = {
      StartAt: 'W',
      States: { W: { Type: 'Wait', SecondsPath: '$.s', End: true } },
    };
    const interp = new Interpreter(def);
    const first = await interp.start({ s: 30 }, { time: T0 });
    expect(ofType(first.commands, 'StartTimer')[0].dueTime).toBe(T0 + 30000);
    const bad = await runInMemory(def, { s: 'soon' });
    expect(bad.status).toBe('FAILED');
    expect(bad.error).toBe('States.Runtime');
    expect(bad.cause).toContain("state 'W' (entered at the event id #2)");
  });

  it('Map respects MaxConcurrency: never more than N tasks outstanding', async () => {
    const def: StateMachineDefinition = {
      StartAt: 'M',
      States: {
        M: {
          Type: 'Map',
          MaxConcurrency: 2,
          ItemProcessor: {
            StartAt: 'T',
            States: { T: { Type: 'Task', Resource: 'arn:aws:states:::lambda:invoke', End: true } },
          },
          End: true,
        },
      },
    };
    const interp = new Interpreter(def);
    let step = await interp.start([1, 2, 3, 4, 5], { time: T0 });
    const outstanding = new Map<string, number>();
    let maxOutstanding = 0;
    const queue: InputEvent[] = [];
    for (;;) {
      for (const c of ofType(step.commands, 'InvokeTask'))
        outstanding.set(c.taskId, c.input as number);
      maxOutstanding = Math.max(maxOutstanding, outstanding.size);
      if (step.state.status !== 'RUNNING') break;
      const [taskId, n] = [...outstanding][outstanding.size - 1];
      outstanding.delete(taskId);
      queue.push({ type: 'TaskSucceeded', taskId, output: n * 10, time: T0 });
      step = await interp.step(step.state, queue.shift()!);
    }
    expect(maxOutstanding).toBe(2);
    expect(step.state.output).toEqual([10, 20, 30, 40, 50]);
  });

  it('a failed Parallel branch cancels the others and fails the state with the branch error', async () => {
    const branch = (name: string) => ({
      StartAt: name,
      States: {
        [name]: { Type: 'Task' as const, Resource: `arn:aws:states:::${name}`, End: true },
      },
    });
    const def: StateMachineDefinition = {
      StartAt: 'P',
      States: { P: { Type: 'Parallel', Branches: [branch('a'), branch('b')], End: true } },
    };
    const interp = new Interpreter(def);
    const first = await interp.start({}, { time: T0 });
    const invokes = ofType(first.commands, 'InvokeTask');
    expect(invokes).toHaveLength(2);
    const failed = await interp.step(first.state, {
      type: 'TaskFailed',
      taskId: invokes[0].taskId,
      error: 'Bad',
      cause: 'why',
      time: T0,
    });
    expect(ofType(failed.commands, 'CancelTask').map((c) => c.taskId)).toEqual([invokes[1].taskId]);
    expect(failed.state).toMatchObject({ status: 'FAILED', error: 'Bad', cause: 'why' });
  });

  it('a structured task cause becomes its JSON text, as Step Functions causes are strings', async () => {
    const interp = new Interpreter(taskMachine());
    const first = await interp.start({ n: 1 }, { time: T0 });
    const [invoke] = ofType(first.commands, 'InvokeTask');
    const failed = await interp.step(first.state, {
      type: 'TaskFailed',
      taskId: invoke.taskId,
      error: 'Lambda.Exception',
      cause: { errorMessage: 'boom' } as unknown as string,
      time: T0,
    });
    expect(failed.state.cause).toBe('{"errorMessage":"boom"}');
  });

  it('StopExecution aborts and cancels outstanding work', async () => {
    const interp = new Interpreter(taskMachine());
    const first = await interp.start({ n: 1 }, { time: T0 });
    const stopped = await interp.step(first.state, {
      type: 'StopExecution',
      error: 'User',
      time: T0 + 1,
    });
    expect(stopped.state.status).toBe('ABORTED');
    expect(ofType(stopped.commands, 'CancelTask')).toHaveLength(1);
    expect(stopped.events.at(-1)?.type).toBe('ExecutionAborted');
  });

  it('the execution TimeoutSeconds ends it TIMED_OUT', async () => {
    const def = { ...taskMachine(), TimeoutSeconds: 60 };
    const interp = new Interpreter(def);
    const first = await interp.start({ n: 1 }, { time: T0 });
    const timer = ofType(first.commands, 'StartTimer').find(
      (t) => t.timerId === 'execution-timeout',
    )!;
    expect(timer.dueTime).toBe(T0 + 60000);
    const out = await interp.step(first.state, {
      type: 'TimerFired',
      timerId: timer.timerId,
      time: timer.dueTime,
    });
    expect(out.state.status).toBe('TIMED_OUT');
  });

  it('the state is plain JSON: a step after a JSON round trip behaves the same', async () => {
    const interp = new Interpreter(taskMachine());
    const first = await interp.start({ n: 7 }, { time: T0 });
    const [invoke] = ofType(first.commands, 'InvokeTask');
    const revived = JSON.parse(JSON.stringify(first.state));
    const fresh = new Interpreter(taskMachine());
    const done = await fresh.step(revived, {
      type: 'TaskSucceeded',
      taskId: invoke.taskId,
      output: 'ok',
      time: T0,
    });
    expect(done.state.status).toBe('SUCCEEDED');
    expect(done.state.output).toBe('ok');
  });

  it('variables: Assign is visible to later states and inner scopes read outer ones', async () => {
    const result = await runInMemory(
      {
        StartAt: 'Set',
        States: {
          Set: { Type: 'Pass', Assign: { factor: 3 }, Next: 'M' },
          M: {
            Type: 'Map',
            ItemProcessor: {
              StartAt: 'Mul',
              States: {
                Mul: {
                  Type: 'Pass',
                  QueryLanguage: 'JSONata',
                  Output: '{% $states.input * $factor %}',
                  End: true,
                },
              },
            },
            End: true,
          },
        },
      },
      [1, 2],
    );
    expect(result.output).toEqual([3, 6]);
  });
});

describe('step budget and Map concurrency', () => {
  const items = Array.from({ length: 300 }, (_, i) => i);

  it('a step stops at maxEventsPerStep with its work left in the state; Continue finishes it', async () => {
    const whole = await new Interpreter(passMap).start(items, { time: T0 });
    expect(whole.state.status).toBe('SUCCEEDED');
    const budgeted = new Interpreter(passMap, { maxEventsPerStep: 100 });
    let r = await budgeted.start(items, { time: T0 });
    const events = [...r.events];
    let steps = 1;
    while (r.state.status === 'RUNNING') {
      expect(ofType(r.commands, 'Continue')).toHaveLength(1);
      expect(r.events.length).toBeLessThanOrEqual(100 + 10);
      expect(r.state.agenda?.length).toBeGreaterThan(0);
      // The state survives a JSON round trip between the pieces (as it does in the database).
      const state = JSON.parse(JSON.stringify(r.state)) as typeof r.state;
      r = await budgeted.step(state, { type: 'Continue', time: T0 });
      events.push(...r.events);
      steps++;
    }
    expect(steps).toBeGreaterThan(10);
    expect(r.state.status).toBe('SUCCEEDED');
    expect(r.state.output).toEqual(whole.state.output);
    expect(r.state.agenda).toBeUndefined();
    expect(events.map((e) => e.id)).toEqual(whole.events.map((e) => e.id));
    expect(events.map((e) => e.type)).toEqual(whole.events.map((e) => e.type));
  });

  it('an inline Map without MaxConcurrency runs 40 iterations at a time, a distributed one up to 10,000', async () => {
    const taskMap = (mode?: 'DISTRIBUTED'): StateMachineDefinition => ({
      StartAt: 'M',
      States: {
        M: {
          Type: 'Map',
          ItemProcessor: {
            ...(mode ? { ProcessorConfig: { Mode: mode, ExecutionType: 'STANDARD' } } : {}),
            StartAt: 'T',
            States: { T: { Type: 'Task', Resource: 'arn:aws:states:::lambda:invoke', End: true } },
          },
          End: true,
        },
      },
    });
    const inline = await new Interpreter(taskMap()).start(items, { time: T0 });
    expect(ofType(inline.commands, 'InvokeTask')).toHaveLength(40);
    const distributed = await new Interpreter(taskMap('DISTRIBUTED')).start(items, { time: T0 });
    expect(ofType(distributed.commands, 'InvokeTask')).toHaveLength(300);
  });
});
