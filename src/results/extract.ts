/**
 * Turns a step's results file (TSV, CSV or JSON, as tools write them) into a MetricsTable: named,
 * typed columns and rows of values, ready for a results sink. Column names are sanitised to
 * `[a-z0-9_]` so they are valid SQL identifiers in any database.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { ResultsError } from './errors.js';
import type { MetricColumn, MetricsTable, MetricType, MetricValue } from './sink.js';

/** How to read a results file: a pipeline's `results:` entry, plus names for headerless files. */
export interface ExtractSpec {
  /** `tsv` also reads columns aligned with spaces (`seqkit stats`) when the file has no tab. */
  format: 'tsv' | 'csv' | 'json';
  /**
   * Declared types; other columns are inferred. Keys are header names (as written or
   * sanitised); for JSON, dotted paths (`summary.after_filtering.total_reads`), and when any key
   * is dotted only the declared paths are read.
   */
  columns?: Record<string, MetricType>;
  /** Column names of a file without a header line (`mash dist`): every line is then data. */
  header?: string[];
}

/** More columns than any database should get from one file (SQLite allows 2000, Postgres 1600). */
const MAX_COLUMNS = 1000;
/** How deep JSON objects are flattened when no paths are declared (`a.b.c` is depth 3). */
const JSON_DEPTH = 3;
/** Postgres truncates longer identifiers. */
const MAX_NAME = 63;

const INTEGER = /^[+-]?\d+$/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
/** `1,234,567` or `1,234.5`, as `seqkit stats` prints them. */
const GROUPED = /^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$/;

function fail(message: string): never {
  throw new ResultsError('BAD_RESULTS_FILE', message);
}

