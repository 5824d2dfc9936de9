import { describe, expect, it } from 'vitest';
import { StatesError } from '../../src/asl/errors.js';
import { Interpreter } from '../../src/asl/interpreter.js';
import { indexRanges, inRanges, rangesSize } from '../../src/asl/redrive.js';
import { runInMemory } from '../../src/asl/run-in-memory.js';
import type { StateMachineDefinition } from '../../src/asl/types.js';

const T0 = Date.UTC(2026, 0, 1);

describe('index ranges (the succeeded iterations a redrive point keeps)', () => {
  it.each([
    { indices: [], also: [], ranges: [] },
    { indices: [0], also: [], ranges: [0, 1] },
    { indices: [3, 1, 2, 0], also: [], ranges: [0, 4] },
    { indices: [5, 0, 1, 1, 9, 6], also: [], ranges: [0, 2, 5, 7, 9, 10] },
    { indices: [2, 3], also: [0, 2], ranges: [0, 4] },
    { indices: [7], also: [0, 3, 10, 12], ranges: [0, 3, 7, 8, 10, 12] },
    { indices: [1], also: [0, 5], ranges: [0, 5] },
  ])('$indices with $also → $ranges', ({ indices, also, ranges }) => {
    expect(indexRanges(indices, also)).toEqual(ranges);
  });

  it('membership and size', () => {
    const r = indexRanges([0, 1, 2, 10, 11, 50]);
    expect([0, 2, 3, 9, 10, 11, 12, 50, 51].map((i) => inRanges(r, i))).toEqual([
      true,
      true,
      false,
      false,
      true,
      true,
      false,
      true,
      false,
    ]);
    expect(rangesSize(r)).toBe(6);
    expect(rangesSize(indexRanges(Array.from({ length: 100_000 }, (_, i) => i)))).toBe(100_000);
    expect(indexRanges(Array.from({ length: 100_000 }, (_, i) => 99_999 - i))).toEqual([
      0, 100_000,
    ]);
  });
});

describe('redrive and Retry in the interpreter', () => {
  const mapOfTasks: StateMachineDefinition = {
    StartAt: 'Items',
    States: {
      Items: {
        Type: 'Map',
        MaxConcurrency: 1,
        Retry: [{ ErrorEquals: ['Flaky'], MaxAttempts: 1, IntervalSeconds: 1 }],
        ItemProcessor: {
          StartAt: 'Work',
          States: { Work: { Type: 'Task', Resource: 'arn:aws:states:::work', End: true } },
        },
        End: true,
      },
    },
  };

  it('a Retry of a Map state runs every iteration again (only a redrive keeps progress)', async () => {
    const calls: number[] = [];
    let failures = 1;
    const result = await runInMemory(mapOfTasks, [0, 1, 2], {
      tasks: ({ input }) => {
        calls.push(input as number);
        if (input === 1 && failures-- > 0) throw new StatesError('Flaky', 'once', false);
        return input;
      },
    });
    expect(result).toMatchObject({ status: 'SUCCEEDED', output: [0, 1, 2] });
    expect(calls).toEqual([0, 1, 0, 1, 2]);
  });

  it('a redrive point written by an older Strand (the top-level Map only) still redrives', async () => {
    const passMap: StateMachineDefinition = {
      StartAt: 'Items',
      States: {
        Items: {
          Type: 'Map',
          ItemProcessor: { StartAt: 'Copy', States: { Copy: { Type: 'Pass', End: true } } },
          End: true,
        },
      },
    };
    const interpreter = new Interpreter(passMap);
    const { state } = await interpreter.start([0, 1, 2], { time: T0 });
    state.status = 'FAILED';
    state.redrive = {
      state: 'Items',
      input: [0, 1, 2],
      variables: {},
      mapProgress: { state: 'Items', results: [10, null, 30], succeeded: [2, 0] },
    };
    const redriven = await interpreter.redrive(state, T0 + 1000);
    expect(redriven.state).toMatchObject({ status: 'SUCCEEDED', output: [10, 1, 30] });
    expect(
      redriven.events
        .filter((e) => e.type === 'MapIterationStarted')
        .map((e) => (e.mapIterationStartedEventDetails as { index: number }).index),
    ).toEqual([1]);
  });
});
