/**
 * The container images a pipeline uses: which ones Strand builds (a step's `image:` has a
 * Dockerfile at `images/<name>/Dockerfile` beside the pipeline), which ones must already be here
 * ("provided", like the Debian base), their state in the runtime's store, building them, and
 * making the Debian base from Debian's own packages.
 *
 * An image is rebuilt only when its build context changes: each build carries the label
 * `strand.dockerfile-sha256`, the sha256 of the context folder's files, and a build whose label
 * matches is skipped. No registry is assumed: builds never pull (`--pull=never`), so every base
 * image must be here first.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import type { PipelineSpec } from '../pipeline/model.js';
import { shownPath } from '../pipeline/errors.js';
import { runtimeSync, which, type ContainerRuntime } from '../executors/container/runtime.js';

/** The base image every example Dockerfile starts FROM; `strand images base` makes it. */
export const BASE_IMAGE = 'debian:bookworm-slim';
/** The label a built image carries: the sha256 of its build context. */
export const HASH_LABEL = 'strand.dockerfile-sha256';

/** Bad input or a missing prerequisite (base image, debootstrap, root): exit 2. */
export class ImageInputError extends Error {
  readonly code = 'IMAGE_INPUT';
  constructor(
    message: string,
    readonly details: string[] = [],
  ) {
    super(message);
    this.name = 'ImageInputError';
  }
}

/** A build or an import that ran and failed: exit 1; `details` are the last lines it printed. */
export class ImageBuildError extends Error {
  readonly code = 'IMAGE_BUILD';
  constructor(
    message: string,
    readonly details: string[] = [],
  ) {
    super(message);
    this.name = 'ImageBuildError';
  }
}

// ---- which images a pipeline uses ----

/** One image a pipeline uses. */
export interface PipelineImage {
  /** The reference as `image:` writes it (`strand/fastp:0.23`). */
  image: string;
  /** The jobs using it (`qc`, `annotate.genes`), in pipeline order. */
  steps: string[];
  /** `images/<name>/Dockerfile` beside the pipeline (absolute); undefined: a provided image. */
  dockerfile?: string;
  /** Where a Dockerfile would be; for messages about provided images. */
  expectedDockerfile: string;
}

/**
 * The folder name an image's Dockerfile lives under: the last path component of the reference
 * without tag or digest (`ghcr.io/x/megahit:1.2.9` → `megahit`); '' when there is none.
 */
export function imageName(ref: string): string {
  const noDigest = ref.split('@')[0];
  const last = noDigest.slice(noDigest.lastIndexOf('/') + 1);
  const name = last.split(':')[0];
  return name === '.' || name === '..' ? '' : name;
}

/** Whether a job is among `steps` (step or job names); none or an empty list: every job. */
function selected(steps: readonly string[] | undefined, step: string, job: string): boolean {
  return !steps || steps.length === 0 || steps.includes(step) || steps.includes(job);
}

/**
 * The images of a pipeline's jobs, each once, in first-use order (only those of `steps` when
 * given and not empty: step names like `qc` or job names like `annotate.genes`). Jobs with no
 * image are left out (see checkPipelineImages).
 */
export function pipelineImages(
  spec: PipelineSpec,
  options: { steps?: readonly string[] } = {},
): PipelineImage[] {
  const dir = dirname(spec.file);
  const byRef = new Map<string, PipelineImage>();
  for (const step of spec.steps) {
    for (const job of step.jobs) {
      if (!selected(options.steps, step.name, job.name)) continue;
      if (job.image.trim() === '') continue;
      const known = byRef.get(job.image);
      if (known) {
        known.steps.push(job.name);
        continue;
      }
      const name = imageName(job.image);
      const expected = join(dir, 'images', name || '_', 'Dockerfile');
      const found = name !== '' && isFile(expected);
      byRef.set(job.image, {
        image: job.image,
        steps: [job.name],
        ...(found ? { dockerfile: expected } : {}),
        expectedDockerfile: expected,
      });
    }
  }
  return [...byRef.values()];
}

function isFile(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isFile() ?? false;
}

/**
 * The sha256 of a build context: every file below `dir` by its relative name (`/`-separated)
 * and contents, in name order; a symlink counts as its target's text. Changing, adding,
 * removing or renaming any file changes it.
 */
