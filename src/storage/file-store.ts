/**
 * The default object store: a directory on the local filesystem (`<home>/store`). Objects are
 * plain files at `<root>/<key>`, so local tools read published outputs in place. Every write
 * goes to a temporary name in the target directory and is renamed into place, which is atomic
 * on POSIX filesystems: a reader sees the old file or the whole new one, never a torn one.
 */
import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import {
  copyFile,
  link,
  lstat,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  writeFile,
} from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { StorageError } from './errors.js';
import { checkKey, checkPrefix, TEMP_PREFIX } from './keys.js';
import type { ObjectStore, PutFileOptions, StoredObjectInfo } from './store.js';

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

  async putBytes(key: string, data: Uint8Array | string): Promise<void> {
    const target = this.pathOf(checkKey(key));
    await this.writeAtomic(key, target, (tmp) => writeFile(tmp, data, { flag: 'wx' }));
  }

  async putFile(key: string, localPath: string, options: PutFileOptions = {}): Promise<void> {
    const target = this.pathOf(checkKey(key));
    const source = await sourceStats(key, localPath);
    // Renaming a symlink would store the link, not the data it points to.
    if (options.move && !source.isSymbolicLink()) {
      try {
        await this.ensureParent(key, target);
        await rename(localPath, target);
        return;
      } catch (e) {
        if (errno(e) !== 'EXDEV') throw this.mapWriteError(key, e);
      }
    }
    let linked = false;
    await this.writeAtomic(key, target, async (tmp) => {
      if (options.share && !source.isSymbolicLink()) {
        try {
          // No data copied; the rename below still makes it appear atomically.
          await link(localPath, tmp);
          linked = true;
          return;
        } catch (e) {
          if (!['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP'].includes(errno(e) ?? '')) throw e;
        }
      }
      await copyFile(localPath, tmp, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
    });
    if (options.move && !linked) await rm(localPath, { force: true });
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

  async exists(key: string): Promise<boolean> {
    const st = await statOrUndefined(this.pathOf(checkKey(key)));
    return st?.isFile() ?? false;
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

  private pathOf(key: string): string {
    return join(this.root, ...key.split('/'));
  }

  private async writeAtomic(
    key: string,
    target: string,
    write: (tmp: string) => Promise<void>,
  ): Promise<void> {
    const tmp = join(dirname(target), `${TEMP_PREFIX}${process.pid}-${randomUUID()}`);
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

async function walk(dir: string, keyPrefix: string, out: StoredObjectInfo[]): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    // Removed by a concurrent delete while we walked: it holds nothing any more.
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return;
    throw e;
  }
  for (const entry of entries) {
    if (entry.name.startsWith(TEMP_PREFIX)) continue;
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
