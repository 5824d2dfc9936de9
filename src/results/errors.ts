/**
 * The one error type of the results module. It lives apart from `sink.ts` so every sink and the
 * extractor can throw it without importing each other (no import cycle).
 */

/** Stable codes callers may branch on; messages are for people and may change. */
export type ResultsErrorCode =
  /** The file exists but is not a Strand results database; it was left untouched. */
  | 'NOT_RESULTS_DB'
  /** The results database was written by a newer Strand. */
  | 'NEWER_SCHEMA'
  /**
   * A results server could not be reached or refused the connection (address, credentials, no
   * such database); the message names it with any password masked.
   */
  | 'CONNECT_FAILED'
  /** The database could not be opened or written for another reason (permissions, I/O). */
  | 'DB_FAILED'
  /** A step row or metrics table handed to a sink is malformed (a caller's bug). */
  | 'BAD_INPUT'
  /** A metric value does not fit the type its column already has in the database. */
  | 'TYPE_CONFLICT'
  /** A results file cannot be read or parsed, or a value does not fit its declared type. */
  | 'BAD_RESULTS_FILE';

/** A results failure with a stable `code` and a message naming the file, step or column. */
export class ResultsError extends Error {
  constructor(
    readonly code: ResultsErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ResultsError';
  }
}
