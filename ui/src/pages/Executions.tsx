/**
 * Every execution of the home, newest first, filtered by status, pipeline and start date (the
 * filters live in the address, so a filtered list can be bookmarked and shared).
 */
import { useEffect, useState } from 'react';
import { Link, useSearchParams } from 'react-router';
import type {
  ExecutionStatus,
  ExecutionSummary,
  ExecutionsResponse,
  PipelinesResponse,
} from '../../../src/server/ui/types.js';
import { api, query } from '../api.js';
import { Elapsed, ErrorBox, JobCountsView, StatusBadge, Time } from '../components/common.js';
import { useResource } from '../live.js';

const STATUSES: ExecutionStatus[] = ['RUNNING', 'SUCCEEDED', 'FAILED', 'ABORTED', 'TIMED_OUT'];

/** `2026-12-06` (a date input's value) as the start of that day, local time, in epoch ms. */
const dayStart = (day: string) => (day ? String(new Date(`${day}T00:00:00`).getTime()) : undefined);
const dayEnd = (day: string) =>
  day ? String(new Date(`${day}T00:00:00`).getTime() + 86_400_000) : undefined;

export function ExecutionsPage() {
  const [params, setParams] = useSearchParams();
  const status = params.get('status') ?? '';
  const pipeline = params.get('pipeline') ?? '';
  const since = params.get('since') ?? '';
  const until = params.get('until') ?? '';
  const set = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
  };

  const path = `/executions${query({
    status,
    pipeline,
    since: dayStart(since),
    until: dayEnd(until),
  })}`;
  const list = useResource<ExecutionsResponse>(
    path,
    (e) => e.name === 'execution' || e.name === 'job',
  );
  const pipelines = useResource<PipelinesResponse>('/pipelines');

  // Pages read on with "Load more" are kept until the filters change.
  const [more, setMore] = useState<{ path: string; rows: ExecutionSummary[]; next?: string }>();
  useEffect(() => setMore(undefined), [path]);
  const [moreError, setMoreError] = useState<Error>();
  const loadMore = () => {
    const token = more?.next ?? list.data?.nextToken;
    if (!token) return;
    const sep = path.includes('?') ? '&' : '?';
    api<ExecutionsResponse>(`${path}${sep}nextToken=${encodeURIComponent(token)}`).then(
      (r) => setMore({ path, rows: [...(more?.rows ?? []), ...r.executions], next: r.nextToken }),
      setMoreError,
    );
  };

  const rows = [...(list.data?.executions ?? []), ...(more?.path === path ? more.rows : [])];
  const hasMore = more ? more.next !== undefined : list.data?.nextToken !== undefined;
  const names = new Set<string>(pipelines.data?.pipelines.map((p) => p.name) ?? []);
  for (const r of rows) if (r.pipeline) names.add(r.pipeline);

  return (
    <div className="page">
      <div className="page-head">
        <h1>Executions</h1>
        <Link className="button primary" to="/start">
          Start a run
        </Link>
      </div>
      <div className="filters">
        <label>
          Status
          <select
            aria-label="Status"
            value={status}
            onChange={(e) => set('status', e.target.value)}
          >
            <option value="">Any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s.replace('_', ' ')}
              </option>
            ))}
          </select>
        </label>
        <label>
          Pipeline
          <select
            aria-label="Pipeline"
            value={pipeline}
            onChange={(e) => set('pipeline', e.target.value)}
          >
            <option value="">Any</option>
            {[...names].sort().map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <label>
          Started from
          <input type="date" value={since} onChange={(e) => set('since', e.target.value)} />
        </label>
        <label>
          to
          <input type="date" value={until} onChange={(e) => set('until', e.target.value)} />
        </label>
        {(status || pipeline || since || until) && (
          <button
            type="button"
            className="link-button"
            onClick={() => setParams({}, { replace: true })}
          >
            Clear filters
          </button>
        )}
        <span className="spacer" />
        <span className="muted">
          {rows.length} execution{rows.length === 1 ? '' : 's'}
          {hasMore ? ' shown' : ''}
        </span>
      </div>
      <ErrorBox error={list.error ?? moreError} />
      <table className="grid executions">
        <thead>
          <tr>
            <th>Name</th>
            <th>Status</th>
            <th>Pipeline / state machine</th>
            <th>Jobs</th>
            <th>Started</th>
            <th className="num">Duration</th>
            <th className="num">Redrives</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((e) => (
            <tr key={e.arn}>
              <td>
                <Link to={`/executions/${encodeURIComponent(e.name)}`}>{e.name}</Link>
              </td>
              <td>
                <StatusBadge status={e.status} />
              </td>
              <td>
                {e.pipeline ? (
                  <>
                    <span className="tag">pipeline</span> {e.pipeline}
                  </>
                ) : (
                  e.stateMachine
                )}
              </td>
              <td>
                <JobCountsView counts={e.jobs} />
              </td>
              <td>
                <Time ms={e.startDate} />
              </td>
              <td className="num">
                <Elapsed
                  start={e.startDate}
                  stop={e.stopDate ?? (e.status === 'RUNNING' ? undefined : e.startDate)}
                />
              </td>
              <td className="num">{e.redriveCount || ''}</td>
            </tr>
          ))}
          {rows.length === 0 && !list.loading && (
            <tr>
              <td colSpan={7} className="empty">
                No executions
                {status || pipeline || since || until ? ' match these filters' : ' yet'}.{' '}
                <Link to="/start">Start a run</Link>
              </td>
            </tr>
          )}
        </tbody>
      </table>
      {hasMore && (
        <button type="button" onClick={loadMore}>
          Load more
        </button>
      )}
    </div>
  );
}
