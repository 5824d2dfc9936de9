/**
 * Portability: a compiled pipeline is plain ASL, so the definition Strand ran, with the same
 * input, runs on aws-local-stepfunctions (an independent ASL implementation) to the same end.
 * Batch tasks there are answered with the results of the jobs Strand's run got for the same
 * step and sample; lambda tasks by Strand's own function handlers, as the deployed Lambda
 * would (see portability-harness.ts). Both engines must agree on the outcome (status and
 * output, or error and cause), on every Task call (resolved input and result, per state and
 * sample) and on the states entered, per sample.
 *
 * What aws-local-stepfunctions 3.0.0 cannot run: a Map's ToleratedFailurePercentage (it is not
 * implemented there; ProcessorConfig DISTRIBUTED is accepted and run as an inline Map). So a
 * failing sample under `continue_on_failure: true` (the default) fails the whole Map there at
 * once, where Step Functions and Strand let the other samples finish and the run ends in
 * "Samples failed". That case is checked for what both must still agree on, and named so.
 * Fail states with ErrorPath/CausePath, Parallel, Choice, Retry, ItemSelector with
 * `$$.Map.Item.Value`, States.Format and States.JsonMerge do run there.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/asl/types.js';
import { runOnBothEngines, settled, type BothRuns, type TaskCall } from './portability-harness.js';

/** A copy of examples/word-count in a fresh directory, optionally with its pipeline edited. */
function wordCount(edit: (yaml: string) => string = (t) => t): { file: string; home: string } {
  const dir = mkdtempSync(join(tmpdir(), 'strand-port-'));
  cpSync(resolve('examples/word-count'), dir, { recursive: true });
  const file = join(dir, 'pipeline.yaml');
  writeFileSync(file, edit(readFileSync(file, 'utf8')));
  return { file, home: join(dir, 'home') };
}

/**
 * A pipeline of its own: two per-sample steps and an aggregate, inline samples, a parameter,
 * an env value built with States.Format (with literal braces), stdout to a file, and the Map
 * stopping at the first failure (an inline Map on both engines). `upper` has a Retry; with
 * `flaky`, its first attempt for sample s1 fails (exit 1) and the retry succeeds.
 */
/** twoSteps with a third per-sample step that reads only the sample: it runs beside the two. */
function sideBySide(): { file: string; home: string } {
  const { file, home } = twoSteps();
  const text = readFileSync(file, 'utf8').replace(
    '  table:\n',
    [
      '  chars:',
      '    image: debian:bookworm-slim',
      '    command: [wc, -c, $TEXT]',
      '    stdout: chars.txt',
      '    outputs: { CHARS: chars.txt }',
      '  table:',
      '',
    ].join('\n'),
  );
  writeFileSync(file, text);
  return { file, home };
}

