/**
 * AWS Signature Version 4, verified: the server computes the signature of each request as the
 * client did (canonical request → string to sign → HMAC chain from the secret) and compares it in
 * constant time. The rules are AWS's, including their quirks for services other than S3: the
 * canonical URI is the path as sent, URI-encoded once more; the query's keys and values are
 * encoded strictly (RFC 3986) and sorted; header values are trimmed and their inner runs of
 * spaces collapsed.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { ApiError } from './errors.js';

export const ALGORITHM = 'AWS4-HMAC-SHA256';

/** How far a request's date may be from the server's clock, as AWS allows. */
export const MAX_SKEW_MS = 15 * 60 * 1000;

/** What verifying reads of a request. */
export interface SignedRequest {
  method: string;
  /** The path as it was sent (still percent-encoded), without the query. */
  path: string;
  /** The query string as it was sent, without `?`. */
  query: string;
  /** A header's value by its lower-case name; undefined when the request has none. */
  header(name: string): string | undefined;
  /** Hex SHA-256 of the body as received. */
  bodySha256: string;
}

export interface VerifyOptions {
  /** The signing name the credential scope must name (`states`, `batch`). */
  service: string;
  /** Epoch ms. */
  now: number;
  /** The secret of an access key id; undefined for a key this server did not issue. */
  secretFor(accessKeyId: string): string | undefined;
}

/** Whom a verified request came from. */
export interface VerifiedCaller {
  accessKeyId: string;
  region: string;
}

/** Hex SHA-256, as SigV4 hashes payloads and canonical requests. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ is %XX. */
export function uriEscape(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/**
 * The canonical URI of a path as sent: `.` and `..` segments and empty segments removed, then
 * each segment encoded again (so `%20` on the wire is `%2520` here), as AWS does for every
 * service but S3.
 */
export function canonicalUri(path: string): string {
  const segments: string[] = [];
  for (const s of path.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') segments.pop();
    else segments.push(s);
  }
  const trailing = segments.length > 0 && path.endsWith('/') ? '/' : '';
  return `/${segments.map(uriEscape).join('/')}${trailing}`;
}

function decodeComponent(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    // Not valid percent-encoding: signed as it stands, so compared as it stands.
    return text;
  }
}

