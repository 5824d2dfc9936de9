/**
 * An execution's event history (as the Step Functions console's table): read in pages, then
 * read on from the last event each time the server says there are new ones.
 */
import { Fragment, useCallback, useEffect, useRef, useState } from 'react';
import type { HistoryEventInfo, HistoryResponse } from '../../../src/server/ui/types.js';
import { api, query } from '../api.js';
import { absoluteTime, duration } from '../format.js';
import { useLiveEvents } from '../live.js';
import { ErrorBox, JsonBlock } from './common.js';

const PAGE = 500;

/** The `…EventDetails` object of an event, whatever its type. */
function detailsOf(e: HistoryEventInfo): Record<string, unknown> | undefined {
  for (const [k, v] of Object.entries(e))
    if (k.endsWith('EventDetails') && v && typeof v === 'object')
      return v as Record<string, unknown>;
  return undefined;
}

/** What the event is about, in a few words: the state's name, the resource, the error. */
function summaryOf(e: HistoryEventInfo): string {
  const d = detailsOf(e);
  if (!d) return '';
  const parts: string[] = [];
  for (const k of ['name', 'resourceType', 'resource', 'error', 'cause', 'index'])
    if (d[k] !== undefined && d[k] !== null && typeof d[k] !== 'object') parts.push(String(d[k]));
  return parts.join(' · ');
}

const tone = (type: string) =>
  /Failed|TimedOut|Aborted/.test(type)
    ? 'bad'
    : /Succeeded|Exited/.test(type)
      ? 'ok'
      : /Started|Entered|Scheduled|Submitted/.test(type)
        ? 'run'
        : 'none';

export function History({ execution }: { execution: string }) {
  const [events, setEvents] = useState<HistoryEventInfo[]>([]);
  const [error, setError] = useState<Error>();
  const [open, setOpen] = useState<Set<number>>(new Set());
  const last = useRef(0);
  const reading = useRef(false);
  const again = useRef(false);

  const readOn = useCallback(async () => {
    if (reading.current) {
      again.current = true;
      return;
    }
    reading.current = true;
    try {
      for (;;) {
        again.current = false;
        const r = await api<HistoryResponse>(
          `/executions/${encodeURIComponent(execution)}/history${query({ after: last.current, limit: PAGE })}`,
        );
        if (r.events.length)
          setEvents((prev) => [...prev, ...r.events.filter((e) => e.id > (prev.at(-1)?.id ?? 0))]);
        last.current = Math.max(last.current, r.lastEventId);
        if (!r.more && !again.current) break;
      }
      setError(undefined);
    } catch (err) {
      setError(err as Error);
    } finally {
      reading.current = false;
    }
  }, [execution]);

  useEffect(() => {
    last.current = 0;
    setEvents([]);
    void readOn();
  }, [readOn]);

  useLiveEvents((e) => {
    if (e.name === 'history' && e.data.execution === execution && e.data.lastEventId > last.current)
      void readOn();
    if (e.name === 'reload') void readOn();
  });

  const t0 = events[0]?.timestamp ?? 0;
  const toggle = (id: number) =>
    setOpen((s) => {
      const n = new Set(s);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });

  return (
    <>
      <ErrorBox error={error} />
      <table className="grid history">
        <thead>
          <tr>
            <th className="num">ID</th>
            <th>Type</th>
            <th>Details</th>
            <th className="num">Elapsed</th>
            <th>Timestamp</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <Fragment key={e.id}>
              <tr className="clickable" onClick={() => toggle(e.id)}>
                <td className="num">{e.id}</td>
                <td>
                  <span className={`dot tone-${tone(e.type)}`} /> {e.type}
                </td>
                <td className="ellipsis">{summaryOf(e)}</td>
                <td className="num">{duration(e.timestamp - t0)}</td>
                <td className="muted">{absoluteTime(e.timestamp)}</td>
              </tr>
              {open.has(e.id) && (
                <tr className="details-row">
                  <td colSpan={5}>
                    <JsonBlock value={detailsOf(e) ?? {}} />
                  </td>
                </tr>
              )}
            </Fragment>
          ))}
          {events.length === 0 && (
            <tr>
              <td colSpan={5} className="empty">
                No events yet.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </>
  );
}
