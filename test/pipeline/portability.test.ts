/**
 * Portability: a compiled pipeline is plain ASL. The same definition and input run on
 * aws-local-stepfunctions (an independent ASL implementation) give the same outcome as on
 * Strand's engine. Batch tasks there are answered with the jobs Strand ran (same job results);
 * lambda tasks by Strand's own function handlers, as the deployed Lambda would.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Json, JsonObject } from '../../src/asl/types.js';
import type { LocalBatch } from '../../src/batch/local-batch.js';
import { toPascal } from '../../src/engine/batch-integration.js';
import { Engine } from '../../src/engine/engine.js';
import { pipelineFunctions } from '../../src/functions/pipeline-functions.js';
import { compilePipeline } from '../../src/pipeline/compile.js';
import { loadPipeline } from '../../src/pipeline/load.js';
import { SqliteResults } from '../../src/results/sqlite.js';
import { openStore } from '../../src/storage/store.js';
import { strand } from './cli.js';
import { polyfillWithResolvers } from '../../scripts/lib/with-resolvers.js';

type Outcome = { status: string; output?: Json; error?: string; cause?: string };

/** Runs the pipeline on Strand, then the same ASL and input on aws-local-stepfunctions. */
async function bothEngines(
  samples: string,
  edit: (pipeline: string) => string = (t) => t,
): Promise<{ strand: Outcome; peer: Outcome }> {
  const dir = mkdtempSync(join(tmpdir(), 'strand-port-'));
  cpSync(resolve('examples/word-count'), dir, { recursive: true });
  const file = join(dir, 'pipeline.yaml');
  writeFileSync(file, edit(readFileSync(file, 'utf8')));
  const home = join(dir, 'home');
  const r = await strand('run', file, '--home', home, '--name', 'port', '--samples', samples);
  expect([0, 1]).toContain(r.code);

  const engine = Engine.open({ home, readOnly: true });
  const d = engine.describeExecution('port');
  const input = JSON.parse(d.input!) as JsonObject;
  const mine: Outcome = { status: d.status };
  if (d.output) mine.output = JSON.parse(d.output) as Json;
  if (d.error) mine.error = d.error;
  if (d.cause) mine.cause = d.cause;
  const jobs = engine.listBatchJobs().filter((j) => j.tags?.['strand:execution'] === 'port');
  engine.close();

  // The same definition, compiled again from the file.
  const { spec, samples: rows } = loadPipeline(file, { samples });
  const { definition } = compilePipeline(spec, { columns: Object.keys(rows[0].values) });

  // Lambda: Strand's handlers, over the same store and results; jobs found among Strand's.
  const results = SqliteResults.inHome(home);
  const batch = {
    getJob: (id: string) => jobs.find((j) => j.jobId === id),
  } as unknown as LocalBatch;
  const functions = pipelineFunctions({
    store: (url) => openStore(url, { home }),
    results,
    batch: () => batch,
  });
  const handlers: Record<string, (input: never) => Promise<Json>> = {};
  const lambda = async (task: JsonObject): Promise<Json> => {
    const fn = functions[String(task.FunctionName)];
    try {
      return {
        ExecutedVersion: '$LATEST',
        StatusCode: 200,
        Payload: await fn(task.Payload ?? null, { functionName: String(task.FunctionName) }),
      };
    } catch (err) {
      // As Step Functions reports a function's error: its type as Error, the payload as Cause.
      const e = err as Error;
      throw Object.assign(
        new Error(JSON.stringify({ errorMessage: e.message, errorType: e.name })),
        { name: e.name },
      );
    }
  };
  // Batch: the job Strand ran for this step and sample, as DescribeJobs shows it.
  const submit = async (task: JsonObject): Promise<Json> => {
    const tags = task.Tags as Record<string, string>;
    const job = jobs.find(
      (j) =>
        j.tags?.['strand:step'] === tags['strand:step'] &&
        j.tags?.['strand:sample'] === tags['strand:sample'],
    );
    if (!job)
      throw new Error(`no job of Strand's run for ${tags['strand:step']} ${tags['strand:sample']}`);
    const shaped = toPascal(job);
    if (job.status === 'SUCCEEDED') return shaped;
    throw Object.assign(new Error(JSON.stringify(shaped)), { name: 'States.TaskFailed' });
  };
  const visit = (states: JsonObject) => {
    for (const [name, state] of Object.entries(states) as [string, JsonObject][]) {
      if (state.Type === 'Task')
        handlers[name] = String(state.Resource).includes(':batch:')
          ? (i: never) => submit(i)
          : (i: never) => lambda(i);
      for (const b of (state.Branches as JsonObject[] | undefined) ?? [])
        visit(b.States as JsonObject);
      if (state.ItemProcessor) visit((state.ItemProcessor as JsonObject).States as JsonObject);
    }
  };
  visit(definition.States as unknown as JsonObject);

  polyfillWithResolvers();
  const { StateMachine } = await import('aws-local-stepfunctions');
  const machine = new StateMachine(definition as never, {
    validationOptions: { checkPaths: false },
  });
  const peer: Outcome = { status: 'SUCCEEDED' };
  try {
    peer.output = (await machine.run(input as never, {
      overrides: { taskResourceLocalHandlers: handlers as never },
    }).result) as Json;
  } catch (err) {
    const e = err as Error & { cause?: { name?: string; message?: string } };
    peer.status = 'FAILED';
    peer.error = (e.cause as { name?: string })?.name ?? e.name;
    peer.cause = (e.cause as { message?: string })?.message ?? e.message;
  }
  await results.close();
  return { strand: mine, peer };
}

describe('compiled pipelines on aws-local-stepfunctions', () => {
  it('all samples succeed: same status and the same final output', async () => {
    const { strand: a, peer: b } = await bothEngines('alpha,beta');
    expect(a.status).toBe('SUCCEEDED');
    expect(b).toEqual(a);
  });

  it('continue_on_failure: false — a failing sample fails the run the same way on both', async () => {
    // One sample at a time, so both engines meet the same jobs in the same order (with several at
    // once, Strand's Map stops the others when one fails, and which jobs ran depends on timing).
    const { strand: a, peer: b } = await bothEngines('alpha,beta,empty', (t) =>
      t.replace('steps:', 'continue_on_failure: false\nmax_concurrency: 1\nsteps:'),
    );
    expect(a.status).toBe('FAILED');
    expect(a.error).toBe('Strand.StepFailed');
    expect(a.cause).toMatch(/^step words failed for sample empty: exit code 3; log: /);
    expect(b).toEqual(a);
  });

  it('continue_on_failure (default): the peer lacks ToleratedFailurePercentage, so it stops at the failure Strand reports among the samples', async () => {
    // aws-local-stepfunctions 3.0.0 does not implement ToleratedFailurePercentage (Step Functions
    // does, for a Distributed Map): there the first failed sample fails the Map at once. What
    // both must agree on is that failure; Strand lets the others finish and lists it.
    const { strand: a, peer: b } = await bothEngines('alpha,beta,empty');
    expect(a.status).toBe('FAILED');
    expect(a.error).toBe('Strand.SamplesFailed');
    expect(b.status).toBe('FAILED');
    expect(b.error).toBe('Strand.StepFailed');
    expect(a.cause).toBe(`1 of 3 samples failed:\n  empty: ${b.cause!.replace(/^step /, '')}`);
  });
});
