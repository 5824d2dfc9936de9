/**
 * The dashboard's sign-in: the server's own key pair (the one the APIs are signed with), checked
 * in constant time, gives a session held in a cookie — its expiry and a random id, signed with
 * an HMAC whose key is derived from the secret key, so no session outlives a change of the key
 * pair and nothing is stored server-side but the ids of sessions signed out early.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The cookie's name. */
export const SESSION_COOKIE = 'strand_session';
/** How long a session lasts. */
export const SESSION_MS = 12 * 60 * 60 * 1000;

export interface SessionData {
  /** Epoch ms. */
  expiresAt: number;
  id: string;
}

/** Equal strings, compared in a time that does not depend on where they differ. */
export function sameSecret(a: string, b: string): boolean {
  // Digests first: equal lengths, so the comparison leaks not even the length.
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db) && a.length === b.length;
}

/** Makes and checks session cookies for one key pair. */
export class Sessions {
  private readonly key: Buffer;
  /** Ids signed out before they expired, with their expiry (dropped once past it). */
  private readonly revoked = new Map<string, number>();

  constructor(
    private readonly keys: { accessKeyId: string; secretAccessKey: string },
    private readonly now: () => number,
  ) {
    this.key = createHmac('sha256', keys.secretAccessKey).update('strand-ui-session-v1').digest();
  }

  /** Whether `accessKeyId` and `secretAccessKey` are the server's (both checked, always). */
  matches(accessKeyId: string, secretAccessKey: string): boolean {
    const id = sameSecret(accessKeyId, this.keys.accessKeyId);
    const secret = sameSecret(secretAccessKey, this.keys.secretAccessKey);
    return id && secret;
  }

  get accessKeyId(): string {
    return this.keys.accessKeyId;
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }

  /** A new session's cookie value. */
  issue(): { value: string; session: SessionData } {
    const session = {
      expiresAt: this.now() + SESSION_MS,
      id: randomBytes(16).toString('base64url'),
    };
    const payload = `v1.${session.expiresAt}.${session.id}`;
    return { value: `${payload}.${this.sign(payload)}`, session };
  }

  /** The session a cookie value holds, when its signature is right and it has not ended. */
  verify(value: string | undefined): SessionData | undefined {
    if (!value) return undefined;
    const m = /^(v1\.(\d{1,15})\.([A-Za-z0-9_-]{1,64}))\.([A-Za-z0-9_-]{43})$/.exec(value);
    if (!m) return undefined;
    const expected = Buffer.from(this.sign(m[1]));
    const given = Buffer.from(m[4]);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
    const expiresAt = Number(m[2]);
    if (expiresAt <= this.now() || this.revoked.has(m[3])) return undefined;
    return { expiresAt, id: m[3] };
  }

  /** Ends a session before its time (sign-out). */
  revoke(session: SessionData): void {
    const now = this.now();
    for (const [id, until] of this.revoked) if (until <= now) this.revoked.delete(id);
    this.revoked.set(session.id, session.expiresAt);
  }
}

/** Failed sign-ins a client may make within `SIGN_IN_WINDOW_MS` before it must wait. */
export const SIGN_IN_ATTEMPTS = 10;
export const SIGN_IN_WINDOW_MS = 5 * 60 * 1000;

/**
 * Failed sign-ins by client address: after `SIGN_IN_ATTEMPTS` within `SIGN_IN_WINDOW_MS`, further
 * ones are refused until the oldest leaves the window. The secret is random and long, so this is
 * not what keeps it safe; it keeps a script guessing at it from filling the log and the CPU.
 */
export class SignInLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly now: () => number,
    private readonly attempts = SIGN_IN_ATTEMPTS,
    private readonly windowMs = SIGN_IN_WINDOW_MS,
  ) {}

  /** Seconds `client` must wait before signing in again; 0 when it may now. */
  waitFor(client: string): number {
    const recent = this.recent(client);
    if (recent.length < this.attempts) return 0;
    return Math.max(1, Math.ceil((recent[0] + this.windowMs - this.now()) / 1000));
  }

  failed(client: string): void {
    const times = [...this.recent(client), this.now()];
    // Re-inserted, so the map runs from the oldest last failure to the newest.
    this.failures.delete(client);
    this.failures.set(client, times);
    // Forget clients whose failures have all left the window, so the map stays small: they are
    // at its start, and the first with a failure in the window ends the sweep.
    const since = this.now() - this.windowMs;
    for (const [key, list] of this.failures) {
      if (list[list.length - 1] > since) break;
      this.failures.delete(key);
    }
  }

  succeeded(client: string): void {
    this.failures.delete(client);
  }

  /** How many clients' failures are remembered. */
  get remembered(): number {
    return this.failures.size;
  }

  private recent(client: string): number[] {
    const since = this.now() - this.windowMs;
    return (this.failures.get(client) ?? []).filter((t) => t > since);
  }
}
