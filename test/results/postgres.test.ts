/**
 * The Postgres results sink against a real server the file starts (postgres-server.ts): the
 * shared conformance suite on a fresh database per test, then what is Postgres's own —
 * migrations, a newer schema refused, concurrent writers, column types, secrets kept out of
 * messages — and `strand run` / `strand results` with `--results postgres://…`.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PostgresResults, POSTGRES_SCHEMA_VERSION } from '../../src/results/postgres.js';
import {
  heldPipeline,
  inlinePipeline,
  processesWith,
  releaseHolders,
  strand,
  waitUntil,
} from '../pipeline/cli.js';
import { key, rejection, sinkConformance } from './conformance.js';
import {
  postgresMissing,
  postgresReady,
  startPostgres,
  type PostgresServer,
} from './postgres-server.js';

const dbName = (url: string): string => new URL(url).pathname.slice(1);

describe.skipIf(!postgresReady)(
  postgresReady ? 'Postgres results' : `Postgres results (skipped: ${postgresMissing})`,
  () => {
    let server: PostgresServer;
    const sinks: PostgresResults[] = [];
    /** A sink on `url`, closed after the test. */
    const open = (url: string): PostgresResults => {
      const sink = PostgresResults.open(url);
      sinks.push(sink);
      return sink;
    };

    beforeAll(async () => {
      server = await startPostgres();
    }, 120_000);
    afterEach(async () => {
      releaseHolders();
      for (const sink of sinks.splice(0)) await sink.close();
    });
    afterAll(async () => {
      await server?.stop();
    });

    sinkConformance('postgres', async () => PostgresResults.open(await server.createDatabase()));

    describe('PostgresResults', () => {
      it('records each migration with its version; reopening changes nothing', async () => {
        const url = await server.createDatabase();
        await open(url).opened();
        await open(url).opened();
        const applied = await server.query<{ version: number; description: string }>(
          dbName(url),
          'SELECT version, description FROM strand_schema ORDER BY version',
        );
        expect(applied.map((m) => m.version)).toEqual(
          Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_, i) => i + 1),
        );
        expect(applied[0].description).toMatch(/steps/);
        const tables = await server.query<{ name: string }>(
          dbName(url),
          "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        );
        expect(tables.map((t) => t.name)).toEqual(['metric_tables', 'steps', 'strand_schema']);
      });

      it('types step columns: times timestamptz, resources bigint and double precision', async () => {
        const url = await server.createDatabase();
        await open(url).upsertStep({
          execution: 'e',
          pipeline: 'p',
          sample: 'S1',
          step: 'qc',
          status: 'SUCCEEDED',
          startedAt: '2026-01-05T10:00:00.000Z',
          memoryMiB: 2048,
          vcpus: 1.5,
        });
        const types = await server.query<{ column_name: string; data_type: string }>(
          dbName(url),
          "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'steps' " +
            "AND column_name IN ('started_at', 'memory_mib', 'vcpus', 'exit_code', 'peak_memory_mib') ORDER BY 1",
        );
        expect(types).toEqual([
          { column_name: 'exit_code', data_type: 'bigint' },
          { column_name: 'memory_mib', data_type: 'bigint' },
          { column_name: 'peak_memory_mib', data_type: 'double precision' },
          { column_name: 'started_at', data_type: 'timestamp with time zone' },
          { column_name: 'vcpus', data_type: 'double precision' },
        ]);
        const [row] = await server.query<{ t: Date }>(
          dbName(url),
          'SELECT started_at AS t FROM steps',
        );
        expect(row.t.toISOString()).toBe('2026-01-05T10:00:00.000Z');
      });

      it('migrates a schema 1 database (no peak memory) keeping its rows', async () => {
        const url = await server.createDatabase();
        await open(url).opened();
        // As schema 1 left it: no peak_memory_mib, one row.
        await server.query(dbName(url), 'ALTER TABLE steps DROP COLUMN peak_memory_mib');
        await server.query(dbName(url), 'DELETE FROM strand_schema WHERE version > 1');
        await server.query(
          dbName(url),
          "INSERT INTO steps (execution, sample, step, pipeline, status, cpu_seconds) VALUES ('old', 'S1', 'qc', 'p', 'SUCCEEDED', 2.5)",
        );
        const sink = open(url);
        await sink.upsertStep({
          execution: 'new',
          pipeline: 'p',
          sample: 'S1',
          step: 'qc',
          status: 'SUCCEEDED',
          cpuSeconds: 4,
          peakMemoryMiB: 812.5,
        });
        expect(await sink.listSteps()).toEqual([
          {
            execution: 'old',
            pipeline: 'p',
            sample: 'S1',
            step: 'qc',
            status: 'SUCCEEDED',
            cpuSeconds: 2.5,
          },
          {
            execution: 'new',
            pipeline: 'p',
            sample: 'S1',
            step: 'qc',
            status: 'SUCCEEDED',
            cpuSeconds: 4,
            peakMemoryMiB: 812.5,
          },
        ]);
        const applied = await server.query<{ version: number }>(
          dbName(url),
          'SELECT version FROM strand_schema ORDER BY 1',
        );
        expect(applied.map((r) => r.version)).toEqual([1, 2]);
      });

      it('refuses a database written by a newer Strand, leaving it untouched', async () => {
        const url = await server.createDatabase();
        await open(url).opened();
        await server.query(
          dbName(url),
          "INSERT INTO strand_schema (version, description) VALUES (99, 'from the future')",
        );
        const err = await rejection(open(url).listSteps());
        expect(err.code).toBe('NEWER_SCHEMA');
        expect(err.message).toBe(
          `postgres://strand_test:***@127.0.0.1:${server.port}/${dbName(url)} was written by a newer Strand (results schema 99; this one knows ${POSTGRES_SCHEMA_VERSION})`,
        );
        expect(
          await server.query(dbName(url), 'SELECT version FROM strand_schema ORDER BY 1'),
        ).toEqual([
          ...Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_, i) => ({ version: i + 1 })),
          { version: 99 },
        ]);
      });

      it('refuses a database with tables of another application, leaving them untouched', async () => {
        const url = await server.createDatabase();
        await server.query(dbName(url), 'CREATE TABLE steps (id integer, name text)');
        const err = await rejection(open(url).opened());
        expect(err.code).toBe('NOT_RESULTS_DB');
        expect(err.message).toMatch(/has a table steps but no strand_schema/);
        const tables = await server.query(
          dbName(url),
          "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
        );
        expect(tables).toEqual([{ tablename: 'steps' }]);
      });

      it('puts its tables in the schema the URL sets with options=-c search_path', async () => {
        const url = await server.createDatabase();
        await server.query(dbName(url), 'CREATE SCHEMA lab');
        // Another application's steps table in public is not in the way.
        await server.query(dbName(url), 'CREATE TABLE public.steps (id integer)');
        const sink = open(`${url}?options=${encodeURIComponent('-c search_path=lab')}`);
        await sink.upsertStep({
          execution: 'e',
          pipeline: 'p',
          sample: 'S1',
          step: 'qc',
          status: 'RUNNING',
        });
        await sink.putMetrics(key('S1'), {
          columns: [{ name: 'n50', type: 'integer' }],
          rows: [[1]],
        });
        const tables = await server.query<{ schemaname: string; tablename: string }>(
          dbName(url),
          "SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN ('lab', 'public') ORDER BY 1, 2",
        );
        expect(tables.map((t) => `${t.schemaname}.${t.tablename}`)).toEqual([
          'lab.m_microbe_genome__assemble',
          'lab.metric_tables',
          'lab.steps',
          'lab.strand_schema',
          'public.steps',
        ]);
      });

      it('two sinks adding the same new columns at once both succeed', async () => {
        const url = await server.createDatabase();
        const a = open(url);
        const b = open(url);
        await Promise.all([a.opened(), b.opened()]);
        // Each round both writers bring the same new column (and, first, the same new table).
        for (let round = 0; round < 8; round++) {
          const columns = [
            { name: 'n50', type: 'integer' as const },
            { name: `metric_${round}`, type: round % 2 ? ('real' as const) : ('text' as const) },
          ];
          const value = round % 2 ? round + 0.5 : `v${round}`;
          await Promise.all([
            a.putMetrics(key(`A${round}`), { columns, rows: [[round, value]] }),
            b.putMetrics(key(`B${round}`), { columns, rows: [[round, value]] }),
          ]);
        }
        const rows = await a.listMetrics('microbe-genome', 'assemble');
        expect(rows).toHaveLength(16);
        expect(Object.keys(rows[0].values)).toEqual([
          'n50',
          ...Array.from({ length: 8 }, (_, i) => `metric_${i}`),
        ]);
        expect(rows.find((r) => r.sample === 'B3')!.values).toMatchObject({
          n50: 3,
          metric_3: 3.5,
        });
        const tables = await server.query(dbName(url), 'SELECT table_name FROM metric_tables');
        expect(tables).toEqual([{ table_name: 'm_microbe_genome__assemble' }]);
      });

      it('a re-run writes the same key once: one step row, one set of metrics rows', async () => {
        const url = await server.createDatabase();
        const row = {
          execution: 'exec-1',
          pipeline: 'microbe-genome',
          sample: 'S1',
          step: 'assemble',
          status: 'SUCCEEDED' as const,
          exitCode: 0,
        };
        const metrics = {
          columns: [{ name: 'n50', type: 'integer' as const }],
          rows: [[133000], [98123]],
        };
        // Two engines recording the same step at once, then a redrive recording it again.
        const [a, b] = [open(url), open(url)];
        await Promise.all([a.upsertStep(row), b.upsertStep(row)]);
        await Promise.all([a.putMetrics(key('S1'), metrics), b.putMetrics(key('S1'), metrics)]);
        await a.upsertStep(row);
        await a.putMetrics(key('S1'), metrics);
        expect(await server.query(dbName(url), 'SELECT count(*)::int AS n FROM steps')).toEqual([
          { n: 1 },
        ]);
        expect(
          await server.query(
            dbName(url),
            'SELECT count(*)::int AS n FROM m_microbe_genome__assemble',
          ),
        ).toEqual([{ n: 2 }]);
      });

      it('types metric columns bigint, double precision and text; widening converts in place', async () => {
        const url = await server.createDatabase();
        const sink = open(url);
        await sink.putMetrics(key('S1'), {
          columns: [
            { name: 'genes', type: 'integer' },
            { name: 'avg_len', type: 'integer' },
            { name: 'table', type: 'text' },
          ],
          rows: [[4321, 150, '11']],
        });
        await sink.putMetrics(key('S2'), {
          columns: [{ name: 'avg_len', type: 'real' }],
          rows: [[149.8]],
        });
        const types = await server.query<{ attname: string; t: string }>(
          dbName(url),
          "SELECT attname, format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'm_microbe_genome__assemble'::regclass AND attnum > 0 ORDER BY attnum",
        );
        expect(types.map((r) => [r.attname, r.t])).toEqual([
          ['_execution', 'text'],
          ['_sample', 'text'],
          ['_row', 'integer'],
          ['genes', 'bigint'],
          ['avg_len', 'double precision'],
          ['table', 'text'],
        ]);
        expect((await sink.listMetrics('microbe-genome', 'assemble')).map((r) => r.values)).toEqual(
          [
            { genes: 4321, avg_len: 150, table: '11' },
            { genes: null, avg_len: 149.8, table: null },
          ],
        );
        const err = await rejection(
          sink.putMetrics(key('S3'), { columns: [{ name: 'genes', type: 'text' }], rows: [['x']] }),
        );
        expect(err.message).toContain(
          `column genes is INTEGER (bigint) in postgres://strand_test:***@127.0.0.1:${server.port}/${dbName(url)} (table m_microbe_genome__assemble)`,
        );
      });

      it('names tables safely: quotes, look-alike names and names past 63 bytes', async () => {
        const url = await server.createDatabase();
        const sink = open(url);
        const long = 'a-very-long-step-name-that-goes-on-and-on-past-what-postgres-allows';
        const pairs: [string, string][] = [
          ['microbe-genome', 'annotate.genes'],
          ['microbe-genome', 'annotate-genes'],
          ['Robert"); --', 'x" ; DROP TABLE steps; --'],
          ['microbe-genome', `${long}-1`],
          ['microbe-genome', `${long}-2`],
        ];
        for (const [i, [pipeline, step]] of pairs.entries())
          await sink.putMetrics(
            { pipeline, step, execution: 'e', sample: 'S1' },
            { columns: [{ name: 'a', type: 'integer' }], rows: [[i]] },
          );
        const names = (
          await server.query<{ table_name: string }>(
            dbName(url),
            'SELECT table_name FROM metric_tables ORDER BY table_name',
          )
        ).map((r) => r.table_name);
        expect(new Set(names).size).toBe(5);
        expect(names).toContain('m_microbe_genome__annotate_genes');
        expect(names).toContain('m_microbe_genome__annotate_genes_2');
        expect(names).toContain('m_robert__x_drop_table_steps');
        for (const name of names) expect(name.length).toBeLessThanOrEqual(63);
        for (const [i, [pipeline, step]] of pairs.entries())
          expect((await sink.listMetrics(pipeline, step))[0].values).toEqual({ a: i });
        expect(
          await server.query(dbName(url), "SELECT to_regclass('steps') IS NOT NULL AS here"),
        ).toEqual([{ here: true }]);
      });

      describe('a database that cannot be used: CONNECT_FAILED naming it, the password masked', () => {
        it('a wrong password', async () => {
          const url = await server.createDatabase();
          const wrong = 'not-the-password-4f1c9a';
          const err = await rejection(
            open(url.replace(server.password, wrong)).upsertStep({
              execution: 'e',
              pipeline: 'p',
              sample: 'S1',
              step: 'qc',
              status: 'RUNNING',
            }),
          );
          expect(err.code).toBe('CONNECT_FAILED');
          expect(err.message).toContain(
            `postgres://strand_test:***@127.0.0.1:${server.port}/${dbName(url)}`,
          );
          expect(err.message).toMatch(/password authentication failed for user "strand_test"/);
          expect(err.message).toMatch(/check the password of user "strand_test"/);
          for (const secret of [wrong, server.password]) {
            expect(err.message).not.toContain(secret);
            expect(err.stack ?? '').not.toContain(secret);
          }
        });

        it('no such database', async () => {
          const err = await rejection(open(server.url('nowhere')).opened());
          expect(err.code).toBe('CONNECT_FAILED');
          expect(err.message).toMatch(
            /database "nowhere" does not exist \(create it \(createdb -h 127\.0\.0\.1 -p \d+ nowhere\)/,
          );
          expect(err.message).not.toContain(server.password);
        });

        it('nothing listening on the port', async () => {
          const url = `postgres://strand_test:${server.password}@127.0.0.1:1/db`;
          const err = await rejection(open(url).listSteps());
          expect(err.code).toBe('CONNECT_FAILED');
          expect(err.message).toMatch(
            /^cannot connect to the results database postgres:\/\/strand_test:\*\*\*@127\.0\.0\.1:1\/db: .*ECONNREFUSED.*\(is the server running and listening on 127\.0\.0\.1:1\?/,
          );
          expect(err.message).not.toContain(server.password);
        });

        it('a URL that is not one', async () => {
          const err = await rejection(
            Promise.resolve().then(() => PostgresResults.open('postgres://u:pa/s@s@[nope/db')),
          );
          expect(err.code).toBe('CONNECT_FAILED');
          expect(err.message).toMatch(/not a connection URL/);
          expect(err.message).toContain('postgres://u:***@[nope/db');
          expect(err.message).not.toContain('pa/s');
        });
      });
    });

    describe('strand run and strand results with --results postgres://…', () => {
      const pipeline = () =>
        inlinePipeline([
          'name: pg-run',
          'samples: [ { id: A }, { id: BB } ]',
          'steps:',
          '  count:',
          '    image: debian:bookworm-slim',
          '    command:',
          '      - awk',
          '      - -v',
          '      - s=$SAMPLE',
          '      - \'BEGIN { print s "\\t" length(s) * 10 "\\t" length(s) / 4 > "n.tsv" }\'',
          '    outputs: { COUNTS: n.tsv }',
          'results:',
          '  count: { from: n.tsv, format: tsv, header: [name, reads, gc] }',
        ]);

      it('records the run in Postgres, not in the home, and reads it back', async () => {
        const url = await server.createDatabase();
        const p = pipeline();
        const run = await strand('run', p.file, '--home', p.home, '--results', url, '--name', 'r1');
        expect(run.code, run.err).toBe(0);
        expect(run.err).toContain(
          `results: strand results --results postgres://strand_test:***@127.0.0.1:${server.port}/${dbName(url)} --pipeline pg-run`,
        );
        expect(run.err).not.toContain(server.password);
        expect(existsSync(join(p.home, 'results.db'))).toBe(false);

        const steps = await strand(
          'results',
          '--home',
          p.home,
          '--results',
          url,
          '--format',
          'json',
        );
        expect(steps.code, steps.err).toBe(0);
        expect(
          (JSON.parse(steps.out) as { sample: string; step: string; status: string }[])
            .map((r) => `${r.sample}/${r.step}/${r.status}`)
            .sort(),
        ).toEqual(['A/count/SUCCEEDED', 'BB/count/SUCCEEDED']);
        const metrics = await strand(
          'results',
          '--home',
          p.home,
          '--results',
          url,
          '--pipeline',
          'pg-run',
          '--step',
          'count',
          '--metrics',
          '--format',
          'json',
        );
        expect(metrics.code, metrics.err).toBe(0);
        expect(JSON.parse(metrics.out)).toEqual([
          { execution: 'r1', sample: 'A', name: 'A', reads: 10, gc: 0.25 },
          { execution: 'r1', sample: 'BB', name: 'BB', reads: 20, gc: 0.5 },
        ]);
        const [types] = await server.query<{ reads: string; gc: string }>(
          dbName(url),
          'SELECT pg_typeof(reads)::text AS reads, pg_typeof(gc)::text AS gc FROM m_pg_run__count LIMIT 1',
        );
        expect(types).toEqual({ reads: 'bigint', gc: 'double precision' });

        // A second run is served from the cache: its rows are its own, the first run's stay.
        const again = await strand(
          'run',
          p.file,
          '--home',
          p.home,
          '--results',
          url,
          '--name',
          'r2',
        );
        expect(again.code, again.err).toBe(0);
        expect(
          await server.query(
            dbName(url),
            'SELECT execution, status, count(*)::int AS n FROM steps GROUP BY 1, 2 ORDER BY 1',
          ),
        ).toEqual([
          { execution: 'r1', status: 'SUCCEEDED', n: 2 },
          { execution: 'r2', status: 'CACHED', n: 2 },
        ]);
      });

      it('takes the results database from a profile or config.yaml; status reads it', async () => {
        const url = await server.createDatabase();
        const p = pipeline();
        mkdirSync(p.home);
        writeFileSync(join(p.home, 'config.yaml'), `profiles:\n  lab: { results: '${url}' }\n`);
        const ran = await strand('run', p.file, '--home', p.home, '--profile', 'lab');
        expect(ran.code, ran.err).toBe(0);
        expect(ran.err).toContain('results: strand results --profile lab --pipeline pg-run');
        expect(existsSync(join(p.home, 'results.db'))).toBe(false);
        // Without the profile: the home's own results.db, which has nothing.
        expect((await strand('results', '--home', p.home)).err).toContain('no results yet');
        const byProfile = await strand('results', '--home', p.home, '--profile', 'lab');
        expect(byProfile.code, byProfile.err).toBe(0);
        expect(byProfile.out).toMatch(/A\s+count\s+SUCCEEDED/);

        writeFileSync(join(p.home, 'config.yaml'), `results: '${url}'\n`);
        const status = await strand('status', '--home', p.home, '--json');
        expect(status.code, status.err).toBe(0);
        expect(JSON.parse(status.out)).toMatchObject([{ status: 'SUCCEEDED', succeeded: 2 }]);
      });

      it('a server that goes away mid-run stops the engine; strand resume records the rest', async () => {
        const url = await server.createDatabase();
        const db = dbName(url);
        const p = heldPipeline('pg-outage');
        const home = join(p.dir, 'home');
        mkdirSync(home);
        // In config.yaml, as for any run that is resumed later: resume takes no --results.
        writeFileSync(join(home, 'config.yaml'), `results: '${url}'\n`);
        const run = strand('run', p.file, '--home', home);
        await waitUntil('both held jobs to run', () => processesWith(p.token, 'tail').length === 2);
        await waitUntil(`database ${db} to be taken away`, async () => {
          await server.query(
            'postgres',
            'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1',
            [db],
          );
          return server
            .query('postgres', `ALTER DATABASE ${db} RENAME TO ${db}_away`)
            .then(() => true)
            .catch(() => false);
        });
        p.release();
        const stopped = await run;
        expect(stopped.code, stopped.err).toBe(1);
        expect(stopped.err).toContain(
          `the engine stopped: cannot connect to the results database postgres://strand_test:***@127.0.0.1:${server.port}/${db}: database "${db}" does not exist`,
        );
        expect(stopped.err).not.toContain(server.password);

        await server.query('postgres', `ALTER DATABASE ${db}_away RENAME TO ${db}`);
        const resumed = await strand('resume', '--home', home);
        expect(resumed.code, resumed.err).toBe(0);
        const rows = await strand('results', '--home', home, '--format', 'json');
        expect(
          (JSON.parse(rows.out) as { sample: string; step: string; status: string }[])
            .map((r) => `${r.sample}/${r.step}/${r.status}`)
            .sort(),
        ).toEqual([
          'A/after/SUCCEEDED',
          'A/wait/SUCCEEDED',
          'B/after/SUCCEEDED',
          'B/wait/SUCCEEDED',
        ]);
      });

      it('a run for another engine of the home is refused when its --results differ (exit 2)', async () => {
        const url = await server.createDatabase();
        const p = heldPipeline('pg-handover');
        const home = join(p.dir, 'home');
        const owner = strand('run', p.file, '--home', home, '--name', 'owner');
        await waitUntil('both held jobs to run', () => processesWith(p.token, 'tail').length === 2);
        const second = await strand('run', p.file, '--home', home, '--results', url);
        expect(second.code, second.err).toBe(2);
        expect(second.err).toContain(
          `another Strand engine owns ${home} and records results in ${join(home, 'results.db')}, not in postgres://strand_test:***@127.0.0.1:${server.port}/${dbName(url)} (from --results)`,
        );
        expect(second.err).not.toContain(server.password);
        p.release();
        expect((await owner).code).toBe(0);
      });

      it('a wrong password is bad input (exit 2) naming the database, the password masked', async () => {
        const url = await server.createDatabase();
        const wrong = url.replace(server.password, 'wrong-password-77e1');
        const p = pipeline();
        for (const args of [
          ['results', '--home', p.home, '--results', wrong],
          ['run', p.file, '--home', p.home, '--results', wrong],
        ]) {
          const r = await strand(...args);
          expect(r.code, args[0]).toBe(2);
          expect(r.err).toContain(
            `cannot connect to the results database postgres://strand_test:***@127.0.0.1:${server.port}/${dbName(url)}: password authentication failed`,
          );
          expect(r.err).not.toContain('wrong-password-77e1');
        }
        // Refused before any job ran.
        expect(existsSync(join(p.home, 'work'))).toBe(false);
      });
    });
  },
);
