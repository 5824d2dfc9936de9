/**
 * `strand run` end to end with real processes (awk, sort, uniq) on examples/word-count: outputs
 * at their predictable places with manifests, results rows and typed metrics, a failing sample
 * that does not stop the others, caching, slicing, redrive, and injection-shaped values.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { attemptsIn, exampleWorkspace, inlinePipeline, resultsJson, strand } from './cli.js';

interface Row {
  execution: string;
  sample: string;
  step: string;
  status: string;
  exitCode: number | null;
  cause: string | null;
}

async function rows(home: string, execution: string): Promise<Row[]> {
  return (await resultsJson(home, '--execution', execution)) as Row[];
}

function status(list: Row[], sample: string, step: string): string | undefined {
  return list.find((r) => r.sample === sample && r.step === step)?.status;
}

/** How many job attempts have started in a home. */
const attempts = (home: string): number => attemptsIn(home).length;

const STEPS = ['words', 'count.sorted', 'count.stats', 'frequent.tally', 'frequent.keep'];

describe('strand run (examples/word-count)', () => {
  const ws = exampleWorkspace('word-count');
  let first: { code: number; out: string; err: string };

  beforeAll(async () => {
    first = await strand('run', ws.file, '--home', ws.home, '--name', 'first');
  });

  it('fails (exit 1) naming the failed sample, its step and its log; the others finish', async () => {
    expect(first.code).toBe(1);
    expect(first.err).toMatch(/1 of 3 samples failed/);
    expect(first.err).toMatch(/empty: words failed for sample empty: exit code 3; log: \S+\.log/);
    const log = /log: (\S+\.log)/.exec(first.err)![1];
    expect(readFileSync(log, 'utf8')).toContain('no words in the input');
    const list = await rows(ws.home, 'first');
    for (const sample of ['alpha', 'beta'])
      for (const step of STEPS)
        expect(status(list, sample, step), `${sample} ${step}`).toBe('SUCCEEDED');
    expect(status(list, 'empty', 'words')).toBe('FAILED');
    expect(list.find((r) => r.sample === 'empty' && r.step === 'words')!.exitCode).toBe(3);
    expect(status(list, 'empty', 'count.stats')).toBeUndefined();
    expect(status(list, '_all', 'summary')).toBe('SUCCEEDED');
  });

  it('publishes every output at {store}/{pipeline}/{sample}/{step}/ with a manifest holding its sha256', () => {
    const store = join(ws.home, 'store', 'word-count');
    for (const sample of ['alpha', 'beta']) {
      for (const step of STEPS) {
        const manifest = JSON.parse(
          readFileSync(join(store, sample, step, '_strand.json'), 'utf8'),
        ) as {
          status: string;
          execution: string;
          outputs: Record<string, { files: { path: string; sha256: string; size: number }[] }>;
        };
        expect(manifest.status).toBe('SUCCEEDED');
        expect(manifest.execution).toBe('first');
        for (const out of Object.values(manifest.outputs)) {
          for (const f of out.files) {
            const data = readFileSync(join(store, sample, step, f.path));
            expect(createHash('sha256').update(data).digest('hex')).toBe(f.sha256);
            expect(data.length).toBe(f.size);
          }
        }
      }
    }
    expect(readFileSync(join(store, 'alpha', 'count.sorted', 'sorted.txt'), 'utf8')).toMatch(
      /^and\nbrown\ndog\ndog\n/,
    );
    // The failed sample's partial sync: a FAILED manifest, its missing output listed.
    const failed = JSON.parse(
      readFileSync(join(store, 'empty', 'words', '_strand.json'), 'utf8'),
    ) as { status: string; outputs: Record<string, { missing?: boolean }> };
    expect(failed.status).toBe('FAILED');
    expect(failed.outputs.WORDS.missing).toBe(true);
  });

  it('the aggregate step sees the succeeded samples only, and its table lands in typed columns', async () => {
    const summary = readFileSync(
      join(ws.home, 'store', 'word-count', '_all', 'summary', 'summary.tsv'),
      'utf8',
    );
    expect(summary).toBe(
      'sample\twords\tdistinct\tmean_length\nalpha\t16\t11\t3.750\nbeta\t23\t18\t3.870\n',
    );
    const metrics = await resultsJson(
      ws.home,
      '--pipeline',
      'word-count',
      '--step',
      'summary',
      '--metrics',
    );
    expect(metrics).toEqual([
      expect.objectContaining({ execution: 'first', words: 16, distinct: 11, mean_length: 3.75 }),
      expect.objectContaining({ execution: 'first', words: 23, distinct: 18, mean_length: 3.87 }),
    ]);
    const db = new Database(join(ws.home, 'results.db'), { readonly: true });
    const tables = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'm_%'")
      .all() as { name: string }[];
    const summaryTable = tables.find((t) => t.name.includes('summary'))!.name;
    const types = db
      .prepare(`SELECT typeof(words) AS w, typeof(mean_length) AS m FROM "${summaryTable}" LIMIT 1`)
      .get() as { w: string; m: string };
    db.close();
    expect(types).toEqual({ w: 'integer', m: 'real' });

    const picked = await strand(
      'results',
      '--home',
      ws.home,
      '--pipeline',
      'word-count',
      '--step',
      'summary',
      '--metrics',
      '--columns',
      'sample,words',
      '--format',
      'csv',
    );
    expect(picked.out).toBe('sample,words\nalpha,16\nbeta,23\n');
    const unknown = await strand(
      'results',
      '--home',
      ws.home,
      '--pipeline',
      'word-count',
      '--columns',
      'sample,wrods',
    );
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain(
      '--columns: no column "wrods"; the columns are: execution, sample, step',
    );
  });

  it('a second run is served from the cache: no job runs again', async () => {
    const before = attempts(ws.home);
    const again = await strand('run', ws.file, '--home', ws.home, '--name', 'second');
    expect(again.code).toBe(1); // the empty sample still fails, and runs again
    expect(attempts(ws.home)).toBe(before + 1);
    const list = await rows(ws.home, 'second');
    for (const sample of ['alpha', 'beta'])
      for (const step of STEPS) expect(status(list, sample, step)).toBe('CACHED');
    expect(status(list, '_all', 'summary')).toBe('CACHED');
    expect(status(list, 'empty', 'words')).toBe('FAILED');
  });

  it('--no-cache runs every job again', async () => {
    const before = attempts(ws.home);
    const r = await strand(
      'run',
      ws.file,
      '--home',
      ws.home,
      '--name',
      'nocache',
      '--no-cache',
      '--samples',
      'alpha',
    );
    expect(r.code).toBe(0);
    expect(attempts(ws.home)).toBe(before + STEPS.length + 1);
    expect(status(await rows(ws.home, 'nocache'), 'alpha', 'words')).toBe('SUCCEEDED');
  });

  it('--only runs one step on the outputs of an earlier run, nothing before or after it', async () => {
    const r = await strand(
      'run',
      ws.file,
      '--home',
      ws.home,
      '--name',
      'only',
      '--only',
      'frequent',
      '--samples',
      'alpha,beta',
      '--no-cache',
    );
    expect(r.code).toBe(0);
    const list = await rows(ws.home, 'only');
    expect(list.map((x) => `${x.sample} ${x.step}`).sort()).toEqual([
      'alpha frequent.keep',
      'alpha frequent.tally',
      'beta frequent.keep',
      'beta frequent.tally',
    ]);
  });

  it('--from/--to runs the slice only', async () => {
    const r = await strand(
      'run',
      ws.file,
      '--home',
      ws.home,
      '--name',
      'slice',
      '--from',
      'count',
      '--to',
      'frequent',
      '--samples',
      'beta',
      '--no-cache',
    );
    expect(r.code).toBe(0);
    const steps = (await rows(ws.home, 'slice')).map((x) => x.step).sort();
    expect(steps).toEqual(['count.sorted', 'count.stats', 'frequent.keep', 'frequent.tally']);
  });
});

