/**
 * One job: what it ran and where, its attempts, the live log of the attempt picked (the latest
 * by default, followed while it runs), why it waits if it does, and for a job of a pipeline run
 * the outputs its step published, with the manifest's files, sizes and sha256.
 */
import { useEffect, useState } from 'react';
import { Link, useParams } from 'react-router';
import type { JobDetailResponse, OutputsResponse } from '../../../src/server/ui/types.js';
import { query } from '../api.js';
import { Elapsed, ErrorBox, Fields, Section, StatusBadge, Time } from '../components/common.js';
import { LogView } from '../components/LogView.js';
import { sampleLabel } from '../components/Matrix.js';
import { WaitingView } from '../components/Waiting.js';
import { bytes, duration, mebibytes } from '../format.js';
import { useResource } from '../live.js';

export function JobPage() {
  const id = useParams().id ?? '';
  const job = useResource<JobDetailResponse>(
    `/jobs/${encodeURIComponent(id)}`,
    (e) => (e.name === 'job' && e.data.jobId === id) || e.name === 'batch',
  );
  const [picked, setPicked] = useState<number | undefined>(undefined);
  useEffect(() => setPicked(undefined), [id]);

  const j = job.data;
  if (!j)
    return (
      <div className="page">
        <div className="breadcrumb">
          <Link to="/">Executions</Link> › job {id}
        </div>
        <ErrorBox error={job.error} />
        {!job.error && <div className="muted">Loading…</div>}
      </div>
    );

  const latest = j.attemptList.at(-1)?.attempt;
  // Following the latest attempt means switching to a new one when the job is retried.
  const attempt = picked ?? latest;
  const executionName = j.execution;
  return (
    <div className="page">
      <div className="breadcrumb">
        <Link to="/">Executions</Link>
        {executionName && (
          <>
            {' › '}
            <Link to={`/executions/${encodeURIComponent(executionName)}`}>{executionName}</Link>
          </>
        )}{' '}
        › {j.jobName}
      </div>
      <div className="page-head">
        <h1>
          {j.jobName} <StatusBadge status={j.status} />
          {j.cached && <span className="tag">from the cache</span>}
        </h1>
      </div>
      <ErrorBox error={job.error} />
      {j.waiting && (
        <Section title="Why it waits">
          <WaitingView waiting={j.waiting} />
        </Section>
      )}
      <div className="two-col">
        <Section title="Job">
          <Fields
            items={[
              ['Job ID', <code key="i">{j.jobId}</code>],
              ['Status reason', j.statusReason],
              ['Queue', j.queue],
              ['Pipeline', j.pipeline],
              ['Sample', j.sample !== undefined ? sampleLabel(j.sample) : undefined],
              ['Step', j.step],
              ['Created', <Time key="c" ms={j.createdAt} />],
              ['Started', j.startedAt ? <Time key="s" ms={j.startedAt} /> : undefined],
              ['Stopped', j.stoppedAt ? <Time key="t" ms={j.stoppedAt} /> : undefined],
              ['Duration', <Elapsed key="d" start={j.startedAt} stop={j.stoppedAt} />],
              [
                'Size',
                [
                  j.vcpus !== undefined ? `${j.vcpus} vCPU` : '',
                  j.memoryMiB !== undefined ? mebibytes(j.memoryMiB) : '',
                ]
                  .filter(Boolean)
                  .join(', ') || undefined,
              ],
              [
                'Sizing',
                j.sizing
                  ? `${j.sizing.vcpus} vCPU, ${mebibytes(j.sizing.memoryMiB)}: ${j.sizing.reason}`
                  : undefined,
              ],
              ['Attempts allowed', j.maxAttempts !== undefined ? String(j.maxAttempts) : undefined],
              [
                'Timeout',
                j.timeoutSeconds !== undefined ? duration(j.timeoutSeconds * 1000) : undefined,
              ],
              [
                'Depends on',
                j.dependsOn.length
                  ? j.dependsOn.map((d) => (
                      <Link key={d} to={`/jobs/${encodeURIComponent(d)}`} className="dep">
                        {d}
                      </Link>
                    ))
                  : undefined,
              ],
            ]}
          />
        </Section>
        <Section title="Command">
          <Fields items={[['Image', j.image ? <code key="i">{j.image}</code> : undefined]]} />
          <pre className="code">{j.command.map(quoteArg).join(' ')}</pre>
          <details>
            <summary>
              Environment ({j.environment.length}
              {j.secrets.length
                ? `, ${j.secrets.length} secret${j.secrets.length === 1 ? '' : 's'}`
                : ''}
              )
            </summary>
            <table className="grid compact">
              <tbody>
                {j.environment.map((e) => (
                  <tr key={e.name}>
                    <th>{e.name}</th>
                    <td className="break">{e.value}</td>
                  </tr>
                ))}
                {j.secrets.map((s) => (
                  <tr key={`secret:${s.name}`}>
                    <th>{s.name}</th>
                    <td className="muted">secret from {s.valueFrom}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
        </Section>
      </div>

      <Section title="Attempts">
        <table className="grid">
          <thead>
            <tr>
              <th className="num">#</th>
              <th>Started</th>
              <th className="num">Duration</th>
              <th className="num">Exit</th>
              <th>Reason</th>
              <th className="num">vCPU</th>
              <th className="num">Memory</th>
              <th className="num">CPU time</th>
              <th>Log</th>
            </tr>
          </thead>
          <tbody>
            {j.attemptList.map((a) => (
              <tr key={a.attempt} className={a.attempt === attempt ? 'selected' : undefined}>
                <td className="num">{a.attempt}</td>
                <td>
                  <Time ms={a.startedAt} compact />
                </td>
                <td className="num">
                  <Elapsed start={a.startedAt} stop={a.stoppedAt} />
                </td>
                <td
                  className={`num ${a.exitCode !== undefined && a.exitCode !== 0 ? 'bad-text' : ''}`}
                >
                  {a.exitCode ?? ''}
                </td>
                <td className="ellipsis">{a.statusReason ?? a.reason}</td>
                <td className="num">{a.vcpus ?? ''}</td>
                <td className="num">{a.memoryMiB !== undefined ? mebibytes(a.memoryMiB) : ''}</td>
                <td className="num">
                  {a.cpuSeconds !== undefined ? duration(a.cpuSeconds * 1000) : ''}
                </td>
                <td>
                  <button
                    type="button"
                    className="link-button"
                    onClick={() => setPicked(a.attempt)}
                    disabled={a.attempt === attempt}
                  >
                    {a.attempt === attempt ? 'shown' : 'show'}
                  </button>
                </td>
              </tr>
            ))}
            {j.attemptList.length === 0 && (
              <tr>
                <td colSpan={9} className="empty">
                  Not started yet.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </Section>

      <Section title={`Log${attempt !== undefined ? ` (attempt ${attempt})` : ''}`} id="log">
        {attempt !== undefined || j.cached ? (
          <LogView jobId={j.jobId} attempt={attempt} />
        ) : (
          <div className="muted">No attempt has started: no log yet.</div>
        )}
      </Section>

      {j.pipeline && j.sample !== undefined && j.step && (
        <Section title="Outputs" id="outputs">
          <Outputs
            pipeline={j.pipeline}
            sample={j.sample}
            step={j.step}
            execution={j.execution}
            done={j.stoppedAt !== undefined}
          />
        </Section>
      )}
    </div>
  );
}

/** An argument as a shell would need it quoted, for reading only (nothing runs it). */
function quoteArg(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

function Outputs({
  pipeline,
  sample,
  step,
  execution,
  done,
}: {
  pipeline: string;
  sample: string;
  step: string;
  execution?: string;
  done: boolean;
}) {
  const outputs = useResource<OutputsResponse>(
    `/outputs${query({ pipeline, sample, step, execution })}`,
    (e) =>
      e.name === 'job' &&
      e.data.pipeline === pipeline &&
      e.data.sample === sample &&
      e.data.step === step,
  );
  const o = outputs.data;
  if (!o)
    return outputs.error ? (
      <ErrorBox error={outputs.error} />
    ) : (
      <div className="muted">Reading…</div>
    );
  const m = o.manifest;
  return (
    <>
      <div className="paths small">
        <span>
          <span className="muted">Location</span> <code>{o.location}</code>
        </span>
      </div>
      {!m ? (
        <div className="muted">
          {done ? 'Nothing was published for this step.' : 'Published when the job ends.'}
        </div>
      ) : (
        <>
          <Fields
            items={[
              ['Manifest', <StatusBadge key="s" status={m.status} />],
              [
                'Execution',
                <Link key="e" to={`/executions/${encodeURIComponent(m.execution)}`}>
                  {m.execution}
                </Link>,
              ],
              ['Job, attempt', `${m.jobId} · ${m.attempt}`],
              ['Exit code', m.exitCode === null ? undefined : String(m.exitCode)],
              ['Published', <Time key="p" ms={m.publishedAt} />],
              ['Fingerprint', m.fingerprint ? <code key="f">{m.fingerprint}</code> : undefined],
              ['Error', m.error],
            ]}
          />
          <table className="grid outputs">
            <thead>
              <tr>
                <th>Output</th>
                <th>File</th>
                <th className="num">Size</th>
                <th>sha256</th>
              </tr>
            </thead>
            <tbody>
              {m.outputs.flatMap((out) =>
                out.missing || out.files.length === 0
                  ? [
                      <tr key={out.name}>
                        <td>{out.name}</td>
                        <td colSpan={3} className={out.missing ? 'bad-text' : 'muted'}>
                          {out.missing ? `missing: ${out.path}` : `${out.path} (no files)`}
                        </td>
                      </tr>,
                    ]
                  : out.files.map((f, i) => (
                      <tr key={`${out.name}/${f.path}`}>
                        <td>{i === 0 ? out.name : ''}</td>
                        <td>
                          <code title={`${out.location}`}>{f.path}</code>
                        </td>
                        <td className="num" title={`${f.size} bytes`}>
                          {bytes(f.size)}
                        </td>
                        <td>
                          <code className="hash" title={f.sha256}>
                            {f.sha256}
                          </code>
                        </td>
                      </tr>
                    )),
              )}
            </tbody>
          </table>
        </>
      )}
    </>
  );
}
