/**
 * The engine's SQLite database (`strand.db` under the Strand home, WAL mode): executions with
 * their interpreter state, history events, durable timers and outstanding tasks. Every step of
 * an execution is written in one transaction, so a crash loses at most the step in flight.
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, mkdirSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecutionState, ExecutionStatus, HistoryEvent } from '../asl/execution.js';
import type { Json } from '../asl/types.js';
import { damageOf } from '../home/integrity.js';
import { privateDatabase, privateHome } from '../home/permissions.js';

const APPLICATION_ID = 0x5354524e; // "STRN": marks the file as Strand's.

/** A corrupt or foreign database file: reported, never overwritten. */
export class StoreError extends Error {
  readonly code = 'STRAND_STORE';
  constructor(message: string) {
    super(message);
    this.name = 'StoreError';
  }
}

export interface ExecutionRow {
  arn: string;
  name: string;
  stateMachineName: string;
  definition: string;
  input: string;
  status: ExecutionStatus;
  startDate: number;
  stopDate: number | null;
  output: string | null;
  error: string | null;
  cause: string | null;
  state: string | null;
  redriveCount: number;
  /** The execution whose task started this one (states:startExecution), if any. */
  parentArn: string | null;
  /** The mock test case it runs with (MockCase as JSON), if any. */
  mock: string | null;
}

export interface TaskRow {
  executionArn: string;
  taskId: string;
  resource: string;
  input: string;
  stateName: string;
  attempt: number;
  /** The whole InvokeTask command, as JSON. */
  command: string;
  /** A `.waitForTaskToken` task whose service was called: it waits for its token only. */
  dispatched: boolean;
}

/**
 * The schema, one migration per version: a database at version N runs migrations N+1… in one
 * transaction when it is opened. Version 1 is the schema of the first release (its tables were
 * created with IF NOT EXISTS, so it also applies to a database a version-1 build set up).
 */
/** What another process asks of the engine that owns the home (see Engine's requests). */
export type RequestKind =
  | 'StartExecution'
  | 'StopExecution'
  | 'RedriveExecution'
  | 'SendTaskSuccess'
  | 'SendTaskFailure'
  | 'SendTaskHeartbeat';

export type RequestStatus = 'PENDING' | 'RUNNING' | 'DONE' | 'FAILED' | 'WITHDRAWN';

export interface RequestRow {
  id: number;
  kind: RequestKind;
  /** The request's JSON. */
  body: string;
  /** `pid@host` of the process that asked. */
  requester: string;
  created: number;
  status: RequestStatus;
  /** The answer's JSON once DONE (the result) or FAILED (`{ code, message, details }`). */
  response: string | null;
}

const MIGRATIONS: readonly string[] = [
  `
CREATE TABLE IF NOT EXISTS executions (
  arn TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  state_machine_name TEXT NOT NULL,
  definition TEXT NOT NULL,
  input TEXT NOT NULL,
  status TEXT NOT NULL,
  start_date INTEGER NOT NULL,
  stop_date INTEGER,
  output TEXT,
  error TEXT,
  cause TEXT,
  state TEXT,
  redrive_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS executions_status ON executions(status);
CREATE TABLE IF NOT EXISTS history (
  execution_arn TEXT NOT NULL,
  id INTEGER NOT NULL,
  previous_id INTEGER NOT NULL,
  type TEXT NOT NULL,
  timestamp INTEGER NOT NULL,
  details TEXT NOT NULL,
  PRIMARY KEY (execution_arn, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS timers (
  execution_arn TEXT NOT NULL,
  timer_id TEXT NOT NULL,
  due INTEGER NOT NULL,
  PRIMARY KEY (execution_arn, timer_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS timers_due ON timers(due);
CREATE TABLE IF NOT EXISTS lease (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  owner TEXT NOT NULL,
  pid INTEGER NOT NULL,
  host TEXT NOT NULL,
  expires INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
  execution_arn TEXT NOT NULL,
  task_id TEXT NOT NULL,
  resource TEXT NOT NULL,
  input TEXT NOT NULL,
  state_name TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  command TEXT NOT NULL,
  PRIMARY KEY (execution_arn, task_id)
) WITHOUT ROWID;
`,
  // 2: requests from other processes (stop, redrive, start) to the engine that owns the home.
  `
CREATE TABLE requests (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  body TEXT NOT NULL,
  requester TEXT NOT NULL,
  created INTEGER NOT NULL,
  status TEXT NOT NULL,
  response TEXT
);
CREATE INDEX requests_status ON requests(status);
`,
  // 3: digests of the files jobs read, by identity (path, device, inode, size, mtime, ctime):
  // an unchanged input is not read again to fingerprint a job.
  `
CREATE TABLE file_digests (
  identity TEXT PRIMARY KEY,
  sha256 TEXT NOT NULL,
  created INTEGER NOT NULL
) WITHOUT ROWID;
`,
  // 4: a `.waitForTaskToken` task whose service was called waits for its token only: after a
  // restart the service is not called again.
  `
ALTER TABLE tasks ADD COLUMN dispatched INTEGER NOT NULL DEFAULT 0;
`,
  // 5: the execution that started one (states:startExecution), for listings and nesting limits.
  `
ALTER TABLE executions ADD COLUMN parent_arn TEXT;
`,
  // 6: the mocked responses an execution was started with (--mock-config), answered again
  // after a restart or a redrive.
  `
ALTER TABLE executions ADD COLUMN mock TEXT;
`,
];
const SCHEMA_VERSION = MIGRATIONS.length;

