/**
 * A throwaway PostgreSQL server for the tests of the Postgres results sink, started by the test
 * file that needs it: Debian's `postgresql` binaries, `initdb` in a new directory, a free
 * loopback port, password (SCRAM) authentication, no Unix socket; `stop()` ends it and removes
 * the directory. Without the binaries the tests are skipped saying why, unless
 * STRAND_REQUIRE_POSTGRES=1 (CI sets it): then they fail.
 *
 * initdb refuses to run as root, so as root the server runs as the `postgres` user, in a
 * directory under /tmp: the tests' own TMPDIR is root's alone (0700) and that user cannot
 * enter it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { waitUntil } from '../helpers.js';

export const postgresRequired = process.env.STRAND_REQUIRE_POSTGRES === '1';

interface Binaries {
  bin: string;
  /** The user the server runs as (when the tests run as root). */
  uid?: number;
  gid?: number;
}

/** initdb and postgres of the newest Debian PostgreSQL, else from PATH; or why not. */
function findBinaries(): { found?: Binaries; why?: string } {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  let bin = versions.length > 0 ? join(root, versions[0], 'bin') : undefined;
  if (bin === undefined) {
    const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
    const path = which.stdout.trim();
    if (which.status === 0 && path) bin = join(path, '..');
  }
  if (bin === undefined)
    return { why: 'no PostgreSQL server binaries (apt-get install postgresql)' };
  if (process.getuid?.() !== 0) return { found: { bin } };
  const id = (flag: string): number | undefined => {
    const r = spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
    return r.status === 0 ? Number(r.stdout.trim()) : undefined;
  };
  const uid = id('-u');
  const gid = id('-g');
  if (uid === undefined || gid === undefined)
    return { why: 'running as root and there is no postgres user for initdb to run as' };
  return { found: { bin, uid, gid } };
}

const probe = findBinaries();
if (postgresRequired && !probe.found)
  throw new Error(
    `STRAND_REQUIRE_POSTGRES=1 but no PostgreSQL server can be started: ${probe.why}`,
  );
/** Whether the Postgres tests run here. */
export const postgresReady = probe.found !== undefined;
/** Why they do not (for the skipped suite's title). */
export const postgresMissing = probe.why;

export interface PostgresServer {
  port: number;
  user: string;
  password: string;
  /** The URL of `database` on this server, with the password in it. */
  url(database: string): string;
  /** A new, empty database; its URL. */
  createDatabase(): Promise<string>;
  /** Runs SQL as the superuser in `database`. */
  query<R extends pg.QueryResultRow>(
    database: string,
    sql: string,
    params?: unknown[],
  ): Promise<R[]>;
  /** Ends the server and removes its directory. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts a server (initdb, then postgres on a free port) and waits until it takes queries. */
export async function startPostgres(): Promise<PostgresServer> {
  const bins = probe.found;
  if (!bins) throw new Error(`cannot start PostgreSQL: ${probe.why}`);
  const asUser = bins.uid === undefined ? {} : { uid: bins.uid, gid: bins.gid };
  const dir = mkdtempSync(join(bins.uid === undefined ? tmpdir() : '/tmp', 'strand-pg-'));
  const user = 'strand_test';
  const password = randomBytes(12).toString('hex');
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (bins.uid !== undefined) {
    chownSync(dir, bins.uid, bins.gid!);
    chownSync(pwfile, bins.uid, bins.gid!);
  }
  const data = join(dir, 'data');
  const init = spawnSync(
    join(bins.bin, 'initdb'),
    [
      '-D',
      data,
      '-U',
      user,
      `--pwfile=${pwfile}`,
      '--auth=scram-sha-256',
      '--no-sync',
      '--no-locale',
      '-E',
      'UTF8',
    ],
    { encoding: 'utf8', cwd: dir, ...asUser },
  );
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (exit ${init.status}): ${init.stderr || init.error}`);
  }

  let server: ChildProcess | undefined;
  let port = 0;
  let log = '';
  // A port found free may be taken before the server binds it: try another.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    log = '';
    const child = spawn(
      join(bins.bin, 'postgres'),
      [
        '-D',
        data,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'unix_socket_directories=',
        // A throwaway server: durability buys nothing here.
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        '-c',
        'full_page_writes=off',
      ],
      { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], ...asUser },
    );
    child.stderr!.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-8000);
    });
    let exited: number | null | undefined;
    child.once('exit', (code) => (exited = code));
    const up = await waitUntil(`PostgreSQL to take connections on 127.0.0.1:${port}`, async () => {
      if (exited !== undefined) return 'exited';
      const client = new pg.Client({
        host: '127.0.0.1',
        port,
        user,
        password,
        database: 'postgres',
      });
      try {
        await client.connect();
        await client.query('SELECT 1');
        return 'up';
      } catch {
        return undefined;
      } finally {
        await client.end().catch(() => undefined);
      }
    });
    if (up === 'up') {
      server = child;
      break;
    }
    if (attempt >= 3 || !/could not bind|Address already in use/i.test(log)) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`postgres exited (code ${exited}) before taking connections:\n${log}`);
    }
  }

  const admins = new Map<string, pg.Client>();
  const admin = async (database: string): Promise<pg.Client> => {
    let client = admins.get(database);
    if (!client) {
      client = new pg.Client({ host: '127.0.0.1', port, user, password, database });
      await client.connect();
      admins.set(database, client);
    }
    return client;
  };
  let made = 0;
  const url = (database: string): string =>
    `postgres://${user}:${password}@127.0.0.1:${port}/${database}`;
  return {
    port,
    user,
    password,
    url,
    async createDatabase() {
      const name = `t${++made}`;
      const client = await admin('postgres');
      const { rows } = await client.query<{ v: string }>(
        "SELECT current_setting('server_version_num') AS v",
      );
      // FILE_COPY (PostgreSQL 15) copies the template's files instead of logging each page.
      const strategy = Number(rows[0].v) >= 150000 ? ' STRATEGY FILE_COPY' : '';
      await client.query(`CREATE DATABASE ${name}${strategy}`);
      return url(name);
    },
    async query<R extends pg.QueryResultRow>(database: string, sql: string, params?: unknown[]) {
      return (await (await admin(database)).query<R>(sql, params)).rows;
    },
    async stop() {
      for (const client of admins.values()) await client.end().catch(() => undefined);
      const child = server!;
      if (child.exitCode === null && child.signalCode === null) {
        const ended = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        // SIGINT is Postgres's fast shutdown: sessions ended, nothing waited for.
        child.kill('SIGINT');
        const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await ended;
        clearTimeout(killer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
