/**
 * The server's HTTP application (Hono, on the standard Request/Response, so tests call
 * `app.request()` without a socket): Step Functions at `POST /` (JSON 1.0, X-Amz-Target), Batch
 * under `POST /v1/<operation>` (REST-JSON). Every request is read within AWS's size limits and
 * its SigV4 signature verified before anything else; any failure is an error in the protocol's
 * own shape, never a stack trace. The dashboard lives under `/ui` (ui/dashboard.ts), with a
 * sign-in of its own; a browser's `GET /` is sent there. Requests no route takes still need a
 * signature.
 */
import { randomUUID } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { batchOperations } from './batch.js';
import { ApiError, errorResponse, type ErrorProtocol } from './errors.js';
import { parseBody, type Body } from './fields.js';
import type { ServerHome } from './home.js';
import { PageTokens } from './paging.js';
import type { Registry } from './registry.js';
import { stepFunctionsActions } from './sfn.js';
import { sha256Hex, verifySignature } from './sigv4.js';
import { Dashboard, dashboardRoutes } from './ui/dashboard.js';

/** Step Functions' limit on a whole request. */
export const MAX_SFN_REQUEST_BYTES = 1_048_576;
/** AWS Batch's limits: a job definition, a SubmitJob request; and this server's for the rest. */
export const MAX_BATCH_BYTES: Record<string, number> = {
  registerjobdefinition: 24 * 1024,
  submitjob: 30 * 1024,
};
export const MAX_OTHER_BATCH_BYTES = 64 * 1024;

const TARGET_PREFIX = 'AWSStepFunctions.';

export interface ServerAppOptions {
  home: ServerHome;
  registry: Registry;
  /** The key pair requests must be signed with. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Epoch ms (tests move it). */
  now?: () => number;
  /** Where the server's own faults are told (with a request id the client sees too). */
  log?: (line: string) => void;
  /** The dashboard under /ui (default: one on this home and key pair, serving dist/ui). */
  dashboard?: Dashboard;
}

/** What the app keeps per request. */
export interface ServerEnv {
  Variables: { requestId: string };
}
type Ctx = Context<ServerEnv>;

interface Protocol {
  errors: ErrorProtocol;
  /** The signing names a request here may be scoped to. */
  services: string[];
  contentType: string;
  /** The error type of a body too large or not JSON. */
  invalidBody: string;
  internal: string;
}

const SFN: Protocol = {
  errors: 'json-1.0',
  services: ['states'],
  contentType: 'application/x-amz-json-1.0',
  invalidBody: 'SerializationException',
  internal: 'InternalFailure',
};
const BATCH: Protocol = {
  errors: 'rest-json',
  services: ['batch'],
  contentType: 'application/json',
  invalidBody: 'ClientException',
  internal: 'ServerException',
};

