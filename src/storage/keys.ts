/**
 * Object keys: '/'-separated relative strings, the same rules for every backend so a key
 * that works on `file://` also works on `s3://` (and cannot climb out of a file store).
 */
import { randomUUID } from 'node:crypto';
import { StorageError } from './errors.js';
import { thisWriter } from './writer.js';

/**
 * File stores write in-flight objects under this name prefix before renaming them into place;
 * reserving it keeps a half-written object from ever being read or listed as a key.
 */
export const TEMP_PREFIX = '.strand-tmp-';

/** Where a file store keeps its prefix locks (at its root); never a key. */
export const LOCKS_DIR = '.strand-locks';

/**
 * A fresh temporary name that says who writes it (machine, pid, process start), so a later
 * writer can tell an abandoned one from one still being written.
 */
export function tempName(): string {
  const me = thisWriter();
  return `${TEMP_PREFIX}${me.machine}-${me.pid}-${me.start || '0'}-${randomUUID()}`;
}

/** The writer a temporary name records, or undefined when the name does not say. */
export function tempWriter(
  name: string,
): { machine: string; pid: number; start: string } | undefined {
  const m = /^\.strand-tmp-([0-9a-f]{12})-(\d+)-(\d+)-/.exec(name);
  if (!m) return undefined;
  return { machine: m[1], pid: Number(m[2]), start: m[3] === '0' ? '' : m[3] };
}

/** Throws BAD_KEY unless `key` is a valid object key; returns it unchanged. */
export function checkKey(key: string): string {
  const bad = keyProblem(key);
  if (bad) throw new StorageError('BAD_KEY', `bad object key ${JSON.stringify(key)}: ${bad}`);
  return key;
}

/**
 * Checks a list/delete prefix: '' (the whole store) when `allowEmpty`, otherwise a key with an
 * optional trailing '/'. Returns it without the trailing '/'.
 */
export function checkPrefix(prefix: string, allowEmpty: boolean): string {
  if (prefix === '') {
    if (allowEmpty) return '';
    throw new StorageError('BAD_KEY', 'bad prefix "": it names the whole store; give a key prefix');
  }
  const trimmed = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  const bad = keyProblem(trimmed);
  if (bad) throw new StorageError('BAD_KEY', `bad prefix ${JSON.stringify(prefix)}: ${bad}`);
  return trimmed;
}

function keyProblem(key: string): string | undefined {
  if (typeof key !== 'string' || key === '') return 'keys may not be empty';
  if (key.includes('\0')) return 'keys may not contain NUL';
  if (key.includes('\\')) return 'keys may not contain a backslash (use "/")';
  if (key.startsWith('/')) return 'keys are relative: no leading "/"';
  for (const segment of key.split('/')) {
    if (segment === '') return 'keys may not have empty segments ("//" or a trailing "/")';
    if (segment === '.' || segment === '..') return `keys may not have "${segment}" segments`;
    if (segment.startsWith(TEMP_PREFIX)) return `segments starting "${TEMP_PREFIX}" are reserved`;
    if (segment === LOCKS_DIR) return `the segment "${LOCKS_DIR}" is reserved`;
  }
  return undefined;
}
