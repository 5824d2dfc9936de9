/** `strand images …`: build a pipeline's images, make the Debian base, list their state. */
import type { Command } from 'commander';
import {
  ContainerRuntimeError,
  detectRuntime,
  RUNTIMES,
  type ContainerRuntime,
  type RuntimeName,
} from '../executors/container/runtime.js';
import {
  BASE_IMAGE,
  buildImages,
  formatSize,
  ImageBuildError,
  ImageInputError,
  imageStatuses,
  makeBaseImage,
  pipelineImages,
} from '../images/images.js';
import { PipelineError, formatPipelineProblem, shownPath } from '../pipeline/errors.js';
import { loadPipeline, type LoadedPipeline } from '../pipeline/load.js';
import { formatTable } from './table.js';
import { errorPrefix, painter, statusColumns } from './color.js';
import { EXIT_FAILED, EXIT_OK, InputError } from './errors.js';
import type { Io } from './io.js';

const MAPPING = `
Images and Dockerfiles:
  A step's image: is built from images/<name>/Dockerfile beside the pipeline
  file, where <name> is the last part of the image reference without tag or
  digest (strand/fastp:0.23 → images/fastp/Dockerfile, ghcr.io/x/megahit:1.2.9
  → images/megahit/Dockerfile); that folder is the build context. An image with
  no such Dockerfile is "provided": it must be here already. Builds never pull
  (--pull=never): their base, ${BASE_IMAGE}, is made by
  \`strand images base\` (debootstrap, as root).`;

/** The runtime named by --runtime, or exit 2 with what is missing and how to get it. */
function runtimeOf(name: string | undefined): ContainerRuntime {
  const wanted = name ?? 'podman';
  if (!(RUNTIMES as readonly string[]).includes(wanted))
    throw new InputError(`--runtime ${wanted}: use ${RUNTIMES.join(' or ')}`);
  try {
    return detectRuntime(wanted as RuntimeName);
  } catch (err) {
    if (err instanceof ContainerRuntimeError) throw new InputError(err.message);
    throw err;
  }
}

/** Loads the pipeline, or exit 2 with the loader's problems. */
function load(file: string): LoadedPipeline {
  try {
    // The images are the steps': the samples sheet need not exist yet.
    return loadPipeline(file, { readSheet: false });
  } catch (err) {
    if (err instanceof PipelineError) {
      const n = err.problems.length;
      throw new InputError(
        `${file}: ${n} problem${n === 1 ? '' : 's'}`,
        err.problems.map(formatPipelineProblem),
        { cause: err },
      );
    }
    throw err;
  }
}

/** Runs an images action: a missing prerequisite exits 2, a failed build or import exits 1. */
async function guarded(
  io: Io,
  setExit: (code: number) => void,
  fn: () => Promise<void> | void,
): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof ImageInputError) throw new InputError(err.message, err.details);
    if (!(err instanceof ImageBuildError)) throw err;
    io.err(`${errorPrefix(painter(io.color?.err), 'strand:')} ${err.message}\n`);
    for (const d of err.details) io.err(`  ${d}\n`);
    setExit(EXIT_FAILED);
  }
}

function created(iso: string | undefined): string {
  if (!iso) return '';
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? iso : `${t.toISOString().slice(0, 16).replace('T', ' ')}Z`;
}

