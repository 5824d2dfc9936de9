/**
 * What the server's tests share: a temporary home, the server on it (in-process, on a free
 * loopback port), AWS SDK clients pointed at it, and a signer for hand-made requests (bodies
 * and headers no SDK would send).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchClient } from '@aws-sdk/client-batch';
import { SFNClient } from '@aws-sdk/client-sfn';
import { openStrand } from '../../src/app/index.js';
import { startStrandServer, type StrandServerHandle } from '../../src/server/serve.js';
import { canonicalRequest, formatAmzDate, sha256Hex, signature } from '../../src/server/sigv4.js';

export { waitUntil } from '../helpers.js';

// As bin/strand.js does: the SDK's notice about future Node versions is nothing a test acts on.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export const tempHome = (): string => mkdtempSync(join(tmpdir(), 'strand-server-'));

/** The home's engine as the server opens it, with a small fixed Batch (tests fit on any machine). */
export const openSmall = (home: string) => () =>
  openStrand({ home, batch: { maxvCpus: 4, memoryMiB: 4096 } });

/** A server on a free loopback port; closed by the returned handle. */
export async function serverOn(
  home: string,
  options: { log?: (line: string) => void; now?: () => number } = {},
): Promise<StrandServerHandle> {
  return startStrandServer({ home, port: 0, open: openSmall(home), ...options });
}

export interface Keys {
  accessKeyId: string;
  secretAccessKey: string;
}

export const keysOf = (s: StrandServerHandle): Keys => ({
  accessKeyId: s.credentials.accessKeyId,
  secretAccessKey: s.credentials.secretAccessKey,
});

export function sfnClient(s: StrandServerHandle, extra: Record<string, unknown> = {}): SFNClient {
  return new SFNClient({
    endpoint: s.endpoint,
    region: 'us-east-1',
    credentials: keysOf(s),
    ...extra,
  });
}

export function batchClient(
  s: StrandServerHandle,
  extra: Record<string, unknown> = {},
): BatchClient {
  return new BatchClient({
    endpoint: s.endpoint,
    region: 'us-east-1',
    credentials: keysOf(s),
    ...extra,
  });
}

/** A job definition whose command is `node -e script` (starts in milliseconds). */
export function nodeJob(name: string, script: string, extra: Record<string, unknown> = {}) {
  return {
    jobDefinitionName: name,
    type: 'container' as const,
    containerProperties: {
      command: [process.execPath, '-e', script],
      resourceRequirements: [
        { type: 'VCPU' as const, value: '1' },
        { type: 'MEMORY' as const, value: '256' },
      ],
    },
    ...extra,
  };
}

export interface SignOptions {
  service: 'states' | 'batch';
  keys: Keys;
  /** Epoch ms the request says it was signed at (default now). */
  date?: number;
  region?: string;
}

/**
 * A Request signed as the SDKs sign it (SigV4 over host, x-amz-date and every header given), for
 * `app.request()` or fetch.
 */
export function signedRequest(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string },
  options: SignOptions,
): Request {
  const u = new URL(url);
  const amzDate = formatAmzDate(options.date ?? Date.now());
  const headers: Record<string, string> = {
    host: u.host,
    'x-amz-date': amzDate,
    ...Object.fromEntries(Object.entries(init.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
  };
  const signed = Object.keys(headers).sort();
  const body = init.body ?? '';
  const canonical = canonicalRequest(
    {
      method: init.method ?? 'POST',
      path: u.pathname,
      query: u.search.replace(/^\?/, ''),
      header: (n) => headers[n],
      bodySha256: sha256Hex(body),
    },
    signed,
    sha256Hex(body),
  );
  const scope = {
    date: amzDate.slice(0, 8),
    region: options.region ?? 'us-east-1',
    service: options.service,
  };
  const sig = signature(options.keys.secretAccessKey, amzDate, scope, canonical);
  return new Request(url, {
    method: init.method ?? 'POST',
    headers: {
      ...headers,
      authorization: `AWS4-HMAC-SHA256 Credential=${options.keys.accessKeyId}/${scope.date}/${scope.region}/${scope.service}/aws4_request, SignedHeaders=${signed.join(';')}, Signature=${sig}`,
    },
    ...(init.method === 'GET' ? {} : { body }),
  });
}

/** A signed Step Functions request: `action` with a JSON (or raw text) body. */
export function sfnRequest(
  base: string,
  keys: Keys,
  action: string | undefined,
  body: unknown,
  extra: Partial<SignOptions> = {},
): Request {
  return signedRequest(
    `${base}/`,
    {
      headers: {
        'content-type': 'application/x-amz-json-1.0',
        ...(action === undefined ? {} : { 'x-amz-target': `AWSStepFunctions.${action}` }),
      },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    },
    { service: 'states', keys, ...extra },
  );
}

/** A signed Batch request: `POST /v1/<operation>` with a JSON (or raw text) body. */
export function batchRequest(
  base: string,
  keys: Keys,
  operation: string,
  body: unknown,
  extra: Partial<SignOptions> = {},
): Request {
  return signedRequest(
    `${base}/v1/${operation}`,
    {
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    },
    { service: 'batch', keys, ...extra },
  );
}
