/**
 * `secrets:` in a pipeline: checked by `strand validate` (names, clashes, sources), compiled into
 * the job definition's `secrets` (names and sources only), refused before a local run when this
 * machine cannot read them, and, in a real run, given to the job's environment and to nothing
 * else: every file under the Strand home and the command line of every process while the job
 * runs are searched for the value.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compilePipeline } from '../../src/pipeline/compile.js';
import { PipelineError, formatPipelineProblem } from '../../src/pipeline/errors.js';
import { loadPipelineText } from '../../src/pipeline/load.js';
import { attemptsIn, strand } from './cli.js';
import { commandLines, waitUntil } from '../helpers.js';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The problems of a pipeline, one line each, the file name left out. */
function problems(lines: string[]): string[] {
  try {
    loadPipelineText(lines.join('\n'), join(tmpdir(), 'p.yaml'));
  } catch (err) {
    if (err instanceof PipelineError)
      return err.problems.map((p) => formatPipelineProblem({ ...p, file: '' }));
    throw err;
  }
  return [];
}

const HEAD = [
  'name: s',
  'samples: [ { id: s1, reads: r.fq } ]',
  'params: { LEVEL: 1 }',
  'steps:',
  '  a:',
  '    image: x',
  '    command: [echo]',
  '    env: { MODE: fast }',
];

