import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { FileStore } from '../../src/storage/file-store.js';
import { stepPrefix } from '../../src/storage/layout.js';
import {
  outputLocations,
  publishOutputs,
  readManifest,
  verifyManifest,
  type OutputManifest,
  type PublishInfo,
  type PublishOptions,
} from '../../src/storage/publish.js';
import type { ObjectStore, PutFileOptions, StoreLockOptions } from '../../src/storage/store.js';

const root = mkdtempSync(join(tmpdir(), 'strand-publish-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

/** A job directory holding `files` (path → content) and an empty sibling store. */
function setup(files: Record<string, string> = {}): { workDir: string; store: FileStore } {
  const base = join(root, `case-${counter++}`);
  const workDir = join(base, 'work');
  mkdirSync(workDir, { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(workDir, path)), { recursive: true });
    writeFileSync(join(workDir, path), content);
  }
  return { workDir, store: new FileStore(join(base, 'store')) };
}

const PREFIX = 'microbe-genome/S1/qc';
const info: PublishInfo = {
  pipeline: 'microbe-genome',
  sample: 'S1',
  step: 'qc',
  execution: 'exec-1',
  jobId: 'job-qc-S1-1',
  attempt: 1,
  exitCode: 0,
  startedAt: 1_767_225_600_000,
  stoppedAt: 1_767_225_660_000,
  fingerprint: 'fp-abc',
};
const clock = { now: () => 1_767_225_661_000 };

function publish(
  store: ObjectStore,
  workDir: string,
  outputs: Record<string, string>,
  extra: Partial<PublishOptions> = {},
) {
  return publishOutputs({
    store,
    prefix: PREFIX,
    workDir,
    outputs,
    status: 'SUCCEEDED',
    info,
    clock,
    ...extra,
  });
}

const sha256 = (content: string | Buffer) => createHash('sha256').update(content).digest('hex');

describe('publishOutputs', () => {
  it('publishes files and directories with sizes and sha256, and the manifest', async () => {
    const { workDir, store } = setup({
      'out/r1.fq': '@r1\nACGT\n+\nIIII\n',
      'out/r2.fq': '@r2\nTTGA\n+\nIIII\n',
      'out/asm/contigs.fa': '>c1\nACGTACGT\n',
      'out/asm/log/megahit.log': 'done\n',
      'scratch.tmp': 'not declared',
    });
    const manifest = await publish(store, workDir, {
      QC_R1: 'out/r1.fq',
      QC_R2: './out//r2.fq',
      ASM: 'out/asm/',
    });
    const local = (path: string) => store.localPath(`${PREFIX}/${path}`);
    expect(manifest).toEqual({
      version: 1,
      ...info,
      status: 'SUCCEEDED',
      publishedAt: 1_767_225_661_000,
      outputs: {
        QC_R1: {
          path: 'out/r1.fq',
          location: pathToFileURL(local('out/r1.fq')).href,
          localPath: local('out/r1.fq'),
          files: [{ path: 'out/r1.fq', size: 16, sha256: sha256('@r1\nACGT\n+\nIIII\n') }],
        },
        QC_R2: {
          path: 'out/r2.fq',
          location: pathToFileURL(local('out/r2.fq')).href,
          localPath: local('out/r2.fq'),
          files: [{ path: 'out/r2.fq', size: 16, sha256: sha256('@r2\nTTGA\n+\nIIII\n') }],
        },
        ASM: {
          path: 'out/asm',
          location: pathToFileURL(local('out/asm')).href,
          localPath: local('out/asm'),
          files: [
            {
              path: 'out/asm/contigs.fa',
              size: 13,
              sha256: sha256('>c1\nACGTACGT\n'),
            },
            { path: 'out/asm/log/megahit.log', size: 5, sha256: sha256('done\n') },
          ],
        },
      },
    });
    expect((await store.list(PREFIX)).map((o) => o.key)).toEqual([
      `${PREFIX}/_strand.json`,
      `${PREFIX}/out/asm/contigs.fa`,
      `${PREFIX}/out/asm/log/megahit.log`,
      `${PREFIX}/out/r1.fq`,
      `${PREFIX}/out/r2.fq`,
    ]);
    // The recorded digests are those of the stored bytes, not just of the sources.
    for (const output of Object.values(manifest.outputs)) {
      for (const file of output.files) {
        const stored = await store.get(`${PREFIX}/${file.path}`);
        expect(createHash('sha256').update(stored).digest('hex')).toBe(file.sha256);
        expect(stored.length).toBe(file.size);
      }
    }
    expect(await readManifest(store, PREFIX)).toEqual(manifest);
    expect(outputLocations(manifest)).toEqual({
      QC_R1: local('out/r1.fq'),
      QC_R2: local('out/r2.fq'),
      ASM: local('out/asm'),
    });
    expect(readFileSync(join(outputLocations(manifest).ASM, 'contigs.fa'), 'utf8')).toBe(
      '>c1\nACGTACGT\n',
    );
  });

  it('hashes a large file streamed in many chunks', async () => {
    const big = 'ACGT'.repeat(1024 * 1024);
    const { workDir, store } = setup({ 'big.fa': big });
    const manifest = await publish(store, workDir, { BIG: 'big.fa' });
    expect(manifest.outputs.BIG.files).toEqual([
      { path: 'big.fa', size: big.length, sha256: sha256(big) },
    ]);
  });

  it('locations of awkward names are file URLs that convert back to the local path', async () => {
    const { workDir, store } = setup({ 'out/a b#1%.txt': 'x' });
    const manifest = await publish(store, workDir, { ODD: 'out/a b#1%.txt' });
    const output = manifest.outputs.ODD;
    expect(fileURLToPath(output.location)).toBe(output.localPath);
  });

  it('an empty output directory is published as present with no files', async () => {
    const { workDir, store } = setup();
    mkdirSync(join(workDir, 'empty'));
    const manifest = await publish(store, workDir, { EMPTY: 'empty' });
    expect(manifest.outputs.EMPTY).toMatchObject({ path: 'empty', files: [] });
    expect(manifest.outputs.EMPTY.missing).toBeUndefined();
  });

  it('deletes the old manifest first, writes every file, and the manifest last', async () => {
    const { workDir, store } = setup({ 'a.txt': 'a', 'dir/b.txt': 'b', 'dir/c.txt': 'c' });
    await publish(store, workDir, { A: 'a.txt' });
    const ops: string[] = [];
    const recording: ObjectStore = {
      url: store.url,
      putFile: (key: string, path: string, options?: PutFileOptions) => {
        ops.push(`putFile ${key}`);
        return store.putFile(key, path, options);
      },
      putBytes: (key: string, data: Uint8Array | string) => {
        ops.push(`putBytes ${key}`);
        return store.putBytes(key, data);
      },
      delete: (prefix: string) => {
        ops.push(`delete ${prefix}`);
        return store.delete(prefix);
      },
      get: (key: string) => store.get(key),
      read: (key: string) => store.read(key),
      exists: (key: string) => store.exists(key),
      head: (key: string) => store.head(key),
      list: (prefix: string) => store.list(prefix),
      localPath: (key: string) => store.localPath(key),
      lock: async (prefix: string, options?: StoreLockOptions) => {
        ops.push(`lock ${prefix}`);
        const lock = await store.lock(prefix, options);
        return {
          prefix: lock.prefix,
          check: () => {
            ops.push('check');
            return lock.check();
          },
          release: () => {
            ops.push('release');
            return lock.release();
          },
        };
      },
      sweep: (prefix: string) => {
        ops.push(`sweep ${prefix}`);
        return store.sweep(prefix);
      },
    };
    await publish(recording, workDir, { A: 'a.txt', D: 'dir' }, { info: { ...info, attempt: 2 } });
    // Under the prefix's lock from the first change to the manifest.
    expect(ops).toEqual([
      `lock ${PREFIX}`,
      `sweep ${PREFIX}`,
      `delete ${PREFIX}/_strand.json`,
      'check',
      `putFile ${PREFIX}/a.txt`,
      'check',
      `putFile ${PREFIX}/dir/b.txt`,
      'check',
      `putFile ${PREFIX}/dir/c.txt`,
      'check',
      `putBytes ${PREFIX}/_strand.json`,
      'release',
    ]);
  });

  it('a failure part-way leaves the files written so far and no manifest', async () => {
    const { workDir, store } = setup({ 'a.txt': 'first', 'b/x.txt': 'second' });
    await publish(store, workDir, { A: 'a.txt' });
    expect(await readManifest(store, PREFIX)).toBeDefined();
    // An object where the second output's directory must go: storing b/x.txt fails for real.
    await store.putBytes(`${PREFIX}/b`, 'in the way');
    const err = await publish(store, workDir, { A: 'a.txt', B: 'b' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'StorageError', code: 'KEY_CONFLICT' });
    expect(await store.exists(`${PREFIX}/a.txt`)).toBe(true);
    expect(await store.exists(`${PREFIX}/_strand.json`)).toBe(false);
    expect(await readManifest(store, PREFIX)).toBeUndefined();
  });

  it('re-publishing replaces the manifest and removes files only the old one listed', async () => {
    const { workDir, store } = setup({ 'a.txt': 'attempt 1', 'old.txt': 'stale' });
    await publish(store, workDir, { A: 'a.txt', OLD: 'old.txt' }, { status: 'FAILED' });
    await store.putBytes(`${PREFIX}/unrelated`, 'not ours to delete');
    writeFileSync(join(workDir, 'a.txt'), 'attempt 2');
    const second = await publish(
      store,
      workDir,
      { A: 'a.txt' },
      { info: { ...info, attempt: 2, jobId: 'job-qc-S1-2' } },
    );
    const stored = await readManifest(store, PREFIX);
    expect(stored).toEqual(second);
    expect(stored).toMatchObject({ attempt: 2, jobId: 'job-qc-S1-2', status: 'SUCCEEDED' });
    expect(stored?.outputs.A.files[0].sha256).toBe(sha256('attempt 2'));
    expect(Object.keys(stored?.outputs ?? {})).toEqual(['A']);
    expect((await store.list(PREFIX)).map((o) => o.key)).toEqual([
      `${PREFIX}/_strand.json`,
      `${PREFIX}/a.txt`,
      `${PREFIX}/unrelated`,
    ]);
  });

  it('a doctored previous manifest cannot make the publish delete outside its prefix', async () => {
    const { workDir, store } = setup({ 'a.txt': 'a' });
    await store.putBytes('microbe-genome/S2/qc/keep', 'another sample');
    await store.putBytes(`${PREFIX}/stale`, 'old output');
    const doctored = {
      version: 1,
      outputs: {
        X: { files: [{ path: '../../S2/qc/keep' }, { path: 'stale' }, { path: 42 }, null] },
        Y: 'not an output',
      },
    };
    await store.putBytes(`${PREFIX}/_strand.json`, JSON.stringify(doctored));
    await publish(store, workDir, { A: 'a.txt' });
    expect(await store.exists('microbe-genome/S2/qc/keep')).toBe(true);
    expect(await store.exists(`${PREFIX}/stale`)).toBe(false);
  });

  it('a corrupt previous manifest is replaced', async () => {
    const { workDir, store } = setup({ 'a.txt': 'a' });
    await store.putBytes(`${PREFIX}/_strand.json`, '{ torn');
    const manifest = await publish(store, workDir, { A: 'a.txt' });
    expect(await readManifest(store, PREFIX)).toEqual(manifest);
  });

  describe('outputs that leave the job directory are refused, and nothing is published', () => {
    const cases: [string, (workDir: string, outside: string) => Record<string, string>][] = [
      ['an absolute path', (_w, outside) => ({ SECRET: join(outside, 'secret.txt') })],
      ['a .. escape', () => ({ SECRET: '../outside/secret.txt' })],
      ['a .. escape after a directory', () => ({ SECRET: 'out/../../outside/secret.txt' })],
      [
        'a symlinked file pointing outside',
        (w, outside) => {
          symlinkSync(join(outside, 'secret.txt'), join(w, 'link.txt'));
          return { SECRET: 'link.txt' };
        },
      ],
      [
        'a symlinked directory pointing outside',
        (w, outside) => {
          symlinkSync(outside, join(w, 'linkdir'));
          return { SECRET: 'linkdir' };
        },
      ],
      [
        'a path through a symlinked parent pointing outside',
        (w, outside) => {
          symlinkSync(outside, join(w, 'linkdir'));
          return { SECRET: 'linkdir/secret.txt' };
        },
      ],
      [
        'a symlink inside an output directory pointing outside',
        (w, outside) => {
          mkdirSync(join(w, 'results', 'deep'), { recursive: true });
          writeFileSync(join(w, 'results', 'ok.txt'), 'fine');
          symlinkSync(join(outside, 'secret.txt'), join(w, 'results', 'deep', 'leak'));
          return { SECRET: 'results' };
        },
      ],
      [
        'a symlink to the job directory’s parent inside an output directory',
        (w) => {
          mkdirSync(join(w, 'results'));
          symlinkSync('../..', join(w, 'results', 'up'));
          return { SECRET: 'results' };
        },
      ],
    ];
    const declarations = 3;
    const arrangeCase = (arrange: (w: string, o: string) => Record<string, string>) => {
      const { workDir, store } = setup({ 'ok.txt': 'fine' });
      const outside = join(dirname(workDir), 'outside');
      mkdirSync(outside, { recursive: true });
      writeFileSync(join(outside, 'secret.txt'), 'secret');
      return { workDir, store, outputs: { OK: 'ok.txt', ...arrange(workDir, outside) } };
    };
    const refused = [
      ...cases.map(([what, arrange]) => [`${what} (SUCCEEDED)`, arrange, 'SUCCEEDED'] as const),
      // A declaration that leaves the job directory is wrong however the job ended.
      ...cases
        .slice(0, declarations)
        .map(([what, arrange]) => [`${what} (FAILED)`, arrange, 'FAILED'] as const),
    ];
    it.each(refused)('%s', async (_what, arrange, status) => {
      const { workDir, store, outputs } = arrangeCase(arrange);
      const err = await publish(store, workDir, outputs, { status }).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'StorageError', code: 'OUTPUT_OUTSIDE_JOB_DIR' });
      const message = (err as Error).message;
      expect(message).toContain('SECRET');
      expect(message).toMatch(/points to \/|is an absolute path/);
      expect(message).toContain(workDir);
      expect(await store.list('')).toEqual([]);
    });

    // A failed job's partial sync keeps what it can: what leads outside is left out and named.
    it.each(cases.slice(declarations))(
      '%s (FAILED): left out of the sync and named',
      async (_what, arrange) => {
        const { workDir, store, outputs } = arrangeCase(arrange);
        const manifest = await publish(store, workDir, outputs, { status: 'FAILED' });
        expect(manifest.outputs.OK.files.map((f) => f.path)).toEqual(['ok.txt']);
        const skipped = manifest.outputs.SECRET.skipped ?? [];
        expect(skipped).toHaveLength(1);
        expect(skipped[0].reason).toMatch(
          new RegExp(`^points to /.*, outside the job directory ${workDir}$`),
        );
        expect(manifest.outputs.SECRET.files.map((f) => f.path)).not.toContain(skipped[0].path);
        for (const { key } of await store.list('')) {
          expect((await store.get(key)).toString(), key).not.toBe('secret');
        }
        expect(await readManifest(store, PREFIX)).toEqual(manifest);
      },
    );

    it('names the variable, the declared path and where it points', async () => {
      const { workDir, store } = setup();
      const outside = join(dirname(workDir), 'elsewhere');
      mkdirSync(outside);
      writeFileSync(join(outside, 'f'), 'x');
      symlinkSync(join(outside, 'f'), join(workDir, 'result.txt'));
      await expect(publish(store, workDir, { RESULT: 'result.txt' })).rejects.toThrow(
        `output RESULT: result.txt points to ${join(outside, 'f')}, outside the job directory ${workDir}`,
      );
    });

    it('leaves an existing manifest in place', async () => {
      const { workDir, store } = setup({ 'ok.txt': 'fine' });
      const before = await publish(store, workDir, { OK: 'ok.txt' });
      await expect(publish(store, workDir, { OK: '/etc/hostname' })).rejects.toMatchObject({
        code: 'OUTPUT_OUTSIDE_JOB_DIR',
      });
      expect(await readManifest(store, PREFIX)).toEqual(before);
    });
  });

  it('symlinks that stay inside the job directory are published as the files they point to', async () => {
    const { workDir, store } = setup({
      'out/r1.fq': 'reads',
      'out/asm/c.fa': '>c',
      'log.txt': 'l',
    });
    symlinkSync('out/r1.fq', join(workDir, 'latest.fq'));
    symlinkSync(join(workDir, 'out', 'asm'), join(workDir, 'assembly'));
    symlinkSync('../../log.txt', join(workDir, 'out', 'asm', 'log-link.txt'));
    const manifest = await publish(store, workDir, { R1: 'latest.fq', ASM: 'assembly' });
    expect(manifest.outputs.R1.files).toEqual([
      { path: 'latest.fq', size: 5, sha256: sha256('reads') },
    ]);
    expect(manifest.outputs.ASM.files.map((f) => f.path)).toEqual([
      'assembly/c.fa',
      'assembly/log-link.txt',
    ]);
    const stored = store.localPath(`${PREFIX}/assembly/log-link.txt`);
    expect(lstatSync(stored).isFile()).toBe(true);
    expect(readFileSync(stored, 'utf8')).toBe('l');
  });

  it('a symlink loop inside an output directory is refused', async () => {
    const { workDir, store } = setup({ 'out/a.txt': 'a' });
    symlinkSync('..', join(workDir, 'out', 'again'));
    await expect(publish(store, workDir, { OUT: 'out' })).rejects.toMatchObject({
      code: 'BAD_OUTPUT_PATH',
      message: expect.stringContaining('symlink loop'),
    });
    expect(await store.list('')).toEqual([]);
  });

  it('SUCCEEDED with a missing output is OUTPUT_MISSING naming it, and nothing is published', async () => {
    const { workDir, store } = setup({ 'out/r1.fq': 'reads' });
    const err = await publish(store, workDir, { QC_R1: 'out/r1.fq', QC_R2: 'out/r2.fq' }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ name: 'StorageError', code: 'OUTPUT_MISSING' });
    expect((err as Error).message).toContain('QC_R2');
    expect((err as Error).message).toContain('out/r2.fq');
    expect(await store.list('')).toEqual([]);
  });

  it('SUCCEEDED with a broken symlink as an output is OUTPUT_MISSING', async () => {
    const { workDir, store } = setup();
    symlinkSync('nowhere.txt', join(workDir, 'dangling'));
    await expect(publish(store, workDir, { D: 'dangling' })).rejects.toMatchObject({
      code: 'OUTPUT_MISSING',
      message: expect.stringContaining('broken symlink (to nowhere.txt)'),
    });
  });

  it('FAILED publishes what exists and records the missing outputs', async () => {
    const { workDir, store } = setup({ 'out/r1.fq': 'reads', 'out/partial/x.txt': 'x' });
    symlinkSync('gone', join(workDir, 'out', 'partial', 'dangling'));
    const manifest = await publish(
      store,
      workDir,
      { QC_R1: 'out/r1.fq', QC_R2: 'out/r2.fq', PARTIAL: 'out/partial' },
      { status: 'FAILED', info: { ...info, exitCode: 137 } },
    );
    expect(manifest).toMatchObject({ status: 'FAILED', exitCode: 137 });
    expect(manifest.outputs.QC_R1.files).toHaveLength(1);
    expect(manifest.outputs.QC_R1.missing).toBeUndefined();
    expect(manifest.outputs.QC_R2).toMatchObject({ path: 'out/r2.fq', files: [], missing: true });
    expect(manifest.outputs.PARTIAL.files.map((f) => f.path)).toEqual(['out/partial/x.txt']);
    expect(Object.keys(outputLocations(manifest)).sort()).toEqual(['PARTIAL', 'QC_R1']);
    expect(await readManifest(store, PREFIX)).toEqual(manifest);
    expect(await store.exists(`${PREFIX}/out/r2.fq`)).toBe(false);
  });

  it('FAILED before the job directory existed records every output as missing', async () => {
    const { workDir, store } = setup();
    rmSync(workDir, { recursive: true });
    const manifest = await publish(store, workDir, { A: 'a.txt' }, { status: 'FAILED' });
    expect(manifest.outputs.A).toMatchObject({ files: [], missing: true });
    await expect(publish(store, workDir, { A: 'a.txt' })).rejects.toMatchObject({
      code: 'OUTPUT_MISSING',
    });
  });

  let hasMkfifo = true;
  try {
    execFileSync('mkfifo', ['--version'], { stdio: 'ignore' });
  } catch {
    hasMkfifo = false;
  }
  it.skipIf(!hasMkfifo)(
    'a FIFO inside an output directory is refused on success and skipped on failure',
    async () => {
      const { workDir, store } = setup({ 'out/a.txt': 'a' });
      execFileSync('mkfifo', [join(workDir, 'out', 'pipe')]);
      await expect(publish(store, workDir, { OUT: 'out' })).rejects.toMatchObject({
        code: 'BAD_OUTPUT_PATH',
        message: expect.stringContaining('out/pipe is not a regular file or directory'),
      });
      const manifest = await publish(store, workDir, { OUT: 'out' }, { status: 'FAILED' });
      expect(manifest.outputs.OUT.files.map((f) => f.path)).toEqual(['out/a.txt']);
    },
  );

  it.each([
    ['the whole job directory', '.'],
    ['an empty path', ''],
    ['the manifest name', '_strand.json'],
    ['a backslash', 'out\\r1.fq'],
  ])('an output path that is %s is BAD_OUTPUT_PATH', async (_what, path) => {
    const { workDir, store } = setup({ 'out\\r1.fq': 'x', '_strand.json': '{}' });
    const err = await publish(store, workDir, { BAD: path }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'StorageError', code: 'BAD_OUTPUT_PATH' });
    expect((err as Error).message).toContain('output BAD');
    expect(await store.list('')).toEqual([]);
  });
});

