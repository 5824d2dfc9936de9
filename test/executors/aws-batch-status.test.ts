/** The AWS Batch executor's pure parts: DescribeJobs → attempt state, job names, tags. */
import type { JobDetail } from '@aws-sdk/client-batch';
import { describe, expect, it } from 'vitest';
import { awsTags, jobNameFor } from '../../src/executors/aws-batch/job-definition.js';
import { attemptStateOf, logStreamsOf } from '../../src/executors/aws-batch/status.js';

/** A multi-container job as DescribeJobs gives one. */
function job(
  status: string,
  extra: Partial<JobDetail> = {},
  containers: Record<string, { exitCode?: number; reason?: string; logStreamName?: string }> = {},
): JobDetail {
  return {
    jobId: 'j',
    jobName: 'n',
    jobQueue: 'q',
    jobDefinition: 'd',
    status,
    startedAt: 1000,
    stoppedAt: 2000,
    ecsProperties: {
      taskProperties: [
        {
          containers: ['stage-in', 'tool', 'stage-out'].map((name) => ({
            name,
            image: 'x',
            ...containers[name],
          })),
        },
      ],
    },
    ...extra,
  } as JobDetail;
}

describe('attemptStateOf', () => {
  const cases: [string, JobDetail, object][] = [
    ['SUBMITTED is RUNNING', job('SUBMITTED'), { state: 'RUNNING' }],
    ['PENDING is RUNNING', job('PENDING'), { state: 'RUNNING' }],
    ['RUNNABLE is RUNNING', job('RUNNABLE'), { state: 'RUNNING' }],
    ['STARTING is RUNNING', job('STARTING'), { state: 'RUNNING' }],
    ['RUNNING is RUNNING', job('RUNNING'), { state: 'RUNNING' }],
    [
      "SUCCEEDED: the stage-out's exit code and the job's times",
      job('SUCCEEDED', {}, { 'stage-out': { exitCode: 0 } }),
      { state: 'SUCCEEDED', exitCode: 0, startedAt: 1000, stoppedAt: 2000 },
    ],
    [
      "FAILED: the stage-out's exit code (the tool's), no reason for a plain exit",
      job(
        'FAILED',
        { statusReason: 'Essential container in task exited' },
        { tool: { exitCode: 3 }, 'stage-out': { exitCode: 3 } },
      ),
      { state: 'FAILED', exitCode: 3 },
    ],
    [
      'the timeout reason as every backend gives it',
      job('FAILED', { statusReason: 'Job attempt duration exceeded timeout' }),
      { state: 'FAILED', reason: 'Job attempt duration exceeded timeout' },
    ],
    [
      "a container's OutOfMemoryError as every backend gives it",
      job(
        'FAILED',
        { statusReason: 'Essential container in task exited' },
        {
          tool: { exitCode: 137, reason: 'OutOfMemoryError: Container killed due to memory usage' },
          'stage-out': { exitCode: 137 },
        },
      ),
      {
        state: 'FAILED',
        exitCode: 137,
        reason: 'OutOfMemoryError: Container killed due to memory usage',
      },
    ],
    [
      "a terminate's own reason",
      job('FAILED', { statusReason: 'Terminated by user', isTerminated: true }),
      { state: 'FAILED', reason: 'Terminated by user' },
    ],
    [
      'a container that could not start: its reason',
      job(
        'FAILED',
        { statusReason: 'Task failed to start' },
        { tool: { reason: 'CannotPullContainerError: pull access denied for strand/x' } },
      ),
      { state: 'FAILED', reason: 'CannotPullContainerError: pull access denied for strand/x' },
    ],
    [
      "a single-container job's container",
      {
        ...job('FAILED', { statusReason: 'Essential container in task exited' }),
        ecsProperties: undefined,
        container: { exitCode: 2 },
      } as JobDetail,
      { state: 'FAILED', exitCode: 2 },
    ],
  ];
  it.each(cases)('%s', (_what, detail, expected) => {
    // An ended job carries its times (1000 and 2000 in every case here).
    const times = detail.status === 'SUCCEEDED' || detail.status === 'FAILED';
    expect(attemptStateOf(detail)).toEqual(
      times ? { startedAt: 1000, stoppedAt: 2000, ...expected } : expected,
    );
  });

  it('names the log streams in the order the containers run', () => {
    const d = job(
      'RUNNING',
      {},
      {
        'stage-out': { logStreamName: 's/stage-out/t' },
        'stage-in': { logStreamName: 's/stage-in/t' },
      },
    );
    expect(logStreamsOf(d).map((s) => s.stream)).toEqual(['s/stage-in/t', 's/stage-out/t']);
  });
});

describe('job names and tags', () => {
  it.each([
    ['job-1', 1, 'strand-job-1-1'],
    ['a:b/c', 2, /^strand-a_b_c-[0-9a-f]{16}-2$/],
    ['a_b_c', 2, 'strand-a_b_c-2'],
    ['x'.repeat(200), 3, /^strand-x{102}-[0-9a-f]{16}-3$/],
  ])('jobNameFor(%s, %i)', (id, attempt, expected) => {
    const name = jobNameFor(id, attempt);
    if (typeof expected === 'string') expect(name).toBe(expected);
    else expect(name).toMatch(expected);
    expect(name.length).toBeLessThanOrEqual(128);
    expect(name).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]*$/);
  });

  it('ids that differ only where characters were replaced get different names', () => {
    expect(jobNameFor('a:b', 1)).not.toBe(jobNameFor('a/b', 1));
  });

  it('keeps the tags AWS takes, leaves off the others', () => {
    expect(
      awsTags({
        'strand:pipeline': 'genome',
        'strand:store': 's3://bucket/prefix',
        'aws:reserved': 'x',
        bad: 'a\u0000b',
        long: 'x'.repeat(300),
      }),
    ).toEqual({ 'strand:pipeline': 'genome', 'strand:store': 's3://bucket/prefix' });
  });
});
