/**
 * The units pipeline.yaml accepts for resources, and the hint shown when a value is not one of
 * them. Everything is converted once, here: memory to MiB, durations to seconds.
 */

/** A converted value, or why the input is not one, with the spelling it probably meant. */
export type UnitResult<T> = { ok: true; value: T } | { ok: false; message: string; hint?: string };

const MIB_PER: Record<string, number> = { M: 1, G: 1024, T: 1024 * 1024 };

/**
 * Plain numbers below this are far more often meant as GiB (`memory: 8`) than as MiB; asking
 * for the unit costs one keystroke, guessing wrong costs an out-of-memory run.
 */
const SMALLEST_PLAIN_MIB = 128;

function fail<T>(message: string, hint?: string): UnitResult<T> {
  return hint === undefined ? { ok: false, message } : { ok: false, message, hint };
}

function show(input: unknown): string {
  return typeof input === 'string' ? JSON.stringify(input) : String(input);
}

function trimNumber(n: number): string {
  return String(Number(n.toFixed(6)));
}

/** Hint for a size written with a unit Strand does not take (`4 GB`, `4gb`, `512 mib`). */
function sizeHint(amount: number, unit: string): string {
  const u = unit.toLowerCase();
  const letter = u.startsWith('t') ? 'T' : u.startsWith('g') ? 'G' : u.startsWith('m') ? 'M' : '';
  if (letter === '') return 'use 512MiB, 4GiB or 1TiB';
  const mib = amount * MIB_PER[letter];
  const plain = `${trimNumber(amount)}${letter}iB`;
  if (letter === 'M') return `use ${trimNumber(Math.ceil(mib))}MiB`;
  return Number.isInteger(mib) ? `use ${plain} or ${mib}MiB` : `use ${plain}`;
}

/**
 * Parses a memory size to MiB. A plain integer is MiB (at least 128, so `memory: 8` is not
 * mistaken for 8 GiB). A string is a number and a binary unit: `MiB`/`Mi`/`M`, `GiB`/`Gi`/`G`,
 * `TiB`/`Ti`/`T` (`M`, `G` and `T` are binary, as in SLURM's `--mem`), e.g. `512MiB`, `1.5GiB`,
 * `4G`; the result must be a whole number of MiB. Decimal units (`GB`), lower case, spaces,
 * zero and negatives are rejected with the spelling that was probably meant.
 */
export function parseSize(input: unknown): UnitResult<number> {
  if (typeof input === 'number' || (typeof input === 'string' && /^\s*-?\d+\s*$/.test(input))) {
    const n = Number(input);
    if (!Number.isInteger(n)) {
      return fail(
        `${show(input)} is not a size`,
        `a plain number is MiB; write ${n}GiB if you meant GiB`,
      );
    }
    if (n <= 0) return fail(`${show(input)} is not a size`, 'sizes are positive: 512MiB, 4GiB');
    if (n < SMALLEST_PLAIN_MIB) {
      return fail(
        `${show(input)} is ambiguous: a plain number is MiB`,
        `write ${n}GiB, or ${n}MiB if you really mean MiB`,
      );
    }
    return { ok: true, value: n };
  }
  if (typeof input !== 'string') return fail(`${show(input)} is not a size`, 'use 4GiB or 4096MiB');
  const exact = /^(\d+(?:\.\d+)?)(Mi?B?|Gi?B?|Ti?B?)$/.exec(input);
  if (exact && !/^[MGT]B$/.test(exact[2])) {
    const mib = Number(exact[1]) * MIB_PER[exact[2][0]];
    if (mib <= 0) return fail(`${show(input)} is not a size`, 'sizes are positive: 512MiB, 4GiB');
    if (!Number.isInteger(mib)) {
      return fail(`${show(input)} is not a whole number of MiB`, `use ${Math.ceil(mib)}MiB`);
    }
    return { ok: true, value: mib };
  }
  const loose = /^\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(input);
  if (loose && Number(loose[1]) <= 0) {
    return fail(`${show(input)} is not a size`, 'sizes are positive: 512MiB, 4GiB');
  }
  const hint = loose ? sizeHint(Number(loose[1]), loose[2]) : 'use 4GiB or 4096MiB';
  return fail(`${show(input)} is not a size`, hint);
}

const SECONDS_PER: Record<string, number> = { d: 86400, h: 3600, m: 60, s: 1 };

const UNIT_WORDS: Record<string, string> = {
  d: 'd',
  day: 'd',
  days: 'd',
  h: 'h',
  hr: 'h',
  hrs: 'h',
  hour: 'h',
  hours: 'h',
  m: 'm',
  min: 'm',
  mins: 'm',
  minute: 'm',
  minutes: 'm',
  s: 's',
  sec: 's',
  secs: 's',
  second: 's',
  seconds: 's',
};

/** Seconds as Strand writes durations (`1h30m`, `2d`, `45s`), for hints. */
function formatDuration(seconds: number): string {
  let rest = seconds;
  let out = '';
  for (const unit of ['d', 'h', 'm', 's']) {
    const n = Math.floor(rest / SECONDS_PER[unit]);
    rest -= n * SECONDS_PER[unit];
    if (n > 0) out += `${n}${unit}`;
  }
  return out === '' ? '0s' : out;
}