export function contextHash(dir: string): string {
  const files: string[] = [];
  const walk = (rel: string): void => {
    for (const entry of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile() || entry.isSymbolicLink()) files.push(child);
    }
  };
  walk('');
  files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const hash = createHash('sha256');
  for (const rel of files) {
    const path = join(dir, ...rel.split('/'));
    const st = statSync(path, { throwIfNoEntry: false });
    const link = !st || !st.isFile();
    const body = link ? Buffer.from(readlinkSync(path)) : readFileSync(path);
    // Lengths frame each part, so no two different contexts hash alike.
    hash.update(`${link ? 'link' : 'file'} ${Buffer.byteLength(rel)}:${rel} ${body.length}:`);
    hash.update(body);
  }
  return hash.digest('hex');
}

/**
 * The images a Dockerfile starts FROM, in order: not `scratch`, not an earlier stage
 * (`FROM build AS …`), and not one written with `$ARG` (unknown until the build).
 */
export function dockerfileBases(text: string): string[] {
  const lines = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .filter((l) => !/^\s*#/.test(l));
  const stages = new Set<string>();
  const bases: string[] = [];
  for (const line of lines) {
    const m = /^\s*FROM\s+(.*)$/i.exec(line);
    if (!m) continue;
    const words = m[1]
      .trim()
      .split(/\s+/)
      .filter((w) => !w.startsWith('--'));
    const image = words[0] ?? '';
    const alias = words[1]?.toLowerCase() === 'as' ? words[2]?.toLowerCase() : undefined;
    const known = stages.has(image.toLowerCase());
    if (alias) stages.add(alias);
    if (!image || known || image.includes('$') || image.toLowerCase() === 'scratch') continue;
    if (!bases.includes(image)) bases.push(image);
  }
  return bases;
}

// ---- what the runtime has ----

/** What the runtime knows of one image. */
export interface ImageInfo {
  /** The full id (hex, no `sha256:`). */
  id: string;
  /** When it was made (ISO 8601). */
  created: string;
  /** Bytes. */
  size: number;
  /** Its `strand.dockerfile-sha256` label, if any. */
  hash?: string;
}

interface InspectEntry {
  Id?: string;
  Created?: string;
  Size?: number;
  Config?: { Labels?: Record<string, string> | null };
  Labels?: Record<string, string> | null;
}

function infoOf(e: InspectEntry): ImageInfo {
  const hash = e.Config?.Labels?.[HASH_LABEL] ?? e.Labels?.[HASH_LABEL];
  return {
    id: (e.Id ?? '').replace(/^sha256:/, ''),
    created: e.Created ?? '',
    size: e.Size ?? 0,
    ...(hash ? { hash } : {}),
  };
}

function inspectJson(runtime: ContainerRuntime, refs: string[]): InspectEntry[] | undefined {
  const r = runtimeSync(runtime, ['image', 'inspect', ...refs]);
  try {
    const parsed = JSON.parse(r.stdout) as unknown;
    return Array.isArray(parsed) ? (parsed as InspectEntry[]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What the runtime has of each of `refs` (a ref it lacks has no entry). One `image inspect` for
 * all when all are here; when some are missing the answer cannot be matched to the refs, so
 * each is asked alone.
 */
export function inspectImages(runtime: ContainerRuntime, refs: string[]): Map<string, ImageInfo> {
  const found = new Map<string, ImageInfo>();
  const unique = [...new Set(refs)];
  if (unique.length === 0) return found;
  const all = inspectJson(runtime, unique);
  if (all && all.length === unique.length) {
    unique.forEach((ref, i) => found.set(ref, infoOf(all[i])));
    return found;
  }
  for (const ref of unique) {
    const one = inspectJson(runtime, [ref]);
    if (one && one.length === 1) found.set(ref, infoOf(one[0]));
  }
  return found;
}

export type ImageState = 'built' | 'outdated' | 'missing';

/** One image of a pipeline with its state. */
export interface ImageStatus extends PipelineImage {
  /** `outdated`: built from another version of its context (the label differs). */
  state: ImageState;
  /** What the runtime has (undefined when missing). */
  info?: ImageInfo;
  /** The context's hash now (images with a Dockerfile). */
  hash?: string;
}

/** The state of each image: one `image inspect`, and the hash of each build context. */
export function imageStatuses(runtime: ContainerRuntime, images: PipelineImage[]): ImageStatus[] {
  const infos = inspectImages(
    runtime,
    images.map((i) => i.image),
  );
  return images.map((img) => {
    const info = infos.get(img.image);
    const hash = img.dockerfile ? contextHash(dirname(img.dockerfile)) : undefined;
    const state: ImageState = !info
      ? 'missing'
      : hash !== undefined && info.hash !== hash
        ? 'outdated'
        : 'built';
    return { ...img, state, ...(info ? { info } : {}), ...(hash ? { hash } : {}) };
  });
}

// ---- the check before a run ----

/** Why a pipeline's jobs could not start in containers, and what to do about it. */
export interface ImageProblem {
  /** The first job it concerns (`qc`, `annotate.genes`). */
  step: string;
  /** Every job it concerns. */
  steps: string[];
  /** The image ('' for a job with none). */
  image: string;
  message: string;
  /** A command or an edit that fixes it. */
  fix: string;
}

/** What checkPipelineImages found. */
export interface ImageCheck {
  /** Jobs that cannot start: no image, or an image that is not here. */
  problems: ImageProblem[];
  /** Images that are here but older than their Dockerfile: they run, a warning is due. */
  outdated: ImageProblem[];
}

/** The fix for a provided image that is missing: the Debian base is made; others are fetched. */
function fixForProvided(runtime: ContainerRuntime, image: string, expected: string): string {
  const suite = /^debian:([a-z]+)-slim$/.exec(image)?.[1];
  if (suite)
    return suite === 'bookworm' ? 'strand images base' : `strand images base --suite ${suite}`;
  return `${runtime.name} pull ${image} (or ${runtime.name} load -i FILE), or add ${shownPath(expected)}`;
}

/**
 * The preflight check before a run in containers: every job (of `steps`, when not empty) has an
 * image, and every image is here. One `image inspect` for all images when they are all here.
 * `pipelineArg` is how the fix names the pipeline (default: its path as people read it).
 */
export function checkPipelineImages(
  spec: PipelineSpec,
  runtime: ContainerRuntime,
  options: { steps?: readonly string[]; pipelineArg?: string } = {},
): ImageCheck {
  const problems: ImageProblem[] = [];
  const outdated: ImageProblem[] = [];
  for (const step of spec.steps) {
    for (const job of step.jobs) {
      if (!selected(options.steps, step.name, job.name)) continue;
      if (job.image.trim() !== '') continue;
      problems.push({
        step: job.name,
        steps: [job.name],
        image: '',
        message: `step ${job.name} has no image:`,
        fix: `give step ${job.name} an image: (debian:bookworm-slim has coreutils and awk), or run with --executor local`,
      });
    }
  }
  const pipelineArg = options.pipelineArg ?? shownPath(spec.file);
  for (const s of imageStatuses(runtime, pipelineImages(spec, options))) {
    const used = `${s.steps.length === 1 ? 'step' : 'steps'} ${s.steps.join(', ')}`;
    const base = { step: s.steps[0], steps: s.steps, image: s.image };
    if (s.state === 'missing' && s.dockerfile) {
      problems.push({
        ...base,
        message: `image ${s.image} (${used}) is not built`,
        fix: `strand images build ${pipelineArg}`,
      });
    } else if (s.state === 'missing') {
      problems.push({
        ...base,
        message: `image ${s.image} (${used}) is not here, and there is no ${shownPath(s.expectedDockerfile)} to build it from`,
        fix: fixForProvided(runtime, s.image, s.expectedDockerfile),
      });
    } else if (s.state === 'outdated') {
      outdated.push({
        ...base,
        message: `image ${s.image} (${used}) is older than ${shownPath(s.dockerfile!)} and its folder`,
        fix: `strand images build ${pipelineArg}`,
      });
    }
  }
  return { problems, outdated };
}

// ---- running the runtime's long commands ----

/** The last lines of a command's output, kept while it runs. */
class OutputTail {
  private text = '';
  constructor(private readonly keep = 64 * 1024) {}
  add(chunk: string): void {
    this.text += chunk;
    if (this.text.length > 2 * this.keep) this.text = this.text.slice(-this.keep);
  }
  lines(n: number): string[] {
    return this.text.replace(/\s+$/, '').split(/\r?\n/).slice(-n);
  }
}

/** Runs `program` with argv to its end; its output goes to `output` (if any) and a tail. */
function runStreaming(
  program: string,
  args: string[],
  output: ((chunk: string) => void) | undefined,
  onChild?: (child: ChildProcess | undefined) => void,
): Promise<{ status: number | null; signal: NodeJS.Signals | null; tail: OutputTail }> {
  const tail = new OutputTail();
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    onChild?.(child);
    const take = (d: Buffer): void => {
      const s = d.toString();
      tail.add(s);
      output?.(s);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (err) => {
      onChild?.(undefined);
      reject(err);
    });
    child.on('close', (status, signal) => {
      onChild?.(undefined);
      resolve({ status, signal, tail });
    });
  });
}

const TAIL_LINES = 25;

function seconds(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)}s`;
}

/** A size as the runtimes print it (decimal units): `204 MB`. */
export function formatSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? v : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ${units[u]}`;
}

