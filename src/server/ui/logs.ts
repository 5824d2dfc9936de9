/**
 * A job's log a piece at a time, as `strand logs --follow` reads it: the attempt's log file on
 * this machine from a byte offset (or an AWS Batch attempt's CloudWatch Logs), and once the
 * attempt's files are gone, the copy its stage-out published to the store. The front end asks
 * again from `nextOffset` until `complete`.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { readAttemptLog } from '../../app/index.js';
import type { JobDetail } from '../../batch/types.js';
import { parseLogRef } from '../../executors/aws-batch/aws-batch-executor.js';
import { AGGREGATE_SAMPLE, TAG } from '../../pipeline/contract.js';
import { LOG_KEY } from '../../functions/stage-out.js';
import { stepPrefix } from '../../storage/layout.js';
import { openStore } from '../../storage/store.js';
import { badRequest } from './errors.js';
import { parseCount } from './read.js';
import type { JobLogResponse } from './types.js';

/** The most text one answer carries. */
export const MAX_LOG_CHUNK = 256 * 1024;

const TERMINAL = new Set(['SUCCEEDED', 'FAILED']);

/** `bytes` without a UTF-8 sequence cut at its end (it comes whole with the next piece). */
export function wholeCharacters(bytes: Buffer): Buffer {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const b = bytes[bytes.length - back];
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const length = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return length > back ? bytes.subarray(0, bytes.length - back) : bytes;
  }
  return bytes;
}

/** Up to MAX_LOG_CHUNK bytes of `path` from `offset`; undefined when the file is not there. */
function readPiece(path: string, offset: number): { bytes: Buffer; size: number } | undefined {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return undefined;
  }
  if (offset >= size) return { bytes: Buffer.alloc(0), size };
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(Math.min(MAX_LOG_CHUNK, size - offset));
    const n = readSync(fd, buf, 0, buf.length, offset);
    return { bytes: buf.subarray(0, n), size };
  } finally {
    closeSync(fd);
  }
}

/** The store copy of a pipeline job's log (its last attempt's), if it was published. */
async function publishedLog(home: string, job: JobDetail): Promise<Buffer | undefined> {
  const tags = job.tags ?? {};
  const [url, pipeline, step, sample] = [
    tags[TAG.store],
    tags[TAG.pipeline],
    tags[TAG.step],
    tags[TAG.sample],
  ];
  if (!url || !pipeline || !step) return undefined;
  try {
    const store = openStore(url, { home });
    const prefix = stepPrefix(
      pipeline,
      sample === undefined || sample === AGGREGATE_SAMPLE ? null : sample,
      step,
    );
    const key = `${prefix}/${LOG_KEY}`;
    return (await store.exists(key)) ? await store.get(key) : undefined;
  } catch {
    return undefined;
  }
}

/** GET /ui/api/jobs/:id/log?offset=&attempt=. */
export async function jobLog(
  home: string,
  job: JobDetail,
  q: { offset?: string; attempt?: string },
): Promise<JobLogResponse> {
  const offset = parseCount('offset', q.offset, 0, Number.MAX_SAFE_INTEGER, 0);
  // The attempt under way has a log once it runs (until then the job shows the last one's).
  const running = job.status === 'RUNNING' && job.container.logStreamName !== undefined;
  const latest = job.attempts.length + (running ? 1 : 0);
  const attempt = parseCount('attempt', q.attempt, 1, Math.max(1, latest), Math.max(1, latest));
  if (latest === 0)
    return {
      jobId: job.jobId,
      attempt: 1,
      offset,
      nextOffset: offset,
      size: 0,
      text: '',
      // A job that ended without starting (never fit, a dependency failed) has no log to come.
      complete: TERMINAL.has(job.status),
    };
  const path =
    attempt <= job.attempts.length
      ? job.attempts[attempt - 1].container.logStreamName
      : job.container.logStreamName;
  const ended = attempt < latest || TERMINAL.has(job.status);
  let piece: { bytes: Buffer; size: number } | undefined;
  let source = path;
  if (path && parseLogRef(path)) {
    const all = Buffer.from((await readAttemptLog(home, path)) ?? '');
    piece = { bytes: all.subarray(offset, offset + MAX_LOG_CHUNK), size: all.length };
  } else if (path) piece = readPiece(path, offset);
  if (!piece && attempt === job.attempts.length && ended) {
    const copy = await publishedLog(home, job);
    if (copy) {
      piece = { bytes: copy.subarray(offset, offset + MAX_LOG_CHUNK), size: copy.length };
      source = `${job.tags?.[TAG.store] ?? 'the store'} (${LOG_KEY})`;
    }
  }
  if (!piece) piece = { bytes: Buffer.alloc(0), size: 0 };
  if (offset > piece.size && piece.size > 0)
    throw badRequest(
      `offset=${offset} is past the end of the log of attempt ${attempt} of job ${job.jobId} (${piece.size} bytes)`,
    );
  const reachedEnd = offset + piece.bytes.length >= piece.size;
  const bytes = reachedEnd && ended ? piece.bytes : wholeCharacters(piece.bytes);
  const nextOffset = offset + bytes.length;
  return {
    jobId: job.jobId,
    attempt,
    offset,
    nextOffset,
    size: piece.size,
    text: bytes.toString('utf8'),
    complete: ended && nextOffset >= piece.size,
    ...(source ? { source } : {}),
  };
}
