/**
 * Why jobs wait (src/batch/waiting.ts), as the dashboard's Batch page shows it: the scheduler's
 * pass played out over jobs, queues and compute environments given as tables.
 */
import { describe, expect, it } from 'vitest';
import type { ComputeEnvironment, JobDetail, JobQueue } from '../../src/batch/types.js';
import { waitingReasons, type JobRunInfo } from '../../src/batch/waiting.js';

const ARN = 'arn:aws:batch:local:000000000000';

function ce(
  name: string,
  vcpus: number,
  memoryMiB: number,
  state: 'ENABLED' | 'DISABLED' = 'ENABLED',
): ComputeEnvironment {
  return {
    computeEnvironmentName: name,
    computeEnvironmentArn: `${ARN}:compute-environment/${name}`,
    state,
    maxvCpus: vcpus,
    memoryMiB,
  };
}

function queue(name: string, environments: string[], priority = 1): JobQueue {
  return {
    jobQueueName: name,
    jobQueueArn: `${ARN}:job-queue/${name}`,
    state: 'ENABLED',
    priority,
    computeEnvironmentOrder: environments.map((e, i) => ({
      order: i + 1,
      computeEnvironment: `${ARN}:compute-environment/${e}`,
    })),
  };
}

let created = 0;
function job(
  id: string,
  status: JobDetail['status'],
  vcpus: number,
  memoryMiB: number,
  extra: Partial<JobDetail> = {},
): JobDetail {
  return {
    jobArn: `${ARN}:job/${id}`,
    jobName: id,
    jobId: id,
    jobQueue: `${ARN}:job-queue/q`,
    status,
    attempts: [],
    createdAt: ++created,
    dependsOn: [],
    jobDefinition: `${ARN}:job-definition/d:1`,
    parameters: {},
    container: {
      command: ['true'],
      environment: [],
      resourceRequirements: [
        { type: 'VCPU', value: String(vcpus) },
        { type: 'MEMORY', value: String(memoryMiB) },
      ],
    },
    ...extra,
  };
}

const running = (ceName: string, vcpus: number, memoryMiB: number): JobRunInfo => ({
  computeEnvironment: ceName,
  vcpus,
  memoryMiB,
});

describe('waitingReasons', () => {
  it('names the short resource of each compute environment of the queue, and the jobs ahead', () => {
    const jobs = [
      { detail: job('big', 'RUNNING', 2, 1024), run: running('a', 2, 1024) },
      { detail: job('w1', 'RUNNABLE', 1, 4096) },
      { detail: job('w2', 'RUNNABLE', 1, 512) },
    ];
    const reasons = waitingReasons({
      jobs,
      queues: [queue('q', ['a', 'b'])],
      environments: [ce('a', 2, 4096), ce('b', 1, 2048)],
      lookup: () => undefined,
      now: 0,
    });
    // w1: no vCPU left on a; b is too small for its memory (now and ever: it has 2 GiB).
    expect(reasons.get('w1')).toEqual({
      kind: 'resources',
      ahead: 0,
      needs: { vcpus: 1, memoryMiB: 4096 },
      shortages: [
        { computeEnvironment: 'a', resource: 'vcpus', needed: 1, free: 0, total: 2, short: 1 },
        {
          computeEnvironment: 'a',
          resource: 'memoryMiB',
          needed: 4096,
          free: 3072,
          total: 4096,
          short: 1024,
        },
        {
          computeEnvironment: 'b',
          resource: 'memoryMiB',
          needed: 4096,
          free: 2048,
          total: 2048,
          short: 2048,
        },
      ],
      message: expect.stringMatching(
        /^needs 1 vCPU and 4 GiB; compute environment "a" has 0 vCPU of 2 vCPU free \(1 vCPU short\);/,
      ),
    });
    // w2 fits on b: it starts on the next pass, though w1 is ahead of it (backfill).
    expect(reasons.get('w2')).toMatchObject({ kind: 'starting', ahead: 1 });
    expect(reasons.has('big')).toBe(false);
  });

  it('tells dependencies, a job too large for every compute environment, and disabled ones', () => {
    const dep = job('dep', 'RUNNING', 1, 256);
    const reasons = waitingReasons({
      jobs: [
        { detail: dep, run: running('a', 1, 256) },
        {
          detail: job('child', 'PENDING', 1, 256, {
            dependsOn: [{ jobId: 'dep' }, { jobId: 'done' }],
          }),
        },
        { detail: job('huge', 'RUNNABLE', 8, 256) },
        { detail: job('off', 'RUNNABLE', 1, 256, { jobQueue: `${ARN}:job-queue/off-q` }) },
      ],
      queues: [queue('q', ['a']), queue('off-q', ['off'])],
      environments: [ce('a', 4, 4096), ce('off', 4, 4096, 'DISABLED')],
      lookup: (id) => (id === 'done' ? job('done', 'SUCCEEDED', 1, 1) : undefined),
      now: 0,
    });
    expect(reasons.get('child')).toMatchObject({
      kind: 'dependency',
      waitingOn: [{ jobId: 'dep', jobName: 'dep', status: 'RUNNING' }],
      message: 'waits on 1 job it depends on: dep (dep, RUNNING)',
    });
    expect(reasons.get('huge')).toMatchObject({
      kind: 'never-fits',
      message:
        'needs 8 vCPU and 256 MiB; no compute environment of queue "q" is that large ("a" has 4 vCPU and 4 GiB)',
    });
    expect(reasons.get('off')).toMatchObject({
      kind: 'disabled',
      message: 'no compute environment of queue "off-q" is ENABLED ("off" DISABLED)',
    });
  });

  it('says a queue is held for a job passed over too long, and what waits behind it', () => {
    const reasons = waitingReasons({
      jobs: [
        { detail: job('running', 'RUNNING', 3, 256), run: running('a', 3, 256) },
        {
          detail: job('starved', 'RUNNABLE', 2, 256),
          run: { ...running('', 2, 256), waitingSince: 0 },
        },
        { detail: job('small', 'RUNNABLE', 1, 256) },
      ],
      queues: [queue('q', ['a'])],
      environments: [ce('a', 4, 4096)],
      lookup: () => undefined,
      now: 61_000,
      starvationMs: 60_000,
    });
    expect(reasons.get('starved')).toMatchObject({ kind: 'resources', waitingSince: 0, ahead: 0 });
    expect(reasons.get('small')).toMatchObject({
      kind: 'queue',
      ahead: 1,
      message: expect.stringMatching(
        /queue "q" is held for starved \(starved\), passed over for too long/,
      ),
    });
  });

  it('a job with a range of vCPUs waits at its low end, and says when it waits for a larger size', () => {
    const reasons = waitingReasons({
      jobs: [
        {
          detail: job('elastic', 'RUNNABLE', 4, 1024, {
            tags: { 'strand:vcpus': '1-4' },
            sizing: {
              vcpus: 4,
              memoryMiB: 1024,
              reason: 'scales well: waiting for 4 vCPU ends sooner',
            },
          }),
        },
      ],
      queues: [queue('q', ['a'])],
      environments: [ce('a', 4, 4096)],
      lookup: () => undefined,
      now: 0,
    });
    expect(reasons.get('elastic')).toMatchObject({
      kind: 'sizing',
      needs: { vcpus: 1, memoryMiB: 1024 },
      message: 'waits to start with 4 vCPU: scales well: waiting for 4 vCPU ends sooner',
    });
  });
});
