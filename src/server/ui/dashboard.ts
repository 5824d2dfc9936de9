/**
 * The dashboard's server side, under `/ui` of `strand server`: the front end's files (served to
 * anyone: they hold no data), and its JSON API under `/ui/api`, which answers only with a
 * session. A session comes from signing in with the server's key pair (the one the AWS APIs are
 * signed with) and lives in an HttpOnly, SameSite=Strict cookie; requests that change anything
 * must also say `content-type: application/json`, which a form of another site cannot send.
 * Every answer is JSON (errors `{error, message}`), never a stack trace.
 */
import { Hono, type Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { streamSSE } from 'hono/streaming';
import { getConnInfo } from '@hono/node-server/conninfo';
import { configuredResults } from '../../app/config.js';
import { openResultsIfAny } from '../../app/index.js';
import { RequestFailedError } from '../../engine/control.js';
import { EngineInputError, type ExecutionDescription } from '../../engine/engine.js';
import { EngineHaltedError } from '../../engine/faults.js';
import { ERROR, STATE } from '../../pipeline/contract.js';
import { ResultsError } from '../../results/errors.js';
import type { ResultsSink, StepResultInfo } from '../../results/sink.js';
import { HomeBusyError, type ServerHome } from '../home.js';
import { batchOverview, waitingReasonsOf } from './batch-view.js';
import { ChangeFeed, type FeedEvent } from './events.js';
import { JobIndex } from './job-index.js';
import { badRequest, UiError } from './errors.js';
import { jobLog } from './logs.js';
import { resultRows, resultsCsv, resultsJson, stepOutputs } from './outputs.js';
import {
  executionDetail,
  executionHistory,
  executionRow,
  executionSummary,
  jobById,
  jobDetail,
  listExecutions,
} from './read.js';
import { knownPipelineFiles, pipelineInfos, startRun } from './runs.js';
import {
  SESSION_COOKIE,
  SESSION_MS,
  Sessions,
  SignInLimiter,
  type SessionData,
} from './session.js';
import { DEFAULT_UI_DIR, PAGE_HEADERS, staticResponse } from './static.js';
import type {
  ActionResponse,
  PipelinesResponse,
  SessionInfo,
  StartRunResponse,
  UiEvents,
} from './types.js';

/** The largest body the dashboard's API reads. */
export const MAX_UI_BODY = 64 * 1024;
/** Between comments that keep an event stream open through proxies. */
export const HEARTBEAT_MS = 15_000;

export interface DashboardOptions {
  home: ServerHome;
  credentials: { accessKeyId: string; secretAccessKey: string; path?: string };
  /** The server runs HTTPS: the session cookie is `Secure`. */
  secure?: boolean;
  /** Where the built front end is (default dist/ui of this checkout). */
  uiDir?: string;
  /** Pipeline files given with `strand server --pipeline` (absolute). */
  pipelines?: string[];
  now?: () => number;
  log?: (line: string) => void;
  /** Between looks at the database for live updates (default 250 ms). */
  feedIntervalMs?: number;
  heartbeatMs?: number;
}

/** The dashboard's state: sessions, the live feed, the results reader, open event streams. */
export class Dashboard {
  readonly sessions: Sessions;
  readonly signIns: SignInLimiter;
  readonly feed: ChangeFeed;
  /** Jobs by execution, shared by the listings and the feed. */
  readonly jobs = new JobIndex();
  readonly uiDir: string;
  private sink: ResultsSink | undefined;
  private readonly streams = new Set<() => void>();
  private closed = false;
  readonly now: () => number;

  constructor(readonly options: DashboardOptions) {
    this.now = options.now ?? Date.now;
    this.sessions = new Sessions(options.credentials, this.now);
    this.signIns = new SignInLimiter(this.now);
    this.uiDir = options.uiDir ?? DEFAULT_UI_DIR;
    this.feed = new ChangeFeed({
      db: () => options.home.reading().store.db,
      jobs: this.jobs,
      now: this.now,
      intervalMs: options.feedIntervalMs,
      log: options.log,
    });
  }

  get home(): ServerHome {
    return this.options.home;
  }

  /** The results database as `strand results` reads it; undefined while the home has none. */
  results(): ResultsSink | undefined {
    if (this.sink) return this.sink;
    try {
      this.sink = openResultsIfAny(configuredResults(this.home.home), { home: this.home.home });
    } catch (err) {
      if (err instanceof ResultsError)
        throw new UiError(503, 'ResultsUnavailable', `the results database: ${err.message}`);
      throw err;
    }
    return this.sink;
  }

  async stepRows(execution: string): Promise<StepResultInfo[]> {
    const sink = this.results();
    if (!sink) return [];
    try {
      return await sink.listSteps({ execution });
    } catch (err) {
      if (err instanceof ResultsError)
        throw new UiError(503, 'ResultsUnavailable', `the results database: ${err.message}`);
      throw err;
    }
  }

  /** Keeps an open event stream's end, called when the server stops. */
  track(end: () => void): () => void {
    if (this.closed) {
      end();
      return () => {};
    }
    this.streams.add(end);
    return () => this.streams.delete(end);
  }

  /** Ends event streams and the feed, closes the results reader. */
  async close(): Promise<void> {
    this.closed = true;
    for (const end of [...this.streams]) end();
    this.streams.clear();
    this.feed.close();
    const sink = this.sink;
    this.sink = undefined;
    await sink?.close().catch(() => undefined);
  }
}

interface UiEnv {
  Variables: { requestId: string; session: SessionData | undefined };
}
type Ctx = Context<UiEnv>;

/** What the engine or the owner of the home refused, as the dashboard answers it. */
export function uiError(err: unknown): UiError | undefined {
  if (err instanceof UiError) return err;
  if (err instanceof HomeBusyError || err instanceof EngineHaltedError)
    return new UiError(503, 'HomeBusy', err.message);
  if (err instanceof EngineInputError || err instanceof RequestFailedError) {
    const message = [err.message, ...err.details].join('; ');
    switch (err.code) {
      case 'NO_SUCH_EXECUTION':
        return new UiError(404, 'NotFound', message);
      case 'EXECUTION_ALREADY_EXISTS':
      case 'NOT_REDRIVABLE':
        return new UiError(409, 'Conflict', message);
      case 'CLOSED':
      case 'ENGINE_HALTED':
        return new UiError(503, 'HomeBusy', message);
      default:
        return new UiError(400, 'BadRequest', message);
    }
  }
  return undefined;
}

/** The host of an Origin header (`null` and what is no URL have none). */
function originHost(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}

/** The media type of a request, without parameters. */
function mediaType(c: Ctx): string {
  return (c.req.header('content-type') ?? '').split(';')[0].trim().toLowerCase();
}

/** Reads a JSON body of at most MAX_UI_BODY bytes; an empty body is `{}`. */
async function jsonBody(c: Ctx): Promise<unknown> {
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > MAX_UI_BODY)
    throw new UiError(
      413,
      'PayloadTooLarge',
      `the body (${declared} bytes) is larger than ${MAX_UI_BODY} bytes`,
    );
  const body = c.req.raw.body;
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (body) {
    const reader = body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_UI_BODY) {
        await reader.cancel().catch(() => undefined);
        throw new UiError(413, 'PayloadTooLarge', `the body is larger than ${MAX_UI_BODY} bytes`);
      }
      chunks.push(value);
    }
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw badRequest(`the body is not valid JSON: ${(err as Error).message}`);
  }
}

