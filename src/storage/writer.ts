/**
 * Who is writing to a store: this machine and this process, as lock files and temporary names
 * record them, so a later writer can tell a holder that died (its lock and half-written files
 * can go) from one that is still at work.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { statFields } from '../host.js';
import { StorageError } from './errors.js';

/** A writing process: `machine` says where its `pid` means something. */
export interface WriterInfo {
  /** The host name, for people. */
  host: string;
  /**
   * Host name, boot and PID namespace, hashed: two processes can judge each other's pids only
   * when these agree (a container with its own PID namespace is another machine here).
   */
  machine: string;
  pid: number;
  /** The process's start time in clock ticks since boot ('' where /proc is not there). */
  start: string;
}

let self: WriterInfo | undefined;

/** This process as a writer. */
export function thisWriter(): WriterInfo {
  if (!self) {
    const parts = [hostname(), tryRead(() => readFileSync('/proc/sys/kernel/random/boot_id'))];
    parts.push(tryRead(() => readlinkSync('/proc/self/ns/pid')));
    self = {
      host: hostname(),
      machine: createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 12),
      pid: process.pid,
      start: processStart(process.pid) ?? '',
    };
  }
  return self;
}

/**
 * Whether a writer still runs: 'dead' only when it is certain (same machine, and its pid is
 * gone, a zombie, or now another process); 'unknown' for another machine.
 */
export function writerState(writer: {
  machine?: unknown;
  pid?: unknown;
  start?: unknown;
}): 'alive' | 'dead' | 'unknown' {
  const me = thisWriter();
  if (writer.machine !== me.machine || typeof writer.pid !== 'number') return 'unknown';
  if (writer.pid === me.pid) return writer.start === me.start ? 'alive' : 'dead';
  try {
    process.kill(writer.pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to another user.
    return (e as NodeJS.ErrnoException).code === 'ESRCH' ? 'dead' : 'alive';
  }
  const stat = procStat(writer.pid);
  if (stat === undefined) return 'alive';
  // A killed process its parent has not reaped yet holds nothing any more.
  if (stat.state === 'Z' || stat.state === 'X') return 'dead';
  if (typeof writer.start === 'string' && writer.start !== '' && writer.start !== stat.start)
    return 'dead';
  return 'alive';
}

function processStart(pid: number): string | undefined {
  return procStat(pid)?.start;
}

/** State and start time of a process (its /proc stat fields 3 and 22). */
function procStat(pid: number): { state: string; start: string } | undefined {
  const fields = statFields(pid);
  if (!fields || fields.length < 20) return undefined;
  return { state: fields[0], start: fields[19] };
}

function tryRead(read: () => Buffer | string): string {
  try {
    return read().toString().trim();
  } catch {
    return '';
  }
}

/** Who holds a lock, for messages: "process PID on HOST since TIME". */
export function holderText(
  holder: { pid?: unknown; host?: unknown; since?: unknown } | undefined,
): string {
  return typeof holder?.pid === 'number'
    ? `process ${holder.pid} on ${typeof holder.host === 'string' ? holder.host : 'another machine'}${typeof holder.since === 'string' ? ` since ${holder.since}` : ''}`
    : 'a writer that has not said who it is yet';
}

/** LOCK_LOST for a holder that released its lock or had it taken over. */
export function lockLost(what: string, released: boolean): StorageError {
  return new StorageError(
    'LOCK_LOST',
    released
      ? `the lock of ${what} was released already`
      : `the lock of ${what} was taken over by another writer (this one was not heard from for the lock's TTL); what it wrote is not committed`,
  );
}
