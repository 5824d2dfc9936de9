/** Runs the CLI in-process and captures what it prints. */
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
