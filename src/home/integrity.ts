/** The damage check both of the home's SQLite databases (strand.db, results.db) get on open. */
import type Database from 'better-sqlite3';

/**
 * What SQLite finds wrong reading the whole file (`PRAGMA quick_check`, up to 5 problems,
 * about 1 ms per MB), or undefined when it is sound.
 */
export function damageOf(db: Database.Database): string | undefined {
  const found = (db.pragma('quick_check(5)') as { quick_check: string }[]).map(
    (r) => r.quick_check,
  );
  return found.length === 1 && found[0] === 'ok' ? undefined : found.join('; ');
}