function toRow(r: Record<string, unknown>): ExecutionRow {
  return {
    arn: r.arn as string,
    name: r.name as string,
    stateMachineName: r.state_machine_name as string,
    definition: r.definition as string,
    input: r.input as string,
    status: r.status as ExecutionStatus,
    startDate: r.start_date as number,
    stopDate: (r.stop_date as number | null) ?? null,
    output: (r.output as string | null) ?? null,
    error: (r.error as string | null) ?? null,
    cause: (r.cause as string | null) ?? null,
    state: (r.state as string | null) ?? null,
    redriveCount: r.redrive_count as number,
    parentArn: (r.parent_arn as string | null) ?? null,
    mock: (r.mock as string | null) ?? null,
  };
}

/** The engine's database. One process owns it at a time (see Engine). */
export class Store {
  readonly db: Database.Database;
  private readonly stmts;

  private constructor(
    readonly path: string,
    check: boolean,
  ) {
    this.db = Store.openChecked(path, check);
    this.stmts = {
      insertExecution: this.db.prepare(
        `INSERT INTO executions (arn, name, state_machine_name, definition, input, status, start_date, state, parent_arn, mock)
         VALUES (@arn, @name, @stateMachineName, @definition, @input, @status, @startDate, @state, @parentArn, @mock)`,
      ),
      byArn: this.db.prepare('SELECT * FROM executions WHERE arn = ?'),
      byName: this.db.prepare('SELECT * FROM executions WHERE name = ?'),
      update: this.db.prepare(
        `UPDATE executions SET status = @status, state = @state, output = @output, error = @error,
           cause = @cause, stop_date = @stopDate, redrive_count = @redriveCount WHERE arn = @arn`,
      ),
      insertEvent: this.db.prepare(
        'INSERT INTO history (execution_arn, id, previous_id, type, timestamp, details) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      history: this.db.prepare(
        'SELECT id, previous_id, type, timestamp, details FROM history WHERE execution_arn = ? AND id > ? ORDER BY id LIMIT ?',
      ),
      putTimer: this.db.prepare(
        'INSERT OR REPLACE INTO timers (execution_arn, timer_id, due) VALUES (?, ?, ?)',
      ),
      deleteTimer: this.db.prepare('DELETE FROM timers WHERE execution_arn = ? AND timer_id = ?'),
      deleteTimers: this.db.prepare('DELETE FROM timers WHERE execution_arn = ?'),
      nextTimer: this.db.prepare(
        'SELECT execution_arn, timer_id, due FROM timers ORDER BY due LIMIT 1',
      ),
      dueTimers: this.db.prepare(
        'SELECT execution_arn, timer_id, due FROM timers WHERE due <= ? ORDER BY due LIMIT 1000',
      ),
      putTask: this.db.prepare(
        `INSERT OR REPLACE INTO tasks (execution_arn, task_id, resource, input, state_name, attempt, command)
         VALUES (@executionArn, @taskId, @resource, @input, @stateName, @attempt, @command)`,
      ),
      deleteTask: this.db.prepare('DELETE FROM tasks WHERE execution_arn = ? AND task_id = ?'),
      dispatchTask: this.db.prepare(
        'UPDATE tasks SET dispatched = 1 WHERE execution_arn = ? AND task_id = ?',
      ),
      task: this.db.prepare('SELECT * FROM tasks WHERE execution_arn = ? AND task_id = ?'),
      deleteTasks: this.db.prepare('DELETE FROM tasks WHERE execution_arn = ?'),
      tasks: this.db.prepare('SELECT * FROM tasks ORDER BY execution_arn, task_id'),
    };
  }

