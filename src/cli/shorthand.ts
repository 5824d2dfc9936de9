/**
 * Structure-valued options as the AWS CLI takes them: JSON (inline or `file://path`), or its
 * shorthand `key=value,key2=value2` with `[a,b]` for a list (`type=EC2,maxvCpus=8,
 * instanceTypes=[m5.large,m5.xlarge]`). Values stay strings unless the key is one of `numbers`,
 * as the AWS CLI types them from the API model.
 */
import { readTextFile } from './input.js';
import { InputError } from './errors.js';

/** Splits at commas outside brackets. */
function split(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const c of text) {
    if (c === '[') depth++;
    else if (c === ']') depth--;
    if (c === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  return parts;
}

/**
 * One structure from `flag`'s value; `numbers` are the keys whose values are numbers (and must
 * read as one).
 */
export function structureOption(
  flag: string,
  value: string,
  numbers: readonly string[] = [],
): Record<string, unknown> {
  const text = value.startsWith('file://') ? readTextFile(value.slice(7), flag) : value;
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    try {
      return JSON.parse(trimmed) as Record<string, unknown>;
    } catch (err) {
      throw new InputError(`${flag}: not valid JSON (${(err as Error).message})`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const part of split(trimmed)) {
    const eq = part.indexOf('=');
    if (eq <= 0)
      throw new InputError(
        `${flag} ${value}: "${part}" is not key=value (write e.g. maxvCpus=8,type=EC2, or JSON)`,
      );
    const key = part.slice(0, eq).trim();
    const raw = part.slice(eq + 1).trim();
    if (raw.startsWith('[') && raw.endsWith(']')) {
      out[key] = split(raw.slice(1, -1))
        .map((v) => v.trim())
        .filter((v) => v !== '');
    } else if (numbers.includes(key)) {
      const n = Number(raw);
      if (raw === '' || !Number.isFinite(n))
        throw new InputError(`${flag} ${value}: ${key}=${raw} is not a number`);
      out[key] = n;
    } else out[key] = raw;
  }
  return out;
}

/**
 * A list of structures: one JSON array (inline or `file://`), or several shorthand values
 * (`order=1,computeEnvironment=A order=2,computeEnvironment=B`).
 */
export function structureListOption(
  flag: string,
  values: string[],
  numbers: readonly string[] = [],
): Record<string, unknown>[] {
  if (values.length === 1) {
    const only = values[0];
    const text = only.startsWith('file://') ? readTextFile(only.slice(7), flag) : only;
    if (text.trim().startsWith('[')) {
      try {
        const parsed = JSON.parse(text) as unknown;
        if (Array.isArray(parsed)) return parsed as Record<string, unknown>[];
      } catch (err) {
        throw new InputError(`${flag}: not valid JSON (${(err as Error).message})`);
      }
    }
  }
  return values.map((v) => structureOption(flag, v, numbers));
}
