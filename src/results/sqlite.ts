/**
 * The default results sink: its own SQLite file (`<home>/results.db`, WAL), apart from the
 * engine's `strand.db` so people can query, copy or delete results without touching executions.
 *
 * Tables: `steps` (one row per execution × sample × step), `metric_tables` (which table holds
 * which pipeline × step) and one STRICT table per pipeline × step, named `m_<pipeline>__<step>`,
 * whose key columns are `_execution`, `_sample`, `_row` and whose other columns are the metrics,
 * typed INTEGER, REAL or TEXT and added with ALTER TABLE as new names appear.
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, mkdirSync, openSync, readSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { damageOf } from '../home/integrity.js';
import { privateDatabase, privateHome } from '../home/permissions.js';
import { ResultsError } from './errors.js';
import {
  checkMetrics,
  checkStepResult,
  describeMetricsKey,
  mergeColumnType,
  quoteIdentifier as quote,
  tableFragment,
  type MetricColumn,
  type MetricsFilter,
  type MetricsKey,
  type MetricsRowInfo,
  type MetricsTable,
  type MetricType,
  type MetricValue,
  type ResultsSink,
  type StepFilter,
  type StepResultInfo,
  type StepResultUpsert,
} from './sink.js';

/**
 * 1: steps and metric tables; 2: steps say which executor and image ran each job; 3: and the
 * vCPUs, memory and CPU time each had; 4: and the peak memory each used (MIGRATIONS).
 */
const SCHEMA_VERSION = 4;
const APPLICATION_ID = 0x53545252; // "STRR": marks the file as Strand's results database.
const ENGINE_APPLICATION_ID = 0x5354524e; // "STRN": the engine's strand.db (src/engine/store.ts).

const DDL = `
CREATE TABLE IF NOT EXISTS steps (
  execution TEXT NOT NULL,
  sample TEXT NOT NULL,
  step TEXT NOT NULL,
  pipeline TEXT NOT NULL,
  status TEXT NOT NULL,
  started_at TEXT,
  stopped_at TEXT,
  exit_code INTEGER,
  job_id TEXT,
  attempt INTEGER,
  output_location TEXT,
  log_location TEXT,
  error TEXT,
  executor TEXT,
  image TEXT,
  cause TEXT,
  vcpus REAL,
  memory_mib INTEGER,
  cpu_seconds REAL,
  peak_memory_mib REAL,
  PRIMARY KEY (execution, sample, step)
) STRICT;
CREATE INDEX IF NOT EXISTS steps_pipeline_step ON steps (pipeline, step);
CREATE TABLE IF NOT EXISTS metric_tables (
  pipeline TEXT NOT NULL,
  step TEXT NOT NULL,
  table_name TEXT NOT NULL UNIQUE,
  PRIMARY KEY (pipeline, step)
) STRICT;
`;

/** Optional StepResultInfo fields and their columns. */
const OPTIONAL_FIELDS = [
  ['startedAt', 'started_at'],
  ['stoppedAt', 'stopped_at'],
  ['exitCode', 'exit_code'],
  ['jobId', 'job_id'],
  ['attempt', 'attempt'],
  ['outputLocation', 'output_location'],
  ['logLocation', 'log_location'],
  ['executor', 'executor'],
  ['image', 'image'],
  ['error', 'error'],
  ['cause', 'cause'],
  ['vcpus', 'vcpus'],
  ['memoryMiB', 'memory_mib'],
  ['cpuSeconds', 'cpu_seconds'],
  ['peakMemoryMiB', 'peak_memory_mib'],
] as const;

/** What brings a database of schema version N (the key) to N + 1. */
const MIGRATIONS: Record<number, string> = {
  1: 'ALTER TABLE steps ADD COLUMN executor TEXT; ALTER TABLE steps ADD COLUMN image TEXT;',
  2:
    'ALTER TABLE steps ADD COLUMN vcpus REAL; ALTER TABLE steps ADD COLUMN memory_mib INTEGER; ' +
    'ALTER TABLE steps ADD COLUMN cpu_seconds REAL;',
  3: 'ALTER TABLE steps ADD COLUMN peak_memory_mib REAL;',
};