// ---- building ----

export interface BuildOptions {
  /** Rebuild even when up to date, without the layer cache. */
  force?: boolean;
  /** Progress: one line per image (text ends with a newline, or is completed by the next). */
  log: (text: string) => void;
  /** The builds' own output as it comes (--verbose); otherwise kept for the error. */
  output?: (chunk: string) => void;
}

export interface BuildSummary {
  built: string[];
  upToDate: string[];
  seconds: number;
}

/** Orders images so that one built FROM another of the list comes after it. */
function buildOrder(images: PipelineImage[], bases: Map<string, string[]>): PipelineImage[] {
  const refs = new Set(images.map((i) => i.image));
  const done = new Set<string>();
  const order: PipelineImage[] = [];
  const visit = (img: PipelineImage, path: string[]): void => {
    if (done.has(img.image)) return;
    if (path.includes(img.image))
      throw new ImageInputError(
        `the Dockerfiles start FROM each other in a cycle: ${[...path, img.image].join(' → ')}`,
      );
    for (const b of bases.get(img.image) ?? []) {
      const dep = refs.has(b) ? images.find((i) => i.image === b) : undefined;
      if (dep) visit(dep, [...path, img.image]);
    }
    done.add(img.image);
    order.push(img);
  };
  for (const img of images) visit(img, []);
  return order;
}

