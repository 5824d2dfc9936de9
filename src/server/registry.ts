/**
 * The server's own small database, `<home>/server.db`: the state machines created through the
 * API (CreateStateMachine … DeleteStateMachine) and the key that signs paging tokens. The engine
 * keeps each execution's definition with the execution, so a state machine here is only what the
 * next StartExecution runs; updating or deleting one leaves running executions as they are.
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { privateDatabase, privateHome } from '../home/permissions.js';

const APPLICATION_ID = 0x53545253; // "STRS": Strand's server database.

/** The schema, one migration per version (the file's user_version says which it has). */
const MIGRATIONS: readonly string[] = [
  `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE state_machines (
  name TEXT PRIMARY KEY,
  definition TEXT NOT NULL,
  role_arn TEXT NOT NULL,
  type TEXT NOT NULL,
  created INTEGER NOT NULL,
  updated INTEGER,
  revision_id TEXT NOT NULL,
  settings TEXT NOT NULL
);
`,
];
const SCHEMA_VERSION = MIGRATIONS.length;

/** A server.db that is not one, or of a newer Strand: reported, never overwritten. */
export class RegistryError extends Error {
  readonly code = 'STRAND_SERVER_DB';
  constructor(message: string) {
    super(message);
    this.name = 'RegistryError';
  }
}

/** Settings a state machine was created or updated with, kept and shown as given. */
export interface StateMachineSettings {
  loggingConfiguration?: unknown;
  tracingConfiguration?: unknown;
  encryptionConfiguration?: unknown;
  tags?: { key: string; value?: string }[];
}

export interface StateMachineRecord extends StateMachineSettings {
  name: string;
  /** The definition as it was given (text). */
  definition: string;
  roleArn: string;
  type: 'STANDARD';
  /** Epoch ms. */
  creationDate: number;
  updateDate?: number;
  revisionId: string;
}

function toRecord(r: Record<string, unknown>): StateMachineRecord {
  return {
    name: r.name as string,
    definition: r.definition as string,
    roleArn: r.role_arn as string,
    type: r.type as 'STANDARD',
    creationDate: r.created as number,
    ...(r.updated === null ? {} : { updateDate: r.updated as number }),
    revisionId: r.revision_id as string,
    ...(JSON.parse(r.settings as string) as StateMachineSettings),
  };
}

function settingsOf(r: StateMachineSettings): string {
  return JSON.stringify({
    loggingConfiguration: r.loggingConfiguration,
    tracingConfiguration: r.tracingConfiguration,
    encryptionConfiguration: r.encryptionConfiguration,
    tags: r.tags,
  });
}

/** Refuses a file that is not this server's database, or was written by a newer Strand. */
function checkExisting(path: string): void {
  if (!existsSync(path)) return;
  const fd = openSync(path, 'r');
  const head = Buffer.alloc(16);
  const read = readSync(fd, head, 0, 16, 0);
  closeSync(fd);
  if (read === 0) return;
  if (head.toString('latin1') !== 'SQLite format 3\u0000')
    throw new RegistryError(
      `${path} is not Strand's server database (not an SQLite file); it was left untouched`,
    );
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const appId = db.pragma('application_id', { simple: true }) as number;
    const version = db.pragma('user_version', { simple: true }) as number;
    if (appId !== APPLICATION_ID && version > 0)
      throw new RegistryError(
        `${path} is an SQLite database of another application (application_id ${appId}); it was left untouched`,
      );
    if (version > SCHEMA_VERSION)
      throw new RegistryError(
        `${path} was written by a newer Strand (schema ${version}; this one knows ${SCHEMA_VERSION})`,
      );
  } finally {
    db.close();
  }
}

/** The state machines created through the API, and the paging key, in `<home>/server.db`. */
export class Registry {
  private constructor(
    readonly path: string,
    private readonly db: Database.Database,
  ) {}

  /** Opens (creating, private to its owner) `<home>/server.db`, migrating it to this schema. */
  static open(home: string): Registry {
    privateHome(home);
    const path = join(home, 'server.db');
    checkExisting(path);
    privateDatabase(path);
    const db = new Database(path);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('busy_timeout = 5000');
      const version = () => db.pragma('user_version', { simple: true }) as number;
      if (version() < SCHEMA_VERSION)
        db.transaction(() => {
          for (const m of MIGRATIONS.slice(version())) db.exec(m);
          db.pragma(`application_id = ${APPLICATION_ID}`);
          db.pragma(`user_version = ${SCHEMA_VERSION}`);
        }).immediate();
    } catch (err) {
      db.close();
      throw new RegistryError(
        `${path}: cannot open the server database: ${(err as Error).message}`,
      );
    }
    return new Registry(path, db);
  }

  close(): void {
    this.db.close();
  }

  /** The key paging tokens are signed with, made once per home. */
  pagingKey(): Buffer {
    this.db
      .prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('paging-key', ?)")
      .run(randomBytes(32).toString('hex'));
    const row = this.db.prepare("SELECT value FROM meta WHERE key = 'paging-key'").get() as {
      value: string;
    };
    return Buffer.from(row.value, 'hex');
  }

  get(name: string): StateMachineRecord | undefined {
    const r = this.db.prepare('SELECT * FROM state_machines WHERE name = ?').get(name) as
      Record<string, unknown> | undefined;
    return r && toRecord(r);
  }

  list(): StateMachineRecord[] {
    return (
      this.db.prepare('SELECT * FROM state_machines ORDER BY name').all() as Record<
        string,
        unknown
      >[]
    ).map(toRecord);
  }

  /** Adds a state machine; false when one of that name exists. */
  create(r: StateMachineRecord): boolean {
    return (
      this.db
        .prepare(
          `INSERT OR IGNORE INTO state_machines (name, definition, role_arn, type, created, updated, revision_id, settings)
           VALUES (?, ?, ?, ?, ?, NULL, ?, ?)`,
        )
        .run(r.name, r.definition, r.roleArn, r.type, r.creationDate, r.revisionId, settingsOf(r))
        .changes === 1
    );
  }

  /** Replaces a state machine's definition, role and settings. */
  update(r: StateMachineRecord): void {
    this.db
      .prepare(
        `UPDATE state_machines SET definition = ?, role_arn = ?, updated = ?, revision_id = ?, settings = ? WHERE name = ?`,
      )
      .run(r.definition, r.roleArn, r.updateDate ?? null, r.revisionId, settingsOf(r), r.name);
  }

  delete(name: string): boolean {
    return this.db.prepare('DELETE FROM state_machines WHERE name = ?').run(name).changes === 1;
  }
}
