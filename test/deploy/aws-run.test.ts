/**
 * One job of a deployed pipeline, through the pieces `strand deploy aws` puts on AWS, here
 * without AWS: the job's environment as Step Functions and Batch give it (the compiled Task's
 * ContainerOverrides evaluated on the state, the deployed job definition's environment, Batch's
 * AWS_BATCH_JOB_ID), `strand stage job in` and `strand stage job out` as real processes against a
 * real S3-protocol server (s3rver), the tool between them a real process run by Strand's static
 * launcher, the job itself known to a fake AWS Batch endpoint (DescribeJobs, with its tags), and
 * then the bundled Lambda handler's strand-publish / strand-sync-failure, which look the job up
 * there and record to a Postgres results database (a real server, started for the test) named by a
 * stand-in Secrets Manager secret.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  BatchClient,
  DescribeJobsCommand,
  RegisterJobDefinitionCommand,
  SubmitJobCommand,
} from '@aws-sdk/client-batch';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Json, JsonObject } from '../../src/asl/types.js';
import { evaluatePayloadTemplate } from '../../src/asl/payload.js';
import { openResults, openStore } from '../../src/app/index.js';
import { bundleLambda } from '../../src/deploy/aws/bundle.js';
import { deployedContainer } from '../../src/deploy/aws/job-image.js';
import { jobInfoOf } from '../../src/executors/aws-batch/job-lookup.js';
import { OOM_REASON } from '../../src/executors/executor.js';
import { compileForAws, executionInput } from '../../src/deploy/aws/synth.js';
import { nativeLauncher } from '../../src/executors/local/local-executor.js';
import { loadPipeline } from '../../src/pipeline/load.js';
import { readManifest, verifyManifest } from '../../src/storage/publish.js';
import type { ObjectStore } from '../../src/storage/store.js';
import { ACCESS_KEY, FakeAws, SECRET_KEY, type FakeJob } from '../executors/aws-fake.js';
import { inlinePipeline } from '../pipeline/cli.js';
import { startS3Server, type S3TestServer } from '../storage/s3-server.js';
import {
  postgresMissing,
  postgresReady,
  startPostgres,
  type PostgresServer,
} from '../results/postgres-server.js';
import { waitUntil } from '../helpers.js';

const BUCKET = 'strand-test';
const STORE = `s3://${BUCKET}`;
const EXECUTION = 'deployed-2026-12-06T04-00-00Z';

// The tool: copies its input, counts its lines into a results file, fails (exit 3) unless the
// input says "good". Its input reaches it as an argument, never through a shell.
const TOOL = [
  'const fs = require("fs");',
  'const t = fs.readFileSync(process.argv[1], "utf8");',
  'fs.writeFileSync("out/reads.txt", t);',
  'const n = t.split("\\n").filter(Boolean).length;',
  'fs.writeFileSync("out/metrics.tsv", "lines\\tgood\\n" + n + "\\t" + (t.includes("good") ? 1 : 0) + "\\n");',
  'console.error("counted " + n + " lines");',
  'if (!t.includes("good")) process.exit(3);',
].join(' ');

/** The Task state (and its publish / failure states) of job definition `name` in a definition. */
function statesOf(definition: Json, name: string): Record<string, JsonObject> {
  const found: Record<string, JsonObject> = {};
  const walk = (node: Json): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (node === null || typeof node !== 'object') return;
    const states = node.States;
    if (states && typeof states === 'object' && !Array.isArray(states))
      for (const [k, v] of Object.entries(states)) {
        const st = v as JsonObject;
        const params = st.Parameters as JsonObject | undefined;
        if (params?.JobDefinition === name) found[k] = st;
        else if (k === `${name.replace(/^deployed-/, '')}: publish`) found.publish = st;
        else if (k === `${name.replace(/^deployed-/, '')}: failed`) found.failed = st;
      }
    for (const v of Object.values(node)) walk(v);
  };
  walk(definition);
  return found;
}

const pathOfLauncher = (): string => {
  const launcher = nativeLauncher();
  if (!launcher) throw new Error('dist/strand-launcher is not built: npm run build');
  return launcher;
};

const scope = (input: Json) => ({
  input,
  context: {},
  variable: () => undefined,
  random: () => 0.5,
});

