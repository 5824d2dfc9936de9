/** Errors of the AWS APIs the AWS Batch executor calls, said so that a person can act on them. */

/** What went wrong, for callers that branch: the first three are the configuration's. */
export type AwsProblem = 'UNREACHABLE' | 'CREDENTIALS' | 'NOT_FOUND' | 'THROTTLED' | 'REQUEST';

export class AwsBatchError extends Error {
  constructor(
    readonly code: AwsProblem,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AwsBatchError';
  }

  /** A problem of the settings (endpoint, region, credentials, queue), not of one job. */
  get configuration(): boolean {
    return this.code === 'UNREACHABLE' || this.code === 'CREDENTIALS' || this.code === 'NOT_FOUND';
  }
}

/** Where a call went: the service, its endpoint and region, the operation. */
export interface CallSite {
  service: 'AWS Batch' | 'CloudWatch Logs';
  endpoint: string;
  region: string;
  operation: string;
}

const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'TimeoutError',
  'RequestTimeout',
]);

const REFUSED_CREDENTIALS = new Set([
  'ExpiredTokenException',
  'ExpiredToken',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'InvalidClientTokenId',
  'AccessDeniedException',
  'AccessDenied',
  'IncompleteSignature',
]);

const THROTTLED = new Set([
  'TooManyRequestsException',
  'ThrottlingException',
  'Throttling',
  'RequestLimitExceeded',
]);

/** The error's code: an AWS error's name, or a Node system error's code (of its cause too). */
function codeOf(err: unknown): string | undefined {
  const e = err as { name?: unknown; code?: unknown; cause?: unknown; errors?: unknown[] } | null;
  if (!e || typeof e !== 'object') return undefined;
  if (typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return e.code;
  // A connection refused on every address of `localhost` is an AggregateError of them.
  for (const inner of [e.cause, ...(Array.isArray(e.errors) ? e.errors : [])]) {
    const c = codeOf(inner);
    if (c && /^E[A-Z]+$/.test(c)) return c;
  }
  if (typeof e.name === 'string' && e.name !== 'Error') return e.name;
  return typeof e.code === 'string' ? e.code : undefined;
}

/** The attempts the SDK made, when it says. */
function attemptsOf(err: unknown): number | undefined {
  const m = (err as { $metadata?: { attempts?: number } } | null)?.$metadata;
  return typeof m?.attempts === 'number' ? m.attempts : undefined;
}

/**
 * An AWS SDK error as an AwsBatchError whose message names the service, endpoint, region and
 * operation, and what to do.
 */
export function describeAwsError(err: unknown, at: CallSite): AwsBatchError {
  if (err instanceof AwsBatchError) return err;
  const code = codeOf(err) ?? 'Error';
  const message = String((err as { message?: unknown } | null)?.message ?? err).split('\n')[0];
  const where = `${at.service} at ${at.endpoint} (region ${at.region})`;
  const name = (err as { name?: string } | null)?.name;
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(message))
    return new AwsBatchError(
      'CREDENTIALS',
      `${at.operation}: no AWS credentials for ${where}: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (${message})`,
      { cause: err },
    );
  if (UNREACHABLE.has(code)) {
    const tries = attemptsOf(err);
    return new AwsBatchError(
      'UNREACHABLE',
      `${at.operation}: cannot reach ${where}: ${code}${tries ? ` after ${tries} attempt(s)` : ''}; check the endpoint (executors.aws-batch.endpoint in config.yaml, AWS_ENDPOINT_URL_${at.service === 'AWS Batch' ? 'BATCH' : 'CLOUDWATCH_LOGS'}, AWS_ENDPOINT_URL) and the region`,
      { cause: err },
    );
  }
  if (REFUSED_CREDENTIALS.has(code))
    return new AwsBatchError(
      'CREDENTIALS',
      `${at.operation}: ${where} refused the credentials (${code}: ${message}); renew them (aws sso login, or a new AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN) or use a role allowed to call batch:${at.operation}`,
      { cause: err },
    );
  if (THROTTLED.has(code)) {
    const tries = attemptsOf(err);
    return new AwsBatchError(
      'THROTTLED',
      `${at.operation}: ${where} throttled the request (${code}) ${tries ? `${tries} time(s), the last retry included` : 'after the retries'}: ${message}`,
      { cause: err },
    );
  }
  return new AwsBatchError('REQUEST', `${at.operation}: ${where}: ${code}: ${message}`, {
    cause: err,
  });
}
