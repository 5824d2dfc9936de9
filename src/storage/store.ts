/**
 * The contract every object store implements (`file://` now, `s3://` later), and `openStore`,
 * which picks one from a URL. No backend's client or connection type appears here, so the
 * engine and the publish code work with any of them unchanged.
 */
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StorageError } from './errors.js';
import { FileStore } from './file-store.js';

/** One stored object, as `list` reports it. */
export interface StoredObjectInfo {
  key: string;
  /** Bytes. */
  size: number;
}

export interface PutFileOptions {
  /**
   * The caller no longer needs the source: the store may rename it into place instead of
   * copying, and the source is gone afterwards either way.
   */
  move?: boolean;
  /**
   * The source will not change any more (a finished job's output): the store may share its data
   * (a hard link on the same file system) instead of copying it; the source stays.
   */
  share?: boolean;
}

/**
 * Keys are '/'-separated relative strings (no empty, '.' or '..' segments, no leading '/',
 * backslash or NUL). A prefix names a key and everything below it: `a/S1` covers `a/S1` and
 * `a/S1/x`, never `a/S10`.
 */
export interface ObjectStore {
  /** Where the store lives, e.g. `file:///abs/dir` or `s3://bucket/prefix`. */
  readonly url: string;
  /** Stores a local file; atomic: readers see the old object or the whole new one. */
  putFile(key: string, localPath: string, options?: PutFileOptions): Promise<void>;
  /** Stores bytes; atomic like `putFile`. */
  putBytes(key: string, data: Uint8Array | string): Promise<void>;
  /** The object's bytes; StorageError NOT_FOUND when there is none. */
  get(key: string): Promise<Buffer>;
  exists(key: string): Promise<boolean>;
  /** Objects at or below `prefix` ('' = all), sorted by key. */
  list(prefix: string): Promise<StoredObjectInfo[]>;
  /** Removes every object at or below `prefix` (which may not be ''); no error if none. */
  delete(prefix: string): Promise<void>;
  /** A path local tools can read the object (or prefix) from in place; undefined if remote. */
  localPath(key: string): string | undefined;
}

export interface OpenStoreOptions {
  /** The Strand home; the default store is `<home>/store`. */
  home: string;
}

/** Opens the store at `url` (`file://…`, a plain path, or none for `<home>/store`). */
export function openStore(url: string | undefined, options: OpenStoreOptions): ObjectStore {
  if (url === undefined || url === '') return new FileStore(join(resolve(options.home), 'store'));
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) return new FileStore(resolve(url));
  if (scheme === 'file') {
    let path: string;
    try {
      path = fileURLToPath(url);
    } catch (e) {
      throw new StorageError(
        'BAD_URL',
        `store URL ${JSON.stringify(url)} is not a local file URL (${(e as Error).message}); use file:///absolute/path`,
      );
    }
    return new FileStore(path);
  }
  if (scheme === 's3') {
    throw new StorageError(
      'UNSUPPORTED',
      `store ${url}: s3:// stores are not supported yet; use a file:// URL or a directory`,
    );
  }
  throw new StorageError(
    'UNSUPPORTED',
    `store ${url}: unknown scheme "${scheme}://" (use file:// or a directory)`,
  );
}
