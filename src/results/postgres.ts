/**
 * Results in PostgreSQL (`--results postgres://USER@HOST:PORT/DATABASE`), for results that
 * outlive one machine or are shared by several. The tables are SQLite's (sqlite.ts), created in
 * the connection's current schema: `steps` (one row per execution × sample × step),
 * `metric_tables` (which table holds which pipeline × step) and one table per pipeline × step,
 * `m_<pipeline>__<step>`, keyed by `_execution`, `_sample`, `_row`, whose other columns are the
 * metrics, typed bigint, double precision or text and added as new names appear. `strand_schema`
 * has a row per migration applied; a database at a later version than this build knows is
 * refused.
 *
 * Several engines may write one database at once. A step row is one `INSERT … ON CONFLICT`; a
 * put of metrics is one transaction holding an advisory lock on its pipeline × step, so two
 * writers that create the same table, add the same column or widen the same type take turns
 * instead of failing; migrations hold a lock of their own.
 *
 * The password (from the URL, PGPASSWORD or ~/.pgpass) never reaches a message: the database is
 * named as `postgres://user:***@host:port/db`, and driver messages are scrubbed of it.
 */
import { createHash } from 'node:crypto';
import { userInfo } from 'node:os';
import pg from 'pg';
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

/** Whether `url` names a Postgres database (`postgres://…` or `postgresql://…`). */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

/** The schema this build writes; MIGRATIONS brings a database from any earlier one to it. */
export const POSTGRES_SCHEMA_VERSION = 2;

interface Migration {
  version: number;
  description: string;
  sql: string;
}

/**
 * Applied in order to a database below their version, each in the same transaction as its row
 * in `strand_schema`. A migration is never edited once released: a change is a new version.
 */
const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'steps, metric_tables (the columns of SQLite results schema 3)',
    sql: `
CREATE TABLE steps (
  seq bigint GENERATED ALWAYS AS IDENTITY,
  execution text NOT NULL,
  sample text NOT NULL,
  step text NOT NULL,
  pipeline text NOT NULL,
  status text NOT NULL,
  started_at timestamptz,
  stopped_at timestamptz,
  exit_code bigint,
  job_id text,
  attempt bigint,
  output_location text,
  log_location text,
  executor text,
  image text,
  error text,
  cause text,
  vcpus double precision,
  memory_mib bigint,
  cpu_seconds double precision,
  PRIMARY KEY (execution, sample, step)
);
CREATE INDEX steps_seq ON steps (seq);
CREATE INDEX steps_pipeline_step ON steps (pipeline, step);
CREATE TABLE metric_tables (
  pipeline text NOT NULL,
  step text NOT NULL,
  table_name text NOT NULL UNIQUE,
  PRIMARY KEY (pipeline, step)
);`,
  },
  {
    version: 2,
    description: 'steps.peak_memory_mib (SQLite results schema 4)',
    sql: 'ALTER TABLE steps ADD COLUMN peak_memory_mib double precision;',
  },
];

/**
 * Advisory lock classes (the first of pg_advisory_lock's two keys): "STRS" for the schema
 * (0: migrations, 1: choosing a new metric table's name), "STRT" for a pipeline × step's table.
 */
const SCHEMA_LOCK = 0x53545253;
const TABLE_LOCK = 0x53545254;

/** Optional StepResultInfo fields and their columns (as sqlite.ts). */
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

const STEP_COLUMNS = [
  'execution',
  'sample',
  'step',
  'pipeline',
  'status',
  ...OPTIONAL_FIELDS.map((f) => f[1]),
].join(', ');

const FILTER_COLUMNS = ['pipeline', 'execution', 'sample', 'step', 'status'] as const;

const PG_TYPES: Record<MetricType, string> = {
  integer: 'bigint',
  real: 'double precision',
  text: 'text',
};

/** How a column's type is named in messages: the sink-neutral name, then Postgres's. */
const TYPE_LABEL: Record<MetricType, string> = {
  integer: 'INTEGER (bigint)',
  real: 'REAL (double precision)',
  text: 'TEXT',
};

/** Postgres caps identifiers at 63 bytes; a name this long still has room for a `_NNN` suffix. */
const TABLE_NAME_ROOM = 56;

/** Postgres takes at most 65535 parameters in one statement. */
const MAX_PARAMETERS = 60_000;

