/**
 * Calls to the dashboard's API (`/ui/api/*` of the same server; no other address is ever
 * fetched). The session is a cookie the server sets at sign-in; a 401 anywhere means it has
 * ended, and the app goes back to the sign-in page.
 */
import type { UiErrorBody } from '../../src/server/ui/types.js';

export const API = '/ui/api';

/** An answer other than 2xx, with the server's error body when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: UiErrorBody,
  ) {
    super(body.message);
    this.name = 'ApiError';
  }
}

const signedOutListeners = new Set<() => void>();

/** Calls `fn` whenever a request finds the session gone; returns the unsubscribe. */
export function onSignedOut(fn: () => void): () => void {
  signedOutListeners.add(fn);
  return () => signedOutListeners.delete(fn);
}

/** A query string of the values given (empty and undefined ones left out). */
export function query(
  params: Record<string, string | number | boolean | undefined | null>,
): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '' && v !== false) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** GET (or, with `body`, POST/DELETE) `/ui/api${path}`, parsed as JSON. */
export async function api<T>(
  path: string,
  init: { method?: 'GET' | 'POST' | 'DELETE'; body?: unknown; signal?: AbortSignal } = {},
): Promise<T> {
  const method = init.method ?? (init.body === undefined ? 'GET' : 'POST');
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET') headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(`${API}${path}`, {
      method,
      headers,
      credentials: 'same-origin',
      body: method === 'GET' ? undefined : JSON.stringify(init.body ?? {}),
      signal: init.signal,
    });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, {
      error: 'Unreachable',
      message: `the server does not answer (${(err as Error).message})`,
    });
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const body =
      parsed && typeof parsed === 'object' && 'message' in parsed
        ? (parsed as UiErrorBody)
        : { error: res.statusText || 'Error', message: `${method} ${path}: HTTP ${res.status}` };
    // Signing in itself answers 401 for wrong keys: that is the form's to show, not a sign-out.
    if (res.status === 401 && path !== '/session') for (const fn of signedOutListeners) fn();
    throw new ApiError(res.status, body);
  }
  return parsed as T;
}