/** Every file a manifest lists, checked against the bytes the store holds. */
async function expectManifestMatchesStore(store: ObjectStore, manifest: OutputManifest) {
  for (const output of Object.values(manifest.outputs)) {
    for (const file of output.files) {
      const stored = await store.get(`${PREFIX}/${file.path}`);
      expect({ path: file.path, size: stored.length, sha256: sha256(stored) }).toEqual(file);
    }
  }
}

describe('published outputs stay as published', () => {
  it('a job writing its file after the publish changes nothing in the store', async () => {
    const { workDir, store } = setup({ 'out/a.txt': 'as published\n' });
    const manifest = await publish(store, workDir, { A: 'out/a.txt' });
    // What a background process of the job, or a step handed the job's file, would do.
    appendFileSync(join(workDir, 'out/a.txt'), 'appended later\n');
    writeFileSync(join(workDir, 'out/a.txt'), 'rewritten');
    expect((await store.get(`${PREFIX}/out/a.txt`)).toString()).toBe('as published\n');
    await expectManifestMatchesStore(store, manifest);
    expect(await verifyManifest(store, PREFIX, manifest, { deep: true })).toEqual([]);
  });

  it('a file still being written during the publish: the manifest records the bytes stored', async () => {
    const { workDir, store } = setup();
    const file = join(workDir, 'grows.txt');
    writeFileSync(file, 'x'.repeat(4 * 1024 * 1024));
    // A real process appending as fast as it can for the whole publish.
    const writer = spawn('sh', ['-c', `while :; do echo more >> '${file}'; done`], {
      stdio: 'ignore',
    });
    try {
      for (let i = 0; i < 5; i++) {
        const manifest = await publish(store, workDir, { G: 'grows.txt' });
        await expectManifestMatchesStore(store, manifest);
      }
    } finally {
      writer.kill('SIGKILL');
    }
  });

  it('publishing a prefix removes the temporary files abandoned below it, and only there', async () => {
    const { workDir, store } = setup({ 'out/a.txt': 'a' });
    await publish(store, workDir, { OUT: 'out' });
    // What a writer killed mid-copy an hour ago left, in the prefix and in another one.
    const abandoned = join(store.localPath(`${PREFIX}/out`), '.strand-tmp-4242-crashed');
    const elsewhere = join(store.localPath('microbe-genome/S2/qc'), '.strand-tmp-4242-crashed');
    mkdirSync(dirname(elsewhere), { recursive: true });
    for (const path of [abandoned, elsewhere]) {
      writeFileSync(path, 'half a copy');
      utimesSync(path, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    }
    const manifest = await publish(store, workDir, { OUT: 'out' });
    expect(existsSync(abandoned)).toBe(false);
    expect(existsSync(elsewhere)).toBe(true);
    await expectManifestMatchesStore(store, manifest);
  });

  it('a writer that lost its lock part-way stops: no further file, no manifest', async () => {
    const { workDir, store } = setup({ 'a.txt': 'a', 'b.txt': 'b' });
    let checks = 0;
    // What another writer taking the lock over after the first file looks like to this one.
    const lost: ObjectStore = Object.assign(Object.create(store) as FileStore, {
      lock: async (prefix: string) => {
        const lock = await store.lock(prefix);
        return {
          prefix,
          check: async () => {
            if (++checks === 2) await lock.release();
            return lock.check();
          },
          release: () => lock.release(),
        };
      },
    });
    await expect(publish(lost, workDir, { A: 'a.txt', B: 'b.txt' })).rejects.toMatchObject({
      code: 'LOCK_LOST',
    });
    expect((await store.list(PREFIX)).map((o) => o.key)).toEqual([`${PREFIX}/a.txt`]);
    expect(await readManifest(store, PREFIX)).toBeUndefined();
  });
});

describe('hard links', () => {
  /** A job directory with `out/x.txt` a second name of a file outside it. */
  function linkedOutside() {
    const { workDir, store } = setup({ 'out/ok.txt': 'fine' });
    const host = join(dirname(workDir), 'host-passwd');
    writeFileSync(host, 'root:x:0:0:root:/root:/bin/sh\n');
    linkSync(host, join(workDir, 'out', 'x.txt'));
    return { workDir, store, host };
  }

  it.each([
    ['the declared file', { X: 'out/x.txt' }],
    ['a file in a declared directory', { OUT: 'out' }],
  ])(
    '%s with a name outside the job directory is refused, naming the output and the file',
    async (_what, outputs) => {
      const { workDir, store } = linkedOutside();
      const err = await publish(store, workDir, outputs).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'StorageError', code: 'OUTPUT_OUTSIDE_JOB_DIR' });
      const [name, declared] = Object.entries(outputs)[0];
      expect((err as Error).message).toBe(
        `output ${name} (${declared}): out/x.txt is a hard link with 1 of its 2 names elsewhere, outside the job directory ${workDir}; nothing was published`,
      );
      expect(await store.list('')).toEqual([]);
    },
  );

  it('hard links whose names are all inside the job directory are published', async () => {
    const { workDir, store } = setup({ 'out/a.txt': 'same inode' });
    linkSync(join(workDir, 'out/a.txt'), join(workDir, 'out/b.txt'));
    linkSync(join(workDir, 'out/a.txt'), join(workDir, 'elsewhere-in-job.txt'));
    const manifest = await publish(store, workDir, { OUT: 'out' });
    expect(manifest.outputs.OUT.files.map((f) => f.path)).toEqual(['out/a.txt', 'out/b.txt']);
    // Stored as copies: the job's three names still share their inode, the store has its own.
    expect(lstatSync(join(workDir, 'out/a.txt')).nlink).toBe(3);
    expect(lstatSync(store.localPath(`${PREFIX}/out/a.txt`)).nlink).toBe(1);
  });

  it('a failed job’s partial sync leaves one out and names it in the manifest', async () => {
    const { workDir, store, host } = linkedOutside();
    const manifest = await publish(store, workDir, { OUT: 'out' }, { status: 'FAILED' });
    expect(manifest.outputs.OUT.files.map((f) => f.path)).toEqual(['out/ok.txt']);
    expect(manifest.outputs.OUT.skipped).toEqual([
      {
        path: 'out/x.txt',
        reason: `is a hard link with 1 of its 2 names elsewhere, outside the job directory ${workDir}`,
      },
    ]);
    expect(await store.exists(`${PREFIX}/out/x.txt`)).toBe(false);
    expect(readFileSync(host, 'utf8')).toContain('root:x:0');
  });
});

