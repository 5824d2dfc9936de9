/**
 * Pipelines in containers through the CLI, on real podman: choosing the executor (flag, profile,
 * pipeline, config), the checks before any job starts, the same results as on the host, and
 * containers that outlive a `kill -9` of Strand and are found again by `strand resume`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { podman, podmanReady } from '../executors/containers.js';
import {
  exampleWorkspace,
  inlinePipeline,
  resultsJson,
  spawnStrand,
  strand,
  waitUntil,
} from './cli.js';

/** Whether a Docker daemon answers here (none does on the machines this is tested on). */
const dockerAnswers = spawnSync('docker', ['info'], { stdio: 'ignore' }).status === 0;

/** The containers of a home's attempts (running or ended, not yet removed). */
function containersOf(home: string, running = false): string[] {
  const out = execFileSync(
    podman!.program,
    ['ps', ...(running ? [] : ['--all']), '--format', '{{.Names}} {{.Labels}}'],
    { encoding: 'utf8' },
  );
  return out
    .split('\n')
    .filter((l) => l.includes(`strand.ref:${join(home, 'work')}`))
    .map((l) => l.split(' ')[0]);
}

describe('choosing the executor', () => {
  const p = inlinePipeline([
    'name: chooser',
    'samples: [ { id: A } ]',
    'steps:',
    '  one: { image: debian:bookworm-slim, command: [true] }',
  ]);

  it('local by default; --executor, then --profile, then the pipeline, then config.yaml', async () => {
    const executor = async (...args: string[]) => {
      const r = await strand('run', p.file, '--home', p.home, '--dry-run', '--json', ...args);
      expect(r.err).toBe('');
      return (JSON.parse(r.out) as { executor: string }).executor;
    };
    expect(await executor()).toBe('local');
    mkdirSync(p.home, { recursive: true });
    writeFileSync(
      join(p.home, 'config.yaml'),
      'executor: podman\nprofiles:\n  host: { executor: local }\n',
    );
    if (podmanReady) expect(await executor()).toBe('podman');
    expect(await executor('--profile', 'host')).toBe('local');
    expect(await executor('--executor', 'local', '--profile', 'host')).toBe('local');
  });

  it.skipIf(dockerAnswers)(
    'a container runtime that is missing or does not answer is exit 2 before any job, naming it',
    async () => {
      // No Docker daemon runs on these machines: docker is either not installed or not answering.
      const q = inlinePipeline([
        'name: nodocker',
        'samples: [ { id: A } ]',
        'steps:',
        '  one: { image: debian:bookworm-slim, command: [true] }',
      ]);
      const r = await strand('run', q.file, '--home', q.home, '--executor', 'docker');
      expect(r.code).toBe(2);
      expect(r.err).toMatch(
        /executor docker \(from --executor\): docker (is not installed|does not answer)/,
      );
      expect(existsSync(join(q.home, 'work'))).toBe(false);
    },
  );

  it('an unknown executor or profile, or a bad config.yaml, is exit 2 naming it', async () => {
    const q = inlinePipeline([
      'name: chooser2',
      'samples: [ { id: A } ]',
      'steps:',
      '  one: { image: debian:bookworm-slim, command: [true] }',
    ]);
    let r = await strand('run', q.file, '--home', q.home, '--executor', 'kubernetes');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--executor kubernetes: use one of local, podman, docker/);
    r = await strand('run', q.file, '--home', q.home, '--profile', 'fast');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--profile fast: .*config.yaml has no such profile/);
    mkdirSync(q.home, { recursive: true });
    writeFileSync(
      join(q.home, 'config.yaml'),
      'executors:\n  podman:\n    volumes: [relative:/x]\n',
    );
    r = await strand('run', q.file, '--home', q.home);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/config.yaml:3:\d+ executors.podman.volumes.0: expected HOST:CONTAINER/);
  });
});

