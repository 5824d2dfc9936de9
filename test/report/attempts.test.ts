/**
 * The attempts of an execution as rows (src/report/attempts.ts) and their totals
 * (src/report/summary.ts), from jobs as DescribeJobs gives them and history events as the
 * engine records them.
 */
import { describe, expect, it } from 'vitest';
import type { HistoryEvent } from '../../src/asl/execution.js';
import type { AttemptDetail, JobDetail, JobStatus } from '../../src/batch/types.js';
import { executionAttempts, jobAttempts } from '../../src/report/attempts.js';
import { spread, stepUsage, summarise } from '../../src/report/summary.js';

const T = Date.parse('2026-12-06T03:00:00Z');

function job(
  id: string,
  status: JobStatus,
  attempts: AttemptDetail[],
  more: Partial<JobDetail> & { step?: string; sample?: string; execution?: string } = {},
): JobDetail {
  const { step = 'qc', sample = 'S1', execution = 'run-1', ...rest } = more;
  return {
    jobArn: `arn:aws:batch:local:000000000000:job/${id}`,
    jobName: `${step}-${sample}`,
    jobId: id,
    jobQueue: 'arn:aws:batch:local:000000000000:job-queue/default',
    status,
    attempts,
    createdAt: T,
    dependsOn: [],
    jobDefinition: 'd',
    parameters: {},
    container: {
      command: [],
      environment: [],
      resourceRequirements: [
        { type: 'VCPU', value: '2' },
        { type: 'MEMORY', value: '1024' },
      ],
    },
    tags: { 'strand:execution': execution, 'strand:step': step, 'strand:sample': sample },
    ...rest,
  };
}

function ended(
  exitCode: number,
  startedAt: number,
  stoppedAt: number,
  used: { cpuSeconds?: number; peakMemoryMiB?: number; reason?: string } = {},
): AttemptDetail {
  return {
    container: {
      exitCode,
      logStreamName: `/work/${startedAt}.log`,
      ...(used.reason ? { reason: used.reason } : {}),
    },
    startedAt,
    stoppedAt,
    statusReason: 'Essential container in task exited',
    vcpus: 2,
    memoryMiB: 1024,
    ...(used.cpuSeconds === undefined ? {} : { cpuSeconds: used.cpuSeconds }),
    ...(used.peakMemoryMiB === undefined ? {} : { peakMemoryMiB: used.peakMemoryMiB }),
  };
}

const OOM = 'OutOfMemoryError: Container killed due to memory usage';

