/**
 * The dashboard's server side through `app.request()` (no socket): signing in with the server's
 * key pair, the session cookie and what it refuses (wrong keys, an expired, tampered or signed
 * out cookie), the CSRF guard, the front end's files, a browser's `GET /`, and JSON errors for
 * bad input of every kind.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { serverApp } from '../../src/server/app.js';
import { loadOrCreateCredentials } from '../../src/server/credentials.js';
import { ServerHome } from '../../src/server/home.js';
import { Registry } from '../../src/server/registry.js';
import { Dashboard } from '../../src/server/ui/dashboard.js';
import {
  SESSION_MS,
  SIGN_IN_ATTEMPTS,
  SIGN_IN_WINDOW_MS,
  SignInLimiter,
} from '../../src/server/ui/session.js';
import type { ExecutionDetail, SessionInfo, UiErrorBody } from '../../src/server/ui/types.js';
import { openSmall, sfnRequest, tempHome, waitUntil, type Keys } from './helpers.js';

const cleanup: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** A built front end: index.html and one hashed asset. */
function frontEnd(): string {
  const dir = mkdtempSync(join(tmpdir(), 'strand-ui-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(
    join(dir, 'index.html'),
    '<!doctype html><html><head><script type="module" src="/ui/assets/index-Ab12Cd34.js"></script></head><body><div id="root"></div></body></html>',
  );
  writeFileSync(join(dir, 'assets', 'index-Ab12Cd34.js'), 'console.log("strand");\n');
  return dir;
}

async function dashboardApp(options: { uiDir?: string; secure?: boolean } = {}) {
  const home = tempHome();
  const credentials = loadOrCreateCredentials(home);
  const registry = Registry.open(home);
  const serverHome = new ServerHome({ home, open: openSmall(home), retryMs: 50 });
  await serverHome.start();
  const clock = { now: Date.now() };
  const log: string[] = [];
  const dashboard = new Dashboard({
    home: serverHome,
    credentials,
    uiDir: options.uiDir ?? frontEnd(),
    secure: options.secure,
    now: () => clock.now,
    log: (l) => log.push(l),
  });
  cleanup.push(async () => {
    await dashboard.close();
    serverHome.close();
    registry.close();
  });
  const app = serverApp({ home: serverHome, registry, credentials, dashboard });
  const keys: Keys = {
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
  };
  const json = { 'content-type': 'application/json' };
  const signIn = async (k: Keys = keys) =>
    app.request('/ui/api/session', { method: 'POST', headers: json, body: JSON.stringify(k) });
  /** The cookie a sign-in sets, as a browser sends it back. */
  const cookieOf = (res: Response) => (res.headers.get('set-cookie') ?? '').split(';')[0];
  const get = (path: string, cookie?: string) =>
    app.request(path, { headers: cookie ? { cookie } : {} });
  return { app, keys, clock, signIn, cookieOf, get, json, home, log };
}

async function errorOf(res: Response): Promise<UiErrorBody> {
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as UiErrorBody;
  expect(typeof body.error).toBe('string');
  expect(typeof body.message).toBe('string');
  expect(body.message).not.toMatch(/\n\s+at /); // no stack trace
  return body;
}

const API_GETS = [
  '/ui/api/executions',
  '/ui/api/executions/some-run',
  '/ui/api/executions/some-run/history',
  '/ui/api/jobs/0000',
  '/ui/api/jobs/0000/log',
  '/ui/api/outputs?pipeline=p&sample=s&step=x',
  '/ui/api/results?pipeline=p',
  '/ui/api/batch',
  '/ui/api/pipelines',
  '/ui/api/events',
  '/ui/api/no-such-endpoint',
];

describe('signing in', () => {
  it('takes the server’s key pair and sets an HttpOnly, SameSite=Strict session cookie on /ui', async () => {
    const { signIn, cookieOf, get, clock } = await dashboardApp();
    const res = await signIn();
    expect(res.status).toBe(200);
    const info = (await res.json()) as SessionInfo;
    expect(info.signedIn).toBe(true);
    expect(info.expiresAt).toBe(clock.now + SESSION_MS);
    const setCookie = res.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/^strand_session=v1\./);
    expect(setCookie).toMatch(/; HttpOnly/);
    expect(setCookie).toMatch(/; SameSite=Strict/);
    expect(setCookie).toMatch(/; Path=\/ui/);
    expect(setCookie).toMatch(/; Max-Age=43200/);
    // Served over plain HTTP here: a Secure cookie would never come back.
    expect(setCookie).not.toMatch(/Secure/);
    const cookie = cookieOf(res);
    const session = (await (await get('/ui/api/session', cookie)).json()) as SessionInfo;
    expect(session).toMatchObject({ signedIn: true, owner: true });
    const listed = await get('/ui/api/executions', cookie);
    expect(listed.status).toBe(200);
    expect(await listed.json()).toEqual({ executions: [] });
  });

  it('marks the cookie Secure when the server runs TLS', async () => {
    const { signIn } = await dashboardApp({ secure: true });
    const res = await signIn();
    expect(res.status).toBe(200);
    expect(res.headers.get('set-cookie')).toMatch(/; HttpOnly; Secure; SameSite=Strict$/);
  });

  it.each([
    ['a wrong secret', (k: Keys) => ({ ...k, secretAccessKey: `${k.secretAccessKey}x` })],
    ['a wrong key id', (k: Keys) => ({ ...k, accessKeyId: 'AKSTWRONGWRONGWRONG1' })],
    [
      'both swapped',
      (k: Keys) => ({ accessKeyId: k.secretAccessKey, secretAccessKey: k.accessKeyId }),
    ],
  ])('refuses %s with 401 and no cookie', async (_what, change) => {
    const { signIn, keys } = await dashboardApp();
    const res = await signIn(change(keys));
    expect(res.status).toBe(401);
    expect(res.headers.get('set-cookie')).toBeNull();
    const body = await errorOf(res);
    expect(body.error).toBe('Unauthorized');
    expect(body.message).toMatch(/profile strand of .*credentials/);
    expect(body.message).not.toContain(keys.secretAccessKey);
  });

  it('refuses sign-ins with 429 after too many failed ones, until the window has passed', async () => {
    const { signIn, keys, clock } = await dashboardApp();
    const wrong = { ...keys, secretAccessKey: `${keys.secretAccessKey}x` };
    for (let i = 0; i < SIGN_IN_ATTEMPTS; i++) {
      expect((await signIn(wrong)).status).toBe(401);
      clock.now += 1000;
    }
    // Even the right key pair waits: a guess that happens to be right must not tell itself apart.
    for (const k of [wrong, keys]) {
      const res = await signIn(k);
      expect(res.status).toBe(429);
      expect(res.headers.get('set-cookie')).toBeNull();
      const wait = Number(res.headers.get('retry-after'));
      expect(wait).toBe((SIGN_IN_WINDOW_MS - SIGN_IN_ATTEMPTS * 1000) / 1000);
      const body = await errorOf(res);
      expect(body.error).toBe('TooManyRequests');
      expect(body.message).toMatch(new RegExp(`try again in ${wait} s`));
    }
    // Once the first failure has left the window, one more try is allowed.
    clock.now += SIGN_IN_WINDOW_MS - SIGN_IN_ATTEMPTS * 1000 + 1;
    expect((await signIn(keys)).status).toBe(200);
    // A success forgets the failures.
    for (let i = 0; i < SIGN_IN_ATTEMPTS - 1; i++) expect((await signIn(wrong)).status).toBe(401);
    expect((await signIn(keys)).status).toBe(200);
  });

  it('keeps limiting an address while thousands of others fail and are forgotten', () => {
    let now = 0;
    const limiter = new SignInLimiter(() => now);
    const step = SIGN_IN_WINDOW_MS / 3000;
    // 6000 addresses fail once each over two windows; one keeps failing among them.
    for (let i = 0; i < 6000; i++) {
      now += step;
      limiter.failed(`10.0.${i >> 8}.${i & 255}`);
      if (i % 300 === 0) limiter.failed('attacker');
      // Only the addresses whose failure is in the window are remembered (and the attacker).
      expect(limiter.remembered).toBeLessThanOrEqual(3001);
    }
    // The attacker failed 10 times within the last window: it waits; the others need not.
    expect(limiter.waitFor('attacker')).toBeGreaterThan(0);
    expect(limiter.waitFor('10.0.23.111')).toBe(0);
    // A success forgets it.
    limiter.succeeded('attacker');
    expect(limiter.waitFor('attacker')).toBe(0);
  });

  it('refuses a body without the two keys, or not JSON, with 400', async () => {
    const { app, json } = await dashboardApp();
    for (const body of ['{"accessKeyId": "x"}', '[]', '{"accessKeyId": 1, "secretAccessKey": 2}']) {
      const res = await app.request('/ui/api/session', { method: 'POST', headers: json, body });
      expect(res.status).toBe(400);
      expect((await errorOf(res)).message).toMatch(/accessKeyId.*secretAccessKey/);
    }
    const res = await app.request('/ui/api/session', {
      method: 'POST',
      headers: json,
      body: '{"a":',
    });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).message).toMatch(/not valid JSON/);
  });

  it('ends a session after 12 hours', async () => {
    const { signIn, cookieOf, get, clock } = await dashboardApp();
    const cookie = cookieOf(await signIn());
    clock.now += SESSION_MS - 1;
    expect((await get('/ui/api/executions', cookie)).status).toBe(200);
    clock.now += 1;
    const res = await get('/ui/api/executions', cookie);
    expect(res.status).toBe(401);
    expect((await errorOf(res)).error).toBe('Unauthorized');
    expect(((await (await get('/ui/api/session', cookie)).json()) as SessionInfo).signedIn).toBe(
      false,
    );
  });

  it('refuses a tampered cookie: another expiry, another signature, another id, or garbage', async () => {
    const { signIn, cookieOf, get } = await dashboardApp();
    const cookie = cookieOf(await signIn());
    const [, value] = /^strand_session=(.*)$/.exec(cookie)!;
    const [v, expiry, id, sig] = value.split('.');
    const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
    const forged = [
      [v, String(Number(expiry) + 3_600_000), id, sig],
      [v, expiry, id, flip(sig)],
      [v, expiry, flip(id), sig],
      ['v2', expiry, id, sig],
    ].map((parts) => `strand_session=${parts.join('.')}`);
    for (const bad of [
      ...forged,
      'strand_session=',
      'strand_session=x.y.z',
      `strand_session=${value}x`,
    ]) {
      const res = await get('/ui/api/executions', bad);
      expect(res.status, bad).toBe(401);
    }
    expect((await get('/ui/api/executions', cookie)).status).toBe(200);
  });

  it('signs out: the cookie is cleared, and the old one is refused from then on', async () => {
    const { app, signIn, cookieOf, get, json } = await dashboardApp();
    const cookie = cookieOf(await signIn());
    const out = await app.request('/ui/api/session', {
      method: 'DELETE',
      headers: { ...json, cookie },
    });
    expect(out.status).toBe(200);
    expect(await out.json()).toEqual({ signedIn: false });
    expect(out.headers.get('set-cookie')).toMatch(/^strand_session=; Max-Age=0; .*Path=\/ui/);
    expect((await get('/ui/api/executions', cookie)).status).toBe(401);
  });

  it('answers every API path with 401 JSON without a session', async () => {
    const { get, app, json } = await dashboardApp();
    for (const path of API_GETS) {
      const res = await get(path);
      expect(res.status, path).toBe(401);
      expect((await errorOf(res)).error).toBe('Unauthorized');
    }
    for (const path of [
      '/ui/api/runs',
      '/ui/api/executions/x/stop',
      '/ui/api/executions/x/redrive',
    ]) {
      const res = await app.request(path, { method: 'POST', headers: json, body: '{}' });
      expect(res.status, path).toBe(401);
    }
    expect(((await (await get('/ui/api/session')).json()) as SessionInfo).signedIn).toBe(false);
  });
});

