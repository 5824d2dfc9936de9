/**
 * Paging tokens (`nextToken`): where the next page starts, signed with the server's key (HMAC
 * SHA-256) and bound to the listing they came from, so a token that was altered, made up, or
 * taken from another listing is refused rather than read. They expire after 24 hours, as Step
 * Functions' do.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const VERSION = 'v1';
export const TOKEN_TTL_MS = 24 * 3600 * 1000;

/** A position in a sorted listing: the sort key of the last item given. */
export type Cursor = (string | number)[];

/** Issues and reads the paging tokens of one server (one key). */
export class PageTokens {
  constructor(
    private readonly key: Buffer,
    private readonly now: () => number = Date.now,
  ) {}

  private mac(text: string): string {
    return createHmac('sha256', this.key).update(text).digest('base64url');
  }

  /** A token for the page after `cursor` of the listing `scope` names (action and filters). */
  issue(scope: string, cursor: Cursor): string {
    const body = Buffer.from(
      JSON.stringify({ s: scope, c: cursor, x: this.now() + TOKEN_TTL_MS }),
    ).toString('base64url');
    return `${VERSION}.${body}.${this.mac(`${VERSION}.${body}`)}`;
  }

  /**
   * The cursor a token holds, or why it is refused: not one of this server's, altered, of
   * another listing, or expired.
   */
  read(scope: string, token: string): { cursor: Cursor } | { refused: string } {
    const [version, body, mac, ...rest] = token.split('.');
    if (version !== VERSION || !body || !mac || rest.length > 0)
      return { refused: 'not a paging token of this server' };
    const given = Buffer.from(mac);
    const wanted = Buffer.from(this.mac(`${version}.${body}`));
    if (given.length !== wanted.length || !timingSafeEqual(given, wanted))
      return { refused: 'the token was altered or was not made by this server' };
    let payload: { s?: unknown; c?: unknown; x?: unknown };
    try {
      payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as typeof payload;
    } catch {
      return { refused: 'not a paging token of this server' };
    }
    if (payload.s !== scope)
      return { refused: 'the token belongs to another listing (other action or filters)' };
    if (typeof payload.x !== 'number' || payload.x < this.now())
      return { refused: 'the token has expired (tokens last 24 hours)' };
    if (!Array.isArray(payload.c)) return { refused: 'not a paging token of this server' };
    return { cursor: payload.c as Cursor };
  }
}

function compareKeys(a: Cursor, b: Cursor): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

/**
 * One page of `items`, ordered by `keyOf` (ascending; negate a number to list it descending):
 * those after `after`, at most `limit`, and the cursor of the last one when more follow.
 */
export function page<T>(
  items: readonly T[],
  keyOf: (item: T) => Cursor,
  limit: number,
  after?: Cursor,
): { items: T[]; next?: Cursor } {
  const sorted = items
    .map((item) => ({ item, key: keyOf(item) }))
    .sort((a, b) => compareKeys(a.key, b.key))
    .filter((x) => after === undefined || compareKeys(x.key, after) > 0);
  const taken = sorted.slice(0, limit);
  return {
    items: taken.map((x) => x.item),
    ...(sorted.length > limit ? { next: taken[taken.length - 1].key } : {}),
  };
}
