/**
 * The SLURM executor's pure parts, as tables of strings: what `squeue`, `sacct`, `sinfo` and
 * `sbatch` print, SLURM's job states as AWS Batch's, and the `sbatch` options and batch script
 * made from an attempt. No cluster.
 */
import { describe, expect, it } from 'vitest';
import { OOM_REASON, TIMEOUT_REASON } from '../../src/executors/executor.js';
import { containerCommand } from '../../src/executors/slurm/container.js';
import {
  batchViewOf,
  hasEnded,
  neverRuns,
  parseSacct,
  parseSbatch,
  parseSinfo,
  parseSqueue,
  partitionCapacity,
  slurmError,
} from '../../src/executors/slurm/parse.js';
import {
  batchScript,
  sbatchArguments,
  sbatchEnvironment,
  shellQuote,
  slurmJobName,
  slurmTime,
  type SbatchJob,
} from '../../src/executors/slurm/script.js';

describe('squeue output', () => {
  it.each([
    ['one job', '123|RUNNING|None|strand.a.1.x\n', [['123', 'RUNNING', 'None', 'strand.a.1.x']]],
    [
      'pending with a reason, padded',
      '  77|PENDING|Resources|strand.b.2.y  \n',
      [['77', 'PENDING', 'Resources', 'strand.b.2.y']],
    ],
    ['an empty reason', '5|COMPLETED||n\n', [['5', 'COMPLETED', 'None', 'n']]],
    [
      'a name holding the separator',
      '9|FAILED|NonZeroExitCode|a|b\n',
      [['9', 'FAILED', 'NonZeroExitCode', 'a|b']],
    ],
    ['an array task', '10_3|RUNNING|None|arr\n', [['10_3', 'RUNNING', 'None', 'arr']]],
    ['no jobs', '', []],
    [
      'a warning line and a blank line among jobs',
      'squeue: warning: something\n\n1|RUNNING|None|x\n2|OUT_OF_MEMORY|OutOfMemory|y\n',
      [
        ['1', 'RUNNING', 'None', 'x'],
        ['2', 'OUT_OF_MEMORY', 'OutOfMemory', 'y'],
      ],
    ],
  ])('%s', (_what, text, expected) => {
    expect([...parseSqueue(text).values()].map((j) => [j.id, j.state, j.reason, j.name])).toEqual(
      expected,
    );
  });
});

describe('sacct output', () => {
  it('keeps the job line (not its steps), the first word of the state, the exit code', () => {
    const jobs = parseSacct(
      [
        '42|CANCELLED by 0|0:15|strand.a.1.x',
        '42.batch|CANCELLED|0:15|batch',
        '43|OUT_OF_MEMORY|0:125|strand.b.1.y',
        'Slurm accounting storage is disabled',
        '',
      ].join('\n'),
    );
    expect([...jobs.values()]).toEqual([
      { id: '42', state: 'CANCELLED', reason: 'None', name: 'strand.a.1.x', exitCode: '0:15' },
      { id: '43', state: 'OUT_OF_MEMORY', reason: 'None', name: 'strand.b.1.y', exitCode: '0:125' },
    ]);
  });
});

describe('sbatch answers and SLURM errors', () => {
  it.each([
    ['1234\n', '1234'],
    ['1234;cluster2\n', '1234'],
    ['sbatch: warning: x\n99\n', '99'],
    ['', undefined],
    ['Submitted batch job 12\n', undefined],
  ])('sbatch --parsable %j → %s', (text, id) => {
    expect(parseSbatch(text)).toBe(id);
  });

  it.each([
    [
      'sbatch: error: invalid partition specified: nope\nsbatch: error: Batch job submission failed: Invalid partition name specified\n',
      'Batch job submission failed: Invalid partition name specified; invalid partition specified: nope',
    ],
    [
      'slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n',
      'Unable to contact slurm controller (connect failure)',
    ],
    ['something odd\nmore\n', 'something odd'],
    ['', 'exit code 1'],
  ])('%j → %j', (stderr, message) => {
    expect(slurmError(stderr, 'exit code 1')).toBe(message);
  });
});