describe('the CSRF guard', () => {
  it('refuses a state-changing request that is not application/json, or from another origin', async () => {
    const { app, signIn, cookieOf, keys } = await dashboardApp();
    const cookie = cookieOf(await signIn());
    const cases: [string, string, Record<string, string>][] = [
      ['POST', '/ui/api/runs', { 'content-type': 'text/plain' }],
      ['POST', '/ui/api/runs', { 'content-type': 'application/x-www-form-urlencoded' }],
      ['POST', '/ui/api/executions/x/stop', {}],
      ['DELETE', '/ui/api/session', { 'content-type': 'multipart/form-data; boundary=x' }],
      [
        'POST',
        '/ui/api/runs',
        { 'content-type': 'application/json', origin: 'https://evil.example' },
      ],
    ];
    for (const [method, path, headers] of cases) {
      const res = await app.request(path, {
        method,
        headers: { ...headers, cookie, host: 'localhost' },
        body: '{"pipeline": "x"}',
      });
      expect(res.status, `${method} ${path} ${JSON.stringify(headers)}`).toBe(403);
      expect((await errorOf(res)).error).toBe('Forbidden');
    }
    // A sign-in by a form of another site is refused the same way.
    const form = await app.request('/ui/api/session', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `accessKeyId=${keys.accessKeyId}&secretAccessKey=${encodeURIComponent(keys.secretAccessKey)}`,
    });
    expect(form.status).toBe(403);
    // With the right content type the same session is still good.
    const ok = await app.request('/ui/api/executions', { headers: { cookie } });
    expect(ok.status).toBe(200);
  });
});

