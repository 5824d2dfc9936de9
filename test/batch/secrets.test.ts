/**
 * The local Batch as a plain AWS Batch user sees it: `containerProperties.secrets` read when an
 * attempt starts, into the job's environment only (DescribeJobs and the database show names and
 * sources, never values); a secret that cannot be read fails the attempt as AWS reports it
 * (ResourceInitializationError); and `Ref::` replaces a whole command item only, as on AWS.
 */
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalBatch } from '../../src/batch/local-batch.js';
import { BatchInputError } from '../../src/batch/resources.js';
import type { JobDetail, RegisterJobDefinitionRequest, Secret } from '../../src/batch/types.js';
import { LocalExecutor, nativeLauncher } from '../../src/executors/local/local-executor.js';
import { commandLines, waitUntil } from '../helpers.js';

const open: LocalBatch[] = [];
afterEach(() => open.splice(0).forEach((b) => b.close()));

function setup(launcher?: 'native' | 'node') {
  const dir = mkdtempSync(join(tmpdir(), 'strand-batch-secrets-'));
  const db = new Database(join(dir, 'strand.db'));
  const batch = new LocalBatch({
    db,
    executor: new LocalExecutor({
      workRoot: join(dir, 'work'),
      graceSeconds: 1,
      ...(launcher ? { launcher } : {}),
    }),
    maxvCpus: 2,
    memoryMiB: 4096,
    tickMs: 20,
  });
  open.push(batch);
  return { batch, dir, db };
}

/** A job that writes its argv and one variable of its environment, as JSON, to `out`. */
function recorder(
  out: string,
  secrets?: Secret[],
  command?: string[],
): RegisterJobDefinitionRequest {
  const script = `require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify({ argv: process.argv.slice(1), env: process.env.TOKEN ?? null }))`;
  return {
    jobDefinitionName: 'recorder',
    type: 'container',
    containerProperties: {
      command: [process.execPath, '-e', script, ...(command ?? [])],
      resourceRequirements: [
        { type: 'VCPU', value: '1' },
        { type: 'MEMORY', value: '128' },
      ],
      ...(secrets ? { secrets } : {}),
    },
  };
}

function done(batch: LocalBatch, jobId: string): Promise<JobDetail> {
  return new Promise((resolve) => batch.onceDone(jobId, resolve));
}

function submit(batch: LocalBatch, parameters?: Record<string, string>): string {
  return batch.submitJob({
    jobName: 'rec',
    jobQueue: 'default',
    jobDefinition: 'recorder',
    ...(parameters ? { parameters } : {}),
  }).jobId;
}

describe('local Batch: containerProperties.secrets', () => {
  it('a file: secret reaches the job (one trailing newline removed); only its name and source are recorded', async () => {
    const { batch, dir } = setup();
    const canary = `canary-${process.pid}-${Date.now()}-file`;
    const file = join(dir, 'token.txt');
    writeFileSync(file, `${canary}\n`);
    const out = join(dir, 'out.json');
    batch.registerJobDefinition(recorder(out, [{ name: 'TOKEN', valueFrom: `file:${file}` }]));
    const job = await done(batch, submit(batch));
    expect(job.status, job.statusReason).toBe('SUCCEEDED');
    expect(JSON.parse(readFileSync(out, 'utf8'))).toMatchObject({ env: canary });
    const described = batch.describeJobs([job.jobId])[0];
    expect(described.container.secrets).toEqual([{ name: 'TOKEN', valueFrom: `file:${file}` }]);
    expect(JSON.stringify(described)).not.toContain(canary);
    expect(described.container.environment.map((kv) => kv.name)).not.toContain('TOKEN');
    // Nothing Strand wrote holds the value: the database (and its journal), the job's log.
    const written = readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && !['token.txt', 'out.json'].includes(e.name))
      .map((e) => join(e.parentPath, e.name));
    expect(written.some((f) => f.endsWith('strand.db'))).toBe(true);
    for (const f of written) expect(readFileSync(f).includes(canary), f).toBe(false);
  });

  it('an env: secret comes from the environment of the process that starts the attempt', async () => {
    const { batch, dir } = setup();
    const canary = `canary-${process.pid}-${Date.now()}-env`;
    process.env.STRAND_TEST_SECRET_SOURCE = canary;
    try {
      const out = join(dir, 'out.json');
      batch.registerJobDefinition(
        recorder(out, [{ name: 'TOKEN', valueFrom: 'env:STRAND_TEST_SECRET_SOURCE' }]),
      );
      const job = await done(batch, submit(batch));
      expect(job.status, job.statusReason).toBe('SUCCEEDED');
      expect(JSON.parse(readFileSync(out, 'utf8'))).toMatchObject({ env: canary });
      expect(JSON.stringify(batch.describeJobs([job.jobId]))).not.toContain(canary);
    } finally {
      delete process.env.STRAND_TEST_SECRET_SOURCE;
    }
  });

  it.each([
    [
      'env:STRAND_TEST_SECRET_UNSET',
      /^ResourceInitializationError: unable to pull secrets or registry auth: secret TOKEN \(env:STRAND_TEST_SECRET_UNSET\): STRAND_TEST_SECRET_UNSET is not set in the environment of the Strand process starting the job$/,
    ],
    [
      'file:/nonexistent/strand-secret',
      /secret TOKEN \(file:\/nonexistent\/strand-secret\): \/nonexistent\/strand-secret does not exist$/,
    ],
    ['file:/dev/zero', /\/dev\/zero is not a regular file$/],
    [
      'arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-pass',
      /AWS Secrets Manager and SSM Parameter Store are read by AWS Batch; Strand's local Batch reads env:NAME and file:\/path$/,
    ],
  ])(
    '%s that cannot be read fails the attempt, saying which and why',
    async (valueFrom, reason) => {
      const { batch, dir } = setup();
      batch.registerJobDefinition(recorder(join(dir, 'out.json'), [{ name: 'TOKEN', valueFrom }]));
      const job = await done(batch, submit(batch));
      expect(job.status).toBe('FAILED');
      expect(job.statusReason).toMatch(reason);
      expect(job.attempts).toHaveLength(1);
      expect(job.attempts[0].container.reason).toMatch(/^ResourceInitializationError: /);
    },
  );

  it('a FIFO as a file: secret is refused at once, not waited on', async () => {
    const { batch, dir } = setup();
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    batch.registerJobDefinition(
      recorder(join(dir, 'out.json'), [{ name: 'TOKEN', valueFrom: `file:${fifo}` }]),
    );
    const job = await done(batch, submit(batch));
    expect(job.statusReason).toMatch(/fifo is not a regular file$/);
  });

  it('a malformed secrets list is refused at registration', () => {
    const { batch, dir } = setup();
    expect(() =>
      batch.registerJobDefinition(
        recorder(join(dir, 'o'), [{ name: '1BAD', valueFrom: 'env:X' }] as Secret[]),
      ),
    ).toThrow(BatchInputError);
  });
});