// The Lambda records to Postgres (the bundle has no SQLite: its binding is native code).
describe.skipIf(!postgresReady)(
  postgresReady
    ? 'a deployed job, staged where it runs and published by the Lambda'
    : `a deployed job (skipped: ${postgresMissing})`,
  () => {
    let s3: S3TestServer;
    let postgres: PostgresServer;
    let resultsUrl: string;
    let fake: FakeAws;
    let secrets: Server;
    let work: string;
    let bundleDir: string;
    let env: Record<string, string>;
    let store: ObjectStore;
    let batch: BatchClient;
    let handlers: Record<string, (event: unknown) => Promise<unknown>>;
    const compiled = () => {
      const p = inlinePipeline(
        [
          'name: deployed',
          'samples: samples.csv',
          'defaults: { vcpus: 1, memory: 512MiB, retry: 0, timeout: 10m }',
          'steps:',
          '  count:',
          '    image: strand/count:1',
          `    command: [node, -e, '${TOOL.replace(/'/g, "''")}', $READS]`,
          '    outputs: { COPY: out/reads.txt }',
          'results:',
          '  count: { from: out/metrics.tsv, format: tsv }',
        ],
        {
          'samples.csv': `id,READS\nS1,${STORE}/deployed/_reads/S1.txt\nS2,${STORE}/deployed/_reads/S2.txt\n`,
        },
      );
      const loaded = loadPipeline(p.file, {});
      return { loaded, compiled: compileForAws(loaded) };
    };
    let pipeline: ReturnType<typeof compiled>;

    beforeAll(async () => {
      work = mkdtempSync(join(tmpdir(), 'strand-deployed-'));
      s3 = await startS3Server(BUCKET);
      // s3rver takes the fake AWS's key pair too, so that one set of credentials signs for S3,
      // Batch and Secrets Manager, as a job role's do on AWS.
      const account = createRequire(import.meta.url)('s3rver/lib/models/account.js') as {
        DUMMY_ACCOUNT: { createKeyPair: (id: string, secret: string) => void };
      };
      account.DUMMY_ACCOUNT.createKeyPair(ACCESS_KEY, SECRET_KEY);
      fake = await new FakeAws().start();
      postgres = await startPostgres();
      resultsUrl = await postgres.createDatabase();
      secrets = createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          res.setHeader('content-type', 'application/x-amz-json-1.1');
          res.end(JSON.stringify({ SecretString: resultsUrl }));
        });
      });
      await new Promise<void>((r) => secrets.listen(0, '127.0.0.1', r));
      env = {
        AWS_ACCESS_KEY_ID: ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY: SECRET_KEY,
        AWS_REGION: 'us-east-1',
        AWS_ENDPOINT_URL_S3: s3.endpoint,
        AWS_ENDPOINT_URL_BATCH: fake.url,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: `http://127.0.0.1:${(secrets.address() as { port: number }).port}`,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        AWS_MAX_ATTEMPTS: '4',
      };
      for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v);
      vi.stubEnv('STRAND_STORE', STORE);
      vi.stubEnv(
        'STRAND_RESULTS_SECRET',
        'arn:aws:secretsmanager:us-east-1:123456789012:secret:r-AbC123',
      );
      store = openStore(STORE, { home: join(work, 'home') });
      await store.putBytes('deployed/_reads/S1.txt', 'good read 1\ngood read 2\n');
      await store.putBytes('deployed/_reads/S2.txt', 'bad read\n');
      batch = new BatchClient({ endpoint: fake.url, region: 'us-east-1', maxAttempts: 1 });
      pipeline = compiled();
      const bundle = await bundleLambda();
      bundleDir = bundle.dir;
      handlers = (await import(
        pathToFileURL(join(bundle.dir, 'index.mjs')).href
      )) as typeof handlers;
    }, 120_000);

    afterAll(async () => {
      vi.unstubAllEnvs();
      batch?.destroy();
      await fake?.stop();
      await s3?.close();
      await postgres?.stop();
      secrets?.close();
      rmSync(work, { recursive: true, force: true });
      if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
    });

    /** A process of the CLI from source, as the job's image runs Strand's stage program. */
    const run = (program: string, args: string[], jobEnv: Record<string, string>) =>
      new Promise<{ code: number; out: string; err: string }>((resolve) => {
        const child = spawn(program, args, { env: jobEnv, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('close', (code) => resolve({ code: code ?? -1, out, err }));
      });
    const strand = (args: string[], jobEnv: Record<string, string>) =>
      run(
        process.execPath,
        ['--import', 'tsx', join(process.cwd(), 'test/pipeline/strand-cli.mts'), ...args],
        jobEnv,
      );

    /**
     * Runs sample `sample`'s count job as Step Functions and Batch would: submitted to the fake
     * Batch with the Task's tags, its container (stage in, tool, stage out) run when Batch starts
     * it, then waited for through DescribeJobs. Returns the state after the Task and the job.
     */
    async function runJob(sample: string) {
      const { loaded, compiled: c } = pipeline;
      const def = c.jobDefinitions.find((d) => d.jobDefinitionName === 'deployed-count')!;
      const states = statesOf(c.definition as unknown as Json, def.jobDefinitionName);
      const input = executionInput(loaded, STORE, EXECUTION);
      // What preflight makes of the samples: the Map's items, each a sample's variables.
      const pre = (await handlers.preflight({
        run: input.run,
        samples: input.samples,
        params: input.params,
        steps: [{ name: 'count', scope: 'sample', needs: [], jobs: [] }],
      })) as { run: JsonObject; items: Record<string, string>[] };
      // Each item of the Map: { run, vars } (its ItemSelector).
      const vars = pre.items.find((i) => i.SAMPLE === sample)!;
      const state = { run: pre.run, vars } as unknown as Json;
      const params = evaluatePayloadTemplate(
        states.count.Parameters as Json,
        scope(state),
        'Parameters',
      ) as {
        JobName: string;
        Parameters: Record<string, string>;
        ContainerOverrides: { Environment: { Name: string; Value: string }[] };
        Tags: Record<string, string>;
      };
      const container = deployedContainer(def, STORE, new Map());
      // Batch substitutes the job definition's Ref:: placeholders from the submitted parameters.
      const command = container.command.map((item) =>
        item.startsWith('Ref::') ? (params.Parameters[item.slice(5)] ?? item) : item,
      );
      // The fake describes every job in the multi-container shape: the deployed job's one
      // container is registered as a task of one container named `tool` (jobInfoOf reads both
      // shapes: see the last test of this file).
      const registered = await batch.send(
        new RegisterJobDefinitionCommand({
          jobDefinitionName: def.jobDefinitionName,
          type: 'container',
          ecsProperties: {
            taskProperties: [
              { containers: [{ name: 'tool', image: container.image, essential: true }] },
            ],
          },
        }),
      );
      const root = mkdtempSync(join(work, `job-${sample}-`));
      const outputs = new Map<string, Record<string, { code: number; out: string; err: string }>>();
      fake.runner = async (job: FakeJob) => {
        const jobEnv: Record<string, string> = {
          // The image's own variables, then the job definition's, then the overrides.
          PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
          ...Object.fromEntries(container.environment.map((kv) => [kv.name, kv.value])),
          ...Object.fromEntries(
            params.ContainerOverrides.Environment.map((kv) => [kv.Name, kv.Value]),
          ),
          AWS_BATCH_JOB_ID: job.jobId,
          AWS_BATCH_JOB_ATTEMPT: '1',
          STRAND_STAGE_ROOT: root,
          ...env,
        };
        const stageIn = await strand(['stage', 'job', 'in', '--', ...command], jobEnv);
        const tool = await run(
          join(root, 'bin', 'strand-launcher'),
          ['run', join(root, 'run', 'request')],
          jobEnv,
        );
        const stageOut = await strand(['stage', 'job', 'out'], jobEnv);
        outputs.set(sample, { stageIn, tool, stageOut });
        return {
          exitCode: stageOut.code,
          logs: { tool: stageOut.out.split('\n').filter(Boolean) },
        };
      };
      const submitted = await batch.send(
        new SubmitJobCommand({
          jobName: params.JobName,
          jobQueue: 'strand',
          jobDefinition: registered.jobDefinitionArn,
          tags: params.Tags,
        }),
      );
      const jobId = submitted.jobId!;
      const ended = await waitUntil(
        `job ${jobId} to end`,
        async () => {
          const out = await batch.send(new DescribeJobsCommand({ jobs: [jobId] }));
          const j = out.jobs?.[0];
          return j?.status === 'SUCCEEDED' || j?.status === 'FAILED' ? j : undefined;
        },
        60_000,
      );
      return { states, state, jobId, ended, processes: outputs.get(sample)!, root };
    }

    it('stages a job in from the store, runs its tool, publishes it, and records it', async () => {
      const r = await runJob('S1');
      expect(r.processes.stageIn).toMatchObject({ code: 0 });
      expect(r.processes.tool.code).toBe(0);
      expect(r.processes.stageOut.code).toBe(0);
      expect(r.ended.status).toBe('SUCCEEDED');
      // The tool read its staged copy, not the store: the launch request named a local path.
      expect(r.processes.stageOut.out).toContain('counted 2 lines');

      // The predictable layout, the manifest last and true to what is there.
      const prefix = 'deployed/S1/count';
      const keys = (await store.list(`${prefix}/`)).map((o) => o.key).sort();
      expect(keys).toEqual(
        [
          `${prefix}/_strand.json`,
          `${prefix}/_strand.log`,
          `${prefix}/out/metrics.tsv`,
          `${prefix}/out/reads.txt`,
        ].sort(),
      );
      const manifest = (await readManifest(store, prefix))!;
      expect(manifest).toMatchObject({
        status: 'SUCCEEDED',
        pipeline: 'deployed',
        sample: 'S1',
        step: 'count',
        execution: EXECUTION,
        jobId: r.jobId,
        exitCode: 0,
      });
      expect(await verifyManifest(store, prefix, manifest, { deep: true })).toEqual([]);
      expect((await store.get(`${prefix}/out/reads.txt`)).toString()).toBe(
        'good read 1\ngood read 2\n',
      );

      // strand-publish on Lambda: the job from DescribeJobs (throttled twice first), the row and
      // the metrics in the results database its secret names.
      fake.throttle('DescribeJobs', 2);
      const before = fake.calls('DescribeJobs').length;
      const publishParams = evaluatePayloadTemplate(
        r.states.publish.Parameters as Json,
        scope({ ...(r.state as JsonObject), job: { JobId: r.jobId, Tags: {} } }),
        'Parameters',
      ) as { Payload: JsonObject };
      const out = (await handlers.publish(publishParams.Payload)) as {
        vars: Record<string, string>;
      };
      expect(out.vars.COPY).toBe(`${STORE}/${prefix}/out/reads.txt`);
      const calls = fake.calls('DescribeJobs').slice(before);
      expect(calls.map((c) => c.status)).toEqual([429, 429, 200]);

      const results = openResults(resultsUrl, { home: work });
      try {
        const [row] = await results.listSteps({ pipeline: 'deployed', sample: 'S1' });
        expect(row).toMatchObject({
          execution: EXECUTION,
          step: 'count',
          status: 'SUCCEEDED',
          jobId: r.jobId,
          attempt: 1,
          exitCode: 0,
          executor: 'aws-batch',
          image: 'strand/count:1',
          outputLocation: `${STORE}/${prefix}`,
        });
        expect(row.logLocation).toMatch(/^strand\/tool\//);
        const metrics = await results.listMetrics('deployed', 'count', { execution: EXECUTION });
        expect(metrics.map((m) => [m.sample, m.values])).toEqual([['S1', { lines: 2, good: 1 }]]);
      } finally {
        await results.close();
      }
    }, 120_000);

    it('keeps what a failed job left, and strand-sync-failure records the failure', async () => {
      const r = await runJob('S2');
      expect(r.processes.stageIn.code).toBe(0);
      expect(r.processes.tool.code).toBe(3);
      expect(r.processes.stageOut.code).toBe(3);
      expect(r.ended.status).toBe('FAILED');

      const prefix = 'deployed/S2/count';
      const manifest = (await readManifest(store, prefix))!;
      expect(manifest).toMatchObject({ status: 'FAILED', jobId: r.jobId, exitCode: 3 });
      // The partial output is kept, with the log that says why.
      expect((await store.get(`${prefix}/out/reads.txt`)).toString()).toBe('bad read\n');
      expect((await store.get(`${prefix}/_strand.log`)).toString()).toContain('counted 1 lines');

      // What Step Functions' .sync integration puts in $.error for a failed job.
      const error = {
        Error: 'States.TaskFailed',
        Cause: JSON.stringify({
          JobId: r.jobId,
          Status: 'FAILED',
          StatusReason: r.ended.statusReason,
        }),
      };
      const failedParams = evaluatePayloadTemplate(
        r.states.failed.Parameters as Json,
        scope({ ...(r.state as JsonObject), error }),
        'Parameters',
      ) as { Payload: JsonObject };
      const out = (await handlers.syncFailure(failedParams.Payload)) as {
        Error: string;
        Cause: string;
      };
      expect(out.Cause).toContain('step count failed for sample S2: exit code 3');
      expect(out.Cause).toContain(`partial outputs: ${STORE}/${prefix}`);

      const results = openResults(resultsUrl, { home: work });
      try {
        const [row] = await results.listSteps({ pipeline: 'deployed', sample: 'S2' });
        expect(row).toMatchObject({
          status: 'FAILED',
          jobId: r.jobId,
          exitCode: 3,
          executor: 'aws-batch',
          outputLocation: `${STORE}/${prefix}`,
          error: 'States.TaskFailed',
          cause: 'exit code 3',
        });
      } finally {
        await results.close();
      }
    }, 120_000);

    it('a job whose staging cannot start says why, and runs nothing', async () => {
      const root = mkdtempSync(join(work, 'job-broken-'));
      const jobEnv = {
        ...env,
        PATH: process.env.PATH ?? '',
        STRAND_STAGE_ROOT: root,
        AWS_BATCH_JOB_ID: 'no-such-job',
      };
      const stageIn = await strand(['stage', 'job', 'in', '--', 'node', '-e', '1'], jobEnv);
      expect(stageIn.code).toBe(1);
      expect(stageIn.err).toContain("the job's environment has no STRAND_PIPELINE");
      // The attempt is claimed: the launcher runs nothing.
      const tool = await run(pathOfLauncher(), ['run', join(root, 'run', 'request')], jobEnv);
      expect(tool.code).not.toBe(0);
      const stageOut = await strand(['stage', 'job', 'out'], jobEnv);
      expect(stageOut.code).toBe(1);
      expect(stageOut.err).toContain('the stage-in failed: ');
      expect(stageOut.err).toContain('STRAND_PIPELINE');
    }, 60_000);
  },
);

describe('a job as DescribeJobs describes it, as the functions record it', () => {
  it('reads a deployed job (one container) and an AWS Batch executor job (three)', () => {
    const single = jobInfoOf({
      jobId: 'j1',
      jobName: 'deployed-count',
      jobQueue: 'q',
      jobDefinition: 'd',
      status: 'FAILED',
      statusReason: 'Essential container in task exited',
      startedAt: 1000,
      stoppedAt: 2000,
      createdAt: 500,
      attempts: [
        {
          container: { exitCode: 3, logStreamName: 'job/default/abc' },
          startedAt: 1000,
          stoppedAt: 2000,
        },
      ],
      container: {
        image: '1234.dkr.ecr.eu-west-1.amazonaws.com/cdk-assets:f00',
        exitCode: 3,
        logStreamName: 'job/default/abc',
        resourceRequirements: [
          { type: 'VCPU', value: '2' },
          { type: 'MEMORY', value: '4096' },
        ],
      },
    });
    expect(single).toEqual({
      jobId: 'j1',
      attempts: 1,
      last: {
        exitCode: 3,
        logStreamName: 'job/default/abc',
        startedAt: 1000,
        stoppedAt: 2000,
        vcpus: 2,
        memoryMiB: 4096,
      },
      statusReason: 'Essential container in task exited',
      executor: 'aws-batch',
      image: '1234.dkr.ecr.eu-west-1.amazonaws.com/cdk-assets:f00',
    });
    const multi = jobInfoOf({
      jobId: 'j2',
      jobName: 'n',
      jobQueue: 'q',
      jobDefinition: 'd',
      status: 'FAILED',
      statusReason: 'Essential container in task exited',
      createdAt: 1,
      startedAt: 2,
      stoppedAt: 3,
      attempts: [{ startedAt: 2, stoppedAt: 3 }],
      ecsProperties: {
        taskProperties: [
          {
            containers: [
              { name: 'stage-in', exitCode: 0, logStreamName: 's/in' },
              {
                name: 'tool',
                image: 'strand/fastp',
                exitCode: 137,
                reason: 'OutOfMemoryError: killed',
                logStreamName: 's/tool',
              },
              { name: 'stage-out', exitCode: 137, logStreamName: 's/out' },
            ],
          },
        ],
      },
    });
    // The stage-out's exit code is the tool's, and its stream holds the tool's log.
    expect(multi.last).toMatchObject({ exitCode: 137, logStreamName: 's/out' });
    expect(multi.last?.reason).toBe(OOM_REASON);
    expect(multi.image).toBe('strand/fastp');
  });
});