describe.skipIf(!podmanReady)('pipelines in containers (podman)', () => {
  it('word-count gives the same outputs in containers as on the host, and results name executor and image', async () => {
    const w = exampleWorkspace('word-count');
    const local = await strand('run', w.file, '--home', w.home, '--store', join(w.dir, 'local'));
    const inPodman = await strand(
      'run',
      w.file,
      '--home',
      w.home,
      '--store',
      join(w.dir, 'podman'),
      '--executor',
      'podman',
    );
    // One sample of the example fails on purpose (an empty text).
    expect([local.code, inPodman.code]).toEqual([1, 1]);
    expect(inPodman.err).toContain(', on podman');
    const summary = (store: string) =>
      readFileSync(join(w.dir, store, 'word-count/_all/summary/summary.tsv'), 'utf8');
    expect(summary('podman')).toBe(summary('local'));
    expect(summary('podman').split('\n').length).toBeGreaterThan(2);
    const rows = (await resultsJson(w.home, '--sample', 'alpha', '--step', 'words')) as {
      executor: string;
      image?: string;
    }[];
    expect(rows.map((r) => [r.executor, r.image ?? null]).sort()).toEqual([
      ['local', null],
      ['podman', 'debian:bookworm-slim'],
    ]);
  });

  it('a directory a parameter names (a reference database) is there, read-only; the image keeps its own /usr', async () => {
    const p = inlinePipeline(
      [
        'name: refs',
        'samples: [ { id: A } ]',
        'params: { REFS: ./refs, TOOLS: /usr/share/doc }',
        'steps:',
        '  look:',
        '    image: debian:bookworm-slim',
        "    command: [sh, -c, 'cat $0/db.txt; touch $0/new 2>/dev/null || echo read-only; ls $1 | grep -c . > n.txt', $REFS, $TOOLS]",
        '    outputs: { N: n.txt }',
      ],
      {},
    );
    mkdirSync(join(p.dir, 'refs'));
    writeFileSync(join(p.dir, 'refs/db.txt'), 'reference\n');
    const r = await strand('run', p.file, '--home', p.home, '--executor', 'podman');
    expect(r.code, r.err).toBe(0);
    const log = readFileSync(
      readdirSync(join(p.home, 'work'))
        .filter((f) => f.endsWith('.log'))
        .map((f) => join(p.home, 'work', f))[0],
      'utf8',
    );
    expect(log).toContain('reference\nread-only');
    // The image's /usr/share/doc, not this machine's (which has many more packages).
    const inImage = Number(readFileSync(join(p.home, 'store/refs/A/look/n.txt'), 'utf8'));
    expect(inImage).toBeGreaterThan(0);
    expect(inImage).toBeLessThan(readdirSync('/usr/share/doc').length);
  });

  it('a missing image is exit 2 before any job starts, naming the step and the fix', async () => {
    const p = inlinePipeline([
      'name: unbuilt',
      'samples: [ { id: A } ]',
      'steps:',
      '  ok: { image: debian:bookworm-slim, command: [true] }',
      `  tool: { image: strand-test/unbuilt-${process.pid}:1, command: [true] }`,
    ]);
    mkdirSync(join(p.dir, 'images/unbuilt-' + process.pid), { recursive: true });
    writeFileSync(
      join(p.dir, `images/unbuilt-${process.pid}/Dockerfile`),
      'FROM debian:bookworm-slim\n',
    );
    const r = await strand('run', p.file, '--home', p.home, '--executor', 'podman');
    expect(r.code).toBe(2);
    expect(r.err).toContain('steps.tool');
    expect(r.err).toContain(`strand-test/unbuilt-${process.pid}:1`);
    expect(r.err).toContain('strand images build');
    expect(existsSync(join(p.home, 'work'))).toBe(false);
  });

  it('kill -9 of strand leaves the containers running; strand resume re-attaches and each attempt runs once', async () => {
    const p = inlinePipeline([
      'name: survivor',
      'samples: [ { id: A }, { id: B } ]',
      'defaults: { vcpus: 0.5, memory: 64MiB }',
      'steps:',
      '  slow:',
      '    image: debian:bookworm-slim',
      "    command: [sh, -c, 'echo started >> ran.txt; sleep 4; echo $0 > out.txt', $SAMPLE]",
      '    outputs: { RAN: ran.txt, OUT: out.txt }',
    ]);
    const run = spawnStrand(['run', p.file, '--home', p.home, '--executor', 'podman']);
    await waitUntil('both containers to run', () => containersOf(p.home, true).length === 2);
    run.kill('SIGKILL');
    await run.done;
    expect(containersOf(p.home, true)).toHaveLength(2);
    const resume = await strand('resume', '--home', p.home);
    expect(resume.code).toBe(0);
    const store = join(p.home, 'store/survivor');
    for (const sample of ['A', 'B']) {
      expect(readFileSync(join(store, sample, 'slow/out.txt'), 'utf8')).toBe(`${sample}\n`);
      expect(readFileSync(join(store, sample, 'slow/ran.txt'), 'utf8')).toBe('started\n');
    }
    const attempts = readdirSync(join(p.home, 'work')).filter((f) => f.endsWith('.run'));
    expect(attempts.every((a) => a.endsWith('.1.run'))).toBe(true);
    expect(attempts).toHaveLength(2);
    await waitUntil('the containers to be removed', () => containersOf(p.home).length === 0);
  });
});