  /**
   * Opens (creating if needed) `strand.db` under the home directory. `check` (an engine that
   * will schedule) first reads the whole file for corruption, so a damaged database is refused
   * before anything runs on it.
   */
  static open(home: string, options: { check?: boolean } = {}): Store {
    mkdirSync(home, { recursive: true });
    privateHome(home);
    return new Store(join(home, 'strand.db'), options.check ?? false);
  }

  /** Reads an existing database without writing a byte: its kind, version and integrity. */
  private static checkExisting(path: string, deep: boolean): void {
    if (!existsSync(path)) return;
    const fd = openSync(path, 'r');
    const buffer = Buffer.alloc(100);
    const read = readSync(fd, buffer, 0, 100, 0);
    closeSync(fd);
    if (read === 0) return; // an empty file is an empty database to SQLite
    if (buffer.subarray(0, Math.min(read, 16)).toString('latin1') !== 'SQLite format 3\u0000') {
      throw new StoreError(
        `${path} is not a Strand database (not an SQLite file); it was left untouched`,
      );
    }
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { readonly: true, fileMustExist: true });
      const appId = db.pragma('application_id', { simple: true }) as number;
      const tables = db
        .prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'")
        .get() as { n: number };
      if (appId !== APPLICATION_ID && tables.n > 0) {
        throw new StoreError(
          `${path} is an SQLite database of another application (application_id ${appId}); it was left untouched`,
        );
      }
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw new StoreError(
          `${path} was written by a newer Strand (schema ${version}; this one knows ${SCHEMA_VERSION})`,
        );
      }
      const damage = deep ? damageOf(db) : undefined;
      if (damage)
        throw new StoreError(
          `${path} is damaged (${damage}); it was left untouched. Restore it from a backup, or move it away to start a new home`,
        );
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError(
        `${path} cannot be read as a Strand database (${(err as Error).message}); it was left untouched`,
      );
    } finally {
      db?.close();
    }
  }

  private static openChecked(path: string, deep: boolean): Database.Database {
    Store.checkExisting(path, deep);
    // Only a file found to be Strand's (or none) is made private: a foreign one stays as it was.
    privateDatabase(path);
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { fileMustExist: false });
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('busy_timeout = 5000');
      const conn = db;
      const versionNow = () => conn.pragma('user_version', { simple: true }) as number;
      if (versionNow() < SCHEMA_VERSION) {
        conn
          .transaction(() => {
            // Read again under the write lock: another process may have migrated meanwhile.
            for (const migration of MIGRATIONS.slice(versionNow())) conn.exec(migration);
            conn.pragma(`application_id = ${APPLICATION_ID}`);
            conn.pragma(`user_version = ${SCHEMA_VERSION}`);
          })
          .immediate();
      }
    } catch (err) {
      db?.close();
      throw new StoreError(`${path}: cannot open the Strand database: ${(err as Error).message}`);
    }
    return db;
  }

  close(): void {
    this.db.close();
  }

  /**
   * Runs `fn` in one transaction, which takes the write lock as it begins (waiting for it as
   * long as busy_timeout allows). A deferred one that reads first (the lease) gets SQLITE_BUSY at
   * its first write, without waiting, when another process (a job answering its token, `strand
   * stop`) wrote in between.
   */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  insertExecution(
    row: Pick<
      ExecutionRow,
      | 'arn'
      | 'name'
      | 'stateMachineName'
      | 'definition'
      | 'input'
      | 'status'
      | 'startDate'
      | 'state'
    > & { parentArn?: string | null; mock?: string | null },
  ): void {
    this.stmts.insertExecution.run({
      ...row,
      parentArn: row.parentArn ?? null,
      mock: row.mock ?? null,
    });
  }

  /** The definition of the latest execution of state machine `name`, if it ran here. */
  latestDefinition(name: string): string | undefined {
    const r = this.db
      .prepare(
        'SELECT definition FROM executions WHERE state_machine_name = ? ORDER BY start_date DESC LIMIT 1',
      )
      .get(name) as { definition: string } | undefined;
    return r?.definition;
  }

  getExecution(nameOrArn: string): ExecutionRow | undefined {
    const r = (this.stmts.byArn.get(nameOrArn) ?? this.stmts.byName.get(nameOrArn)) as
      Record<string, unknown> | undefined;
    return r ? toRow(r) : undefined;
  }

  listExecutions(status?: ExecutionStatus, limit = 1000): ExecutionRow[] {
    const rows = status
      ? this.db
          .prepare(
            'SELECT * FROM executions WHERE status = ? ORDER BY start_date DESC, name LIMIT ?',
          )
          .all(status, limit)
      : this.db
          .prepare('SELECT * FROM executions ORDER BY start_date DESC, name LIMIT ?')
          .all(limit);
    return (rows as Record<string, unknown>[]).map(toRow);
  }

  /** Saves the interpreter state and outcome of an execution. */
  saveExecution(arn: string, state: ExecutionState, stopDate: number | null): void {
    this.stmts.update.run({
      arn,
      status: state.status,
      // Kept after the end too: a FAILED execution's state holds its redrive point.
      state: state.status === 'SUCCEEDED' ? null : JSON.stringify(state),
      redriveCount: state.info.redriveCount,
      output: state.output === undefined ? null : JSON.stringify(state.output),
      error: state.error ?? null,
      cause: state.cause ?? null,
      stopDate,
    });
  }

  appendEvents(arn: string, events: HistoryEvent[]): void {
    for (const e of events) {
      const { id, previousEventId, type, timestamp, ...details } = e;
      this.stmts.insertEvent.run(
        arn,
        id,
        previousEventId,
        type,
        timestamp,
        JSON.stringify(details),
      );
    }
  }

  /** History events after `afterId`, oldest first, at most `limit`. */
  history(arn: string, afterId = 0, limit = 1_000_000): HistoryEvent[] {
    return (this.stmts.history.all(arn, afterId, limit) as Record<string, unknown>[]).map((r) => ({
      id: r.id as number,
      previousEventId: r.previous_id as number,
      type: r.type as string,
      timestamp: r.timestamp as number,
      ...(JSON.parse(r.details as string) as Record<string, Json>),
    }));
  }

  putTimer(arn: string, timerId: string, due: number): void {
    this.stmts.putTimer.run(arn, timerId, due);
  }

  deleteTimer(arn: string, timerId: string): void {
    this.stmts.deleteTimer.run(arn, timerId);
  }

  nextTimer(): { executionArn: string; timerId: string; due: number } | undefined {
    const r = this.stmts.nextTimer.get() as
      { execution_arn: string; timer_id: string; due: number } | undefined;
    return r && { executionArn: r.execution_arn, timerId: r.timer_id, due: r.due };
  }

  dueTimers(now: number): { executionArn: string; timerId: string; due: number }[] {
    return (
      this.stmts.dueTimers.all(now) as { execution_arn: string; timer_id: string; due: number }[]
    ).map((r) => ({
      executionArn: r.execution_arn,
      timerId: r.timer_id,
      due: r.due,
    }));
  }

  putTask(row: Omit<TaskRow, 'dispatched'>): void {
    this.stmts.putTask.run(row);
  }

  deleteTask(arn: string, taskId: string): void {
    this.stmts.deleteTask.run(arn, taskId);
  }

  /** Forgets the timers and tasks of a finished execution. */
  clearOutstanding(arn: string): void {
    this.stmts.deleteTimers.run(arn);
    this.stmts.deleteTasks.run(arn);
  }

  /**
   * Takes the engine lease for `owner` unless another live engine holds it. Returns the
   * holder when the lease is taken; undefined when it is now ours.
   */
  acquireLease(
    owner: { id: string; pid: number; host: string },
    now: number,
    ttlMs: number,
    isAlive: (pid: number) => boolean,
  ): { pid: number; host: string; expires: number } | undefined {
    return this.transaction(() => {
      const held = this.db
        .prepare('SELECT owner, pid, host, expires FROM lease WHERE id = 1')
        .get() as { owner: string; pid: number; host: string; expires: number } | undefined;
      const free =
        !held ||
        held.owner === owner.id ||
        held.expires < now ||
        (held.host === owner.host && !isAlive(held.pid));
      if (!free) return { pid: held.pid, host: held.host, expires: held.expires };
      this.db
        .prepare(
          'INSERT OR REPLACE INTO lease (id, owner, pid, host, expires) VALUES (1, ?, ?, ?, ?)',
        )
        .run(owner.id, owner.pid, owner.host, now + ttlMs);
      return undefined;
    });
  }

  /** Gives the lease up if `owner` holds it. */
  releaseLease(ownerId: string): void {
    this.db.prepare('DELETE FROM lease WHERE id = 1 AND owner = ?').run(ownerId);
  }

  outstandingTasks(): TaskRow[] {
    return (this.stmts.tasks.all() as Record<string, unknown>[]).map(taskRow);
  }

  /** One outstanding task, or undefined when it has ended (or never was). */
  outstandingTask(arn: string, taskId: string): TaskRow | undefined {
    const r = this.stmts.task.get(arn, taskId) as Record<string, unknown> | undefined;
    return r && taskRow(r);
  }

  /** Records that a `.waitForTaskToken` task's service was called (see migration 4). */
  markDispatched(arn: string, taskId: string): void {
    this.stmts.dispatchTask.run(arn, taskId);
  }

  /** The engine lease as recorded (whoever holds or last held it). */
  leaseHolder(): { owner: string; pid: number; host: string; expires: number } | undefined {
    return this.db.prepare('SELECT owner, pid, host, expires FROM lease WHERE id = 1').get() as
      { owner: string; pid: number; host: string; expires: number } | undefined;
  }

  /** Records a request for the engine that owns the home; returns its id. */
  insertRequest(kind: RequestKind, body: string, requester: string, now: number): number {
    return Number(
      this.db
        .prepare(
          "INSERT INTO requests (kind, body, requester, created, status) VALUES (?, ?, ?, ?, 'PENDING')",
        )
        .run(kind, body, requester, now).lastInsertRowid,
    );
  }

  getRequest(id: number): RequestRow | undefined {
    return this.db.prepare('SELECT * FROM requests WHERE id = ?').get(id) as RequestRow | undefined;
  }

  /** Requests nobody has taken yet, oldest first. */
  pendingRequests(): RequestRow[] {
    return this.db
      .prepare("SELECT * FROM requests WHERE status = 'PENDING' ORDER BY id")
      .all() as RequestRow[];
  }

  /**
   * Moves a request from one status to another; false when it was not in `from` any more (the
   * owner took it, or its requester withdrew it), so exactly one side acts on it.
   */
  moveRequest(id: number, from: RequestStatus, to: RequestStatus, response?: string): boolean {
    return (
      this.db
        .prepare('UPDATE requests SET status = ?, response = ? WHERE id = ? AND status = ?')
        .run(to, response ?? null, id, from).changes === 1
    );
  }

  /** Forgets answered requests older than `before` (epoch ms). */
  /** The sha256 remembered for a file of this identity (see DigestMemo), or undefined. */
  fileDigest(identity: string): string | undefined {
    const row = this.db
      .prepare('SELECT sha256 FROM file_digests WHERE identity = ?')
      .get(identity) as { sha256: string } | undefined;
    return row?.sha256;
  }

  /** Remembers digests, all in one transaction (a directory's files come together). */
  rememberFileDigests(digests: Iterable<[identity: string, sha256: string]>, now: number): void {
    const insert = this.db.prepare(
      'INSERT OR REPLACE INTO file_digests (identity, sha256, created) VALUES (?, ?, ?)',
    );
    this.db.transaction(() => {
      for (const [identity, sha256] of digests) insert.run(identity, sha256, now);
    })();
  }

  /** Forgets digests remembered before `before` (a file still in use is read once more). */
  pruneFileDigests(before: number): void {
    this.db.prepare('DELETE FROM file_digests WHERE created < ?').run(before);
  }

  pruneRequests(before: number): void {
    this.db
      .prepare(
        "DELETE FROM requests WHERE created < ? AND status IN ('DONE', 'FAILED', 'WITHDRAWN')",
      )
      .run(before);
  }
}

function taskRow(r: Record<string, unknown>): TaskRow {
  return {
    executionArn: r.execution_arn as string,
    taskId: r.task_id as string,
    resource: r.resource as string,
    input: r.input as string,
    stateName: r.state_name as string,
    attempt: r.attempt as number,
    command: r.command as string,
    dispatched: r.dispatched === 1,
  };
}