/**
 * Builds every image that has a Dockerfile and is not up to date (all of them with `force`),
 * bases first. Before building anything, checks that every base image is here or built here
 * (ImageInputError naming the fix otherwise). A failed build throws ImageBuildError naming the
 * image, its Dockerfile and the build's last lines.
 */
export async function buildImages(
  runtime: ContainerRuntime,
  images: PipelineImage[],
  options: BuildOptions,
): Promise<BuildSummary> {
  const started = Date.now();
  const buildable = images.filter((i) => i.dockerfile);
  const bases = new Map(
    buildable.map((i) => [i.image, dockerfileBases(readFileSync(i.dockerfile!, 'utf8'))]),
  );
  const ordered = buildOrder(buildable, bases);
  const statuses = new Map(imageStatuses(runtime, ordered).map((s) => [s.image, s]));
  // In build order, so an image FROM one that is rebuilt is rebuilt after it.
  const building = new Set<string>();
  for (const i of ordered) {
    const stale = statuses.get(i.image)!.state !== 'built';
    if (options.force || stale || bases.get(i.image)!.some((b) => building.has(b)))
      building.add(i.image);
  }
  const todo = ordered.filter((i) => building.has(i.image));
  // Every base a build needs must be here already, or be built first by this command.
  const needed = [
    ...new Set(todo.flatMap((i) => bases.get(i.image)!).filter((b) => !building.has(b))),
  ];
  const have = inspectImages(runtime, needed);
  const missing = needed.filter((b) => !have.has(b));
  if (missing.length > 0) {
    const users = (b: string): string =>
      todo
        .filter((i) => bases.get(i.image)!.includes(b))
        .map((i) => shownPath(i.dockerfile!))
        .join(', ');
    throw new ImageInputError(
      `${missing.length === 1 ? 'base image' : 'base images'} ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not here, and builds do not pull (no registry is assumed)`,
      missing.map((b) => {
        const fix = /^debian:[a-z]+-slim$/.test(b)
          ? fixForProvided(runtime, b, '')
          : `${runtime.name} pull ${b} (or ${runtime.name} load -i FILE)`;
        return `${b} (FROM in ${users(b)}): ${fix}`;
      }),
    );
  }

  const built: string[] = [];
  const upToDate: string[] = [];
  const n = ordered.length;
  for (const [k, img] of ordered.entries()) {
    const status = statuses.get(img.image)!;
    const counter = `(${k + 1}/${n})`;
    if (!building.has(img.image)) {
      options.log(`${img.image} ${counter} up to date\n`);
      upToDate.push(img.image);
      continue;
    }
    const context = dirname(img.dockerfile!);
    const hash = status.hash ?? contextHash(context);
    const args = [
      'build',
      ...(runtime.name === 'podman' ? ['--pull=never'] : []),
      ...runtime.runOptions,
      ...(options.force ? ['--no-cache'] : []),
      '-t',
      img.image,
      '--label',
      `${HASH_LABEL}=${hash}`,
      '-f',
      img.dockerfile!,
      context,
    ];
    const why =
      status.state === 'outdated'
        ? ' (its folder changed)'
        : status.state === 'built' && !options.force
          ? ' (its base was rebuilt)'
          : '';
    options.log(`building ${img.image} ${counter}${why} …${options.output ? '\n' : ' '}`);
    const t0 = Date.now();
    const r = await runStreaming(runtime.program, args, options.output);
    if (r.status !== 0) {
      if (!options.output) options.log('failed\n');
      throw new ImageBuildError(
        `building ${img.image} failed (${r.signal ? `killed by ${r.signal}` : `exit ${r.status}`}): ${shownPath(img.dockerfile!)}`,
        [`${runtime.name} ${args.join(' ')}`, ...r.tail.lines(TAIL_LINES)],
      );
    }
    const now = inspectImages(runtime, [img.image]).get(img.image);
    const id = now?.id.slice(0, 12) ?? '?';
    options.log(
      options.output
        ? `built ${img.image} ${counter} in ${seconds(t0)}: ${id}\n`
        : `${seconds(t0)}, ${id}\n`,
    );
    built.push(img.image);
    // The image it replaces is left without a name; remove it unless something still uses it.
    const old = status.info?.id;
    if (old && now && old !== now.id) runtimeSync(runtime, ['image', 'rm', old]);
  }
  return { built, upToDate, seconds: (Date.now() - started) / 1000 };
}

