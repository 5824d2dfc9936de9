/**
 * Batch jobs and executions as AWS shows them: a job whose Step Functions task timed out or
 * whose execution was stopped is FAILED when the execution ends, not left RUNNING; timestamps
 * are whole milliseconds in order; listing jobs works beside a run in progress; history input
 * and output are JSON text; a Fail state without Error leaves no error field.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { readJobs } from '../../src/batch/local-batch.js';
import type { JobDetail } from '../../src/batch/types.js';
import { registerJobDefinition, spawnStrand, strand, waitUntil } from '../pipeline/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'strand-fidelity-'));

function file(name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

const register = (home: string, name: string, command: string[], attempts = 1) =>
  registerJobDefinition(home, name, command, { memoryMiB: 128, attempts });

function machine(name: string, extra: Record<string, unknown>): string {
  return file(`${name}.asl.json`, {
    StartAt: 'Job',
    States: {
      Job: {
        Type: 'Task',
        Resource: 'arn:aws:states:::batch:submitJob.sync',
        Parameters: { JobName: name, JobQueue: 'default', JobDefinition: name },
        End: true,
        ...extra,
      },
    },
  });
}

/** The home's jobs, read from its database (another process may own the home). */
function jobs(home: string): JobDetail[] {
  const db = new Database(join(home, 'strand.db'), { readonly: true });
  try {
    return readJobs(db);
  } finally {
    db.close();
  }
}

/** createdAt ≤ startedAt ≤ each attempt's start ≤ its stop ≤ … ≤ stoppedAt, whole ms. */
function expectOrdered(job: JobDetail): void {
  const times = [
    job.createdAt,
    job.startedAt!,
    ...job.attempts.flatMap((a) => [a.startedAt!, a.stoppedAt!]),
    job.stoppedAt!,
  ];
  for (const t of times) expect(Number.isInteger(t), `${t} in ${times.join(', ')}`).toBe(true);
  for (let i = 1; i < times.length; i++)
    expect(times[i], `${times.join(' ≤ ')}`).toBeGreaterThanOrEqual(times[i - 1]);
}

describe('Batch jobs of Step Functions tasks, as AWS shows them', () => {
  it('a task that timed out: its job is FAILED when the execution has ended', async () => {
    const home = join(dir, 'home-timeout');
    await register(home, 'sleeper', ['sleep', '30']);
    const r = await strand(
      'start',
      machine('sleeper', { TimeoutSeconds: 1 }),
      '--home',
      home,
      '--quiet',
    );
    expect(r.code).toBe(1);
    expect(r.out + r.err).toContain('States.Timeout');
    const [job] = jobs(home);
    expect(job).toMatchObject({
      status: 'FAILED',
      statusReason: 'Execution stopped by Step Functions',
    });
    expect(job.attempts).toHaveLength(1);
    expect(job.attempts[0].container.exitCode).toBe(143);
    expectOrdered(job);
  }, 30_000);

  it('an execution stopped from another process: its job is FAILED once the stop returns', async () => {
    const home = join(dir, 'home-stop');
    await register(home, 'long', ['sleep', '30']);
    const child = spawnStrand([
      'start',
      machine('long', {}),
      '--home',
      home,
      '--name',
      'one',
      '--quiet',
    ]);
    try {
      await waitUntil('the job running', async () => jobs(home)[0]?.status === 'RUNNING', 20_000);
      // Listing and describing work beside the engine that owns the home.
      const ls = await strand('batch', 'ls', '--home', home);
      expect(ls.code).toBe(0);
      expect(ls.out).toMatch(/ long +RUNNING\b/);
      expect(ls.err).not.toContain('waiting');
      const id = jobs(home)[0].jobId;
      expect(
        JSON.parse((await strand('batch', 'describe', id, '--home', home)).out).jobs[0],
      ).toMatchObject({ status: 'RUNNING' });
      const stop = await strand('stop', 'one', '--home', home);
      expect(stop.code, stop.err).toBe(0);
      const [job] = jobs(home);
      expect(job.status).toBe('FAILED');
      expectOrdered(job);
    } finally {
      child.kill('SIGKILL');
    }
  }, 40_000);

  it('attempts of a retried job: whole milliseconds, in order', async () => {
    const home = join(dir, 'home-retry');
    await register(home, 'flaky', ['sh', '-c', 'sleep 0.2; exit 3'], 3);
    const r = await strand('start', machine('flaky', {}), '--home', home, '--quiet');
    expect(r.code).toBe(1);
    const [job] = jobs(home);
    expect(job.status).toBe('FAILED');
    expect(job.attempts).toHaveLength(3);
    expectOrdered(job);
  }, 30_000);
});

describe('executions as AWS shows them', () => {
  it('history: input and output as JSON text; a Fail state without Error: no error field', async () => {
    const home = join(dir, 'home-history');
    const def = file('fail.asl.json', {
      StartAt: 'P',
      States: {
        P: { Type: 'Pass', Result: { a: 1 }, Next: 'F' },
        F: { Type: 'Fail' },
      },
    });
    const started = await strand(
      'start',
      def,
      '--home',
      home,
      '--name',
      'f1',
      '--input',
      '{"n":1}',
      '--quiet',
      '--json',
    );
    expect(started.code).toBe(1);
    const described = JSON.parse(started.out);
    expect(described.status).toBe('FAILED');
    expect('error' in described).toBe(false);
    expect('cause' in described).toBe(false);
    const history = await strand('executions', 'history', 'f1', '--home', home, '--json');
    const events = JSON.parse(history.out).events as Record<string, Record<string, unknown>>[];
    expect(events[0].executionStartedEventDetails).toMatchObject({
      input: '{"n":1}',
      inputDetails: { truncated: false },
    });
    expect(events[2]).toMatchObject({
      type: 'PassStateExited',
      stateExitedEventDetails: {
        name: 'P',
        output: '{"a":1}',
        outputDetails: { truncated: false },
      },
    });
    expect(events[1].timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(events.at(-1)).toMatchObject({
      type: 'ExecutionFailed',
      executionFailedEventDetails: {},
    });
    expect(events.at(-1)!.executionFailedEventDetails).toEqual({});
  });
});
