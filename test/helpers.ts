/**
 * Helpers the test files share: waiting for a condition without sleeping blind, and looking at
 * the machine's processes.
 */
import { readFileSync, readdirSync } from 'node:fs';

/**
 * Polls `check` until it returns something truthy (returned), failing with `what` after
 * `timeoutMs`.
 */
export async function waitUntil<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 30_000,
  everyMs = 25,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The argv of every process that can be read, by pid. */
export function processArgv(): Map<number, string[]> {
  const found = new Map<number, string[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      found.set(Number(entry), readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0'));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

/** The command lines of every process that can be read (argv joined by NUL). */
export function commandLines(): string[] {
  return [...processArgv().values()].map((argv) => argv.join('\0'));
}

/** Pids of processes whose argv contains `token` (a job's command line), by program name. */
export function processesWith(token: string, program?: string): number[] {
  return [...processArgv()]
    .filter(
      ([, argv]) => (program === undefined || argv[0].endsWith(program)) && argv.includes(token),
    )
    .map(([pid]) => pid);
}
