/**
 * Compute environments and job queues from the CLI, with the AWS CLI's verbs, flags and output,
 * kept in the home: a definition written for an 8-vCPU queue of another account runs unedited
 * once the queue exists here.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { registerJobDefinition, strand } from '../pipeline/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'strand-resources-'));
const cores = cpus().length;

function file(name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

/** A job definition asking for `vcpus`, whose command prints them. */
const register = (home: string, name: string, vcpus: number) =>
  registerJobDefinition(home, name, ['sh', '-c', 'echo "running with $0 vCPU"', String(vcpus)], {
    vcpus,
  });

describe('strand batch: compute environments and job queues', () => {
  it('a queue on an 8-vCPU compute environment, used by name and by any ARN, kept in the home', async () => {
    const home = join(dir, 'home-1');
    const ce = await strand(
      'batch',
      'create-compute-environment',
      '--compute-environment-name',
      'big',
      '--compute-resources',
      'type=EC2,minvCpus=0,maxvCpus=8,instanceTypes=[m5.large,m5.xlarge]',
      '--memory',
      '4GiB',
      '--tags',
      'team=genomics',
      '--home',
      home,
    );
    expect(ce.code, ce.err).toBe(0);
    expect(JSON.parse(ce.out)).toEqual({
      computeEnvironmentName: 'big',
      computeEnvironmentArn: 'arn:aws:batch:local:000000000000:compute-environment/big',
    });
    const q = await strand(
      'batch',
      'create-job-queue',
      '--job-queue-name',
      'HighPriority',
      '--priority',
      '10',
      '--compute-environment-order',
      'order=1,computeEnvironment=big',
      'order=2,computeEnvironment=arn:aws:batch:us-east-1:123456789012:compute-environment/local',
      '--home',
      home,
    );
    expect(q.code, q.err).toBe(0);
    expect(JSON.parse(q.out).jobQueueName).toBe('HighPriority');

    // Each command is a process of its own: what they describe was read back from the home.
    const described = JSON.parse(
      (
        await strand(
          'batch',
          'describe-compute-environments',
          '--compute-environments',
          'big',
          '--home',
          home,
        )
      ).out,
    );
    expect(described.computeEnvironments).toHaveLength(1);
    const big = described.computeEnvironments[0];
    expect(big).toMatchObject({
      computeEnvironmentName: 'big',
      type: 'MANAGED',
      state: 'ENABLED',
      status: 'VALID',
      computeResources: {
        type: 'EC2',
        minvCpus: 0,
        maxvCpus: 8,
        instanceTypes: ['m5.large', 'm5.xlarge'],
      },
      tags: { team: 'genomics' },
      memoryMiB: 4096,
      executor: 'local',
    });
    expect(big.statusReason).toMatch(/^runs jobs as processes on this machine \(8 vCPU, 4 GiB\)/);
    if (cores < 8)
      expect(big.statusReason).toContain(
        `declares 8 vCPU on a machine with ${cores}: its jobs share the machine's cores`,
      );
    const queues = JSON.parse(
      (await strand('batch', 'describe-job-queues', '--home', home)).out,
    ).jobQueues;
    expect(queues.map((x: { jobQueueName: string }) => x.jobQueueName)).toEqual([
      'HighPriority',
      'default',
    ]);
    expect(queues[0]).toMatchObject({
      state: 'ENABLED',
      status: 'VALID',
      priority: 10,
      computeEnvironmentOrder: [
        {
          order: 1,
          computeEnvironment: 'arn:aws:batch:local:000000000000:compute-environment/big',
        },
        {
          order: 2,
          computeEnvironment: 'arn:aws:batch:local:000000000000:compute-environment/local',
        },
      ],
    });

    // An 8-vCPU job: on the queue over "big" it runs (by the ARN of another account too); on
    // the default queue it fits no compute environment on a smaller machine.
    await register(home, 'eight', 8);
    const ran = await strand(
      'batch',
      'submit',
      '--job-name',
      'eight',
      '--job-definition',
      'eight',
      '--job-queue',
      'arn:aws:batch:eu-west-1:123456789012:job-queue/HighPriority',
      '--home',
      home,
      '--json',
    );
    expect(ran.code, ran.err).toBe(0);
    const job = JSON.parse(ran.out);
    expect(job).toMatchObject({ status: 'SUCCEEDED' });
    expect(job.jobQueue).toBe('arn:aws:batch:local:000000000000:job-queue/HighPriority');
    expect((await strand('batch', 'logs', job.jobId, '--home', home)).out).toContain(
      'running with 8 vCPU',
    );
    // A state machine written for that queue runs unedited.
    const definition = file('genomics.asl.json', {
      StartAt: 'Assemble',
      States: {
        Assemble: {
          Type: 'Task',
          Resource: 'arn:aws:states:::batch:submitJob.sync',
          Parameters: {
            JobName: 'assemble',
            JobQueue: 'arn:aws:batch:us-east-1:123456789012:job-queue/HighPriority',
            JobDefinition: 'arn:aws:batch:us-east-1:123456789012:job-definition/eight:1',
          },
          ResultSelector: { 'Status.$': '$.Status', 'JobQueue.$': '$.JobQueue' },
          End: true,
        },
      },
    });
    const started = await strand('start', definition, '--home', home, '--quiet');
    expect(started.code, started.err).toBe(0);
    expect(JSON.parse(started.out)).toEqual({
      Status: 'SUCCEEDED',
      JobQueue: 'arn:aws:batch:local:000000000000:job-queue/HighPriority',
    });
    if (cores < 8) {
      const small = await strand(
        'batch',
        'submit',
        '--job-name',
        'eight',
        '--job-definition',
        'eight',
        '--home',
        home,
      );
      expect(small.code).toBe(1);
      expect(small.out).toContain(
        `needs 8 vCPU, 512 MiB; largest compute environment "local" on queue "default" has ${cores} vCPU`,
      );
    }
  }, 30_000);

  it('the default compute environment keeps a declared size; DISABLED and delete as on AWS', async () => {
    const home = join(dir, 'home-2');
    const up = await strand(
      'batch',
      'update-compute-environment',
      '--compute-environment',
      'local',
      '--compute-resources',
      'maxvCpus=16',
      '--home',
      home,
    );
    expect(up.code, up.err).toBe(0);
    // Opening the home again (every command does) does not put it back to the machine's size.
    await strand('batch', 'ls', '--home', home);
    const local = JSON.parse(
      (await strand('batch', 'describe-compute-environments', '--home', home)).out,
    ).computeEnvironments[0];
    expect(local).toMatchObject({
      computeEnvironmentName: 'local',
      computeResources: { maxvCpus: 16 },
    });

    // A DISABLED queue takes no new job.
    await register(home, 'one', 1);
    const off = await strand(
      'batch',
      'update-job-queue',
      '--job-queue',
      'default',
      '--state',
      'DISABLED',
      '--home',
      home,
    );
    expect(off.code, off.err).toBe(0);
    const refused = await strand(
      'batch',
      'submit',
      '--job-name',
      'one',
      '--job-definition',
      'one',
      '--home',
      home,
    );
    expect(refused.code).toBe(2);
    expect(refused.err).toContain('job queue "default" is DISABLED: it takes no new jobs');

    // Delete: a queue once DISABLED, then its compute environment once DISABLED and unused.
    const run = (...args: string[]) => strand('batch', ...args, '--home', home);
    await run(
      'create-compute-environment',
      '--compute-environment-name',
      'spare',
      '--type',
      'UNMANAGED',
      '--unmanagedv-cpus',
      '2',
    );
    await run(
      'create-job-queue',
      '--job-queue-name',
      'spare',
      '--priority',
      '1',
      '--compute-environment-order',
      'order=1,computeEnvironment=spare',
    );
    const enabled = await run('delete-job-queue', '--job-queue', 'spare');
    expect(enabled.code).toBe(2);
    expect(enabled.err).toContain('job queue "spare" is ENABLED: disable it first');
    const used = await run('delete-compute-environment', '--compute-environment', 'spare');
    expect(used.err).toContain('compute environment "spare" is ENABLED: disable it first');
    await run(
      'update-compute-environment',
      '--compute-environment',
      'spare',
      '--state',
      'DISABLED',
    );
    expect(
      (await run('delete-compute-environment', '--compute-environment', 'spare')).err,
    ).toContain('compute environment "spare" is used by job queue "spare"');
    await run('update-job-queue', '--job-queue', 'spare', '--state', 'DISABLED');
    expect((await run('delete-job-queue', '--job-queue', 'spare')).code).toBe(0);
    expect((await run('delete-compute-environment', '--compute-environment', 'spare')).code).toBe(
      0,
    );
    const left = JSON.parse((await run('describe-compute-environments')).out).computeEnvironments;
    expect(left.map((c: { computeEnvironmentName: string }) => c.computeEnvironmentName)).toEqual([
      'local',
    ]);
    // Strand's defaults stay.
    expect((await run('delete-job-queue', '--job-queue', 'default')).err).toContain(
      'job queue "default" is where Strand submits jobs by default',
    );
  }, 30_000);

  it('bad input: exit 2 naming the value', async () => {
    const home = join(dir, 'home-3');
    const cases: [string[], RegExp][] = [
      [
        [
          'create-job-queue',
          '--job-queue-name',
          'q',
          '--priority',
          '1',
          '--compute-environment-order',
          'order=1,computeEnvironment=lcoal',
        ],
        /no compute environment named "lcoal" \(compute environments: local\)/,
      ],
      [
        [
          'create-compute-environment',
          '--compute-environment-name',
          'x',
          '--compute-resources',
          'maxvCpus=many',
        ],
        /--compute-resources maxvCpus=many: maxvCpus=many is not a number/,
      ],
      [
        ['create-compute-environment', '--compute-environment-name', 'x'],
        /compute environment "x": a MANAGED one needs computeResources.maxvCpus/,
      ],
      [
        [
          'create-compute-environment',
          '--compute-environment-name',
          'local',
          '--compute-resources',
          'maxvCpus=2',
        ],
        /compute environment "local" already exists/,
      ],
      [
        [
          'create-compute-environment',
          '--compute-environment-name',
          'x',
          '--compute-resources',
          'maxvCpus=2',
          '--memory',
          '4GB',
        ],
        /--memory 4GB: /,
      ],
      [
        [
          'create-job-queue',
          '--job-queue-name',
          'q',
          '--priority',
          '1',
          '--compute-environment-order',
          'order=1,computeEnvironment=local',
          'order=1,computeEnvironment=local',
        ],
        /order 1 is given twice/,
      ],
      [
        ['describe-job-queues', '--job-queues', 'defualt'],
        /--job-queues defualt: no such job queue; did you mean "default"\?/,
      ],
      [
        ['update-job-queue', '--job-queue', 'nope', '--priority', '3'],
        /no job queue named "nope" \(queues: default\)/,
      ],
      [
        ['update-job-queue', '--job-queue', 'default', '--priority', '5000'],
        /priority must be a whole number from 0 to 1000, not 5000/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await strand('batch', ...args, '--home', home);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toMatch(message);
    }
  }, 30_000);
});