function twoSteps(flaky = false): { file: string; home: string } {
  const dir = mkdtempSync(join(tmpdir(), 'strand-port-own-'));
  // A file that exists is no first attempt; s1's marker is made by its first attempt.
  const mark = (sample: string) => (flaky && sample === 's1' ? join(dir, 'flaky-s1') : 'a.txt');
  writeFileSync(join(dir, 'a.txt'), 'one\ntwo\n');
  writeFileSync(join(dir, 'b.txt'), 'three\n');
  writeFileSync(join(dir, 'c.txt'), 'four\nfive\nsix\n');
  const file = join(dir, 'pipeline.yaml');
  writeFileSync(
    file,
    [
      'name: portable',
      'description: Two steps per sample and one table over all samples',
      'continue_on_failure: false',
      'max_concurrency: 2',
      'params: { SUFFIX: end }',
      'samples:',
      `  - { id: s1, TEXT: a.txt, LABEL: first, MARK: ${mark('s1')} }`,
      `  - { id: s2, TEXT: b.txt, LABEL: second, MARK: ${mark('s2')} }`,
      `  - { id: s3, TEXT: c.txt, LABEL: third, MARK: ${mark('s3')} }`,
      'steps:',
      '  upper:',
      '    image: debian:bookworm-slim',
      '    retry: 1',
      "    env: { TAG: '$SAMPLE/$LABEL {x}' }",
      '    command:',
      '      - awk',
      '      - >-',
      '        BEGIN { if ((getline line < ENVIRON["MARK"]) <= 0) {',
      '        print "first attempt" > ENVIRON["MARK"]; failed = 1; exit 1 } }',
      '        { print toupper($$0) } END { if (!failed) print ENVIRON["TAG"] }',
      '      - $TEXT',
      '    stdout: out/upper.txt',
      '    outputs: { UPPER: out/upper.txt }',
      '  count:',
      '    image: debian:bookworm-slim',
      '    command:',
      '      - awk',
      '      - -v',
      '      - sample=$SAMPLE',
      '      - -v',
      '      - suffix=$SUFFIX',
      '      - \'END { print sample "\\t" NR "\\t" suffix > "n.tsv" }\'',
      '      - $UPPER',
      '    outputs: { COUNTS: n.tsv }',
      '  table:',
      '    aggregate: true',
      '    image: debian:bookworm-slim',
      '    command: [awk, \'{ f = $$0; while ((getline line < f) > 0) print line > "table.tsv" }\', $COUNTS]',
      '    outputs: { TABLE: table.tsv }',
      'results:',
      '  count: { from: n.tsv, format: tsv, header: [sample, lines, suffix] }',
      '',
    ].join('\n'),
  );
  return { file, home: join(dir, 'home') };
}

/**
 * A pipeline whose command items mix text and variables, so the state machine formats them
 * (States.Format into a Batch parameter of their own): several variables in one item, a
 * variable followed by name characters, literal `$`, quotes, braces, balanced parentheses,
 * unicode and `Ref::` text. aws-local-stepfunctions 3.0.0 drops every backslash from a
 * States.Format result and counts parentheses inside string literals as nesting, so backslashes
 * and unbalanced parentheses are left to Strand's own property test (arguments.test.ts).
 */
function formatted(): { file: string; home: string } {
  const dir = mkdtempSync(join(tmpdir(), 'strand-port-fmt-'));
  const file = join(dir, 'pipeline.yaml');
  writeFileSync(
    file,
    [
      'name: formatted',
      'continue_on_failure: false',
      'max_concurrency: 1',
      'params:',
      '  WHO: "it\'s {me} (42) é"',
      '  N: "7"',
      'samples:',
      '  - { id: s1, TAG: "a b" }',
      '  - { id: s2, TAG: "x{}y" }',
      'steps:',
      '  args:',
      '    image: debian:bookworm-slim',
      '    command:',
      '      - sh',
      '      - -c',
      '      - \'printf "%s\\n" "$$@" "$$NOTE" > args.txt\'',
      '      - sh',
      "      - '${SAMPLE}_R1.fq'",
      "      - '--who=$WHO/$TAG'",
      "      - '$$1 Ref::N {} (x) '' \"q\" 漢'",
      '      - Ref::N',
      "      - '$N$N'",
      "      - '${N}abc'",
      '      - $TAG',
      "    env: { NOTE: '[$SAMPLE] {$N} ''$$''' }",
      '    outputs: { ARGS: args.txt }',
      '',
    ].join('\n'),
  );
  return { file, home: join(dir, 'home') };
}

/** The Task calls of one resource, flattened (to check that a comparison is not vacuous). */
function calls(tasks: Record<string, TaskCall[]>, resource: TaskCall['resource']): string[] {
  return Object.entries(tasks)
    .filter(([, list]) => list.some((c) => c.resource === resource))
    .map(([key]) => key)
    .sort();
}

/**
 * Both engines agree on everything, but how many times an aggregate step beside the samples
 * looked for the samples it reads before they had ended (timing: see `settled`).
 */
