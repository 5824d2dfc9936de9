/**
 * `strand run --executor aws-batch` end to end against the fake AWS (test/executors/aws-fake.ts):
 * each job is submitted to the fake Batch, whose jobs run their three containers on this machine
 * (aws-task.ts: stage-in and stage-out as `strand stage` does, the tool through the launcher);
 * outputs reach a file:// store with the same layout as a local run, `strand logs` reads the
 * jobs' CloudWatch Logs, and bad settings stop the run before any job (exit 2).
 */
import { existsSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { nativeLauncher } from '../../src/executors/local/local-executor.js';
import { readManifest } from '../../src/storage/publish.js';
import { openStore } from '../../src/storage/store.js';
import { ACCESS_KEY, FakeAws, REGION, SECRET_KEY } from '../executors/aws-fake.js';
import { runTasksHere } from '../executors/aws-task.js';
import { inlinePipeline, resultsJson, spawnStrand, strand, waitUntil } from './cli.js';

let fake: FakeAws;

beforeAll(async () => {
  fake = await new FakeAws().start();
  process.env.AWS_ACCESS_KEY_ID = ACCESS_KEY;
  process.env.AWS_SECRET_ACCESS_KEY = SECRET_KEY;
  process.env.AWS_REGION = REGION;
  process.env.AWS_CONFIG_FILE = join(tmpdir(), 'no-aws-config');
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(tmpdir(), 'no-aws-credentials');
  process.env.AWS_MAX_ATTEMPTS = '2';
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_ENDPOINT_URL;
});

afterAll(async () => {
  await fake.stop();
});

beforeEach(() => {
  fake.requests.length = 0;
  fake.expired = false;
  fake.holdNew = false;
});

/** A two-step pipeline (the second reads the first's output) and its home, set for aws-batch. */
function awsPipeline(settings: Record<string, unknown> = {}) {
  const p = inlinePipeline([
    'name: counted',
    'samples: [ { id: good, N: "3" }, { id: bad, N: "0" } ]',
    'steps:',
    '  make:',
    '    image: strand/tools:1',
    `    command: [${process.execPath}, -e, 'const n = Number(process.argv[1]); require("fs").writeFileSync("out/n.txt", Array.from({ length: n }, (_, i) => i + 1).join("\\n") + "\\n"); console.error("made", n); process.exit(n > 0 ? 0 : 4)', $N]`,
    '    outputs: { NUMBERS: out/n.txt }',
    '  count:',
    '    image: strand/tools:1',
    `    command: [${process.execPath}, -e, 'console.log(require("fs").readFileSync(process.argv[1], "utf8").trim().split("\\n").length)', $NUMBERS]`,
    '    stdout: count.txt',
    '    outputs: { COUNT: count.txt }',
  ]);
  mkdirSync(p.home, { recursive: true });
  const options = {
    region: REGION,
    jobQueue: 'strand',
    stageImage: 'strand/stage:test',
    endpoint: fake.url,
    pollSeconds: 0.02,
    ...settings,
  };
  writeFileSync(
    join(p.home, 'config.yaml'),
    `executors:\n  aws-batch: ${JSON.stringify(options)}\n`,
  );
  return p;
}

describe.runIf(nativeLauncher())('strand run --executor aws-batch (a fake AWS on loopback)', () => {
  it('runs each job as an AWS Batch job, publishes the same layout, reads logs from CloudWatch', async () => {
    const p = awsPipeline();
    fake.runner = runTasksHere(fake, p.home);
    const store = join(p.dir, 'store');
    const r = await strand(
      'run',
      p.file,
      '--executor',
      'aws-batch',
      '--home',
      p.home,
      '--store',
      store,
      '--name',
      'aws-1',
    );
    expect(r.err).toMatch(/on aws-batch/);
    // `bad` fails its first step (exit 4); `good` goes through both.
    expect(r.code).toBe(1);
    const submits = fake.calls('SubmitJob');
    // make ×2 samples (each retried per the pipeline's retry default), count ×1.
    expect(submits.length).toBeGreaterThanOrEqual(3);
    expect(new Set(submits.map((s) => s.body.jobName)).size).toBe(submits.length);
    const s = openStore(store, { home: p.home });
    expect((await s.get('counted/good/make/out/n.txt')).toString()).toBe('1\n2\n3\n');
    expect((await s.get('counted/good/count/count.txt')).toString()).toBe('3\n');
    expect(await readManifest(s, 'counted/good/count')).toMatchObject({ status: 'SUCCEEDED' });
    expect(await readManifest(s, 'counted/bad/make')).toMatchObject({
      status: 'FAILED',
      exitCode: 4,
    });
    expect((await s.get('counted/bad/make/_strand.log')).toString()).toContain('made 0');
    // The count job read the staged copy of good's output, never the store's path.
    const countJob = submits.find(
      (c) => (c.body.tags as Record<string, string>)['strand:step'] === 'count',
    )!;
    const tool = (
      countJob.body.ecsPropertiesOverride as {
        taskProperties: { containers: { name: string; command?: string[] }[] }[];
      }
    ).taskProperties[0].containers.find((c) => c.name === 'tool')!;
    expect(tool.command?.at(-1)).toBe('/strand/work/inputs/NUMBERS/n.txt');
    const rows = (await resultsJson(p.home, '--pipeline', 'counted')) as {
      sample: string;
      step: string;
      status: string;
      logLocation?: string;
    }[];
    expect(rows.find((x) => x.sample === 'good' && x.step === 'count')).toMatchObject({
      status: 'SUCCEEDED',
    });
    // Logs come from CloudWatch Logs: the tool's output, copied there by the stage-out.
    const logs = await strand('logs', 'aws-1', '--sample', 'bad', '--home', p.home);
    expect(logs.code).toBe(0);
    expect(logs.out).toMatch(/==> bad make \(job .*\) <==/);
    expect(logs.out).toContain('made 0');
    expect(fake.calls('GetLogEvents').length).toBeGreaterThan(0);
    // One job's log, by its id (`strand batch logs`).
    const badTags = submits
      .map((c) => c.body.tags as Record<string, string>)
      .find((t) => t['strand:sample'] === 'bad' && t['strand:step'] === 'make')!;
    const one = await strand('batch', 'logs', badTags['strand:job-id'], '--home', p.home);
    expect(one).toMatchObject({ code: 0, err: '' });
    expect(one.out).toContain('made 0');
    // Nothing ran in the home's work directory but the submission ledger.
    expect(readdirSync(join(p.home, 'work'))).toEqual(['aws-batch']);
  });

  it('Strand killed (SIGKILL) while its jobs run on AWS: resume re-attaches, no attempt submitted twice', async () => {
    const p = awsPipeline();
    fake.runner = runTasksHere(fake, p.home);
    fake.holdNew = true;
    const store = join(p.dir, 'store');
    const run = spawnStrand(
      ['run', p.file, '--executor', 'aws-batch', '--home', p.home, '--store', store],
      {
        AWS_ACCESS_KEY_ID: ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY: SECRET_KEY,
        AWS_REGION: REGION,
      },
    );
    const before = fake.jobs.size;
    // Both samples' first jobs run on AWS (the fake holds them there).
    await waitUntil(
      'two jobs RUNNING on AWS',
      () =>
        [...fake.jobs.values()].slice(before).filter((j) => j.status === 'RUNNING').length === 2,
    );
    run.kill('SIGKILL');
    await run.done;
    fake.holdNew = false;
    for (const j of [...fake.jobs.values()].slice(before)) fake.release(j.jobId);
    const resumed = await strand('resume', '--home', p.home);
    expect(resumed.code).toBe(1); // `bad` fails, as in a run that was never stopped
    const attempts = fake
      .calls('SubmitJob')
      .map((c) => c.body.tags as Record<string, string>)
      .map((t) => `${t['strand:job-id']}#${t['strand:attempt']}`);
    expect(new Set(attempts).size).toBe(attempts.length);
    // The job that was running when Strand was killed ran once: re-attached, not retried.
    const goodMake = fake.calls('SubmitJob').filter((c) => {
      const t = c.body.tags as Record<string, string>;
      return t['strand:sample'] === 'good' && t['strand:step'] === 'make';
    });
    expect(goodMake).toHaveLength(1);
    const s = openStore(store, { home: p.home });
    expect((await s.get('counted/good/count/count.txt')).toString()).toBe('3\n');
  });

  it('a wrong endpoint stops the run before any job (exit 2), naming endpoint and region', async () => {
    const p = awsPipeline({ endpoint: 'http://127.0.0.1:9' });
    const r = await strand('run', p.file, '--executor', 'aws-batch', '--home', p.home);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /executor aws-batch \(from --executor\): DescribeJobQueues: cannot reach AWS Batch at http:\/\/127\.0\.0\.1:9 \(region eu-west-1\): ECONNREFUSED/,
    );
    expect(r.err).toMatch(/nothing was run/);
    expect(existsSync(join(p.home, 'work', 'aws-batch'))).toBe(false);
  });

  it('an expired credential stops the run before any job (exit 2)', async () => {
    const p = awsPipeline();
    fake.expired = true;
    const r = await strand('run', p.file, '--executor', 'aws-batch', '--home', p.home);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/refused the credentials \(ExpiredTokenException: /);
    expect(fake.calls('SubmitJob')).toHaveLength(0);
  });

  it('settings without a job queue or stage image are bad input naming the file and keys', async () => {
    const p = awsPipeline({ jobQueue: undefined, stageImage: undefined });
    const r = await strand('run', p.file, '--executor', 'aws-batch', '--home', p.home);
    expect(r.code).toBe(2);
    expect(r.err).toContain(
      `${join(p.home, 'config.yaml')}: executors.aws-batch.jobQueue and executors.aws-batch.stageImage not set`,
    );
  });
});
