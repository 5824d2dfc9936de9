/** Table-driven tests per state type, through the in-memory driver. */
import { describe, expect, it } from 'vitest';
import { StatesError } from '../../src/asl/errors.js';
import { runInMemory, type TaskHandler } from '../../src/asl/run-in-memory.js';
import type { Json, StateDefinition, StateMachineDefinition } from '../../src/asl/types.js';

interface Row {
  name: string;
  states: Record<string, StateDefinition>;
  input?: Json;
  tasks?: TaskHandler;
  top?: Partial<StateMachineDefinition>;
  output?: Json;
  error?: string;
  cause?: string | RegExp;
}

const one = (state: StateDefinition): Record<string, StateDefinition> => ({ S: state });

async function check(row: Row) {
  const definition = {
    StartAt: Object.keys(row.states)[0],
    States: row.states,
    ...row.top,
  } as StateMachineDefinition;
  const result = await runInMemory(definition, row.input ?? {}, { tasks: row.tasks });
  if (row.error !== undefined) {
    expect(result.status, JSON.stringify(result.output)).toBe('FAILED');
    expect(result.error).toBe(row.error);
    if (typeof row.cause === 'string') expect(result.cause).toBe(row.cause);
    else if (row.cause) expect(result.cause).toMatch(row.cause);
  } else {
    expect(result.status, `${result.error}: ${result.cause}`).toBe('SUCCEEDED');
    expect(result.output).toEqual(row.output);
  }
}

const echo: TaskHandler = ({ input }) => input;
const items = (n: number) => Array.from({ length: n }, (_, i) => i);

