import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { StateMachineDefinition } from '../../src/asl/types.js';
import { Engine, EngineBusyError, EngineInputError } from '../../src/engine/engine.js';
import { Store, StoreError } from '../../src/engine/store.js';
import Database from 'better-sqlite3';
import { passMap } from '../fixtures/definitions.js';

const homes: Engine[] = [];
const home = () => mkdtempSync(join(tmpdir(), 'strand-engine-'));
const open = (dir: string, options: Partial<Parameters<typeof Engine.open>[0]> = {}) => {
  const engine = Engine.open({ home: dir, ...options });
  homes.push(engine);
  return engine;
};
afterEach(() => {
  for (const e of homes.splice(0)) {
    try {
      e.close();
    } catch {
      // already closed
    }
  }
});

const lambdaMachine: StateMachineDefinition = {
  StartAt: 'Double',
  States: {
    Double: {
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: { FunctionName: 'double', 'Payload.$': '$' },
      OutputPath: '$.Payload',
      Next: 'Done',
    },
    Done: { Type: 'Succeed' },
  },
};

describe('durable engine', () => {
  it('runs an execution to SUCCEEDED and keeps its description and history in SQLite', async () => {
    const dir = home();
    const engine = open(dir);
    engine.registerFunction('double', (p) => (p as number) * 2);
    const started = await engine.startExecution({
      definition: lambdaMachine,
      input: 21,
      name: 'run-1',
    });
    expect(started.status).toBe('RUNNING');
    const done = await engine.waitForExecution('run-1');
    expect(done).toMatchObject({ name: 'run-1', status: 'SUCCEEDED', output: '42', input: '21' });
    expect(engine.getExecutionHistory('run-1').map((e) => e.type)).toEqual([
      'ExecutionStarted',
      'TaskStateEntered',
      'TaskScheduled',
      'TaskSucceeded',
      'TaskStateExited',
      'SucceedStateEntered',
      'SucceedStateExited',
      'ExecutionSucceeded',
    ]);
    engine.close();
    const again = open(dir);
    expect(again.describeExecution('run-1')).toMatchObject({ status: 'SUCCEEDED', output: '42' });
    expect(again.listExecutions().map((d) => d.name)).toEqual(['run-1']);
  });

  it('StartExecution is idempotent by name; a different input under the same name is refused', async () => {
    const engine = open(home());
    engine.registerFunction('double', (p) => (p as number) * 2);
    const a = await engine.startExecution({ definition: lambdaMachine, input: 1, name: 'same' });
    const b = await engine.startExecution({ definition: lambdaMachine, input: 1, name: 'same' });
    expect(b.executionArn).toBe(a.executionArn);
    await expect(
      engine.startExecution({ definition: lambdaMachine, input: 2, name: 'same' }),
    ).rejects.toMatchObject({
      code: 'EXECUTION_ALREADY_EXISTS',
    });
    await engine.waitForExecution('same');
    expect(engine.listExecutions()).toHaveLength(1);
  });

  it('an invalid definition or an unknown resource is refused before anything starts', async () => {
    const engine = open(home());
    await expect(
      engine.startExecution({ definition: { StartAt: 'X', States: {} } as StateMachineDefinition }),
    ).rejects.toBeInstanceOf(EngineInputError);
    const err = await engine
      .startExecution({
        definition: {
          StartAt: 'Q',
          States: { Q: { Type: 'Task', Resource: 'arn:aws:states:::sqs:sendMessage', End: true } },
        },
      })
      .catch((e: EngineInputError) => e);
    expect(err).toMatchObject({ code: 'UNKNOWN_RESOURCE' });
    expect((err as EngineInputError).details).toEqual([
      '/States/Q/Resource: arn:aws:states:::sqs:sendMessage (state "Q")',
    ]);
    expect((err as Error).message).toContain('--mock-config FILE --mock-case NAME');
    expect(engine.listExecutions()).toHaveLength(0);
  });

  it('a Wait timer survives closing the engine: a new engine on the same home finishes it', async () => {
    const dir = home();
    let now = Date.UTC(2026, 0, 1);
    const def: StateMachineDefinition = {
      StartAt: 'W',
      States: {
        W: { Type: 'Wait', Seconds: 3600, Next: 'P' },
        P: { Type: 'Pass', Result: 'woke', End: true },
      },
    };
    const first = open(dir, { now: () => now });
    await first.startExecution({ definition: def, name: 'sleeper' });
    expect(first.describeExecution('sleeper').status).toBe('RUNNING');
    first.close();
    now += 3600 * 1000;
    const second = open(dir, { now: () => now });
    const done = await second.waitForExecution('sleeper');
    expect(done).toMatchObject({ status: 'SUCCEEDED', output: '"woke"' });
  });

  it('StopExecution aborts a running execution', async () => {
    const engine = open(home());
    await engine.startExecution({
      definition: { StartAt: 'W', States: { W: { Type: 'Wait', Seconds: 86400, End: true } } },
      name: 'long',
    });
    const stopped = await engine.stopExecution('long', 'User.Cancelled', 'changed my mind');
    expect(stopped).toMatchObject({
      status: 'ABORTED',
      error: 'User.Cancelled',
      cause: 'changed my mind',
    });
    expect(engine.getExecutionHistory('long').at(-1)?.type).toBe('ExecutionAborted');
  });

  it('a function error fails the task with the Lambda error shape, and Catch sees it', async () => {
    const engine = open(home());
    engine.registerFunction('double', () => {
      throw new TypeError('not a number');
    });
    await engine.startExecution({ definition: lambdaMachine, input: 'x', name: 'bad' });
    const d = await engine.waitForExecution('bad');
    expect(d.status).toBe('FAILED');
    expect(d.error).toBe('TypeError');
    expect(JSON.parse(d.cause!)).toEqual({ errorMessage: 'not a number', errorType: 'TypeError' });
  });

  it('one engine schedules a home at a time; a read-only one may look on', async () => {
    const dir = home();
    const first = open(dir);
    expect(() => Engine.open({ home: dir })).toThrow(EngineBusyError);
    const reader = open(dir, { readOnly: true });
    expect(reader.listExecutions()).toEqual([]);
    const waiting = Engine.openWhenFree({ home: dir });
    first.close();
    const second = await waiting;
    homes.push(second);
    expect(() => Engine.open({ home: dir })).toThrow(/another Strand engine \(pid \d+/);
  });

  it('RedriveExecution re-runs only what failed or never ran', async () => {
    const engine = open(home());
    const calls: number[] = [];
    let broken = true;
    engine.registerFunction('check', (item) => {
      calls.push(item as number);
      if (item === 2 && broken) throw new Error('sample 2 is corrupt');
      return (item as number) * 10;
    });
    const definition: StateMachineDefinition = {
      StartAt: 'Prepare',
      States: {
        Prepare: { Type: 'Pass', Assign: { factor: 10 }, Next: 'Samples' },
        Samples: {
          Type: 'Map',
          MaxConcurrency: 1,
          ItemProcessor: {
            StartAt: 'Check',
            States: {
              Check: {
                Type: 'Task',
                Resource: 'arn:aws:states:::lambda:invoke',
                Parameters: { FunctionName: 'check', 'Payload.$': '$' },
                OutputPath: '$.Payload',
                End: true,
              },
            },
          },
          End: true,
        },
      },
    };
    await engine.startExecution({ definition, input: [0, 1, 2, 3, 4], name: 'redrive-me' });
    expect(await engine.waitForExecution('redrive-me')).toMatchObject({
      status: 'FAILED',
      error: 'Exception',
    });
    expect(calls).toEqual([0, 1, 2]);
    await expect(engine.redriveExecution('nope')).rejects.toMatchObject({
      code: 'NO_SUCH_EXECUTION',
    });
    broken = false;
    const redriven = await engine.redriveExecution('redrive-me');
    expect(redriven.redriveCount).toBe(1);
    const done = await engine.waitForExecution('redrive-me');
    expect(done).toMatchObject({ status: 'SUCCEEDED', output: '[0,10,20,30,40]', redriveCount: 1 });
    // Items 0 and 1 had succeeded: they were not run again.
    expect(calls).toEqual([0, 1, 2, 2, 3, 4]);
    expect(
      engine.getExecutionHistory('redrive-me').filter((e) => e.type === 'ExecutionRedriven'),
    ).toHaveLength(1);
    await expect(engine.redriveExecution('redrive-me')).rejects.toMatchObject({
      code: 'NOT_REDRIVABLE',
    });
  });

  it('a foreign or corrupt database file is reported and left untouched', () => {
    const dir = home();
    const path = join(dir, 'strand.db');
    writeFileSync(path, 'this is not a database, it is a lab notebook');
    expect(() => Engine.open({ home: dir })).toThrow(StoreError);
    expect(readFileSync(path, 'utf8')).toBe('this is not a database, it is a lab notebook');
  });

  it('killed with SIGKILL mid-run, a new engine resumes the execution to SUCCEEDED', async () => {
    const dir = home();
    const script = join(dir, 'run.mts');
    // A child engine starts a Map of waits, then is killed while they are pending.
    writeFileSync(
      script,
      `import { Engine } from ${JSON.stringify(join(process.cwd(), 'src/engine/engine.ts'))};
       const engine = Engine.open({ home: ${JSON.stringify(dir)} });
       await engine.startExecution({ name: 'crashy', input: [1, 2, 3], definition: {
         StartAt: 'M', States: { M: { Type: 'Map', MaxConcurrency: 1, ItemProcessor: { StartAt: 'W', States: {
           W: { Type: 'Wait', Seconds: 1, Next: 'P' }, P: { Type: 'Pass', End: true } } }, End: true } } } });
       process.stdout.write('started\\n');
       setInterval(() => {}, 1000);`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('started') && resolve());
      child.on('exit', (code) => reject(new Error(`child exited early with ${code}`)));
    });
    await new Promise((r) => setTimeout(r, 1200));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const engine = open(dir);
    expect(engine.describeExecution('crashy').status).toBe('RUNNING');
    const done = await engine.waitForExecution('crashy');
    expect(done).toMatchObject({ status: 'SUCCEEDED', output: '[1,2,3]' });
    const types = engine.getExecutionHistory('crashy').map((e) => e.type);
    expect(types.filter((t) => t === 'MapIterationSucceeded')).toHaveLength(3);
    expect(types.filter((t) => t === 'ExecutionStarted')).toHaveLength(1);
  });
});

