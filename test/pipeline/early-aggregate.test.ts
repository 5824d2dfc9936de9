/**
 * Aggregate steps wait only for the per-sample steps they read: one that reads only `qc`
 * starts once every sample's qc has ended, beside the samples' later steps, and gets the
 * samples that got through qc. Order is asserted from the Batch records and from files the
 * test makes, never from durations: `slow` waits for a file the test creates only once it has
 * seen the aggregate step's outputs published, so a run whose aggregate waited for every
 * sample would never end.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validate } from '../../src/asl/validate.js';
import { compilePipeline } from '../../src/pipeline/compile.js';
import { loadPipeline } from '../../src/pipeline/load.js';
import {
  inlinePipeline,
  processesWith,
  resultsJson,
  spawnStrand,
  strand,
  waitUntil,
} from './cli.js';

const aslValidator = createRequire(import.meta.url)('asl-validator') as (definition: unknown) => {
  isValid: boolean;
  errors: unknown[];
};

/**
 * Per sample: `qc` (fails for the samples named in $BREAK until $FIXED holds a file named
 * after them; waits for the gate, $GATE holding `open`, for those named in $HOLD), then `slow`
 * (waits for the gate; fails for the samples named in $SLOW_FAILS). Over all samples: `report`
 * reads only qc's output; `table` reads slow's.
 */
function early(samples = ['s1', 's2', 's3']) {
  const p = inlinePipeline([
    'name: early',
    `samples: [ ${samples.map((s) => `{ id: ${s} }`).join(', ')} ]`,
    'params: { GATE: "", FIXED: "", BREAK: none, SLOW_FAILS: none, HOLD: none }',
    'defaults: { vcpus: 0.25, memory: 64MiB }',
    'steps:',
    '  qc:',
    '    image: debian:bookworm-slim',
    '    command:',
    '      - sh',
    '      - -c',
    '      - \'case " $$2 " in *" $$1 "*) [ -e "$$3/$$1" ] || exit 4;; esac; case " $$4 " in *" $$1 "*) i=0; while [ ! -e "$$5/open" ]; do i=$$((i+1)); [ $$i -gt 600 ] && exit 1; sleep 0.1; done;; esac; echo "qc $$1" > qc.txt\'',
    '      - sh',
    '      - $SAMPLE',
    '      - $BREAK',
    '      - $FIXED',
    '      - $HOLD',
    '      - $GATE',
    '    outputs: { QC: qc.txt }',
    '  slow:',
    '    image: debian:bookworm-slim',
    '    command:',
    '      - sh',
    '      - -c',
    '      - \'i=0; while [ ! -e "$$1/open" ]; do i=$$((i+1)); [ $$i -gt 600 ] && exit 1; sleep 0.1; done; case " $$3 " in *" $$4 "*) exit 5;; esac; cp "$$2" slow.txt\'',
    '      - sh',
    '      - $GATE',
    '      - $QC',
    '      - $SLOW_FAILS',
    '      - $SAMPLE',
    '    outputs: { SLOW: slow.txt }',
    '  report:',
    '    aggregate: true',
    '    image: debian:bookworm-slim',
    '    command: [sh, -c, \'while read f; do cat "$$f"; done < "$$1" > report.txt\', sh, $QC]',
    '    outputs: { REPORT: report.txt }',
    '  table:',
    '    aggregate: true',
    '    image: debian:bookworm-slim',
    '    command: [sh, -c, \'while read f; do cat "$$f"; done < "$$1" > table.txt\', sh, $SLOW]',
    '    outputs: { TABLE: table.txt }',
  ]);
  const gate = join(p.dir, 'gate');
  const fixed = join(p.dir, 'fixed');
  mkdirSync(gate);
  mkdirSync(fixed);
  const store = join(p.home, 'store', 'early');
  return {
    ...p,
    gate,
    fixed,
    args: (...more: string[]) => [
      '--home',
      p.home,
      '--param',
      `GATE=${gate}`,
      '--param',
      `FIXED=${fixed}`,
      ...more,
    ],
    open: () => writeFileSync(join(gate, 'open'), ''),
    /** The manifest of a step of a sample (`_all`: over all samples), if there is one. */
    manifest: (sample: string, step: string) => {
      const file = join(store, sample, step, '_strand.json');
      if (!existsSync(file)) return undefined;
      return JSON.parse(readFileSync(file, 'utf8')) as {
        execution: string;
        status: string;
        samples?: string[];
      };
    },
    output: (step: string, file: string) => readFileSync(join(store, '_all', step, file), 'utf8'),
  };
}

