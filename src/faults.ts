/**
 * Faults of the machine rather than of a job or an execution: a full disk, a quota, a database
 * that cannot be written or reached. The engine and the Batch do not record them as task or job
 * failures (the job did nothing wrong, and a redrive would be needed to undo that); they stop
 * instead, with everything committed kept, and `strand resume` carries on once the cause is gone.
 */

const CODES = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'SQLITE_FULL', 'SQLITE_READONLY']);
const MESSAGES = /No space left on device|Disk quota exceeded|database or disk is full/i;

/**
 * Whether an error means the disk (or the database on it) cannot take more writes, or the
 * results server cannot be reached (a ResultsError CONNECT_FAILED: its outage is not a step's
 * failure either).
 */
export function exhausted(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; name?: unknown } | null | undefined;
  if (e?.name === 'ResultsError' && e.code === 'CONNECT_FAILED') return true;
  if (typeof e?.code === 'string' && (CODES.has(e.code) || e.code.startsWith('SQLITE_IOERR')))
    return true;
  return typeof e?.message === 'string' && MESSAGES.test(e.message);
}
