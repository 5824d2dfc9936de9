/**
 * Task tokens (`$$.Task.Token`): which task of which execution a SendTaskSuccess, -Failure or
 * -Heartbeat is for. Derived from the execution and the task, so a token stays valid across a
 * restart without being stored; opaque to its holder, as AWS's are.
 */
const PREFIX = 'strand1.';

export function taskToken(executionArn: string, taskId: string): string {
  return PREFIX + Buffer.from(JSON.stringify([executionArn, taskId])).toString('base64url');
}

/** The execution and task a token names; undefined when it is not a token of this kind. */
export function parseTaskToken(
  token: string,
): { executionArn: string; taskId: string } | undefined {
  if (!token.startsWith(PREFIX)) return undefined;
  try {
    const parts = JSON.parse(
      Buffer.from(token.slice(PREFIX.length), 'base64url').toString('utf8'),
    ) as unknown;
    if (
      Array.isArray(parts) &&
      parts.length === 2 &&
      typeof parts[0] === 'string' &&
      typeof parts[1] === 'string'
    )
      return { executionArn: parts[0], taskId: parts[1] };
  } catch {
    // not JSON: not a token
  }
  return undefined;
}
