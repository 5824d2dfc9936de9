/**
 * Publishing a job's declared outputs from its working directory into a store, with a
 * manifest (`_strand.json`) written last: a prefix without a manifest has not happened, so a
 * crash at any point leaves either the old state, "not done", or the complete new state.
 */
import type { Dirent, Stats } from 'node:fs';
import { lstat, readdir, readlink, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import { digestOf } from './digest.js';
import { StorageError } from './errors.js';
import { checkKey, checkPrefix } from './keys.js';
import type { ObjectStore, StoreLockOptions } from './store.js';

const MANIFEST = '_strand.json';
const MANIFEST_VERSION = 1;

/** The attempt an output set came from (recorded in the manifest as given). */
export interface PublishInfo {
  pipeline: string;
  /** null for an aggregate step. */
  sample: string | null;
  step: string;
  execution: string;
  jobId: string;
  attempt: number;
  exitCode: number | null;
  /** Epoch milliseconds. */
  startedAt: number | null;
  /** Epoch milliseconds. */
  stoppedAt: number | null;
  /** The caching fingerprint of the step's inputs, when caching is on. */
  fingerprint: string | null;
  /**
   * A short digest of each part of the fingerprint (`image`, `command`, `env NAME`), so that a
   * later run can say which changed (`strand run --dry-run`).
   */
  fingerprintParts?: Record<string, string>;
  /**
   * For a step over all samples: the samples whose outputs it was given (so a later run can
   * tell when it would replace them with fewer).
   */
  samples?: string[];
  /** Why a job that exited 0 has a FAILED manifest (an output missing or refused). */
  error?: string;
}

export interface PublishOptions {
  store: ObjectStore;
  /** Key prefix the outputs go under (see `stepPrefix`). */
  prefix: string;
  /** The job's working directory; every output must stay inside it. */
  workDir: string;
  /** Variable name → path relative to `workDir` (a file or a directory). */
  outputs: Record<string, string>;
  /** FAILED: a partial sync after a failure; missing outputs are recorded, not an error. */
  status: 'SUCCEEDED' | 'FAILED';
  info: PublishInfo;
  clock?: { now(): number };
  /** The prefix lock's wait and TTL (see `ObjectStore.lock`). */
  lock?: StoreLockOptions;
}

export interface PublishedFileInfo {
  /** Key relative to the prefix. */
  path: string;
  size: number;
  sha256: string;
}

export interface PublishedOutputInfo {
  /** Key relative to the prefix (of the file, or of the directory for a directory output). */
  path: string;
  /** Store URL of the file or directory, e.g. `file:///…/S1/qc/out/r1.fq.gz`. */
  location: string;
  /** Where local tools can read it in place, when the store is local. */
  localPath?: string;
  files: PublishedFileInfo[];
  /** Declared but absent when a failed job's partial results were synced. */
  missing?: true;
  /**
   * Files a failed job's partial sync left out, and why: they lead outside the job directory
   * (a symlink, or a hard link with a name elsewhere), which a successful publish refuses.
   */
  skipped?: SkippedFileInfo[];
}

export interface SkippedFileInfo {
  /** Path relative to the prefix, as it would have been stored. */
  path: string;
  reason: string;
}

export interface OutputManifest extends PublishInfo {
  version: typeof MANIFEST_VERSION;
  status: 'SUCCEEDED' | 'FAILED';
  /** Epoch milliseconds. */
  publishedAt: number;
  outputs: Record<string, PublishedOutputInfo>;
}

interface PlannedFile {
  /** Resolved path inside the job directory. */
  source: string;
  /** Key relative to the prefix. */
  path: string;
}

interface PlannedOutput {
  name: string;
  /** As declared, for messages. */
  declared: string;
  path: string;
  files: PlannedFile[];
  missing: boolean;
  skipped: SkippedFileInfo[];
}

/**
 * Copies the declared outputs under `prefix` and writes the manifest last, holding the
 * prefix's lock from the first file to the manifest so that two writers never leave a manifest
 * that disagrees with its files. Every output is checked before anything is written, so a
 * refused output leaves the store untouched. The sizes and sha256 recorded are those of the
 * bytes stored, whatever the job's files do during or after the copy.
 */
export async function publishOutputs(options: PublishOptions): Promise<OutputManifest> {
  const { store, info, status } = options;
  const prefix = checkPrefix(options.prefix, false);
  const planned = await planOutputs(prefix, options.workDir, options.outputs, status);

  const lock = await store.lock(prefix, options.lock);
  try {
    // A writer that died here left half-copied files; nobody else writes below the prefix now.
    await store.sweep(prefix);
    const manifestKey = `${prefix}/${MANIFEST}`;
    const previous = await readManifest(store, prefix).catch((e: unknown) => {
      // A corrupt manifest is about to be replaced; it must not block the publish that fixes it.
      if (e instanceof StorageError && e.code === 'BAD_MANIFEST') return undefined;
      throw e;
    });
    await store.delete(manifestKey);
    const current = new Set(planned.flatMap((o) => o.files.map((f) => f.path)));
    for (const key of staleKeys(previous, prefix, current)) await store.delete(key);

    const published = new Map<string, PublishedFileInfo>();
    const outputs: Record<string, PublishedOutputInfo> = {};
    for (const output of planned) {
      const files: PublishedFileInfo[] = [];
      for (const file of output.files) {
        let done = published.get(file.path);
        if (!done) {
          // A writer that lost the lock (it was not heard from for the TTL) stops writing.
          await lock.check();
          const stored = await store.putFile(`${prefix}/${file.path}`, file.source);
          done = { path: file.path, size: stored.size, sha256: stored.sha256 };
          published.set(file.path, done);
        }
        files.push(done);
      }
      const key = `${prefix}/${output.path}`;
      const localPath = store.localPath(key);
      outputs[output.name] = {
        path: output.path,
        location: locationOf(store, key),
        ...(localPath === undefined ? {} : { localPath }),
        files,
        ...(output.missing ? { missing: true as const } : {}),
        ...(output.skipped.length > 0 ? { skipped: output.skipped } : {}),
      };
    }

    const manifest: OutputManifest = {
      version: MANIFEST_VERSION,
      pipeline: info.pipeline,
      sample: info.sample,
      step: info.step,
      execution: info.execution,
      jobId: info.jobId,
      attempt: info.attempt,
      exitCode: info.exitCode,
      status,
      startedAt: info.startedAt,
      stoppedAt: info.stoppedAt,
      fingerprint: info.fingerprint,
      ...(info.fingerprintParts === undefined ? {} : { fingerprintParts: info.fingerprintParts }),
      ...(info.samples === undefined ? {} : { samples: info.samples }),
      ...(info.error === undefined ? {} : { error: info.error }),
      publishedAt: (options.clock ?? Date).now(),
      outputs,
    };
    // Taken over while copying (this writer was thought gone): the other writer's manifest wins.
    await lock.check();
    await store.putBytes(manifestKey, JSON.stringify(manifest, null, 2) + '\n');
    return manifest;
  } finally {
    // A lock that cannot be given up lapses after its TTL; what was published stands.
    await lock.release().catch(() => undefined);
  }
}

/**
 * What disagrees between a manifest and the store: a listed file that is gone or has another
 * size, and with `deep` another sha256 (every file is read). Empty when they agree.
 */
export async function verifyManifest(
  store: ObjectStore,
  prefix: string,
  manifest: OutputManifest,
  options: { deep?: boolean } = {},
): Promise<string[]> {
  const base = checkPrefix(prefix, false);
  const sizes = new Map((await store.list(base)).map((o) => [o.key, o.size]));
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const [name, output] of Object.entries(manifest.outputs)) {
    for (const file of Array.isArray(output?.files) ? output.files : []) {
      const path: unknown = file?.path;
      let key: string;
      try {
        key = checkKey(`${base}/${String(path)}`);
      } catch {
        problems.push(`output ${name}: ${JSON.stringify(path)} is not a key below ${base}`);
        continue;
      }
      if (seen.has(key)) continue;
      seen.add(key);
      const size = sizes.get(key);
      if (size === undefined) {
        problems.push(`${key}: listed in the manifest, not in ${store.url}`);
      } else if (size !== file.size) {
        problems.push(`${key}: ${size} bytes in ${store.url}, ${file.size} in the manifest`);
      } else if (options.deep) {
        const { sha256 } = await digestOf(await store.read(key));
        if (sha256 !== file.sha256)
          problems.push(`${key}: sha256 ${sha256} in ${store.url}, ${file.sha256} in the manifest`);
      }
    }
  }
  return problems;
}