describe('the front end', () => {
  it('is served without a session: index.html, hashed assets, and index.html for its own routes', async () => {
    const { get } = await dashboardApp();
    const index = await get('/ui/');
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expect(index.headers.get('x-frame-options')).toBe('DENY');
    expect(await index.text()).toContain('<div id="root">');
    const asset = await get('/ui/assets/index-Ab12Cd34.js');
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(asset.headers.get('cache-control')).toMatch(/immutable/);
    for (const route of ['/ui/executions/run-1', '/ui/batch', '/ui/runs/new?x=1']) {
      const page = await get(route);
      expect(page.status, route).toBe(200);
      expect(await page.text()).toContain('<div id="root">');
    }
    expect((await get('/ui/assets/gone-12345678.js')).status).toBe(404);
    const redirect = await get('/ui');
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get('location')).toBe('/ui/');
  });

  it('never serves a file from outside its folder', async () => {
    const { get } = await dashboardApp();
    for (const path of [
      '/ui/..%2f..%2f..%2fetc%2fpasswd',
      '/ui/%2e%2e/%2e%2e/etc/passwd',
      '/ui/assets/..%2f..%2fcredentials',
    ]) {
      const res = await get(path);
      const text = await res.text();
      expect(text, path).not.toMatch(/root:|aws_secret_access_key/);
    }
  });

  it('answers 503 saying to run npm run build when dist/ui is missing', async () => {
    const { get } = await dashboardApp({ uiDir: join(tmpdir(), 'strand-no-such-ui-dir') });
    const res = await get('/ui/');
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/npm run build/);
  });

  it('sends a browser’s GET / to /ui/, and leaves the APIs’ answers as they were', async () => {
    const { app, keys } = await dashboardApp();
    const browser = await app.request('/', {
      headers: { accept: 'text/html,application/xhtml+xml' },
    });
    expect(browser.status).toBe(302);
    expect(browser.headers.get('location')).toBe('/ui/');
    // Not a browser: the Step Functions endpoint's answer to an unsigned request, as before.
    const unsigned = await app.request('/', { headers: { accept: 'application/json' } });
    expect(unsigned.status).toBe(403);
    expect(unsigned.headers.get('content-type')).toBe('application/x-amz-json-1.0');
    expect(((await unsigned.json()) as { __type: string }).__type).toBe(
      'MissingAuthenticationTokenException',
    );
    // A signed request is the API's, whatever it accepts.
    const signed = await app.request(sfnRequest('http://localhost', keys, 'ListStateMachines', {}));
    expect(signed.status).toBe(200);
    expect(await signed.json()).toEqual({ stateMachines: [] });
  });
});

