/**
 * A job attempt's log, read in pieces from where the last piece ended: while the attempt runs it
 * is read on each second and on each event about the job, and the view follows its end (unless
 * the reader scrolls up or turns following off).
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { JobLogResponse } from '../../../src/server/ui/types.js';
import { api, query } from '../api.js';
import { bytes } from '../format.js';
import { useLiveEvents } from '../live.js';
import { ErrorBox } from './common.js';

/** What the view keeps of a very long log: its end. */
const MAX_CHARS = 2_000_000;
const POLL_MS = 1000;

export function LogView({ jobId, attempt }: { jobId: string; attempt: number | undefined }) {
  const [log, setLog] = useState<{ key: string; text: string; meta?: JobLogResponse }>({
    key: '',
    text: '',
  });
  const [error, setError] = useState<Error>();
  const [follow, setFollow] = useState(true);
  const pre = useRef<HTMLPreElement>(null);
  const key = `${jobId}#${attempt ?? 'latest'}`;
  const state = useRef({ key, offset: 0, complete: false, busy: false });

  const readOn = useCallback(async () => {
    const s = state.current;
    if (s.busy || s.complete) return;
    s.busy = true;
    const asked = s.key;
    try {
      const r = await api<JobLogResponse>(
        `/jobs/${encodeURIComponent(jobId)}/log${query({ offset: s.offset, attempt })}`,
      );
      if (state.current.key !== asked) return;
      s.offset = r.nextOffset;
      s.complete = r.complete;
      setLog((prev) => {
        const text = (prev.key === asked ? prev.text : '') + r.text;
        return {
          key: asked,
          text: text.length > MAX_CHARS ? text.slice(-MAX_CHARS) : text,
          meta: r,
        };
      });
      setError(undefined);
    } catch (err) {
      setError(err as Error);
    } finally {
      s.busy = false;
    }
  }, [jobId, attempt]);

  useEffect(() => {
    state.current = { key, offset: 0, complete: false, busy: false };
    setLog({ key, text: '' });
    void readOn();
    const t = setInterval(() => void readOn(), POLL_MS);
    return () => clearInterval(t);
  }, [key, readOn]);

  useLiveEvents((e) => {
    if (e.name === 'job' && e.data.jobId === jobId) void readOn();
  });

  useEffect(() => {
    if (follow && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [log.text, follow]);

  const meta = log.key === key ? log.meta : undefined;
  const text = log.key === key ? log.text : '';
  return (
    <div className="log">
      <div className="log-head">
        <span className="muted">
          {meta ? (
            <>
              attempt {meta.attempt} · {bytes(meta.size)}
              {meta.complete ? ' · complete' : ' · following…'}
              {meta.source && (
                <>
                  {' · '}
                  <code>{meta.source}</code>
                </>
              )}
            </>
          ) : (
            'reading…'
          )}
        </span>
        <label>
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} />{' '}
          follow
        </label>
      </div>
      <ErrorBox error={error} />
      <pre
        ref={pre}
        className="log-text"
        data-complete={meta?.complete ? 'true' : 'false'}
        aria-label="Job log"
        onScroll={(e) => {
          const el = e.currentTarget;
          const atEnd = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
          if (!atEnd && follow && !meta?.complete) setFollow(false);
        }}
      >
        {text || (meta ? <span className="muted">(empty log)</span> : '')}
      </pre>
    </div>
  );
}