const FILTER_COLUMNS = ['pipeline', 'execution', 'sample', 'step', 'status'] as const;

const KEY_COLUMNS = '"_execution" TEXT NOT NULL, "_sample" TEXT NOT NULL, "_row" INTEGER NOT NULL';
const KEY_PRIMARY = 'PRIMARY KEY ("_execution", "_sample", "_row")';

const SQL_TYPES: Record<MetricType, string> = { integer: 'INTEGER', real: 'REAL', text: 'TEXT' };

function columnDefs(columns: MetricColumn[]): string {
  return columns.map((c) => `, ${quote(c.name)} ${SQL_TYPES[c.type]}`).join('');
}

/** Refuses a file that is not a results database, reading it without changing a byte. */
function checkExisting(path: string, deep = false): void {
  if (!existsSync(path)) return;
  const fd = openSync(path, 'r');
  const header = Buffer.alloc(100);
  let read: number;
  try {
    read = readSync(fd, header, 0, 100, 0);
  } finally {
    closeSync(fd);
  }
  if (read === 0) return; // An empty file is an empty database to SQLite.
  if (header.subarray(0, Math.min(read, 16)).toString('latin1') !== 'SQLite format 3\u0000') {
    throw new ResultsError(
      'NOT_RESULTS_DB',
      `${path} is not a Strand results database (not an SQLite file); it was left untouched`,
    );
  }
  // The application id in the file header settles most cases without opening the database,
  // which for a WAL database would leave -wal and -shm files beside it.
  const headerAppId = read >= 72 ? header.readInt32BE(68) : 0;
  if (headerAppId === ENGINE_APPLICATION_ID) throw engineDatabase(path);
  if (headerAppId !== 0 && headerAppId !== APPLICATION_ID) throw foreignDatabase(path, headerAppId);
  // Read-only, so not even a WAL checkpoint can change the file.
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const appId = db.pragma('application_id', { simple: true }) as number;
    const { n } = db
      .prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'")
      .get() as {
      n: number;
    };
    if (appId === ENGINE_APPLICATION_ID) throw engineDatabase(path);
    if (appId !== APPLICATION_ID && (appId !== 0 || n > 0)) throw foreignDatabase(path, appId, n);
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new ResultsError(
        'NEWER_SCHEMA',
        `${path} was written by a newer Strand (results schema ${version}; this one knows ${SCHEMA_VERSION})`,
      );
    }
    const damage = deep ? damageOf(db) : undefined;
    if (damage)
      throw new ResultsError(
        'NOT_RESULTS_DB',
        `${path} is damaged (${damage}); it was left untouched. Restore it from a backup, or move it away to start a new results database`,
      );
  } catch (err) {
    if (err instanceof ResultsError) throw err;
    throw new ResultsError(
      'NOT_RESULTS_DB',
      `${path} cannot be read as a Strand results database (${(err as Error).message}); it was left untouched`,
    );
  } finally {
    db?.close();
  }
}

function engineDatabase(path: string): ResultsError {
  return new ResultsError(
    'NOT_RESULTS_DB',
    `${path} is Strand's engine database (strand.db), not a results database; it was left untouched (results go to results.db)`,
  );
}

function foreignDatabase(path: string, appId: number, tables?: number): ResultsError {
  const what =
    tables === undefined ? `application_id ${appId}` : `application_id ${appId}, ${tables} tables`;
  return new ResultsError(
    'NOT_RESULTS_DB',
    `${path} is an SQLite database of another application (${what}), not a Strand results database; it was left untouched`,
  );
}