describe('sinfo nodes and a partition’s capacity', () => {
  const text = [
    'n1|32|128000|short*|idle',
    'n1|32|128000|long|idle',
    'n2|32|128000|short*|mix',
    'n3|64|512000|long|alloc',
    'n4|32|128000|short*|down*',
    'n5|32|128000|short*|drain',
    'bad line',
    '',
  ].join('\n');
  const nodes = parseSinfo(text);

  it('one entry per node, its partitions gathered', () => {
    expect(nodes.map((n) => [n.name, n.partitions])).toEqual([
      ['n1', ['short', 'long']],
      ['n2', ['short']],
      ['n3', ['long']],
      ['n4', ['short']],
      ['n5', ['short']],
    ]);
  });

  it.each([
    [undefined, { vcpus: 64, memoryMiB: 256000, largest: { cpus: 32, memoryMiB: 128000 } }],
    ['short', { vcpus: 64, memoryMiB: 256000, largest: { cpus: 32, memoryMiB: 128000 } }],
    ['long', { vcpus: 96, memoryMiB: 640000, largest: { cpus: 64, memoryMiB: 512000 } }],
    ['gpu', undefined],
  ])('partition %s (down and drained nodes left out)', (partition, capacity) => {
    expect(partitionCapacity(nodes, partition)).toEqual(capacity);
  });
});

describe('SLURM job states as AWS Batch job states', () => {
  it.each([
    ['PENDING', 'Resources', 'RUNNABLE', 'SLURM job 7 is PENDING (Resources)', undefined],
    ['PENDING', 'None', 'RUNNABLE', 'SLURM job 7 is PENDING', undefined],
    [
      'PENDING',
      'PartitionConfig',
      'RUNNABLE',
      'SLURM job 7 can never start as asked (PartitionConfig)',
      undefined,
    ],
    ['CONFIGURING', 'None', 'STARTING', 'SLURM job 7 is CONFIGURING', undefined],
    ['RUNNING', 'None', 'RUNNING', 'SLURM job 7 is RUNNING', undefined],
    ['COMPLETING', 'None', 'RUNNING', 'SLURM job 7 is COMPLETING', undefined],
    ['SUSPENDED', 'None', 'RUNNING', 'SLURM job 7 is SUSPENDED', undefined],
    ['COMPLETED', 'None', 'SUCCEEDED', undefined, undefined],
    [
      'FAILED',
      'NonZeroExitCode',
      'FAILED',
      'SLURM job 7 FAILED (NonZeroExitCode) without recording an exit code (see its log)',
      undefined,
    ],
    [
      'CANCELLED',
      'None',
      'FAILED',
      'Terminated: SLURM job 7 was cancelled (scancel, or an administrator)',
      undefined,
    ],
    ['TIMEOUT', 'None', 'FAILED', TIMEOUT_REASON, undefined],
    ['OUT_OF_MEMORY', 'OutOfMemory', 'FAILED', OOM_REASON, 137],
    [
      'NODE_FAIL',
      'None',
      'FAILED',
      'Host terminated: the node of SLURM job 7 failed (NODE_FAIL)',
      undefined,
    ],
    [
      'PREEMPTED',
      'None',
      'FAILED',
      'Host terminated: SLURM job 7 was preempted by another job (PREEMPTED)',
      undefined,
    ],
    [
      'BOOT_FAIL',
      'None',
      'FAILED',
      'Host terminated: the node of SLURM job 7 failed to boot (BOOT_FAIL)',
      undefined,
    ],
    ['DEADLINE', 'None', 'FAILED', TIMEOUT_REASON, undefined],
    [
      'REVOKED',
      'None',
      'FAILED',
      'SLURM job 7 ended as REVOKED without recording an exit code',
      undefined,
    ],
  ])('%s (%s) → %s', (state, reason, status, statusReason, exitCode) => {
    const view = batchViewOf('7', state, reason);
    expect(view.status).toBe(status);
    expect('statusReason' in view ? view.statusReason : undefined).toBe(statusReason);
    expect('exitCode' in view ? view.exitCode : undefined).toBe(exitCode);
    expect(hasEnded(state)).toBe(status === 'SUCCEEDED' || status === 'FAILED');
  });

  it.each([
    ['BadConstraints', true],
    ['PartitionConfig', true],
    ['PartitionTimeLimit', true],
    ['QOSMaxCpuPerJobLimit', true],
    ['AssocMaxWallDurationPerJobLimit', true],
    ['InvalidAccount', true],
    ['Resources', false],
    ['Priority', false],
    ['PartitionDown', false],
    ['JobHeldUser', false],
    ['ReqNodeNotAvail', false],
    ['QOSMaxJobsPerUserLimit', false],
  ])('a job PENDING for %s never runs: %s', (reason, never) => {
    expect(neverRuns(reason)).toBe(never);
  });
});