describe('strand logs, status, --json and --dry-run', () => {
  const ws = exampleWorkspace('word-count');

  it('--dry-run checks and shows the plan, runs nothing', async () => {
    const r = await strand('run', ws.file, '--home', ws.home, '--dry-run');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(
      'word-count: 3 sample(s) × 4 step(s), 16 job(s): 0 from the cache, 16 to run',
    );
    expect(r.out).toContain('nothing was run (--dry-run)');
    // A slice over outputs that were never made: the run would stop before any job.
    const only = await strand('run', ws.file, '--home', ws.home, '--dry-run', '--only', 'count');
    expect(only.code).toBe(1);
    expect(only.out).toContain(
      'word-count: 3 sample(s) × 1 step(s), 6 job(s): 0 from the cache, 0 to run, 6 blocked',
    );
    expect(only.err).toMatch(/the run would stop before any job: 6 job\(s\) cannot run/);
    expect(existsSync(ws.home)).toBe(false);
  });

  it('--json prints one event per line, ending with the outcome', async () => {
    const r = await strand(
      'run',
      ws.file,
      '--home',
      ws.home,
      '--name',
      'js',
      '--json',
      '--samples',
      'alpha',
    );
    expect(r.code).toBe(0);
    const events = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.filter((e) => e.event === 'step.done')).toHaveLength(STEPS.length + 1);
    // Each job that ran was queued, then started (when its process did), then done.
    for (const done of events.filter((e) => e.event === 'step.done')) {
      const order = events
        .filter((e) => e.step === done.step && e.sample === done.sample)
        .map((e) => e.event);
      expect(order).toEqual(['step.queued', 'step.started', 'step.done']);
    }
    expect(events.at(-1)).toMatchObject({ event: 'run.end', execution: 'js', status: 'SUCCEEDED' });
  });

  it('logs prints the output of each job under its sample and step; status lists the run', async () => {
    await strand('run', ws.file, '--home', ws.home, '--name', 'lg', '--samples', 'empty');
    const logs = await strand('logs', 'lg', '--home', ws.home, '--sample', 'empty');
    expect(logs.code).toBe(0);
    expect(logs.out).toMatch(
      /==> empty words \(job \S+, FAILED\) <==\n[\s\S]*no words in the input/,
    );
    const none = await strand('logs', 'lg', '--home', ws.home, '--step', 'frequent');
    expect(none.err).toMatch(/no job logs/);
    const status = await strand('status', '--home', ws.home, '--json');
    const runs = JSON.parse(status.out) as { execution: string; status: string; failed: number }[];
    expect(runs.find((x) => x.execution === 'lg')).toMatchObject({ status: 'FAILED', failed: 1 });
    expect(runs.find((x) => x.execution === 'js')).toMatchObject({ status: 'SUCCEEDED' });
    expect((await strand('logs', 'nosuch', '--home', ws.home)).code).toBe(2);
  });
});