function toStepInfo(r: Record<string, unknown>): StepResultInfo {
  const info: Record<string, unknown> = {
    execution: r.execution,
    pipeline: r.pipeline,
    sample: r.sample,
    step: r.step,
    status: r.status,
  };
  for (const [field, column] of OPTIONAL_FIELDS) {
    if (r[column] !== null && r[column] !== undefined) info[field] = r[column];
  }
  return info as unknown as StepResultInfo;
}

/** Results in an SQLite file. Several processes may write it at once (WAL, busy timeout). */
export class SqliteResults implements ResultsSink {
  private readonly statements = new Map<string, Database.Statement>();

  private constructor(
    readonly path: string,
    private readonly db: Database.Database,
  ) {}

  /** Opens (creating if needed) the results database at `path`; refuses any other file. */
  static open(path: string, options: { check?: boolean } = {}): SqliteResults {
    const file = resolve(path);
    checkExisting(file, options.check);
    let db: Database.Database | undefined;
    try {
      mkdirSync(dirname(file), { recursive: true });
      privateDatabase(file);
      db = new Database(file);
      db.pragma('busy_timeout = 5000');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      const conn = db;
      const ready =
        conn.pragma('application_id', { simple: true }) === APPLICATION_ID &&
        conn.pragma('user_version', { simple: true }) === SCHEMA_VERSION;
      // Set up once, so opening an existing database to read it takes no write lock.
      if (!ready) {
        conn
          .transaction(() => {
            const version = conn.pragma('user_version', { simple: true }) as number;
            if (version === 0) conn.exec(DDL);
            else for (let v = version; v < SCHEMA_VERSION; v++) conn.exec(MIGRATIONS[v]);
            conn.pragma(`application_id = ${APPLICATION_ID}`);
            conn.pragma(`user_version = ${SCHEMA_VERSION}`);
          })
          .immediate();
      }
    } catch (err) {
      db?.close();
      throw new ResultsError(
        'DB_FAILED',
        `${file}: cannot open the results database: ${(err as Error).message}`,
      );
    }
    return new SqliteResults(file, db);
  }

  /** Opens `<home>/results.db`, the default results database of a Strand home. */
  /** Whether a home has a results database yet. */
  static existsInHome(home: string): boolean {
    return existsSync(join(home, 'results.db'));
  }

  static inHome(home: string, options: { check?: boolean } = {}): SqliteResults {
    privateHome(home);
    return SqliteResults.open(join(home, 'results.db'), options);
  }

  async upsertStep(row: StepResultUpsert): Promise<void> {
    checkStepResult(row);
    const given = OPTIONAL_FIELDS.filter(([field]) => row[field] !== undefined);
    const columns = [
      'execution',
      'sample',
      'step',
      'pipeline',
      'status',
      ...given.map((g) => g[1]),
    ];
    const updates = ['pipeline', 'status', ...given.map((g) => g[1])];
    const sql =
      `INSERT INTO steps (${columns.join(', ')}) VALUES (${columns.map((c) => `@${c}`).join(', ')}) ` +
      `ON CONFLICT (execution, sample, step) DO UPDATE SET ${updates.map((c) => `${c} = excluded.${c}`).join(', ')}`;
    const params: Record<string, unknown> = {
      execution: row.execution,
      sample: row.sample,
      step: row.step,
      pipeline: row.pipeline,
      status: row.status,
    };
    for (const [field, column] of given) params[column] = row[field];
    this.write(`cannot record step ${row.step} of sample ${row.sample}`, () =>
      this.statement(sql).run(params),
    );
  }

  async putMetrics(key: MetricsKey, table: MetricsTable): Promise<void> {
    checkMetrics(key, table);
    this.write(`cannot record the metrics of ${describeMetricsKey(key)}`, () =>
      this.db.transaction(() => this.replaceMetrics(key, table)).immediate(),
    );
  }