function expectSameRun(r: BothRuns): void {
  const [peer, strand] = [settled(r.peer), settled(r.strand)];
  expect(peer.outcome).toEqual(strand.outcome);
  expect(peer.tasks).toEqual(strand.tasks);
  expect(peer.entered).toEqual(strand.entered);
}

describe('examples/word-count on Strand and on aws-local-stepfunctions', () => {
  it('all samples succeed (Distributed Map, nothing to tolerate): same output, Task calls and states entered', async () => {
    const { file, home } = wordCount();
    const r = await runOnBothEngines(file, home, 'port', ['--samples', 'alpha,beta']);
    expect(r.code, r.err).toBe(0);
    expect(r.strand.outcome.status).toBe('SUCCEEDED');
    const steps = ['words', 'count.sorted', 'count.stats', 'frequent.tally', 'frequent.keep'];
    expect(calls(r.strand.tasks, 'batch')).toEqual(
      [
        ...['alpha', 'beta'].flatMap((s) => steps.map((step) => `${step} | ${s}`)),
        'summary | _all',
      ].sort(),
    );
    expect(r.strand.entered['alpha count[1]']).toEqual([
      'count.stats',
      'count.stats: publish',
      'count.stats: done',
    ]);
    expectSameRun(r);
  });

  it('continue_on_failure: false — a failing sample fails the run with the same error and cause on both', async () => {
    // One sample at a time, so both engines meet the same jobs in the same order (with several
    // at once, a Map stops the others when one fails, and which jobs ran depends on timing).
    const { file, home } = wordCount((t) =>
      t.replace('steps:', 'continue_on_failure: false\nmax_concurrency: 1\nsteps:'),
    );
    const r = await runOnBothEngines(file, home, 'port', ['--samples', 'alpha,beta,empty']);
    expect(r.code).toBe(1);
    expect(r.strand.outcome.status).toBe('FAILED');
    expect(r.strand.outcome.error).toBe('Strand.StepFailed');
    expect(r.strand.outcome.cause).toMatch(
      /^step words failed for sample empty: exit code 3; log: \S+\.log; partial outputs: /,
    );
    // The failed job's answer is Step Functions' shape: States.TaskFailed, the job as Cause.
    const failed = r.strand.tasks['words | empty'][0].result as { error: string; cause: string };
    expect(failed.error).toBe('States.TaskFailed');
    expect(JSON.parse(failed.cause)).toMatchObject({ Status: 'FAILED' });
    // The summary reads count's output only, so it waits beside the samples for their count:
    // the Map is `Each sample`, in a Parallel state with the summary.
    expect(r.strand.entered['empty Each sample']).toEqual([
      'words: run?',
      'words',
      'words: failed',
      'words: stop',
    ]);
    expectSameRun(r);
  });

  it('continue_on_failure (default) with a failing sample: aws-local-stepfunctions lacks ToleratedFailurePercentage, so it stops at the failure Strand lists and never reaches "Samples failed"', async () => {
    // Strand (like Step Functions' Distributed Map with ToleratedFailurePercentage: 100) lets
    // alpha and beta finish, runs the summary and fails in "Samples failed" listing the empty
    // sample. aws-local-stepfunctions 3.0.0 has no ToleratedFailurePercentage: the empty
    // sample's failure fails its Map, and the execution, at once. Both must still agree on
    // that failure, on everything the peer did run, and on the failing sample's path.
    const { file, home } = wordCount();
    const r = await runOnBothEngines(file, home, 'port', ['--samples', 'alpha,beta,empty']);
    expect(r.code).toBe(1);
    const { strand: a, peer: b } = r;
    expect(a.outcome.status).toBe('FAILED');
    expect(a.outcome.error).toBe('Strand.SamplesFailed');
    expect(a.entered['(run) top']).toEqual([
      'Preflight',
      'Samples',
      'Samples and aggregates',
      'Aggregates failed?',
      'Collect',
      'Outcome',
      'Samples failed',
    ]);
    // The summary (it reads count's output only) ran beside the samples, without `empty`.
    expect(settled(a).entered['(run) Aggregates[0]']).toEqual([
      'Aggregates: start',
      'summary: run?',
      'summary: samples',
      'summary: samples ready?',
      'summary',
      'summary: publish',
      'Aggregates: done',
    ]);

    expect(b.outcome.status).toBe('FAILED');
    expect(b.outcome.error).toBe('Strand.StepFailed');
    // The peer fails with the Cause Strand's sync-failure gave for that sample, which is the
    // line Strand's "Samples failed" lists for it.
    const syncFailure = a.tasks['words: failed | empty'][0].result as {
      output: { Payload: { Cause: string } };
    };
    expect(b.outcome.cause).toBe(syncFailure.output.Payload.Cause);
    expect(a.outcome.cause).toBe(
      `1 of 3 samples failed:\n  empty: ${b.outcome.cause!.replace(/^step /, '')}`,
    );
    expect(b.entered['(run) top']).toEqual(['Preflight', 'Samples', 'Samples and aggregates']);
    expect(b.entered['empty Each sample']).toEqual(a.entered['empty Each sample']);
    // The other samples were cut short there: whatever they did is a prefix of Strand's path,
    // and every Task call the peer made matches Strand's call for that state and sample. (The
    // summary's wait for the samples was cut short too: how often it had looked is timing.)
    const [sa, sb] = [settled(a), settled(b)];
    for (const [key, states] of Object.entries(sb.entered)) {
      if (key.startsWith('(run) Aggregates')) continue;
      expect(sa.entered[key].slice(0, states.length), key).toEqual(states);
    }
    for (const [key, list] of Object.entries(sb.tasks)) {
      if (key.startsWith('summary: samples')) continue;
      expect(sa.tasks[key].slice(0, list.length), key).toEqual(list);
    }
  });
});

