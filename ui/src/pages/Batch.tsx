/**
 * The Batch at a glance (as the AWS Batch console's dashboard): compute environments with how
 * much of them is in use, queues with their jobs by status, what runs where, and each waiting
 * job with the reason it waits.
 */
import { Link } from 'react-router';
import type { BatchResponse } from '../../../src/server/ui/types.js';
import {
  Elapsed,
  ErrorBox,
  JobCountsView,
  Section,
  StatusBadge,
  Time,
} from '../components/common.js';
import { sampleLabel } from '../components/Matrix.js';
import { WaitingView } from '../components/Waiting.js';
import { mebibytes } from '../format.js';
import { useResource } from '../live.js';

function Usage({
  used,
  total,
  show,
}: {
  used: number;
  total: number;
  show: (n: number) => string;
}) {
  const pct = total > 0 ? Math.min(100, (used / total) * 100) : 0;
  return (
    <div className="usage" title={`${show(used)} of ${show(total)} in use`}>
      <div className="usage-bar">
        <div className="usage-fill" style={{ width: `${pct}%` }} />
      </div>
      <span className="num">
        {show(used)} / {show(total)}
      </span>
    </div>
  );
}

const vcpu = (n: number) => `${Math.round(n * 100) / 100} vCPU`;

export function BatchPage() {
  const batch = useResource<BatchResponse>('/batch', (e) => e.name === 'batch' || e.name === 'job');
  const b = batch.data;
  return (
    <div className="page">
      <div className="page-head">
        <h1>Batch</h1>
      </div>
      <ErrorBox error={batch.error} />
      {!b ? (
        !batch.error && <div className="muted">Loading…</div>
      ) : (
        <>
          <div className="stack">
            <Section title={`Compute environments (${b.computeEnvironments.length})`}>
              <table className="grid">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>State</th>
                    <th>Executor</th>
                    <th>vCPUs</th>
                    <th>Memory</th>
                    <th className="num">Running</th>
                  </tr>
                </thead>
                <tbody>
                  {b.computeEnvironments.map((c) => (
                    <tr key={c.name}>
                      <td>{c.name}</td>
                      <td>
                        <span className={`tag ${c.state === 'ENABLED' ? 'tag-ok' : 'tag-bad'}`}>
                          {c.state}
                        </span>
                      </td>
                      <td>{c.executor}</td>
                      <td>
                        <Usage used={c.vcpus.inUse} total={c.vcpus.total} show={vcpu} />
                      </td>
                      <td>
                        <Usage
                          used={c.memoryMiB.inUse}
                          total={c.memoryMiB.total}
                          show={mebibytes}
                        />
                      </td>
                      <td className="num">{c.running}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </Section>
            <Section title={`Job queues (${b.queues.length})`}>
              <table className="grid">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>State</th>
                    <th className="num">Priority</th>
                    <th>Compute environments</th>
                    <th>Jobs</th>
                  </tr>
                </thead>
                <tbody>
                  {b.queues.map((q) => (
                    <tr key={q.name}>
                      <td>{q.name}</td>
                      <td>
                        <span className={`tag ${q.state === 'ENABLED' ? 'tag-ok' : 'tag-bad'}`}>
                          {q.state}
                        </span>
                      </td>
                      <td className="num">{q.priority}</td>
                      <td>{q.computeEnvironments.join(' → ')}</td>
                      <td>
                        <JobCountsView counts={q.jobs} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </Section>
          </div>

          <Section title={`Running (${b.running.length})`}>
            <table className="grid">
              <thead>
                <tr>
                  <th>Job</th>
                  <th>Status</th>
                  <th>Execution</th>
                  <th>Queue</th>
                  <th>Compute environment</th>
                  <th className="num">Size</th>
                  <th>Started</th>
                  <th className="num">Running for</th>
                </tr>
              </thead>
              <tbody>
                {b.running.map((j) => (
                  <tr key={j.jobId}>
                    <td>
                      <Link to={`/jobs/${encodeURIComponent(j.jobId)}`}>{j.jobName}</Link>
                      {j.sample !== undefined && (
                        <span className="muted"> {sampleLabel(j.sample)}</span>
                      )}
                    </td>
                    <td>
                      <StatusBadge status={j.status} />
                    </td>
                    <td>
                      {j.execution && (
                        <Link to={`/executions/${encodeURIComponent(j.execution)}`}>
                          {j.execution}
                        </Link>
                      )}
                    </td>
                    <td>{j.queue}</td>
                    <td>{j.computeEnvironment}</td>
                    <td className="num">
                      {[
                        j.vcpus !== undefined ? vcpu(j.vcpus) : '',
                        j.memoryMiB !== undefined ? mebibytes(j.memoryMiB) : '',
                      ]
                        .filter(Boolean)
                        .join(', ')}
                    </td>
                    <td>
                      <Time ms={j.startedAt} compact />
                    </td>
                    <td className="num">
                      <Elapsed start={j.startedAt} stop={undefined} />
                    </td>
                  </tr>
                ))}
                {b.running.length === 0 && (
                  <tr>
                    <td colSpan={8} className="empty">
                      Nothing runs.
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
          </Section>

          <Section title={`Waiting (${b.waiting.length}${b.truncated ? '+' : ''})`}>
            <table className="grid waiting-jobs">
              <thead>
                <tr>
                  <th className="num">#</th>
                  <th>Job</th>
                  <th>Status</th>
                  <th>Queue</th>
                  <th>Why it waits</th>
                </tr>
              </thead>
              <tbody>
                {b.waiting.map((j, i) => (
                  <tr key={j.jobId}>
                    <td className="num">{i + 1}</td>
                    <td>
                      <Link to={`/jobs/${encodeURIComponent(j.jobId)}`}>{j.jobName}</Link>
                      {j.sample !== undefined && (
                        <span className="muted"> {sampleLabel(j.sample)}</span>
                      )}
                      {j.execution && (
                        <div className="small">
                          <Link
                            className="muted"
                            to={`/executions/${encodeURIComponent(j.execution)}`}
                          >
                            {j.execution}
                          </Link>
                        </div>
                      )}
                    </td>
                    <td>
                      <StatusBadge status={j.status} />
                    </td>
                    <td>{j.queue}</td>
                    <td>
                      <WaitingView waiting={j.waiting} />
                    </td>
                  </tr>
                ))}
                {b.waiting.length === 0 && (
                  <tr>
                    <td colSpan={5} className="empty">
                      No job waits.
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
            {b.truncated && <div className="muted small">More jobs wait than are listed here.</div>}
          </Section>
        </>
      )}
    </div>
  );
}
