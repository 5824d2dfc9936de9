/** What the benchmarks read about the machine and their own arguments. */
import { readFileSync } from 'node:fs';

/** `--name value` from a benchmark's arguments, or the fallback. */
export function option(args: string[], name: string, fallback: string): string;
export function option(args: string[], name: string): string | undefined;
export function option(args: string[], name: string, fallback?: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
}

/**
 * The whole machine's CPU time so far, in ticks (/proc/stat): busy, total, and stolen by the
 * hypervisor of a virtual machine.
 */
export function cpuTicks(): { busy: number; total: number; steal: number } {
  const f = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const idle = f[3] + f[4];
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total, steal: f[7] ?? 0 };
}