/** The manifest at `prefix`, or undefined when the step has not been published there. */
export async function readManifest(
  store: ObjectStore,
  prefix: string,
): Promise<OutputManifest | undefined> {
  const key = `${checkPrefix(prefix, false)}/${MANIFEST}`;
  let bytes: Buffer;
  try {
    bytes = await store.get(key);
  } catch (e) {
    if (e instanceof StorageError && e.code === 'NOT_FOUND') return undefined;
    throw e;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new StorageError(
      'BAD_MANIFEST',
      `manifest "${key}" in ${store.url} is not valid JSON: ${(e as Error).message}`,
    );
  }
  if (!isRecord(parsed) || parsed.version !== MANIFEST_VERSION || !isRecord(parsed.outputs)) {
    throw new StorageError(
      'BAD_MANIFEST',
      `manifest "${key}" in ${store.url} is not a version ${MANIFEST_VERSION} Strand output manifest`,
    );
  }
  return parsed as unknown as OutputManifest;
}

/** Variable → where a later step reads it: the local path when there is one, else the URL. */
export function outputLocations(manifest: OutputManifest): Record<string, string> {
  const locations: Record<string, string> = {};
  for (const [name, output] of Object.entries(manifest.outputs)) {
    // A name with a colon is a file published beside the outputs (a results file), no variable.
    if (!output.missing && !name.includes(':'))
      locations[name] = output.localPath ?? output.location;
  }
  return locations;
}

