import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { StateMachineDefinition } from '../../src/asl/types.js';
import { Engine } from '../../src/engine/engine.js';
import { openExecutor } from '../../src/app/index.js';

const engines: Engine[] = [];
afterEach(() => engines.splice(0).forEach((e) => e.close()));
const home = () => mkdtempSync(join(tmpdir(), 'strand-sfn-batch-'));

function openEngine(dir: string): Engine {
  const e = Engine.open({
    home: dir,
    batch: { executor: openExecutor('local', { home: dir }), maxvCpus: 2, memoryMiB: 2048 },
  });
  engines.push(e);
  return e;
}

const jobMap = (resource: string, extra: Record<string, unknown> = {}): StateMachineDefinition => ({
  StartAt: 'EachSample',
  States: {
    EachSample: {
      Type: 'Map',
      ItemsPath: '$.samples',
      ItemProcessor: {
        StartAt: 'Run',
        States: {
          Run: {
            Type: 'Task',
            Resource: resource,
            Parameters: {
              'JobName.$': "States.Format('sample-{}', $)",
              JobQueue: 'default',
              JobDefinition: 'script',
              ContainerOverrides: { Environment: [{ Name: 'SAMPLE', 'Value.$': '$' }] },
            },
            ...extra,
            End: true,
          },
        },
      },
      End: true,
    },
  },
});

function register(engine: Engine, script: string): void {
  engine.batch!.registerJobDefinition({
    jobDefinitionName: 'script',
    type: 'container',
    containerProperties: {
      command: [process.execPath, '-e', script],
      resourceRequirements: [
        { type: 'VCPU', value: '1' },
        { type: 'MEMORY', value: '128' },
      ],
    },
  });
}