describe('sbatch options of an attempt', () => {
  const job: SbatchJob = {
    name: 'strand.j.1.abc',
    vcpus: 2,
    memoryMiB: 4096,
    graceSeconds: 10,
    output: '/shared/home/work/j.1.log',
    chdir: '/shared/home/work',
    script: '/shared/home/work/j.1.sh',
  };
  const base = [
    '--parsable',
    '--job-name=strand.j.1.abc',
    '--output=/shared/home/work/j.1.log',
    '--open-mode=append',
    '--chdir=/shared/home/work',
    '--nodes=1',
    '--ntasks=1',
  ];
  const tail = ['--no-requeue', '--export=ALL'];

  it.each([
    ['whole vCPUs, MiB, no timeout', {}, {}, ['--cpus-per-task=2', '--mem=4096M', ...tail]],
    [
      'a fraction of a vCPU is one CPU',
      { vcpus: 0.25, memoryMiB: 64.5 },
      {},
      ['--cpus-per-task=1', '--mem=65M', ...tail],
    ],
    [
      'the timeout, the grace period and a minute of slack, rounded up to minutes',
      { timeoutSeconds: 7200 },
      {},
      ['--cpus-per-task=2', '--mem=4096M', ...tail, '--time=0-02:02:00'],
    ],
    [
      "the site's default time for jobs without a timeout, and its partition, account, QOS, options",
      {},
      {
        partition: 'short',
        account: 'lab42',
        qos: 'normal',
        defaultTime: '4:00:00',
        extraArgs: ['--constraint=avx2'],
      },
      [
        '--cpus-per-task=2',
        '--mem=4096M',
        ...tail,
        '--time=4:00:00',
        '--partition=short',
        '--account=lab42',
        '--qos=normal',
        '--constraint=avx2',
      ],
    ],
    [
      "a job's own timeout wins over the site's default",
      { timeoutSeconds: 30 },
      { defaultTime: '4:00:00' },
      ['--cpus-per-task=2', '--mem=4096M', ...tail, '--time=0-00:02:00'],
    ],
  ])('%s', (_what, over, settings, middle) => {
    expect(sbatchArguments({ ...job, ...over }, settings)).toEqual([
      ...base,
      ...middle,
      '/shared/home/work/j.1.sh',
    ]);
  });

  it("sbatch runs with SLURM's settings and the user's basics, none of Strand's other variables", () => {
    expect(
      sbatchEnvironment({
        PATH: '/usr/bin',
        HOME: '/home/u',
        USER: 'u',
        LANG: 'C.UTF-8',
        LC_ALL: 'C',
        SLURM_CONF: '/etc/slurm/x.conf',
        SBATCH_ACCOUNT: 'lab42',
        AWS_SECRET_ACCESS_KEY: 'secret',
        STRAND_HOME: '/h',
        NODE_OPTIONS: '--x',
        EMPTY: undefined,
      }),
    ).toEqual({
      PATH: '/usr/bin',
      HOME: '/home/u',
      USER: 'u',
      LANG: 'C.UTF-8',
      LC_ALL: 'C',
      SLURM_CONF: '/etc/slurm/x.conf',
      SBATCH_ACCOUNT: 'lab42',
    });
  });

  it.each([
    [1, '0-00:01:00'],
    [60, '0-00:01:00'],
    [61, '0-00:02:00'],
    [3600, '0-01:00:00'],
    [86_400 + 90, '1-00:02:00'],
    [3 * 86_400, '3-00:00:00'],
  ])('%d s is --time=%s', (seconds, time) => {
    expect(slurmTime(seconds)).toBe(time);
  });
});

