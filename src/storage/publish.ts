/**
 * Publishing a job's declared outputs from its working directory into a store, with a
 * manifest (`_strand.json`) written last: a prefix without a manifest has not happened, so a
 * crash at any point leaves either the old state, "not done", or the complete new state.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Dirent, Stats } from 'node:fs';
import { lstat, readdir, readlink, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import { StorageError } from './errors.js';
import { checkKey, checkPrefix } from './keys.js';
import type { ObjectStore } from './store.js';

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
  path: string;
  files: PlannedFile[];
  missing: boolean;
}

/**
 * Copies the declared outputs under `prefix` and writes the manifest last. Every output is
 * checked before anything is written, so a refused output leaves the store untouched.
 */
export async function publishOutputs(options: PublishOptions): Promise<OutputManifest> {
  const { store, info, status } = options;
  const prefix = checkPrefix(options.prefix, false);
  const planned = await planOutputs(prefix, options.workDir, options.outputs, status);

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
        const [digest] = await Promise.all([
          sha256File(file.source),
          store.putFile(`${prefix}/${file.path}`, file.source, { share: true }),
        ]);
        done = { path: file.path, ...digest };
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
    publishedAt: (options.clock ?? Date).now(),
    outputs,
  };
  await store.putBytes(manifestKey, JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
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
    if (!output.missing) locations[name] = output.localPath ?? output.location;
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
    const missing = (why: string): PlannedOutput => {
      if (status === 'SUCCEEDED') {
        throw new StorageError(
          'OUTPUT_MISSING',
          `output ${name} (${declared}) ${why} in the job directory ${root}; nothing was published`,
        );
      }
      return { name, path, files: [], missing: true };
    };
    if (realRoot === undefined) {
      planned.push(missing('was not found: there is no job directory'));
      continue;
    }
    const absolute = join(root, ...path.split('/'));
    if (!(await lstat(absolute).catch(() => undefined))) {
      planned.push(missing('was not found'));
      continue;
    }
    const real = await realpath(absolute).catch(() => undefined);
    if (real === undefined) {
      planned.push(missing(`is a broken symlink (to ${await linkTarget(absolute)})`));
      continue;
    }
    if (!inside(realRoot, real)) throw outside(name, declared, real, root);
    const st = await stat(real);
    if (st.isFile()) {
      planned.push({ name, path, files: [{ source: real, path }], missing: false });
    } else if (st.isDirectory()) {
      const files: PlannedFile[] = [];
      const walk = { prefix, name, declared, root, realRoot, status };
      await walkOutput(walk, real, path, new Set([real]), files);
      planned.push({ name, path, files, missing: false });
    } else {
      throw notRegular(name, declared, declared);
    }
  }
  return planned;
}

interface WalkContext {
  prefix: string;
  name: string;
  declared: string;
  root: string;
  realRoot: string;
  status: 'SUCCEEDED' | 'FAILED';
}

async function walkOutput(
  ctx: WalkContext,
  dir: string,
  path: string,
  ancestors: Set<string>,
  files: PlannedFile[],
): Promise<void> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
  for (const entry of entries) {
    const entryPath = `${path}/${entry.name}`;
    const entryAbsolute = join(dir, entry.name);
    checkOutputKey(ctx.prefix, ctx.name, entryPath, entryPath);
    let real = entryAbsolute;
    let kind: Dirent | Stats = entry;
    if (entry.isSymbolicLink()) {
      const resolved = await realpath(entryAbsolute).catch(() => undefined);
      if (resolved === undefined) {
        // A partial sync keeps what it can; a success with a dangling link is a broken result.
        if (ctx.status === 'FAILED') continue;
        throw new StorageError(
          'OUTPUT_MISSING',
          `output ${ctx.name} (${ctx.declared}): ${entryPath} is a broken symlink (to ${await linkTarget(entryAbsolute)}); nothing was published`,
        );
      }
      if (!inside(ctx.realRoot, resolved)) throw outside(ctx.name, entryPath, resolved, ctx.root);
      real = resolved;
      kind = await stat(resolved);
    }
    if (kind.isFile()) {
      files.push({ source: real, path: entryPath });
    } else if (kind.isDirectory()) {
      if (ancestors.has(real)) {
        throw new StorageError(
          'BAD_OUTPUT_PATH',
          `output ${ctx.name} (${ctx.declared}): ${entryPath} is a symlink loop (back to ${real})`,
        );
      }
      await walkOutput(ctx, real, entryPath, new Set([...ancestors, real]), files);
    } else if (ctx.status === 'SUCCEEDED') {
      throw notRegular(ctx.name, ctx.declared, entryPath);
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
    throw outside(name, declared, resolve(root, declared), root);
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

function outside(name: string, path: string, target: string, root: string): StorageError {
  return new StorageError(
    'OUTPUT_OUTSIDE_JOB_DIR',
    `output ${name}: ${path} points to ${target}, outside the job directory ${root}; nothing was published`,
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

async function sha256File(path: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest('hex') };
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
