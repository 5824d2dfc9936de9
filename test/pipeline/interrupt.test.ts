/**
 * Ctrl-C during `strand run`: the running jobs are terminated, the execution is recorded as
 * stopped, and `strand redrive` carries it on to the end.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

function strand(args: string[]) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/pipeline/strand-cli.mts', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout.resume();
  const done = new Promise<{ code: number; err: string }>((resolve) =>
    child.on('exit', (code) => resolve({ code: code ?? -1, err })),
  );
  return { done, kill: (s: NodeJS.Signals) => child.kill(s), err: () => err };
}

/** Pids of `tail` processes whose argv contains `token` (not the wrappers that run them). */
function processesWith(token: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv[0].endsWith('tail') && argv.includes(token)) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Ctrl-C during strand run', () => {
  it('terminates running jobs, records the stop, and redrive finishes the run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strand-int-'));
    // The jobs wait for this process to end (tail --pid), so the test decides when they finish.
    const holder = spawn('sleep', ['600'], { stdio: 'ignore' });
    const token = `--pid=${holder.pid}`;
    writeFileSync(
      join(dir, 'pipeline.yaml'),
      [
        'name: held',
        'samples: [ { id: A }, { id: B } ]',
        `params: { HOLDER: ${holder.pid} }`,
        'steps:',
        '  wait:',
        '    image: debian:bookworm-slim',
        '    command: [tail, -f, /dev/null, --pid=$HOLDER]',
        '  after:',
        '    image: debian:bookworm-slim',
        '    command: [sort, -o, out.txt, /dev/null]',
        '    outputs: { OUT: out.txt }',
        '',
      ].join('\n'),
    );
    const home = join(dir, 'home');
    const run = strand(['run', join(dir, 'pipeline.yaml'), '--home', home, '--name', 'int']);
    for (let i = 0; i < 300 && processesWith(token).length < 2; i++) await sleep(50);
    const jobs = processesWith(token);
    expect(jobs.length).toBe(2);
    run.kill('SIGINT');
    const first = await run.done;
    expect(first.code, first.err).toBe(1);
    expect(first.err).toMatch(/stopping: terminating running jobs/);
    expect(first.err).toMatch(/int: ABORTED/);
    expect(first.err).toMatch(/to carry on: strand redrive int/);
    for (let i = 0; i < 100 && processesWith(token).length > 0; i++) await sleep(100);
    expect(processesWith(token)).toEqual([]);
    // Let the jobs finish at once from now on, and carry the run on.
    holder.kill();
    await new Promise((r) => holder.once('exit', r));
    const again = strand(['redrive', 'int', '--home', home]);
    const second = await again.done;
    expect(second.code, second.err).toBe(0);
    expect(second.err).toMatch(/int: SUCCEEDED/);
    for (const sample of ['A', 'B'])
      expect(existsSync(join(home, 'store', 'held', sample, 'after', 'out.txt'))).toBe(true);
  }, 60_000);
});