/** How long to wait for a connection before saying the server does not answer. */
const CONNECT_TIMEOUT_MS = 15_000;

/** What a connection URL names, with the defaults pg takes from PG* variables filled in. */
interface PostgresTarget {
  /** `postgres://user:***@host:port/db`: what messages name. */
  display: string;
  host: string;
  port: string;
  database: string;
  user: string;
  /** Texts that must not appear in a message: the password, raw and encoded. */
  secrets: string[];
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * `postgres://u:secret@h/db` → `postgres://u:***@h/db`, also for a URL that cannot be parsed:
 * everything up to the last `@` after the user's `:` goes, so a password holding `/`, `?` or `@`
 * is masked whole (a URL without one may lose more than its password, never show it).
 */
export function maskUrlPassword(url: string): string {
  return url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):.*@/i, '$1:***@')
    .replace(/([?&](ssl)?password=)[^&#]*/gi, '$1***');
}

/** Parses a Postgres URL as pg does, for messages; throws CONNECT_FAILED when it is not one. */
function parseTarget(url: string): PostgresTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ResultsError(
      'CONNECT_FAILED',
      `results ${maskUrlPassword(url)}: not a connection URL (write postgres://USER:PASSWORD@HOST:PORT/DATABASE)`,
    );
  }
  const param = (name: string): string | undefined => parsed.searchParams.get(name) ?? undefined;
  const env = (name: string): string | undefined => process.env[name] || undefined;
  let osUser: string | undefined;
  try {
    osUser = userInfo().username;
  } catch {
    osUser = undefined;
  }
  const user = decode(parsed.username) || param('user') || env('PGUSER') || osUser || '?';
  const host = decode(parsed.hostname) || param('host') || env('PGHOST') || 'localhost';
  const port = parsed.port || param('port') || env('PGPORT') || '5432';
  const database =
    decode(parsed.pathname.replace(/^\//, '')) || param('database') || env('PGDATABASE') || user;
  const password = decode(parsed.password) || param('password') || env('PGPASSWORD');
  const secrets = [parsed.password, decode(parsed.password), param('password'), env('PGPASSWORD')]
    // A password this short would blank out ordinary words of a message; it guards nothing.
    .filter((s): s is string => s !== undefined && s.length >= 4);
  const shownHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const display = `postgres://${encodeURIComponent(user)}${password ? ':***' : ''}@${shownHost}:${port}/${encodeURIComponent(database)}`;
  return { display, host, port, database, user, secrets: [...new Set(secrets)] };
}

/** What to check when connecting failed, by the driver's or the server's error code. */
function connectHint(err: unknown, target: PostgresTarget): string {
  const code = (err as { code?: string }).code;
  const message = (err as Error).message ?? '';
  const at = `${target.host}:${target.port}`;
  switch (code) {
    case 'ECONNREFUSED':
      return `is the server running and listening on ${at}? (listen_addresses and port in postgresql.conf)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `check the host name ${JSON.stringify(target.host)}`;
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `check that ${at} is the server's address and that no firewall is in the way`;
    case '28P01':
      return `check the password of user ${JSON.stringify(target.user)}: the URL's, PGPASSWORD or ~/.pgpass`;
    case '28000':
      return `check the user name and that the server's pg_hba.conf lets ${JSON.stringify(target.user)} connect to ${JSON.stringify(target.database)} from this machine`;
    case '3D000':
      return `create it (createdb -h ${target.host} -p ${target.port} ${target.database}) or name another database`;
    case '57P03':
      return 'the server is starting up or shutting down: try again in a moment';
    case '53300':
      return 'the server has no connection slots left (max_connections)';
  }
  if (/timeout/i.test(message))
    return `no answer from ${at}: check the address, the port and any firewall`;
  if (/SSL/i.test(message)) return 'check sslmode in the URL (or PGSSLMODE) against the server';
  return `check the URL: postgres://USER:PASSWORD@HOST:PORT/DATABASE`;
}

/**
 * Whether a query failed because the connection went (the server stopped or the network
 * broke) rather than because of what was asked.
 */
function lostConnection(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^(08|57P0[123]$|E[A-Z]+$)/.test(code)) return true;
  return /Connection terminated|connection error|not queryable/i.test(
    (err as { message?: string }).message ?? '',
  );
}