// ---- the Debian base ----

/**
 * The first Debian mirror an APT configuration names: `deb` lines of sources.list files, and
 * `URIs:` of deb822 `.sources` stanzas of type deb; security archives are passed over (they
 * hold only updates, not the suite).
 */
export function aptMirror(files: { path: string; text: string }[]): string | undefined {
  const ok = (url: string, suites: string[]): boolean =>
    /^(https?|file):\/\//.test(url) &&
    !/security/.test(url) &&
    !suites.every((s) => s.endsWith('-security'));
  for (const { path, text } of files) {
    if (path.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name: string): string[] => {
          const m = new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(stanza);
          return m ? m[1].trim().split(/\s+/) : [];
        };
        const types = field('Types');
        const enabled = field('Enabled')[0]?.toLowerCase() !== 'no';
        if (!types.includes('deb') || !enabled) continue;
        const suites = field('Suites');
        const url = field('URIs').find((u) => ok(u, suites));
        if (url) return url;
      }
    } else {
      for (const raw of text.split('\n')) {
        const line = raw.replace(/#.*/, '').trim();
        const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
        if (m && ok(m[1], [m[2]])) return m[1];
      }
    }
  }
  return undefined;
}

/** This machine's Debian mirror (see aptMirror), or undefined for debootstrap's default. */
export function defaultMirror(root = '/etc/apt'): string | undefined {
  const files: { path: string; text: string }[] = [];
  const read = (path: string): void => {
    try {
      files.push({ path, text: readFileSync(path, 'utf8') });
    } catch {
      // not there
    }
  };
  read(join(root, 'sources.list'));
  try {
    for (const f of readdirSync(join(root, 'sources.list.d')).sort())
      if (f.endsWith('.list') || f.endsWith('.sources')) read(join(root, 'sources.list.d', f));
  } catch {
    // no sources.list.d
  }
  return aptMirror(files);
}

