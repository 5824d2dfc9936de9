/**
 * The one error type of the storage module. It lives apart from `store.ts` so backends can
 * throw it without importing the module that constructs them (no import cycle).
 */

/** Stable codes callers may branch on; messages are for people and may change. */
export type StorageErrorCode =
  | 'BAD_KEY'
  | 'BAD_URL'
  | 'UNSUPPORTED'
  | 'NOT_FOUND'
  | 'BAD_SOURCE'
  | 'KEY_CONFLICT'
  | 'BAD_LAYOUT'
  | 'BAD_OUTPUT_PATH'
  | 'OUTPUT_OUTSIDE_JOB_DIR'
  | 'OUTPUT_MISSING'
  | 'BAD_MANIFEST'
  | 'LOCK_TIMEOUT'
  | 'LOCK_LOST'
  | 'NO_BUCKET'
  | 'ACCESS_DENIED'
  | 'UNREACHABLE'
  | 'UNAVAILABLE';

/** A storage failure with a stable `code` and a message that names the key, path or store. */
export class StorageError extends Error {
  constructor(
    readonly code: StorageErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StorageError';
  }
}
