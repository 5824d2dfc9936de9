import { describe, expect, it } from 'vitest';
import { page, PageTokens, TOKEN_TTL_MS } from '../../src/server/paging.js';

const key = Buffer.alloc(32, 7);

describe('paging tokens', () => {
  it('give back the cursor they were issued for', () => {
    const tokens = new PageTokens(key);
    expect(tokens.read('List|a', tokens.issue('List|a', [-5, 'x']))).toEqual({ cursor: [-5, 'x'] });
  });

  it.each([
    ['garbage', () => 'not-a-token', /not a paging token/],
    [
      'another server’s key',
      () => new PageTokens(Buffer.alloc(32, 8)).issue('List|a', [1]),
      /altered or was not made by this server/,
    ],
    [
      'an altered cursor',
      () => {
        const [v, body, mac] = new PageTokens(key).issue('List|a', [1]).split('.');
        const payload = JSON.parse(Buffer.from(body, 'base64url').toString()) as { c: number[] };
        payload.c = [1000];
        return `${v}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${mac}`;
      },
      /altered/,
    ],
    [
      'a flipped signature character',
      () => new PageTokens(key).issue('List|a', [1]).replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')),
      /altered/,
    ],
    ['another listing', () => new PageTokens(key).issue('List|b', [1]), /another listing/],
    [
      'an expired one',
      () => new PageTokens(key, () => Date.now() - TOKEN_TTL_MS - 1).issue('List|a', [1]),
      /expired/,
    ],
  ])('refuse %s', (_what, make, reason) => {
    const read = new PageTokens(key).read('List|a', make());
    expect('refused' in read && read.refused).toMatch(reason);
  });
});

describe('page', () => {
  const items = ['d', 'a', 'c', 'b', 'e'];
  it('walks a sorted listing to its end, each item once', () => {
    const seen: string[] = [];
    let after: (string | number)[] | undefined;
    for (let i = 0; i < 10; i++) {
      const p = page(items, (x) => [x], 2, after);
      seen.push(...p.items);
      if (!p.next) break;
      after = p.next;
    }
    expect(seen).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('orders by several keys, a negated number listing newest first', () => {
    const rows = [
      { t: 1, n: 'b' },
      { t: 3, n: 'a' },
      { t: 1, n: 'a' },
    ];
    expect(page(rows, (r) => [-r.t, r.n], 10).items).toEqual([rows[1], rows[2], rows[0]]);
  });

  it('gives no cursor when nothing follows', () => {
    expect(page(items, (x) => [x], 5)).toEqual({ items: ['a', 'b', 'c', 'd', 'e'] });
  });
});
