/**
 * What this machine says of its files and processes, read the way every part of Strand that
 * watches processes needs it: a file's text or nothing, and a process's /proc stat fields.
 */
import { readFileSync } from 'node:fs';

/** A file's text, or undefined when it cannot be read (gone, not there, not allowed). */
export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * The fields of /proc/<pid>/stat after the command name (which may hold anything, spaces and
 * parentheses included): [0] the state, [1] the parent, … [19] the start time in clock ticks;
 * undefined when there is no such process.
 */
export function statFields(pid: number | string): string[] | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  return stat === undefined ? undefined : stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}
