/**
 * Control of a home from any process. One engine owns a home at a time (its lease row); another
 * process that must stop, redrive or start an execution there records a request, which the
 * owner takes and answers within a fraction of a second (see Engine's requests). When nobody
 * owns the home, or the owner goes away before taking the request, the requester withdraws it
 * and opens the engine itself.
 */
import { hostname } from 'node:os';
import type { Json } from '../asl/types.js';
import { Store, type RequestKind } from './store.js';

/** Whether a process of this host is alive (EPERM: alive, owned by another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether a live engine holds the home's lease now. */
export function ownedByLiveEngine(store: Store, now = Date.now()): boolean {
  const held = store.leaseHolder();
  if (!held || held.expires < now) return false;
  return held.host !== hostname() || pidAlive(held.pid);
}

/** A request refused by the owner: its code, message and details as the owner raised them. */
export class RequestFailedError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details: string[],
  ) {
    super(message);
    this.name = 'RequestFailedError';
  }
}

export type RequestOutcome =
  /** The owner carried it out; its answer. */
  | { served: true; response: Json }
  /**
   * No engine took it (none owns the home, or the owner left): the caller acts itself.
   * `perhaps` when an owner took it and then went away, so it may have been carried out.
   */
  | { served: false; perhaps: boolean };

export interface AskOptions {
  /** How often to look for the answer (default 100 ms). */
  pollMs?: number;
  /** Told once when an owner exists and the request waits for it. */
  onWait?: (holder: { pid: number; host: string }) => void;
}

/**
 * Asks the engine that owns `home` to carry out a request and waits for its answer. Throws
 * RequestFailedError when the owner refused it (bad name, not redrivable, …).
 */
export async function askOwner(
  home: string,
  kind: RequestKind,
  body: Record<string, unknown>,
  options: AskOptions = {},
): Promise<RequestOutcome> {
  const store = Store.open(home);
  try {
    if (!ownedByLiveEngine(store)) return { served: false, perhaps: false };
    const id = store.insertRequest(
      kind,
      JSON.stringify(body),
      `${process.pid}@${hostname()}`,
      Date.now(),
    );
    const holder = store.leaseHolder();
    if (holder) options.onWait?.({ pid: holder.pid, host: holder.host });
    for (;;) {
      const r = store.getRequest(id);
      if (r?.status === 'DONE')
        return { served: true, response: JSON.parse(r.response ?? 'null') as Json };
      if (r?.status === 'FAILED') {
        const e = JSON.parse(r.response ?? '{}') as {
          code?: string;
          message?: string;
          details?: string[];
        };
        throw new RequestFailedError(
          e.code ?? 'ERROR',
          e.message ?? 'the request failed',
          e.details ?? [],
        );
      }
      if (!ownedByLiveEngine(store)) {
        if (store.moveRequest(id, 'PENDING', 'WITHDRAWN')) return { served: false, perhaps: false };
        // Taken, then the owner went away (or it answers right now): look once more.
        const again = store.getRequest(id);
        if (again?.status === 'RUNNING') {
          store.moveRequest(id, 'RUNNING', 'WITHDRAWN');
          return { served: false, perhaps: true };
        }
        continue;
      }
      await new Promise((r) => setTimeout(r, options.pollMs ?? 100));
    }
  } finally {
    store.close();
  }
}
