/**
 * `strand run` end to end: what is published stays as published, and a cache hit is only
 * claimed for outputs that are still what their manifest says, made by the same declaration.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { exampleWorkspace, inlinePipeline, resultsJson, spawnStrand, strand } from './cli.js';

async function statusOf(home: string, execution: string, step: string): Promise<string> {
  const rows = (await resultsJson(home, '--execution', execution)) as {
    step: string;
    status: string;
  }[];
  return rows.find((r) => r.step === step)?.status ?? 'none';
}

/** The manifest of a step of sample S1, and each file it lists checked against the store. */
function published(home: string, pipeline: string, step: string) {
  const at = join(home, 'store', pipeline, 'S1', step);
  const manifest = JSON.parse(readFileSync(join(at, '_strand.json'), 'utf8')) as {
    outputs: Record<string, { files: { path: string; size: number; sha256: string }[] }>;
  };
  const files = Object.values(manifest.outputs).flatMap((o) => o.files);
  const stored = files.map((f) => {
    const data = readFileSync(join(at, f.path));
    return {
      path: f.path,
      size: data.length,
      sha256: createHash('sha256').update(data).digest('hex'),
    };
  });
  return { at, files, stored };
}

/** Two steps: `make` publishes a file, `use` copies it. */
const TWO_STEPS = (name: string) => [
  `name: ${name}`,
  'samples: [ { id: S1 } ]',
  'steps:',
  '  make:',
  '    image: debian:bookworm-slim',
  `    command: [sh, -c, 'printf "made\\n" > made.txt']`,
  '    outputs: { MADE: made.txt }',
  '  use:',
  '    image: debian:bookworm-slim',
  `    command: [sh, -c, 'cat "$$1" > used.txt', sh, $MADE]`,
  '    outputs: { USED: used.txt }',
];

describe('published outputs stay as published', () => {
  it('a downstream job appending to its input cannot change the upstream step’s published file', async () => {
    const { file, home } = inlinePipeline([
      'name: append',
      'samples: [ { id: S1 } ]',
      'steps:',
      '  make:',
      '    image: debian:bookworm-slim',
      `    command: [sh, -c, 'printf "original\\n" > a.txt']`,
      '    outputs: { A: a.txt }',
      '  append:',
      '    image: debian:bookworm-slim',
      `    command: [sh, -c, 'echo appended >> "$$1"; cat "$$1" > seen.txt', sh, $A]`,
      '    outputs: { SEEN: seen.txt }',
    ]);
    const r = await strand('run', file, '--home', home, '--name', 'first');
    expect(r.code, r.err).toBe(0);
    const make = published(home, 'append', 'make');
    expect(readFileSync(join(make.at, 'a.txt'), 'utf8')).toBe('original\n');
    expect(make.stored).toEqual(make.files);
    // What the downstream job saw is its input as published.
    expect(readFileSync(join(published(home, 'append', 'append').at, 'seen.txt'), 'utf8')).toBe(
      'original\n',
    );
  });
});