/** Reads `filePath` as `spec` says and returns its metrics, typed and with sanitised names. */
export function extractMetrics(filePath: string, spec: ExtractSpec): MetricsTable {
  let text: string;
  try {
    text = readFileSync(filePath, 'utf8');
  } catch (err) {
    fail(`${filePath}: cannot read the results file: ${(err as Error).message}`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const table =
    spec.format === 'json'
      ? fromJson(filePath, text, spec.columns ?? {})
      : fromDelimited(filePath, text, spec);
  if (table.columns.length > MAX_COLUMNS) {
    fail(
      `${filePath}: ${table.columns.length} columns, more than the ${MAX_COLUMNS} a results table takes; ` +
        'declare the ones you want under the step’s results columns' +
        (spec.format === 'json'
          ? ' (dotted paths such as summary.after_filtering.total_reads)'
          : ''),
    );
  }
  return table;
}

/** `Q20(%)` → `q20`, `summary.before_filtering.total_reads` → `summary_before_filtering_total_reads`. */
function sanitize(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+/, '')
    .slice(0, MAX_NAME)
    .replace(/_+$/, '');
}

/** Sanitised names, `col<N>` for empty ones, `_2`, `_3`… appended to repeats. */
function uniqueNames(raw: string[]): string[] {
  const used = new Set<string>();
  return raw.map((r, i) => {
    const base = sanitize(r) || `col${i + 1}`;
    let name = base;
    for (let n = 2; used.has(name); n++) {
      const suffix = `_${n}`;
      name = base.slice(0, MAX_NAME - suffix.length).replace(/_+$/, '') + suffix;
    }
    used.add(name);
    return name;
  });
}

/** Which column a declared key names: the name as written, or its sanitised form. */
function findColumn(key: string, raw: string[], names: string[]): number {
  const exact = raw.indexOf(key);
  if (exact >= 0) return exact;
  const i = names.indexOf(key);
  return i >= 0 ? i : names.indexOf(sanitize(key));
}

type Parsed = { kind: 'integer' | 'real'; value: number } | { kind: 'text' };

function parseNumber(s: string, grouped: boolean): Parsed {
  const plain = grouped && GROUPED.test(s) ? s.replace(/,/g, '') : s;
  if (!NUMBER.test(plain)) return { kind: 'text' };
  const value = Number(plain);
  if (INTEGER.test(plain) && Number.isSafeInteger(value)) return { kind: 'integer', value };
  return Number.isFinite(value) ? { kind: 'real', value } : { kind: 'text' };
}

/** Whether a parsed cell can be stored as `want` (1.0 is an integer, 1.5 is not). */
function fits(p: Parsed, want: MetricType): boolean {
  return (
    want === 'text' || (p.kind !== 'text' && (want === 'real' || Number.isSafeInteger(p.value)))
  );
}

/** The narrowest type holding every kind seen; `text` for a column with no values at all. */
function widest(kinds: Iterable<MetricType>): MetricType {
  let type: MetricType | undefined;
  for (const k of kinds) {
    if (k === 'text') return 'text';
    if (k === 'real' || type === undefined) type = k;
  }
  return type ?? 'text';
}

interface RawRecord {
  line: number;
  fields: string[];
}

function readRecords(file: string, text: string, format: 'tsv' | 'csv'): RawRecord[] {
  if (format === 'tsv' && !text.includes('\t')) {
    // Columns aligned with spaces, as `seqkit stats` prints them without -T.
    return (
      text
        .split(/\r?\n/)
        .map((l, i) => ({ line: i + 1, fields: l.trim().split(/\s+/) }))
        .filter((r) => r.fields[0] !== '')
        // `# file format …`: a lone # would otherwise become a column of its own.
        .map((r, i) => (i === 0 && r.fields[0] === '#' ? { ...r, fields: r.fields.slice(1) } : r))
    );
  }
  let parsed: { info: { lines: number }; record: string[] }[];
  try {
    parsed = parse(text, {
      delimiter: format === 'tsv' ? '\t' : ',',
      // Tools writing TSV do not quote: a " is part of the value.
      quote: format === 'tsv' ? false : '"',
      info: true,
      relax_column_count: true,
      skip_empty_lines: true,
      trim: true,
    }) as unknown as { info: { lines: number }; record: string[] }[];
  } catch (err) {
    const line = (err as { lines?: number }).lines;
    fail(
      `${file}${line ? `:${line}` : ''}: not valid ${format.toUpperCase()}: ${(err as Error).message}`,
    );
  }
  return parsed
    .map(({ info, record }) => ({
      // info.lines is where the record ends; a quoted value may span lines.
      line: info.lines - record.reduce((n, f) => n + (f.match(/\n/g)?.length ?? 0), 0),
      fields: record,
    }))
    .filter((r) => r.fields.some((f) => f !== ''));
}

function fromDelimited(file: string, text: string, spec: ExtractSpec): MetricsTable {
  const records = readRecords(file, text, spec.format as 'tsv' | 'csv');
  let header: string[];
  let data: RawRecord[];
  if (spec.header) {
    header = spec.header;
    data = records;
  } else {
    if (records.length === 0) {
      fail(
        `${file}: the file is empty; expected a header line (for a headerless file, give header:)`,
      );
    }
    // `#file`, `#query`: seqkit and mash mark their header line as a comment.
    header = records[0].fields.map((f, i) => (i === 0 ? f.replace(/^#+\s*/, '') : f));
    data = records.slice(1);
  }
  for (const r of data) {
    // A trailing delimiter adds empty fields; anything else that does not line up is an error.
    while (r.fields.length > header.length && r.fields[r.fields.length - 1] === '') r.fields.pop();
    if (r.fields.length !== header.length) {
      fail(
        `${file}:${r.line}: ${r.fields.length} fields, but there are ${header.length} columns (${header.join(', ')})`,
      );
    }
  }
  const names = uniqueNames(header);
  const declared: (MetricType | undefined)[] = header.map(() => undefined);
  for (const [key, type] of Object.entries(spec.columns ?? {})) {
    const i = findColumn(key, header, names);
    if (i < 0) {
      fail(
        `${file}: column ${key} is declared but the file has no such column (it has: ${header.join(', ')})`,
      );
    }
    declared[i] = type;
  }

  const grouped = spec.format === 'tsv';
  const columns: MetricColumn[] = [];
  const values: MetricValue[][] = data.map(() => []);
  header.forEach((rawName, j) => {
    const cells = data.map((r) => r.fields[j]);
    const parsed = cells.map((c) => (c === '' ? undefined : parseNumber(c, grouped)));
    const want = declared[j];
    let type: MetricType;
    if (want === undefined) {
      type = widest(parsed.flatMap((p) => (p ? [p.kind] : [])));
    } else {
      type = want;
      parsed.forEach((p, i) => {
        if (p === undefined || fits(p, want)) return;
        const what = want === 'integer' ? 'an integer' : 'a number';
        fail(
          `${file}:${data[i].line}: column ${rawName}: ${JSON.stringify(cells[i])} is not ${what}`,
        );
      });
    }
    columns.push({ name: names[j], type });
    parsed.forEach((p, i) => {
      values[i].push(
        p === undefined ? null : type === 'text' || p.kind === 'text' ? cells[i] : p.value,
      );
    });
  });
  return { columns, rows: values };
}

type Scalar = string | number | boolean | null;
type JsonObject = { [key: string]: unknown };

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function flatten(obj: JsonObject, prefix: string, depth: number, out: Map<string, Scalar>): void {
  for (const [k, v] of Object.entries(obj)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (v === null || typeof v !== 'object') out.set(path, v as Scalar);
    else if (!Array.isArray(v) && depth < JSON_DEPTH)
      flatten(v as JsonObject, path, depth + 1, out);
  }
}

type Lookup = { found: true; value: unknown } | { found: false; parent: string; keys: string[] };

function lookup(obj: JsonObject, path: string): Lookup {
  let here: unknown = obj;
  const parts = path.split('.');
  for (let i = 0; i < parts.length; i++) {
    if (!isObject(here) || !Object.hasOwn(here, parts[i])) {
      return {
        found: false,
        parent: parts.slice(0, i).join('.'),
        keys: isObject(here) ? Object.keys(here) : [],
      };
    }
    here = here[parts[i]];
  }
  return { found: true, value: here };
}

function fromJson(file: string, text: string, declared: Record<string, MetricType>): MetricsTable {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    fail(`${file}: not valid JSON: ${(err as Error).message}`);
  }
  let items: JsonObject[];
  if (Array.isArray(doc)) {
    items = doc.map((item, i) =>
      isObject(item) ? item : fail(`${file}: item [${i}] is ${describeJson(item)}, not an object`),
    );
  } else if (isObject(doc)) {
    items = [doc];
  } else {
    fail(`${file}: expected a JSON object or an array of objects, found ${describeJson(doc)}`);
  }
  const where = (i: number, path: string): string => (Array.isArray(doc) ? `[${i}].${path}` : path);

  // Each column: its path in the documents and the value each item has there.
  const paths: string[] = [];
  const cells: Scalar[][] = items.map(() => []);
  const pick = Object.keys(declared).some((k) => k.includes('.'));
  if (pick) {
    for (const path of Object.keys(declared)) {
      let seen: Lookup | undefined;
      items.forEach((item, i) => {
        const found = lookup(item, path);
        if (found.found && typeof found.value === 'object' && found.value !== null) {
          const kind = Array.isArray(found.value) ? 'an array' : 'an object';
          fail(
            `${file}: ${where(i, path)} is ${kind}, not a single value; declare a field inside it`,
          );
        }
        cells[i].push(found.found ? (found.value as Scalar) : null);
        if (seen === undefined || found.found) seen = found;
      });
      if (seen !== undefined && !seen.found) {
        const at = seen.parent ? `${seen.parent} has` : 'the top level has';
        fail(
          `${file}: ${path} is declared but not in the file (${at}: ${seen.keys.join(', ') || 'nothing'})`,
        );
      }
      paths.push(path);
    }
  } else {
    const flat = items.map((item) => {
      const out = new Map<string, Scalar>();
      flatten(item, '', 1, out);
      return out;
    });
    for (const f of flat) for (const path of f.keys()) if (!paths.includes(path)) paths.push(path);
    flat.forEach((f, i) => paths.forEach((p) => cells[i].push(f.get(p) ?? null)));
  }

  const names = uniqueNames(paths);
  const types: (MetricType | undefined)[] = paths.map(() => undefined);
  for (const [key, type] of Object.entries(declared)) {
    const j = findColumn(key, paths, names);
    if (j < 0) {
      fail(
        `${file}: column ${key} is declared but the file has no such field (it has: ${paths.join(', ')})`,
      );
    }
    types[j] = type;
  }

  const columns: MetricColumn[] = paths.map((path, j) => {
    const column = cells.map((row) => row[j]);
    const want = types[j];
    if (want === undefined) {
      const kinds = column.flatMap((v): MetricType[] =>
        v === null
          ? []
          : typeof v !== 'number'
            ? ['text']
            : Number.isSafeInteger(v)
              ? ['integer']
              : ['real'],
      );
      return { name: names[j], type: widest(kinds) };
    }
    return { name: names[j], type: want };
  });

  const rows = cells.map((row, i) =>
    row.map((v, j): MetricValue => {
      const type = columns[j].type;
      if (v === null) return null;
      if (type === 'text') return String(v);
      const n =
        typeof v === 'number'
          ? v
          : typeof v === 'string'
            ? parseNumber(v.trim(), false)
            : undefined;
      const value = typeof n === 'object' && n.kind !== 'text' ? n.value : n;
      if (typeof value === 'number' && (type === 'real' || Number.isSafeInteger(value)))
        return value;
      return fail(
        `${file}: ${where(i, paths[j])}: ${JSON.stringify(v)} is not ${type === 'integer' ? 'an integer' : 'a number'}`,
      );
    }),
  );
  return { columns, rows };
}

function describeJson(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  return `a ${typeof v}`;
}
