/**
 * Where outputs live in a store: `{pipeline}/{sample}/{step}/…` per sample and
 * `{pipeline}/_all/{step}/…` for aggregate steps, so people and tools can find a result
 * without asking Strand.
 */
import { StorageError } from './errors.js';

/** The sample segment of aggregate (once-for-all-samples) steps. */
export const ALL_SAMPLES = '_all';

const NAME = /^[A-Za-z0-9._-]+$/;

/** The key prefix of one step's outputs; `sample` null for an aggregate step. */
export function stepPrefix(pipeline: string, sample: string | null, step: string): string {
  checkName('pipeline name', pipeline);
  if (sample !== null) {
    checkName('sample id', sample);
    if (sample === ALL_SAMPLES) {
      throw new StorageError(
        'BAD_LAYOUT',
        `sample id "${ALL_SAMPLES}" is reserved for the outputs of aggregate steps; rename the sample`,
      );
    }
  }
  checkName('step name', step);
  return `${pipeline}/${sample ?? ALL_SAMPLES}/${step}`;
}

function checkName(what: string, value: string): void {
  if (value === '') throw new StorageError('BAD_LAYOUT', `${what} may not be empty`);
  if (!NAME.test(value)) {
    throw new StorageError(
      'BAD_LAYOUT',
      `${what} ${JSON.stringify(value)} may only contain letters, digits, ".", "_" and "-"`,
    );
  }
  if (value === '.' || value === '..') {
    throw new StorageError('BAD_LAYOUT', `${what} may not be "${value}"`);
  }
}
