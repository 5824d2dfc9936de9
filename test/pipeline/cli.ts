/** Runs the CLI in-process and captures what it prints. */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../src/cli/main.js';
import type { Io } from '../../src/cli/io.js';

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
