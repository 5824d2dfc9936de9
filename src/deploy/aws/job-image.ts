/**
 * The images of a deployed pipeline's jobs: each step's image as it is (built from its
 * Dockerfile, or the image it names), with Strand's stage program added under /opt/strand as
 * its entry point. Step Functions submits every job itself, with the environment the compiled
 * state machine gives it in `ContainerOverrides`; AWS Batch takes that only for a job of one
 * container (a multi-container job refuses it: "Container overrides should not be set for
 * ecsProperties jobs"), so the staging runs in the tool's container, not beside it.
 *
 * The stage program needs nothing of the tool's image: it is Node with its own shared libraries
 * and loader (started through that loader, so the image's C library, or none, does not matter),
 * one bundled file of Strand's code (stage-entry.ts) and Strand's static launcher. `strand stage
 * job run -- ARGV` stages the inputs in, runs the tool (ARGV: the job definition's command,
 * Batch's `Ref::` parameters substituted) through the launcher with exactly the job's
 * environment, and stages out. The tool itself still needs nothing but its tool.
 *
 * Files beside the pipeline that a job reads (`SUMMARY_AWK: summary.awk`) are copied into every
 * image under /opt/strand/files/<sha256>/<name>, and the values naming them are given that path.
 */
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import type { RegisterJobDefinitionRequest } from '../../batch/types.js';
import { nativeLauncher } from '../../executors/local/local-executor.js';
import type { PipelineImage } from '../../images/images.js';
import { bundleStage } from './bundle.js';

/** Where Strand's stage program is in a job's image. */
export const STRAND_DIR = '/opt/strand';
/** Where the files beside the pipeline are in a job's image. */
export const FILES_DIR = `${STRAND_DIR}/files`;
/** The image Node and its libraries are taken from. */
export const NODE_IMAGE = 'node:22-bookworm-slim';
/** The dynamic loader of Node's image (x86-64: the stack's jobs run on linux/amd64). */
const LOADER = `${STRAND_DIR}/lib/ld-linux-x86-64.so.2`;

/** The entry point of every job image: the tool's command follows as its arguments. */
export const JOB_ENTRYPOINT = [
  LOADER,
  '--library-path',
  `${STRAND_DIR}/lib`,
  `${STRAND_DIR}/bin/node`,
  `${STRAND_DIR}/stage.mjs`,
  'job',
  'run',
  '--',
];

/** A file of this machine a job reads, and where its image has it. */
export interface PipelineFile {
  /** The absolute path the pipeline names. */
  path: string;
  /** The path in the job's image. */
  inImage: string;
}

/** Whether `value` names a regular file of this machine (by an absolute path). */
function isFile(value: string): boolean {
  if (!value.startsWith('/') || /^\/(proc|sys|dev)(\/|$)/.test(value)) return false;
  try {
    return statSync(value).isFile();
  } catch {
    return false;
  }
}

/** Where a file of this machine goes in a job's image: by content, so two of a name differ. */
export function pipelineFile(path: string): PipelineFile {
  const sha = createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 32);
  return { path, inImage: `${FILES_DIR}/${sha}/${basename(path)}` };
}

/**
 * The files of this machine among `values` (the pipeline's parameters, the jobs' literal
 * environment values and command items), each once.
 */
export function pipelineFiles(values: Iterable<string>): Map<string, PipelineFile> {
  const out = new Map<string, PipelineFile>();
  for (const v of values) if (!out.has(v) && isFile(v)) out.set(v, pipelineFile(v));
  return out;
}

/** A value with a file of this machine replaced by its path in the image. */
export function inImage(value: string, files: Map<string, PipelineFile>): string {
  return files.get(value)?.inImage ?? value;
}

/**
 * The container of a deployed job definition, from the compiled one: the tool's command (after
 * the image's entry point, Strand's stage program) and its environment, with what the job's
 * staging needs beside what the step declares: the store, the tool's image (for its manifest)
 * and the step's own timeout, at which the launcher stops the tool so that its outputs are
 * still staged out before Batch's longer timeout ends the job. Files of this machine are named
 * by their place in the image.
 */
