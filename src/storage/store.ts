/**
 * The contract every object store implements (`file://`, `s3://`), and `openStore`,
 * which picks one from a URL. No backend's client or connection type appears here, so the
 * engine and the publish code work with any of them unchanged.
 */
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { StorageError } from './errors.js';
import { FileStore } from './file-store.js';
import { S3Store } from './s3-store.js';

/** One stored object, as `list` reports it. */
export interface StoredObjectInfo {
  key: string;
  /** Bytes. */
  size: number;
}

/** What `head` tells of one object, as S3's HeadObject does. */
export interface StoredObjectHead {
  /** Bytes. */
  size: number;
  /** When the object was stored, epoch milliseconds. */
  lastModified: number;
}

/** What a put stored: the size and sha256 of the bytes now at the key, not of the source. */
export interface StoredFileInfo {
  /** Bytes. */
  size: number;
  /** Hex. */
  sha256: string;
}

export interface PutFileOptions {
  /**
   * The caller no longer needs the source and nothing else writes it: the store may rename it
   * into place instead of copying, and the source is gone afterwards either way.
   */
  move?: boolean;
}

export interface StoreLockOptions {
  /** How long to wait for a live holder before LOCK_TIMEOUT (default 10 minutes). */
  waitMs?: number;
  /**
   * A holder not heard from for this long (it renews every quarter of it) is taken to be
   * gone and its lock is taken over (default 30 s). Every writer of a prefix must use the same.
   */
  ttlMs?: number;
}

/** A held prefix lock; it renews itself until released. */
export interface StoreLockHandle {
  readonly prefix: string;
  /**
   * Throws StorageError LOCK_LOST when another writer took the lock over (this holder was not
   * heard from for the TTL) or it was released. Call it right before committing (the manifest).
   */
  check(): Promise<void>;
  /** Gives the lock up; nothing happens when it was already lost or released. */
  release(): Promise<void>;
}

/**
 * Keys are '/'-separated relative strings (no empty, '.' or '..' segments, no leading '/',
 * backslash or NUL). A prefix names a key and everything below it: `a/S1` covers `a/S1` and
 * `a/S1/x`, never `a/S10`.
 */
export interface ObjectStore {
  /** Where the store lives, e.g. `file:///abs/dir` or `s3://bucket/prefix`. */
  readonly url: string;
  /**
   * Stores a copy of a local file (a reflink where the file system can, never a link to the
   * source, which may change afterwards); atomic: readers see the old object or the whole new
   * one. Stored objects are read-only. Returns the size and sha256 of the bytes stored.
   */
  putFile(key: string, localPath: string, options?: PutFileOptions): Promise<StoredFileInfo>;
  /** Stores bytes; atomic and read-only like `putFile`. */
  putBytes(key: string, data: Uint8Array | string): Promise<StoredFileInfo>;
  /** The object's bytes; StorageError NOT_FOUND when there is none. */
  get(key: string): Promise<Buffer>;
  /** The object's bytes as a stream, for objects too large to hold; NOT_FOUND when none. */
  read(key: string): Promise<Readable>;
  exists(key: string): Promise<boolean>;
  /** The object's size and time of storing; undefined when there is none. */
  head(key: string): Promise<StoredObjectHead | undefined>;
  /** Objects at or below `prefix` ('' = all), sorted by key. */
  list(prefix: string): Promise<StoredObjectInfo[]>;
  /** Removes every object at or below `prefix` (which may not be ''); no error if none. */
  delete(prefix: string): Promise<void>;
  /** A path local tools can read the object (or prefix) from in place; undefined if remote. */
  localPath(key: string): string | undefined;
  /**
   * Takes the exclusive lock of `prefix` (which may not be ''), waiting while a live writer
   * holds it; one holder at a time across processes and machines sharing the store. A holder
   * that died (on this machine: its process is gone) or was not heard from for the TTL is
   * taken over, by exactly one waiter. Locks of different prefixes are independent, nested
   * ones too: callers lock the prefix they publish. On S3 this is a lock object written with
   * conditional writes (If-None-Match to take it, If-Match to renew, take over or release).
   * LOCK_TIMEOUT, naming the holder, when `waitMs` passes.
   */
  lock(prefix: string, options?: StoreLockOptions): Promise<StoreLockHandle>;
  /**
   * Removes what interrupted writes left below `prefix` by writers that are gone (temporary
   * files; on S3, incomplete multipart uploads). Call it holding the prefix's lock.
   */
  sweep(prefix: string): Promise<void>;
  /**
   * Confirms the store can be written and locked, for stores that can fail where they live (a
   * remote endpoint, bucket or credentials): StorageError naming what is wrong. Optional.
   */
  check?(): Promise<void>;
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
  if (scheme === 's3') return new S3Store(url);
  throw new StorageError(
    'UNSUPPORTED',
    `store ${url}: unknown scheme "${scheme}://" (use file://, s3:// or a directory)`,
  );
}