describe('executionAttempts', () => {
  it.each([
    [
      'a job that succeeded at once',
      [
        job('a', 'SUCCEEDED', [
          ended(0, T + 1000, T + 5000, { cpuSeconds: 3.5, peakMemoryMiB: 310.2 }),
        ]),
      ],
      [
        {
          attempt: 1,
          jobAttempt: 1,
          status: 'SUCCEEDED',
          startedAt: T + 1000,
          stoppedAt: T + 5000,
          exitCode: 0,
          vcpus: 2,
          memoryMiB: 1024,
          cpuSeconds: 3.5,
          peakMemoryMiB: 310.2,
        },
      ],
    ],
    [
      'a job retried by its retryStrategy after an OOM kill',
      [
        job('a', 'SUCCEEDED', [
          ended(137, T + 1000, T + 2000, { peakMemoryMiB: 1024.5, reason: OOM }),
          ended(0, T + 2500, T + 4000, { peakMemoryMiB: 800 }),
        ]),
      ],
      [
        { attempt: 1, jobAttempt: 1, status: 'FAILED', exitCode: 137, reason: OOM },
        { attempt: 2, jobAttempt: 2, status: 'SUCCEEDED', exitCode: 0, peakMemoryMiB: 800 },
      ],
    ],
    [
      "a step's Retry: a new Batch job for the second attempt of the same sample × step",
      [
        job('b', 'SUCCEEDED', [ended(0, T + 9000, T + 9500)], { createdAt: T + 8000 }),
        job('a', 'FAILED', [ended(3, T + 1000, T + 2000)]),
      ],
      [
        { jobId: 'a', attempt: 1, jobAttempt: 1, status: 'FAILED', exitCode: 3 },
        { jobId: 'b', attempt: 2, jobAttempt: 1, status: 'SUCCEEDED', createdAt: T + 8000 },
      ],
    ],
    [
      'a job that could never fit: one FAILED row, never started',
      [job('a', 'FAILED', [], { statusReason: 'needs 16 vCPU', stoppedAt: T + 10 })],
      [{ attempt: 1, status: 'FAILED', reason: 'needs 16 vCPU', vcpus: 2, memoryMiB: 1024 }],
    ],
    [
      'a job running its second attempt, sized by its range',
      [
        job('a', 'RUNNING', [ended(1, T + 1000, T + 2000)], {
          startedAt: T + 1000,
          sizing: { vcpus: 4, memoryMiB: 4096, reason: 'fastest' },
        }),
      ],
      [
        { attempt: 1, status: 'FAILED', exitCode: 1, vcpus: 2 },
        { attempt: 2, status: 'RUNNING', vcpus: 4, memoryMiB: 4096 },
      ],
    ],
    [
      'a job waiting for its first attempt',
      [job('a', 'RUNNABLE', [])],
      [{ attempt: 1, status: 'WAITING', vcpus: 2, memoryMiB: 1024 }],
    ],
    [
      'jobs of another execution, and an array parent, are left out',
      [
        job('x', 'SUCCEEDED', [ended(0, T, T + 1)], { execution: 'run-2' }),
        job('p', 'SUCCEEDED', [], { arrayProperties: { size: 2 } }),
      ],
      [],
    ],
  ])('%s', (_what, jobs, want) => {
    const rows = executionAttempts(jobs, 'run-1');
    expect(rows).toHaveLength(want.length);
    rows.forEach((row, i) => {
      expect(row).toMatchObject({ execution: 'run-1', step: 'qc', sample: 'S1', cached: false });
      expect(row).toMatchObject(want[i]);
    });
  });

  it('a job the cache answered is a cached row, from the TaskSucceeded of its execution', () => {
    const answer = (execution: string, sample: string, asText = false): HistoryEvent => {
      const output = {
        JobId: 'from-earlier',
        JobName: `qc-${sample}`,
        Status: 'SUCCEEDED',
        Tags: {
          'strand:execution': execution,
          'strand:step': 'qc',
          'strand:sample': sample,
          'strand:cached': 'true',
        },
      };
      return {
        id: 7,
        previousEventId: 6,
        type: 'TaskSucceeded',
        timestamp: T + 500,
        taskSucceededEventDetails: {
          resource: 'arn:aws:states:::batch:submitJob.sync',
          // Inside Strand a value; through the API, JSON text.
          output: asText ? JSON.stringify(output) : output,
        },
      };
    };
    const ran: HistoryEvent = {
      id: 8,
      previousEventId: 7,
      type: 'TaskSucceeded',
      timestamp: T,
      taskSucceededEventDetails: { output: { JobId: 'ran', Tags: { 'strand:step': 'qc' } } },
    };
    const history = [
      answer('run-1', 'S2'),
      answer('run-1', 'S3', true),
      answer('run-9', 'S4'),
      ran,
    ];
    const rows = executionAttempts(
      [job('a', 'SUCCEEDED', [ended(0, T + 1000, T + 2000)])],
      'run-1',
      history,
    );
    expect(rows.map((r) => [r.sample, r.cached, r.jobId, r.attempt, r.status])).toEqual([
      ['S1', false, 'a', 1, 'SUCCEEDED'],
      ['S2', true, 'from-earlier', 1, 'SUCCEEDED'],
      ['S3', true, 'from-earlier', 1, 'SUCCEEDED'],
    ]);
    expect(rows[1]).toMatchObject({ createdAt: T + 500, jobName: 'qc-S2' });
    expect(rows[1].startedAt).toBeUndefined();
  });

  it('jobAttempts numbers a job on its own', () => {
    const rows = jobAttempts(job('a', 'FAILED', [ended(1, T, T + 1), ended(1, T + 2, T + 3)]), '');
    expect(rows.map((r) => [r.attempt, r.jobAttempt, r.status])).toEqual([
      [1, 1, 'FAILED'],
      [2, 2, 'FAILED'],
    ]);
  });
});