describe('strand validate: secrets', () => {
  it.each([
    ['1BAD: env:X', '3:7 steps.a.secrets.1BAD: "1BAD" is not an environment variable name'],
    ['STRAND_KEY: env:X', 'steps.a.secrets.STRAND_KEY: STRAND_KEY is reserved'],
    ['AWS_BATCH_JOB_ID: env:X', 'steps.a.secrets.AWS_BATCH_JOB_ID: AWS_BATCH_JOB_ID is reserved'],
    ['READS: env:X', 'steps.a.secrets.READS: would hide $READS, which job "a" sees'],
    ['LEVEL: env:X', 'steps.a.secrets.LEVEL: would hide $LEVEL, which job "a" sees'],
    ['SAMPLE: env:X', 'steps.a.secrets.SAMPLE: would hide $SAMPLE, which job "a" sees'],
    ['MODE: env:X', 'steps.a.secrets.MODE: MODE is also set by env: of job "a"'],
    ['K: vault:x', 'steps.a.secrets.K: "vault:x" is not a secret source (write env:NAME'],
    ['K: "env:"', 'steps.a.secrets.K: "env:" does not name an environment variable'],
    ['K: env:1X', 'steps.a.secrets.K: "env:1X" does not name an environment variable'],
    ['K: "file:"', 'steps.a.secrets.K: "file:" does not name a file'],
    [
      'K: "arn:aws:s3:::bucket/key"',
      'steps.a.secrets.K: "arn:aws:s3:::bucket/key" is not a Secrets Manager secret or SSM parameter ARN',
    ],
  ])('%s', (entry, expected) => {
    const found = problems([...HEAD, `    secrets: { ${entry} }`]);
    expect(found).toHaveLength(1);
    expect(found[0]).toContain(expected.replace(/^\d+:\d+ /, ''));
    if (/^\d+:\d+ /.test(expected)) expect(found[0]).toMatch(/^:9:\d+ /);
  });

  it('AWS ARNs, env: and file: are valid; defaults, step and substep secrets merge by name into the job definition', () => {
    const dir = mkdtempSync(join(tmpdir(), 'strand-secrets-compile-'));
    const { spec } = loadPipelineText(
      [
        'name: s',
        'defaults:',
        '  secrets: { TOKEN: env:HOST_TOKEN, DB: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf" }',
        'steps:',
        '  one: { image: x, command: [echo], secrets: { DB: file:db.txt } }',
        '  two:',
        '    secrets: { KEY: "arn:aws:ssm:us-east-1:123456789012:parameter/app/key" }',
        '    substeps:',
        '      a: { image: x, command: [echo] }',
        '      b: { image: x, command: [echo], secrets: { TOKEN: file:/run/token } }',
      ].join('\n'),
      join(dir, 'pipeline.yaml'),
    );
    const defs = compilePipeline(spec).jobDefinitions;
    const secretsOf = (name: string) =>
      defs.find((d) => d.jobDefinitionName === name)!.containerProperties.secrets;
    expect(secretsOf('s-one')).toEqual([
      { name: 'DB', valueFrom: `file:${join(dir, 'db.txt')}` },
      { name: 'TOKEN', valueFrom: 'env:HOST_TOKEN' },
    ]);
    expect(secretsOf('s-two-a')).toEqual([
      { name: 'DB', valueFrom: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf' },
      { name: 'KEY', valueFrom: 'arn:aws:ssm:us-east-1:123456789012:parameter/app/key' },
      { name: 'TOKEN', valueFrom: 'env:HOST_TOKEN' },
    ]);
    expect(secretsOf('s-two-b')).toContainEqual({ name: 'TOKEN', valueFrom: 'file:/run/token' });
  });
});

/** A one-step pipeline with `secrets`, in a new directory. */
function withSecrets(secrets: string): { dir: string; file: string; home: string } {
  const dir = mkdtempSync(join(tmpdir(), 'strand-secrets-'));
  const file = join(dir, 'pipeline.yaml');
  writeFileSync(
    file,
    [
      'name: s',
      'samples: [ { id: s1 } ]',
      `steps: { a: { image: x, command: [true], secrets: ${secrets} } }`,
      '',
    ].join('\n'),
  );
  return { dir, file, home: join(dir, 'home') };
}

describe('strand run: secrets this machine cannot read are refused before anything runs', () => {
  it.each([
    [
      '{ DB: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db" }',
      "steps.a.secrets.DB: arn:aws:secretsmanager:eu-west-1:123456789012:secret:db is read by AWS Batch; Strand's local engine cannot read AWS secrets (run it on AWS, or give the value here as env:NAME or file:/path)",
    ],
    [
      '{ TOKEN: env:STRAND_TEST_NEVER_SET }',
      'steps.a.secrets.TOKEN: environment variable STRAND_TEST_NEVER_SET is not set (set it in the environment strand runs in (export STRAND_TEST_NEVER_SET=…))',
    ],
    ['{ KEY: file:missing.txt }', 'steps.a.secrets.KEY: '],
  ])('%s', async (secrets, expected) => {
    const { dir, file, home } = withSecrets(secrets);
    expect((await strand('validate', file)).code).toBe(0);
    const r = await strand('run', file, '--home', home);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${file}:3:`);
    expect(r.err).toContain(
      expected.endsWith(': ') ? `${expected}${join(dir, 'missing.txt')} does not exist` : expected,
    );
    expect(existsSync(join(home, 'strand.db'))).toBe(false);
  });
});

describe('secrets and the job cache', () => {
  it('a secret’s value is not part of the fingerprint: a rotated value is still a cache hit', async () => {
    const { file, home } = withSecrets('{ TOKEN: env:STRAND_TEST_ROTATED }');
    try {
      process.env.STRAND_TEST_ROTATED = `first-${Date.now()}`;
      const first = await strand('run', file, '--home', home);
      expect(first.code, first.err).toBe(0);
      expect(attemptsIn(home)).toHaveLength(1);
      process.env.STRAND_TEST_ROTATED = `second-${Date.now()}`;
      const second = await strand('run', file, '--home', home);
      expect(second.code, second.err).toBe(0);
      expect(second.err).toMatch(/cached\s+a\s+s1/);
      expect(attemptsIn(home)).toHaveLength(1);
    } finally {
      delete process.env.STRAND_TEST_ROTATED;
    }
  });
});

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

describe('a secret reaches the job and nothing else', () => {
  it('env: and file: canaries: the job hashes them; no file under the home and no command line holds them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strand-canary-'));
    const home = join(dir, 'home');
    const fromEnv = `canary-env-${process.pid}-${Date.now()}`;
    const fromFile = `canary-file-${process.pid}-${Date.now()}`;
    writeFileSync(join(dir, 'db-pass.txt'), `${fromFile}\n`);
    const started = join(dir, 'started');
    const go = join(dir, 'go');
    writeFileSync(
      join(dir, 'pipeline.yaml'),
      [
        'name: secret',
        'samples: [ { id: s1 } ]',
        `params: { STARTED: ${started}, GO: ${go} }`,
        'defaults: { secrets: { API_TOKEN: env:STRAND_TEST_CANARY } }',
        'steps:',
        '  use:',
        '    image: debian:bookworm-slim',
        '    secrets: { DB_PASS: file:db-pass.txt }',
        '    command:',
        '      - sh',
        '      - -c',
        '      - >-',
        '        printf %s "$$API_TOKEN" | sha256sum > env.sha;',
        '        printf %s "$$DB_PASS" | sha256sum > file.sha;',
        '        : > "$$STARTED"; while [ ! -e "$$GO" ]; do sleep 0.02; done',
        '    outputs: { ENV_SHA: env.sha, FILE_SHA: file.sha }',
        '',
      ].join('\n'),
    );
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'test/pipeline/strand-cli.mts',
        'run',
        join(dir, 'pipeline.yaml'),
        '--home',
        home,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, STRAND_TEST_CANARY: fromEnv } },
    );
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.resume();
    const exited = new Promise<number>((resolve) =>
      child.on('exit', (code) => resolve(code ?? -1)),
    );
    try {
      await waitUntil('the job to start', () => existsSync(started));
      // While the job runs: Strand's processes (the CLI, launchers, the job's wrapper) and every
      // other process show neither value on their command line.
      const lines = commandLines();
      expect(lines.some((l) => l.includes('strand-cli.mts'))).toBe(true);
      for (const line of lines) {
        expect(line).not.toContain(fromEnv);
        expect(line).not.toContain(fromFile);
      }
      // Mid-run, with the engine's write-ahead logs in use.
      const during = filesUnder(home);
      expect(during.some((f) => f.endsWith('/strand.db-wal'))).toBe(true);
      expect(during.some((f) => f.endsWith('/results.db-wal'))).toBe(true);
      for (const f of during) {
        const bytes = readFileSync(f);
        expect(bytes.includes(fromEnv), f).toBe(false);
        expect(bytes.includes(fromFile), f).toBe(false);
      }
    } finally {
      writeFileSync(go, '');
    }
    expect(await exited, err).toBe(0);
    const out = join(home, 'store/secret/s1/use');
    expect(readFileSync(join(out, 'env.sha'), 'utf8')).toBe(`${sha256(fromEnv)}  -\n`);
    // One trailing newline of the file is not part of the secret.
    expect(readFileSync(join(out, 'file.sha'), 'utf8')).toBe(`${sha256(fromFile)}  -\n`);
    const files = filesUnder(home);
    for (const name of ['strand.db', 'results.db'])
      expect(
        files.some((f) => f.endsWith(`/${name}`)),
        name,
      ).toBe(true);
    expect(files.some((f) => f.endsWith('.log'))).toBe(true);
    for (const f of files) {
      const bytes = readFileSync(f);
      expect(bytes.includes(fromEnv), f).toBe(false);
      expect(bytes.includes(fromFile), f).toBe(false);
    }
    // What Strand shows of the run: the job as DescribeJobs shows it, the history.
    const execution = /^(secret-\S+): SUCCEEDED/m.exec(err)?.[1];
    expect(execution, err).toBeDefined();
    const history = await strand('executions', 'history', execution!, '--home', home, '--json');
    expect(history.code).toBe(0);
    expect(history.out).toContain('DB_PASS');
    expect(history.out).not.toContain(fromEnv);
    expect(history.out).not.toContain(fromFile);
  });
});