describe('strand run: slicing without the inputs', () => {
  it('fails before submitting anything, naming the step, sample, file and the command to make it', async () => {
    const ws = exampleWorkspace('word-count');
    const r = await strand(
      'run',
      ws.file,
      '--home',
      ws.home,
      '--from',
      'frequent',
      '--samples',
      'alpha',
    );
    expect(r.code).toBe(1);
    expect(r.err).toContain('Strand.MissingInputs');
    expect(r.err).toMatch(
      /step count\.sorted of sample alpha: sorted\.txt not in file:\/\/\S+\/word-count\/alpha\/count\.sorted; to make it: strand run \S+pipeline\.yaml --to count --samples alpha/,
    );
    expect(attempts(ws.home)).toBe(0);
  });
});

describe('strand redrive after a failure', () => {
  it('re-runs the failed sample once its input is fixed; the others are cache hits', async () => {
    const ws = exampleWorkspace('word-count');
    const r1 = await strand('run', ws.file, '--home', ws.home, '--name', 'fixme');
    expect(r1.code).toBe(1);
    writeFileSync(join(ws.dir, 'data', 'empty.txt'), 'now it has words words\n');
    const before = attempts(ws.home);
    const r2 = await strand('redrive', 'fixme', '--home', ws.home);
    expect(r2.code).toBe(0);
    // Followed as a run is: the jobs that run, then the outcome and where the outputs are.
    expect(r2.err).toMatch(/^fixme: carrying on word-count\n/);
    expect(r2.err).toMatch(/started words +empty\n[\s\S]*done +words +empty\n/);
    expect(r2.err).toMatch(/cached +words +alpha\n/);
    expect(r2.err).toMatch(/fixme: SUCCEEDED in [\d.]+s\noutputs: file:\/\/\S+\/word-count\/\n/);
    expect(r2.out).toBe('');
    const list = await rows(ws.home, 'fixme');
    for (const step of STEPS) expect(status(list, 'empty', step), step).toBe('SUCCEEDED');
    expect(status(list, 'alpha', 'words')).toBe('CACHED');
    // The empty sample's five jobs and the summary (its inputs changed) ran; nothing else.
    expect(attempts(ws.home)).toBe(before + STEPS.length + 1);
    expect(
      readFileSync(join(ws.home, 'store', 'word-count', '_all', 'summary', 'summary.tsv'), 'utf8'),
    ).toContain('empty\t5\t4\t');
  });
});

