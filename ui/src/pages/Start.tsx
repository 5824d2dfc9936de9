/**
 * Starting a pipeline run, as `strand run` would: the pipeline, which samples, a slice of its
 * steps (from/to, or only one), parameters; then its page.
 */
import { useState, type FormEvent } from 'react';
import { useNavigate, useSearchParams } from 'react-router';
import type {
  PipelineInfo,
  PipelinesResponse,
  StartRunRequest,
  StartRunResponse,
} from '../../../src/server/ui/types.js';
import { api } from '../api.js';
import { ErrorBox, Section, StatusBadge, Time } from '../components/common.js';
import { mebibytes } from '../format.js';
import { useResource } from '../live.js';

export function StartPage() {
  const pipelines = useResource<PipelinesResponse>('/pipelines', (e) => e.name === 'execution');
  const [params] = useSearchParams();
  const list = pipelines.data?.pipelines ?? [];
  const [file, setFile] = useState<string>(params.get('pipeline') ?? '');
  const chosen =
    list.find((p) => p.file === file || p.name === file) ??
    (list.length === 1 ? list[0] : undefined);

  return (
    <div className="page">
      <div className="page-head">
        <h1>Start a run</h1>
      </div>
      <ErrorBox error={pipelines.error} />
      <Section title="Pipeline">
        {list.length === 0 && !pipelines.loading ? (
          <p className="muted">
            No pipeline is known to this server yet: start it with{' '}
            <code>strand server --pipeline pipeline.yaml</code>, or run one once with{' '}
            <code>strand run</code> in this home.
          </p>
        ) : (
          <table className="grid pipelines">
            <thead>
              <tr>
                <th />
                <th>Name</th>
                <th>Description</th>
                <th className="num">Steps</th>
                <th className="num">Samples</th>
                <th>Last run</th>
                <th>File</th>
              </tr>
            </thead>
            <tbody>
              {list.map((p) => (
                <tr
                  key={p.file}
                  className={`clickable${chosen?.file === p.file ? ' selected' : ''}`}
                  onClick={() => setFile(p.file)}
                >
                  <td>
                    <input
                      type="radio"
                      name="pipeline"
                      aria-label={p.name}
                      checked={chosen?.file === p.file}
                      onChange={() => setFile(p.file)}
                    />
                  </td>
                  <td>{p.name}</td>
                  <td className="ellipsis">
                    {p.problem ? <span className="bad-text">{p.problem}</span> : p.description}
                  </td>
                  <td className="num">{p.steps.length}</td>
                  <td className="num">{p.samples.length}</td>
                  <td>
                    {p.lastRun ? (
                      <>
                        <StatusBadge status={p.lastRun.status} />{' '}
                        <Time ms={p.lastRun.startDate} compact />
                      </>
                    ) : (
                      <span className="muted">never</span>
                    )}
                  </td>
                  <td>
                    <code className="small">{p.file}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      {chosen && <RunForm key={chosen.file} pipeline={chosen} />}
    </div>
  );
}

function RunForm({ pipeline }: { pipeline: PipelineInfo }) {
  const navigate = useNavigate();
  const ids = pipeline.samples.map((s) => s.id);
  const [samples, setSamples] = useState<Set<string>>(new Set(ids));
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [only, setOnly] = useState('');
  const [values, setValues] = useState<Record<string, string>>({ ...pipeline.params });
  const [name, setName] = useState('');
  const [noCache, setNoCache] = useState(false);
  const [error, setError] = useState<Error>();
  const [busy, setBusy] = useState(false);

  const steps = pipeline.steps.map((s) => s.name);
  const toggle = (id: string) =>
    setSamples((s) => {
      const n = new Set(s);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const changed = Object.fromEntries(
      Object.entries(values).filter(([k, v]) => pipeline.params[k] !== v),
    );
    const body: StartRunRequest = {
      pipeline: pipeline.file,
      ...(ids.length > 0 && samples.size !== ids.length
        ? { samples: ids.filter((i) => samples.has(i)) }
        : {}),
      ...(only ? { only } : { ...(from ? { from } : {}), ...(to ? { to } : {}) }),
      ...(Object.keys(changed).length ? { params: changed } : {}),
      ...(name.trim() ? { name: name.trim() } : {}),
      ...(noCache ? { noCache } : {}),
    };
    setBusy(true);
    setError(undefined);
    api<StartRunResponse>('/runs', { method: 'POST', body }).then(
      (r) => navigate(`/executions/${encodeURIComponent(r.execution.name)}`),
      (err: Error) => {
        setBusy(false);
        setError(err);
      },
    );
  };

  return (
    <form onSubmit={submit} className="run-form">
      <div className="two-col">
        <Section
          title={`Samples (${samples.size} of ${ids.length})`}
          actions={
            ids.length > 0 && (
              <>
                <button
                  type="button"
                  className="link-button"
                  onClick={() => setSamples(new Set(ids))}
                >
                  all
                </button>
                <button type="button" className="link-button" onClick={() => setSamples(new Set())}>
                  none
                </button>
              </>
            )
          }
        >
          {ids.length === 0 ? (
            <p className="muted">This pipeline has no samples sheet.</p>
          ) : (
            <div className="sample-list">
              {pipeline.samples.map((s) => (
                <label
                  key={s.id}
                  title={Object.entries(s.values)
                    .map(([k, v]) => `${k}=${v}`)
                    .join('\n')}
                >
                  <input
                    type="checkbox"
                    checked={samples.has(s.id)}
                    onChange={() => toggle(s.id)}
                  />{' '}
                  {s.id}
                </label>
              ))}
            </div>
          )}
        </Section>
        <Section title="Steps">
          <div className="form-grid">
            <label>
              From
              <select
                aria-label="From"
                value={from}
                disabled={!!only}
                onChange={(e) => setFrom(e.target.value)}
              >
                <option value="">the first step</option>
                {steps.map((s) => (
                  <option key={s}>{s}</option>
                ))}
              </select>
            </label>
            <label>
              To
              <select
                aria-label="To"
                value={to}
                disabled={!!only}
                onChange={(e) => setTo(e.target.value)}
              >
                <option value="">the last step</option>
                {steps.map((s) => (
                  <option key={s}>{s}</option>
                ))}
              </select>
            </label>
            <label>
              Only
              <select aria-label="Only" value={only} onChange={(e) => setOnly(e.target.value)}>
                <option value="">(every step from–to)</option>
                {steps.map((s) => (
                  <option key={s}>{s}</option>
                ))}
              </select>
            </label>
          </div>
          <table className="grid compact steps">
            <tbody>
              {pipeline.steps.map((s) => (
                <tr key={s.name}>
                  <th>{s.name}</th>
                  <td className="muted small">
                    {s.scope === 'all' ? 'once over all samples' : 'per sample'}
                    {s.needs.length > 0 && ` · after ${s.needs.join(', ')}`}
                  </td>
                  <td className="muted small">
                    {s.jobs
                      .map(
                        (j) =>
                          `${j.name}: ${j.vcpusMin !== undefined ? `${j.vcpusMin}-` : ''}${j.vcpus} vCPU, ${mebibytes(j.memoryMiB)}`,
                      )
                      .join('; ')}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      </div>
      <Section title="Parameters and options">
        <div className="form-grid">
          {Object.keys(values).map((k) => (
            <label key={k}>
              {k}
              <input
                value={values[k]}
                spellCheck={false}
                onChange={(e) => setValues((v) => ({ ...v, [k]: e.target.value }))}
              />
            </label>
          ))}
          <label>
            Execution name
            <input
              placeholder={`${pipeline.name}-(time)`}
              value={name}
              spellCheck={false}
              onChange={(e) => setName(e.target.value)}
            />
          </label>
          <label className="inline">
            <input
              type="checkbox"
              checked={noCache}
              onChange={(e) => setNoCache(e.target.checked)}
            />{' '}
            run every job, even those the cache has
          </label>
        </div>
      </Section>
      <ErrorBox error={error} />
      <div className="form-actions">
        <button
          type="submit"
          className="primary"
          disabled={busy || (ids.length > 0 && samples.size === 0)}
        >
          {busy ? 'Starting…' : 'Start run'}
        </button>
        <span className="muted small">
          as{' '}
          <code>
            strand run {pipeline.file}
            {only ? ` --only ${only}` : ''}
            {!only && from ? ` --from ${from}` : ''}
            {!only && to ? ` --to ${to}` : ''}
            {ids.length > 0 && samples.size !== ids.length
              ? ` --samples ${ids.filter((i) => samples.has(i)).join(',')}`
              : ''}
          </code>
        </span>
      </div>
    </form>
  );
}
