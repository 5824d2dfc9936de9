/**
 * The behaviour every results sink must show (SQLite, Postgres). Each test gets a fresh, empty
 * sink from `makeSink`; the suite closes it afterwards.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ResultsError } from '../../src/results/errors.js';
import type {
  MetricsKey,
  MetricsTable,
  ResultsSink,
  StepResultInfo,
  StepResultUpsert,
} from '../../src/results/sink.js';
import { AGGREGATE_SAMPLE } from '../../src/results/sink.js';

const base = { execution: 'exec-1', pipeline: 'microbe-genome' } as const;

/** The key of one sample's metrics of a step (the assembly of exec-1 unless said). */
export const key = (sample: string, step = 'assemble', execution = 'exec-1'): MetricsKey => ({
  pipeline: 'microbe-genome',
  step,
  execution,
  sample,
});

/** What `promise` rejected with, which must be a ResultsError. */
export async function rejection(promise: Promise<unknown>): Promise<ResultsError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ResultsError);
  return err as ResultsError;
}

/** Runs the shared results sink behaviour suite against a backend. */
export function sinkConformance(
  name: string,
  makeSink: () => ResultsSink | Promise<ResultsSink>,
): void {
  describe(`results sink conformance: ${name}`, () => {
    const open: ResultsSink[] = [];
    const fresh = async (): Promise<ResultsSink> => {
      const sink = await makeSink();
      open.push(sink);
      return sink;
    };
    afterEach(async () => {
      for (const sink of open.splice(0)) await sink.close();
    });

    describe('steps', () => {
      it('upserting the same key twice keeps one row and merges the fields', async () => {
        const sink = await fresh();
        const running: StepResultInfo = {
          ...base,
          sample: 'S1',
          step: 'qc',
          status: 'RUNNING',
          startedAt: '2026-01-05T10:00:00.000Z',
          jobId: 'job-qc-S1-1',
          attempt: 1,
          logLocation: 'file:///home/.strand/logs/job-qc-S1-1.log',
        };
        await sink.upsertStep(running);
        await sink.upsertStep(running);
        expect(await sink.listSteps()).toEqual([running]);

        await sink.upsertStep({
          ...base,
          sample: 'S1',
          step: 'qc',
          status: 'SUCCEEDED',
          stoppedAt: '2026-01-05T10:02:30.000Z',
          exitCode: 0,
          outputLocation: 'file:///home/.strand/store/microbe-genome/S1/qc/',
        });
        expect(await sink.listSteps()).toEqual([
          {
            ...running,
            status: 'SUCCEEDED',
            stoppedAt: '2026-01-05T10:02:30.000Z',
            exitCode: 0,
            outputLocation: 'file:///home/.strand/store/microbe-genome/S1/qc/',
          },
        ]);
      });

      it('records a FAILED step with its exit code, error and cause; null clears them on a retry', async () => {
        const sink = await fresh();
        const failed: StepResultInfo = {
          ...base,
          sample: 'S7',
          step: 'assemble',
          status: 'FAILED',
          startedAt: '2026-01-05T10:00:00.000Z',
          stoppedAt: '2026-01-05T10:00:04.000Z',
          exitCode: 137,
          attempt: 1,
          error: 'States.TaskFailed',
          cause: 'OutOfMemoryError: job used more than 4096 MiB',
        };
        await sink.upsertStep(failed);
        expect(await sink.listSteps({ status: 'FAILED' })).toEqual([failed]);

        await sink.upsertStep({
          ...base,
          sample: 'S7',
          step: 'assemble',
          status: 'RUNNING',
          attempt: 2,
          stoppedAt: null,
          exitCode: null,
          error: null,
          cause: null,
        });
        expect(await sink.listSteps()).toEqual([
          {
            ...base,
            sample: 'S7',
            step: 'assemble',
            status: 'RUNNING',
            startedAt: '2026-01-05T10:00:00.000Z',
            attempt: 2,
          },
        ]);
      });

      it('gives a time back as the same instant, whatever offset it was written with', async () => {
        const sink = await fresh();
        await sink.upsertStep({
          ...base,
          sample: 'S1',
          step: 'qc',
          status: 'SUCCEEDED',
          startedAt: '2026-01-05T12:00:00+02:00',
          stoppedAt: '2026-01-05T10:00:01.250Z',
        });
        const [row] = await sink.listSteps();
        expect(Date.parse(row.startedAt!)).toBe(Date.parse('2026-01-05T10:00:00Z'));
        expect(Date.parse(row.stoppedAt!)).toBe(Date.parse('2026-01-05T10:00:01.250Z'));
      });

      it('gives the history of a step: SUCCEEDED rows that say their vCPUs, the latest first', async () => {
        const sink = await fresh();
        const ran = (execution: string, stoppedAt: string, more: Partial<StepResultUpsert> = {}) =>
          sink.upsertStep({
            execution,
            pipeline: 'microbe-genome',
            sample: 'S1',
            step: 'assemble',
            status: 'SUCCEEDED',
            startedAt: '2026-01-05T08:00:00.000Z',
            stoppedAt,
            vcpus: 2,
            memoryMiB: 4096,
            cpuSeconds: 3.5,
            ...more,
          });
        await ran('e1', '2026-01-05T10:05:00.000Z');
        await ran('e2', '2026-01-05T11:05:00.000Z', { vcpus: 4, cpuSeconds: 7.25 });
        await ran('e3', '2026-01-05T12:00:00.000Z', { status: 'FAILED' });
        await ran('e4', '2026-01-05T12:30:00.000Z', { vcpus: null });
        await ran('e5', '2026-01-05T09:00:00.000Z', { vcpus: 0.5 });
        await ran('e6', '2026-01-05T13:00:00.000Z', { step: 'qc' });
        await ran('e7', '2026-01-05T13:00:00.000Z', { pipeline: 'amplicons' });

        const history = await sink.stepHistory('microbe-genome', 'assemble', 10);
        expect(history.map((r) => [r.execution, r.vcpus])).toEqual([
          ['e2', 4],
          ['e1', 2],
          ['e5', 0.5],
        ]);
        expect(history[0]).toMatchObject({ memoryMiB: 4096, cpuSeconds: 7.25 });
        expect(
          (await sink.stepHistory('microbe-genome', 'assemble', 2)).map((r) => r.execution),
        ).toEqual(['e2', 'e1']);
        expect(await sink.stepHistory('microbe-genome', 'nope', 10)).toEqual([]);
      });

      it('keeps the peak memory a step used beside its CPU time; null clears it', async () => {
        const sink = await fresh();
        const row = { ...base, sample: 'S1', step: 'assemble' } as const;
        await sink.upsertStep({ ...row, status: 'RUNNING', vcpus: 2, memoryMiB: 4096 });
        await sink.upsertStep({
          ...row,
          status: 'SUCCEEDED',
          cpuSeconds: 61.5,
          peakMemoryMiB: 2310.4,
        });
        expect(await sink.listSteps()).toEqual([
          {
            ...row,
            status: 'SUCCEEDED',
            vcpus: 2,
            memoryMiB: 4096,
            cpuSeconds: 61.5,
            peakMemoryMiB: 2310.4,
          },
        ]);
        expect((await sink.stepHistory(base.pipeline, 'assemble', 1))[0].peakMemoryMiB).toBe(
          2310.4,
        );
        // A later attempt on an executor that cannot measure it (AWS Batch) leaves none behind.
        await sink.upsertStep({ ...row, status: 'SUCCEEDED', peakMemoryMiB: null });
        expect((await sink.listSteps())[0].peakMemoryMiB).toBeUndefined();
      });

      it('keys rows by execution × sample × step and lists them in the order first recorded', async () => {
        const sink = await fresh();
        const rows: StepResultInfo[] = [
          { ...base, sample: 'S1', step: 'qc', status: 'SUCCEEDED' },
          { ...base, sample: 'S1', step: 'assemble', status: 'FAILED', error: 'States.Timeout' },
          { ...base, sample: 'S2', step: 'qc', status: 'CACHED' },
          { ...base, sample: 'S2', step: 'assemble', status: 'SKIPPED' },
          { ...base, sample: AGGREGATE_SAMPLE, step: 'report', status: 'RUNNING' },
          {
            execution: 'exec-2',
            pipeline: 'microbe-genome',
            sample: 'S1',
            step: 'qc',
            status: 'RUNNING',
          },
          {
            execution: 'exec-3',
            pipeline: 'amplicons',
            sample: 'S1',
            step: 'qc',
            status: 'SUCCEEDED',
          },
        ];
        for (const row of rows) await sink.upsertStep(row);
        // Updating an early row does not move it.
        await sink.upsertStep({ ...rows[0], status: 'SUCCEEDED', exitCode: 0 });
        const all = await sink.listSteps();
        expect(all).toHaveLength(7);
        expect(all.map((r) => `${r.execution}/${r.sample}/${r.step}`)).toEqual([
          'exec-1/S1/qc',
          'exec-1/S1/assemble',
          'exec-1/S2/qc',
          'exec-1/S2/assemble',
          'exec-1/_all/report',
          'exec-2/S1/qc',
          'exec-3/S1/qc',
        ]);
        expect(all[0].exitCode).toBe(0);
      });

      it('filters on every field, combined with AND', async () => {
        const sink = await fresh();
        await sink.upsertStep({ ...base, sample: 'S1', step: 'qc', status: 'SUCCEEDED' });
        await sink.upsertStep({ ...base, sample: 'S1', step: 'assemble', status: 'FAILED' });
        await sink.upsertStep({ ...base, sample: 'S2', step: 'qc', status: 'FAILED' });
        await sink.upsertStep({
          ...base,
          sample: AGGREGATE_SAMPLE,
          step: 'report',
          status: 'SKIPPED',
        });
        await sink.upsertStep({
          execution: 'exec-2',
          pipeline: 'other',
          sample: 'S1',
          step: 'qc',
          status: 'RUNNING',
        });

        const ids = async (filter: Parameters<ResultsSink['listSteps']>[0]): Promise<string[]> =>
          (await sink.listSteps(filter)).map((r) => `${r.execution}/${r.sample}/${r.step}`);
        expect(await ids({ pipeline: 'other' })).toEqual(['exec-2/S1/qc']);
        expect(await ids({ execution: 'exec-1', step: 'qc' })).toEqual([
          'exec-1/S1/qc',
          'exec-1/S2/qc',
        ]);
        expect(await ids({ sample: 'S1' })).toEqual([
          'exec-1/S1/qc',
          'exec-1/S1/assemble',
          'exec-2/S1/qc',
        ]);
        expect(await ids({ status: 'FAILED' })).toEqual(['exec-1/S1/assemble', 'exec-1/S2/qc']);
        expect(await ids({ sample: AGGREGATE_SAMPLE })).toEqual(['exec-1/_all/report']);
        expect(await ids({ status: 'FAILED', sample: 'S2', step: 'qc' })).toEqual(['exec-1/S2/qc']);
        expect(await ids({ pipeline: 'nope' })).toEqual([]);
        expect(await ids({})).toHaveLength(5);
      });

      it.each([
        ['an unknown status', { status: 'DONE' }, /status "DONE" is not one of RUNNING/],
        ['an empty step', { step: '' }, /step must be a non-empty string/],
        [
          'a time that is not ISO 8601',
          { startedAt: '5 Jan 2026' },
          /startedAt "5 Jan 2026" is not an ISO 8601 time/,
        ],
        ['a fractional exit code', { exitCode: 1.5 }, /exitCode 1.5 is not an integer/],
        ['attempt 0', { attempt: 0 }, /attempt 0 is not a whole number/],
        ['a negative peak memory', { peakMemoryMiB: -1 }, /peakMemoryMiB -1 is not a number ≥ 0/],
      ])('refuses %s with BAD_INPUT and writes nothing', async (_what, patch, message) => {
        const sink = await fresh();
        const row = { ...base, sample: 'S1', step: 'qc', status: 'RUNNING', ...patch };
        const err = await rejection(sink.upsertStep(row as StepResultInfo));
        expect(err.code).toBe('BAD_INPUT');
        expect(err.message).toMatch(message);
        expect(await sink.listSteps()).toEqual([]);
      });
    });

    describe('metrics', () => {
      const dist: MetricsTable = {
        columns: [
          { name: 'reference', type: 'text' },
          { name: 'distance', type: 'real' },
          { name: 'shared_hashes', type: 'text' },
          { name: 'kmers', type: 'integer' },
        ],
        rows: [
          ['GCF_000005845.2', 0.0123, '812/1000', 21],
          ['GCF_000008865.2', 0.0187, '734/1000', 21],
          ['GCF_000006945.2', 0.2107, null, 21],
        ],
      };

      it('stores rows keyed by execution × sample × row, values in column order', async () => {
        const sink = await fresh();
        await sink.putMetrics(key('S1'), dist);
        const rows = await sink.listMetrics('microbe-genome', 'assemble');
        expect(rows).toEqual(
          dist.rows.map((r, i) => ({
            execution: 'exec-1',
            sample: 'S1',
            row: i,
            values: { reference: r[0], distance: r[1], shared_hashes: r[2], kmers: r[3] },
          })),
        );
        expect(Object.keys(rows[0].values)).toEqual([
          'reference',
          'distance',
          'shared_hashes',
          'kmers',
        ]);
      });

      it('re-putting a key replaces its rows (idempotent) and leaves other keys alone', async () => {
        const sink = await fresh();
        await sink.putMetrics(key('S1'), dist);
        await sink.putMetrics(key('S2'), dist);
        await sink.putMetrics(key('S1', 'assemble', 'exec-2'), dist);
        await sink.putMetrics(key('S1'), dist);
        expect(await sink.listMetrics('microbe-genome', 'assemble')).toHaveLength(9);

        await sink.putMetrics(key('S1'), { columns: dist.columns, rows: [dist.rows[2]] });
        const s1 = await sink.listMetrics('microbe-genome', 'assemble', {
          execution: 'exec-1',
          sample: 'S1',
        });
        expect(s1.map((r) => [r.row, r.values.reference])).toEqual([[0, 'GCF_000006945.2']]);
        expect(await sink.listMetrics('microbe-genome', 'assemble', { sample: 'S2' })).toHaveLength(
          3,
        );
        expect(
          await sink.listMetrics('microbe-genome', 'assemble', { execution: 'exec-2' }),
        ).toHaveLength(3);

        await sink.putMetrics(key('S1'), { columns: dist.columns, rows: [] });
        expect(
          await sink.listMetrics('microbe-genome', 'assemble', {
            execution: 'exec-1',
            sample: 'S1',
          }),
        ).toEqual([]);
      });

      it('keeps each pipeline × step apart, and lists nothing for one never put', async () => {
        const sink = await fresh();
        await sink.putMetrics(key('S1', 'qc'), {
          columns: [{ name: 'reads', type: 'integer' }],
          rows: [[10]],
        });
        await sink.putMetrics(key('S1', 'sketch'), {
          columns: [{ name: 'reads', type: 'text' }],
          rows: [['x']],
        });
        expect((await sink.listMetrics('microbe-genome', 'qc'))[0].values).toEqual({ reads: 10 });
        expect((await sink.listMetrics('microbe-genome', 'sketch'))[0].values).toEqual({
          reads: 'x',
        });
        expect(await sink.listMetrics('microbe-genome', 'nope')).toEqual([]);
        expect(await sink.listMetrics('nope', 'qc')).toEqual([]);
      });

      it('adds a column when a later put has a new metric; earlier rows hold null there', async () => {
        const sink = await fresh();
        await sink.putMetrics(key('S1'), {
          columns: [{ name: 'n50', type: 'integer' }],
          rows: [[133000]],
        });
        await sink.putMetrics(key('S2'), {
          columns: [
            { name: 'gc', type: 'real' },
            { name: 'n50', type: 'integer' },
          ],
          rows: [[0.5079, 98123]],
        });
        const rows = await sink.listMetrics('microbe-genome', 'assemble');
        expect(rows.map((r) => r.values)).toEqual([
          { n50: 133000, gc: null },
          { n50: 98123, gc: 0.5079 },
        ]);
      });

      it('widens an integer column to real when a non-integer arrives, keeping earlier values', async () => {
        const sink = await fresh();
        await sink.putMetrics(key('S1'), {
          columns: [{ name: 'avg_len', type: 'integer' }],
          rows: [[150]],
        });
        await sink.putMetrics(key('S2'), {
          columns: [{ name: 'avg_len', type: 'real' }],
          rows: [[149.8]],
        });
        // A real column takes integers as they are.
        await sink.putMetrics(key('S3'), {
          columns: [{ name: 'avg_len', type: 'integer' }],
          rows: [[151]],
        });
        const rows = await sink.listMetrics('microbe-genome', 'assemble');
        expect(rows.map((r) => r.values.avg_len)).toEqual([150, 149.8, 151]);
      });

      it('refuses text in a numeric column, naming pipeline, step, column and value; nothing changes', async () => {
        const sink = await fresh();
        await sink.putMetrics(key('S1'), {
          columns: [{ name: 'n50', type: 'integer' }],
          rows: [[133000]],
        });
        await sink.putMetrics(key('S2'), {
          columns: [{ name: 'n50', type: 'integer' }],
          rows: [[98123]],
        });
        const err = await rejection(
          sink.putMetrics(key('S2'), {
            columns: [
              { name: 'n50', type: 'text' },
              { name: 'notes', type: 'text' },
            ],
            rows: [
              [null, 'ok'],
              ['n/a', 'assembly failed'],
            ],
          }),
        );
        expect(err.code).toBe('TYPE_CONFLICT');
        for (const part of [
          '"microbe-genome"',
          '"assemble"',
          '"S2"',
          'n50',
          'INTEGER',
          '"n/a"',
          'row 1',
        ]) {
          expect(err.message).toContain(part);
        }
        // The failed put changed nothing: S2 keeps its old row, no notes column appeared.
        const rows = await sink.listMetrics('microbe-genome', 'assemble');
        expect(rows.map((r) => [r.sample, r.values])).toEqual([
          ['S1', { n50: 133000 }],
          ['S2', { n50: 98123 }],
        ]);
      });

      it('stores numbers put into a text column as their text', async () => {
        const sink = await fresh();
        await sink.putMetrics(key('S1'), {
          columns: [{ name: 'depth', type: 'text' }],
          rows: [['NA']],
        });
        await sink.putMetrics(key('S2'), {
          columns: [{ name: 'depth', type: 'real' }],
          rows: [[31.5]],
        });
        await sink.putMetrics(key('S3'), {
          columns: [{ name: 'depth', type: 'integer' }],
          rows: [[40]],
        });
        const rows = await sink.listMetrics('microbe-genome', 'assemble');
        expect(rows.map((r) => r.values.depth)).toEqual(['NA', '31.5', '40']);
      });

      it('gives a column that so far holds only nulls the type of the first values it gets', async () => {
        const sink = await fresh();
        await sink.putMetrics(key('S1'), {
          columns: [{ name: 'plasmids', type: 'text' }],
          rows: [[null]],
        });
        await sink.putMetrics(key('S2'), {
          columns: [{ name: 'plasmids', type: 'integer' }],
          rows: [[2]],
        });
        // It is an integer column now: text is refused.
        const err = await rejection(
          sink.putMetrics(key('S3'), {
            columns: [{ name: 'plasmids', type: 'text' }],
            rows: [['two']],
          }),
        );
        expect(err.code).toBe('TYPE_CONFLICT');
        // A re-put of the only key holding values may change the type: the old values go first.
        await sink.putMetrics(key('S2'), {
          columns: [{ name: 'plasmids', type: 'text' }],
          rows: [['two']],
        });
        const rows = await sink.listMetrics('microbe-genome', 'assemble');
        expect(rows.map((r) => r.values.plasmids)).toEqual([null, 'two']);
      });

      it.each([
        [
          'a name starting with _',
          { columns: [{ name: '_sample', type: 'text' }], rows: [['x']] },
          /column name "_sample"/,
        ],
        [
          'an upper-case name',
          { columns: [{ name: 'N50', type: 'integer' }], rows: [[1]] },
          /column name "N50"/,
        ],
        [
          'a name used twice',
          {
            columns: [
              { name: 'a', type: 'integer' },
              { name: 'a', type: 'integer' },
            ],
            rows: [],
          },
          /column "a" appears twice/,
        ],
        [
          'a short row',
          {
            columns: [
              { name: 'a', type: 'integer' },
              { name: 'b', type: 'integer' },
            ],
            rows: [[1]],
          },
          /row 0 has 1 values for 2 columns/,
        ],
        [
          'text in an integer column',
          { columns: [{ name: 'a', type: 'integer' }], rows: [['1']] },
          /row 0, column a \(integer\): "1"/,
        ],
        [
          'a fraction in an integer column',
          { columns: [{ name: 'a', type: 'integer' }], rows: [[1.5]] },
          /column a \(integer\): 1.5/,
        ],
      ] as [string, MetricsTable, RegExp][])(
        'refuses a table with %s (BAD_INPUT)',
        async (_what, table, message) => {
          const sink = await fresh();
          const err = await rejection(sink.putMetrics(key('S1'), table));
          expect(err.code).toBe('BAD_INPUT');
          expect(err.message).toMatch(message);
          expect(await sink.listMetrics('microbe-genome', 'assemble')).toEqual([]);
        },
      );
    });
  });
}