describe('summary', () => {
  it.each([
    [[], undefined],
    [[5], { min: 5, median: 5, max: 5, n: 1 }],
    [[4, 1, 3, 2], { min: 1, median: 2.5, max: 4, n: 4 }],
    [[9, 1, 5], { min: 1, median: 5, max: 9, n: 3 }],
  ])('spread of %j', (values, want) => {
    expect(spread(values)).toEqual(want);
  });

  const jobs = [
    job('a1', 'SUCCEEDED', [
      ended(137, T + 1000, T + 3000, { cpuSeconds: 2, peakMemoryMiB: 1030, reason: OOM }),
      ended(0, T + 3000, T + 7000, { cpuSeconds: 6, peakMemoryMiB: 700 }),
    ]),
    job('a2', 'SUCCEEDED', [ended(0, T + 1000, T + 5000, { cpuSeconds: 8, peakMemoryMiB: 500 })], {
      sample: 'S2',
    }),
    job('b1', 'FAILED', [ended(2, T + 7000, T + 8000, { cpuSeconds: 0.5 })], {
      step: 'assemble',
      createdAt: T + 6000,
    }),
    job('b2', 'RUNNING', [], {
      step: 'assemble',
      sample: 'S2',
      createdAt: T + 6000,
      startedAt: T + 6500,
    }),
  ];
  const info = {
    execution: 'run-1',
    pipeline: 'p',
    status: 'RUNNING',
    startedAt: T,
    samples: ['S1', 'S2'],
  };

  it('totals: jobs are samples × steps, retries count as attempts, CPU time is summed', () => {
    const rows = executionAttempts(jobs, 'run-1');
    expect(summarise(info, rows, T + 10_000)).toEqual({
      jobs: 4,
      ran: 4,
      cached: 0,
      failed: 1,
      attempts: 5,
      retries: 1,
      running: 1,
      waiting: 0,
      cpuSeconds: 16.5,
      peakMemoryMiB: 1030,
      startedAt: T,
      stoppedAt: T + 10_000,
      durationMs: 10_000,
    });
  });

  it('per step: min / median / max across the attempts that ran, peak against memory had', () => {
    const rows = executionAttempts(jobs, 'run-1');
    const [qc, assemble] = stepUsage(rows, T + 10_000);
    expect(qc).toMatchObject({
      step: 'qc',
      jobs: 2,
      cached: 0,
      failed: 0,
      attempts: 3,
      seconds: { min: 2, median: 4, max: 4, n: 3 },
      cpuSeconds: { min: 2, median: 6, max: 8, n: 3 },
      peakMemoryMiB: { min: 500, median: 700, max: 1030, n: 3 },
      memoryMiB: { min: 1024, median: 1024, max: 1024, n: 3 },
      vcpus: { min: 2, max: 2 },
    });
    expect(qc.peakShare).toBeCloseTo(1030 / 1024, 9);
    // CPU time over vCPUs × seconds: 2/(2·2), 6/(2·4), 8/(2·4); the median.
    expect(qc.cpuUse).toBeCloseTo(0.75, 9);
    // The running attempt has no duration yet; only the one that ended counts.
    expect(assemble).toMatchObject({ step: 'assemble', jobs: 2, failed: 1, attempts: 2 });
    expect(assemble.seconds).toEqual({ min: 1, median: 1, max: 1, n: 1 });
    expect(assemble.peakMemoryMiB).toBeUndefined();
  });
});