/** A pipeline × step's advisory lock: a 32-bit hash of the pair. */
function tableLockId(pipeline: string, step: string): number {
  return createHash('sha256').update(`${pipeline}\0${step}`).digest().readInt32BE(0);
}

/**
 * `m_<pipeline>__<step>`, cut to fit Postgres's 63-byte identifiers with a hash of the pair
 * keeping long names apart.
 */
function baseTableName(pipeline: string, step: string): string {
  const base = `m_${tableFragment(pipeline)}__${tableFragment(step)}`;
  if (base.length <= TABLE_NAME_ROOM) return base;
  const hash = createHash('sha256').update(`${pipeline}\0${step}`).digest('hex').slice(0, 8);
  return `${base.slice(0, TABLE_NAME_ROOM - 9).replace(/_+$/, '')}_${hash}`;
}

/** A Postgres column type as a metric type (a column someone changed by hand counts as text). */
function metricType(pgType: string): MetricType {
  if (/^(bigint|integer|smallint)$/.test(pgType)) return 'integer';
  if (/^(double precision|real|numeric)/.test(pgType)) return 'real';
  return 'text';
}

/** bigint as a number: Strand stores only safe integers in it (pg would give strings). */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 && format !== 'binary'
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

function toStepInfo(r: Record<string, unknown>): StepResultInfo {
  const info: Record<string, unknown> = {
    execution: r.execution,
    pipeline: r.pipeline,
    sample: r.sample,
    step: r.step,
    status: r.status,
  };
  for (const [field, column] of OPTIONAL_FIELDS) {
    const v = r[column];
    if (v === null || v === undefined) continue;
    info[field] = v instanceof Date ? v.toISOString() : v;
  }
  return info as unknown as StepResultInfo;
}

/** Results in a Postgres database, over a pool of connections closed by `close()`. */
export class PostgresResults implements ResultsSink {
  /** The database as messages name it: `postgres://user:***@host:port/db`. */
  readonly where: string;
  private readonly pool: pg.Pool;
  private readonly target: PostgresTarget;
  private setup: Promise<void> | undefined;
  private ended = false;

  private constructor(url: string) {
    this.target = parseTarget(url);
    this.where = this.target.display;
    this.pool = new pg.Pool({
      connectionString: url,
      max: 4,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: 10_000,
      // An idle connection must not keep a finished command's process alive.
      allowExitOnIdle: true,
      application_name: 'strand',
      types,
    });
    // A pooled connection the server drops while idle is discarded by the pool; the next
    // query connects again. Without a listener the error would end the process.
    this.pool.on('error', () => {});
  }

  /**
   * A sink for the database at `url`. Nothing is sent until it is used: `opened()` connects and
   * migrates the schema (every method does so first).
   */
  static open(url: string): PostgresResults {
    return new PostgresResults(url);
  }

  /**
   * Connects and brings the schema up to date, throwing CONNECT_FAILED (unreachable, refused,
   * bad credentials, no such database), NEWER_SCHEMA or NOT_RESULTS_DB; resolves to the sink.
   */
  async opened(): Promise<this> {
    await this.ready();
    return this;
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
    const values: unknown[] = [row.execution, row.sample, row.step, row.pipeline, row.status];
    for (const [field] of given) values.push(row[field]);
    const sql =
      `INSERT INTO steps (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')}) ` +
      `ON CONFLICT (execution, sample, step) DO UPDATE SET ${updates.map((c) => `${c} = excluded.${c}`).join(', ')}`;
    await this.use(`cannot record step ${row.step} of sample ${row.sample}`, (c) =>
      c.query(sql, values),
    );
  }

  async putMetrics(key: MetricsKey, table: MetricsTable): Promise<void> {
    checkMetrics(key, table);
    await this.use(
      `cannot record the metrics of ${describeMetricsKey(key)}`,
      (c) => this.replaceMetrics(c, key, table),
      { transaction: true },
    );
  }

  async listSteps(filter: StepFilter = {}): Promise<StepResultInfo[]> {
    const given = FILTER_COLUMNS.filter((c) => filter[c] !== undefined);
    const where = given.length
      ? ` WHERE ${given.map((c, i) => `${c} = $${i + 1}`).join(' AND ')}`
      : '';
    const result = await this.use('cannot list the step results', (c) =>
      c.query(
        `SELECT ${STEP_COLUMNS} FROM steps${where} ORDER BY seq`,
        given.map((c) => filter[c]),
      ),
    );
    return result.rows.map(toStepInfo);
  }

