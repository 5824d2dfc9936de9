/**
 * The behaviour every object store backend must show (`file://` now, `s3://` later). Each test
 * gets a fresh, empty store from `makeStore`; local source files live in a temp directory.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ObjectStore, StoreLockHandle } from '../../src/storage/store.js';

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
  ['reserved lock directory', '.strand-locks/x'],
];

export interface StoreConformanceOptions {
  /**
   * Makes a lock holder stop renewing without releasing, as one whose machine hung would; the
   * takeover test is skipped without it.
   */
  abandonLock?: (lock: StoreLockHandle) => void;
}

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

/** Polls `done` until it holds or `ms` pass (then fails naming `what`). */
async function until(what: string, done: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Runs the shared object store behaviour suite against a backend. */
export function storeConformance(
  name: string,
  makeStore: () => ObjectStore | Promise<ObjectStore>,
  options: StoreConformanceOptions = {},
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

    it('putFile and putBytes return the size and sha256 of what they stored', async () => {
      const store = await makeStore();
      const content = 'ACGT\n'.repeat(5000);
      expect(await store.putFile('d/file', localFile(content))).toEqual({
        size: content.length,
        sha256: sha256(content),
      });
      expect(await store.putBytes('d/bytes', 'héllo')).toEqual({
        size: Buffer.byteLength('héllo'),
        sha256: sha256('héllo'),
      });
      expect(await store.putBytes('d/empty', new Uint8Array())).toEqual({
        size: 0,
        sha256: sha256(''),
      });
    });

    it('putFile stores a copy: changing the source afterwards leaves the object as it was', async () => {
      const store = await makeStore();
      const source = localFile('published\n');
      await store.putFile('c/out.txt', source);
      appendFileSync(source, 'written after the publish\n');
      writeFileSync(source, 'rewritten');
      expect((await store.get('c/out.txt')).toString()).toBe('published\n');
      expect(await store.list('c')).toEqual([{ key: 'c/out.txt', size: 10 }]);
    });

    it('read streams an object; NOT_FOUND for a missing key or a prefix', async () => {
      const store = await makeStore();
      const data = Buffer.alloc(3 * 1024 * 1024 + 7, 'z');
      await store.putBytes('r/big', data);
      const chunks: Buffer[] = [];
      for await (const chunk of await store.read('r/big')) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).equals(data)).toBe(true);
      await expect(store.read('r/none')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(store.read('r')).rejects.toMatchObject({ code: 'NOT_FOUND' });
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

    it('head gives the size and the time of storing; none for a prefix or a missing key', async () => {
      const store = await makeStore();
      const before = Date.now();
      await store.putBytes('h/S1/out.txt', 'twelve bytes');
      const head = await store.head('h/S1/out.txt');
      expect(head?.size).toBe(12);
      // File systems keep coarser times than Date.now(): a second either side.
      expect(head!.lastModified).toBeGreaterThan(before - 1000);
      expect(head!.lastModified).toBeLessThan(Date.now() + 1000);
      expect(await store.head('h/S1')).toBeUndefined();
      expect(await store.head('h/S1/none')).toBeUndefined();
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

    describe('prefix locks', () => {
      it('one holder at a time: a second waits until the first releases', async () => {
        const store = await makeStore();
        const first = await store.lock('p/S1/qc');
        await first.check();
        const events: string[] = [];
        const second = store.lock('p/S1/qc').then((lock) => {
          events.push('second locked');
          return lock;
        });
        // Still held: a bounded wait gives up, naming the prefix.
        const err = await store.lock('p/S1/qc', { waitMs: 200 }).catch((e: unknown) => e);
        expect(err).toMatchObject({ name: 'StorageError', code: 'LOCK_TIMEOUT' });
        expect((err as Error).message).toContain('"p/S1/qc"');
        expect((err as Error).message).toContain(`process ${process.pid}`);
        expect(events).toEqual([]);
        events.push('first released');
        await first.release();
        const lock = await second;
        expect(events).toEqual(['first released', 'second locked']);
        await lock.check();
        await lock.release();
      });

      it('locks of other prefixes are independent, nested and look-alike ones too', async () => {
        const store = await makeStore();
        const held = await Promise.all(
          ['p/S1/qc', 'p/S1/qc/out', 'p/S1', 'p/S10/qc', 'p/S1/qc2'].map((prefix) =>
            store.lock(prefix, { waitMs: 2000 }),
          ),
        );
        for (const lock of held) await lock.check();
        for (const lock of held) await lock.release();
      });

      it('a released lock reports LOCK_LOST on check; releasing twice is harmless', async () => {
        const store = await makeStore();
        const lock = await store.lock('p/S1/qc');
        await lock.release();
        await lock.release();
        await expect(lock.check()).rejects.toMatchObject({ code: 'LOCK_LOST' });
        const again = await store.lock('p/S1/qc', { waitMs: 2000 });
        await again.release();
      });

      it('of many writers racing for one prefix, one holds it at a time', async () => {
        const store = await makeStore();
        let inside = 0;
        let most = 0;
        const order: number[] = [];
        await Promise.all(
          Array.from({ length: 8 }, async (_, i) => {
            for (let round = 0; round < 3; round++) {
              const lock = await store.lock('race/S1/qc');
              inside++;
              most = Math.max(most, inside);
              // Real store work while holding it, so the others get to try.
              await store.putBytes(`race/S1/qc/w${i}`, String(round));
              await lock.check();
              inside--;
              order.push(i);
              await lock.release();
            }
          }),
        );
        expect(most).toBe(1);
        expect(order).toHaveLength(24);
      });

      it('lock and sweep refuse a bad or empty prefix with BAD_KEY', async () => {
        const store = await makeStore();
        for (const prefix of ['', 'a/../b', '/abs']) {
          await expect(store.lock(prefix)).rejects.toMatchObject({ code: 'BAD_KEY' });
          await expect(store.sweep(prefix)).rejects.toMatchObject({ code: 'BAD_KEY' });
        }
      });

      it('locks are not objects: list shows none of them', async () => {
        const store = await makeStore();
        await store.putBytes('l/S1/qc/x', 'x');
        const lock = await store.lock('l/S1/qc');
        expect(await store.list('')).toEqual([{ key: 'l/S1/qc/x', size: 1 }]);
        await lock.release();
        expect(await store.list('')).toEqual([{ key: 'l/S1/qc/x', size: 1 }]);
      });

      it.skipIf(!options.abandonLock)(
        'a holder not heard from for the TTL is taken over, and its check reports LOCK_LOST',
        async () => {
          const store = await makeStore();
          const ttlMs = 300;
          const gone = await store.lock('t/S1/qc', { ttlMs });
          options.abandonLock!(gone);
          let taken: StoreLockHandle | undefined;
          const taking = store.lock('t/S1/qc', { ttlMs, waitMs: 10_000 }).then((l) => (taken = l));
          await until('the takeover', () => taken !== undefined);
          await taking;
          const err = await gone.check().catch((e: unknown) => e);
          expect(err).toMatchObject({ name: 'StorageError', code: 'LOCK_LOST' });
          expect((err as Error).message).toContain('"t/S1/qc"');
          await taken!.check();
          // The old holder's release must not free the new holder's lock.
          await gone.release();
          await expect(store.lock('t/S1/qc', { ttlMs, waitMs: 100 })).rejects.toMatchObject({
            code: 'LOCK_TIMEOUT',
          });
          await taken!.release();
        },
      );

      it('a live holder renews: it is not taken over while it holds the lock', async () => {
        const store = await makeStore();
        const ttlMs = 200;
        const holder = await store.lock('h/S1/qc', { ttlMs });
        // Three TTLs of trying: a holder that renews keeps it the whole time.
        await expect(store.lock('h/S1/qc', { ttlMs, waitMs: 3 * ttlMs })).rejects.toMatchObject({
          code: 'LOCK_TIMEOUT',
        });
        await holder.check();
        await holder.release();
      });
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
          ['read', () => store.read(key)],
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
