import Database from 'better-sqlite3';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Store } from '../../src/engine/store.js';
import { ResultsError } from '../../src/results/errors.js';
import { extractMetrics } from '../../src/results/extract.js';
import { SqliteResults } from '../../src/results/sqlite.js';
import { key, sinkConformance } from './conformance.js';

const root = mkdtempSync(join(tmpdir(), 'strand-results-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshPath = (): string => join(root, `case-${counter++}`, 'results.db');
const fixture = (name: string): string =>
  fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

sinkConformance('sqlite', () => SqliteResults.open(freshPath()));

/** A second, read-only connection: what a person running sqlite3 on the file would see. */
function inspect<T>(path: string, fn: (db: Database.Database) => T): T {
  const db = new Database(path, { readonly: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

describe('SqliteResults', () => {
  it('creates its own WAL database with a steps table, marked as Strand results', async () => {
    const home = join(root, `home-${counter++}`);
    const sink = SqliteResults.inHome(home);
    expect(sink.path).toBe(join(home, 'results.db'));
    await sink.upsertStep({
      execution: 'e',
      pipeline: 'p',
      sample: 'S1',
      step: 'qc',
      status: 'RUNNING',
    });
    inspect(sink.path, (db) => {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('application_id', { simple: true })).toBe(0x53545252);
      expect(db.prepare('SELECT execution, sample, step, status FROM steps').all()).toEqual([
        { execution: 'e', sample: 'S1', step: 'qc', status: 'RUNNING' },
      ]);
    });
    await sink.close();
    await sink.close(); // closing twice is harmless
  });

  it('keeps what was written across close and reopen', async () => {
    const path = freshPath();
    const first = SqliteResults.open(path);
    await first.upsertStep({
      execution: 'e',
      pipeline: 'p',
      sample: 'S1',
      step: 'qc',
      status: 'SUCCEEDED',
      exitCode: 0,
    });
    await first.putMetrics(key('S1'), { columns: [{ name: 'n50', type: 'integer' }], rows: [[1]] });
    await first.close();
    const again = SqliteResults.open(path);
    expect(await again.listSteps()).toEqual([
      { execution: 'e', pipeline: 'p', sample: 'S1', step: 'qc', status: 'SUCCEEDED', exitCode: 0 },
    ]);
    expect((await again.listMetrics('microbe-genome', 'assemble'))[0].values).toEqual({ n50: 1 });
    await again.close();
  });

  it('migrates a schema 1 database (no executor, image, vCPUs) keeping its rows', async () => {
    const path = freshPath();
    mkdirSync(dirname(path), { recursive: true });
    const v1 = new Database(path);
    v1.exec(`CREATE TABLE steps (execution TEXT NOT NULL, sample TEXT NOT NULL, step TEXT NOT NULL,
      pipeline TEXT NOT NULL, status TEXT NOT NULL, started_at TEXT, stopped_at TEXT,
      exit_code INTEGER, job_id TEXT, attempt INTEGER, output_location TEXT, log_location TEXT,
      error TEXT, cause TEXT, PRIMARY KEY (execution, sample, step)) STRICT;
      CREATE TABLE metric_tables (pipeline TEXT NOT NULL, step TEXT NOT NULL,
      table_name TEXT NOT NULL UNIQUE, PRIMARY KEY (pipeline, step)) STRICT;
      INSERT INTO steps (execution, sample, step, pipeline, status, exit_code)
      VALUES ('old', 'S1', 'qc', 'p', 'SUCCEEDED', 0);`);
    v1.pragma('application_id = 1398035026');
    v1.pragma('user_version = 1');
    v1.close();
    const db = SqliteResults.open(path);
    await db.upsertStep({
      execution: 'new',
      pipeline: 'p',
      sample: 'S1',
      step: 'qc',
      status: 'SUCCEEDED',
      executor: 'podman',
      image: 'strand/fastp:0.23',
      vcpus: 1.5,
      memoryMiB: 2048,
      cpuSeconds: 12.25,
      peakMemoryMiB: 310.5,
    });
    expect(await db.listSteps()).toEqual([
      {
        execution: 'old',
        pipeline: 'p',
        sample: 'S1',
        step: 'qc',
        status: 'SUCCEEDED',
        exitCode: 0,
      },
      {
        execution: 'new',
        pipeline: 'p',
        sample: 'S1',
        step: 'qc',
        status: 'SUCCEEDED',
        executor: 'podman',
        image: 'strand/fastp:0.23',
        vcpus: 1.5,
        memoryMiB: 2048,
        cpuSeconds: 12.25,
        peakMemoryMiB: 310.5,
      },
    ]);
    // The step's history: rows that say their vCPUs, the latest first.
    expect((await db.stepHistory('p', 'qc', 10)).map((r) => r.execution)).toEqual(['new']);
    await db.close();
    const check = new Database(path, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(4);
    check.close();
  });
  it('two connections to one file see each other’s writes', async () => {
    const path = freshPath();
    const a = SqliteResults.open(path);
    const b = SqliteResults.open(path);
    await a.upsertStep({
      execution: 'e',
      pipeline: 'p',
      sample: 'S1',
      step: 'qc',
      status: 'RUNNING',
    });
    await b.upsertStep({
      execution: 'e',
      pipeline: 'p',
      sample: 'S1',
      step: 'qc',
      status: 'SUCCEEDED',
    });
    await b.putMetrics(key('S1'), { columns: [{ name: 'x', type: 'integer' }], rows: [[1]] });
    await a.putMetrics(key('S2'), { columns: [{ name: 'y', type: 'text' }], rows: [['b']] });
    expect((await a.listSteps()).map((r) => r.status)).toEqual(['SUCCEEDED']);
    expect((await b.listMetrics('microbe-genome', 'assemble')).map((r) => r.values)).toEqual([
      { x: 1, y: null },
      { x: null, y: 'b' },
    ]);
    await a.close();
    await b.close();
  });

  it('names one table per pipeline × step safely and types its columns INTEGER / REAL / TEXT', async () => {
    const path = freshPath();
    const sink = SqliteResults.open(path);
    await sink.putMetrics(key('S1', 'annotate.genes'), {
      columns: [
        { name: 'genes', type: 'integer' },
        { name: 'coding_density', type: 'real' },
        { name: 'translation_table', type: 'text' },
      ],
      rows: [[4321, 0.874, '11']],
    });
    // Names that sanitise alike, and ones with quotes, still get tables of their own.
    await sink.putMetrics(
      { ...key('S1', 'annotate-genes') },
      { columns: [{ name: 'a', type: 'integer' }], rows: [[1]] },
    );
    await sink.putMetrics(
      { ...key('S1', 'x" ; DROP TABLE steps; --'), pipeline: 'Robert"); --' },
      { columns: [{ name: 'a', type: 'integer' }], rows: [[2]] },
    );
    await sink.close();

    inspect(path, (db) => {
      expect(
        db.prepare('SELECT pipeline, step, table_name FROM metric_tables ORDER BY rowid').all(),
      ).toEqual([
        {
          pipeline: 'microbe-genome',
          step: 'annotate.genes',
          table_name: 'm_microbe_genome__annotate_genes',
        },
        {
          pipeline: 'microbe-genome',
          step: 'annotate-genes',
          table_name: 'm_microbe_genome__annotate_genes_2',
        },
        {
          pipeline: 'Robert"); --',
          step: 'x" ; DROP TABLE steps; --',
          table_name: 'm_robert__x_drop_table_steps',
        },
      ]);
      expect(
        db
          .prepare("SELECT name, type FROM pragma_table_info('m_microbe_genome__annotate_genes')")
          .all(),
      ).toEqual([
        { name: '_execution', type: 'TEXT' },
        { name: '_sample', type: 'TEXT' },
        { name: '_row', type: 'INTEGER' },
        { name: 'genes', type: 'INTEGER' },
        { name: 'coding_density', type: 'REAL' },
        { name: 'translation_table', type: 'TEXT' },
      ]);
      expect(
        db
          .prepare(
            'SELECT typeof(genes) AS g, typeof(coding_density) AS c, typeof(translation_table) AS t FROM m_microbe_genome__annotate_genes',
          )
          .get(),
      ).toEqual({ g: 'integer', c: 'real', t: 'text' });
      expect(
        db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'steps'").get(),
      ).toEqual({ n: 1 });
    });
  });

  it('a real column stores whole numbers as REAL; widening converts the stored integers', async () => {
    const path = freshPath();
    const sink = SqliteResults.open(path);
    await sink.putMetrics(key('S1'), {
      columns: [
        { name: 'avg_len', type: 'integer' },
        { name: 'n', type: 'integer' },
      ],
      rows: [[150, 1]],
    });
    inspect(path, (db) => {
      expect(
        db.prepare('SELECT typeof(avg_len) AS t FROM m_microbe_genome__assemble').all(),
      ).toEqual([{ t: 'integer' }]);
    });
    await sink.putMetrics(key('S2'), {
      columns: [{ name: 'avg_len', type: 'real' }],
      rows: [[149.8]],
    });
    await sink.putMetrics(key('S3'), {
      columns: [
        { name: 'avg_len', type: 'real' },
        { name: 'n', type: 'integer' },
      ],
      rows: [[151, 3]],
    });
    await sink.close();
    inspect(path, (db) => {
      expect(
        db
          .prepare(
            "SELECT name, type FROM pragma_table_info('m_microbe_genome__assemble') WHERE name NOT LIKE '\\_%' ESCAPE '\\'",
          )
          .all(),
      ).toEqual([
        { name: 'avg_len', type: 'REAL' },
        { name: 'n', type: 'INTEGER' },
      ]);
      expect(
        db
          .prepare(
            'SELECT _sample AS s, avg_len AS v, typeof(avg_len) AS t, typeof(n) AS tn FROM m_microbe_genome__assemble ORDER BY _sample',
          )
          .all(),
      ).toEqual([
        { s: 'S1', v: 150, t: 'real', tn: 'integer' },
        { s: 'S2', v: 149.8, t: 'real', tn: 'null' },
        { s: 'S3', v: 151, t: 'real', tn: 'integer' },
      ]);
    });
  });

  it('a type conflict names the database file and table', async () => {
    const path = freshPath();
    const sink = SqliteResults.open(path);
    await sink.putMetrics(key('S1'), { columns: [{ name: 'n50', type: 'real' }], rows: [[1.5]] });
    const err = await sink
      .putMetrics(key('S2'), { columns: [{ name: 'n50', type: 'text' }], rows: [['abc']] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResultsError);
    expect((err as ResultsError).message).toBe(
      `metrics of pipeline "microbe-genome", step "assemble", sample "S2" (execution "exec-1"): column n50 is REAL in ${path} (table m_microbe_genome__assemble), but row 0 has "abc"; nothing was written for this sample`,
    );
    await sink.close();
  });

  it('stores what the extractor reads from a fastp report, typed', async () => {
    const path = freshPath();
    const sink = SqliteResults.open(path);
    const table = extractMetrics(fixture('fastp.json'), {
      format: 'json',
      columns: {
        'summary.before_filtering.total_reads': 'integer',
        'summary.after_filtering.total_reads': 'integer',
        'summary.after_filtering.q30_rate': 'real',
        'duplication.rate': 'real',
        'summary.fastp_version': 'text',
      },
    });
    await sink.putMetrics(key('S1', 'qc'), table);
    await sink.close();
    inspect(path, (db) => {
      expect(
        db
          .prepare(
            `SELECT summary_after_filtering_total_reads AS reads, typeof(summary_after_filtering_total_reads) AS rt,
                    duplication_rate AS dup, typeof(duplication_rate) AS dt, summary_fastp_version AS v
             FROM m_microbe_genome__qc`,
          )
          .get(),
      ).toEqual({ reads: 2401876, rt: 'integer', dup: 0.021345, dt: 'real', v: '0.23.4' });
    });
  });

  describe('refuses a file that is not a Strand results database, leaving it byte-identical', () => {
    const cases: [string, (path: string) => void, RegExp][] = [
      [
        'a text file',
        (p) => writeFileSync(p, 'sample,reads\nS1,100\n'),
        /is not a Strand results database \(not an SQLite file\); it was left untouched/,
      ],
      [
        'another application’s SQLite database',
        (p) => {
          const db = new Database(p);
          db.exec(
            "CREATE TABLE steps (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO steps (name) VALUES ('mine')",
          );
          db.close();
        },
        /is an SQLite database of another application \(application_id 0, 1 tables\)/,
      ],
      [
        'an SQLite database with another application id and no tables',
        (p) => {
          const db = new Database(p);
          db.pragma('application_id = 1234');
          db.close();
        },
        /of another application \(application_id 1234\), not a Strand results database/,
      ],
      [
        'Strand’s engine database',
        (p) => {
          Store.open(join(p, '..')).close();
        },
        /is Strand's engine database \(strand\.db\), not a results database; it was left untouched/,
      ],
      [
        'a results database from a newer Strand',
        (p) => {
          const db = new Database(p);
          db.pragma('application_id = 1398035026'); // 0x53545252
          db.pragma('user_version = 99');
          db.exec('CREATE TABLE steps (x)');
          db.close();
        },
        /was written by a newer Strand \(results schema 99; this one knows 4\)/,
      ],
    ];
    it.each(cases)('%s', (_what, make, message) => {
      const dir = join(root, `foreign-${counter++}`);
      mkdirSync(dir);
      const path = join(dir, 'strand.db');
      make(path);
      const before = readFileSync(path);
      let err: unknown;
      try {
        SqliteResults.open(path);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ResultsError);
      expect((err as ResultsError).code).toMatch(/^(NOT_RESULTS_DB|NEWER_SCHEMA)$/);
      expect((err as ResultsError).message).toMatch(message);
      expect((err as ResultsError).message).toContain(path);
      expect(readFileSync(path).equals(before)).toBe(true);
      expect(existsSync(`${path}-wal`)).toBe(false);
      expect(existsSync(`${path}-journal`)).toBe(false);
    });

    it('an empty file is an empty database: it becomes the results database', async () => {
      const path = freshPath();
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, '');
      const sink = SqliteResults.open(path);
      expect(await sink.listSteps()).toEqual([]);
      await sink.close();
    });
  });
});
