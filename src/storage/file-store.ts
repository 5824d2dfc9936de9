/**
 * The default object store: a directory on the local filesystem (`<home>/store`). Objects are
 * plain files at `<root>/<key>`, so local tools read published outputs in place. Every write
 * goes to a temporary name in the target directory and is renamed into place, which is atomic
 * on POSIX filesystems: a reader sees the old file or the whole new one, never a torn one.
 * Objects are copies (reflinks where the file system can), never links to a file someone can
 * still write, and read-only; their digests are of the temporary copy, before it is renamed.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import {
  chmod,
  copyFile,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  writeFile,
} from 'node:fs/promises';
import type { Dirent, Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { digestFile } from './digest.js';
import { StorageError } from './errors.js';
import { acquireFileLock, DEFAULT_LOCK_TTL_MS } from './file-lock.js';
import { checkKey, checkPrefix, LOCKS_DIR, TEMP_PREFIX, tempName, tempWriter } from './keys.js';
import type {
  ObjectStore,
  PutFileOptions,
  StoredFileInfo,
  StoredObjectHead,
  StoredObjectInfo,
  StoreLockHandle,
  StoreLockOptions,
} from './store.js';
import { writerState } from './writer.js';

/** Write bits are cleared on every object: nobody edits one in place. */
const NO_WRITE = ~0o222;

/** A concurrent `delete` may prune the directory between mkdir and write; try again. */
const WRITE_TRIES = 3;