export function registerImagesCommands(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
): void {
  const images = program
    .command('images')
    .description(
      "a pipeline's container images: build them from their Dockerfiles, make the Debian base, list their state",
    )
    .addHelpText('after', MAPPING);

  images
    .command('build')
    .description(
      'build every image of the pipeline that has a Dockerfile (images/<name>/Dockerfile), tagged as ' +
        'image: says; an image is rebuilt only when its folder changed (label strand.dockerfile-sha256)',
    )
    .argument('[pipeline.yaml]', 'the pipeline', 'pipeline.yaml')
    .option('--runtime <name>', 'podman or docker', 'podman')
    .option('--force', 'rebuild every image, without the layer cache (fresh packages)')
    .option('--verbose', "stream the builds' own output to stderr (otherwise shown on failure)")
    .addHelpText('after', MAPPING)
    .action((file: string, opts: { runtime?: string; force?: boolean; verbose?: boolean }) =>
      guarded(io, setExit, async () => {
        const { spec } = load(file);
        const runtime = runtimeOf(opts.runtime);
        const all = pipelineImages(spec);
        const buildable = all.filter((i) => i.dockerfile);
        if (opts.verbose) for (const n of runtime.notes) io.err(`note: ${n}\n`);
        if (buildable.length === 0) {
          io.err(
            `${file}: no image has a Dockerfile (images/<name>/Dockerfile); nothing to build\n`,
          );
          setExit(EXIT_OK);
          return;
        }
        const summary = await buildImages(runtime, buildable, {
          force: opts.force,
          log: io.err,
          ...(opts.verbose ? { output: io.err } : {}),
        });
        const provided = all.filter((i) => !i.dockerfile).map((i) => i.image);
        io.err(
          `${summary.built.length} built, ${summary.upToDate.length} up to date in ${summary.seconds.toFixed(1)}s` +
            (provided.length > 0 ? `; provided (not built here): ${provided.join(', ')}` : '') +
            '\n',
        );
        setExit(EXIT_OK);
      }),
    );

  images
    .command('base')
    .description(
      `make the base image ${BASE_IMAGE} from Debian's packages: debootstrap --variant=minbase into a ` +
        'temporary folder, imported into the runtime (needs root and debootstrap; about a minute)',
    )
    .option('--runtime <name>', 'podman or docker', 'podman')
    .option('--force', 'make it even when the image is here (replaces it)')
    .option('--suite <name>', 'Debian suite', 'bookworm')
    .option(
      '--mirror <url>',
      "Debian mirror (default: this machine's, from /etc/apt; else debootstrap's)",
    )
    .option('--tag <image>', 'the image to make (default debian:<suite>-slim)')
    .option('--verbose', "stream debootstrap's output to stderr (otherwise shown on failure)")
    .addHelpText('after', MAPPING)
    .action(
      (opts: {
        runtime?: string;
        force?: boolean;
        suite?: string;
        mirror?: string;
        tag?: string;
        verbose?: boolean;
      }) =>
        guarded(io, setExit, async () => {
          const runtime = runtimeOf(opts.runtime);
          for (const n of runtime.notes) io.err(`note: ${n}\n`);
          const made = await makeBaseImage(runtime, {
            suite: opts.suite,
            mirror: opts.mirror,
            tag: opts.tag,
            force: opts.force,
            log: io.err,
            ...(opts.verbose ? { output: io.err } : {}),
          });
          if (made.made)
            io.err(
              `${made.tag}: ${made.id?.slice(0, 12)}, ${made.size === undefined ? '?' : formatSize(made.size)}, made in ${made.seconds.toFixed(1)}s\n`,
            );
          setExit(EXIT_OK);
        }),
    );

  images
    .command('ls')
    .description(
      'list the images the pipeline uses: the steps using each, its Dockerfile (or "provided"), ' +
        'its state (built, outdated: its folder changed since, missing), id, size and when it was made',
    )
    .argument('[pipeline.yaml]', 'the pipeline', 'pipeline.yaml')
    .option('--runtime <name>', 'podman or docker', 'podman')
    .option('--format <format>', 'table or json', 'table')
    .addHelpText('after', MAPPING)
    .action((file: string, opts: { runtime?: string; format: string }) =>
      guarded(io, setExit, () => {
        if (opts.format !== 'table' && opts.format !== 'json')
          throw new InputError(`--format ${opts.format}: use table or json`);
        const { spec } = load(file);
        const runtime = runtimeOf(opts.runtime);
        const statuses = imageStatuses(runtime, pipelineImages(spec));
        if (opts.format === 'json') {
          const rows = statuses.map((s) => ({
            image: s.image,
            steps: s.steps,
            dockerfile: s.dockerfile ? shownPath(s.dockerfile) : null,
            state: s.state,
            id: s.info?.id ?? null,
            size: s.info?.size ?? null,
            created: s.info?.created ?? null,
            hash: s.hash ?? null,
            builtHash: s.info?.hash ?? null,
          }));
          io.out(JSON.stringify(rows, null, 2) + '\n');
        } else {
          const rows = statuses.map((s) => ({
            image: s.image,
            state: s.state,
            id: s.info?.id.slice(0, 12),
            size: s.info ? formatSize(s.info.size) : undefined,
            created: created(s.info?.created),
            dockerfile: s.dockerfile ? shownPath(s.dockerfile) : 'provided',
            steps: s.steps.join(','),
          }));
          if (rows.length === 0) io.err(`${file}: no step has an image\n`);
          else
            io.out(
              formatTable(
                rows,
                [
                  'image',
                  'state',
                  'id',
                  { key: 'size', align: 'right' },
                  'created',
                  'dockerfile',
                  'steps',
                ],
                statusColumns(painter(io.color?.out), ['state']),
              ),
            );
        }
        setExit(EXIT_OK);
      }),
    );
}
