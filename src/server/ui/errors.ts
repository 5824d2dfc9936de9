/**
 * The dashboard API's errors: a stable name, a sentence that names the values, an HTTP status,
 * and for an unknown name the closest known one. Rendered as `UiErrorBody` JSON, never a stack.
 */
import { closest } from '../../asl/suggest.js';
import type { UiErrorBody } from './types.js';

export class UiError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 429 | 500 | 503,
    readonly error: string,
    message: string,
    readonly suggestion?: string,
  ) {
    super(message);
    this.name = 'UiError';
  }

  body(): UiErrorBody {
    return {
      error: this.error,
      message: this.message,
      ...(this.suggestion === undefined ? {} : { suggestion: this.suggestion }),
    };
  }
}

/** Bad input (a filter, a body): 400. */
export const badRequest = (message: string) => new UiError(400, 'BadRequest', message);

/**
 * An unknown name (`what` "execution", "job", …): 404 naming it and where it was looked for,
 * with the closest of `known` (`closest` keeps to names a typo away).
 */
export function notFound(
  what: string,
  name: string,
  known: Iterable<string> = [],
  where = 'in this home',
): UiError {
  const near = closest(name, [...new Set(known)].slice(0, 5000));
  return new UiError(
    404,
    'NotFound',
    `no ${what} "${name}" ${where}${near ? `; did you mean "${near}"?` : ''}`,
    near,
  );
}
