/** Runs the CLI in-process or as a process of its own, and the pipelines tests share. */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/cli/main.js';
import type { Io } from '../../src/cli/io.js';

export { processesWith, waitUntil } from '../helpers.js';

export async function strand(
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => (out += t), err: (t) => (err += t), isTTY: false };
  const code = await run(['node', 'strand', ...args], io);
  return { code, out, err };
}

/** `strand results … --format json` on a home, parsed; a failing command fails the test. */
export async function resultsJson(home: string, ...args: string[]): Promise<unknown[]> {
  const r = await strand('results', '--home', home, ...args, '--format', 'json');
  if (r.code !== 0) throw new Error(`strand results exited ${r.code}: ${r.err}`);
  return JSON.parse(r.out) as unknown[];
}

/** The job attempts started in a home, as "jobId.attempt" (the local executor's pid files). */
export function attemptsIn(home: string): string[] {
  const work = join(home, 'work');
  if (!existsSync(work)) return [];
  return readdirSync(work)
    .filter((f) => f.endsWith('.pid'))
    .map((f) => f.slice(0, -4));
}

/** A `strand` process of its own (from source), for tests that need signals and kills. */
export function spawnStrand(args: string[], env: Record<string, string> = {}) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(process.cwd(), 'test/pipeline/strand-cli.mts'), ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<{ code: number; signal: string | null; out: string; err: string }>(
    (resolve) =>
      child.on('exit', (code, signal) => resolve({ code: code ?? -1, signal, out, err })),
  );
  return {
    pid: child.pid!,
    done,
    kill: (signal: NodeJS.Signals) => child.kill(signal),
    err: () => err,
    out: () => out,
  };
}

const holders: ChildProcess[] = [];
/** Ends the holders of every held pipeline made so far (for afterEach). */
export function releaseHolders(): void {
  for (const h of holders.splice(0)) h.kill();
}

/**
 * A pipeline whose `wait` step lasts until the returned holder process ends (its jobs run
 * `tail --pid=HOLDER`); with `stubborn`, the jobs ignore SIGTERM, so only SIGKILL ends them.
 */
export function heldPipeline(name: string, stubborn = false) {
  const dir = mkdtempSync(join(tmpdir(), 'strand-ctl-'));
  const holder = spawn('sleep', ['600'], { stdio: 'ignore' });
  holders.push(holder);
  const wait = stubborn
    ? // SIGTERM ignored by sh is ignored by the tail it execs too.
      `[sh, -c, 'trap "" TERM; exec tail -f /dev/null --pid=$$0', $HOLDER]`
    : '[tail, -f, /dev/null, --pid=$HOLDER]';
  writeFileSync(
    join(dir, 'pipeline.yaml'),
    [
      `name: ${name}`,
      'samples: [ { id: A }, { id: B } ]',
      `params: { HOLDER: "${holder.pid}" }`,
      // Small jobs: the held ones leave room for the jobs of other runs on two cores.
      'defaults: { vcpus: 0.25, memory: 64MiB }',
      'steps:',
      '  wait:',
      '    image: debian:bookworm-slim',
      `    command: ${wait}`,
      '  after:',
      '    image: debian:bookworm-slim',
      '    command: [sort, -o, out.txt, /dev/null]',
      '    outputs: { OUT: out.txt }',
      // It reads nothing of `wait`: without this it would run beside it.
      '    after: [wait]',
      '',
    ].join('\n'),
  );
  return {
    dir,
    file: join(dir, 'pipeline.yaml'),
    token: `--pid=${holder.pid}`,
    release: () => holder.kill(),
  };
}

/** A pipeline written from `lines` into a new directory (with `files` beside it), and its home. */
export function inlinePipeline(
  lines: string[],
  files: Record<string, string> = {},
): { dir: string; file: string; home: string } {
  const dir = mkdtempSync(join(tmpdir(), 'strand-inline-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  writeFileSync(join(dir, 'pipeline.yaml'), [...lines, ''].join('\n'));
  return { dir, file: join(dir, 'pipeline.yaml'), home: join(dir, 'home') };
}

/** A copy of an example (`examples/NAME`) in a new directory, with its own home. */
export function exampleWorkspace(name: string): { dir: string; file: string; home: string } {
  const dir = mkdtempSync(join(tmpdir(), `strand-${name}-`));
  cpSync(join(process.cwd(), 'examples', name), dir, { recursive: true });
  return { dir, file: join(dir, 'pipeline.yaml'), home: join(dir, 'home') };
}

/**
 * Registers a job definition in `home` through `strand batch register` (its image is noted, not
 * used by the local executor); throws when the command fails.
 */
export async function registerJobDefinition(
  home: string,
  name: string,
  command: string[],
  options: { vcpus?: number; memoryMiB?: number; attempts?: number } = {},
): Promise<void> {
  const file = join(mkdtempSync(join(tmpdir(), 'strand-jobdef-')), `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      jobDefinitionName: name,
      type: 'container',
      containerProperties: {
        image: 'debian:bookworm-slim',
        command,
        resourceRequirements: [
          { type: 'VCPU', value: String(options.vcpus ?? 1) },
          { type: 'MEMORY', value: String(options.memoryMiB ?? 512) },
        ],
      },
      ...(options.attempts ? { retryStrategy: { attempts: options.attempts } } : {}),
    }),
  );
  const r = await strand('batch', 'register', file, '--home', home);
  if (r.code !== 0) throw new Error(`strand batch register exited ${r.code}: ${r.err}`);
}
