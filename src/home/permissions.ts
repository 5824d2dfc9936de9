/**
 * The Strand home is private to the user who runs Strand: the directory 0700, its databases
 * 0600. They hold every input value of every run (as Step Functions' history does), so no other
 * local user may read them. A home made by an older Strand (0755, files 0644) is narrowed when
 * it is opened.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';

/** chmod that leaves alone what this user cannot change (a home shared on purpose, say). */
function narrow(path: string, mode: number): void {
  try {
    chmodSync(path, mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOENT') throw err;
  }
}

/** Makes the home directory (created if needed) readable by its owner only. */
export function privateHome(home: string): void {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  narrow(home, 0o700);
}

/**
 * Makes an SQLite database file private before it is opened for writing: created empty with
 * 0600 when missing (an empty file is an empty database to SQLite), else narrowed to 0600, with
 * the `-wal` and `-shm` files an earlier process left. SQLite gives the journal files it makes
 * the database file's own mode, so later ones are private too.
 */
export function privateDatabase(file: string): void {
  if (existsSync(file)) narrow(file, 0o600);
  else closeSync(openSync(file, 'a', 0o600));
  for (const extra of [`${file}-wal`, `${file}-shm`, `${file}-journal`])
    if (existsSync(extra)) narrow(extra, 0o600);
}