/**
 * Keys the previous manifest listed that this publish will not overwrite. The old manifest is
 * only trusted for valid keys under `prefix`, so a doctored one cannot delete anything else.
 */
function staleKeys(
  previous: OutputManifest | undefined,
  prefix: string,
  current: Set<string>,
): string[] {
  const stale = new Set<string>();
  for (const output of Object.values(previous?.outputs ?? {})) {
    const files: unknown = isRecord(output) ? output.files : undefined;
    if (!Array.isArray(files)) continue;
    for (const file of files) {
      const path: unknown = isRecord(file) ? file.path : undefined;
      if (typeof path !== 'string' || current.has(path)) continue;
      try {
        stale.add(checkKey(`${prefix}/${path}`));
      } catch {
        continue;
      }
    }
  }
  return [...stale];
}

async function planOutputs(
  prefix: string,
  workDir: string,
  outputs: Record<string, string>,
  status: 'SUCCEEDED' | 'FAILED',
): Promise<PlannedOutput[]> {
  const root = resolve(workDir);
  const realRoot = await realpath(root).catch(() => undefined);
  const planned: PlannedOutput[] = [];
  for (const [name, declared] of Object.entries(outputs)) {
    const path = outputPath(name, declared, root);
    checkOutputKey(prefix, name, declared, path);
    const output: PlannedOutput = { name, declared, path, files: [], missing: false, skipped: [] };
    planned.push(output);
    const missing = (why: string): void => {
      if (status === 'SUCCEEDED') {
        throw new StorageError(
          'OUTPUT_MISSING',
          `output ${name} (${declared}) ${why} in the job directory ${root}; nothing was published`,
        );
      }
      output.missing = true;
    };
    if (realRoot === undefined) {
      missing('was not found: there is no job directory');
      continue;
    }
    const absolute = join(root, ...path.split('/'));
    if (!(await lstat(absolute).catch(() => undefined))) {
      missing('was not found');
      continue;
    }
    const real = await realpath(absolute).catch(() => undefined);
    if (real === undefined) {
      missing(`is a broken symlink (to ${await linkTarget(absolute)})`);
      continue;
    }
    const ctx: WalkContext = { prefix, output, root, realRoot, status };
    if (!inside(realRoot, real)) {
      leadsOutside(ctx, declared, path, `points to ${real}`);
      continue;
    }
    const st = await stat(real);
    if (st.isFile()) {
      output.files.push({ source: real, path });
    } else if (st.isDirectory()) {
      await walkOutput(ctx, real, path, new Set([real]));
    } else {
      throw notRegular(name, declared, declared);
    }
  }
  if (realRoot !== undefined) await refuseOutsideLinks(planned, realRoot, root, status);
  return planned;
}