  async stepHistory(pipeline: string, step: string, limit: number): Promise<StepResultInfo[]> {
    const result = await this.use(`cannot read the history of step ${step}`, (c) =>
      c.query(
        `SELECT ${STEP_COLUMNS} FROM steps WHERE pipeline = $1 AND step = $2 AND status = 'SUCCEEDED' ` +
          'AND vcpus IS NOT NULL ORDER BY stopped_at DESC NULLS LAST, seq DESC LIMIT $3',
        [pipeline, step, limit],
      ),
    );
    return result.rows.map(toStepInfo);
  }

  async listMetrics(
    pipeline: string,
    step: string,
    filter: MetricsFilter = {},
  ): Promise<MetricsRowInfo[]> {
    return this.use(`cannot list the metrics of step ${step}`, async (c) => {
      const name = await this.tableName(c, pipeline, step);
      if (name === undefined) return [];
      const conditions: string[] = [];
      const params: string[] = [];
      if (filter.execution !== undefined) {
        params.push(filter.execution);
        conditions.push(`"_execution" = $${params.length}`);
      }
      if (filter.sample !== undefined) {
        params.push(filter.sample);
        conditions.push(`"_sample" = $${params.length}`);
      }
      const where = conditions.length ? ` WHERE ${conditions.join(' AND ')}` : '';
      // Byte order, as SQLite sorts, whatever the database's collation.
      const result = await c.query<Record<string, MetricValue>>(
        `SELECT * FROM ${quote(name)}${where} ORDER BY "_execution" COLLATE "C", "_sample" COLLATE "C", "_row"`,
        params,
      );
      // The columns of the rows read, not of a catalog query before: one added in between is
      // in both or in neither.
      const columns = result.fields.map((f) => f.name).filter((n) => !n.startsWith('_'));
      return result.rows.map((r) => ({
        execution: r._execution as string,
        sample: r._sample as string,
        row: r._row as number,
        values: Object.fromEntries(columns.map((col) => [col, r[col] ?? null])),
      }));
    });
  }

  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.pool.end();
  }

  /** The schema set up once per sink; a failure is tried again by the next use. */
  private ready(): Promise<void> {
    this.setup ??= this.migrate().catch((err: unknown) => {
      this.setup = undefined;
      throw err;
    });
    return this.setup;
  }

  /** A pooled connection, or CONNECT_FAILED naming the database and what to check. */
  private async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (err) {
      throw new ResultsError(
        'CONNECT_FAILED',
        `cannot connect to the results database ${this.where}: ${this.scrub((err as Error).message)} (${connectHint(err, this.target)})`,
      );
    }
  }

  /** `text` with every form of the password blanked out. */
  private scrub(text: string): string {
    let out = text;
    for (const secret of this.target.secrets) out = out.split(secret).join('***');
    return out;
  }

  /**
   * Runs `fn` on a pooled connection once the schema is ready (in a transaction when asked),
   * reporting a driver failure with the database and what was being done.
   */
  private async use<T>(
    what: string,
    fn: (client: pg.PoolClient) => Promise<T>,
    options: { transaction?: boolean } = {},
  ): Promise<T> {
    await this.ready();
    const client = await this.connect();
    let broken: Error | undefined;
    try {
      if (!options.transaction) return await fn(client);
      await client.query('BEGIN');
      try {
        const value = await fn(client);
        await client.query('COMMIT');
        return value;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    } catch (err) {
      if (err instanceof ResultsError) throw err;
      broken = err as Error;
      // A server that went away is not the data's fault: CONNECT_FAILED stops the engine
      // (src/faults.ts) instead of failing the step, and a resume writes it again.
      if (lostConnection(err))
        throw new ResultsError(
          'CONNECT_FAILED',
          `${this.where}: ${what}: the connection to the server was lost (${this.scrub(broken.message)}); check that the server is up`,
        );
      throw new ResultsError('DB_FAILED', `${this.where}: ${what}: ${this.scrub(broken.message)}`);
    } finally {
      // A connection that failed mid-query is closed, not handed to the next caller.
      client.release(broken);
    }
  }

  /** Brings the database to POSTGRES_SCHEMA_VERSION, or refuses one that is not Strand's. */
  private async migrate(): Promise<void> {
    const client = await this.connect();
    let broken: Error | undefined;
    try {
      // Checked without a lock first, so a reader of an up-to-date database writes nothing
      // (and may be a user who cannot create tables).
      if ((await this.schemaState(client)) === POSTGRES_SCHEMA_VERSION) return;
      // The lock is taken before the transaction begins: a transaction that began while
      // another migrated could look the new tables up in a catalog cache from before.
      await client.query(`SELECT pg_advisory_lock(${SCHEMA_LOCK}, 0)`);
      await client.query('BEGIN');
      try {
        const version = await this.schemaState(client);
        if (version === undefined) {
          await client.query(
            'CREATE TABLE strand_schema (version integer PRIMARY KEY, description text NOT NULL, ' +
              'applied_at timestamptz NOT NULL DEFAULT now())',
          );
        }
        for (const m of MIGRATIONS) {
          if (m.version <= (version ?? 0)) continue;
          await client.query(m.sql);
          await client.query('INSERT INTO strand_schema (version, description) VALUES ($1, $2)', [
            m.version,
            m.description,
          ]);
        }
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        // A connection that broke has lost the lock with it.
        await client.query(`SELECT pg_advisory_unlock(${SCHEMA_LOCK}, 0)`).catch(() => undefined);
      }
    } catch (err) {
      if (err instanceof ResultsError) throw err;
      broken = err as Error;
      throw new ResultsError(
        'DB_FAILED',
        `${this.where}: cannot set up the results tables: ${this.scrub(broken.message)}`,
      );
    } finally {
      client.release(broken);
    }
  }

  /**
   * The schema version of the database (undefined: no `strand_schema` yet), refusing one from a
   * newer Strand and tables of another application where Strand's would go.
   */
  private async schemaState(client: pg.PoolClient): Promise<number | undefined> {
    const { rows } = await client.query<{ schema: boolean; steps: boolean; metrics: boolean }>(
      "SELECT to_regclass('strand_schema') IS NOT NULL AS schema, " +
        "to_regclass('steps') IS NOT NULL AS steps, to_regclass('metric_tables') IS NOT NULL AS metrics",
    );
    const found = rows[0];
    if (!found.schema) {
      const theirs = [found.steps && 'steps', found.metrics && 'metric_tables'].filter(Boolean);
      if (theirs.length > 0)
        throw new ResultsError(
          'NOT_RESULTS_DB',
          `${this.where} has a table ${theirs.join(' and ')} but no strand_schema: it is not a Strand results database, and it was left untouched (give another database, or a schema of Strand's own with ?options=-c%20search_path%3DNAME)`,
        );
      return undefined;
    }
    const version = (
      await client.query<{ v: number | null }>('SELECT max(version) AS v FROM strand_schema')
    ).rows[0].v;
    if (version !== null && version > POSTGRES_SCHEMA_VERSION)
      throw new ResultsError(
        'NEWER_SCHEMA',
        `${this.where} was written by a newer Strand (results schema ${version}; this one knows ${POSTGRES_SCHEMA_VERSION})`,
      );
    return version ?? 0;
  }

  /** Inside a transaction: aligns the table's columns with `table`, then swaps the key's rows. */
  private async replaceMetrics(
    c: pg.PoolClient,
    key: MetricsKey,
    table: MetricsTable,
  ): Promise<void> {
    // Writers of one pipeline × step take turns until commit: creating the table, adding a
    // column or changing a type is then never raced.
    await c.query(`SELECT pg_advisory_xact_lock(${TABLE_LOCK}, $1)`, [
      tableLockId(key.pipeline, key.step),
    ]);
    const name =
      (await this.tableName(c, key.pipeline, key.step)) ??
      (await this.createTable(c, key.pipeline, key.step));
    // The key's old rows go first, so they neither block a retype nor count as data below.
    await c.query(`DELETE FROM ${quote(name)} WHERE "_execution" = $1 AND "_sample" = $2`, [
      key.execution,
      key.sample,
    ]);

    const existing = await this.columnTypes(c, name);
    const retype = new Map<string, MetricType>();
    const added: MetricColumn[] = [];
    const asText = new Set<number>();
    for (const [j, column] of table.columns.entries()) {
      const have = existing.get(column.name);
      if (have === undefined) {
        added.push(column);
        continue;
      }
      const firstValue = table.rows.findIndex((r) => r[j] !== null);
      if (firstValue < 0) continue; // Nulls fit any column.
      const merge = mergeColumnType(have, column.type);
      if (merge === 'keep') continue;
      if (await this.columnIsEmpty(c, name, column.name)) {
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
          `metrics of ${describeMetricsKey(key)}: column ${column.name} is ${TYPE_LABEL[have]} in ` +
            `${this.where} (table ${name}), but row ${firstValue} has ${JSON.stringify(value)}; ` +
            'nothing was written for this sample',
        );
      }
    }

    for (const [column, type] of retype) {
      await c.query(
        `ALTER TABLE ${quote(name)} ALTER COLUMN ${quote(column)} TYPE ${PG_TYPES[type]} USING ${quote(column)}::${PG_TYPES[type]}`,
      );
    }
    for (const column of added) {
      await c.query(
        `ALTER TABLE ${quote(name)} ADD COLUMN IF NOT EXISTS ${quote(column.name)} ${PG_TYPES[column.type]}`,
      );
    }
    if (table.rows.length === 0) return;

    const names = ['_execution', '_sample', '_row', ...table.columns.map((col) => col.name)];
    const perStatement = Math.max(1, Math.floor(MAX_PARAMETERS / names.length));
    for (let start = 0; start < table.rows.length; start += perStatement) {
      const chunk = table.rows.slice(start, start + perStatement);
      const params: unknown[] = [];
      const tuples = chunk.map((row, k) => {
        const values = asText.size
          ? row.map((v, j) => (asText.has(j) && v !== null ? String(v) : v))
          : row;
        const first = params.length;
        params.push(key.execution, key.sample, start + k, ...values);
        return `(${names.map((_, i) => `$${first + i + 1}`).join(', ')})`;
      });
      await c.query(
        `INSERT INTO ${quote(name)} (${names.map(quote).join(', ')}) VALUES ${tuples.join(', ')}`,
        params,
      );
    }
  }

  private async tableName(
    c: pg.PoolClient,
    pipeline: string,
    step: string,
  ): Promise<string | undefined> {
    const { rows } = await c.query<{ table_name: string }>(
      'SELECT table_name FROM metric_tables WHERE pipeline = $1 AND step = $2',
      [pipeline, step],
    );
    return rows[0]?.table_name;
  }

  /** Registers and creates the table of pipeline × step under a name no other pair has. */
  private async createTable(c: pg.PoolClient, pipeline: string, step: string): Promise<string> {
    // Two pairs may sanitise to one name: choosing it is one writer at a time.
    await c.query(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK}, 1)`);
    const base = baseTableName(pipeline, step);
    const taken = async (candidate: string): Promise<boolean> =>
      (
        await c.query(
          'SELECT 1 FROM pg_class WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AND relname = $1 ' +
            'UNION ALL SELECT 1 FROM metric_tables WHERE table_name = $1',
          [candidate],
        )
      ).rows.length > 0;
    let name = base;
    for (let n = 2; await taken(name); n++) name = `${base}_${n}`;
    await c.query('INSERT INTO metric_tables (pipeline, step, table_name) VALUES ($1, $2, $3)', [
      pipeline,
      step,
      name,
    ]);
    await c.query(
      `CREATE TABLE ${quote(name)} ("_execution" text NOT NULL, "_sample" text NOT NULL, ` +
        `"_row" integer NOT NULL, PRIMARY KEY ("_execution", "_sample", "_row"))`,
    );
    return name;
  }

  /** Metric columns of a table (the `_` key columns left out), in table order. */
  private async columnTypes(c: pg.PoolClient, name: string): Promise<Map<string, MetricType>> {
    const { rows } = await c.query<{ name: string; type: string }>(
      'SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute ' +
        'WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum',
      [quote(name)],
    );
    return new Map(
      rows.filter((r) => !r.name.startsWith('_')).map((r) => [r.name, metricType(r.type)]),
    );
  }

  private async columnIsEmpty(c: pg.PoolClient, table: string, column: string): Promise<boolean> {
    const { rows } = await c.query(
      `SELECT 1 FROM ${quote(table)} WHERE ${quote(column)} IS NOT NULL LIMIT 1`,
    );
    return rows.length === 0;
  }
}
