/** scaffoldPipeline: the files `strand init` writes load cleanly and use only Debian's base tools. */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPipeline, templateParts, type LoadedPipeline } from '../../src/pipeline/load.js';
import { scaffoldPipeline } from '../../src/pipeline/scaffold.js';

/**
 * Programs every Debian system has (coreutils, and awk: mawk is Priority: required); a shell is
 * not among them, since commands never go through one.
 */
const BASE_TOOLS = new Set([
  'awk',
  'cat',
  'cut',
  'head',
  'md5sum',
  'paste',
  'sha256sum',
  'sort',
  'tail',
  'tee',
  'tr',
  'uniq',
  'wc',
]);

function written(name: string): { dir: string; files: Record<string, string> } {
  const dir = mkdtempSync(join(tmpdir(), 'strand-scaffold-'));
  const files = scaffoldPipeline(name);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return { dir, files };
}

function loaded(name: string): LoadedPipeline {
  return loadPipeline(join(written(name).dir, 'pipeline.yaml'));
}

describe('scaffoldPipeline', () => {
  it.each(['my-first', 'lab_2', 'a'])('%s: loads without problems, under its name', (name) => {
    const { spec, samples } = loaded(name);
    expect(spec.name).toBe(name);
    expect(samples.length).toBeGreaterThanOrEqual(2);
    expect(samples.length).toBeLessThanOrEqual(3);
  });

  it('writes pipeline.yaml, samples.csv, the data it names and a .gitignore for .strand/', () => {
    const { dir, files } = written('demo');
    expect(Object.keys(files).sort()).toEqual([
      '.gitignore',
      'data/one.txt',
      'data/two.txt',
      'pipeline.yaml',
      'samples.csv',
    ]);
    expect(files['.gitignore'].split('\n')).toContain('.strand/');
    const { samples } = loadPipeline(join(dir, 'pipeline.yaml'));
    for (const s of samples) {
      // A sheet value naming an existing file becomes its absolute path.
      expect(s.values.TEXT).toBe(join(dir, 'data', `${s.id}.txt`));
      expect(existsSync(s.values.TEXT)).toBe(true);
    }
  });

  it('shows each kind of step: per sample, substeps, once for all samples, and results', () => {
    const { spec } = loaded('demo');
    const perSample = spec.steps.filter((s) => s.scope === 'sample');
    expect(perSample.filter((s) => !s.hasSubsteps).length).toBeGreaterThanOrEqual(2);
    expect(perSample.filter((s) => s.hasSubsteps)).toHaveLength(1);
    expect(spec.steps.filter((s) => s.scope === 'all')).toHaveLength(1);
    expect(spec.steps.at(-1)?.scope).toBe('all');
    expect(spec.results.map((r) => r.step)).toEqual(['describe.long']);
    expect(Object.keys(spec.params)).toEqual(['MIN_LENGTH']);
  });

  it("runs Debian's base tools directly, never a shell", () => {
    const { spec } = loaded('demo');
    const tools = spec.steps.flatMap((s) => s.jobs.map((j) => j.command[0]));
    for (const tool of tools) expect(BASE_TOOLS, tool).toContain(tool);
  });

  it('refers only to variables declared where they are used', () => {
    const { spec } = loaded('demo');
    const perSampleOutputs = spec.steps
      .filter((s) => s.scope === 'sample')
      .flatMap((s) => s.jobs.flatMap((j) => Object.keys(j.outputs)));
    for (const step of spec.steps) {
      for (const job of step.jobs) {
        const used = job.command.flatMap((c) =>
          templateParts(c).parts.flatMap((p) => ('var' in p ? [p.var] : [])),
        );
        expect(used.sort(), job.name).toEqual([...job.vars].sort());
        if (step.scope === 'all') {
          // An aggregate step sees a per-sample output as a file listing every sample's copy.
          for (const v of job.vars) {
            expect([...perSampleOutputs, ...Object.keys(spec.params)], v).toContain(v);
          }
        }
      }
    }
  });
});
