/**
 * The shared executor suite against the AWS Batch executor and the fake AWS (aws-fake.ts), whose
 * jobs run their containers on this machine (aws-task.ts): what a job runs, its exit, its log
 * (read from CloudWatch Logs), a terminate, never twice, a restart. The tests of memory limits,
 * timeouts and processes left behind, and of read-only inputs, are AWS's (ECS's cgroups, the
 * task's own volume) and are not run against a fake.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import {
  AwsBatchExecutor,
  type StagePlanner,
} from '../../src/executors/aws-batch/aws-batch-executor.js';
import type { Executor } from '../../src/executors/executor.js';
import { nativeLauncher } from '../../src/executors/local/local-executor.js';
import { ACCESS_KEY, FakeAws, REGION, SECRET_KEY } from './aws-fake.js';
import { runTasksHere } from './aws-task.js';
import { executorConformance } from './conformance.js';

const fake = new FakeAws();
const root = mkdtempSync(join(tmpdir(), 'strand-aws-conformance-'));
const opened: AwsBatchExecutor[] = [];

beforeAll(async () => {
  await fake.start();
  fake.runner = runTasksHere(fake, root);
  process.env.AWS_ACCESS_KEY_ID = ACCESS_KEY;
  process.env.AWS_SECRET_ACCESS_KEY = SECRET_KEY;
  process.env.AWS_REGION = REGION;
  process.env.AWS_CONFIG_FILE = join(tmpdir(), 'no-aws-config');
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(tmpdir(), 'no-aws-credentials');
  delete process.env.AWS_PROFILE;
});

afterAll(async () => {
  for (const ex of opened) ex.close();
  await fake.stop();
});

/** Jobs that are no pipeline's: nothing to stage but the tool's own command. */
const planner: StagePlanner = (spec, taskRoot) =>
  Promise.resolve({
    plan: { version: 1, root: taskRoot, inputs: [], outputs: {}, outputDirs: [], environment: {} },
    command: spec.command,
    environment: spec.environment,
  });

/** The executor, each job given an image (the suite's jobs name none; AWS needs one). */
function make(): Executor {
  const ex = new AwsBatchExecutor({
    jobQueue: 'strand',
    stageImage: 'strand/stage:test',
    endpoint: fake.url,
    ledgerDir: join(root, 'ledger'),
    planner,
    pollMs: 0,
  });
  opened.push(ex);
  return {
    name: ex.name,
    isolated: ex.isolated,
    submit: (spec) => ex.submit({ ...spec, image: spec.image ?? 'node:20-slim' }),
    poll: (h) => ex.poll(h),
    kill: (h, reason) => ex.kill(h, reason),
    reattach: (h) => ex.reattach(h),
    logs: (h) => ex.logs(h),
    close: () => ex.close(),
  };
}

if (nativeLauncher())
  executorConformance('aws-batch (fake AWS)', make, () => root, {
    readLog: async (ex, h) => (await ex.logs!(h)) ?? '',
    limits: false,
    readOnlyInputs: false,
  });