interface WalkContext {
  prefix: string;
  output: PlannedOutput;
  root: string;
  realRoot: string;
  status: 'SUCCEEDED' | 'FAILED';
}

async function walkOutput(
  ctx: WalkContext,
  dir: string,
  path: string,
  ancestors: Set<string>,
): Promise<void> {
  const { name, declared } = ctx.output;
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
  for (const entry of entries) {
    const entryPath = `${path}/${entry.name}`;
    const entryAbsolute = join(dir, entry.name);
    checkOutputKey(ctx.prefix, name, entryPath, entryPath);
    let real = entryAbsolute;
    let kind: Dirent | Stats = entry;
    if (entry.isSymbolicLink()) {
      const resolved = await realpath(entryAbsolute).catch(() => undefined);
      if (resolved === undefined) {
        // A partial sync keeps what it can; a success with a dangling link is a broken result.
        if (ctx.status === 'FAILED') continue;
        throw new StorageError(
          'OUTPUT_MISSING',
          `output ${name} (${declared}): ${entryPath} is a broken symlink (to ${await linkTarget(entryAbsolute)}); nothing was published`,
        );
      }
      if (!inside(ctx.realRoot, resolved)) {
        leadsOutside(ctx, entryPath, entryPath, `points to ${resolved}`);
        continue;
      }
      real = resolved;
      kind = await stat(resolved);
    }
    if (kind.isFile()) {
      ctx.output.files.push({ source: real, path: entryPath });
    } else if (kind.isDirectory()) {
      if (ancestors.has(real)) {
        throw new StorageError(
          'BAD_OUTPUT_PATH',
          `output ${name} (${declared}): ${entryPath} is a symlink loop (back to ${real})`,
        );
      }
      await walkOutput(ctx, real, entryPath, new Set([...ancestors, real]));
    } else if (ctx.status === 'SUCCEEDED') {
      throw notRegular(name, declared, entryPath);
    }
  }
}

/**
 * An output file or directory that leads outside the job directory: refused when the job
 * succeeded; left out of a failed job's partial sync, and named in its manifest.
 */
function leadsOutside(ctx: WalkContext, shown: string, path: string, how: string): void {
  if (ctx.status === 'SUCCEEDED') throw outside(ctx.output.name, shown, how, ctx.root);
  ctx.output.skipped.push({ path, reason: `${how}, outside the job directory ${ctx.root}` });
}

/**
 * Refuses output files that are hard links with a name outside the job directory (another
 * file's inode, such as /etc/passwd, or one a process elsewhere can still write): a file with
 * more names than the job directory holds has one elsewhere. Only looks when a file has more
 * than one name.
 */
