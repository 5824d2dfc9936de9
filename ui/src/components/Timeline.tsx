/**
 * The jobs of a run on a time axis (as Seqera's timeline): one bar per attempt, in lanes grouped
 * by sample or by step, coloured by how the attempt ended; hovering a bar tells its times, CPU
 * time and peak memory. A bar of a running attempt grows with the clock.
 */
import { useState, type MouseEvent } from 'react';
import { useNavigate } from 'react-router';
import type { AttemptRow } from '../../../src/server/ui/types.js';
import { absoluteTime, duration, mebibytes } from '../format.js';
import { useNow } from '../live.js';
import { sampleLabel } from './Matrix.js';
import { statusTone } from './common.js';

type GroupBy = 'sample' | 'step';

interface Hover {
  row: AttemptRow;
  x: number;
  y: number;
}

function ticks(span: number): number[] {
  const steps = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14_400, 43_200, 86_400,
  ];
  const seconds = span / 1000;
  const step = steps.find((s) => seconds / s <= 8) ?? 86_400;
  const out: number[] = [];
  for (let t = 0; t <= seconds; t += step) out.push(t * 1000);
  return out;
}

const tickLabel = (ms: number) => (ms === 0 ? '0' : `+${duration(ms).replace(' 00 s', '')}`);

export function Timeline({ attempts, origin }: { attempts: AttemptRow[]; origin: number }) {
  const [groupBy, setGroupBy] = useState<GroupBy>('sample');
  const [hover, setHover] = useState<Hover>();
  const navigate = useNavigate();
  const now = useNow(1000);
  const started = attempts.filter((a) => a.startedAt !== undefined);
  if (started.length === 0) return <div className="muted">No job has started yet.</div>;

  const t0 = Math.min(origin, ...started.map((a) => a.startedAt!));
  const t1 = Math.max(...started.map((a) => a.stoppedAt ?? now), t0 + 1000);
  const span = t1 - t0;
  const pct = (t: number) => `${((t - t0) / span) * 100}%`;

  // Lanes: group → one line per value of the other key, in order of first start.
  const other = (a: AttemptRow) => (groupBy === 'sample' ? a.step : sampleLabel(a.sample));
  const key = (a: AttemptRow) => (groupBy === 'sample' ? sampleLabel(a.sample) : a.step);
  const sorted = [...started].sort((a, b) => a.startedAt! - b.startedAt! || a.attempt - b.attempt);
  const groups = new Map<string, Map<string, AttemptRow[]>>();
  for (const a of sorted) {
    const g = groups.get(key(a)) ?? new Map<string, AttemptRow[]>();
    groups.set(key(a), g);
    g.set(other(a), [...(g.get(other(a)) ?? []), a]);
  }

  const tone = (a: AttemptRow) =>
    a.cached
      ? 'cached'
      : a.stoppedAt === undefined
        ? 'run'
        : statusTone(a.status ?? (a.exitCode === 0 ? 'SUCCEEDED' : 'FAILED'));
  const move = (row: AttemptRow) => (e: MouseEvent) => {
    const box = (e.currentTarget.closest('.timeline') as HTMLElement).getBoundingClientRect();
    setHover({ row, x: e.clientX - box.left, y: e.clientY - box.top });
  };

  return (
    <div className="timeline" onMouseLeave={() => setHover(undefined)}>
      <div className="timeline-controls">
        Group by{' '}
        <label>
          <input
            type="radio"
            checked={groupBy === 'sample'}
            onChange={() => setGroupBy('sample')}
          />{' '}
          sample
        </label>
        <label>
          <input type="radio" checked={groupBy === 'step'} onChange={() => setGroupBy('step')} />{' '}
          step
        </label>
        <span className="muted">
          {' '}
          · {started.length} attempt{started.length === 1 ? '' : 's'} over {duration(span)}
        </span>
      </div>
      <div className="tl-axis">
        <div className="tl-label" />
        <div className="tl-track">
          {ticks(span).map((t) => (
            <span key={t} className="tl-tick" style={{ left: `${(t / span) * 100}%` }}>
              {tickLabel(t)}
            </span>
          ))}
        </div>
      </div>
      {[...groups].map(([group, lanes]) => (
        <div key={group} className="tl-group">
          <div className="tl-group-head">{group}</div>
          {[...lanes].map(([lane, rows]) => (
            <div key={lane} className="tl-lane">
              <div className="tl-label" title={lane}>
                {lane}
              </div>
              <div className="tl-track">
                {ticks(span).map((t) => (
                  <span key={t} className="tl-grid" style={{ left: `${(t / span) * 100}%` }} />
                ))}
                {rows.map((a) => {
                  const end = a.stoppedAt ?? now;
                  return (
                    <div
                      key={`${a.jobId}.${a.attempt}`}
                      className={`tl-bar tone-${tone(a)}`}
                      data-job={a.jobId}
                      data-attempt={a.attempt}
                      style={{
                        left: pct(a.startedAt!),
                        width: `max(3px, ${((end - a.startedAt!) / span) * 100}%)`,
                      }}
                      onMouseEnter={move(a)}
                      onMouseMove={move(a)}
                      onClick={() => navigate(`/jobs/${encodeURIComponent(a.jobId)}`)}
                    />
                  );
                })}
              </div>
            </div>
          ))}
        </div>
      ))}
      {hover && <HoverCard hover={hover} now={now} />}
    </div>
  );
}

function HoverCard({ hover, now }: { hover: Hover; now: number }) {
  const a = hover.row;
  const took = (a.stoppedAt ?? now) - (a.startedAt ?? now);
  const rows: [string, string][] = [
    ['attempt', String(a.attempt)],
    ['status', a.cached ? 'from the cache' : (a.status ?? (a.stoppedAt ? '' : 'RUNNING'))],
    ['started', a.startedAt ? absoluteTime(a.startedAt) : '–'],
    ['duration', `${duration(took)}${a.stoppedAt ? '' : ' so far'}`],
    ['CPU time', a.cpuSeconds !== undefined ? duration(a.cpuSeconds * 1000) : '–'],
    ['peak memory', a.peakMemoryMiB !== undefined ? mebibytes(a.peakMemoryMiB) : '–'],
    [
      'given',
      [
        a.vcpus !== undefined ? `${a.vcpus} vCPU` : '',
        a.memoryMiB !== undefined ? mebibytes(a.memoryMiB) : '',
      ]
        .filter(Boolean)
        .join(', ') || '–',
    ],
  ];
  if (a.cpuSeconds !== undefined && took > 0 && a.vcpus)
    rows.push([
      'CPU use',
      `${Math.round((a.cpuSeconds * 1000 * 100) / (took * a.vcpus))}% of ${a.vcpus} vCPU`,
    ]);
  if (a.exitCode !== undefined) rows.push(['exit code', String(a.exitCode)]);
  if (a.reason) rows.push(['reason', a.reason]);
  return (
    <div className="tl-hover" style={{ left: hover.x + 14, top: hover.y + 14 }} role="tooltip">
      <div className="tl-hover-title">
        {a.step} · {sampleLabel(a.sample)}
      </div>
      <table>
        <tbody>
          {rows.map(([k, v]) => (
            <tr key={k}>
              <th>{k}</th>
              <td>{v}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
