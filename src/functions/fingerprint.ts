/**
 * A job's fingerprint, which the job cache compares with a SUCCEEDED manifest's: what it runs
 * (image, command, environment, executor) with every value that names a file or directory
 * replaced by a checksum of its content.
 */
import { createHash } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Where file systems of the kernel live: reading them may never end or fail (EINVAL). */
const PSEUDO_ROOTS = ['/proc', '/sys'];

/** Digests this process computed, by the file's identity (see `identity`). */
const hashes = new Map<string, string>();

/**
 * Digests remembered across processes (the home's strand.db), by the file's identity: path,
 * device, inode, size, mtime and ctime, so an unchanged multi-GB input is read once, not on
 * every run (as Nextflow's cache does by path, size and mtime).
 */
export interface DigestMemo {
  get(identity: string): string | undefined;
  set(identity: string, sha256: string): void;
}

export interface DigestOptions {
  memo?: DigestMemo;
  /** Read every file again (`--deep-cache`), remembering what it finds. */
  fresh?: boolean;
}

/**
 * What a value that names a path adds to a fingerprint: the sha256 of a regular file's content,
 * or of a directory's names and regular files (walked, symlinks followed once). Anything else
 * (a device, FIFO or socket, a path under /proc or /sys, nothing at all) is never opened or
 * read: undefined, and the value counts as the text it is.
 */
async function pathDigest(
  path: string,
  options: DigestOptions,
  ancestors: Set<string> = new Set(),
): Promise<string | undefined> {
  const real = await realpath(path).catch(() => undefined);
  if (real === undefined || PSEUDO_ROOTS.some((r) => real === r || real.startsWith(`${r}/`)))
    return undefined;
  // `/` or a top-level directory (`/usr`, `/tmp`) names the machine, not an input: walking it
  // would read every file there. It counts as the text it is.
  if (/^\/[^/]*$/.test(real) && ancestors.size === 0) return undefined;
  const st = await stat(real).catch(() => undefined);
  if (st?.isDirectory()) {
    const id = `${st.dev}:${st.ino}`;
    if (ancestors.has(id)) return 'loop';
    const below = new Set([...ancestors, id]);
    const h = createHash('sha256');
    const names = (await readdir(real).catch(() => [] as string[])).sort();
    for (const name of names) {
      const digest = await pathDigest(join(real, name), options, below);
      h.update(`${name}\0${digest ?? 'not a regular file'}\n`);
    }
    return h.digest('hex');
  }
  if (!st?.isFile()) return undefined;
  const key = identity(real, st);
  const known = options.fresh ? undefined : (hashes.get(key) ?? options.memo?.get(key));
  if (known) {
    hashes.set(key, known);
    return known;
  }
  // O_NONBLOCK: should the path have become a FIFO since the stat, opening it does not wait.
  const handle = await open(
    real,
    constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY,
  ).catch(() => undefined);
  if (!handle) return undefined;
  try {
    const opened = await handle.stat();
    if (!opened.isFile() || opened.ino !== st.ino || opened.dev !== st.dev) return undefined;
    const h = createHash('sha256');
    for await (const chunk of handle.createReadStream({ autoClose: false }))
      h.update(chunk as Buffer);
    const digest = h.digest('hex');
    hashes.set(key, digest);
    options.memo?.set(key, digest);
    return digest;
  } finally {
    await handle.close();
  }
}

/**
 * Remembers `sha256` as the digest of the file at `path` as it is now (a store's copy of an
 * output, whose digest the publish computed from the bytes it stored), so that the fingerprint of
 * a job reading it does not read it again. A file changed since has another identity.
 */
export async function rememberDigest(
  path: string,
  sha256: string,
  memo?: DigestMemo,
): Promise<void> {
  const real = await realpath(path).catch(() => undefined);
  const st = real === undefined ? undefined : await stat(real).catch(() => undefined);
  if (!real || !st?.isFile()) return;
  const key = identity(real, st);
  hashes.set(key, sha256);
  memo?.set(key, sha256);
}

/** What a digest is remembered by: path, device, inode, size, mtime and ctime. */
function identity(real: string, st: Stats): string {
  return `${real}\0${st.dev}\0${st.ino}\0${st.size}\0${st.mtimeMs}\0${st.ctimeMs}`;
}

/**
 * The fingerprint of a job: image, command and environment as they will run (the compiler puts
 * the output declaration there too, as STRAND_OUTPUTS), with every value that names a regular
 * file or a directory replaced by its content's checksum. Nothing else a value names is read.
 */
export async function jobFingerprint(
  job: FingerprintedJob,
  options: DigestOptions = {},
): Promise<string> {
  return (await fingerprintDetail(job, options)).fingerprint;
}

/** What a job's fingerprint is taken of. */
export interface FingerprintedJob {
  image?: string;
  command: string[];
  environment: Map<string, string> | Record<string, string>;
  /** What runs it: a job in a container is not the same job as one on the host. */
  executor?: string;
}

/** A short digest of one part of a fingerprint. */
function partDigest(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

/**
 * The fingerprint and a short digest of each of its parts (`image`, `command`, `executor`,
 * `env NAME`), which the manifest keeps so that a later run can say what changed.
 */
export async function fingerprintDetail(
  job: FingerprintedJob,
  options: DigestOptions = {},
): Promise<{ fingerprint: string; parts: Record<string, string> }> {
  const env =
    job.environment instanceof Map ? [...job.environment] : Object.entries(job.environment);
  const value = async (v: string) => {
    const digest = v.startsWith('/') ? await pathDigest(v, options) : undefined;
    return digest === undefined ? v : `sha256:${digest}`;
  };
  const parts = {
    // Jobs on the host (the local executor) keep the fingerprint they had before executors.
    ...(job.executor && job.executor !== 'local' ? { executor: job.executor } : {}),
    image: job.image ?? '',
    command: await Promise.all(job.command.map(value)),
    env: await Promise.all(
      env
        .filter(([k]) => !k.startsWith('AWS_BATCH_'))
        .sort(([a], [b]) => a.localeCompare(b))
        .map(async ([k, v]) => `${k}=${await value(v)}`),
    ),
  };
  const digests: Record<string, string> = {
    image: partDigest(parts.image),
    command: partDigest(parts.command),
  };
  if (parts.executor !== undefined) digests.executor = partDigest(parts.executor);
  for (const kv of parts.env) {
    const eq = kv.indexOf('=');
    digests[`env ${kv.slice(0, eq)}`] = partDigest(kv.slice(eq + 1));
  }
  return {
    fingerprint: createHash('sha256').update(JSON.stringify(parts)).digest('hex'),
    parts: digests,
  };
}
