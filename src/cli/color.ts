/**
 * Colour in the CLI's output, kept to what helps a reader: statuses (SUCCEEDED green, FAILED and
 * TIMED_OUT red, running cyan, waiting yellow, ABORTED magenta, SKIPPED dim) and the `error:`
 * prefix of errors in red. Only on a terminal, never with NO_COLOR set, always with FORCE_COLOR
 * (as https://no-color.org and Node's own tty do); piped output is plain text, byte for byte.
 * The escape sequences are Node's own (util.styleText).
 */
import * as util from 'node:util';
import type { TableOptions } from './table.js';

type Format = Parameters<typeof util.styleText>[0];

/** Styles `text`, or leaves it as it is when colour is off. */
export type Paint = (format: Format, text: string) => string;

const plain: Paint = (_format, text) => text;
const painted: Paint = (format, text) => util.styleText(format, text, { validateStream: false });

/**
 * Whether to colour what is written to a stream: never when NO_COLOR is set (non-empty);
 * always when FORCE_COLOR is set (other than `0` or `false`); else on a terminal that is not
 * TERM=dumb.
 */
export function colorWanted(
  isTTY: boolean | undefined,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR !== undefined) return !['0', 'false'].includes(env.FORCE_COLOR);
  return Boolean(isTTY) && env.TERM !== 'dumb';
}

/**
 * A painter for a stream: it colours when `on`, else returns the text unchanged (so does it on
 * a Node 20 older than 20.12, which has no util.styleText).
 */
export function painter(on: boolean | undefined): Paint {
  return on && typeof util.styleText === 'function' ? painted : plain;
}

const STATUS: Record<string, Format> = {
  SUCCEEDED: 'green',
  CACHED: 'green',
  built: 'green',
  FAILED: 'red',
  TIMED_OUT: 'red',
  missing: 'red',
  RUNNING: 'cyan',
  STARTING: 'cyan',
  SUBMITTED: 'yellow',
  PENDING: 'yellow',
  RUNNABLE: 'yellow',
  outdated: 'yellow',
  ABORTED: 'magenta',
  SKIPPED: 'dim',
};

/** A status (of an execution, a job, a step's result, an image) in its colour. */
export function status(paint: Paint, text: string): string {
  const format = STATUS[text];
  return format ? paint(format, text) : text;
}

/** The `error:` prefix (or another one, `strand:`) of an error message, in red. */
export function errorPrefix(paint: Paint, prefix = 'error:'): string {
  return paint('red', prefix);
}

/** Table options that colour the cells of the columns `keys` (default `status`) as statuses. */
export function statusColumns(paint: Paint, keys: string[] = ['status']): TableOptions {
  if (paint === plain) return {};
  return { style: (key, _value, text) => (keys.includes(key) ? status(paint, text) : text) };
}
