/**
 * The behaviour every object store backend must show (`file://` now, `s3://` later). Each test
 * gets a fresh, empty store from `makeStore`; local source files live in a temp directory.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ObjectStore } from '../../src/storage/store.js';

const BAD_KEYS: [string, string][] = [
  ['empty', ''],
  ['leading slash', '/a/b'],
  ['empty segment', 'a//b'],
  ['trailing slash', 'a/b/'],
  ['dot segment', 'a/./b'],
  ['leading dot segment', './a'],
  ['dot-dot segment', 'a/../b'],
  ['climbing out', '../outside'],
  ['only dot-dot', '..'],
  ['backslash', 'a\\b'],
  ['NUL', 'a\0b'],
  ['reserved temp name', 'a/.strand-tmp-123'],
];

/** Runs the shared object store behaviour suite against a backend. */
export function storeConformance(
  name: string,
  makeStore: () => ObjectStore | Promise<ObjectStore>,
): void {
  describe(`store conformance: ${name}`, () => {
    const scratch = mkdtempSync(join(tmpdir(), 'strand-store-src-'));
    let counter = 0;
    const localFile = (content: string | Buffer): string => {
      const path = join(scratch, `src-${counter++}`);
      writeFileSync(path, content);
      return path;
    };
    afterAll(() => rmSync(scratch, { recursive: true, force: true }));

    it('putBytes then get returns the same bytes; exists and list see the object', async () => {
      const store = await makeStore();
      const data = Buffer.from([0, 1, 2, 255, 10, 13]);
      await store.putBytes('p/S1/qc/out/r1.fq', data);
      expect(await store.get('p/S1/qc/out/r1.fq')).toEqual(data);
      expect(await store.exists('p/S1/qc/out/r1.fq')).toBe(true);
      expect(await store.list('p')).toEqual([{ key: 'p/S1/qc/out/r1.fq', size: 6 }]);
    });

    it('putBytes takes a string as UTF-8', async () => {
      const store = await makeStore();
      await store.putBytes('a/utf8.txt', 'héllo ✓');
      expect((await store.get('a/utf8.txt')).toString('utf8')).toBe('héllo ✓');
      expect(await store.list('a/utf8.txt')).toEqual([
        { key: 'a/utf8.txt', size: Buffer.byteLength('héllo ✓') },
      ]);
    });

    it('stores an empty object', async () => {
      const store = await makeStore();
      await store.putBytes('empty', '');
      expect((await store.get('empty')).length).toBe(0);
      expect(await store.exists('empty')).toBe(true);
      expect(await store.list('')).toEqual([{ key: 'empty', size: 0 }]);
    });

    it('putFile copies a local file and leaves the source in place', async () => {
      const store = await makeStore();
      const source = localFile('ACGT\n'.repeat(1000));
      await store.putFile('p/S1/asm/contigs.fa', source);
      expect((await store.get('p/S1/asm/contigs.fa')).toString()).toBe('ACGT\n'.repeat(1000));
      expect(await readFile(source, 'utf8')).toBe('ACGT\n'.repeat(1000));
    });

    it('putFile with move stores the content and the source is gone', async () => {
      const store = await makeStore();
      const source = localFile('moved');
      await store.putFile('m/x', source, { move: true });
      expect((await store.get('m/x')).toString()).toBe('moved');
      await expect(readFile(source)).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('putFile of a missing source or a directory is BAD_SOURCE naming both', async () => {
      const store = await makeStore();
      const missing = join(scratch, 'does-not-exist');
      const err = await store.putFile('k', missing).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'StorageError', code: 'BAD_SOURCE' });
      expect((err as Error).message).toContain(missing);
      expect((err as Error).message).toContain('"k"');
      await expect(store.putFile('k', scratch)).rejects.toMatchObject({ code: 'BAD_SOURCE' });
      expect(await store.exists('k')).toBe(false);
    });

    it('get of a missing key is NOT_FOUND naming the key and the store', async () => {
      const store = await makeStore();
      const err = await store.get('p/S1/nothing.txt').catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'StorageError', code: 'NOT_FOUND' });
      expect((err as Error).message).toContain('p/S1/nothing.txt');
      expect((err as Error).message).toContain(store.url);
    });

    it('a prefix is not an object: get is NOT_FOUND and exists is false', async () => {
      const store = await makeStore();
      await store.putBytes('dir/child', 'x');
      expect(await store.exists('dir')).toBe(false);
      expect(await store.exists('dir/child/deeper')).toBe(false);
      expect(await store.exists('nothing')).toBe(false);
      await expect(store.get('dir')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it('overwriting replaces the object; readers see the old or the new one, never a mix', async () => {
      const store = await makeStore();
      const size = 4 * 1024 * 1024;
      const a = Buffer.alloc(size, 'a');
      const b = Buffer.alloc(size, 'b');
      const sources = [localFile(a), localFile(b)];
      await store.putBytes('big', a);
      let writing = true;
      const writer = (async () => {
        for (let i = 0; i < 20; i++) {
          if (i % 2 === 0) await store.putFile('big', sources[i % 4 === 0 ? 1 : 0]);
          else await store.putBytes('big', i % 4 === 1 ? b : a);
        }
        writing = false;
      })();
      let reads = 0;
      while (writing) {
        const got = await store.get('big');
        expect(got.length).toBe(size);
        const first = got[0];
        expect(got.every((byte) => byte === first)).toBe(true);
        reads++;
      }
      await writer;
      expect(reads).toBeGreaterThan(0);
      expect(await store.list('')).toEqual([{ key: 'big', size }]);
    });

    it('list is sorted, reports sizes and matches whole segments', async () => {
      const store = await makeStore();
      for (const key of ['p/S10/qc/r1', 'p/S1/qc/r2', 'p/S1/qc/r1', 'p/S1/asm/c.fa', 'q/x']) {
        await store.putBytes(key, key);
      }
      expect(await store.list('p/S1')).toEqual([
        { key: 'p/S1/asm/c.fa', size: 13 },
        { key: 'p/S1/qc/r1', size: 10 },
        { key: 'p/S1/qc/r2', size: 10 },
      ]);
      expect(await store.list('p/S1/')).toEqual(await store.list('p/S1'));
      expect((await store.list('')).map((o) => o.key)).toEqual([
        'p/S1/asm/c.fa',
        'p/S1/qc/r1',
        'p/S1/qc/r2',
        'p/S10/qc/r1',
        'q/x',
      ]);
      expect(await store.list('p/S1/qc/r1')).toEqual([{ key: 'p/S1/qc/r1', size: 10 }]);
      expect(await store.list('p/S')).toEqual([]);
      expect(await store.list('nothing/here')).toEqual([]);
    });

    it('delete removes everything at or below the prefix and nothing beside it', async () => {
      const store = await makeStore();
      for (const key of ['p/S1/qc/r1', 'p/S1/asm/c', 'p/S10/qc/r1', 'p/S1.bak']) {
        await store.putBytes(key, 'x');
      }
      await store.delete('p/S1');
      expect((await store.list('')).map((o) => o.key)).toEqual(['p/S1.bak', 'p/S10/qc/r1']);
      expect(await store.exists('p/S1/qc/r1')).toBe(false);
      await store.delete('p/S10/qc/r1');
      expect((await store.list('')).map((o) => o.key)).toEqual(['p/S1.bak']);
      await store.delete('not/there');
      await store.delete('p/S1.bak/below-an-object');
      expect(await store.list('')).toEqual([{ key: 'p/S1.bak', size: 1 }]);
    });

    it('a deleted key can be stored again', async () => {
      const store = await makeStore();
      await store.putBytes('a/b/c', 'one');
      await store.delete('a');
      await store.putBytes('a/b/c', 'two');
      expect((await store.get('a/b/c')).toString()).toBe('two');
    });

    it('delete of the whole store ("") is refused', async () => {
      const store = await makeStore();
      await store.putBytes('keep', 'x');
      await expect(store.delete('')).rejects.toMatchObject({ code: 'BAD_KEY' });
      expect(await store.exists('keep')).toBe(true);
    });

    it('keys may hold spaces, unicode and dots inside names', async () => {
      const store = await makeStore();
      const keys = ['p/S 1/a b.txt', 'p/ß/ünï.fa', 'p/.hidden', 'p/..x/y..', 'p/%20#?'];
      for (const key of keys) await store.putBytes(key, key);
      for (const key of keys) expect((await store.get(key)).toString()).toBe(key);
      expect((await store.list('p')).map((o) => o.key)).toEqual([...keys].sort());
    });

    it('localPath, when the store has one, reads the object in place', async () => {
      const store = await makeStore();
      await store.putBytes('l/x.txt', 'in place');
      const path = store.localPath('l/x.txt');
      if (path !== undefined) expect(await readFile(path, 'utf8')).toBe('in place');
    });

    describe('bad keys are BAD_KEY naming the key, for every operation', () => {
      it.each(BAD_KEYS)('%s', async (_what, key) => {
        const store = await makeStore();
        const source = localFile('x');
        const shown = JSON.stringify(key);
        const attempts: [string, () => Promise<unknown>][] = [
          ['putBytes', () => store.putBytes(key, 'x')],
          ['putFile', () => store.putFile(key, source)],
          ['get', () => store.get(key)],
          ['exists', () => store.exists(key)],
          ['localPath', async () => store.localPath(key)],
        ];
        // '' and a trailing '/' are valid prefixes; every other bad key is a bad prefix too.
        if (key !== '' && key !== 'a/b/') {
          attempts.push(['list', () => store.list(key)]);
          attempts.push(['delete', () => store.delete(key)]);
        }
        for (const [op, attempt] of attempts) {
          const err = await attempt().then(
            () => new Error(`${op} accepted ${shown}`),
            (e: unknown) => e,
          );
          expect(err, op).toMatchObject({ name: 'StorageError', code: 'BAD_KEY' });
          expect((err as Error).message, op).toContain(shown);
        }
        expect(await store.list('')).toEqual([]);
      });
    });
  });
}
