/** Small pieces every page uses: status badges, times, errors, sections, JSON blocks. */
import type { ReactNode } from 'react';
import type { JobCounts, JobStatus } from '../../../src/server/ui/types.js';
import { absoluteTime, duration, prettyJson, relativeTime } from '../format.js';
import { useNow } from '../live.js';

/** The colour family of a status (execution, job, cell or state): one CSS class each. */
export function statusTone(status: string): string {
  switch (status.toUpperCase().replace('-', '_')) {
    case 'SUCCEEDED':
      return 'ok';
    case 'CACHED':
      return 'cached';
    case 'FAILED':
    case 'TIMED_OUT':
      return 'bad';
    case 'CAUGHT':
      return 'caught';
    case 'RUNNING':
    case 'STARTING':
      return 'run';
    case 'SUBMITTED':
    case 'PENDING':
    case 'RUNNABLE':
    case 'WAITING':
      return 'wait';
    case 'ABORTED':
      return 'aborted';
    default:
      return 'none';
  }
}

/** A status as a coloured pill (`TIMED_OUT` reads `TIMED OUT`). */
export function StatusBadge({ status }: { status: string }) {
  return (
    <span className={`badge tone-${statusTone(status)}`} data-status={status}>
      {status.replace(/_/g, ' ')}
    </span>
  );
}

/** A time as `4 min ago`, with the exact time beside it (or on hover, when `compact`). */
export function Time({ ms, compact = false }: { ms: number | undefined; compact?: boolean }) {
  const now = useNow(5000);
  if (ms === undefined) return <span className="muted">–</span>;
  const abs = absoluteTime(ms);
  return (
    <time dateTime={new Date(ms).toISOString()} title={abs}>
      {relativeTime(ms, now)}
      {!compact && <span className="muted abs"> {abs}</span>}
    </time>
  );
}

/** From `start` to `stop`, or to now (ticking) while it has not stopped. */
export function Elapsed({ start, stop }: { start: number | undefined; stop: number | undefined }) {
  const now = useNow(1000);
  if (start === undefined) return <span className="muted">–</span>;
  return <span className="num">{duration((stop ?? now) - start)}</span>;
}

export function ErrorBox({ error }: { error: Error | undefined }) {
  if (!error) return null;
  return (
    <div className="error-box" role="alert">
      {error.message}
    </div>
  );
}

export function Section({
  title,
  actions,
  children,
  id,
}: {
  title: ReactNode;
  actions?: ReactNode;
  children: ReactNode;
  id?: string;
}) {
  return (
    <section className="panel" id={id}>
      <header className="panel-head">
        <h2>{title}</h2>
        {actions && <div className="panel-actions">{actions}</div>}
      </header>
      <div className="panel-body">{children}</div>
    </section>
  );
}

export function JsonBlock({ value, empty = 'none' }: { value: unknown; empty?: string }) {
  if (value === undefined || value === null || value === '')
    return <div className="muted">{empty}</div>;
  return <pre className="code">{prettyJson(value)}</pre>;
}

const COUNT_ORDER: JobStatus[] = [
  'SUCCEEDED',
  'FAILED',
  'RUNNING',
  'STARTING',
  'RUNNABLE',
  'PENDING',
  'SUBMITTED',
];

/** Job counts as small coloured numbers (`12 ✓ 1 ✗ 2 ▶`), each titled with its status. */
export function JobCountsView({ counts }: { counts: JobCounts }) {
  const shown = COUNT_ORDER.filter((s) => (counts[s] ?? 0) > 0);
  if (shown.length === 0) return <span className="muted">no jobs</span>;
  return (
    <span className="counts">
      {shown.map((s) => (
        <span key={s} className={`count tone-${statusTone(s)}`} title={`${counts[s]} ${s}`}>
          {counts[s]} {s.toLowerCase()}
        </span>
      ))}
    </span>
  );
}

/** A definition list, for the details of one thing. */
export function Fields({ items }: { items: [string, ReactNode][] }) {
  return (
    <dl className="fields">
      {items.map(([k, v]) => (
        <div key={k} className="field">
          <dt>{k}</dt>
          <dd>{v ?? <span className="muted">–</span>}</dd>
        </div>
      ))}
    </dl>
  );
}
