/**
 * One execution: its status and actions (stop, redrive), its state graph coloured as it runs,
 * for a pipeline run the sample × step matrix and the timeline of its jobs, its input, output
 * and error, its jobs and its history. Everything is read again as events about it arrive.
 */
import { useState } from 'react';
import { Link, useParams } from 'react-router';
import type {
  ActionResponse,
  AttemptRow,
  ExecutionDetail,
  StateNode,
} from '../../../src/server/ui/types.js';
import { api } from '../api.js';
import {
  Elapsed,
  ErrorBox,
  Fields,
  JobCountsView,
  JsonBlock,
  Section,
  StatusBadge,
  Time,
} from '../components/common.js';
import { History } from '../components/History.js';
import { Matrix, sampleLabel } from '../components/Matrix.js';
import { Timeline } from '../components/Timeline.js';
import { StateGraphView } from '../graph/StateGraphView.js';
import { useResource } from '../live.js';

export function ExecutionPage() {
  const name = useParams().name ?? '';
  const path = `/executions/${encodeURIComponent(name)}`;
  const detail = useResource<ExecutionDetail>(
    path,
    (e) =>
      (e.name === 'execution' && e.data.name === name) ||
      (e.name === 'job' && e.data.execution === name) ||
      (e.name === 'history' && e.data.execution === name),
  );
  const [selected, setSelected] = useState<StateNode>();
  const [busy, setBusy] = useState<string>();
  const [actionError, setActionError] = useState<Error>();

  const act = (action: 'stop' | 'redrive') => {
    if (action === 'stop' && !window.confirm(`Stop ${name}? Its running jobs are terminated.`))
      return;
    setBusy(action);
    setActionError(undefined);
    api<ActionResponse>(`${path}/${action}`, { method: 'POST', body: {} }).then(
      () => {
        setBusy(undefined);
        detail.reload();
      },
      (err: Error) => {
        setBusy(undefined);
        setActionError(err);
      },
    );
  };

  const x = detail.data;
  if (!x)
    return (
      <div className="page">
        <Breadcrumb name={name} />
        <ErrorBox error={detail.error} />
        {!detail.error && <div className="muted">Loading…</div>}
      </div>
    );

  const run = x.pipelineRun;
  const attempts: AttemptRow[] =
    run?.attempts ??
    x.jobList.map((j) => ({
      execution: x.name,
      jobId: j.jobId,
      jobName: j.jobName,
      sample: j.queue,
      step: j.jobName,
      attempt: Math.max(1, j.attempts),
      status:
        j.status === 'SUCCEEDED' || j.status === 'FAILED'
          ? j.status
          : j.status === 'RUNNING' || j.status === 'STARTING'
            ? 'RUNNING'
            : 'WAITING',
      cached: j.cached ?? false,
      createdAt: j.createdAt,
      startedAt: j.startedAt,
      stoppedAt: j.stoppedAt,
      vcpus: j.vcpus,
      memoryMiB: j.memoryMiB,
    }));
  const picked = selected && findState(x.graph.nodes, selected.id);

  return (
    <div className="page">
      <Breadcrumb name={name} />
      <div className="page-head">
        <h1>
          {x.name} <StatusBadge status={x.status} />
        </h1>
        <div className="actions">
          <button
            type="button"
            className="danger"
            disabled={x.status !== 'RUNNING' || busy !== undefined}
            onClick={() => act('stop')}
          >
            {busy === 'stop' ? 'Stopping…' : 'Stop'}
          </button>
          <button
            type="button"
            disabled={!x.redrivable || busy !== undefined}
            onClick={() => act('redrive')}
            title="Carry on from where it stopped: what succeeded is not run again"
          >
            {busy === 'redrive' ? 'Redriving…' : 'Redrive'}
          </button>
        </div>
      </div>
      <ErrorBox error={actionError ?? detail.error} />
      <div className="summary">
        <Fields
          items={[
            ['Status', <StatusBadge key="s" status={x.status} />],
            [run ? 'Pipeline' : 'State machine', run ? run.pipeline : x.stateMachine],
            ['Started', <Time key="t" ms={x.startDate} />],
            [
              'Stopped',
              x.stopDate ? (
                <Time key="t" ms={x.stopDate} />
              ) : x.status === 'RUNNING' ? (
                'running'
              ) : undefined,
            ],
            [
              'Duration',
              <Elapsed
                key="d"
                start={x.startDate}
                stop={x.stopDate ?? (x.status === 'RUNNING' ? undefined : x.startDate)}
              />,
            ],
            ['Jobs', <JobCountsView key="j" counts={x.jobs} />],
            ['Redrives', String(x.redriveCount)],
          ]}
        />
        {run && (
          <div className="paths small">
            <span>
              <span className="muted">Outputs</span> <code>{run.store}</code>
            </span>
            {run.file && (
              <span>
                <span className="muted">Pipeline file</span> <code>{run.file}</code>
              </span>
            )}
          </div>
        )}
        {(x.error || x.cause) && (
          <div className="error-box" role="alert">
            <strong>{x.error}</strong>
            {x.cause && <pre className="cause">{x.cause}</pre>}
          </div>
        )}
      </div>

      <div className="exec-grid">
        <Section title="Graph">
          <StateGraphView graph={x.graph} selected={picked?.id} onSelect={setSelected} />
        </Section>
        <div className="exec-side">
          {run && (
            <Section
              title={`Samples × steps (${run.matrix.samples.length} × ${run.matrix.steps.length})`}
              id="matrix"
            >
              <Matrix matrix={run.matrix} />
            </Section>
          )}

          <Section title="Timeline" id="timeline">
            <Timeline attempts={attempts} origin={x.startDate} />
          </Section>
          <Section title={picked ? `State: ${picked.name}` : 'State'}>
            {picked ? (
              <Fields
                items={[
                  ['Type', picked.type],
                  [
                    'Status',
                    <StatusBadge key="s" status={picked.status.toUpperCase().replace('-', '_')} />,
                  ],
                  [
                    'Resource',
                    picked.resource ? <code key="r">{picked.resource}</code> : undefined,
                  ],
                  [
                    'Runs',
                    picked.runs
                      ? `${picked.runs.entered} entered, ${picked.runs.succeeded} succeeded, ${picked.runs.running} running, ${picked.runs.failed} failed, ${picked.runs.caught} caught`
                      : undefined,
                  ],
                  ['Comment', picked.comment],
                ]}
              />
            ) : (
              <p className="muted">Click a state of the graph to see it here.</p>
            )}
            <div className="legend">
              {(['succeeded', 'running', 'failed', 'caught', 'not-run'] as const).map((s) => (
                <span
                  key={s}
                  className={`legend-item tone-${{ succeeded: 'ok', running: 'run', failed: 'bad', caught: 'caught', 'not-run': 'none' }[s]}`}
                >
                  {s.replace('-', ' ')}
                </span>
              ))}
            </div>
          </Section>
        </div>
      </div>

      <div className="two-col even">
        <Section title="Input">
          <JsonBlock value={x.input} empty="no input" />
        </Section>
        <Section title="Output">
          <JsonBlock value={x.output} empty={x.status === 'RUNNING' ? 'not yet' : 'no output'} />
        </Section>
      </div>

      <Section title={`Jobs (${x.jobList.length})`} id="jobs">
        <table className="grid">
          <thead>
            <tr>
              <th>Job</th>
              <th>Status</th>
              {run && <th>Sample</th>}
              {run && <th>Step</th>}
              <th>Queue</th>
              <th>Started</th>
              <th className="num">Duration</th>
              <th className="num">Attempts</th>
              <th>Reason</th>
            </tr>
          </thead>
          <tbody>
            {x.jobList.map((j) => (
              <tr key={j.jobId}>
                <td>
                  <Link to={`/jobs/${encodeURIComponent(j.jobId)}`}>{j.jobName}</Link>
                  {j.cached && <span className="tag">cached</span>}
                </td>
                <td>
                  <StatusBadge status={j.status} />
                </td>
                {run && <td>{j.sample !== undefined ? sampleLabel(j.sample) : ''}</td>}
                {run && <td>{j.step}</td>}
                <td>{j.queue}</td>
                <td>
                  <Time ms={j.startedAt} compact />
                </td>
                <td className="num">
                  <Elapsed start={j.startedAt} stop={j.stoppedAt} />
                </td>
                <td className="num">{j.attempts}</td>
                <td className="ellipsis muted">{j.statusReason}</td>
              </tr>
            ))}
            {x.jobList.length === 0 && (
              <tr>
                <td colSpan={9} className="empty">
                  No jobs.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </Section>

      <Section title="History" id="history">
        <History key={x.name} execution={x.name} />
      </Section>
    </div>
  );
}

function Breadcrumb({ name }: { name: string }) {
  return (
    <div className="breadcrumb">
      <Link to="/">Executions</Link> › {name}
    </div>
  );
}

/** The state of that id in the current graph (nested ones too), so its status stays current. */
function findState(nodes: StateNode[], id: string): StateNode | undefined {
  for (const n of nodes) {
    if (n.id === id) return n;
    for (const g of n.subgraphs ?? []) {
      const found = findState(g.nodes, id);
      if (found) return found;
    }
  }
  return undefined;
}