async function refuseOutsideLinks(
  planned: PlannedOutput[],
  realRoot: string,
  root: string,
  status: 'SUCCEEDED' | 'FAILED',
): Promise<void> {
  const linked: { output: PlannedOutput; file: PlannedFile; st: Stats }[] = [];
  for (const output of planned) {
    for (const file of output.files) {
      const st = await stat(file.source);
      if (st.nlink > 1) linked.push({ output, file, st });
    }
  }
  if (linked.length === 0) return;
  const names = new Map<string, number>();
  await countNames(realRoot, names);
  for (const { output, file, st } of linked) {
    const within = names.get(`${st.dev}:${st.ino}`) ?? 0;
    if (within >= st.nlink) continue;
    const how = `is a hard link with ${st.nlink - within} of its ${st.nlink} names elsewhere`;
    if (status === 'SUCCEEDED') {
      throw new StorageError(
        'OUTPUT_OUTSIDE_JOB_DIR',
        `output ${output.name} (${output.declared}): ${file.path} ${how}, outside the job directory ${root}; nothing was published`,
      );
    }
    output.files = output.files.filter((f) => f !== file);
    output.skipped.push({
      path: file.path,
      reason: `${how}, outside the job directory ${root}`,
    });
  }
}

/** How many names each multiply linked regular file has below `dir` (symlinks not followed). */
async function countNames(dir: string, names: Map<string, number>): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      await countNames(path, names);
    } else if (entry.isFile()) {
      const st = await lstat(path).catch(() => undefined);
      if (st && st.nlink > 1) {
        const id = `${st.dev}:${st.ino}`;
        names.set(id, (names.get(id) ?? 0) + 1);
      }
    }
  }
}

/** The declared path normalised to a '/'-separated path relative to the job directory. */
function outputPath(name: string, declared: string, root: string): string {
  if (typeof declared !== 'string' || declared === '' || declared.includes('\0')) {
    throw new StorageError(
      'BAD_OUTPUT_PATH',
      `output ${name}: ${JSON.stringify(declared)} is not a path relative to the job directory`,
    );
  }
  if (posix.isAbsolute(declared)) {
    throw new StorageError(
      'OUTPUT_OUTSIDE_JOB_DIR',
      `output ${name}: ${declared} is an absolute path, outside the job directory ${root}; declare it relative to the job directory`,
    );
  }
  const path = posix.normalize(declared).replace(/\/+$/, '');
  if (path === '..' || path.startsWith('../')) {
    throw outside(name, declared, `points to ${resolve(root, declared)}`, root);
  }
  if (path === '.' || path === '') {
    throw new StorageError(
      'BAD_OUTPUT_PATH',
      `output ${name}: "${declared}" is the whole job directory; name a file or a subdirectory`,
    );
  }
  if (path === MANIFEST) {
    throw new StorageError(
      'BAD_OUTPUT_PATH',
      `output ${name}: "${declared}" would overwrite the manifest ${MANIFEST}; rename the output`,
    );
  }
  return path;
}

function checkOutputKey(prefix: string, name: string, shown: string, path: string): void {
  try {
    checkKey(`${prefix}/${path}`);
  } catch (e) {
    const why = e instanceof StorageError ? e.message : String(e);
    throw new StorageError('BAD_OUTPUT_PATH', `output ${name}: ${shown} cannot be stored (${why})`);
  }
}

function outside(name: string, path: string, how: string, root: string): StorageError {
  return new StorageError(
    'OUTPUT_OUTSIDE_JOB_DIR',
    `output ${name}: ${path} ${how}, outside the job directory ${root}; nothing was published`,
  );
}

function notRegular(name: string, declared: string, path: string): StorageError {
  return new StorageError(
    'BAD_OUTPUT_PATH',
    `output ${name} (${declared}): ${path} is not a regular file or directory`,
  );
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

async function linkTarget(path: string): Promise<string> {
  return readlink(path).catch(() => '?');
}

/** The object's URL: file URLs percent-encode each segment so they convert back to paths. */
function locationOf(store: ObjectStore, key: string): string {
  const encoded = store.url.startsWith('file:')
    ? key.split('/').map(encodeURIComponent).join('/')
    : key;
  return `${store.url}/${encoded}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