describe('injection-shaped values', () => {
  it('reach the tool as literal argv and environment data', async () => {
    const values = ['; rm -rf ~', '$(id)', '`id`', 'line one\nline two', 'it\'s "quoted" $HOME'];
    const { file, home } = inlinePipeline([
      'name: inject',
      'samples:',
      ...values.map((v, i) => `  - { id: S${i}, VALUE: ${JSON.stringify(v)} }`),
      'steps:',
      '  echo:',
      '    image: debian:bookworm-slim',
      '    command:',
      '      - awk',
      `      - 'BEGIN { printf "%s", ARGV[1] > "arg.txt"; printf "%s", ENVIRON["VALUE"] > "env.txt" }'`,
      '      - $VALUE',
      '    outputs: { ARG: arg.txt, ENV: env.txt }',
    ]);
    const r = await strand('run', file, '--home', home);
    expect(r.code, r.err).toBe(0);
    values.forEach((v, i) => {
      const at = join(home, 'store', 'inject', `S${i}`, 'echo');
      expect(readFileSync(join(at, 'arg.txt'), 'utf8')).toBe(v);
      expect(readFileSync(join(at, 'env.txt'), 'utf8')).toBe(v);
    });
  });
});

describe('stdout: a tool that only prints its results', () => {
  it('its standard output lands in the declared file; standard error stays in the log', async () => {
    const { dir, file, home } = inlinePipeline(
      [
        'name: printed',
        'samples: [ { id: S1, TEXT: words.txt } ]',
        'steps:',
        '  order:',
        '    image: debian:bookworm-slim',
        '    command: [sort, $TEXT]',
        '    stdout: out/sorted.txt',
        '    outputs: { SORTED: out/sorted.txt }',
      ],
      { 'words.txt': 'pear\napple\nfig\n' },
    );
    const r = await strand('run', file, '--home', home);
    expect(r.code, r.err).toBe(0);
    expect(
      readFileSync(join(home, 'store', 'printed', 'S1', 'order', 'out', 'sorted.txt'), 'utf8'),
    ).toBe('apple\nfig\npear\n');
    writeFileSync(
      join(dir, 'bad.yaml'),
      readFileSync(join(dir, 'pipeline.yaml'), 'utf8').replace(
        'stdout: out/sorted.txt',
        'stdout: ../escape.txt',
      ),
    );
    const bad = await strand('validate', join(dir, 'bad.yaml'));
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/bad\.yaml:7:13 steps\.order\.stdout/);
  });
});

describe('a job no compute environment can fit', () => {
  it('fails at once (no retries), with a FAILED row naming the values and the usual failure message', async () => {
    const { file, home } = inlinePipeline([
      'name: toobig',
      'samples: [ { id: S1 } ]',
      'steps:',
      '  huge: { image: x, command: [sort, /dev/null], vcpus: 4096, retry: 3 }',
    ]);
    const r = await strand('run', file, '--home', home, '--name', 'nofit');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/S1: huge failed for sample S1: needs 4096 vCPU/);
    expect(r.err).toMatch(/to carry on: strand redrive nofit/);
    const [row] = await rows(home, 'nofit');
    expect(row).toMatchObject({ sample: 'S1', step: 'huge', status: 'FAILED' });
    const engine = Engine.open({ home, readOnly: true });
    expect(engine.listBatchJobs()).toHaveLength(1);
    engine.close();
  });
});