describe('verifyManifest', () => {
  async function published() {
    const { workDir, store } = setup({ 'out/a.txt': 'AAAA', 'out/b.txt': 'BBBB' });
    const manifest = await publish(store, workDir, { OUT: 'out' });
    return { store, manifest, path: (p: string) => store.localPath(`${PREFIX}/${p}`) };
  }

  it('agrees with an untouched store, shallow and deep', async () => {
    const { store, manifest } = await published();
    expect(await verifyManifest(store, PREFIX, manifest)).toEqual([]);
    expect(await verifyManifest(store, PREFIX, manifest, { deep: true })).toEqual([]);
  });

  it('a file of another size or gone is named', async () => {
    const { store, manifest, path } = await published();
    appendFileSync(path('out/a.txt'), 'tampered');
    rmSync(path('out/b.txt'));
    expect(await verifyManifest(store, PREFIX, manifest)).toEqual([
      `${PREFIX}/out/a.txt: 12 bytes in ${store.url}, 4 in the manifest`,
      `${PREFIX}/out/b.txt: listed in the manifest, not in ${store.url}`,
    ]);
  });

  it('a same-size change is seen only by the deep check', async () => {
    const { store, manifest, path } = await published();
    writeFileSync(path('out/a.txt'), 'AAAB');
    expect(await verifyManifest(store, PREFIX, manifest)).toEqual([]);
    expect(await verifyManifest(store, PREFIX, manifest, { deep: true })).toEqual([
      `${PREFIX}/out/a.txt: sha256 ${sha256('AAAB')} in ${store.url}, ${sha256('AAAA')} in the manifest`,
    ]);
  });

  it('a doctored path is a problem, never read outside the prefix', async () => {
    const { store, manifest } = await published();
    manifest.outputs.OUT.files[0] = { path: '../../S2/qc/x', size: 1, sha256: 'x' };
    expect(await verifyManifest(store, PREFIX, manifest, { deep: true })).toEqual([
      `output OUT: "../../S2/qc/x" is not a key below ${PREFIX}`,
    ]);
  });
});