/** Reads a body of at most `max` bytes: refused from its Content-Length, or as it streams in. */
async function readBody(req: Request, max: number, protocol: Protocol): Promise<Buffer> {
  const tooLarge = (size: string) =>
    new ApiError(
      protocol === SFN ? 'ValidationException' : 'ClientException',
      `the request body (${size} bytes) is larger than this request's limit of ${max} bytes`,
      413,
    );
  const declared = req.headers.get('content-length');
  if (declared !== null && Number(declared) > max) throw tooLarge(declared);
  if (!req.body) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(`more than ${max}`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/** Builds the server's Hono app. */
export function serverApp(options: ServerAppOptions): Hono<ServerEnv> {
  const now = options.now ?? Date.now;
  const tokens = new PageTokens(options.registry.pagingKey(), now);
  const sfn = stepFunctionsActions({ home: options.home, registry: options.registry, tokens, now });
  const batch = batchOperations({ home: options.home, tokens });
  const { accessKeyId, secretAccessKey } = options.credentials;

  const respond = (c: Ctx, status: number, body: string, headers: Record<string, string>) => {
    for (const [k, v] of Object.entries(headers)) c.header(k, v);
    c.header('x-amzn-requestid', c.get('requestId'));
    return c.body(body, status as 200);
  };

  const fail = (c: Ctx, protocol: Protocol, err: unknown, what: string) => {
    let api: ApiError;
    if (err instanceof ApiError) api = err;
    else {
      const id = c.get('requestId');
      options.log?.(
        `request ${id} (${what}) failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
      api = new ApiError(
        protocol.internal,
        `the server failed on this request (request id ${id}); its log says why`,
        500,
      );
    }
    const r = errorResponse(api, protocol.errors);
    return respond(c, r.status, r.body, r.headers);
  };

  /** The body of a signed request within `max` bytes, or the ApiError that refuses it. */
  const signedBody = async (
    c: Ctx,
    protocol: Protocol,
    max: number,
    services = protocol.services,
  ): Promise<string> => {
    const body = await readBody(c.req.raw, max, protocol);
    const url = new URL(c.req.url);
    let lastError: unknown;
    for (const service of services) {
      try {
        verifySignature(
          {
            method: c.req.method,
            path: url.pathname,
            query: url.search.replace(/^\?/, ''),
            header: (name) => c.req.raw.headers.get(name) ?? undefined,
            bodySha256: sha256Hex(body),
          },
          {
            service,
            now: now(),
            secretFor: (id) => (id === accessKeyId ? secretAccessKey : undefined),
          },
        );
        return body.toString('utf8');
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  };

  const app = new Hono<ServerEnv>();

  app.use('*', async (c, next) => {
    c.set('requestId', randomUUID());
    await next();
  });

  const dashboard =
    options.dashboard ??
    new Dashboard({
      home: options.home,
      credentials: options.credentials,
      now: options.now,
      log: options.log,
    });
  app.get('/ui', (c) => c.redirect('/ui/', 301));
  app.route('/ui', dashboardRoutes(dashboard));

  // A browser opening the server's address gets the dashboard; a signed request (or anything
  // else) is answered below as the APIs answer it.
  app.get('/', async (c, next) => {
    const accept = c.req.header('accept') ?? '';
    if (accept.includes('text/html') && c.req.header('authorization') === undefined)
      return c.redirect('/ui/', 302);
    await next();
  });

  app.post('/', async (c) => {
    let action = '(no action)';
    try {
      const text = await signedBody(c, SFN, MAX_SFN_REQUEST_BYTES);
      const target = c.req.header('x-amz-target');
      if (target === undefined || !target.startsWith(TARGET_PREFIX))
        throw new ApiError(
          'UnknownOperationException',
          `X-Amz-Target ${JSON.stringify(target ?? null)}: Step Functions requests name their action as AWSStepFunctions.<Action>`,
        );
      action = target.slice(TARGET_PREFIX.length);
      const handler = sfn.get(action);
      if (!handler)
        throw new ApiError(
          'UnknownOperationException',
          `${action} is not an action this server answers (it answers ${[...sfn.keys()].join(', ')})`,
        );
      const body: Body = parseBody(text, (m) => new ApiError(SFN.invalidBody, m));
      const result = await handler(body);
      return respond(c, 200, JSON.stringify(result), { 'content-type': SFN.contentType });
    } catch (err) {
      return fail(c, SFN, err, action);
    }
  });

  app.all('/v1/:operation', async (c) => {
    const operation = c.req.param('operation').toLowerCase();
    try {
      const text = await signedBody(c, BATCH, MAX_BATCH_BYTES[operation] ?? MAX_OTHER_BATCH_BYTES);
      const handler = c.req.method === 'POST' ? batch.get(operation) : undefined;
      if (!handler)
        throw new ApiError(
          'UnknownOperationException',
          `${c.req.method} /v1/${operation} is not a Batch operation this server answers (it answers POST /v1/ ${[...batch.keys()].join(', ')})`,
          404,
        );
      const body: Body = parseBody(text, (m) => new ApiError(BATCH.invalidBody, m));
      const result = await handler(body);
      return respond(c, 200, JSON.stringify(result), { 'content-type': BATCH.contentType });
    } catch (err) {
      return fail(c, BATCH, err, `batch ${operation}`);
    }
  });

  // Anything else: signed like any request (nothing answers without credentials), then not found.
  app.notFound(async (c) => {
    const protocol = c.req.path.startsWith('/v1/') ? BATCH : SFN;
    try {
      await signedBody(c, protocol, MAX_SFN_REQUEST_BYTES, ['states', 'batch']);
      throw new ApiError(
        'UnknownOperationException',
        `${c.req.method} ${c.req.path}: nothing here; Step Functions is POST / (X-Amz-Target: AWSStepFunctions.<Action>), Batch is POST /v1/<operation>`,
        404,
      );
    } catch (err) {
      return fail(c, protocol, err, `${c.req.method} ${c.req.path}`);
    }
  });

  app.onError((err, c) => fail(c, c.req.path.startsWith('/v1/') ? BATCH : SFN, err, c.req.path));

  return app;
}