/** The canonical query string: each key and value decoded, encoded strictly, sorted. */
export function canonicalQuery(query: string): string {
  if (query === '') return '';
  return query
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const key = eq < 0 ? pair : pair.slice(0, eq);
      const value = eq < 0 ? '' : pair.slice(eq + 1);
      return [uriEscape(decodeComponent(key)), uriEscape(decodeComponent(value))] as const;
    })
    .filter(([key]) => key !== 'X-Amz-Signature')
    .sort(([ka, va], [kb, vb]) => (ka < kb ? -1 : ka > kb ? 1 : va < vb ? -1 : va > vb ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** A header value as it is signed: trimmed, inner runs of whitespace made one space. */
function canonicalHeaderValue(value: string): string {
  return value.trim().replace(/\s+/g, ' ');
}

/** The canonical request of `req` for the headers `signedHeaders` (lower case, sorted). */
export function canonicalRequest(
  req: SignedRequest,
  signedHeaders: string[],
  payloadHash: string,
): string {
  const headers = signedHeaders
    .map((h) => `${h}:${canonicalHeaderValue(req.header(h) ?? '')}\n`)
    .join('');
  return [
    req.method.toUpperCase(),
    canonicalUri(req.path),
    canonicalQuery(req.query),
    headers,
    signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
}

/** The key a secret signs with on `date` (YYYYMMDD) in `region` for `service`. */
export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const kDate = hmac(`AWS4${secret}`, date);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  return hmac(kService, 'aws4_request');
}

/** The string to sign of a canonical request. */
export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return [ALGORITHM, amzDate, scope, sha256Hex(canonical)].join('\n');
}

/** The hex signature of a canonical request. */
export function signature(
  secret: string,
  amzDate: string,
  scope: { date: string; region: string; service: string },
  canonical: string,
): string {
  const scopeText = `${scope.date}/${scope.region}/${scope.service}/aws4_request`;
  return createHmac('sha256', signingKey(secret, scope.date, scope.region, scope.service))
    .update(stringToSign(amzDate, scopeText, canonical), 'utf8')
    .digest('hex');
}

const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** `YYYYMMDDTHHMMSSZ` → epoch ms; undefined when it is not that. */
export function parseAmzDate(text: string): number | undefined {
  const m = AMZ_DATE.exec(text);
  if (!m) return undefined;
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Epoch ms → `YYYYMMDDTHHMMSSZ`. */
export function formatAmzDate(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

const auth = (type: string, message: string) => new ApiError(type, message, 403);

/** The parts of an `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`. */
function parseAuthorization(value: string): {
  credential: string;
  signedHeaders: string;
  signature: string;
} {
  if (!value.startsWith(`${ALGORITHM} `))
    throw auth(
      'IncompleteSignatureException',
      `Authorization header must use the ${ALGORITHM} algorithm (AWS Signature Version 4)`,
    );
  const parts = new Map<string, string>();
  for (const piece of value.slice(ALGORITHM.length + 1).split(',')) {
    const eq = piece.indexOf('=');
    if (eq > 0) parts.set(piece.slice(0, eq).trim(), piece.slice(eq + 1).trim());
  }
  const missing = ['Credential', 'SignedHeaders', 'Signature'].filter((k) => !parts.get(k));
  if (missing.length > 0)
    throw auth(
      'IncompleteSignatureException',
      `Authorization header requires ${missing.map((k) => `'${k}'`).join(', ')} parameter${missing.length > 1 ? 's' : ''}. Authorization=${ALGORITHM} …`,
    );
  return {
    credential: parts.get('Credential')!,
    signedHeaders: parts.get('SignedHeaders')!,
    signature: parts.get('Signature')!,
  };
}

/** The request's date: X-Amz-Date, else the Date header, as `YYYYMMDDTHHMMSSZ` and epoch ms. */
function requestDate(req: SignedRequest): { amzDate: string; ms: number } {
  const amz = req.header('x-amz-date');
  if (amz !== undefined) {
    const ms = parseAmzDate(amz);
    if (ms === undefined)
      throw auth(
        'IncompleteSignatureException',
        `X-Amz-Date ${JSON.stringify(amz)} is not an ISO 8601 basic date and time (e.g. 20250102T030405Z)`,
      );
    return { amzDate: amz, ms };
  }
  const date = req.header('date');
  const ms = date === undefined ? NaN : Date.parse(date);
  if (Number.isNaN(ms))
    throw auth(
      'IncompleteSignatureException',
      "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header",
    );
  return { amzDate: formatAmzDate(ms), ms };
}

/**
 * Verifies the SigV4 signature of a request, or throws the ApiError AWS answers with (403):
 * MissingAuthenticationTokenException (unsigned), IncompleteSignatureException (a malformed
 * Authorization header), UnrecognizedClientException (a key this server did not issue),
 * InvalidSignatureException (a wrong signature, a scope of another service or day, a date more
 * than 15 minutes from the server's clock).
 */
export function verifySignature(req: SignedRequest, options: VerifyOptions): VerifiedCaller {
  const header = req.header('authorization');
  if (header === undefined) {
    if (/(^|&)X-Amz-Signature=/.test(req.query))
      throw auth(
        'IncompleteSignatureException',
        'presigned URLs (a signature in the query string) are not accepted here; sign the Authorization header',
      );
    throw auth('MissingAuthenticationTokenException', 'Missing Authentication Token');
  }
  const parsed = parseAuthorization(header);
  const scope = parsed.credential.split('/');
  if (scope.length !== 5)
    throw auth(
      'IncompleteSignatureException',
      `Credential ${JSON.stringify(parsed.credential)} is not ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request`,
    );
  const [accessKeyId, scopeDate, region, service, terminator] = scope;
  if (terminator !== 'aws4_request')
    throw auth(
      'IncompleteSignatureException',
      `Credential should be scoped with a valid terminator: 'aws4_request', not '${terminator}'.`,
    );
  // A session token is something this server never issues: whoever sends one holds another
  // account's credentials.
  const secret =
    req.header('x-amz-security-token') === undefined ? options.secretFor(accessKeyId) : undefined;
  if (secret === undefined)
    throw auth(
      'UnrecognizedClientException',
      'The security token included in the request is invalid.',
    );
  const { amzDate, ms } = requestDate(req);
  if (scopeDate !== amzDate.slice(0, 8))
    throw auth(
      'InvalidSignatureException',
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${scopeDate}' != '${amzDate.slice(0, 8)}', from '${amzDate}'.`,
    );
  if (service !== options.service)
    throw auth(
      'InvalidSignatureException',
      `Credential should be scoped to correct service: '${options.service}'.`,
    );
  const signedHeaders = parsed.signedHeaders.split(';');
  if (!signedHeaders.includes('host'))
    throw auth(
      'InvalidSignatureException',
      "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    );
  const declared = req.header('x-amz-content-sha256');
  if (declared !== undefined && declared !== req.bodySha256)
    throw auth(
      'InvalidSignatureException',
      "The provided 'x-amz-content-sha256' header does not match what was computed.",
    );
  const expected = signature(
    secret,
    amzDate,
    { date: scopeDate, region, service },
    canonicalRequest(req, signedHeaders, declared ?? req.bodySha256),
  );
  const given = Buffer.from(parsed.signature, 'utf8');
  const wanted = Buffer.from(expected, 'utf8');
  if (given.length !== wanted.length || !timingSafeEqual(given, wanted))
    throw auth(
      'InvalidSignatureException',
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
    );
  // Checked after the signature, as AWS does: a client whose clock is off learns it from this
  // message (and the SDKs correct their clock from the response's Date header).
  const now = formatAmzDate(options.now);
  if (ms < options.now - MAX_SKEW_MS)
    throw auth(
      'InvalidSignatureException',
      `Signature expired: ${amzDate} is now earlier than ${formatAmzDate(options.now - MAX_SKEW_MS)} (${now} - 15 min.)`,
    );
  if (ms > options.now + MAX_SKEW_MS)
    throw auth(
      'InvalidSignatureException',
      `Signature not yet current: ${amzDate} is still later than ${formatAmzDate(options.now + MAX_SKEW_MS)} (${now} + 15 min.)`,
    );
  return { accessKeyId, region };
}