describe('command items formatted by the state machine, on Strand and on aws-local-stepfunctions', () => {
  it('both build the same arguments, and the tool receives them as written', async () => {
    const { file, home } = formatted();
    const r = await runOnBothEngines(file, home, 'fmt');
    expect(r.code, r.err).toBe(0);
    const params = (r.strand.tasks['args | s2'][0].input as JsonObject).Parameters;
    expect(params).toEqual({
      arg4: 's2_R1.fq',
      arg5: "--who=it's {me} (42) é/x{}y",
      arg6: '$1 Ref::N {} (x) \' "q" 漢',
      arg7: 'Ref::N',
      arg8: '77',
      arg9: '7abc',
      TAG: 'x{}y',
    });
    expectSameRun(r);
    const received = readFileSync(join(home, 'store/formatted/s1/args/args.txt'), 'utf8');
    expect(received.split('\n')).toEqual([
      's1_R1.fq',
      "--who=it's {me} (42) é/a b",
      '$1 Ref::N {} (x) \' "q" 漢',
      'Ref::N',
      '77',
      '7abc',
      'a b',
      "[s1] {7} '$'",
      '',
    ]);
  });
});

describe('a pipeline of two per-sample steps and an aggregate on Strand and on aws-local-stepfunctions', () => {
  it('all samples succeed, one after a retry (continue_on_failure: false, max_concurrency: 2): same output, Task calls and states entered', async () => {
    const { file, home } = twoSteps(true);
    const r = await runOnBothEngines(file, home, 'port');
    expect(r.code, r.err).toBe(0);
    expect(r.strand.outcome.status).toBe('SUCCEEDED');
    expect(calls(r.strand.tasks, 'batch')).toEqual(
      [
        ...['s1', 's2', 's3'].flatMap((s) => [`upper | ${s}`, `count | ${s}`]),
        'table | _all',
      ].sort(),
    );
    // The env value built with States.Format, as both engines resolved it.
    const env = (r.strand.tasks['upper | s2'][0].input as JsonObject).ContainerOverrides as {
      Environment: { Name: string; Value: string }[];
    };
    expect(env.Environment.find((e) => e.Name === 'TAG')?.Value).toBe('s2/second {x}');
    const vars = (r.strand.outcome.output as { vars: Record<string, string> }).vars;
    expect(readFileSync(vars.TABLE, 'utf8')).toBe('s1\t3\tend\ns2\t2\tend\ns3\t4\tend\n');
    // s1's first attempt failed and the Task's Retry ran it again: two calls, answered in order.
    expect(
      r.strand.tasks['upper | s1'].map((c) => ('output' in c.result ? 'ok' : c.result.error)),
    ).toEqual(['States.TaskFailed', 'ok']);
    expect(r.strand.tasks['upper | s2']).toHaveLength(1);
    expectSameRun(r);
  });

  it('steps side by side (a Parallel state in each sample), on both', async () => {
    const { file, home } = sideBySide();
    const r = await runOnBothEngines(file, home, 'port');
    expect(r.code, r.err).toBe(0);
    // The table reads count's output only: it waits beside the samples (the Map is `Each
    // sample`) for every sample's count, not for chars.
    expect(r.strand.entered['s2 Each sample']).toEqual([
      'steps upper, count, chars',
      'Sample done',
    ]);
    expect(r.strand.entered['s2 steps upper, count, chars[0]']).toEqual([
      'upper: run?',
      'upper',
      'upper: publish',
      'count: run?',
      'count',
      'count: publish',
      'steps upper, count, chars: 1 done',
    ]);
    expect(r.strand.entered['s2 steps upper, count, chars[1]']).toEqual([
      'chars: run?',
      'chars',
      'chars: publish',
      'steps upper, count, chars: 2 done',
    ]);
    expectSameRun(r);
  });

  it('--to upper: each sample passes over count, and the aggregate is skipped, on both', async () => {
    const { file, home } = twoSteps();
    const r = await runOnBothEngines(file, home, 'port', ['--to', 'upper']);
    expect(r.code, r.err).toBe(0);
    expect(r.strand.entered['s1 Samples']).toEqual([
      'upper: run?',
      'upper',
      'upper: publish',
      'count: run?',
      'Sample done',
    ]);
    expect(r.strand.entered['(run) top']).toEqual([
      'Preflight',
      'Samples',
      'Collect',
      'All samples?',
      'Outcome',
      'Done',
    ]);
    expectSameRun(r);
  });

  it('--from count after a full run: earlier outputs preloaded from the store, cached jobs published from their manifests, on both', async () => {
    const { file, home } = twoSteps();
    const full = await runOnBothEngines(file, home, 'full');
    expect(full.code, full.err).toBe(0);
    const r = await runOnBothEngines(file, home, 'again', ['--from', 'count']);
    expect(r.code, r.err).toBe(0);
    expect(r.strand.entered['s3 Samples']).toEqual([
      'upper: run?',
      'count: run?',
      'count',
      'count: publish',
      'Sample done',
    ]);
    const job = r.strand.tasks['count | s3'][0].result as { output: { Tags: JsonObject } };
    expect(job.output.Tags['strand:cached']).toBe('true');
    expectSameRun(r);
  });

  it('--from count in an empty home: the preflight function fails, and both report its error the same way', async () => {
    const { file, home } = twoSteps();
    const r = await runOnBothEngines(file, home, 'port', ['--from', 'count']);
    expect(r.code).toBe(1);
    expect(r.strand.outcome.status).toBe('FAILED');
    expect(r.strand.outcome.error).toBe('Strand.MissingInputs');
    expect(JSON.parse(r.strand.outcome.cause!)).toEqual({
      errorType: 'Strand.MissingInputs',
      errorMessage: expect.stringMatching(/^--from count needs outputs that are not in the store/),
    });
    expect(r.strand.entered).toEqual({ '(run) top': ['Preflight'] });
    expectSameRun(r);
  });
});
