import { describe, expect, it } from 'vitest';
import {
  canonicalQuery,
  canonicalUri,
  sha256Hex,
  verifySignature,
  type SignedRequest,
} from '../../src/server/sigv4.js';
import { ApiError } from '../../src/server/errors.js';
import { signedRequest } from './helpers.js';

// AWS's documented example (General Reference, "Signed Signature Version 4 Requests Examples").
const EXAMPLE = {
  secret: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  body: 'Action=ListUsers&Version=2010-05-08',
  headers: {
    host: 'iam.amazonaws.com',
    'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
    'x-amz-date': '20110909T233600Z',
    authorization:
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=ced6826de92d2bdeed8f846f0bf508e8559e98e4b0199114b84c54174deb456c',
  } as Record<string, string>,
  at: Date.UTC(2011, 8, 9, 23, 40),
};

function exampleRequest(
  change: Partial<Record<string, string | undefined>> = {},
  body = EXAMPLE.body,
): SignedRequest {
  const headers: Record<string, string | undefined> = { ...EXAMPLE.headers, ...change };
  return {
    method: 'POST',
    path: '/',
    query: '',
    header: (n) => headers[n],
    bodySha256: sha256Hex(body),
  };
}

const secretFor = (id: string) => (id === 'AKIDEXAMPLE' ? EXAMPLE.secret : undefined);

function refusal(req: SignedRequest, options: Partial<Parameters<typeof verifySignature>[1]> = {}) {
  try {
    verifySignature(req, { service: 'iam', now: EXAMPLE.at, secretFor, ...options });
  } catch (err) {
    if (err instanceof ApiError)
      return { type: err.type, status: err.status, message: err.message };
    throw err;
  }
  return undefined;
}

describe('SigV4 verification', () => {
  it("accepts AWS's documented example request", () => {
    expect(
      verifySignature(exampleRequest(), { service: 'iam', now: EXAMPLE.at, secretFor }),
    ).toEqual({
      accessKeyId: 'AKIDEXAMPLE',
      region: 'us-east-1',
    });
  });

  it.each([
    [
      'no Authorization header',
      exampleRequest({ authorization: undefined }),
      {},
      'MissingAuthenticationTokenException',
    ],
    [
      'a key this server did not issue',
      exampleRequest(),
      { secretFor: (): string | undefined => undefined },
      'UnrecognizedClientException',
    ],
    [
      'a session token',
      exampleRequest({ 'x-amz-security-token': 'abc' }),
      {},
      'UnrecognizedClientException',
    ],
    [
      'a body changed after signing',
      exampleRequest({}, `${EXAMPLE.body}&x=1`),
      {},
      'InvalidSignatureException',
    ],
    [
      'a signed header changed',
      exampleRequest({ 'content-type': 'application/json' }),
      {},
      'InvalidSignatureException',
    ],
    [
      'the wrong secret',
      exampleRequest(),
      { secretFor: (): string | undefined => 'not-the-secret' },
      'InvalidSignatureException',
    ],
    [
      'a scope of another service',
      exampleRequest(),
      { service: 'states' },
      'InvalidSignatureException',
    ],
    [
      'a date 16 minutes old',
      exampleRequest(),
      { now: EXAMPLE.at + 16 * 60_000 },
      'InvalidSignatureException',
    ],
    [
      'a date 16 minutes ahead',
      exampleRequest(),
      { now: Date.UTC(2011, 8, 9, 23, 36) - 16 * 60_000 },
      'InvalidSignatureException',
    ],
    [
      'a scope of another day',
      exampleRequest({ 'x-amz-date': '20110910T000000Z' }),
      {},
      'InvalidSignatureException',
    ],
    [
      'another algorithm',
      exampleRequest({ authorization: 'AWS AKIDEXAMPLE:abc' }),
      {},
      'IncompleteSignatureException',
    ],
    [
      'no Signature',
      exampleRequest({
        authorization:
          'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/iam/aws4_request, SignedHeaders=host',
      }),
      {},
      'IncompleteSignatureException',
    ],
    [
      'an unreadable date',
      exampleRequest({ 'x-amz-date': 'yesterday' }),
      {},
      'IncompleteSignatureException',
    ],
    [
      'a payload hash that is not the body’s',
      exampleRequest({ 'x-amz-content-sha256': sha256Hex('other') }),
      {},
      'InvalidSignatureException',
    ],
  ] as const)('refuses %s with 403 %s', (_what, req, options, type) => {
    expect(refusal(req, options)).toMatchObject({ type, status: 403 });
  });

  it('says how stale a date is, in AWS’s words', () => {
    expect(refusal(exampleRequest(), { now: EXAMPLE.at + 20 * 60_000 })?.message).toBe(
      'Signature expired: 20110909T233600Z is now earlier than 20110909T234500Z (20110910T000000Z - 15 min.)',
    );
  });

  it('a date within 15 minutes either way is accepted', () => {
    expect(
      refusal(exampleRequest(), { now: Date.UTC(2011, 8, 9, 23, 36) + 14 * 60_000 }),
    ).toBeUndefined();
    expect(
      refusal(exampleRequest(), { now: Date.UTC(2011, 8, 9, 23, 36) - 14 * 60_000 }),
    ).toBeUndefined();
  });

  it.each([
    ['', '/'],
    ['/', '/'],
    ['/v1/submitjob', '/v1/submitjob'],
    ['/a/./b/../c', '/a/c'],
    ['//a//b/', '/a/b/'],
    ['/a%20b', '/a%2520b'],
    ['/~user/x-y_z.1', '/~user/x-y_z.1'],
  ])('canonical URI of %j is %j', (path, uri) => {
    expect(canonicalUri(path)).toBe(uri);
  });

  it.each([
    ['', ''],
    ['b=2&a=1', 'a=1&b=2'],
    ['a=2&a=1', 'a=1&a=2'],
    ['x=a%20b&y=%7e', 'x=a%20b&y=~'],
    ['flag', 'flag='],
    ["q=it's*", 'q=it%27s%2A'],
  ])('canonical query of %j is %j', (query, canonical) => {
    expect(canonicalQuery(query)).toBe(canonical);
  });

  it('a request signed by the test signer verifies, with any region', () => {
    const keys = { accessKeyId: 'AKSTTEST', secretAccessKey: 'secret' };
    const r = signedRequest(
      'http://127.0.0.1:9/v1/listjobs?x=1',
      { body: '{}', headers: { 'content-type': 'application/json' } },
      { service: 'batch', keys, region: 'local' },
    );
    const url = new URL(r.url);
    expect(
      verifySignature(
        {
          method: 'POST',
          path: url.pathname,
          query: url.search.slice(1),
          header: (n) => r.headers.get(n) ?? undefined,
          bodySha256: sha256Hex('{}'),
        },
        {
          service: 'batch',
          now: Date.now(),
          secretFor: (id) => (id === keys.accessKeyId ? keys.secretAccessKey : undefined),
        },
      ),
    ).toEqual({ accessKeyId: 'AKSTTEST', region: 'local' });
  });
});
