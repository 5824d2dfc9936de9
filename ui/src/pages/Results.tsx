/**
 * The results database, as `strand results` shows it: a table per pipeline and step (every
 * sample × step with its status, or one step's metrics as typed columns), and the same table as
 * CSV to download.
 */
import { useSearchParams } from 'react-router';
import type {
  PipelinesResponse,
  ResultsResponse,
  ResultValue,
} from '../../../src/server/ui/types.js';
import { API, query } from '../api.js';
import { ErrorBox, StatusBadge } from '../components/common.js';
import { absoluteTime } from '../format.js';
import { useResource } from '../live.js';

/** Columns whose values are times (epoch ms or ISO text), shown as dates. */
const TIME_COLUMNS = /(_at|At|date|Date)$/;

function Cell({ column, value }: { column: string; value: ResultValue }) {
  if (value === null || value === '') return <td />;
  if (column === 'status')
    return (
      <td>
        <StatusBadge status={String(value)} />
      </td>
    );
  if (typeof value === 'number') {
    if (TIME_COLUMNS.test(column) && value > 1e12)
      return <td title={String(value)}>{absoluteTime(value)}</td>;
    return <td className="num">{value}</td>;
  }
  return (
    <td className="ellipsis" title={value}>
      {value}
    </td>
  );
}

export function ResultsPage() {
  const [params, setParams] = useSearchParams();
  const pipelines = useResource<PipelinesResponse>('/pipelines');
  const known = pipelines.data?.pipelines ?? [];
  const pipeline = params.get('pipeline') ?? known[0]?.name ?? '';
  const step = params.get('step') ?? '';
  const metrics = params.get('metrics') === 'true' && step !== '';
  const execution = params.get('execution') ?? '';
  const set = (changes: Record<string, string>) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) {
      if (v) next.set(k, v);
      else next.delete(k);
    }
    setParams(next, { replace: true });
  };

  const q = { pipeline, step, execution, metrics: metrics ? 'true' : undefined };
  const results = useResource<ResultsResponse>(
    pipeline ? `/results${query(q)}` : null,
    (e) => e.name === 'job' && e.data.pipeline === pipeline && e.data.stoppedAt !== undefined,
  );
  const info = known.find((p) => p.name === pipeline);
  const steps = info
    ? info.steps.flatMap((s) => (s.jobs.length > 1 ? s.jobs.map((j) => j.name) : [s.name]))
    : [];
  const csv = `${API}/results${query({ ...q, format: 'csv' })}`;
  const r = results.data;

  return (
    <div className="page">
      <div className="page-head">
        <h1>Results</h1>
        {pipeline && (
          <a
            className="button"
            href={csv}
            download={`${pipeline}${step ? `-${step}` : ''}${metrics ? '-metrics' : ''}.csv`}
          >
            Download CSV
          </a>
        )}
      </div>
      <div className="filters">
        <label>
          Pipeline
          <select
            aria-label="Pipeline"
            value={pipeline}
            onChange={(e) => set({ pipeline: e.target.value, step: '', metrics: '' })}
          >
            {!known.some((p) => p.name === pipeline) && pipeline && (
              <option value={pipeline}>{pipeline}</option>
            )}
            {known.map((p) => (
              <option key={p.file} value={p.name}>
                {p.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Execution
          <input
            placeholder="any"
            value={execution}
            onChange={(e) => set({ execution: e.target.value.trim() })}
            spellCheck={false}
          />
        </label>
        <label title="One step's metrics (the columns of the file its results: entry names) instead of every job's status">
          <input
            type="checkbox"
            checked={metrics}
            disabled={!step}
            onChange={(e) => set({ metrics: e.target.checked ? 'true' : '' })}
          />{' '}
          metrics
        </label>
      </div>
      {pipeline && (
        <div className="tabs" role="tablist">
          <button
            type="button"
            role="tab"
            aria-selected={step === ''}
            className={step === '' ? 'active' : ''}
            onClick={() => set({ step: '', metrics: '' })}
          >
            All steps
          </button>
          {steps.map((s) => (
            <button
              type="button"
              role="tab"
              key={s}
              aria-selected={step === s}
              className={step === s ? 'active' : ''}
              onClick={() => set({ step: s })}
            >
              {s}
            </button>
          ))}
        </div>
      )}
      <ErrorBox error={pipelines.error ?? results.error} />
      {!pipeline && !pipelines.loading && (
        <p className="muted">No pipeline has run in this home yet.</p>
      )}
      {r && (
        <>
          <div className="muted small">
            {r.rows.length} row{r.rows.length === 1 ? '' : 's'}
            {r.truncated ? ' (more left off: download the CSV for all)' : ''}
          </div>
          <div className="table-scroll">
            <table className="grid results">
              <thead>
                <tr>
                  {r.columns.map((c) => (
                    <th key={c}>{c}</th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {r.rows.map((row, i) => (
                  <tr key={i}>
                    {r.columns.map((c) => (
                      <Cell key={c} column={c} value={row[c] ?? null} />
                    ))}
                  </tr>
                ))}
                {r.rows.length === 0 && (
                  <tr>
                    <td colSpan={Math.max(1, r.columns.length)} className="empty">
                      No results{step ? ` for ${step}` : ''} yet.
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
          </div>
        </>
      )}
    </div>
  );
}