describe('large steps are committed in pieces', () => {
  const items = Array.from({ length: 4000 }, (_, i) => i);

  it('a Map with more events than one step holds finishes with a complete, contiguous history', async () => {
    const engine = open(home());
    await engine.startExecution({ definition: passMap, input: items, name: 'big' });
    const d = await engine.waitForExecution('big');
    expect(d.status).toBe('SUCCEEDED');
    expect(JSON.parse(d.output!)).toEqual(items);
    const history = engine.getExecutionHistory('big');
    expect(history.length).toBeGreaterThan(20_000);
    expect(history.map((e) => e.id)).toEqual(history.map((_, i) => i + 1));
  });

  it('an engine closed between two pieces leaves the rest in the database; the next one finishes it', async () => {
    const dir = home();
    const first = Engine.open({ home: dir });
    await first.startExecution({ definition: passMap, input: items, name: 'big' });
    first.close();
    const reader = Engine.open({ home: dir, readOnly: true });
    expect(reader.describeExecution('big').status).toBe('RUNNING');
    reader.close();
    const second = open(dir);
    const d = await second.waitForExecution('big');
    expect(d.status).toBe('SUCCEEDED');
    expect(JSON.parse(d.output!)).toEqual(items);
    const history = second.getExecutionHistory('big');
    expect(history.map((e) => e.id)).toEqual(history.map((_, i) => i + 1));
  });
});