interface JobInfo {
  jobName: string;
  status: string;
  tags?: Record<string, string>;
  attempts: { startedAt?: number; stoppedAt?: number }[];
}

/** The Batch jobs of an execution, by `step sample`. */
async function jobsOf(home: string, execution: string): Promise<Map<string, JobInfo>> {
  const r = await strand('batch', 'ls', '--home', home, '--json');
  expect(r.code, r.err).toBe(0);
  const list = (JSON.parse(r.out) as { jobSummaryList: JobInfo[] }).jobSummaryList;
  return new Map(
    list
      .filter((j) => j.tags?.['strand:execution'] === execution)
      .map((j) => [`${j.tags?.['strand:step']} ${j.tags?.['strand:sample']}`, j]),
  );
}

describe('an aggregate step that reads an early per-sample step', () => {
  it('starts once every sample has ended that step, while a later step of each sample still runs', async () => {
    const p = early();
    const run = strand('run', p.file, ...p.args('--name', 'first'));
    // The report is published while every sample's `slow` waits for the gate: only then is it
    // opened. An aggregate step that waited for every sample would never be published here.
    await waitUntil(
      'the report published before any sample ended',
      () => p.manifest('_all', 'report')?.status === 'SUCCEEDED',
      45_000,
    );
    for (const s of ['s1', 's2', 's3']) expect(p.manifest(s, 'slow'), s).toBeUndefined();
    p.open();
    const r = await run;
    expect(r.code, r.err).toBe(0);
    expect(p.output('report', 'report.txt')).toBe('qc s1\nqc s2\nqc s3\n');
    expect(p.output('table', 'table.txt')).toBe('qc s1\nqc s2\nqc s3\n');

    // The Batch records say the same: the report ran before any slow job stopped, and after
    // every qc job; the table once every slow job had ended.
    const jobs = await jobsOf(p.home, 'first');
    const attempt = (key: string) => jobs.get(key)!.attempts.at(-1)!;
    const report = attempt('report _all');
    const table = attempt('table _all');
    for (const s of ['s1', 's2', 's3']) {
      expect(report.startedAt!, s).toBeGreaterThanOrEqual(attempt(`qc ${s}`).stoppedAt!);
      expect(report.stoppedAt!, s).toBeLessThan(attempt(`slow ${s}`).stoppedAt!);
      expect(table.startedAt!, s).toBeGreaterThanOrEqual(attempt(`slow ${s}`).stoppedAt!);
    }

    // Run again (twice: the gate's directory is every job's input, and it changed after qc
    // ran), every job is from the cache, the early aggregate step too.
    for (const name of ['again', 'cached']) {
      const again = await strand('run', p.file, ...p.args('--name', name));
      expect(again.code, again.err).toBe(0);
    }
    const cached = await resultsJson(p.home, '--execution', 'cached');
    expect(cached.map((row) => (row as { status: string }).status)).toEqual(
      Array(8).fill('CACHED'),
    );
    // And the dry run, which builds each job from the compiled Task, says so too.
    const dry = await strand('run', p.file, ...p.args('--dry-run', '--json'));
    expect(dry.code, dry.err).toBe(0);
    const planned = (JSON.parse(dry.out) as { jobs: { action: string }[] }).jobs;
    expect(planned.map((j) => j.action)).toEqual(Array(8).fill('cached'));
  }, 120_000);

  it('`strand graph` and `strand run --dry-run` show it beside the samples', async () => {
    const p = early();
    const graph = await strand('graph', p.file);
    expect(graph.code, graph.err).toBe(0);
    expect(graph.out).toBe(
      [
        'early: per sample',
        '  qc             sh           0.25 vCPU, 64 MiB  → QC',
        '  slow           sh           0.25 vCPU, 64 MiB  ← QC  → SLOW',
        'meanwhile once for all samples',
        "  report         sh           0.25 vCPU, 64 MiB  ← QC  → REPORT  (once every sample's qc has ended)",
        'then once for all samples',
        '  table          sh           0.25 vCPU, 64 MiB  ← SLOW  → TABLE',
        '',
      ].join('\n'),
    );
    const dry = await strand('run', p.file, ...p.args('--dry-run', '--json'));
    expect(dry.code, dry.err).toBe(0);
    const jobs = (JSON.parse(dry.out) as { jobs: { sample: string; job: string }[] }).jobs;
    expect(jobs.map((j) => `${j.job} ${j.sample}`)).toEqual([
      'qc s1',
      'slow s1',
      'qc s2',
      'slow s2',
      'qc s3',
      'slow s3',
      'report _all',
      'table _all',
    ]);
  });

  it('compiles to plain ASL: valid for Strand and asl-validator, the samples and the early step side by side', () => {
    const p = early();
    const { spec } = loadPipeline(p.file);
    const definition = compilePipeline(spec).definition as unknown as {
      States: Record<string, { Type: string; Branches?: { StartAt: string }[] }>;
    };
    expect(validate(definition as never)).toEqual([]);
    const checked = aslValidator(structuredClone(definition));
    expect(checked.errors).toEqual([]);
    expect(checked.isValid).toBe(true);
    // `Samples` starts the sample ledger; then the samples and the early step side by side.
    expect(definition.States.Samples.Type).toBe('Task');
    const side = definition.States['Samples and aggregates'];
    expect(side.Type).toBe('Parallel');
    expect(side.Branches!.map((b) => b.StartAt)).toEqual(['Each sample', 'Aggregates']);
  });
});

