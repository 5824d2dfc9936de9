/**
 * Nested executions: `states:startExecution`, `.sync` and `.sync:2` with AWS's output shapes,
 * children listed with their parent, a failing child, an unknown state machine and a loop.
 */
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { strand } from '../pipeline/cli.js';

const CHILD_ARN = 'arn:aws:states:us-east-1:123456789012:stateMachine:child';

/** A directory with `parent.asl.json` (one Task of `resource`) and `child.asl.json`. */
function workspace(
  resource: string,
  child: unknown,
  task: Record<string, unknown> = {},
  states: Record<string, unknown> = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'strand-nested-'));
  mkdirSync(join(dir, 'home'));
  writeFileSync(
    join(dir, 'parent.asl.json'),
    JSON.stringify({
      StartAt: 'Run child',
      States: {
        'Run child': {
          Type: 'Task',
          Resource: resource,
          Parameters: {
            StateMachineArn: CHILD_ARN,
            Input: {
              'n.$': '$.n',
              'AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$': '$$.Execution.Id',
            },
          },
          ...(task.Next ? {} : { End: true }),
          ...task,
        },
        ...states,
      },
    }),
  );
  writeFileSync(join(dir, 'child.asl.json'), JSON.stringify(child));
  return { parent: join(dir, 'parent.asl.json'), home: join(dir, 'home'), dir };
}

const doubler = {
  StartAt: 'Double',
  States: {
    Double: {
      Type: 'Pass',
      Parameters: { 'doubled.$': 'States.MathAdd($.n, $.n)' },
      End: true,
    },
  },
};

describe('nested executions', () => {
  it('.sync:2: the child runs to the end; its output as JSON, its name listed with the parent', async () => {
    const ws = workspace('arn:aws:states:::states:startExecution.sync:2', doubler);
    const r = await strand(
      'start',
      ws.parent,
      '--home',
      ws.home,
      '--name',
      'p1',
      '--input',
      '{"n":3}',
      '--quiet',
    );
    expect(r.code, r.err).toBe(0);
    const out = JSON.parse(r.out);
    expect(out).toMatchObject({
      Status: 'SUCCEEDED',
      Output: { doubled: 6 },
      OutputDetails: { Included: true },
      Input: {
        n: 3,
        AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: expect.stringContaining(':execution:parent:p1'),
      },
      StateMachineArn: 'arn:aws:states:local:000000000000:stateMachine:child',
    });
    expect(typeof out.StartDate).toBe('number');
    expect(out.StopDate).toBeGreaterThanOrEqual(out.StartDate);
    const ls = await strand('executions', 'ls', '--home', ws.home);
    expect(ls.out).toMatch(/^NAME +STATUS +STARTED +SECONDS +PARENT$/m);
    expect(ls.out).toMatch(new RegExp(`^${out.Name} +SUCCEEDED .* p1$`, 'm'));
    const json = JSON.parse((await strand('executions', 'ls', '--home', ws.home, '--json')).out);
    expect(json.find((d: { name: string }) => d.name === out.Name).parentExecutionArn).toMatch(
      /:execution:parent:p1$/,
    );
  }, 30_000);

  it('.sync gives input and output as JSON text; without .sync, the ARN and start date at once', async () => {
    const sync = workspace('arn:aws:states:::states:startExecution.sync', doubler);
    const r = await strand(
      'start',
      sync.parent,
      '--home',
      sync.home,
      '--input',
      '{"n":4}',
      '--quiet',
    );
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).Output).toBe('{"doubled":8}');
    const start = workspace('arn:aws:states:::states:startExecution', doubler);
    const s = await strand(
      'start',
      start.parent,
      '--home',
      start.home,
      '--input',
      '{"n":1}',
      '--quiet',
    );
    expect(s.code, s.err).toBe(0);
    const started = JSON.parse(s.out);
    expect(Object.keys(started).sort()).toEqual(['ExecutionArn', 'StartDate']);
    expect(started.ExecutionArn).toMatch(/:execution:child:/);
  }, 30_000);

  it('a failing child fails the task with its description as the cause; Catch sees it', async () => {
    const ws = workspace(
      'arn:aws:states:::states:startExecution.sync:2',
      { StartAt: 'No', States: { No: { Type: 'Fail', Error: 'Lab.Bad', Cause: 'bad sample' } } },
      {
        Catch: [{ ErrorEquals: ['States.TaskFailed'], ResultPath: '$.failed', Next: 'Handled' }],
        Next: 'Done',
      },
      { Done: { Type: 'Succeed' }, Handled: { Type: 'Pass', End: true } },
    );
    const r = await strand('start', ws.parent, '--home', ws.home, '--input', '{"n":1}', '--quiet');
    expect(r.code, r.err).toBe(0);
    const failed = JSON.parse(r.out).failed;
    expect(failed.Error).toBe('States.TaskFailed');
    expect(JSON.parse(failed.Cause)).toMatchObject({
      Status: 'FAILED',
      Error: 'Lab.Bad',
      Cause: 'bad sample',
    });
  }, 30_000);

  it('an unknown state machine, and one that starts itself: clear failures', async () => {
    const ws = workspace('arn:aws:states:::states:startExecution.sync:2', doubler);
    writeFileSync(
      ws.parent,
      JSON.stringify({
        StartAt: 'Run',
        States: {
          Run: {
            Type: 'Task',
            Resource: 'arn:aws:states:::states:startExecution.sync:2',
            Parameters: {
              StateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:nowhere',
            },
            End: true,
          },
        },
      }),
    );
    const unknown = await strand('start', ws.parent, '--home', ws.home, '--quiet');
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('StepFunctions.StateMachineDoesNotExistException');
    expect(unknown.err).toContain(
      "State Machine Does Not Exist: 'arn:aws:states:us-east-1:123456789012:stateMachine:nowhere'",
    );

    const loop = join(ws.dir, 'loop.asl.json');
    writeFileSync(
      loop,
      JSON.stringify({
        StartAt: 'Again',
        States: {
          Again: {
            Type: 'Task',
            Resource: 'arn:aws:states:::states:startExecution.sync:2',
            Parameters: {
              StateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:loop',
            },
            End: true,
          },
        },
      }),
    );
    const looped = await strand('start', loop, '--home', ws.home, '--name', 'l0', '--quiet');
    expect(looped.code).toBe(1);
    // The deepest execution failed at its start of another; each above it failed with it.
    const all = JSON.parse((await strand('executions', 'ls', '--home', ws.home, '--json')).out) as {
      name: string;
      error?: string;
      cause?: string;
    }[];
    const deepest = all.filter((d) => d.error === 'States.Runtime');
    expect(deepest).toHaveLength(1);
    expect(deepest[0].cause).toMatch(
      /executions started one another 16 deep \(loop → loop → .*\); a loop\? Strand stops at 16/,
    );
    expect(all.filter((d) => d.name !== 'l0' && d.error === 'States.TaskFailed')).toHaveLength(15);
  }, 60_000);
});
