/**
 * A name given on the command line (`--step wrods`) that matches nothing is bad input, never an
 * empty success: it is refused with exit 2, the names there are, and the likely one.
 */
import { closest } from '../asl/suggest.js';
import { InputError } from './errors.js';

/** At most this many names are listed in the message. */
const LISTED = 12;

/**
 * Returns `value` when it is one of `known`; otherwise throws InputError naming the flag, what
 * was looked for (`step`, `sample`), where (`in the results`), the closest name and the names
 * there are (in the order given).
 */
export function knownName(
  flag: string,
  value: string,
  known: Iterable<string>,
  what: string,
  where = '',
): string {
  const names = [...new Set(known)];
  if (names.includes(value)) return value;
  const near = closest(value, names);
  const listed =
    names.length === 0
      ? `there are no ${what}s${where ? ` ${where}` : ''} yet`
      : `${what}s: ${names.slice(0, LISTED).join(', ')}${names.length > LISTED ? `, … (${names.length} in all)` : ''}`;
  throw new InputError(
    `${flag} ${value}: no such ${what}${where ? ` ${where}` : ''}${near ? `; did you mean "${near}"?` : ''} (${listed})`,
  );
}
