/** Retry and Catch matching, as the States language defines them. */
import type { Catcher, Retrier } from './types.js';

/**
 * Errors the wildcards States.ALL and States.TaskFailed do not match. (AWS's documentation
 * also lists States.DataLimitExceeded, but recorded executions show States.ALL catching it.)
 */
const TERMINAL_ERRORS = new Set(['States.Runtime']);

/**
 * Timeouts: States.Timeout names both a task that ran past TimeoutSeconds and one that missed
 * its heartbeat; States.HeartbeatTimeout, added later, names the second only. So a retrier or
 * catcher on States.Timeout matches a heartbeat timeout too, as it did before that name existed
 * (AWS's error-handling guide: "States.Timeout: A Task state either ran longer than the
 * TimeoutSeconds value, or failed to send a heartbeat for a period longer than the
 * HeartbeatSeconds value"; aws/aws-cdk#16084, by the Step Functions team: "Step Functions only
 * supports a Catch on States.Timeout that includes both Task timeout and Task Heartbeat
 * timeout"), and States.TaskFailed, which matches every error but States.Timeout, matches
 * neither.
 */
const TIMEOUTS = new Set(['States.Timeout', 'States.HeartbeatTimeout']);

/** True when an ErrorEquals list matches an error name. */
export function errorMatches(errorEquals: readonly string[], error: string): boolean {
  for (const name of errorEquals) {
    if (name === error) return true;
    if (name === 'States.ALL' && !TERMINAL_ERRORS.has(error)) return true;
    if (name === 'States.Timeout' && TIMEOUTS.has(error)) return true;
    if (name === 'States.TaskFailed' && !TIMEOUTS.has(error) && !TERMINAL_ERRORS.has(error)) {
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
