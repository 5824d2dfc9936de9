/** Retry and Catch matching, as the States language defines them. */
import type { Catcher, Retrier } from './types.js';

/**
 * Errors the wildcards States.ALL and States.TaskFailed do not match. (AWS's documentation
 * also lists States.DataLimitExceeded, but recorded executions show States.ALL catching it.)
 */
const TERMINAL_ERRORS = new Set(['States.Runtime']);

/** True when an ErrorEquals list matches an error name. */
export function errorMatches(errorEquals: readonly string[], error: string): boolean {
  for (const name of errorEquals) {
    if (name === error) return true;
    if (name === 'States.ALL' && !TERMINAL_ERRORS.has(error)) return true;
    if (name === 'States.TaskFailed' && error !== 'States.Timeout' && !TERMINAL_ERRORS.has(error)) {
      return true;
    }
  }
  return false;
}

/** The index of the first retrier/catcher that matches, or -1. */
export function findHandler(
  handlers: readonly (Retrier | Catcher)[] | undefined,
  error: string,
): number {
  if (!handlers) return -1;
  for (let i = 0; i < handlers.length; i++) {
    if (errorMatches(handlers[i].ErrorEquals, error)) return i;
  }
  return -1;
}

/**
 * The delay before retry number `attempt` (0-based): IntervalSeconds × BackoffRate^attempt,
 * capped by MaxDelaySeconds, scaled by a random factor under JitterStrategy FULL.
 */
export function retryDelayMs(retrier: Retrier, attempt: number, random: () => number): number {
  const interval = retrier.IntervalSeconds ?? 1;
  const backoff = retrier.BackoffRate ?? 2;
  let seconds = interval * Math.pow(backoff, attempt);
  if (retrier.MaxDelaySeconds !== undefined) seconds = Math.min(seconds, retrier.MaxDelaySeconds);
  if (retrier.JitterStrategy === 'FULL') seconds = seconds * random();
  return Math.round(seconds * 1000);
}

/** MaxAttempts with the AWS default of 3. */
export function maxAttempts(retrier: Retrier): number {
  return retrier.MaxAttempts ?? 3;
}