export function deployedContainer(
  def: RegisterJobDefinitionRequest,
  storeUrl: string,
  files: Map<string, PipelineFile>,
): {
  image: string;
  command: string[];
  environment: { name: string; value: string }[];
  timeout?: number;
} {
  const c = def.containerProperties;
  const image = c.image ?? '';
  const timeout = def.timeout?.attemptDurationSeconds;
  const environment = [
    ...(c.environment ?? []).map((kv) => ({ name: kv.name, value: inImage(kv.value, files) })),
    { name: 'STRAND_STORE', value: storeUrl },
    { name: 'STRAND_IMAGE', value: image },
    ...(timeout === undefined ? [] : [{ name: 'STRAND_STAGE_TIMEOUT', value: String(timeout) }]),
    // Which variables ECS fills from secrets: the staging keeps their values out of manifests.
    ...(c.secrets?.length
      ? [{ name: 'STRAND_STAGE_SECRETS', value: c.secrets.map((x) => x.name).join(',') }]
      : []),
  ].sort((a, b) => a.name.localeCompare(b.name));
  return {
    image,
    command: (c.command ?? []).map((item) => inImage(item, files)),
    environment,
    ...(timeout === undefined ? {} : { timeout }),
  };
}

/** Parser directives (`# syntax=`, `# escape=`) must stay the Dockerfile's first lines. */
function splitDirectives(text: string): { directives: string; rest: string } {
  const lines = text.split('\n');
  let n = 0;
  while (n < lines.length && /^#\s*(syntax|escape|check)\s*=/i.test(lines[n])) n++;
  return { directives: lines.slice(0, n).join('\n'), rest: lines.slice(n).join('\n') };
}

/** The Dockerfile of a job image: Strand's runtime stage, the tool's image, Strand added to it. */
export function jobDockerfile(tool: { dockerfile?: string; image: string }): string {
  const { directives, rest } = tool.dockerfile
    ? splitDirectives(tool.dockerfile)
    : { directives: '', rest: `FROM ${tool.image}\n` };
  const runtime = [
    `FROM ${NODE_IMAGE} AS strand-runtime`,
    `COPY .strand/ ${STRAND_DIR}/`,
    // Node with the shared libraries it links and their loader: it runs in any image.
    `RUN set -e; mkdir -p ${STRAND_DIR}/bin ${STRAND_DIR}/lib /strand; \\`,
    `  cp /usr/local/bin/node ${STRAND_DIR}/bin/node; \\`,
    `  ldd /usr/local/bin/node | awk '$2 == "=>" && $3 ~ /^\\// { print $3 } $1 ~ /^\\// { print $1 }' \\`,
    `    | while read -r lib; do cp -L "$lib" ${STRAND_DIR}/lib/; done; \\`,
    `  test -x ${LOADER}; chmod -R a+rX ${STRAND_DIR}; chmod 1777 /strand`,
  ].join('\n');
  const added = [
    `COPY --from=strand-runtime ${STRAND_DIR} ${STRAND_DIR}`,
    // The job's files go under /strand, writable whatever user the tool's image runs as.
    'COPY --from=strand-runtime /strand /strand',
    `ENTRYPOINT ${JSON.stringify(JOB_ENTRYPOINT)}`,
  ].join('\n');
  return [
    ...(directives ? [directives] : []),
    `# Made by strand deploy aws: the tool's image with Strand's stage program added.`,
    runtime,
    '',
    rest.trimEnd(),
    '',
    added,
    '',
  ].join('\n');
}

/** The build contexts of the job images, by image reference (each a directory under `root`). */
export async function jobImageContexts(
  images: PipelineImage[],
  files: Map<string, PipelineFile>,
  root: string,
): Promise<Map<string, string>> {
  const launcher = nativeLauncher();
  if (!launcher)
    throw new Error(
      "Strand's native launcher (dist/strand-launcher) is not built: run npm run build (it needs a C compiler); a deployed job runs its tool through it",
    );
  const runtime = join(root, '_runtime');
  mkdirSync(runtime, { recursive: true });
  await bundleStage(join(runtime, 'stage.mjs'));
  copyFileSync(launcher, join(runtime, 'strand-launcher'));
  for (const f of files.values()) {
    const to = join(runtime, f.inImage.slice(STRAND_DIR.length + 1));
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(f.path, to);
  }
  const out = new Map<string, string>();
  images.forEach((img, i) => {
    const dir = join(root, `image-${i}`);
    if (img.dockerfile) cpSync(dirname(img.dockerfile), dir, { recursive: true });
    else mkdirSync(dir, { recursive: true });
    cpSync(runtime, join(dir, '.strand'), { recursive: true });
    const ignore = join(dir, '.dockerignore');
    if (existsSync(ignore))
      writeFileSync(ignore, `${readFileSync(ignore, 'utf8').trimEnd()}\n!.strand\n!.strand/**\n`);
    writeFileSync(
      join(dir, 'Dockerfile'),
      jobDockerfile({
        image: img.image,
        ...(img.dockerfile ? { dockerfile: readFileSync(img.dockerfile, 'utf8') } : {}),
      }),
    );
    out.set(img.image, dir);
  });
  return out;
}