/** What a malformed duration probably meant (`1.5h`, `2 hours`, `30min`), in seconds. */
function guessSeconds(input: string): number | undefined {
  const parts = input
    .trim()
    .toLowerCase()
    .match(/\d+(?:\.\d+)?\s*[a-z]*/g);
  if (!parts || parts.join('').replace(/\s/g, '') !== input.toLowerCase().replace(/\s/g, '')) {
    return undefined;
  }
  let total = 0;
  for (const part of parts) {
    const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(part);
    const unit = m ? UNIT_WORDS[m[2] === '' ? 's' : m[2]] : undefined;
    if (!m || unit === undefined) return undefined;
    total += Number(m[1]) * SECONDS_PER[unit];
  }
  return Math.round(total);
}

/**
 * Parses a duration to seconds: a plain number is seconds (`90`); otherwise whole numbers with
 * units `d`, `h`, `m`, `s` in that order (`30s`, `10m`, `2h`, `1h30m`, `1d`). Fractions, words
 * (`2 hours`), zero and negatives are rejected with the canonical spelling as the hint.
 */
export function parseDuration(input: unknown): UnitResult<number> {
  const general = 'use 90s, 30m, 2h, 1h30m or 1d';
  if (typeof input === 'number' || (typeof input === 'string' && /^\s*-?\d+\s*$/.test(input))) {
    const n = Number(input);
    if (!Number.isInteger(n) || n <= 0) {
      return fail(`${show(input)} is not a duration`, `durations are positive; ${general}`);
    }
    return { ok: true, value: n };
  }
  if (typeof input !== 'string') return fail(`${show(input)} is not a duration`, general);
  const m = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(input);
  if (m && input !== '') {
    const [d, h, min, s] = m.slice(1).map((x) => Number(x ?? 0));
    const total = d * 86400 + h * 3600 + min * 60 + s;
    if (total <= 0)
      return fail(`${show(input)} is not a duration`, `durations are positive; ${general}`);
    return { ok: true, value: total };
  }
  if (/^\s*-/.test(input)) {
    return fail(`${show(input)} is not a duration`, `durations are positive; ${general}`);
  }
  const guess = guessSeconds(input);
  return fail(
    `${show(input)} is not a duration`,
    guess !== undefined && guess > 0 ? `use ${formatDuration(guess)}` : general,
  );
}

/**
 * Checks a vCPU count: a positive multiple of 0.25 (Fargate takes 0.25, 0.5 …; EC2 compute
 * environments need whole numbers, which the scheduler checks against the environment).
 */
export function parseVcpus(input: unknown): UnitResult<number> {
  if (typeof input !== 'number' || !Number.isFinite(input) || input <= 0) {
    return fail(`${show(input)} is not a vCPU count`, 'use a positive number such as 1, 2 or 0.5');
  }
  if (!Number.isInteger(input * 4)) {
    const near = Math.max(0.25, Math.round(input * 4) / 4);
    return fail(`${show(input)} is not a vCPU count`, `use a multiple of 0.25, such as ${near}`);
  }
  return { ok: true, value: input };
}

/** Checks a retry count: extra attempts 0..9 (AWS Batch allows 1..10 attempts in all). */
export function parseRetry(input: unknown): UnitResult<number> {
  if (typeof input !== 'number' || !Number.isInteger(input) || input < 0 || input > 9) {
    return fail(
      `${show(input)} is not a retry count`,
      'use a whole number from 0 to 9: the extra attempts after the first; AWS Batch allows 10 in all',
    );
  }
  return { ok: true, value: input };
}

/** A range `low-high` of two values of one unit, or one value (low = high). */
export interface Range {
  low: number;
  high: number;
}

/**
 * Parses a value or a range `low-high` of values that `parse` reads (`1-4`, `2GiB-8GiB`); the
 * low end may not be above the high end. A range's ends are said as in the unit's messages.
 */
function parseRange(
  input: unknown,
  parse: (v: unknown) => UnitResult<number>,
  number: boolean,
): UnitResult<Range> {
  const text = typeof input === 'string' ? input.trim() : undefined;
  const m = text === undefined ? null : /^([^-\s][^-]*?)\s*-\s*([^-\s].*)$/.exec(text);
  if (!m) {
    const one = parse(input);
    return one.ok ? { ok: true, value: { low: one.value, high: one.value } } : one;
  }
  const ends = [m[1], m[2]].map((end) => parse(number ? Number(end) : end));
  for (const end of ends) if (!end.ok) return end as UnitResult<Range>;
  const [low, high] = ends.map((e) => (e as { value: number }).value);
  if (low > high) {
    return fail(
      `${show(input)}: the low end is above the high end`,
      `write the smaller first: ${m[2]}-${m[1]}`,
    );
  }
  return { ok: true, value: { low, high } };
}

/** vCPUs: a count (`2`) or a range (`1-4`) of multiples of 0.25. */
export function parseVcpuRange(input: unknown): UnitResult<Range> {
  if (typeof input === 'string' && !/^\s*\d+(\.\d+)?\s*-\s*\d+(\.\d+)?\s*$/.test(input))
    return fail(
      `${show(input)} is not a vCPU count`,
      'use a number such as 2, or a range such as 1-4',
    );
  return parseRange(input, parseVcpus, true);
}

/** Memory: a size (`4GiB`) or a range (`2GiB-8GiB`). */
export function parseSizeRange(input: unknown): UnitResult<Range> {
  return parseRange(input, parseSize, false);
}
