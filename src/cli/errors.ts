/** Errors the CLI reports as one headline line (stack only with --debug). */

/** Bad input or usage: exit code 2. */
export class InputError extends Error {
  readonly code = 'STRAND_INPUT';
  constructor(
    message: string,
    readonly details: string[] = [],
    /** The error it was made from, when a command wants more than the headline (e.g. --json). */
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'InputError';
  }
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_INPUT = 2;
