/**
 * Errors of the HTTP APIs, named as AWS names them, so an SDK or the AWS CLI raises the exception
 * it knows (ExecutionDoesNotExist, ClientException, InvalidSignatureException, …). Each protocol
 * renders them in its own shape: Step Functions (JSON 1.0) as `{"__type", "message"}`, Batch
 * (REST-JSON) with the name in the `x-amzn-ErrorType` header.
 */

/** An error the API answers with: AWS's error name, a message, and an HTTP status. */
export class ApiError extends Error {
  constructor(
    /** AWS's name for it: the `__type` of JSON 1.0, the `x-amzn-ErrorType` of REST-JSON. */
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/**
 * A request that breaks a field's constraint, in the words AWS's front end uses
 * (`1 validation error detected: Value at 'input' failed to satisfy constraint: …`).
 */
export function validationError(field: string, constraint: string, value?: string): ApiError {
  const what = value === undefined ? `Value at '${field}'` : `Value '${value}' at '${field}'`;
  return new ApiError(
    'ValidationException',
    `1 validation error detected: ${what} failed to satisfy constraint: ${constraint}`,
  );
}

/** How each protocol spells an error. */
export type ErrorProtocol = 'json-1.0' | 'rest-json';

/** The status, headers and body of `err` in `protocol`'s shape. */
export function errorResponse(
  err: ApiError,
  protocol: ErrorProtocol,
): { status: number; headers: Record<string, string>; body: string } {
  if (protocol === 'json-1.0')
    return {
      status: err.status,
      headers: { 'content-type': 'application/x-amz-json-1.0' },
      body: JSON.stringify({ __type: err.type, message: err.message }),
    };
  return {
    status: err.status,
    headers: { 'content-type': 'application/json', 'x-amzn-errortype': err.type },
    body: JSON.stringify({ __type: err.type, message: err.message }),
  };
}