/** Mount points at or below `dir`, deepest first (from /proc/self/mountinfo). */
function mountsUnder(dir: string): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => Boolean(p))
    .map((p) => p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(dir + sep))
    .sort((a, b) => b.length - a.length);
}

/**
 * Removes debootstrap's target. debootstrap mounts /proc, /sys and (in containers) bind mounts
 * of /dev entries into it and unmounts them as it ends; if it was killed they are still there,
 * and a recursive delete would reach through them. So they are unmounted first, and the folder
 * is left in place (named in the error) when any remains.
 */
function removeTarget(dir: string): void {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    return;
  }
  for (const m of mountsUnder(real)) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
  const left = mountsUnder(real);
  if (left.length > 0)
    throw new ImageBuildError(`left ${dir} in place: it still has mounts (${left.join(', ')})`, [
      `unmount them (umount -l …), then rm -rf ${dir}`,
    ]);
  rmSync(real, { recursive: true, force: true, maxRetries: 3 });
}

export interface BaseImageOptions {
  /** Debian suite (default bookworm). */
  suite?: string;
  /** Debian mirror URL (default: this machine's APT mirror, else debootstrap's default). */
  mirror?: string;
  /** The image to make (default `debian:<suite>-slim`). */
  tag?: string;
  /** Make it even when the image is here. */
  force?: boolean;
  log: (text: string) => void;
  /** debootstrap's and the import's own output as it comes (--verbose). */
  output?: (chunk: string) => void;
}

export interface BaseImageInfo {
  tag: string;
  /** Undefined when skipped. */
  id?: string;
  size?: number;
  /** False: it was here already. */
  made: boolean;
  /** debootstrap's share, and the whole. */
  debootstrapSeconds?: number;
  seconds: number;
}

/**
 * Makes a Debian base image from Debian's packages: `debootstrap --variant=minbase SUITE` into a
 * temporary folder (removed afterwards, also on failure), then `tar -C DIR -c .` piped into
 * `<runtime> import -`, tagged only once the whole archive went in. Needs root and debootstrap
 * (ImageInputError otherwise); skipped when the image is here, unless `force`.
 */