describe.each([
  ['native', nativeLauncher() !== undefined],
  ['node', true],
] as const)('local Batch with the %s launcher', (launcher, built) => {
  it.runIf(built)(
    'while the job runs, no process shows the secret on its command line',
    async () => {
      const { batch, dir } = setup(launcher);
      const canary = `canary-${process.pid}-${Date.now()}-${launcher}`;
      const file = join(dir, 'token.txt');
      writeFileSync(file, canary);
      const started = join(dir, 'started');
      const go = join(dir, 'go');
      batch.registerJobDefinition({
        jobDefinitionName: 'held',
        type: 'container',
        containerProperties: {
          command: [
            'sh',
            '-c',
            'printf %s "$TOKEN" > "$OUT"; : > "$STARTED"; while [ ! -e "$GO" ]; do sleep 0.02; done',
          ],
          environment: [
            { name: 'STARTED', value: started },
            { name: 'GO', value: go },
            { name: 'OUT', value: join(dir, 'received') },
          ],
          resourceRequirements: [
            { type: 'VCPU', value: '1' },
            { type: 'MEMORY', value: '128' },
          ],
          secrets: [{ name: 'TOKEN', valueFrom: `file:${file}` }],
        },
      });
      const { jobId } = batch.submitJob({
        jobName: 'held',
        jobQueue: 'default',
        jobDefinition: 'held',
      });
      try {
        await waitUntil('the job to start', () => existsSync(started));
        for (const line of commandLines()) expect(line).not.toContain(canary);
      } finally {
        writeFileSync(go, '');
      }
      const job = await done(batch, jobId);
      expect(job.status, job.statusReason).toBe('SUCCEEDED');
      expect(readFileSync(join(dir, 'received'), 'utf8')).toBe(canary);
    },
  );
});

describe('local Batch: Ref:: parameter substitution', () => {
  it('replaces a whole Ref::name item only, as AWS Batch does; Ref:: in longer text stays as written', async () => {
    const { batch, dir } = setup();
    const out = join(dir, 'out.json');
    batch.registerJobDefinition(
      recorder(out, undefined, [
        'Ref::a',
        'pre-Ref::a',
        'Ref::a_suffix',
        'Ref::aRef::a',
        'Ref::missing',
        'Ref::constructor',
      ]),
    );
    const job = await done(batch, submit(batch, { a: 'VALUE', a_suffix: 'Ref::a' }));
    expect(job.status, job.statusReason).toBe('SUCCEEDED');
    expect(JSON.parse(readFileSync(out, 'utf8')).argv).toEqual([
      'VALUE',
      'pre-Ref::a',
      // A value is not substituted again.
      'Ref::a',
      'Ref::aRef::a',
      'Ref::missing',
      'Ref::constructor',
    ]);
  });
});
