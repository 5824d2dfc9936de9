/**
 * `strand images` and the image preflight, against real podman: tiny images FROM the Debian base
 * (no apt-get), each named uniquely for the run and removed at the end.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  detectRuntime,
  hasImage,
  runtimeSync,
  which,
  type ContainerRuntime,
} from '../../src/executors/container/runtime.js';
import {
  aptMirror,
  BASE_IMAGE,
  checkPipelineImages,
  contextHash,
  dockerfileBases,
  imageName,
  inspectImages,
} from '../../src/images/images.js';
import { loadPipeline } from '../../src/pipeline/load.js';
import { inlinePipeline, strand } from '../pipeline/cli.js';

describe('image names, contexts and Dockerfiles', () => {
  it.each([
    ['strand/fastp:0.23', 'fastp'],
    ['ghcr.io/x/megahit:1.2.9', 'megahit'],
    ['localhost:5000/tools/seqkit', 'seqkit'],
    ['debian:bookworm-slim', 'debian'],
    ['strand/mash@sha256:0123abcd', 'mash'],
    ['registry:5000/a/b:1@sha256:0123abcd', 'b'],
    ['..', ''],
  ])('%s → images/%s/Dockerfile', (ref, name) => {
    expect(imageName(ref)).toBe(name);
  });

  it.each([
    ['FROM debian:bookworm-slim\nRUN true\n', ['debian:bookworm-slim']],
    ['# FROM not:this\nfrom --platform=linux/amd64 a:1 AS build\nFROM build\n', ['a:1']],
    ['FROM a:1 AS one\nFROM b:2\nCOPY --from=one /x /x\n', ['a:1', 'b:2']],
    ['ARG BASE=x\nFROM $BASE\nFROM scratch\n', []],
    ['FROM \\\n  debian:bookworm-slim\n', ['debian:bookworm-slim']],
  ])('FROM lines of %j', (text, bases) => {
    expect(dockerfileBases(text)).toEqual(bases);
  });

  it('hashes a context by its names and contents', () => {
    const dir = mkdtempSync(join(tmpdir(), 'strand-ctx-'));
    writeFileSync(join(dir, 'Dockerfile'), 'FROM x\n');
    const first = contextHash(dir);
    expect(contextHash(dir)).toBe(first);
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'a'), '');
    const withFile = contextHash(dir);
    expect(withFile).not.toBe(first);
    writeFileSync(join(dir, 'sub', 'a'), 'x');
    expect(contextHash(dir)).not.toBe(withFile);
  });

  it.each([
    [
      'deb822, security passed over',
      [
        {
          path: '/etc/apt/sources.list.d/debian.sources',
          text: 'Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\nTypes: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n',
        },
      ],
      'http://mirror.example/debian',
    ],
    [
      'one-line, options and comments',
      [
        {
          path: '/etc/apt/sources.list',
          text: '# deb http://old.example/debian bookworm main\ndeb-src http://src.example/debian bookworm main\ndeb [arch=amd64] http://ftp.example/debian/ bookworm main\n',
        },
      ],
      'http://ftp.example/debian/',
    ],
    [
      'deb-src only and a disabled stanza',
      [
        {
          path: '/etc/apt/sources.list',
          text: 'deb-src http://src.example/debian bookworm main\n',
        },
        {
          path: '/etc/apt/sources.list.d/x.sources',
          text: 'Types: deb\nEnabled: no\nURIs: http://off.example/debian\nSuites: bookworm\n',
        },
      ],
      undefined,
    ],
  ])('the APT mirror: %s', (_what, files, mirror) => {
    expect(aptMirror(files)).toBe(mirror);
  });
});

const podmanInstalled = which('podman') !== undefined;
const required = process.env.STRAND_REQUIRE_CONTAINERS === '1';

describe.skipIf(!podmanInstalled && !required)('strand images with podman', () => {
  const run = randomBytes(4).toString('hex');
  const made: string[] = [];
  let runtime: ContainerRuntime;

  /** A pipeline using `images` (ref → Dockerfile text, or null for a provided image). */
  function pipeline(images: Record<string, string | null>, extraSteps: string[] = []) {
    const refs = Object.keys(images);
    // Only this run's images are removed at the end (never the base).
    made.push(...refs.filter((r) => r.includes(`-${run}:`)));
    const p = inlinePipeline([
      `name: images-${run}`,
      'samples: [ { id: A } ]',
      'steps:',
      ...refs.flatMap((ref, i) => [`  s${i}:`, `    image: ${ref}`, '    command: [cat, /hi]']),
      ...extraSteps,
    ]);
    for (const [ref, text] of Object.entries(images)) {
      if (text === null) continue;
      const dir = join(p.dir, 'images', imageName(ref));
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'Dockerfile'), text);
    }
    return p;
  }
  const ref = (name: string) => `strand-test/${name}-${run}:1`;
  const id = (image: string) => inspectImages(runtime, [image]).get(image)?.id;
  const ls = async (file: string) => {
    const r = await strand('images', 'ls', file, '--format', 'json');
    expect(r.code, r.err).toBe(0);
    return JSON.parse(r.out) as { image: string; state: string; dockerfile: string | null }[];
  };

  beforeAll(() => {
    runtime = detectRuntime('podman');
    if (!hasImage(runtime, BASE_IMAGE))
      throw new Error(`${BASE_IMAGE} is not in podman's store: run strand images base`);
  });

  afterAll(() => {
    if (made.length > 0) runtimeSync(runtime, ['image', 'rm', '--force', '--ignore', ...made]);
  });

  it('builds an image once, again only when its Dockerfile changes; ls follows', async () => {
    const image = ref('hi');
    const p = pipeline({ [image]: `FROM ${BASE_IMAGE}\nRUN echo hi > /hi\n` });
    expect((await ls(p.file)).map((r) => [r.image, r.state, r.dockerfile])).toEqual([
      [image, 'missing', join(p.dir, 'images', `hi-${run}`, 'Dockerfile')],
    ]);

    const first = await strand('images', 'build', p.file);
    expect(first.code, first.err).toBe(0);
    expect(first.err).toContain(`building ${image} (1/1) …`);
    expect(first.err).not.toContain('STEP 1/'); // the build's own output only with --verbose
    const id1 = id(image);
    expect(id1).toBeDefined();
    expect((await ls(p.file))[0].state).toBe('built');
    const label = runtimeSync(runtime, [
      'image',
      'inspect',
      '--format',
      '{{index .Config.Labels "strand.dockerfile-sha256"}}',
      image,
    ]).stdout.trim();
    expect(label).toBe(contextHash(join(p.dir, 'images', `hi-${run}`)));

    const again = await strand('images', 'build', p.file);
    expect(again.code, again.err).toBe(0);
    expect(again.err).toContain(`${image} (1/1) up to date`);
    expect(id(image)).toBe(id1);

    writeFileSync(
      join(p.dir, 'images', `hi-${run}`, 'Dockerfile'),
      `FROM ${BASE_IMAGE}\nRUN echo ho > /hi\n`,
    );
    expect((await ls(p.file))[0].state).toBe('outdated');
    const loaded = loadPipeline(p.file);
    const check = checkPipelineImages(loaded.spec, runtime);
    expect(check.problems).toEqual([]);
    expect(check.outdated.map((o) => [o.step, o.image])).toEqual([['s0', image]]);

    const third = await strand('images', 'build', p.file, '--verbose');
    expect(third.code, third.err).toBe(0);
    expect(third.err).toContain('STEP 2/'); // --verbose streams the build
    const id2 = id(image);
    expect(id2).toBeDefined();
    expect(id2).not.toBe(id1);
    expect((await ls(p.file))[0].state).toBe('built');
    // The image it replaced had no name left and was removed.
    expect(inspectImages(runtime, [id1!]).size).toBe(0);
  });

  it('reports missing images before a run, with the command that fixes each', () => {
    const built = ref('unbuilt');
    const provided = ref('provided');
    const p = pipeline({ [built]: `FROM ${BASE_IMAGE}\nRUN echo hi > /hi\n`, [provided]: null }, [
      '  base:',
      `    image: ${BASE_IMAGE}`,
      '    command: [true]',
    ]);
    const { spec } = loadPipeline(p.file);
    const check = checkPipelineImages(spec, runtime, { pipelineArg: 'my/pipeline.yaml' });
    expect(check.outdated).toEqual([]);
    expect(check.problems).toEqual([
      {
        step: 's0',
        steps: ['s0'],
        image: built,
        message: `image ${built} (step s0) is not built`,
        fix: 'strand images build my/pipeline.yaml',
      },
      {
        step: 's1',
        steps: ['s1'],
        image: provided,
        message: expect.stringContaining(`image ${provided} (step s1) is not here`) as string,
        fix: expect.stringContaining(`podman pull ${provided}`) as string,
      },
    ]);
    expect(check.problems[1].fix).toContain(join('images', `provided-${run}`, 'Dockerfile'));
    // Only the steps that will run are checked.
    expect(checkPipelineImages(spec, runtime, { steps: ['base'] }).problems).toEqual([]);
    expect(checkPipelineImages(spec, runtime, { steps: [] }).problems).toHaveLength(2);
  });

  it('a failing build exits 1 naming the image, its Dockerfile and the last lines', async () => {
    const image = ref('fails');
    const p = pipeline({ [image]: `FROM ${BASE_IMAGE}\nRUN echo about to fail && false\n` });
    const r = await strand('images', 'build', p.file);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`building ${image} failed`);
    expect(r.err).toContain(join(p.dir, 'images', `fails-${run}`, 'Dockerfile'));
    expect(r.err).toContain('about to fail'); // the build's output, kept for the failure
    expect(hasImage(runtime, image)).toBe(false);
  });

  it('a missing base image stops before any build (exit 2), naming the fix', async () => {
    const image = ref('orphan');
    const base = ref('nobase');
    const p = pipeline({ [image]: `FROM ${base}\nRUN true\n` });
    const r = await strand('images', 'build', p.file);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`base image ${base} is not here`);
    expect(r.err).toContain(`podman pull ${base}`);
    expect(r.err).not.toContain('building');
  });

  it('builds an image FROM another of the pipeline after it', async () => {
    const lower = ref('lower');
    const upper = ref('upper');
    // Written upper first: the order comes from the FROM lines.
    const p = pipeline({
      [upper]: `FROM ${lower}\nRUN echo upper >> /hi\n`,
      [lower]: `FROM ${BASE_IMAGE}\nRUN echo lower > /hi\n`,
    });
    const r = await strand('images', 'build', p.file);
    expect(r.code, r.err).toBe(0);
    expect(r.err.indexOf(`building ${lower} (1/2)`)).toBeGreaterThanOrEqual(0);
    expect(r.err.indexOf(`building ${upper} (2/2)`)).toBeGreaterThan(r.err.indexOf(lower));
  });

  it('bad input exits 2 with the loader message; --help explains the mapping', async () => {
    const missing = join(tmpdir(), `no-such-${run}.yaml`);
    for (const cmd of ['build', 'ls']) {
      const r = await strand('images', cmd, missing);
      expect(r.code).toBe(2);
      expect(r.err).toContain('not found');
    }
    const p = pipeline({ [BASE_IMAGE]: null });
    const bad = await strand('images', 'ls', '--runtime', 'lxc', p.file);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--runtime lxc: use podman or docker');
    for (const cmd of ['build', 'base', 'ls']) {
      const help = await strand('images', cmd, '--help');
      expect(help.code).toBe(0);
      expect(help.out).toContain('images/<name>/Dockerfile');
      expect(help.out).toContain(`strand images base`);
    }
  });

  it('images base leaves an existing base alone without --force', async () => {
    const r = await strand('images', 'base');
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain(`${BASE_IMAGE} is here already`);
  });
});