/** The query parameters given once each; 400 for one given twice. */
function queryOf(c: Ctx, allowed: readonly string[]): Record<string, string | undefined> {
  const all = c.req.queries();
  const out: Record<string, string | undefined> = {};
  for (const [k, values] of Object.entries(all)) {
    if (!allowed.includes(k))
      throw badRequest(
        `unknown parameter ${k}= (this endpoint takes ${allowed.join(', ') || 'none'})`,
      );
    if (values.length > 1) throw badRequest(`${k}= is given ${values.length} times; give it once`);
    out[k] = values[0];
  }
  return out;
}

/** Builds the `/ui` routes of the server's app. */
export function dashboardRoutes(dashboard: Dashboard): Hono<UiEnv> {
  const { home, sessions } = dashboard;
  const ui = new Hono<UiEnv>();
  const store = () => home.reading().store;
  /** The home's database, with the job index brought up to date. */
  const fresh = () => {
    const s = store();
    dashboard.jobs.refresh(s.db);
    return s;
  };

  const sessionInfo = (s: SessionData | undefined): SessionInfo =>
    s
      ? {
          signedIn: true,
          expiresAt: s.expiresAt,
          accessKeyId: sessions.accessKeyId,
          home: home.home,
          owner: home.owner,
        }
      : { signedIn: false };

  ui.onError((err, c) => {
    const known = uiError(err);
    if (known) return c.json(known.body(), known.status);
    const id = c.get('requestId') ?? '-';
    dashboard.options.log?.(
      `request ${id} (${c.req.method} ${c.req.path}) failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    return c.json(
      {
        error: 'InternalError',
        message: `the server failed on this request (request id ${id}); its log says why`,
      },
      500,
    );
  });

  // The API: the CSRF guard, then the session.
  ui.use('/api/*', async (c, next) => {
    c.header('cache-control', 'no-store');
    c.header('x-content-type-options', 'nosniff');
    const method = c.req.method;
    if (method !== 'GET' && method !== 'HEAD') {
      if (mediaType(c) !== 'application/json')
        throw new UiError(
          403,
          'Forbidden',
          `${method} ${c.req.path} needs content-type: application/json (the dashboard sends it; other sites' forms cannot)`,
        );
      const origin = c.req.header('origin');
      const host = c.req.header('host') ?? new URL(c.req.url).host;
      if (origin && originHost(origin) !== host)
        throw new UiError(
          403,
          'Forbidden',
          `${method} from origin ${origin} is refused: the dashboard calls its own server only`,
        );
    }
    const session = sessions.verify(getCookie(c, SESSION_COOKIE));
    c.set('session', session);
    if (!session && c.req.path !== '/ui/api/session')
      throw new UiError(
        401,
        'Unauthorized',
        'sign in first: POST /ui/api/session with the accessKeyId and secretAccessKey of the server (profile strand of <home>/credentials)',
      );
    await next();
  });

  ui.get('/api/session', (c) => c.json(sessionInfo(c.get('session'))));

  ui.post('/api/session', async (c) => {
    const body = (await jsonBody(c)) as Record<string, unknown> | null;
    const id = body?.accessKeyId;
    const secret = body?.secretAccessKey;
    if (typeof id !== 'string' || typeof secret !== 'string' || id === '' || secret === '')
      throw badRequest(
        'give {"accessKeyId": "…", "secretAccessKey": "…"}: the key pair the server’s APIs are signed with',
      );
    const client = clientAddress(c);
    const wait = dashboard.signIns.waitFor(client);
    if (wait > 0) {
      c.header('retry-after', String(wait));
      throw new UiError(
        429,
        'TooManyRequests',
        `too many failed sign-ins from ${client}: try again in ${wait} s`,
      );
    }
    if (!sessions.matches(id, secret)) {
      dashboard.signIns.failed(client);
      throw new UiError(
        401,
        'Unauthorized',
        `that is not the server's key pair; it is profile strand of ${dashboard.options.credentials.path ?? '<home>/credentials'}`,
      );
    }
    dashboard.signIns.succeeded(client);
    const { value, session } = sessions.issue();
    setCookie(c, SESSION_COOKIE, value, {
      httpOnly: true,
      sameSite: 'Strict',
      path: '/ui',
      maxAge: Math.floor(SESSION_MS / 1000),
      secure: dashboard.options.secure === true,
    });
    return c.json(sessionInfo(session));
  });

  ui.delete('/api/session', (c) => {
    const session = c.get('session');
    if (session) sessions.revoke(session);
    deleteCookie(c, SESSION_COOKIE, {
      path: '/ui',
      httpOnly: true,
      sameSite: 'Strict',
      secure: dashboard.options.secure === true,
    });
    return c.json(sessionInfo(undefined));
  });

  ui.get('/api/executions', (c) => {
    const q = queryOf(c, ['status', 'pipeline', 'since', 'until', 'limit', 'nextToken']);
    return c.json(listExecutions(fresh().db, q, dashboard.jobs));
  });

  ui.get('/api/executions/:name', async (c) => {
    queryOf(c, []);
    return c.json(
      await executionDetail(
        {
          store: fresh(),
          jobs: dashboard.jobs,
          results: (e) => dashboard.stepRows(e),
          now: dashboard.now(),
        },
        c.req.param('name'),
      ),
    );
  });

  ui.get('/api/executions/:name/history', (c) => {
    const q = queryOf(c, ['after', 'limit']);
    return c.json(executionHistory(store(), c.req.param('name'), q));
  });

  const action = async (
    c: Ctx,
    run: (
      arn: string,
      d: { error: string | null },
      body: Record<string, unknown>,
    ) => Promise<unknown>,
  ) => {
    const body = await jsonBody(c);
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      throw badRequest('the body is a JSON object ({} will do)');
    const row = executionRow(store(), c.req.param('name')!);
    await run(row.arn, { error: row.error }, body as Record<string, unknown>);
    dashboard.feed.touch(row.arn);
    const answer: ActionResponse = {
      execution: executionSummary(fresh().db, row.arn, dashboard.jobs)!,
    };
    return c.json(answer);
  };

  ui.post('/api/executions/:name/stop', (c) =>
    action(c, async (arn, _d, body) => {
      const text = (k: string, max: number) => {
        const v = body[k];
        if (v === undefined || v === null) return undefined;
        if (typeof v !== 'string' || v.length > max)
          throw badRequest(`${k}: give a string of at most ${max} characters`);
        return v;
      };
      const error = text('error', 256);
      const cause = text('cause', 32_768);
      const row = store().getExecution(arn)!;
      if (row.status !== 'RUNNING')
        throw new UiError(
          409,
          'Conflict',
          `execution ${row.name} is ${row.status}; only a RUNNING one can be stopped`,
        );
      await home.request('StopExecution', { name: arn, error, cause }, (engine) =>
        engine.stopExecution(arn, error, cause),
      );
    }),
  );

  ui.post('/api/executions/:name/redrive', (c) =>
    action(c, async (arn, d) => {
      // As `strand redrive` does: a pipeline whose samples failed is carried on from its Map.
      const fromState = d.error === ERROR.samplesFailed ? STATE.samples : undefined;
      await home.request(
        'RedriveExecution',
        { name: arn, ...(fromState ? { fromState } : {}) },
        (engine) => engine.redriveExecution(arn, fromState ? { fromState } : {}),
      );
    }),
  );

  ui.get('/api/jobs/:id', (c) => {
    queryOf(c, []);
    const db = store().db;
    const job = jobById(db, c.req.param('id'));
    const batch = home.owner ? home.reading().batch : undefined;
    const reasons = ['SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING'].includes(job.status)
      ? waitingReasonsOf(db, batch, dashboard.now())
      : new Map();
    return c.json(jobDetail(db, job, (id) => reasons.get(id)));
  });

  ui.get('/api/jobs/:id/log', async (c) => {
    const q = queryOf(c, ['offset', 'attempt']);
    const job = jobById(store().db, c.req.param('id'));
    return c.json(await jobLog(home.home, job, q));
  });

  ui.get('/api/outputs', async (c) => {
    const q = queryOf(c, ['pipeline', 'sample', 'step', 'execution']);
    const s = store();
    return c.json(await stepOutputs(home.home, s.db, (n) => s.getExecution(n), q));
  });

  ui.get('/api/results', async (c) => {
    const q = queryOf(c, ['pipeline', 'step', 'execution', 'sample', 'metrics', 'format']);
    const format = q.format ?? 'json';
    if (format !== 'json' && format !== 'csv')
      throw badRequest(`format=${format}: give json or csv`);
    let rows: Awaited<ReturnType<typeof resultRows>>;
    try {
      rows = await resultRows(dashboard.results(), q);
    } catch (err) {
      if (err instanceof ResultsError)
        throw new UiError(503, 'ResultsUnavailable', `the results database: ${err.message}`);
      throw err;
    }
    if (format === 'json') return c.json(resultsJson(rows));
    const csv = resultsCsv(rows, q);
    return c.body(csv.text, 200, {
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': `attachment; filename="${csv.filename}"`,
    });
  });

  ui.get('/api/batch', (c) => {
    queryOf(c, []);
    const engine = home.reading();
    return c.json(
      batchOverview(engine.store.db, home.owner ? engine.batch : undefined, dashboard.now()),
    );
  });

  const known = () => knownPipelineFiles(store().db, home.home, dashboard.options.pipelines ?? []);

  ui.get('/api/pipelines', (c) => {
    queryOf(c, []);
    const answer: PipelinesResponse = { pipelines: pipelineInfos(known()) };
    return c.json(answer);
  });

  ui.post('/api/runs', async (c) => {
    const body = await jsonBody(c);
    const d: ExecutionDescription = await startRun(home, known(), body, dashboard.now);
    dashboard.feed.touch(d.executionArn);
    const answer: StartRunResponse = {
      execution: executionSummary(fresh().db, d.executionArn, dashboard.jobs)!,
    };
    return c.json(answer, 201);
  });

  ui.get('/api/events', (c) => {
    queryOf(c, ['lastEventId']);
    const lastEventId = c.req.header('last-event-id') ?? c.req.query('lastEventId');
    return streamSSE(c, async (stream) => {
      let chain = Promise.resolve();
      let finish: () => void = () => {};
      const done = new Promise<void>((resolve) => {
        finish = resolve;
      });
      const write = (message: { event: string; data: unknown; id?: string } | string) => {
        chain = chain
          .then(() =>
            typeof message === 'string'
              ? stream.write(message).then(() => undefined)
              : stream.writeSSE({ ...message, data: JSON.stringify(message.data) }),
          )
          .catch(() => finish());
      };
      const send = (e: FeedEvent) => write({ event: e.name, id: e.id, data: e.data });
      const { resume, unsubscribe } = dashboard.feed.subscribe(send, lastEventId);
      const hello: UiEvents['hello'] = { owner: home.owner, home: home.home };
      if ('reload' in resume) {
        write({ event: 'hello', data: hello });
        write({ event: 'reload', id: dashboard.feed.position(), data: { reason: resume.reload } });
      } else if (lastEventId) {
        write({ event: 'hello', data: hello });
        for (const e of resume.replay) send(e);
      } else write({ event: 'hello', id: dashboard.feed.position(), data: hello });
      const heartbeat = setInterval(
        () => write(': ping\n\n'),
        dashboard.options.heartbeatMs ?? HEARTBEAT_MS,
      );
      const untrack = dashboard.track(() => finish());
      stream.onAbort(() => finish());
      c.req.raw.signal?.addEventListener('abort', () => finish());
      await done;
      clearInterval(heartbeat);
      unsubscribe();
      untrack();
      await chain;
    });
  });

  // Anything else under the API: a JSON 404 naming what there is.
  ui.all('/api/*', (c) => {
    throw new UiError(
      404,
      'NotFound',
      `${c.req.method} ${c.req.path}: no such endpoint (the dashboard's API: session, executions, executions/NAME, executions/NAME/history, executions/NAME/stop, executions/NAME/redrive, jobs/ID, jobs/ID/log, outputs, results, batch, pipelines, runs, events)`,
    );
  });

  // The front end: its files, index.html for its own routes.
  ui.get('/*', (c) => staticResponse(dashboard.uiDir, c.req.path.replace(/^\/ui\/?/, '')));
  ui.all('/*', (c) =>
    c.text(`${c.req.method} ${c.req.path}: the dashboard's pages are read with GET\n`, 405, {
      allow: 'GET',
      ...PAGE_HEADERS,
    }),
  );

  return ui;
}

/** The address a request came from (the socket's peer); "local" for one made in-process. */
function clientAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'local';
  } catch {
    return 'local';
  }
}