describe('readManifest', () => {
  it('is undefined where nothing was published', async () => {
    const { store } = setup();
    expect(await readManifest(store, PREFIX)).toBeUndefined();
  });

  it.each([
    ['corrupt JSON', '{"version": 1, "outputs": {'],
    ['JSON that is not a manifest', '[1, 2, 3]'],
    ['a manifest of an unknown version', '{"version": 99, "outputs": {}}'],
  ])('%s is BAD_MANIFEST naming the key', async (_what, content) => {
    const { store } = setup();
    await store.putBytes(`${PREFIX}/_strand.json`, content);
    const err = await readManifest(store, PREFIX).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'StorageError', code: 'BAD_MANIFEST' });
    expect((err as Error).message).toContain(`${PREFIX}/_strand.json`);
    expect((err as Error).message).toContain(store.url);
  });
});

describe('stepPrefix', () => {
  it.each([
    ['microbe-genome', 'S1', 'qc', 'microbe-genome/S1/qc'],
    ['microbe-genome', null, 'summary', 'microbe-genome/_all/summary'],
    ['p_1.v2', 'S-7.b_c', 'annotate.genes', 'p_1.v2/S-7.b_c/annotate.genes'],
    ['p', '_all2', 's', 'p/_all2/s'],
  ])('%s / %s / %s → %s', (pipeline, sample, step, expected) => {
    expect(stepPrefix(pipeline, sample, step)).toBe(expected);
  });

  it.each([
    ['', 'S1', 'qc', 'pipeline name may not be empty'],
    ['p', '', 'qc', 'sample id may not be empty'],
    ['p', 'S1', '', 'step name may not be empty'],
    ['p/q', 'S1', 'qc', 'pipeline name "p/q" may only contain'],
    ['p', 'S 1', 'qc', 'sample id "S 1" may only contain'],
    ['p', 'S1/../..', 'qc', 'sample id "S1/../.." may only contain'],
    ['p', 'é', 'qc', 'sample id "é" may only contain'],
    ['p', 'S1', 'q\\c', 'step name "q\\\\c" may only contain'],
    ['..', 'S1', 'qc', 'pipeline name may not be ".."'],
    ['p', '.', 'qc', 'sample id may not be "."'],
    ['p', 'S1', '..', 'step name may not be ".."'],
    ['p', '_all', 'qc', 'sample id "_all" is reserved'],
  ])('%j / %j / %j is refused: %s', (pipeline, sample, step, message) => {
    let err: unknown;
    try {
      stepPrefix(pipeline, sample, step);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ name: 'StorageError', code: 'BAD_LAYOUT' });
    expect((err as Error).message).toContain(message);
  });
});