describe('a sample that fails before the steps an early aggregate step reads have ended', () => {
  it('is left out of it; the run ends in Strand.SamplesFailed; redrive brings it in', async () => {
    const p = early();
    p.open();
    // s3 fails in qc (until fixed); s2 gets through qc, then fails in slow.
    const r = await strand(
      'run',
      p.file,
      ...p.args('--name', 'broken', '--param', 'BREAK=s3', '--param', 'SLOW_FAILS=s2'),
    );
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/error: Strand\.SamplesFailed\n2 of 3 samples failed:\n/);
    expect(r.err).toMatch(/\n {2}s2: slow failed for sample s2: exit code 5; /);
    expect(r.err).toMatch(/\n {2}s3: qc failed for sample s3: exit code 4; /);
    // The report read qc only: s2 got through it. The table read slow: only s1 did.
    expect(p.output('report', 'report.txt')).toBe('qc s1\nqc s2\n');
    expect(p.output('table', 'table.txt')).toBe('qc s1\n');

    // Fixed, the redrive runs the failed samples again from the start of the samples: the
    // report now gets s3 (its record of s3's first failure is gone), and still s2.
    writeFileSync(join(p.fixed, 's3'), '');
    const redrive = await strand('redrive', 'broken', '--home', p.home);
    expect(redrive.code).toBe(1);
    expect(redrive.err).toMatch(
      /error: Strand\.SamplesFailed\n1 of 3 samples failed:\n {2}s2: slow/,
    );
    expect(p.output('report', 'report.txt')).toBe('qc s1\nqc s2\nqc s3\n');
    expect(p.output('table', 'table.txt')).toBe('qc s1\nqc s3\n');

    // Each step knows the samples it was given: a run over s1 alone says what each loses.
    const fewer = await strand('run', p.file, ...p.args('--name', 'fewer', '--samples', 's1'));
    expect(fewer.code, fewer.err).toBe(0);
    expect(fewer.err).toMatch(
      /note: report \(all samples\) is published again from 1 sample\(s\); the outputs it replaces \(execution broken\) covered 3, including s2, s3\n/,
    );
    expect(fewer.err).toMatch(
      /note: table \(all samples\) is published again from 1 sample\(s\); the outputs it replaces \(execution broken\) covered 2, including s3\n/,
    );
  }, 120_000);

  it('with no sample through qc, it is skipped (SKIPPED, no sample succeeded) and so is the rest', async () => {
    const p = early(['s1', 's2']);
    p.open();
    const r = await strand('run', p.file, ...p.args('--name', 'none', '--param', 'BREAK=s1 s2'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/2 of 2 samples failed/);
    expect(r.err).toMatch(
      /note: skipped report \(all samples\): no sample succeeded; what they published before is left as it was/,
    );
    expect(r.err).toMatch(
      /note: skipped table \(all samples\): no sample succeeded; what they published before is left as it was/,
    );
    const rows = (await resultsJson(p.home, '--execution', 'none', '--sample', '_all')) as {
      step: string;
      status: string;
      cause: string;
    }[];
    expect(rows.map((x) => [x.step, x.status, x.cause]).sort()).toEqual([
      ['report', 'SKIPPED', 'no sample succeeded'],
      ['table', 'SKIPPED', 'no sample succeeded'],
    ]);
  }, 60_000);

  it('an early aggregate step that fails does not stop the samples; the run then fails with its error', async () => {
    const p = inlinePipeline([
      'name: early-fail',
      'samples: [ { id: s1 }, { id: s2 } ]',
      'defaults: { vcpus: 0.25, memory: 64MiB }',
      'steps:',
      '  qc:',
      '    image: debian:bookworm-slim',
      '    command: [sh, -c, \'echo "$$1" > qc.txt\', sh, $SAMPLE]',
      '    outputs: { QC: qc.txt }',
      '  later:',
      '    image: debian:bookworm-slim',
      '    command: [cp, $QC, later.txt]',
      '    outputs: { LATER: later.txt }',
      '  report:',
      '    aggregate: true',
      '    image: debian:bookworm-slim',
      '    command: [sh, -c, "exit 7", sh, $QC]',
    ]);
    const r = await strand('run', p.file, '--home', p.home, '--name', 'ef');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /error: Strand\.StepFailed\nstep report failed for all samples: exit code 7/,
    );
    for (const s of ['s1', 's2'])
      expect(existsSync(join(p.home, 'store', 'early-fail', s, 'later', 'later.txt')), s).toBe(
        true,
      );
  }, 60_000);
});