describe('the batch script and the job name', () => {
  it('execs the launcher on its request file; no value of the job is in it', () => {
    expect(
      batchScript({
        launcher: "/shared/it's here/strand-launcher",
        request: '/shared/work/j.1.request',
        jobId: 'j\nrm -rf /',
        attempt: 2,
      }),
    ).toBe(
      [
        '#!/bin/sh',
        '# Strand job j rm -rf /, attempt 2: its argv and',
        '# environment are in the request file, read by the launcher (never by this shell).',
        "exec '/shared/it'\\''s here/strand-launcher' run /shared/work/j.1.request",
        '',
      ].join('\n'),
    );
  });

  it.each([
    ['plain', 'plain'],
    ['/a/b-c_d.e:f=g@h%i+j', '/a/b-c_d.e:f=g@h%i+j'],
    ['a b', "'a b'"],
    ['$(reboot)', "'$(reboot)'"],
    ["it's", "'it'\\''s'"],
    ['', "''"],
  ])('shellQuote(%j) → %s', (value, quoted) => {
    expect(shellQuote(value)).toBe(quoted);
  });

  it('a job name says the job and attempt, and differs between attempt directories', () => {
    const a = slurmJobName('2f1c-…/x y', 3, '/home/a/work/x.3');
    expect(a).toMatch(/^strand\.2f1c-__x_y\.3\.[0-9a-f]{10}$/);
    expect(slurmJobName('2f1c-…/x y', 3, '/home/b/work/x.3')).not.toBe(a);
    expect(slurmJobName('j'.repeat(500), 1, '/r').length).toBeLessThan(100);
  });
});

describe('a job in its image on the node', () => {
  it('is the runtime in the foreground, the launcher inside, the job’s variables by name', () => {
    const { argv, environment } = containerCommand(
      {
        jobId: 'j',
        attempt: 2,
        ref: '/shared/work/j.2',
        image: 'strand/tool:1',
        entrypoint: ['/entry'],
        command: ['tool', '$(x)'],
        environment: { SECRET: 's3cr3t', PATH: '/opt/bin' },
        vcpus: 0.5,
        memoryMiB: 256,
        timeoutSeconds: 60,
        graceSeconds: 10,
        stdoutPath: '/shared/work/j.2/out.txt',
        readOnlyPaths: ['/shared/store'],
      },
      {
        runtime: {
          name: 'podman',
          program: '/usr/bin/podman',
          runOptions: ['--ulimit', 'nofile=1024:1024'],
          notes: [],
        },
        launcher: '/shared/bin/strand-launcher-abc',
        volumes: ['/refs:/refs:ro'],
      },
    );
    expect(argv).toEqual([
      '/usr/bin/podman',
      'run',
      '--rm',
      '--name',
      expect.stringMatching(/^strand-j-2-[0-9a-f]{10}$/),
      '--label',
      'strand.job=j',
      '--label',
      'strand.attempt=2',
      '--label',
      'strand.ref=/shared/work/j.2',
      '--pull',
      'never',
      '--ulimit',
      'nofile=1024:1024',
      '--network',
      'none',
      '--cpus',
      '0.5',
      '--memory',
      '256m',
      '--memory-swap',
      '256m',
      '--user',
      '0:0',
      '--entrypoint',
      '/.strand/strand-launcher',
      '--workdir',
      '/shared/work/j.2',
      '--volume',
      '/shared/bin/strand-launcher-abc:/.strand/strand-launcher:ro',
      '--volume',
      '/shared/work/j.2:/shared/work/j.2',
      '--volume',
      '/shared/work/j.2.log:/shared/work/j.2.log',
      '--volume',
      '/shared/work/j.2.run:/shared/work/j.2.run',
      '--volume',
      '/refs:/refs:ro',
      '--volume',
      '/shared/store:/shared/store:ro',
      '--env',
      'SLURM_*',
      '--env',
      'SECRET',
      '--env',
      'PATH=/opt/bin',
      'strand/tool:1',
      'wrap',
      '/shared/work/j.2.run/pid',
      '/shared/work/j.2.run/stop',
      '/shared/work/j.2.log',
      '/shared/work/j.2/out.txt',
      '0:60:10',
      '--',
      '/entry',
      'tool',
      '$(x)',
    ]);
    expect(argv.join(' ')).not.toContain('s3cr3t');
    expect(environment).toEqual({ SECRET: 's3cr3t' });
  });
});
