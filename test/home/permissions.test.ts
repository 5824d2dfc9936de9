/**
 * The Strand home holds every input value of every run, so it is private to its owner: the
 * directory 0700, strand.db and results.db (and their -wal and -shm files) 0600, whatever the
 * umask; a home an older Strand left readable (0755, 0644) is narrowed when it is opened. A file
 * Strand refuses (not its database) is left as it was.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { strand } from '../pipeline/cli.js';

const mode = (path: string): string => (statSync(path).mode & 0o777).toString(8);

/** A pipeline of one quick job, and a home for it. */
function workspace(): { file: string; home: string } {
  const dir = mkdtempSync(join(tmpdir(), 'strand-perm-'));
  const file = join(dir, 'pipeline.yaml');
  writeFileSync(
    file,
    [
      'name: perm',
      'samples: [ { id: s1 } ]',
      'steps: { a: { image: x, command: [true] } }',
      '',
    ].join('\n'),
  );
  return { file, home: join(dir, 'home') };
}

const DATABASES = ['strand.db', 'results.db'];

describe('the Strand home is private', () => {
  it('a new home: the directory 0700, the databases 0600, under umask 022', async () => {
    expect(process.umask() & 0o077).toBe(0o022);
    const { file, home } = workspace();
    const r = await strand('run', file, '--home', home);
    expect(r.code, r.err).toBe(0);
    expect(mode(home)).toBe('700');
    for (const db of DATABASES) expect(mode(join(home, db)), db).toBe('600');
  });

  it('a home an older Strand left readable (with -wal and -shm files in use) is narrowed when opened', async () => {
    const { file, home } = workspace();
    expect((await strand('run', file, '--home', home)).code).toBe(0);
    // Readers in WAL mode keep -wal and -shm files while they are open.
    const holders = DATABASES.map((db) => {
      const holder = new Database(join(home, db));
      holder.pragma('journal_mode = WAL');
      holder.prepare('SELECT count(*) FROM sqlite_master').get();
      return holder;
    });
    try {
      const files = DATABASES.flatMap((db) => [db, `${db}-wal`, `${db}-shm`]).map((f) =>
        join(home, f),
      );
      for (const f of files) {
        expect(existsSync(f), f).toBe(true);
        chmodSync(f, 0o644);
      }
      chmodSync(home, 0o755);
      expect((await strand('executions', 'ls', '--home', home)).code).toBe(0);
      expect((await strand('results', '--home', home, '--pipeline', 'perm')).code).toBe(0);
      expect(mode(home)).toBe('700');
      for (const f of files) expect(mode(f), f).toBe('600');
    } finally {
      for (const h of holders) h.close();
    }
  });

  it('a file that is not Strand’s database keeps its mode', async () => {
    const { home } = workspace();
    mkdirSync(home);
    writeFileSync(join(home, 'strand.db'), 'not a database');
    chmodSync(join(home, 'strand.db'), 0o644);
    const r = await strand('executions', 'ls', '--home', home);
    expect(r.code).toBe(2);
    expect(mode(join(home, 'strand.db'))).toBe('644');
  });
});