describe('--from, --to and --only with an early aggregate step', () => {
  it('keep their meaning on the graph', async () => {
    const p = early();
    p.open();
    const full = await strand('run', p.file, ...p.args('--name', 'full'));
    expect(full.code, full.err).toBe(0);
    const sliced = async (name: string, ...flags: string[]) => {
      const r = await strand('run', p.file, ...p.args('--no-cache', '--name', name, ...flags));
      expect(r.code, `${name}: ${r.err}`).toBe(0);
      return r;
    };
    // The gate closed again: a slice that ran `slow` would fail.
    rmSync(join(p.gate, 'open'));

    // --to report: qc and the report; slow and the table are left out.
    const to = await sliced('to', '--to', 'report');
    expect(to.err).toMatch(/2 of 4 step\(s\) \(--to report\)/);
    expect(p.manifest('s1', 'qc')?.execution).toBe('to');
    expect(p.manifest('_all', 'report')?.execution).toBe('to');
    expect(p.manifest('s1', 'slow')?.execution).toBe('full');
    expect(p.manifest('_all', 'table')?.execution).toBe('full');

    // --only report: the report alone, over qc's outputs in the store.
    const only = await sliced('only', '--only', 'report');
    expect(only.err).toMatch(/1 of 4 step\(s\) \(--only report\)/);
    expect(p.manifest('_all', 'report')?.execution).toBe('only');
    expect(p.manifest('s2', 'qc')?.execution).toBe('to');
    expect(p.output('report', 'report.txt')).toBe('qc s1\nqc s2\nqc s3\n');

    // --from slow: slow and the table; qc and the report are not run.
    p.open();
    const from = await sliced('from', '--from', 'slow');
    expect(from.err).toMatch(/2 of 4 step\(s\) \(--from slow\)/);
    expect(p.manifest('s3', 'slow')?.execution).toBe('from');
    expect(p.manifest('_all', 'table')?.execution).toBe('from');
    expect(p.manifest('_all', 'report')?.execution).toBe('only');
    expect(p.manifest('s3', 'qc')?.execution).toBe('to');
  }, 120_000);
});

describe('Ctrl-C while an early aggregate step waits for its samples', () => {
  it('the run stops at once (ABORTED, exit 130), and redrive carries the wait on to the end', async () => {
    const p = early();
    // Every sample's qc waits for the gate: the report is waiting for them when Ctrl-C comes.
    const run = spawnStrand(
      ['run', p.file, ...p.args('--name', 'int', '--param', 'HOLD=s1 s2 s3')],
      { STRAND_GRACE_SECONDS: '1' },
    );
    await waitUntil('every qc job to run', () => processesWith(p.gate, 'sh').length === 3);
    run.kill('SIGINT');
    const first = await run.done;
    expect(first.code, first.err).toBe(130);
    expect(first.err).toMatch(/int: ABORTED/);
    expect(p.manifest('_all', 'report')).toBeUndefined();
    p.open();
    const again = await strand('redrive', 'int', '--home', p.home);
    expect(again.code, again.err).toBe(0);
    expect(again.err).toMatch(/int: SUCCEEDED/);
    expect(p.output('report', 'report.txt')).toBe('qc s1\nqc s2\nqc s3\n');
    expect(p.output('table', 'table.txt')).toBe('qc s1\nqc s2\nqc s3\n');
  }, 120_000);
});
