/**
 * A pipeline run's sample × step matrix: one row per sample (`(all samples)` for steps that run
 * once over all of them), one column per step; each cell coloured by its status, with its
 * duration, whether it came from the cache and how many attempts it took. A cell opens its job.
 */
import { useNavigate } from 'react-router';
import type { MatrixCell, PipelineMatrix } from '../../../src/server/ui/types.js';
import { duration } from '../format.js';
import { statusTone } from './common.js';

export const ALL_SAMPLES = '_all';
export const sampleLabel = (s: string) => (s === ALL_SAMPLES ? '(all samples)' : s);

function cellTitle(c: MatrixCell): string {
  const lines = [
    `${sampleLabel(c.sample)} · ${c.step}: ${c.status}${c.cached ? ' (from the cache)' : ''}`,
  ];
  if (c.durationMs !== undefined) lines.push(`duration ${duration(c.durationMs)}`);
  if (c.attempts > 1) lines.push(`${c.attempts} attempts`);
  if (c.exitCode !== undefined) lines.push(`exit code ${c.exitCode}`);
  if (c.error) lines.push(c.error);
  if (c.jobId) lines.push('click: the job, its log and outputs');
  return lines.join('\n');
}

export function Matrix({ matrix }: { matrix: PipelineMatrix }) {
  const navigate = useNavigate();
  const cells = new Map(matrix.cells.map((c) => [`${c.sample}\u0000${c.step}`, c]));
  // Steps that run over all samples have a cell only in the `_all` row; per-sample steps none there.
  return (
    <div className="matrix-wrap">
      <table className="matrix" aria-label="Sample × step matrix">
        <thead>
          <tr>
            <th className="corner">sample \ step</th>
            {matrix.steps.map((s) => (
              <th key={s} title={s}>
                {s}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {matrix.samples.map((sample) => (
            <tr key={sample}>
              <th className="row-head" title={sampleLabel(sample)}>
                {sampleLabel(sample)}
              </th>
              {matrix.steps.map((step) => {
                const c = cells.get(`${sample}\u0000${step}`);
                if (!c) return <td key={step} className="cell cell-none" />;
                const open = c.jobId
                  ? () => navigate(`/jobs/${encodeURIComponent(c.jobId!)}`)
                  : undefined;
                return (
                  <td
                    key={step}
                    className={`cell tone-${c.cached ? 'cached' : statusTone(c.status)}${open ? ' clickable' : ''}`}
                    title={cellTitle(c)}
                    data-sample={c.sample}
                    data-step={c.step}
                    data-status={c.status}
                    data-attempts={c.attempts}
                    onClick={open}
                    onKeyDown={open ? (e) => e.key === 'Enter' && open() : undefined}
                    tabIndex={open ? 0 : undefined}
                    role={open ? 'link' : undefined}
                  >
                    <span className="cell-status">{c.status.replace('_', ' ').toLowerCase()}</span>
                    <span className="cell-meta">
                      {c.durationMs !== undefined && <span>{duration(c.durationMs)}</span>}
                      {c.cached && (
                        <span className="cell-flag" title="from the cache">
                          cached
                        </span>
                      )}
                      {c.attempts > 1 && (
                        <span className="cell-flag" title={`${c.attempts} attempts`}>
                          ×{c.attempts}
                        </span>
                      )}
                      {c.exitCode !== undefined && c.exitCode !== 0 && (
                        <span className="cell-flag">exit {c.exitCode}</span>
                      )}
                    </span>
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