describe('Step Functions + local Batch', () => {
  it('a Map of batch:submitJob.sync tasks: each output is the job as DescribeJobs shows it', async () => {
    const engine = openEngine(home());
    register(engine, 'console.log("sample", process.env.SAMPLE)');
    await engine.startExecution({
      definition: jobMap('arn:aws:states:::batch:submitJob.sync'),
      input: { samples: ['A', 'B', 'C'] },
      name: 'map',
    });
    const d = await engine.waitForExecution('map');
    expect(d.status).toBe('SUCCEEDED');
    const jobs = JSON.parse(d.output!) as {
      JobName: string;
      Status: string;
      Attempts: { Container: { ExitCode: number } }[];
    }[];
    expect(jobs.map((j) => [j.JobName, j.Status, j.Attempts[0].Container.ExitCode])).toEqual([
      ['sample-A', 'SUCCEEDED', 0],
      ['sample-B', 'SUCCEEDED', 0],
      ['sample-C', 'SUCCEEDED', 0],
    ]);
  });

  it('without .sync the task returns the SubmitJob response at once', async () => {
    const engine = openEngine(home());
    register(engine, '0');
    await engine.startExecution({
      definition: jobMap('arn:aws:states:::batch:submitJob'),
      input: { samples: ['A'] },
      name: 'async',
    });
    const d = await engine.waitForExecution('async');
    expect(Object.keys(JSON.parse(d.output!)[0]).sort()).toEqual(['JobArn', 'JobId', 'JobName']);
  });

  it('a failed job raises States.TaskFailed with the job as the cause', async () => {
    const engine = openEngine(home());
    register(engine, 'process.exit(process.env.SAMPLE === "B" ? 5 : 0)');
    await engine.startExecution({
      definition: jobMap('arn:aws:states:::batch:submitJob.sync'),
      input: { samples: ['A', 'B'] },
      name: 'fails',
    });
    const d = await engine.waitForExecution('fails');
    expect(d.status).toBe('FAILED');
    expect(d.error).toBe('States.TaskFailed');
    const job = JSON.parse(d.cause!);
    expect(job).toMatchObject({
      JobName: 'sample-B',
      Status: 'FAILED',
      Container: { ExitCode: 5 },
    });
  });

  it('StopExecution terminates the running jobs', async () => {
    const engine = openEngine(home());
    register(engine, 'setTimeout(() => {}, 60000)');
    await engine.startExecution({
      definition: jobMap('arn:aws:states:::batch:submitJob.sync'),
      input: { samples: ['A'] },
      name: 'stop',
    });
    const batch = engine.batch!;
    const running = async () => batch.listJobs({ jobStatus: 'RUNNING' });
    for (let i = 0; i < 200 && (await running()).length === 0; i++)
      await new Promise((r) => setTimeout(r, 25));
    const [job] = await running();
    await engine.stopExecution('stop');
    const stopped = await new Promise<{ status: string; statusReason?: string }>((r) =>
      batch.onceDone(job.jobId, r),
    );
    expect(stopped).toMatchObject({
      status: 'FAILED',
      statusReason: 'Execution stopped by Step Functions',
    });
    expect(engine.describeExecution('stop').status).toBe('ABORTED');
  });

  it('SIGKILLed at random points 20 times, a Map of 50 jobs ends SUCCEEDED with each item in the ledger once', async () => {
    const dir = home();
    const ledger = join(dir, 'ledger.txt');
    const script = join(dir, 'engine.mts');
    writeFileSync(
      script,
      `import { Engine } from ${JSON.stringify(join(process.cwd(), 'src/engine/engine.ts'))};
       import { openExecutor } from ${JSON.stringify(join(process.cwd(), 'src/app/index.ts'))};
       const engine = await Engine.openWhenFree({ home: ${JSON.stringify(dir)}, batch: { executor: openExecutor('local', { home: ${JSON.stringify(dir)} }), maxvCpus: 2, memoryMiB: 2048 } });
       if (engine.batch.describeJobDefinitions('ledger').length === 0) {
         engine.batch.registerJobDefinition({ jobDefinitionName: 'ledger', type: 'container', containerProperties: {
           command: [process.execPath, '-e', 'require("fs").appendFileSync(process.env.LEDGER, process.env.ITEM + "\\\\n"); setTimeout(() => {}, 800)'],
           environment: [{ name: 'LEDGER', value: ${JSON.stringify(ledger)} }],
           resourceRequirements: [{ type: 'VCPU', value: '1' }, { type: 'MEMORY', value: '64' }] } });
       }
       const items = Array.from({ length: 50 }, (_, i) => i);
       await engine.startExecution({ name: 'ledger-run', input: items, definition: {
         StartAt: 'M', States: { M: { Type: 'Map', ItemProcessor: { StartAt: 'Job', States: { Job: {
           Type: 'Task', Resource: 'arn:aws:states:::batch:submitJob.sync',
           Parameters: { 'JobName.$': "States.Format('item-{}', $)", JobQueue: 'default', JobDefinition: 'ledger',
             ContainerOverrides: { Environment: [{ Name: 'ITEM', 'Value.$': "States.Format('{}', $)" }] } },
           ResultSelector: { 'status.$': '$.Status' }, End: true } } }, End: true } } } });
       const d = await engine.waitForExecution('ledger-run');
       process.stdout.write(JSON.stringify({ status: d.status, error: d.error, cause: d.cause }) + '\\n');
       engine.close();
       process.exit(0);`,
    );
    const run = () =>
      spawn(process.execPath, ['--import', 'tsx', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
    let kills = 0;
    let seed = 12345;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    while (kills < 20) {
      const child = run();
      let finished = false;
      child.stdout.on('data', () => (finished = true));
      await new Promise((r) => setTimeout(r, 250 + random() * 500));
      if (finished) break;
      child.kill('SIGKILL');
      await new Promise((r) => child.on('exit', r));
      kills++;
    }
    const last = run();
    const out = await new Promise<string>((resolve) => {
      let text = '';
      last.stdout.on('data', (d: Buffer) => (text += d.toString()));
      last.on('exit', () => resolve(text));
    });
    expect(kills).toBeGreaterThanOrEqual(20);
    expect(JSON.parse(out), out).toMatchObject({ status: 'SUCCEEDED' });
    expect(existsSync(ledger)).toBe(true);
    const lines = readFileSync(ledger, 'utf8').trim().split('\n').map(Number);
    expect(lines.length).toBe(50);
    expect([...lines].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  }, 180_000);
});
