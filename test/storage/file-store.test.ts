import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { FileLockHandle } from '../../src/storage/file-lock.js';
import { FileStore } from '../../src/storage/file-store.js';
import { tempName } from '../../src/storage/keys.js';
import { openStore } from '../../src/storage/store.js';
import { storeConformance } from './conformance.js';

const root = mkdtempSync(join(tmpdir(), 'strand-file-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshDir = (): string => join(root, `store-${counter++}`);
const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

storeConformance('file', () => new FileStore(freshDir()), {
  abandonLock: (lock) => (lock as FileLockHandle).abandon(),
});

describe('file store', () => {
  it('url is the file URL of its absolute root; localPath is the file under it', async () => {
    const dir = freshDir();
    const store = new FileStore(dir);
    expect(store.url).toBe(pathToFileURL(dir).href);
    expect(store.url.startsWith('file:///')).toBe(true);
    await store.putBytes('p/S1/qc/r1.fq', 'reads');
    expect(store.localPath('p/S1/qc/r1.fq')).toBe(join(dir, 'p', 'S1', 'qc', 'r1.fq'));
    expect(readFileSync(join(dir, 'p/S1/qc/r1.fq'), 'utf8')).toBe('reads');
  });

  it('a store whose directory does not exist yet is empty, and is created on first write', async () => {
    const dir = freshDir();
    const store = new FileStore(dir);
    expect(await store.list('')).toEqual([]);
    expect(await store.exists('x')).toBe(false);
    await store.delete('x');
    expect(existsSync(dir)).toBe(false);
    await store.putBytes('x', '1');
    expect(existsSync(join(dir, 'x'))).toBe(true);
  });

  it('leaves no temporary files behind and never lists an in-flight write', async () => {
    const dir = freshDir();
    const store = new FileStore(dir);
    await store.putBytes('a/b', 'x');
    await store.putFile('a/c', join(dir, 'a', 'b'));
    expect(readdirSync(join(dir, 'a')).sort()).toEqual(['b', 'c']);
    // What a crash in the middle of a write leaves: a temp file next to the target.
    writeFileSync(join(dir, 'a', '.strand-tmp-999-crashed'), 'half');
    expect((await store.list('')).map((o) => o.key)).toEqual(['a/b', 'a/c']);
  });

  it('delete prunes directories it emptied, up to the root', async () => {
    const dir = freshDir();
    const store = new FileStore(dir);
    await store.putBytes('p/S1/qc/deep/file', 'x');
    await store.putBytes('p/S2/qc/file', 'x');
    await store.delete('p/S1/qc/deep/file');
    expect(readdirSync(join(dir, 'p'))).toEqual(['S2']);
    expect(existsSync(dir)).toBe(true);
  });

  it('move renames within one filesystem (same inode, no copy)', async () => {
    const dir = freshDir();
    const store = new FileStore(dir);
    mkdirSync(dir, { recursive: true });
    const source = join(dir, '..', `move-src-${counter++}`);
    writeFileSync(source, 'payload');
    const inode = statSync(source).ino;
    await store.putFile('m/payload', source, { move: true });
    expect(statSync(store.localPath('m/payload')).ino).toBe(inode);
    expect(existsSync(source)).toBe(false);
  });

  it('move of a symlink stores the data it points to and removes only the link', async () => {
    const store = new FileStore(freshDir());
    const target = join(root, `link-target-${counter++}`);
    const link = join(root, `link-${counter++}`);
    writeFileSync(target, 'real data');
    symlinkSync(target, link);
    await store.putFile('l/data', link, { move: true });
    const stored = store.localPath('l/data');
    expect(readFileSync(stored, 'utf8')).toBe('real data');
    expect(statSync(stored).isFile()).toBe(true);
    expect(existsSync(link)).toBe(false);
    expect(readFileSync(target, 'utf8')).toBe('real data');
  });

  const shm = '/dev/shm';
  const otherDevice = existsSync(shm) && statSync(shm).dev !== statSync(tmpdir()).dev;
  it.skipIf(!otherDevice)(
    'move across filesystems (EXDEV) falls back to a copy and removes the source',
    async () => {
      const store = new FileStore(freshDir());
      const source = join(shm, `strand-exdev-${process.pid}-${counter++}`);
      writeFileSync(source, 'across devices');
      try {
        await store.putFile('x/y', source, { move: true });
        expect((await store.get('x/y')).toString()).toBe('across devices');
        expect(existsSync(source)).toBe(false);
      } finally {
        rmSync(source, { force: true });
      }
    },
  );

  it('an object and a prefix cannot share a key on a filesystem: KEY_CONFLICT naming it', async () => {
    const store = new FileStore(freshDir());
    await store.putBytes('a/b', 'object');
    const below = await store.putBytes('a/b/c', 'x').catch((e: unknown) => e);
    expect(below).toMatchObject({ name: 'StorageError', code: 'KEY_CONFLICT' });
    expect((below as Error).message).toContain('"a/b/c"');
    const above = await store.putBytes('a', 'x').catch((e: unknown) => e);
    expect(above).toMatchObject({ code: 'KEY_CONFLICT' });
    expect((above as Error).message).toContain('"a"');
    expect((await store.get('a/b')).toString()).toBe('object');
    expect(await store.list('')).toEqual([{ key: 'a/b', size: 6 }]);
  });
});

describe('openStore', () => {
  const home = join(root, 'home');

  it.each([
    ['no URL: <home>/store', undefined, join(home, 'store')],
    ['empty URL: <home>/store', '', join(home, 'store')],
    ['a file URL', pathToFileURL(join(root, 'elsewhere')).href, join(root, 'elsewhere')],
    ['an absolute path', join(root, 'plain'), join(root, 'plain')],
    ['a relative path (from the working directory)', 'rel/store', resolve('rel/store')],
    ['a percent-encoded file URL', pathToFileURL(join(root, 'a b')).href, join(root, 'a b')],
  ])('%s', async (_what, url, dir) => {
    const store = openStore(url, { home });
    expect(store).toBeInstanceOf(FileStore);
    expect(store.url).toBe(pathToFileURL(dir).href);
    expect(store.localPath('k')).toBe(join(dir, 'k'));
  });

  it.each([
    [
      'an s3 URL with a bad bucket name',
      's3://Bucket_1/prefix',
      'BAD_URL',
      /"Bucket_1" is not a valid bucket name/,
    ],
    ['an unknown scheme', 'gs://bucket', 'UNSUPPORTED', /unknown scheme "gs:\/\/"/],
    ['a file URL with a host', 'file://server/share', 'BAD_URL', /file:\/\/server\/share/],
  ])('%s is refused', (_what, url, code, message) => {
    let err: unknown;
    try {
      openStore(url, { home });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ name: 'StorageError', code });
    expect((err as Error).message).toMatch(message);
  });
});

describe('file store: copies, read-only objects, locks and what crashed writers leave', () => {
  const child = (...args: string[]) =>
    spawn(process.execPath, ['--import', 'tsx', 'test/storage/store-child.mts', ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
  /** Resolves once the child printed `line` (rejects if it exits first). */
  const printed = (proc: ChildProcess, line: string): Promise<void> =>
    new Promise((resolve, reject) => {
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes(`${line}\n`)) resolve();
      });
      proc.once('exit', (code) => reject(new Error(`child exited ${code} before "${line}"`)));
    });
  const exited = (proc: ChildProcess): Promise<void> =>
    new Promise((resolve) =>
      proc.exitCode !== null || proc.signalCode !== null
        ? resolve()
        : proc.once('exit', () => resolve()),
    );

  it('stores a copy, never a link: the source keeps one name, and its later writes stay out', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strand-copy-'));
    const store = new FileStore(join(dir, 'store'));
    const source = join(dir, 'reads.fq');
    writeFileSync(source, '@r1\nACGT\n+\nIIII\n');
    const stored = await store.putFile('p/S1/qc/reads.fq', source);
    const path = store.localPath('p/S1/qc/reads.fq');
    expect(statSync(path).ino).not.toBe(statSync(source).ino);
    expect(statSync(source).nlink).toBe(1);
    appendFileSync(source, '@r2\nTTTT\n+\nIIII\n');
    expect(readFileSync(path, 'utf8')).toBe('@r1\nACGT\n+\nIIII\n');
    expect(stored).toEqual({ size: 16, sha256: sha256(readFileSync(path)) });
  });

  it('objects are read-only (no write bit), whatever the source mode was', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strand-mode-'));
    const store = new FileStore(join(dir, 'store'));
    const source = join(dir, 'tool');
    writeFileSync(source, '#!/bin/sh\n', { mode: 0o755 });
    await store.putFile('p/tool', source);
    await store.putBytes('p/bytes', 'x');
    expect(statSync(store.localPath('p/tool')).mode & 0o777).toBe(0o555);
    expect(statSync(store.localPath('p/bytes')).mode & 0o222).toBe(0);
  });

  it('a holder killed with SIGKILL is taken over at once, long before the TTL', async () => {
    const root = freshDir();
    const holder = child('lock', root, 'p/S1/qc');
    await printed(holder, 'locked');
    const store = new FileStore(root);
    const waiting = await store.lock('p/S1/qc', { waitMs: 300 }).catch((e: unknown) => e);
    expect(waiting).toMatchObject({ code: 'LOCK_TIMEOUT' });
    expect((waiting as Error).message).toContain(`process ${holder.pid} on ${hostname()}`);
    holder.kill('SIGKILL');
    await exited(holder);
    // The TTL is 30 s: only seeing the holder's process gone can make this quick.
    const lock = await store.lock('p/S1/qc', { waitMs: 5_000 });
    await lock.check();
    await lock.release();
  });

  it('a lock file is written whole before it takes its number; one a dead writer left half made is swept', async () => {
    const root = freshDir();
    const store = new FileStore(root);
    const first = await store.lock('p/S1/qc');
    await first.release();
    const [dir] = readdirSync(join(root, '.strand-locks')).map((d) =>
      join(root, '.strand-locks', d),
    );
    const dead = spawn(process.execPath, ['-e', '']);
    await exited(dead);
    const machine = tempName().split('-')[2];
    const pending = `.strand-tmp-${machine}-${dead.pid}-0-dddd`;
    writeFileSync(join(dir, pending), '{"pid":');
    const lock = await store.lock('p/S1/qc', { waitMs: 1_000 });
    const names = readdirSync(dir);
    expect(names).not.toContain(pending);
    // Every numbered lock file holds its whole record: no waiter ever reads one without a holder.
    for (const name of names.filter((n) => /^\d+$/.test(n)))
      expect(JSON.parse(readFileSync(join(dir, name), 'utf8'))).toHaveProperty('prefix', 'p/S1/qc');
    await lock.release();
  });

  it('sweep removes temporary files of writers that are gone and keeps those being written', async () => {
    const root = freshDir();
    const store = new FileStore(root);
    await store.putBytes('p/S1/qc/out/kept.txt', 'kept');
    const dead = spawn(process.execPath, ['-e', '']);
    await exited(dead);
    const machine = tempName().split('-')[2];
    const names = {
      deadHere: `.strand-tmp-${machine}-${dead.pid}-0-aaaa`,
      liveHere: tempName(),
      elsewhereOld: '.strand-tmp-0123456789ab-42-7-bbbb',
      elsewhereNew: '.strand-tmp-0123456789ab-43-7-cccc',
      unsaidOld: '.strand-tmp-999-crashed',
    };
    const dirOf = join(root, 'p', 'S1', 'qc', 'out');
    for (const name of Object.values(names)) writeFileSync(join(dirOf, name), 'half');
    const old = new Date(Date.now() - 3_600_000);
    utimesSync(join(dirOf, names.elsewhereOld), old, old);
    utimesSync(join(dirOf, names.unsaidOld), old, old);
    writeFileSync(join(root, 'p', 'S1', names.deadHere), 'outside the prefix');
    await store.sweep('p/S1/qc');
    expect(readdirSync(dirOf).sort()).toEqual(
      ['kept.txt', names.liveHere, names.elsewhereNew].sort(),
    );
    expect(existsSync(join(root, 'p', 'S1', names.deadHere))).toBe(true);
  });
});