export async function makeBaseImage(
  runtime: ContainerRuntime,
  options: BaseImageOptions,
): Promise<BaseImageInfo> {
  const started = Date.now();
  const suite = options.suite ?? 'bookworm';
  if (!/^[a-z][a-z0-9-]*$/.test(suite))
    throw new ImageInputError(`--suite ${suite}: not a Debian suite name (bookworm, trixie, …)`);
  const tag = options.tag ?? `debian:${suite}-slim`;
  const before = inspectImages(runtime, [tag]).get(tag);
  if (before && !options.force) {
    options.log(
      `${tag} is here already (${before.id.slice(0, 12)}, ${formatSize(before.size)}); --force makes it again\n`,
    );
    return { tag, id: before.id, size: before.size, made: false, seconds: 0 };
  }
  const debootstrap = which('debootstrap', `${process.env.PATH ?? ''}:/usr/sbin:/sbin`);
  if (!debootstrap)
    throw new ImageInputError('debootstrap is not installed', ['apt-get install debootstrap']);
  if (process.getuid?.() !== 0)
    throw new ImageInputError(
      'making the base image needs root: debootstrap creates device files and changes owners',
      ['run strand images base as root (sudo), once; builds and runs need no more than that'],
    );
  const mirror = options.mirror ?? defaultMirror();
  const dir = mkdtempSync(join(tmpdir(), 'strand-base-'));
  let current: ChildProcess | undefined;
  const forward = (signal: NodeJS.Signals): void => {
    current?.kill(signal);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  try {
    const args = ['--variant=minbase', suite, dir, ...(mirror ? [mirror] : [])];
    options.log(
      `debootstrap --variant=minbase ${suite} from ${mirror ?? "debootstrap's default mirror"} (about a minute) …${options.output ? '\n' : ' '}`,
    );
    const t0 = Date.now();
    const boot = await runStreaming(debootstrap, args, options.output, (c) => (current = c));
    if (boot.status !== 0 && !options.output) options.log('failed\n');
    if (boot.status !== 0)
      throw new ImageBuildError(
        `debootstrap ${suite} failed (${boot.signal ? `killed by ${boot.signal}` : `exit ${boot.status}`})`,
        [`${debootstrap} ${args.join(' ')}`, ...boot.tail.lines(TAIL_LINES)],
      );
    const debootstrapSeconds = (Date.now() - t0) / 1000;
    options.log(options.output ? `debootstrap done in ${seconds(t0)}\n` : `${seconds(t0)}\n`);
    options.log(`importing it into ${runtime.name} as ${tag} …${options.output ? '\n' : ' '}`);
    const t1 = Date.now();
    const id = await importTree(runtime, dir, suite, options.output, (c) => (current = c)).catch(
      (err: unknown) => {
        if (!options.output) options.log('failed\n');
        throw err;
      },
    );
    const tagged = runtimeSync(runtime, ['tag', id, tag]);
    if (tagged.status !== 0) {
      runtimeSync(runtime, ['image', 'rm', id]);
      throw new ImageBuildError(`${runtime.name} tag ${id} ${tag} failed`, [
        ...tagged.stderr.trim().split('\n'),
      ]);
    }
    const info = inspectImages(runtime, [tag]).get(tag);
    options.log(options.output ? `imported in ${seconds(t1)}\n` : `${seconds(t1)}\n`);
    // The image it replaces keeps its layers while images built FROM it exist; otherwise it goes.
    if (before && before.id !== id) runtimeSync(runtime, ['image', 'rm', before.id]);
    return {
      tag,
      id,
      size: info?.size,
      made: true,
      debootstrapSeconds,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
    removeTarget(dir);
  }
}

/** `tar -C DIR -c .` into `<runtime> import -` (argv, no shell); the new image's id. */
async function importTree(
  runtime: ContainerRuntime,
  dir: string,
  suite: string,
  output: ((chunk: string) => void) | undefined,
  onChild: (child: ChildProcess | undefined) => void,
): Promise<string> {
  const tail = new OutputTail();
  const take = (d: Buffer): void => {
    const s = d.toString();
    tail.add(s);
    output?.(s);
  };
  const tar = spawn('tar', ['-C', dir, '-c', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const importer = spawn(
    runtime.program,
    ['import', '--message', `strand images base: debootstrap --variant=minbase ${suite}`, '-'],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  onChild(importer);
  let stdout = '';
  tar.stdout.pipe(importer.stdin);
  tar.stderr.on('data', take);
  importer.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  importer.stderr.on('data', take);
  // A reader that went away makes tar's pipe fail; the exit statuses say which side failed.
  importer.stdin.on('error', () => undefined);
  const exit = (c: ChildProcess): Promise<number | null> =>
    new Promise((resolve) => {
      c.on('error', (err) => {
        tail.add(`${err.message}\n`);
        resolve(null);
      });
      c.on('close', (status) => resolve(status));
    });
  const [tarStatus, importStatus] = await Promise.all([exit(tar), exit(importer)]);
  onChild(undefined);
  const id =
    stdout
      .trim()
      .split('\n')
      .at(-1)
      ?.replace(/^sha256:/, '') ?? '';
  if (tarStatus !== 0 || importStatus !== 0 || !/^[0-9a-f]{12,}$/.test(id)) {
    // A partial archive may still have become an image: it must not be used.
    if (/^[0-9a-f]{12,}$/.test(id)) runtimeSync(runtime, ['image', 'rm', id]);
    throw new ImageBuildError(
      `importing the Debian tree failed (tar exit ${tarStatus}, ${runtime.name} import exit ${importStatus})`,
      tail.lines(TAIL_LINES),
    );
  }
  return id;
}