describe('the store beside other writers', () => {
  it('takes the lease while another process holds the write lock, once it commits', async () => {
    const dir = home();
    Store.open(dir).close();
    // Another process takes the write lock, writes, and commits 300 ms later.
    const other = spawn(
      process.execPath,
      [
        '-e',
        `const db = new (require('better-sqlite3'))(process.argv[1]);
         db.pragma('busy_timeout = 5000');
         db.exec('BEGIN IMMEDIATE');
         db.prepare("INSERT INTO timers (execution_arn, timer_id, due) VALUES ('a', 't', 0)").run();
         process.stdout.write('locked\\n');
         setTimeout(() => { db.exec('COMMIT'); db.close(); }, 300);`,
        join(dir, 'strand.db'),
      ],
      { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => other.stdout.once('data', () => resolve()));
    const store = Store.open(dir);
    try {
      // Its read comes before the other's commit, its write after: it must wait, not fail.
      const owner = { id: 'me', pid: process.pid, host: 'here' };
      expect(store.acquireLease(owner, Date.now(), 10_000, () => true)).toBeUndefined();
    } finally {
      store.close();
      await new Promise((resolve) => other.once('exit', resolve));
    }
  });
});

describe('the store schema', () => {
  it('a home at schema 3 is migrated to 6: tasks not yet dispatched, executions without a parent or mocks', async () => {
    const dir = home();
    const store = Store.open(dir);
    store.putTask({
      executionArn: 'arn:x',
      taskId: 't0.1',
      resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
      input: '{}',
      stateName: 'Ask',
      attempt: 0,
      command: '{}',
    });
    store.close();
    // As schema 3 left it: no dispatched column.
    const db = new Database(join(dir, 'strand.db'));
    db.exec('ALTER TABLE tasks DROP COLUMN dispatched');
    db.exec('ALTER TABLE executions DROP COLUMN parent_arn');
    db.exec('ALTER TABLE executions DROP COLUMN mock');
    db.pragma('user_version = 3');
    db.close();
    const migrated = Store.open(dir);
    try {
      expect(migrated.outstandingTask('arn:x', 't0.1')).toMatchObject({ dispatched: false });
      migrated.markDispatched('arn:x', 't0.1');
      expect(migrated.outstandingTask('arn:x', 't0.1')).toMatchObject({ dispatched: true });
    } finally {
      migrated.close();
    }
    const check = new Database(join(dir, 'strand.db'), { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(6);
    const columns = check.prepare('PRAGMA table_info(executions)').all() as { name: string }[];
    expect(columns.map((c) => c.name)).toEqual(expect.arrayContaining(['parent_arn', 'mock']));
    check.close();
  });
});
