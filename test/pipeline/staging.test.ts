/**
 * The staging contract (docs/adr/0002-staging.md): when a job ends, success or failure, its
 * outputs, results files and log are put in the store, manifest last, before the job counts as
 * ended; Strand's functions then work on store keys alone. Shown by deleting each job's working
 * directory as soon as its stage-out is done: the run still publishes, records results and
 * metrics, and syncs the failed sample.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStrand } from '../../src/app/index.js';
import type { StageOut } from '../../src/batch/local-batch.js';
import { pipelineStageOut } from '../../src/functions/stage-out.js';
import { compilePipeline } from '../../src/pipeline/compile.js';
import { loadPipeline } from '../../src/pipeline/load.js';
import { openStore } from '../../src/storage/store.js';
import { inlinePipeline, resultsJson, strand } from './cli.js';

describe('the staging contract', () => {
  it('functions never read a job directory: each is deleted once staged out, and the run goes on', async () => {
    const p = inlinePipeline([
      'name: staged',
      'samples: [ { id: good, N: "3" }, { id: bad, N: "0" } ]',
      'steps:',
      '  make:',
      '    image: debian:bookworm-slim',
      // Writes its output and a results file that is not an output; `bad` fails after a
      // partial output.
      '    command: [sh, -c, \'seq $0 > out/n.txt; printf "n\\tsq\\n$0\\t$(($0*$0))\\n" > stats.tsv; echo made >&2; test $0 -gt 0\', $N]',
      '    outputs: { NUMBERS: out/n.txt }',
      '  use:',
      '    image: debian:bookworm-slim',
      '    command: [wc, -l, $NUMBERS]',
      '    stdout: count.txt',
      '    outputs: { COUNT: count.txt }',
      'results:',
      '  make: { from: stats.tsv, format: tsv }',
    ]);
    const loaded = loadPipeline(p.file);
    const compiled = compilePipeline(loaded.spec, {
      jobQueue: 'default',
      columns: Object.keys(loaded.samples[0].values),
    });
    const real = pipelineStageOut({
      store: (url) => openStore(url, { home: p.home }),
      executorOf: () => 'local',
    });
    const deleted: string[] = [];
    const stageOut: StageOut = async (job, attempt) => {
      await real(job, attempt);
      rmSync(attempt.workDir, { recursive: true, force: true });
      deleted.push(attempt.workDir);
    };
    const { engine, services } = openStrand({ home: p.home, batch: { stageOut } });
    const store = openStore(undefined, { home: p.home });
    try {
      for (const def of compiled.jobDefinitions) engine.batch!.registerJobDefinition(def);
      await engine.startExecution({
        definition: compiled.definition,
        name: 'staged-1',
        input: {
          run: {
            pipeline: 'staged',
            execution: 'staged-1',
            store: store.url,
            from: '',
            to: '',
            cache: 'true',
          },
          samples: loaded.samples.map((s) => ({ id: s.id, values: s.values })),
          params: {},
        },
      });
      const d = await engine.waitForExecution('staged-1');
      expect(d.status).toBe('FAILED');
      expect(d.cause).toMatch(/bad: make failed for sample bad: exit code 1/);
    } finally {
      engine.close();
      await services.close();
    }
    // make×2 and use×1 ran, and each directory was gone before its outputs were published.
    expect(deleted).toHaveLength(3);
    expect(deleted.some(existsSync)).toBe(false);
    const root = join(p.home, 'store/staged');
    expect(readFileSync(join(root, 'good/use/count.txt'), 'utf8')).toMatch(/^3 /);
    expect(readFileSync(join(root, 'good/make/_strand.log'), 'utf8')).toContain('made');
    // The failed sample's partial output and log, under a FAILED manifest.
    const failed = JSON.parse(readFileSync(join(root, 'bad/make/_strand.json'), 'utf8')) as {
      status: string;
    };
    expect(failed.status).toBe('FAILED');
    expect(readFileSync(join(root, 'bad/make/out/n.txt'), 'utf8')).toBe('');
    expect(readFileSync(join(root, 'bad/make/_strand.log'), 'utf8')).toContain('made');
    // Metrics from a results file that is not an output, read from the store.
    const metrics = await strand(
      'results',
      '--home',
      p.home,
      '--pipeline',
      'staged',
      '--step',
      'make',
      '--metrics',
      '--format',
      'json',
    );
    const bySample = (JSON.parse(metrics.out) as { sample: string }[]).sort((a, b) =>
      a.sample.localeCompare(b.sample),
    );
    expect(bySample).toEqual([
      { execution: 'staged-1', sample: 'bad', n: 0, sq: 0 },
      { execution: 'staged-1', sample: 'good', n: 3, sq: 9 },
    ]);
    const rows = (await resultsJson(p.home, '--execution', 'staged-1')) as {
      sample: string;
      step: string;
      status: string;
    }[];
    expect(rows.map((r) => `${r.sample} ${r.step} ${r.status}`).sort()).toEqual([
      'bad make FAILED',
      'good make SUCCEEDED',
      'good use SUCCEEDED',
    ]);
  });

  it('a job that exits 0 without an output it declares fails, naming the output; its log is kept', async () => {
    const p = inlinePipeline([
      'name: forgetful',
      'samples: [ { id: A } ]',
      'steps:',
      '  forget:',
      '    image: debian:bookworm-slim',
      "    command: [sh, -c, 'echo wrote only this > kept.txt; echo forgot the other >&2']",
      '    outputs: { KEPT: kept.txt, LOST: lost.txt }',
    ]);
    const r = await strand('run', p.file, '--home', p.home);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/forget failed for sample A: .*output LOST \(lost\.txt\) was not found/);
    const prefix = join(p.home, 'store/forgetful/A/forget');
    const manifest = JSON.parse(readFileSync(join(prefix, '_strand.json'), 'utf8')) as {
      status: string;
      exitCode: number;
      error: string;
      outputs: Record<string, { missing?: boolean }>;
    };
    expect(manifest).toMatchObject({ status: 'FAILED', exitCode: 0 });
    expect(manifest.error).toMatch(/output LOST \(lost\.txt\) was not found/);
    expect(manifest.outputs.LOST.missing).toBe(true);
    expect(readFileSync(join(prefix, 'kept.txt'), 'utf8')).toBe('wrote only this\n');
    expect(readFileSync(join(prefix, '_strand.log'), 'utf8')).toContain('forgot the other');
  });
});