const tables: Record<string, Row[]> = {
  Pass: [
    {
      name: 'passes its input',
      states: one({ Type: 'Pass', End: true }),
      input: { a: 1 },
      output: { a: 1 },
    },
    {
      name: 'Result at ResultPath',
      states: one({ Type: 'Pass', Result: 'r', ResultPath: '$.x', End: true }),
      input: { a: 1 },
      output: { a: 1, x: 'r' },
    },
    {
      name: 'InputPath, Parameters, OutputPath',
      states: one({
        Type: 'Pass',
        InputPath: '$.s',
        Parameters: { 'v.$': '$.v' },
        OutputPath: '$.v',
        End: true,
      }),
      input: { s: { v: 9 } },
      output: 9,
    },
    {
      name: 'JSONata Output sees $states.input',
      states: one({
        Type: 'Pass',
        QueryLanguage: 'JSONata',
        Output: '{% $states.input.n * 2 %}',
        End: true,
      }),
      input: { n: 21 },
      output: 42,
    },
    {
      name: 'Assign is evaluated against the result, visible in the next state',
      states: {
        A: { Type: 'Pass', Result: { id: 'S1' }, Assign: { 'sample.$': '$.id' }, Next: 'B' },
        B: { Type: 'Pass', Parameters: { 'who.$': '$sample' }, End: true },
      },
      output: { who: 'S1' },
    },
  ],
  Task: [
    {
      name: 'Parameters to the task, ResultSelector and ResultPath on the way back',
      states: one({
        Type: 'Task',
        Resource: 'arn:aws:states:::lambda:invoke',
        Parameters: { 'n.$': '$.n' },
        ResultSelector: { 'doubled.$': '$.n' },
        ResultPath: '$.r',
        End: true,
      }),
      input: { n: 2 },
      tasks: echo,
      output: { n: 2, r: { doubled: 2 } },
    },
    {
      name: 'JSONata Arguments and Output with $states.result',
      states: one({
        Type: 'Task',
        QueryLanguage: 'JSONata',
        Resource: 'arn:aws:states:::lambda:invoke',
        Arguments: { x: '{% $states.input.x + 1 %}' },
        Output: '{% $states.result.x %}',
        End: true,
      }),
      input: { x: 1 },
      tasks: echo,
      output: 2,
    },
    {
      name: 'a task error without a handler fails the execution',
      states: one({ Type: 'Task', Resource: 'arn:aws:states:::lambda:invoke', End: true }),
      tasks: () => {
        throw new StatesError('Boom', 'broken', false);
      },
      error: 'Boom',
      cause: 'broken',
    },
    {
      name: 'Retry then success',
      states: one({
        Type: 'Task',
        Resource: 'arn:aws:states:::lambda:invoke',
        Retry: [{ ErrorEquals: ['Flaky'], MaxAttempts: 2 }],
        End: true,
      }),
      tasks: (() => {
        let n = 0;
        return () => {
          if (n++ < 2) throw new StatesError('Flaky', 'try again', false);
          return 'ok';
        };
      })(),
      output: 'ok',
    },
    {
      name: 'MaxAttempts 0 never retries',
      states: one({
        Type: 'Task',
        Resource: 'arn:aws:states:::lambda:invoke',
        Retry: [{ ErrorEquals: ['States.ALL'], MaxAttempts: 0 }],
        End: true,
      }),
      tasks: () => {
        throw new StatesError('Once', undefined, false);
      },
      error: 'Once',
    },
    {
      name: 'Catch with JSONata Output sees $states.errorOutput',
      states: {
        T: {
          Type: 'Task',
          QueryLanguage: 'JSONata',
          Resource: 'arn:aws:states:::lambda:invoke',
          Catch: [
            { ErrorEquals: ['States.ALL'], Output: '{% $states.errorOutput.Error %}', Next: 'C' },
          ],
          End: true,
        },
        C: { Type: 'Pass', End: true },
      },
      tasks: () => {
        throw new StatesError('Exploded', 'x', false);
      },
      output: 'Exploded',
    },
    {
      name: 'results over 256 KiB are States.DataLimitExceeded',
      states: one({ Type: 'Task', Resource: 'arn:aws:states:::lambda:invoke', End: true }),
      tasks: () => 'x'.repeat(300_000),
      error: 'States.DataLimitExceeded',
    },
  ],
  Choice: [
    {
      name: 'first matching rule wins; Assign on the rule',
      states: {
        C: {
          Type: 'Choice',
          Choices: [
            { Variable: '$.n', NumericGreaterThan: 5, Assign: { big: true }, Next: 'Big' },
            { Variable: '$.n', NumericGreaterThan: 1, Next: 'Small' },
          ],
          Default: 'Small',
        },
        Big: { Type: 'Pass', Parameters: { 'big.$': '$big' }, End: true },
        Small: { Type: 'Pass', Result: 'small', End: true },
      },
      input: { n: 10 },
      output: { big: true },
    },
    {
      name: 'no match and no Default is States.NoChoiceMatched',
      states: {
        C: { Type: 'Choice', Choices: [{ Variable: '$.n', NumericEquals: 1, Next: 'X' }] },
        X: { Type: 'Succeed' },
      },
      input: { n: 2 },
      error: 'States.NoChoiceMatched',
    },
    {
      name: 'JSONata Condition',
      states: {
        C: {
          Type: 'Choice',
          QueryLanguage: 'JSONata',
          Choices: [{ Condition: '{% $states.input.n > 5 %}', Next: 'Yes' }],
          Default: 'No',
        },
        Yes: { Type: 'Pass', Result: 'yes', End: true },
        No: { Type: 'Pass', Result: 'no', End: true },
      },
      input: { n: 6 },
      output: 'yes',
    },
  ],
  Wait: [
    {
      name: 'Seconds then passes its input',
      states: one({ Type: 'Wait', Seconds: 3600, End: true }),
      input: { a: 1 },
      output: { a: 1 },
    },
    {
      name: 'TimestampPath',
      states: one({ Type: 'Wait', TimestampPath: '$.at', End: true }),
      input: { at: '2030-01-01T00:00:00Z' },
      output: { at: '2030-01-01T00:00:00Z' },
    },
    {
      name: 'a bad TimestampPath is States.Runtime',
      states: one({ Type: 'Wait', TimestampPath: '$.at', End: true }),
      input: { at: 'tomorrow' },
      error: 'States.Runtime',
      cause: /TimestampPath/,
    },
  ],
  Succeed: [
    {
      name: 'OutputPath',
      states: one({ Type: 'Succeed', OutputPath: '$.a' }),
      input: { a: [1] },
      output: [1],
    },
  ],
  Fail: [
    {
      name: 'Error and Cause',
      states: one({ Type: 'Fail', Error: 'QCFailed', Cause: 'too few reads' }),
      error: 'QCFailed',
      cause: 'too few reads',
    },
    {
      name: 'ErrorPath and an intrinsic CausePath',
      states: one({
        Type: 'Fail',
        ErrorPath: '$.e',
        CausePath: "States.Format('sample {} failed', $.s)",
      }),
      input: { e: 'E1', s: 'S7' },
      error: 'E1',
      cause: 'sample S7 failed',
    },
    {
      name: 'JSONata Error',
      states: one({
        Type: 'Fail',
        QueryLanguage: 'JSONata',
        Error: '{% "E" & $string($states.input.n) %}',
      }),
      input: { n: 5 },
      error: 'E5',
    },
  ],
  Parallel: [
    {
      name: 'outputs in branch order',
      states: one({
        Type: 'Parallel',
        Branches: [
          { StartAt: 'A', States: { A: { Type: 'Pass', Result: 'a', End: true } } },
          {
            StartAt: 'B',
            States: {
              B: { Type: 'Wait', Seconds: 5, Next: 'B2' },
              B2: { Type: 'Pass', Result: 'b', End: true },
            },
          },
        ],
        End: true,
      }),
      output: ['a', 'b'],
    },
    {
      name: 'a failing branch is caught by the Parallel state',
      states: {
        P: {
          Type: 'Parallel',
          Branches: [{ StartAt: 'F', States: { F: { Type: 'Fail', Error: 'BranchBroke' } } }],
          Catch: [{ ErrorEquals: ['BranchBroke'], ResultPath: '$.err', Next: 'Done' }],
          End: true,
        },
        Done: { Type: 'Pass', OutputPath: '$.err.Error', End: true },
      },
      output: 'BranchBroke',
    },
  ],
  Map: [
    {
      name: 'ItemsPath and ItemSelector with $$.Map.Item',
      states: one({
        Type: 'Map',
        ItemsPath: '$.xs',
        ItemSelector: { 'i.$': '$$.Map.Item.Index', 'v.$': '$$.Map.Item.Value', 'k.$': '$.k' },
        ItemProcessor: { StartAt: 'P', States: { P: { Type: 'Pass', End: true } } },
        End: true,
      }),
      input: { xs: ['a', 'b'], k: 1 },
      output: [
        { i: 0, v: 'a', k: 1 },
        { i: 1, v: 'b', k: 1 },
      ],
    },
    {
      name: 'legacy Iterator and Parameters',
      states: one({
        Type: 'Map',
        Parameters: { 'v.$': '$$.Map.Item.Value' },
        Iterator: { StartAt: 'P', States: { P: { Type: 'Pass', End: true } } },
        End: true,
      }),
      input: [1],
      output: [{ v: 1 }],
    },
    {
      name: 'JSONata Items',
      states: one({
        Type: 'Map',
        QueryLanguage: 'JSONata',
        Items: '{% $states.input.xs[$ > 1] %}',
        ItemProcessor: { StartAt: 'P', States: { P: { Type: 'Pass', End: true } } },
        End: true,
      }),
      input: { xs: [1, 2, 3] },
      output: [2, 3],
    },
    {
      name: 'ItemBatcher groups items',
      states: one({
        Type: 'Map',
        ItemBatcher: { MaxItemsPerBatch: 2, BatchInput: { run: 'R' } },
        ItemProcessor: { StartAt: 'P', States: { P: { Type: 'Pass', End: true } } },
        End: true,
      }),
      input: [1, 2, 3],
      output: [
        { BatchInput: { run: 'R' }, Items: [1, 2] },
        { BatchInput: { run: 'R' }, Items: [3] },
      ],
    },
    {
      name: 'ItemReader: the driver returns the items; MaxItems limits them',
      states: one({
        Type: 'Map',
        ItemReader: {
          Resource: 'arn:aws:states:::s3:getObject',
          ReaderConfig: { InputType: 'JSON', MaxItems: 2 },
          Parameters: { 'Key.$': '$.key' },
        },
        ItemProcessor: { StartAt: 'P', States: { P: { Type: 'Pass', End: true } } },
        End: true,
      }),
      input: { key: 'samples.json' },
      tasks: ({ input }) =>
        (input as { Key: string }).Key === 'samples.json' ? ['S1', 'S2', 'S3'] : [],
      output: ['S1', 'S2'],
    },
    {
      name: 'an item failure fails the Map with its error when nothing is tolerated',
      states: one({
        Type: 'Map',
        ItemProcessor: { StartAt: 'F', States: { F: { Type: 'Fail', Error: 'ItemBroke' } } },
        End: true,
      }),
      input: [1, 2],
      error: 'ItemBroke',
    },
    {
      name: 'ToleratedFailureCount lets the Map succeed with the failures in its output',
      states: one({
        Type: 'Map',
        ToleratedFailureCount: 1,
        ItemProcessor: {
          StartAt: 'C',
          States: {
            C: {
              Type: 'Choice',
              Choices: [{ Variable: '$', NumericEquals: 2, Next: 'F' }],
              Default: 'P',
            },
            F: { Type: 'Fail', Error: 'Two' },
            P: { Type: 'Pass', End: true },
          },
        },
        End: true,
      }),
      input: [1, 2, 3],
      output: [1, { Error: 'Two' }, 3],
    },
    {
      name: 'exceeding the tolerance is States.ExceedToleratedFailureThreshold',
      states: one({
        Type: 'Map',
        ToleratedFailurePercentage: 10,
        ItemProcessor: { StartAt: 'F', States: { F: { Type: 'Fail', Error: 'X' } } },
        End: true,
      }),
      input: items(5),
      error: 'States.ExceedToleratedFailureThreshold',
    },
    {
      name: 'an empty array gives []',
      states: one({
        Type: 'Map',
        ItemProcessor: { StartAt: 'P', States: { P: { Type: 'Pass', End: true } } },
        End: true,
      }),
      input: [],
      output: [],
    },
    {
      name: 'input that is not an array',
      states: one({
        Type: 'Map',
        ItemProcessor: { StartAt: 'P', States: { P: { Type: 'Pass', End: true } } },
        End: true,
      }),
      input: { not: 'array' },
      error: 'States.QueryEvaluationError',
      cause: /must be an array/,
    },
    {
      name: 'a bad MaxConcurrencyPath value is States.Runtime naming the value',
      states: one({
        Type: 'Map',
        MaxConcurrencyPath: '$.m',
        ItemsPath: '$.xs',
        ItemProcessor: { StartAt: 'P', States: { P: { Type: 'Pass', End: true } } },
        End: true,
      }),
      input: { m: 'lots', xs: [] },
      error: 'States.Runtime',
      cause: /"lots" which is not a valid integer: \$\.m/,
    },
  ],
};

for (const [type, rows] of Object.entries(tables)) {
  describe(`${type} state`, () => {
    it.each(rows.map((r) => [r.name, r] as const))('%s', async (_name, row) => {
      await check(row);
    });
  });
}

describe('execution', () => {
  it('TimeoutSeconds on the state machine ends it TIMED_OUT', async () => {
    const result = await runInMemory(
      { StartAt: 'W', TimeoutSeconds: 10, States: { W: { Type: 'Wait', Seconds: 60, End: true } } },
      {},
    );
    expect(result.status).toBe('TIMED_OUT');
    expect(result.error).toBe('States.Timeout');
  });

  it('States.Runtime in a Map iteration is not caught: the whole execution fails', async () => {
    const result = await runInMemory(
      {
        StartAt: 'M',
        States: {
          M: {
            Type: 'Map',
            ItemProcessor: {
              StartAt: 'P',
              States: { P: { Type: 'Pass', Parameters: { 'x.$': '$.missing' }, End: true } },
            },
            Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Caught' }],
            End: true,
          },
          Caught: { Type: 'Succeed' },
        },
      },
      [{}],
    );
    expect(result.status).toBe('FAILED');
    expect(result.error).toBe('States.Runtime');
  });
});