  async listSteps(filter: StepFilter = {}): Promise<StepResultInfo[]> {
    const given = FILTER_COLUMNS.filter((c) => filter[c] !== undefined);
    const where = given.length ? ` WHERE ${given.map((c) => `${c} = @${c}`).join(' AND ')}` : '';
    const params = Object.fromEntries(given.map((c) => [c, filter[c]]));
    const rows = this.statement(`SELECT * FROM steps${where} ORDER BY rowid`).all(params);
    return (rows as Record<string, unknown>[]).map(toStepInfo);
  }

  async stepHistory(pipeline: string, step: string, limit: number): Promise<StepResultInfo[]> {
    const rows = this.statement(
      "SELECT * FROM steps WHERE pipeline = ? AND step = ? AND status = 'SUCCEEDED' AND vcpus IS NOT NULL ORDER BY stopped_at DESC LIMIT ?",
    ).all(pipeline, step, limit);
    return (rows as Record<string, unknown>[]).map(toStepInfo);
  }

  async listMetrics(
    pipeline: string,
    step: string,
    filter: MetricsFilter = {},
  ): Promise<MetricsRowInfo[]> {
    const name = this.tableName(pipeline, step);
    if (name === undefined) return [];
    const columns = [...this.columnTypes(name).keys()];
    const conditions: string[] = [];
    const params: Record<string, string> = {};
    if (filter.execution !== undefined) {
      conditions.push('"_execution" = @execution');
      params.execution = filter.execution;
    }
    if (filter.sample !== undefined) {
      conditions.push('"_sample" = @sample');
      params.sample = filter.sample;
    }
    const where = conditions.length ? ` WHERE ${conditions.join(' AND ')}` : '';
    const rows = this.db
      .prepare(`SELECT * FROM ${quote(name)}${where} ORDER BY "_execution", "_sample", "_row"`)
      .all(params) as Record<string, MetricValue>[];
    return rows.map((r) => ({
      execution: r._execution as string,
      sample: r._sample as string,
      row: r._row as number,
      values: Object.fromEntries(columns.map((c) => [c, r[c] ?? null])),
    }));
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  /** Runs a write, reporting driver failures (busy, disk full) with what was being written. */
  private write(what: string, fn: () => unknown): void {
    try {
      fn();
    } catch (err) {
      if (err instanceof ResultsError) throw err;
      throw new ResultsError('DB_FAILED', `${this.path}: ${what}: ${(err as Error).message}`);
    }
  }

  private statement(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /** Inside a write transaction: aligns the table's columns with `table`, then swaps the rows. */
  private replaceMetrics(key: MetricsKey, table: MetricsTable): void {
    const name = this.tableName(key.pipeline, key.step) ?? this.createTable(key.pipeline, key.step);
    // The key's old rows go first, so they neither block a retype nor count as data below.
    this.db
      .prepare(`DELETE FROM ${quote(name)} WHERE "_execution" = ? AND "_sample" = ?`)
      .run(key.execution, key.sample);

    const existing = this.columnTypes(name);
    const retype = new Map<string, MetricType>();
    const added: MetricColumn[] = [];
    const asText = new Set<number>();
    table.columns.forEach((column, j) => {
      const have = existing.get(column.name);
      if (have === undefined) {
        added.push(column);
        return;
      }
      const firstValue = table.rows.findIndex((r) => r[j] !== null);
      if (firstValue < 0) return; // Nulls fit any column.
      const merge = mergeColumnType(have, column.type);
      if (merge === 'keep') return;
      if (this.columnIsEmpty(name, column.name)) {
        // Nothing stored yet (e.g. the first file had the column empty): take the new type.
        retype.set(column.name, column.type);
      } else if (merge === 'widen') {
        retype.set(column.name, 'real');
      } else if (merge === 'as-text') {
        asText.add(j);
      } else {
        const value = table.rows[firstValue][j];
        throw new ResultsError(
          'TYPE_CONFLICT',
          `metrics of ${describeMetricsKey(key)}: column ${column.name} is ${SQL_TYPES[have]} in ` +
            `${this.path} (table ${name}), but row ${firstValue} has ${JSON.stringify(value)}; ` +
            'nothing was written for this sample',
        );
      }
    });

    if (retype.size > 0) {
      const columns = [...existing].map(([n, type]) => ({ name: n, type: retype.get(n) ?? type }));
      this.rebuildTable(name, columns);
    }
    for (const column of added) {
      this.db.exec(
        `ALTER TABLE ${quote(name)} ADD COLUMN ${quote(column.name)} ${SQL_TYPES[column.type]}`,
      );
    }
    if (table.rows.length === 0) return;

    const names = table.columns.map((c) => quote(c.name));
    const insert = this.db.prepare(
      `INSERT INTO ${quote(name)} ("_execution", "_sample", "_row"${names.map((n) => `, ${n}`).join('')}) ` +
        `VALUES (?, ?, ?${', ?'.repeat(names.length)})`,
    );
    table.rows.forEach((row, i) => {
      const values = asText.size
        ? row.map((v, j) => (asText.has(j) && v !== null ? String(v) : v))
        : row;
      insert.run(key.execution, key.sample, i, ...values);
    });
  }

  private tableName(pipeline: string, step: string): string | undefined {
    const r = this.statement(
      'SELECT table_name FROM metric_tables WHERE pipeline = ? AND step = ?',
    ).get(pipeline, step) as { table_name: string } | undefined;
    return r?.table_name;
  }

  /** Registers and creates the table of pipeline × step under a name no other pair has. */
  private createTable(pipeline: string, step: string): string {
    const base = `m_${tableFragment(pipeline)}__${tableFragment(step)}`;
    const taken = this.db.prepare(
      'SELECT 1 FROM sqlite_master WHERE lower(name) = lower(?) UNION ALL SELECT 1 FROM metric_tables WHERE lower(table_name) = lower(?)',
    );
    let name = base;
    for (let n = 2; taken.get(name, name) !== undefined; n++) name = `${base}_${n}`;
    this.db
      .prepare('INSERT INTO metric_tables (pipeline, step, table_name) VALUES (?, ?, ?)')
      .run(pipeline, step, name);
    this.db.exec(
      `CREATE TABLE ${quote(name)} (${KEY_COLUMNS}, ${KEY_PRIMARY}) STRICT, WITHOUT ROWID`,
    );
    return name;
  }

  /** Metric columns of a table (the `_` key columns left out), in table order. */
  private columnTypes(name: string): Map<string, MetricType> {
    const rows = this.statement('SELECT name, type FROM pragma_table_info(?) ORDER BY cid').all(
      name,
    ) as { name: string; type: string }[];
    return new Map(
      rows
        .filter((r) => !r.name.startsWith('_'))
        .map((r) => [r.name, r.type.toLowerCase() as MetricType]),
    );
  }

  private columnIsEmpty(table: string, column: string): boolean {
    return (
      this.db
        .prepare(`SELECT 1 FROM ${quote(table)} WHERE ${quote(column)} IS NOT NULL LIMIT 1`)
        .get() === undefined
    );
  }

  /** Changes column types the only way SQLite can: a new table, the rows copied over, renamed. */
  private rebuildTable(name: string, columns: MetricColumn[]): void {
    const scratch = `${name}__rebuild`;
    this.db.exec(
      `CREATE TABLE ${quote(scratch)} (${KEY_COLUMNS}${columnDefs(columns)}, ${KEY_PRIMARY}) STRICT, WITHOUT ROWID`,
    );
    this.db.exec(`INSERT INTO ${quote(scratch)} SELECT * FROM ${quote(name)}`);
    this.db.exec(`DROP TABLE ${quote(name)}`);
    this.db.exec(`ALTER TABLE ${quote(scratch)} RENAME TO ${quote(name)}`);
  }
}