describe('bad input', () => {
  it('answers with JSON errors that say what was wrong, and suggests the name meant', async () => {
    const { app, signIn, cookieOf, get, json } = await dashboardApp();
    const cookie = cookieOf(await signIn());
    const cases: [string, number, RegExp][] = [
      ['/ui/api/executions?status=DONE', 400, /status=DONE: give one of RUNNING, SUCCEEDED/],
      ['/ui/api/executions?since=yesterday', 400, /since=yesterday: give a time/],
      ['/ui/api/executions?since=2026-12-02&until=2026-12-01', 400, /until=2026-12-01 is before/],
      ['/ui/api/executions?limit=0', 400, /limit=0: give a whole number from 1 to 500/],
      ['/ui/api/executions?nextToken=bogus', 400, /nextToken=bogus: not a token/],
      ['/ui/api/executions?colour=red', 400, /unknown parameter colour=/],
      ['/ui/api/executions?status=RUNNING&status=FAILED', 400, /status= is given 2 times/],
      ['/ui/api/executions?pipeline=nope', 404, /no pipeline "nope"/],
      ['/ui/api/executions/no-such-run', 404, /no execution "no-such-run"/],
      ['/ui/api/jobs/no-such-job', 404, /no job "no-such-job"/],
      ['/ui/api/results?format=xml', 400, /format=xml: give json or csv/],
      ['/ui/api/results?metrics=true', 400, /metrics=true needs pipeline= and step=/],
      ['/ui/api/outputs?pipeline=p', 400, /sample= is needed/],
      ['/ui/api/nothing-here', 404, /no such endpoint/],
    ];
    for (const [path, status, message] of cases) {
      const res = await get(path, cookie);
      expect(res.status, path).toBe(status);
      expect((await errorOf(res)).message, path).toMatch(message);
    }
    const post = (path: string, body: string, headers: Record<string, string> = {}) =>
      app.request(path, { method: 'POST', headers: { ...json, cookie, ...headers }, body });
    const malformed = await post('/ui/api/runs', '{"pipeline": ');
    expect(malformed.status).toBe(400);
    expect((await errorOf(malformed)).message).toMatch(/not valid JSON/);
    const big = await post('/ui/api/runs', JSON.stringify({ pipeline: 'x'.repeat(70_000) }));
    expect(big.status).toBe(413);
    expect((await errorOf(big)).error).toBe('PayloadTooLarge');
    const unknownRun = await post('/ui/api/runs', JSON.stringify({ pipeline: 'nothing' }));
    expect(unknownRun.status).toBe(404);
    const extra = await post('/ui/api/runs', JSON.stringify({ pipeline: 'x', sample: ['a'] }));
    expect(extra.status).toBe(400);
    expect((await errorOf(extra)).message).toMatch(
      /unknown field sample \(did you mean samples\?\)/,
    );
    const stop = await post('/ui/api/executions/nothing/stop', '{}');
    expect(stop.status).toBe(404);
  });

  it('suggests the execution a misspelt name means', async () => {
    const { app, signIn, cookieOf, get, keys } = await dashboardApp();
    const cookie = cookieOf(await signIn());
    const definition = JSON.stringify({ StartAt: 'P', States: { P: { Type: 'Pass', End: true } } });
    await app.request(
      sfnRequest('http://localhost', keys, 'CreateStateMachine', {
        name: 'hello',
        definition,
        roleArn: 'arn:aws:iam::000000000000:role/strand',
      }),
    );
    const started = await app.request(
      sfnRequest('http://localhost', keys, 'StartExecution', {
        stateMachineArn: 'arn:aws:states:local:000000000000:stateMachine:hello',
        name: 'greeting-run',
      }),
    );
    expect(started.status).toBe(200);
    const res = await get('/ui/api/executions/greting-run', cookie);
    expect(res.status).toBe(404);
    const body = await errorOf(res);
    expect(body.suggestion).toBe('greeting-run');
    expect(body.message).toMatch(/did you mean "greeting-run"\?/);
    const detail = await waitUntil('the execution to succeed', async () => {
      const found = await get('/ui/api/executions/greeting-run', cookie);
      expect(found.status).toBe(200);
      const d = (await found.json()) as ExecutionDetail;
      return d.status === 'SUCCEEDED' ? d : undefined;
    });
    expect(detail.stateMachine).toBe('hello');
    expect(detail.pipelineRun).toBeUndefined();
    expect(detail.graph).toEqual({
      startAt: 'P',
      nodes: [{ id: 'P', name: 'P', type: 'Pass', status: 'succeeded', end: true }],
      edges: [],
    });
  });
});
