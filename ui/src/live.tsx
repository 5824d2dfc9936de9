/**
 * Live updates: one EventSource on `/ui/api/events` for the whole app, and `useResource`, which
 * reads an endpoint and reads it again whenever an event that concerns it arrives (at most a few
 * times a second, so a burst of job events costs one request). A `reload` event, or coming back
 * after the connection dropped, reads everything again.
 */
import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useRef,
  useState,
  type ReactNode,
} from 'react';
import type { UiEventName, UiEvents } from '../../src/server/ui/types.js';
import { API, api } from './api.js';

export type LiveEvent = { [K in UiEventName]: { name: K; data: UiEvents[K] } }[UiEventName];
type Listener = (event: LiveEvent) => void;

interface LiveContextValue {
  connected: boolean;
  subscribe(fn: Listener): () => void;
}

const LiveContext = createContext<LiveContextValue>({
  connected: false,
  subscribe: () => () => undefined,
});

const EVENT_NAMES: UiEventName[] = ['hello', 'execution', 'job', 'history', 'batch', 'reload'];

/** Holds the event stream open while mounted (that is, while signed in). */
export function LiveProvider({ children }: { children: ReactNode }) {
  const listeners = useRef(new Set<Listener>());
  const [connected, setConnected] = useState(false);

  useEffect(() => {
    const source = new EventSource(`${API}/events`, { withCredentials: true });
    let wasOpen = false;
    const emit = (event: LiveEvent) => {
      for (const fn of listeners.current) fn(event);
    };
    source.onopen = () => {
      setConnected(true);
      // Back after a drop: what happened meanwhile may not all be replayed.
      if (wasOpen) emit({ name: 'reload', data: { reason: 'reconnected' } });
      wasOpen = true;
    };
    source.onerror = () => setConnected(false);
    for (const name of EVENT_NAMES)
      source.addEventListener(name, (e: MessageEvent<string>) => {
        let data: unknown;
        try {
          data = JSON.parse(e.data);
        } catch {
          return;
        }
        emit({ name, data } as LiveEvent);
      });
    return () => source.close();
  }, []);

  const subscribe = useCallback((fn: Listener) => {
    listeners.current.add(fn);
    return () => {
      listeners.current.delete(fn);
    };
  }, []);

  return <LiveContext.Provider value={{ connected, subscribe }}>{children}</LiveContext.Provider>;
}

/** Whether the event stream is connected. */
export const useLiveConnected = (): boolean => useContext(LiveContext).connected;

/** Calls `fn` for every live event while mounted. */
export function useLiveEvents(fn: Listener): void {
  const { subscribe } = useContext(LiveContext);
  const latest = useRef(fn);
  useEffect(() => {
    latest.current = fn;
  });
  useEffect(() => subscribe((e) => latest.current(e)), [subscribe]);
}

export interface Resource<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  /** Reads it again now. */
  reload(): void;
}

const MIN_INTERVAL_MS = 400;

/**
 * Reads `/ui/api${path}` (nothing while `path` is null), and again on each live event for which
 * `concerns` says yes (and on `reload`). The last data stays shown while it is read again.
 */
export function useResource<T>(
  path: string | null,
  concerns: (event: LiveEvent) => boolean = () => false,
): Resource<T> {
  const [state, setState] = useState<{ path: string | null; data?: T; error?: Error }>({
    path,
  });
  const [loading, setLoading] = useState(path !== null);
  const [version, setVersion] = useState(0);
  const lastRead = useRef(0);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  const reload = useCallback(() => {
    if (timer.current !== undefined) return;
    const wait = Math.max(0, lastRead.current + MIN_INTERVAL_MS - Date.now());
    timer.current = setTimeout(() => {
      timer.current = undefined;
      setVersion((v) => v + 1);
    }, wait);
  }, []);

  useEffect(() => () => clearTimeout(timer.current), []);

  useEffect(() => {
    if (path === null) return;
    const abort = new AbortController();
    lastRead.current = Date.now();
    setLoading(true);
    api<T>(path, { signal: abort.signal }).then(
      (data) => {
        setState({ path, data });
        setLoading(false);
      },
      (error: Error) => {
        if (error.name === 'AbortError') return;
        setState((s) => ({ path, data: s.path === path ? s.data : undefined, error }));
        setLoading(false);
      },
    );
    return () => abort.abort();
  }, [path, version]);

  useLiveEvents((e) => {
    if (path !== null && (e.name === 'reload' || concerns(e))) reload();
  });

  const current = state.path === path;
  return {
    data: current ? state.data : undefined,
    error: current ? state.error : undefined,
    loading,
    reload,
  };
}

/** The current time, ticking every `everyMs` (for relative times and running durations). */
export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  return now;
}