describe('the cache checks the store', () => {
  it('a stored file whose size changed is no cache hit: the step runs again and republishes', async () => {
    const { file, home } = inlinePipeline(TWO_STEPS('tampered'));
    expect((await strand('run', file, '--home', home, '--name', 'first')).code).toBe(0);
    const made = join(published(home, 'tampered', 'make').at, 'made.txt');
    appendFileSync(made, 'tampered\n');
    const again = await strand('run', file, '--home', home, '--name', 'second');
    expect(again.code, again.err).toBe(0);
    expect(await statusOf(home, 'second', 'make')).toBe('SUCCEEDED');
    expect(readFileSync(made, 'utf8')).toBe('made\n');
    const make = published(home, 'tampered', 'make');
    expect(make.stored).toEqual(make.files);
    // Untouched outputs still are cache hits.
    expect(await statusOf(home, 'second', 'use')).toBe('CACHED');
  });

  it('--deep-cache catches a change that keeps the size; without it the size check passes it', async () => {
    const { file, home } = inlinePipeline(TWO_STEPS('deep'));
    expect((await strand('run', file, '--home', home, '--name', 'first')).code).toBe(0);
    const made = join(published(home, 'deep', 'make').at, 'made.txt');
    writeFileSync(made, 'MADE\n');
    const shallow = await strand(
      'run',
      file,
      '--home',
      home,
      '--name',
      'shallow',
      '--only',
      'make',
    );
    expect(shallow.code, shallow.err).toBe(0);
    expect(await statusOf(home, 'shallow', 'make')).toBe('CACHED');
    const deep = await strand('run', file, '--home', home, '--name', 'deep', '--deep-cache');
    expect(deep.code, deep.err).toBe(0);
    expect(await statusOf(home, 'deep', 'make')).toBe('SUCCEEDED');
    expect(readFileSync(made, 'utf8')).toBe('made\n');
    expect(readFileSync(join(published(home, 'deep', 'use').at, 'used.txt'), 'utf8')).toBe(
      'made\n',
    );
    // Nothing changed since: a deep check finds every file as published.
    const still = await strand('run', file, '--home', home, '--name', 'still', '--deep-cache');
    expect(still.code, still.err).toBe(0);
    expect(await statusOf(home, 'still', 'make')).toBe('CACHED');
    expect(await statusOf(home, 'still', 'use')).toBe('CACHED');
  });

  it('--deep-cache with --no-cache is refused (exit 2)', async () => {
    const { file, home } = inlinePipeline(TWO_STEPS('both'));
    const r = await strand('run', file, '--home', home, '--deep-cache', '--no-cache');
    expect(r.code).toBe(2);
    expect(r.err).toContain('--deep-cache checks cached steps; --no-cache runs every step');
  });

  it('changing an output’s path is no cache hit for that step or the steps reading it', async () => {
    const lines = [
      'name: declared',
      'samples: [ { id: S1 } ]',
      'steps:',
      '  make:',
      '    image: debian:bookworm-slim',
      `    command: [sh, -c, 'echo one > x.txt; echo two > y.txt']`,
      '    outputs: { OUT: x.txt }',
      '  use:',
      '    image: debian:bookworm-slim',
      `    command: [sh, -c, 'cat "$$1" > used.txt', sh, $OUT]`,
      '    outputs: { USED: used.txt }',
    ];
    const { file, home } = inlinePipeline(lines);
    expect((await strand('run', file, '--home', home, '--name', 'x')).code).toBe(0);
    writeFileSync(file, lines.join('\n').replace('{ OUT: x.txt }', '{ OUT: y.txt }') + '\n');
    const r = await strand('run', file, '--home', home, '--name', 'y');
    expect(r.code, r.err).toBe(0);
    expect(await statusOf(home, 'y', 'make')).toBe('SUCCEEDED');
    expect(await statusOf(home, 'y', 'use')).toBe('SUCCEEDED');
    const make = published(home, 'declared', 'make');
    expect(make.files.map((f) => f.path)).toEqual(['y.txt']);
    expect(readFileSync(join(published(home, 'declared', 'use').at, 'used.txt'), 'utf8')).toBe(
      'two\n',
    );
  });

  it('an input directory holding a FIFO is fingerprinted by its regular files, without hanging', async () => {
    const { dir, file, home } = inlinePipeline([
      'name: fifo',
      'samples: [ { id: S1 } ]',
      'params: { DIR: none }',
      'steps:',
      '  list:',
      '    image: debian:bookworm-slim',
      `    command: [sh, -c, 'ls "$$1" > list.txt; cat "$$1/data.txt" >> list.txt', sh, $DIR]`,
      '    outputs: { LIST: list.txt }',
    ]);
    const input = join(dir, 'input');
    mkdirSync(input);
    writeFileSync(join(input, 'data.txt'), 'first\n');
    execFileSync('mkfifo', [join(input, 'pipe')]);
    const run = (name: string) =>
      strand('run', file, '--home', home, '--name', name, '--param', `DIR=${input}`);
    const first = await run('first');
    expect(first.code, first.err).toBe(0);
    expect(await statusOf(home, 'first', 'list')).toBe('SUCCEEDED');
    expect((await run('same')).code).toBe(0);
    expect(await statusOf(home, 'same', 'list')).toBe('CACHED');
    writeFileSync(join(input, 'data.txt'), 'second\n');
    expect((await run('changed')).code).toBe(0);
    expect(await statusOf(home, 'changed', 'list')).toBe('SUCCEEDED');
    expect(readFileSync(join(published(home, 'fifo', 'list').at, 'list.txt'), 'utf8')).toBe(
      'data.txt\npipe\nsecond\n',
    );
  }, 30_000);
});

describe('input digests remembered in the home', () => {
  it('a second run reuses the digest strand.db remembers; --deep-cache reads the file again', async () => {
    const w = exampleWorkspace('word-count');
    const first = await strand('run', w.file, '--home', w.home, '--samples', 'alpha');
    expect(first.code, first.err).toBe(0);
    const db = new Database(join(w.home, 'strand.db'));
    const alpha = join(w.dir, 'data/alpha.txt');
    const rows = db
      .prepare('SELECT identity FROM file_digests WHERE identity LIKE ?')
      .all(`${alpha}%`) as { identity: string }[];
    expect(rows).toHaveLength(1);
    // Another digest for the same identity: a run that trusts the memo sees another input.
    db.prepare('UPDATE file_digests SET sha256 = ? WHERE identity = ?').run(
      '0'.repeat(64),
      rows[0].identity,
    );
    db.close();
    const statuses = async (args: string[]) => {
      const run = spawnStrand([
        'run',
        w.file,
        '--home',
        w.home,
        '--samples',
        'alpha',
        '--json',
        ...args,
      ]);
      const r = await run.done;
      expect(r.code, r.err).toBe(0);
      return (await resultsJson(w.home, '--step', 'words'))
        .map((row) => (row as { status: string }).status)
        .at(-1);
    };
    // Trusting the remembered digest, the input looks changed: the job runs.
    expect(await statuses([])).toBe('SUCCEEDED');
    // --deep-cache reads the file (a remembered digest would have been a hit now) and
    // remembers what it read; after it, the plain run is a hit again.
    expect(await statuses(['--deep-cache'])).toBe('SUCCEEDED');
    expect(await statuses([])).toBe('CACHED');
  });
});
