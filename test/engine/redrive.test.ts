/**
 * RedriveExecution as Step Functions documents it: the execution continues from the step that
 * had not finished, with the same input; steps that succeeded are not run again, and inside a
 * Map or Parallel state (at any depth) only the iterations and branches that failed or were
 * aborted run again, each from its own state that had not finished. Real engine, real SQLite
 * file; every task is an in-process function whose calls are counted.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ExecutionState, HistoryEvent } from '../../src/asl/execution.js';
import { rangesSize } from '../../src/asl/redrive.js';
import type { Json, JsonObject, StateMachineDefinition, TaskState } from '../../src/asl/types.js';
import { Engine } from '../../src/engine/engine.js';
import type { LambdaFunction } from '../../src/engine/integrations.js';

const engines: Engine[] = [];
afterEach(() => {
  for (const e of engines.splice(0)) e.close();
});

/** An engine on a fresh home, with its history events collected and every call counted. */
function setup(functions: Record<string, LambdaFunction>) {
  const events: HistoryEvent[] = [];
  const calls: Record<string, Json[]> = {};
  const engine = Engine.open({
    home: mkdtempSync(join(tmpdir(), 'strand-redrive-')),
    onEvent: (_arn, e) => events.push(e),
  });
  engines.push(engine);
  for (const [name, fn] of Object.entries(functions)) {
    calls[name] = [];
    engine.registerFunction(name, (payload, ctx) => {
      calls[name].push(payload);
      return fn(payload, ctx);
    });
  }
  const count = (type: string, name?: string) =>
    events.filter(
      (e) =>
        e.type === type &&
        (name === undefined ||
          Object.values(e).some((d) => (d as { name?: string } | null)?.name === name)),
    ).length;
  return { engine, events, calls, count };
}