/** An object store in a local directory: objects are files at `<root>/<key>`. */
export class FileStore implements ObjectStore {
  readonly url: string;
  private readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.url = pathToFileURL(this.root).href;
  }

  async putBytes(key: string, data: Uint8Array | string): Promise<StoredFileInfo> {
    const target = this.pathOf(checkKey(key));
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    await this.writeAtomic(key, target, async (tmp) => {
      await writeFile(tmp, bytes, { flag: 'wx', mode: 0o444 });
    });
    return { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  }

  async putFile(
    key: string,
    localPath: string,
    options: PutFileOptions = {},
  ): Promise<StoredFileInfo> {
    const target = this.pathOf(checkKey(key));
    const source = await sourceStats(key, localPath);
    // Renaming a symlink would store the link, not the data it points to.
    if (options.move && !source.isSymbolicLink()) {
      try {
        await this.ensureParent(key, target);
        await chmod(localPath, source.mode & 0o777 & NO_WRITE);
        await rename(localPath, target);
        return await digestFile(target);
      } catch (e) {
        if (errno(e) !== 'EXDEV') throw this.mapWriteError(key, e);
      }
    }
    let stored: StoredFileInfo | undefined;
    await this.writeAtomic(key, target, async (tmp) => {
      // A copy, never a link: the job (or a process it left behind) may write its file later.
      await copyFile(localPath, tmp, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
      await chmod(tmp, (await stat(tmp)).mode & 0o777 & NO_WRITE);
      stored = await digestFile(tmp);
    });
    if (options.move) await rm(localPath, { force: true });
    return stored!;
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await readFile(this.pathOf(checkKey(key)));
    } catch (e) {
      if (['ENOENT', 'ENOTDIR', 'EISDIR'].includes(errno(e) ?? '')) {
        throw new StorageError('NOT_FOUND', `no object "${key}" in store ${this.url}`);
      }
      throw e;
    }
  }

  async read(key: string): Promise<Readable> {
    const notFound = () => new StorageError('NOT_FOUND', `no object "${key}" in store ${this.url}`);
    let handle;
    try {
      handle = await open(this.pathOf(checkKey(key)), 'r');
    } catch (e) {
      if (['ENOENT', 'ENOTDIR', 'EISDIR'].includes(errno(e) ?? '')) throw notFound();
      throw e;
    }
    // A prefix is a directory here, and opens: it is still not an object.
    if (!(await handle.stat()).isFile()) {
      await handle.close();
      throw notFound();
    }
    return handle.createReadStream();
  }

  async exists(key: string): Promise<boolean> {
    const st = await statOrUndefined(this.pathOf(checkKey(key)));
    return st?.isFile() ?? false;
  }

  async head(key: string): Promise<StoredObjectHead | undefined> {
    const st = await statOrUndefined(this.pathOf(checkKey(key)));
    return st?.isFile() ? { size: st.size, lastModified: st.mtimeMs } : undefined;
  }

  async list(prefix: string): Promise<StoredObjectInfo[]> {
    const base = checkPrefix(prefix, true);
    const path = base === '' ? this.root : this.pathOf(base);
    const st = await statOrUndefined(path);
    if (!st) return [];
    if (st.isFile()) return [{ key: base, size: st.size }];
    const found: StoredObjectInfo[] = [];
    await walk(path, base, found);
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(prefix: string): Promise<void> {
    const path = this.pathOf(checkPrefix(prefix, false));
    try {
      await rm(path, { recursive: true, force: true });
    } catch (e) {
      // A parent is a file: nothing can be stored below it, so there is nothing to delete.
      if (errno(e) !== 'ENOTDIR') throw e;
    }
    // Empty directories are not objects; pruning them keeps the tree matching `list`.
    for (let dir = dirname(path); dir.startsWith(this.root + '/'); dir = dirname(dir)) {
      try {
        await rmdir(dir);
      } catch {
        break;
      }
    }
  }

  localPath(key: string): string {
    return this.pathOf(checkKey(key));
  }

  async lock(prefix: string, options: StoreLockOptions = {}): Promise<StoreLockHandle> {
    const base = checkPrefix(prefix, false);
    // One directory per prefix, named by its hash: keys may be longer than a file name.
    const id = createHash('sha256').update(base).digest('hex').slice(0, 32);
    return acquireFileLock(join(this.root, LOCKS_DIR, id), base, {
      ...options,
      what: `"${base}" in ${this.url}`,
    });
  }

  async sweep(prefix: string): Promise<void> {
    const path = this.pathOf(checkPrefix(prefix, false));
    await sweepDir(path, Date.now() - DEFAULT_LOCK_TTL_MS);
  }

  private pathOf(key: string): string {
    return join(this.root, ...key.split('/'));
  }

  private async writeAtomic(
    key: string,
    target: string,
    write: (tmp: string) => Promise<void>,
  ): Promise<void> {
    const tmp = join(dirname(target), tempName());
    for (let attempt = 1; ; attempt++) {
      try {
        await this.ensureParent(key, target);
        await write(tmp);
        await rename(tmp, target);
        return;
      } catch (e) {
        // Cleanup must not hide the error that matters (e.g. ENOTDIR under a key conflict).
        await rm(tmp, { force: true }).catch(() => undefined);
        if (errno(e) === 'ENOENT' && attempt < WRITE_TRIES) continue;
        throw this.mapWriteError(key, e);
      }
    }
  }

  private async ensureParent(key: string, target: string): Promise<void> {
    try {
      await mkdir(dirname(target), { recursive: true });
    } catch (e) {
      if (errno(e) === 'EEXIST' || errno(e) === 'ENOTDIR') {
        throw new StorageError(
          'KEY_CONFLICT',
          `cannot store "${key}" in ${this.url}: a key above it is already an object`,
        );
      }
      throw e;
    }
  }

  private mapWriteError(key: string, e: unknown): unknown {
    if (e instanceof StorageError) return e;
    switch (errno(e)) {
      case 'ENOTDIR':
        return new StorageError(
          'KEY_CONFLICT',
          `cannot store "${key}" in ${this.url}: a key above it is already an object`,
        );
      case 'EISDIR':
      case 'ENOTEMPTY':
      case 'EEXIST':
        return new StorageError(
          'KEY_CONFLICT',
          `cannot store "${key}" in ${this.url}: other objects are stored below it`,
        );
      default:
        return e;
    }
  }
}

async function sourceStats(key: string, localPath: string): Promise<Stats> {
  let link: Stats;
  let target: Stats | undefined;
  try {
    link = await lstat(localPath);
    target = link.isSymbolicLink() ? await stat(localPath) : link;
  } catch {
    throw new StorageError('BAD_SOURCE', `cannot store "${key}": ${localPath} does not exist`);
  }
  if (!target.isFile()) {
    throw new StorageError('BAD_SOURCE', `cannot store "${key}": ${localPath} is not a file`);
  }
  return link;
}

/**
 * A directory's entries; none when it is not there (removed by a concurrent delete while we
 * walked: it holds nothing any more).
 */
async function entriesOf(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return [];
    throw e;
  }
}

async function walk(dir: string, keyPrefix: string, out: StoredObjectInfo[]): Promise<void> {
  for (const entry of await entriesOf(dir)) {
    if (entry.name.startsWith(TEMP_PREFIX) || entry.name === LOCKS_DIR) continue;
    const key = keyPrefix === '' ? entry.name : `${keyPrefix}/${entry.name}`;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      await walk(path, key, out);
    } else if (entry.isFile()) {
      const st = await statOrUndefined(path);
      if (st?.isFile()) out.push({ key, size: st.size });
    }
  }
}

/**
 * Removes temporary files below `dir` whose writer is gone: on this machine when its process
 * is; from another machine (or a name that does not say) when unchanged since `staleBefore`.
 */
async function sweepDir(dir: string, staleBefore: number): Promise<void> {
  for (const entry of await entriesOf(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      await sweepDir(path, staleBefore);
    } else if (entry.isFile() && entry.name.startsWith(TEMP_PREFIX)) {
      const writer = tempWriter(entry.name);
      const state = writer ? writerState(writer) : 'unknown';
      const gone =
        state === 'dead' ||
        (state === 'unknown' && ((await statOrUndefined(path))?.mtimeMs ?? 0) < staleBefore);
      if (gone) await rm(path, { force: true });
    }
  }
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return undefined;
    throw e;
  }
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}
