/**
 * Broken state is refused before anything runs: a damaged or foreign results.db or strand.db
 * stops `strand run` with exit 2 before any job starts, and the file is left byte for byte as it
 * was. A full disk under the home stops a run cleanly (exit 1, naming the home), and
 * `strand resume` carries it on once there is space again.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import {
  attemptsIn,
  exampleWorkspace,
  processesWith,
  spawnStrand,
  strand,
  waitUntil,
} from './cli.js';

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Overwrites `bytes` bytes in the middle of a database file (past its header page). */
function damage(path: string): void {
  const size = statSync(path).size;
  const fd = openSync(path, 'r+');
  try {
    // Every page but the first gets garbage at its start: b-tree page headers become invalid.
    for (let at = 4096; at + 64 <= size; at += 4096)
      writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, at);
  } finally {
    closeSync(fd);
  }
}

/** Folds a WAL database into its main file, so the file alone holds all of it. */
function checkpoint(path: string): void {
  const db = new Database(path);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.pragma('journal_mode = DELETE');
  db.close();
}

describe('broken state is refused before anything runs', () => {
  it('a damaged results.db: exit 2 naming it, no job started, the file unchanged', async () => {
    const ws = exampleWorkspace('word-count');
    const first = await strand('run', ws.file, '--home', ws.home, '--name', 'first');
    expect(first.code, first.err).toBe(1); // the example's empty sample fails
    const results = join(ws.home, 'results.db');
    checkpoint(results);
    damage(results);
    const before = sha(results);
    const attempts = attemptsIn(ws.home).length;
    const r = await strand('run', ws.file, '--home', ws.home, '--name', 'second', '--no-cache');
    expect(r.code, r.err).toBe(2);
    expect(r.err).toContain(results);
    expect(r.err).toMatch(/damaged|cannot be read/);
    expect(attemptsIn(ws.home)).toHaveLength(attempts);
    expect(sha(results)).toBe(before);
    expect(existsSync(`${results}-wal`)).toBe(false);
  });

  it('a results.db of another program, or not a database at all: exit 2, left as it was', async () => {
    for (const make of [
      (path: string) => writeFileSync(path, 'sample,reads\nA,100\n'),
      (path: string) => {
        const db = new Database(path);
        db.exec('CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES (1)');
        db.close();
      },
    ]) {
      const ws = exampleWorkspace('word-count');
      mkdirSync(ws.home, { recursive: true });
      const results = join(ws.home, 'results.db');
      make(results);
      const before = sha(results);
      const r = await strand('run', ws.file, '--home', ws.home);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toContain(results);
      expect(attemptsIn(ws.home)).toEqual([]);
      expect(sha(results)).toBe(before);
    }
  });

  it('a damaged strand.db: exit 2 naming it, no job started, the file unchanged', async () => {
    const ws = exampleWorkspace('word-count');
    const first = await strand('run', ws.file, '--home', ws.home, '--name', 'first');
    expect(first.code, first.err).toBe(1);
    const db = join(ws.home, 'strand.db');
    checkpoint(db);
    damage(db);
    const before = sha(db);
    const attempts = attemptsIn(ws.home).length;
    const r = await strand('run', ws.file, '--home', ws.home, '--name', 'second', '--no-cache');
    expect(r.code, r.err).toBe(2);
    expect(r.err).toContain(db);
    expect(attemptsIn(ws.home)).toHaveLength(attempts);
    expect(sha(db)).toBe(before);
  });
});

/** Whether this process may mount file systems (root on Linux): the full-disk test needs to. */
function canMount(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = mkdtempSync(join(tmpdir(), 'strand-mount-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe]);
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

describe('a full disk under the home', () => {
  // A real full disk needs a small file system of its own: a tmpfs mounted for the test, which
  // takes root (CI runs as root; elsewhere the test says why it did not run).
  it.skipIf(!canMount())(
    'fails the run cleanly (exit 1, naming the home), and resume carries it on once space is free',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'strand-full-'));
      const home = join(dir, 'home');
      mkdirSync(home);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', home]);
      try {
        // The job waits for this process (tail --pid): the test decides when it ends.
        const holder = spawn('sleep', ['600'], { stdio: 'ignore' });
        writeFileSync(
          join(dir, 'pipeline.yaml'),
          [
            'name: full',
            'samples: [ { id: A } ]',
            `params: { HOLDER: "${holder.pid}" }`,
            'steps:',
            '  write:',
            '    image: debian:bookworm-slim',
            // The output is written first; then the job waits, writing nothing, while the disk
            // fills up; when it ends, Strand must record and publish on a full disk.
            `    command: [sh, -c, 'echo done > out.txt; exec tail -f /dev/null --pid=$$0', $HOLDER]`,
            '    outputs: { OUT: out.txt }',
            '',
          ].join('\n'),
        );
        const run = spawnStrand([
          'run',
          join(dir, 'pipeline.yaml'),
          '--home',
          home,
          '--name',
          'full',
        ]);
        const token = `--pid=${holder.pid}`;
        await waitUntil('the job to run', () => processesWith(token, 'tail').length === 1);
        const filler = join(home, 'filler');
        fill(filler);
        holder.kill();
        const r = await run.done;
        expect(r.code, r.err).toBe(1);
        expect(r.err).toMatch(
          /the engine stopped: .*(database or disk is full|no space left on device)/i,
        );
        expect(r.err).toContain(home);
        expect(r.err).toMatch(/strand resume/);
        expect(r.err).not.toMatch(/^\s+at /m); // no stack trace without --debug
        rmSync(filler);
        const resumed = await strand('resume', '--home', home);
        expect(resumed.code, resumed.err).toBe(0);
        expect(resumed.err).toMatch(/full: SUCCEEDED/);
        expect(readFileSync(join(home, 'store', 'full', 'A', 'write', 'out.txt'), 'utf8')).toBe(
          'done\n',
        );
      } finally {
        execFileSync('umount', ['-l', home]);
      }
    },
    60_000,
  );
});

/** Writes `path` until the file system is full. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  try {
    for (const size of [1 << 20, 1 << 12, 1]) {
      const chunk = Buffer.alloc(size, 1);
      for (;;) {
        try {
          writeSync(fd, chunk);
        } catch {
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}