/** Resolves once `ready` holds (polled: the engine applies events on its own schedule). */
async function until(ready: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the engine');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const LAMBDA = 'arn:aws:states:::lambda:invoke';
const task = (fn: string, more: Partial<TaskState> = {}): TaskState => ({
  Type: 'Task',
  Resource: LAMBDA,
  Parameters: { FunctionName: fn, 'Payload.$': '$' },
  OutputPath: '$.Payload',
  ...more,
});
const branch = (name: string, fn: string): StateMachineDefinition => ({
  StartAt: name,
  States: { [name]: task(fn, { End: true }) },
});

/** The events of the last redrive (from its ExecutionRedriven on). */
function sinceRedrive(history: HistoryEvent[]): HistoryEvent[] {
  const at = history.map((e) => e.type).lastIndexOf('ExecutionRedriven');
  return history.slice(at);
}
const enteredNames = (events: HistoryEvent[]) =>
  events
    .filter((e) => e.type.endsWith('StateEntered'))
    .map((e) => (e.stateEnteredEventDetails as { name: string }).name);
const iterationsStarted = (events: HistoryEvent[]) =>
  events
    .filter((e) => e.type === 'MapIterationStarted')
    .map((e) => {
      const d = e.mapIterationStartedEventDetails as { name: string; index: number };
      return `${d.name}[${d.index}]`;
    });

function redrivePoint(engine: Engine, name: string) {
  const row = engine.store.getExecution(name)!;
  return (JSON.parse(row.state!) as ExecutionState).redrive!;
}

describe('RedriveExecution', () => {
  it('top-level Parallel: only the branch that failed runs again; the output keeps every branch in order', async () => {
    let broken = true;
    const { engine, calls, count, events } = setup({
      prep: (x) => x,
      a: () => 'A',
      c: () => 'C',
      b: async () => {
        if (broken) {
          // Fail once the other branches (and Prep) have succeeded.
          await until(() => count('TaskSucceeded') === 3);
          throw new Error('branch b is broken');
        }
        return 'B';
      },
    });
    const definition: StateMachineDefinition = {
      StartAt: 'Prep',
      States: {
        Prep: task('prep', { Next: 'Fan' }),
        Fan: {
          Type: 'Parallel',
          Branches: [branch('A', 'a'), branch('B', 'b'), branch('C', 'c')],
          End: true,
        },
      },
    };
    await engine.startExecution({ definition, input: { n: 1 }, name: 'par' });
    expect(await engine.waitForExecution('par')).toMatchObject({
      status: 'FAILED',
      error: 'Exception',
    });
    expect(redrivePoint(engine, 'par')).toMatchObject({
      state: 'Fan',
      progress: { succeeded: [0, 1, 2, 3], children: { 1: { state: 'B' } } },
    });
    broken = false;
    await engine.redriveExecution('par');
    const done = await engine.waitForExecution('par');
    expect(done).toMatchObject({ status: 'SUCCEEDED', redriveCount: 1 });
    expect(JSON.parse(done.output!)).toEqual(['A', 'B', 'C']);
    expect(Object.fromEntries(Object.entries(calls).map(([k, v]) => [k, v.length]))).toEqual({
      prep: 1,
      a: 1,
      b: 2,
      c: 1,
    });
    const redriven = sinceRedrive(engine.getExecutionHistory('par'));
    expect(redriven[0]).toMatchObject({
      type: 'ExecutionRedriven',
      executionRedrivenEventDetails: { redriveCount: 1 },
    });
    expect(enteredNames(redriven)).toEqual(['Fan', 'B']);
    expect(redriven.map((e) => e.type)).toEqual([
      'ExecutionRedriven',
      'ParallelStateEntered',
      'ParallelStateStarted',
      'TaskStateEntered',
      'TaskScheduled',
      'TaskSucceeded',
      'TaskStateExited',
      'ParallelStateSucceeded',
      'ParallelStateExited',
      'ExecutionSucceeded',
    ]);
    expect(events.at(-1)?.type).toBe('ExecutionSucceeded');
  });

  it('Map → Task A → Parallel(B, C): only C of the item whose C failed runs again', async () => {
    let broken = true;
    const { engine, calls, count } = setup({
      a: (x) => (x as number) * 10,
      b: (x) => (x as number) + 1,
      c: async (x) => {
        if (broken && x === 20) {
          // Every other task has succeeded: 5 A, 5 B and 4 C.
          await until(() => count('TaskSucceeded') === 14 && count('MapIterationSucceeded') === 4);
          throw new Error('C broke on item 2');
        }
        return (x as number) + 2;
      },
    });
    const definition: StateMachineDefinition = {
      StartAt: 'Items',
      States: {
        Items: {
          Type: 'Map',
          ItemProcessor: {
            StartAt: 'A',
            States: {
              A: task('a', { Next: 'P' }),
              P: { Type: 'Parallel', Branches: [branch('B', 'b'), branch('C', 'c')], End: true },
            },
          },
          End: true,
        },
      },
    };
    await engine.startExecution({ definition, input: [0, 1, 2, 3, 4], name: 'map-par' });
    expect((await engine.waitForExecution('map-par')).status).toBe('FAILED');
    expect(redrivePoint(engine, 'map-par')).toMatchObject({
      state: 'Items',
      progress: {
        succeeded: [0, 2, 3, 5],
        children: {
          2: {
            state: 'P',
            input: 20,
            progress: { succeeded: [0, 1], children: { 1: { state: 'C', input: 20 } } },
          },
        },
      },
    });
    broken = false;
    await engine.redriveExecution('map-par');
    const done = await engine.waitForExecution('map-par');
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output!)).toEqual([
      [1, 2],
      [11, 12],
      [21, 22],
      [31, 32],
      [41, 42],
    ]);
    expect(calls.a).toEqual([0, 1, 2, 3, 4]);
    expect([...calls.b].sort((x, y) => (x as number) - (y as number))).toEqual([0, 10, 20, 30, 40]);
    expect(calls.c).toHaveLength(6);
    expect(calls.c.filter((x) => x === 20)).toHaveLength(2);
    const redriven = sinceRedrive(engine.getExecutionHistory('map-par'));
    expect(iterationsStarted(redriven)).toEqual(['Items[2]']);
    expect(enteredNames(redriven)).toEqual(['Items', 'P', 'C']);
  });

  it('Map inside Map: only the inner iteration that failed runs again', async () => {
    let broken = true;
    const { engine, calls, count } = setup({
      prep: (x) => x,
      work: async (x) => {
        if (broken && x === 4) {
          await until(
            () => count('MapIterationSucceeded', 'Outer') === 2 && count('TaskSucceeded') === 8,
          );
          throw new Error('4 is corrupt');
        }
        return (x as number) * 10;
      },
    });
    const definition: StateMachineDefinition = {
      StartAt: 'Outer',
      States: {
        Outer: {
          Type: 'Map',
          ItemProcessor: {
            StartAt: 'Prep',
            States: {
              Prep: task('prep', { Next: 'Inner' }),
              Inner: {
                Type: 'Map',
                ItemProcessor: { StartAt: 'Work', States: { Work: task('work', { End: true }) } },
                End: true,
              },
            },
          },
          End: true,
        },
      },
    };
    const input = [
      [1, 2],
      [3, 4],
      [5, 6],
    ];
    await engine.startExecution({ definition, input, name: 'map-map' });
    expect((await engine.waitForExecution('map-map')).status).toBe('FAILED');
    broken = false;
    await engine.redriveExecution('map-map');
    const done = await engine.waitForExecution('map-map');
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output!)).toEqual([
      [10, 20],
      [30, 40],
      [50, 60],
    ]);
    expect(calls.prep).toHaveLength(3);
    expect([...calls.work].sort((x, y) => (x as number) - (y as number))).toEqual([
      1, 2, 3, 4, 4, 5, 6,
    ]);
    const redriven = sinceRedrive(engine.getExecutionHistory('map-map'));
    expect(iterationsStarted(redriven)).toEqual(['Outer[1]', 'Inner[1]']);
    expect(enteredNames(redriven)).toEqual(['Outer', 'Inner', 'Work']);
  });

  it('inside an iteration, the redrive continues at the state that failed, with the variables assigned before it', async () => {
    let broken = true;
    const { engine, calls, count } = setup({
      first: (x) => `t${x as number}`,
      second: async (x) => {
        if (broken && x === 't1') {
          await until(() => count('MapIterationSucceeded') === 2);
          throw new Error('second step failed on t1');
        }
        return `${x as string}!`;
      },
      third: (p) => `${(p as JsonObject).v as string}/${(p as JsonObject).tag as string}`,
    });
    const definition: StateMachineDefinition = {
      StartAt: 'Items',
      States: {
        Items: {
          Type: 'Map',
          ItemProcessor: {
            StartAt: 'First',
            States: {
              First: task('first', { Assign: { 'tag.$': '$.Payload' }, Next: 'Second' }),
              Second: task('second', { Next: 'Third' }),
              Third: task('third', {
                Parameters: { FunctionName: 'third', Payload: { 'v.$': '$', 'tag.$': '$tag' } },
                End: true,
              }),
            },
          },
          End: true,
        },
      },
    };
    await engine.startExecution({ definition, input: [0, 1, 2], name: 'chain' });
    expect((await engine.waitForExecution('chain')).status).toBe('FAILED');
    broken = false;
    await engine.redriveExecution('chain');
    const done = await engine.waitForExecution('chain');
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output!)).toEqual(['t0!/t0', 't1!/t1', 't2!/t2']);
    expect(calls.first).toEqual([0, 1, 2]);
    expect(calls.second.filter((x) => x === 't1')).toHaveLength(2);
    expect(calls.second).toHaveLength(4);
    expect(calls.third).toHaveLength(3);
    const redriven = sinceRedrive(engine.getExecutionHistory('chain'));
    expect(iterationsStarted(redriven)).toEqual(['Items[1]']);
    expect(enteredNames(redriven)).toEqual(['Items', 'Second', 'Third']);
  });

  it('a redrive that fails again can be redriven again, from where the second attempt stopped', async () => {
    const failures: Record<string, number> = { 'flaky:1': 1, 'post:3': 1 };
    const flakyOnce = (name: string) => (x: Json) => {
      const key = `${name}:${x as number}`;
      if ((failures[key] ?? 0) > 0) {
        failures[key]--;
        throw new Error(`${key} failed`);
      }
      return x;
    };
    const { engine, calls } = setup({
      pre: (x) => x,
      flaky: flakyOnce('flaky'),
      post: flakyOnce('post'),
    });
    const definition: StateMachineDefinition = {
      StartAt: 'Items',
      States: {
        Items: {
          Type: 'Map',
          MaxConcurrency: 1,
          ItemProcessor: {
            StartAt: 'Pre',
            States: {
              Pre: task('pre', { Next: 'Flaky' }),
              Flaky: task('flaky', { Next: 'Post' }),
              Post: task('post', { End: true }),
            },
          },
          End: true,
        },
      },
    };
    await engine.startExecution({ definition, input: [0, 1, 2, 3, 4], name: 'twice' });
    expect((await engine.waitForExecution('twice')).status).toBe('FAILED');
    expect(calls).toEqual({ pre: [0, 1], flaky: [0, 1], post: [0] });

    // First redrive: item 1 continues at Flaky, then item 3 fails at Post.
    await engine.redriveExecution('twice');
    expect(await engine.waitForExecution('twice')).toMatchObject({
      status: 'FAILED',
      redriveCount: 1,
    });
    expect(calls).toEqual({
      pre: [0, 1, 2, 3],
      flaky: [0, 1, 1, 2, 3],
      post: [0, 1, 2, 3],
    });
    expect(redrivePoint(engine, 'twice')).toMatchObject({
      state: 'Items',
      progress: { succeeded: [0, 3], children: { 3: { state: 'Post', input: 3 } } },
    });

    // Second redrive: item 3 continues at Post; item 4 runs for the first time.
    await engine.redriveExecution('twice');
    const done = await engine.waitForExecution('twice');
    expect(done).toMatchObject({ status: 'SUCCEEDED', redriveCount: 2 });
    expect(JSON.parse(done.output!)).toEqual([0, 1, 2, 3, 4]);
    expect(calls).toEqual({
      pre: [0, 1, 2, 3, 4],
      flaky: [0, 1, 1, 2, 3, 4],
      post: [0, 1, 2, 3, 3, 4],
    });
    const history = engine.getExecutionHistory('twice');
    expect(history.filter((e) => e.type === 'ExecutionRedriven')).toHaveLength(2);
    expect(iterationsStarted(sinceRedrive(history))).toEqual(['Items[3]', 'Items[4]']);
  });

  it('after StopExecution, aborted iterations continue at the state they were in', async () => {
    let hold = true;
    const { engine, calls, count } = setup({
      a: (x) => x,
      slow: (x) => (hold && x !== 0 ? new Promise<Json>(() => {}) : (x as number) * 2),
    });
    const definition: StateMachineDefinition = {
      StartAt: 'Items',
      States: {
        Items: {
          Type: 'Map',
          ItemProcessor: {
            StartAt: 'A',
            States: { A: task('a', { Next: 'Slow' }), Slow: task('slow', { End: true }) },
          },
          End: true,
        },
      },
    };
    await engine.startExecution({ definition, input: [0, 1, 2], name: 'stopped' });
    await until(() => calls.slow.length === 3 && count('MapIterationSucceeded') === 1);
    await engine.stopExecution('stopped', 'Operator', 'stopped by hand');
    expect(engine.describeExecution('stopped').status).toBe('ABORTED');
    expect(redrivePoint(engine, 'stopped')).toMatchObject({
      state: 'Items',
      progress: {
        succeeded: [0, 1],
        children: { 1: { state: 'Slow', input: 1 }, 2: { state: 'Slow', input: 2 } },
      },
    });
    hold = false;
    await engine.redriveExecution('stopped');
    const done = await engine.waitForExecution('stopped');
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output!)).toEqual([0, 2, 4]);
    expect(calls.a).toEqual([0, 1, 2]);
    expect([...calls.slow].sort()).toEqual([0, 1, 1, 2, 2]);
    const redriven = sinceRedrive(engine.getExecutionHistory('stopped'));
    expect(iterationsStarted(redriven)).toEqual(['Items[1]', 'Items[2]']);
    expect(enteredNames(redriven)).toEqual(['Items', 'Slow', 'Slow']);
  });

  it('fromState resets the redrive to that top-level state, which runs whole', async () => {
    let broken = true;
    const { engine, calls, count } = setup({
      prep: (x) => x,
      b: () => 'B',
      c: async () => {
        if (broken) {
          await until(() => count('TaskSucceeded') === 2);
          throw new Error('c is broken');
        }
        return 'C';
      },
    });
    const definition: StateMachineDefinition = {
      StartAt: 'Prep',
      States: {
        Prep: task('prep', { Next: 'Fan' }),
        Fan: { Type: 'Parallel', Branches: [branch('B', 'b'), branch('C', 'c')], End: true },
      },
    };
    await engine.startExecution({ definition, input: 7, name: 'from' });
    expect((await engine.waitForExecution('from')).status).toBe('FAILED');
    await expect(engine.redriveExecution('from', { fromState: 'Nowhere' })).rejects.toMatchObject({
      code: 'NOT_REDRIVABLE',
    });
    broken = false;
    await engine.redriveExecution('from', { fromState: 'Fan' });
    const done = await engine.waitForExecution('from');
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output!)).toEqual(['B', 'C']);
    // The whole Parallel ran again (B too); Prep, before it, did not.
    expect(calls).toEqual({ prep: [7], b: [7, 7], c: [7, 7] });
    expect(enteredNames(sinceRedrive(engine.getExecutionHistory('from')))).toEqual([
      'Fan',
      'B',
      'C',
    ]);
  });

  it('a large Map keeps its redrive point to ranges: succeeded iterations add nothing each', async () => {
    let broken = true;
    const n = 5000;
    const { engine, calls } = setup({
      work: (x) => {
        if (broken) throw new Error(`item ${x as number} failed`);
        return x;
      },
    });
    const definition: StateMachineDefinition = {
      StartAt: 'Items',
      States: {
        Items: {
          Type: 'Map',
          ItemProcessor: {
            StartAt: 'Check',
            States: {
              Check: {
                Type: 'Choice',
                Choices: [{ Variable: '$', NumericEquals: 4321, Next: 'Work' }],
                Default: 'Done',
              },
              Work: task('work', { End: true }),
              Done: { Type: 'Pass', End: true },
            },
          },
          End: true,
        },
      },
    };
    const items = Array.from({ length: n }, (_, i) => i);
    await engine.startExecution({ definition, input: items, name: 'large' });
    expect((await engine.waitForExecution('large')).status).toBe('FAILED');
    const point = redrivePoint(engine, 'large');
    const progress = point.progress!;
    // A handful of ranges and at most one point per iteration that was running (40 at a time).
    expect(progress.succeeded.length).toBeLessThanOrEqual(2 * 41);
    expect(Object.keys(progress.children).length).toBeLessThanOrEqual(40);
    expect(progress.children['4321']).toMatchObject({ state: 'Work', input: 4321 });
    expect(JSON.stringify({ ...progress, results: [] }).length).toBeLessThan(8_000);
    const before = rangesSize(progress.succeeded);
    expect(before).toBeGreaterThan(4000);
    broken = false;
    await engine.redriveExecution('large');
    const done = await engine.waitForExecution('large');
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output!)).toEqual(items);
    expect(calls.work).toEqual([4321, 4321]);
    const redriven = sinceRedrive(engine.getExecutionHistory('large'));
    expect(iterationsStarted(redriven)).toHaveLength(n - before);
    expect(redriven.filter((e) => e.type === 'MapIterationSucceeded')).toHaveLength(n - before);
  });
});
