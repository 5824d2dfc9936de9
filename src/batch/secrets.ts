/**
 * The values of a job's secrets (`containerProperties.secrets`), read by the local Batch when
 * an attempt starts and handed to the executor in the attempt's environment only. They are
 * never written to the job, its definition, the history or a log: a failure names the secret
 * and its source, never what was read.
 *
 * Sources: `env:NAME`, a variable of the Strand process that starts the attempt; `file:PATH`,
 * a regular file's content as UTF-8 text, one trailing newline (`\n` or `\r\n`) removed, as
 * `echo value > file` writes one. AWS Secrets Manager and SSM Parameter Store ARNs are AWS
 * Batch's to read: here they fail the attempt, saying so.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import type { Secret } from './types.js';

/** The longest environment string ("NAME=value") Linux passes, its NUL included. */
const MAX_ARG_STRLEN = 131_072;

/** A secret that could not be read; the message names it and its source, never a value. */
export class SecretError extends Error {
  readonly code = 'SECRET_UNAVAILABLE';
  constructor(message: string) {
    super(message);
    this.name = 'SecretError';
  }
}

/** A file's content, refusing what is not a regular file (a FIFO would block, /dev/zero never ends). */
function readSecretFile(path: string, limit: number): Buffer {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer before it can be refused.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT' ? `${path} does not exist` : `${path} cannot be read (${code ?? 'error'})`,
      { cause: err },
    );
  }
  try {
    if (!fstatSync(fd).isFile()) throw new Error(`${path} is not a regular file`);
    const chunks: Buffer[] = [];
    let size = 0;
    for (;;) {
      const chunk = Buffer.alloc(65_536);
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      size += n;
      if (size > limit) throw new Error(`${path} holds more than ${limit} bytes`);
    }
    return Buffer.concat(chunks);
  } finally {
    closeSync(fd);
  }
}

/** One secret's value; throws SecretError naming it. */
export function resolveSecret(secret: Secret, env: NodeJS.ProcessEnv = process.env): string {
  const { name, valueFrom } = secret;
  const fail = (why: string): never => {
    throw new SecretError(`secret ${name} (${valueFrom}): ${why}`);
  };
  let value: string;
  if (valueFrom.startsWith('env:')) {
    const from = valueFrom.slice('env:'.length);
    const found = env[from];
    if (found === undefined)
      return fail(`${from} is not set in the environment of the Strand process starting the job`);
    value = found;
  } else if (valueFrom.startsWith('file:')) {
    let content: Buffer;
    try {
      content = readSecretFile(valueFrom.slice('file:'.length), MAX_ARG_STRLEN);
    } catch (err) {
      return fail((err as Error).message);
    }
    try {
      value = new TextDecoder('utf-8', { fatal: true }).decode(content);
    } catch {
      return fail('the file is not UTF-8 text');
    }
    value = value.replace(/\r?\n$/, '');
  } else if (/^arn:aws[a-z-]*:(secretsmanager|ssm):/.test(valueFrom)) {
    return fail(
      "AWS Secrets Manager and SSM Parameter Store are read by AWS Batch; Strand's local Batch reads env:NAME and file:/path",
    );
  } else {
    return fail('not a source the local Batch reads (env:NAME or file:/path)');
  }
  if (value.includes('\0')) fail('the value holds a NUL byte, which no environment variable can');
  const length = Buffer.byteLength(`${name}=${value}`) + 1;
  if (length > MAX_ARG_STRLEN)
    fail(
      `${name}=… would be ${length} bytes with its end; Linux passes at most ${MAX_ARG_STRLEN} per environment string`,
    );
  return value;
}

/** Every secret's value by name; throws SecretError for the first that cannot be read. */
export function resolveSecrets(
  secrets: Secret[] | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const secret of secrets ?? []) out[secret.name] = resolveSecret(secret, env);
  return out;
}
