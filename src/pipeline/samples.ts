/**
 * Sample sheets: one row per sample, an id column and columns that become environment variables.
 * Sheets (CSV or TSV files) and inline lists in pipeline.yaml are both turned into a table of
 * positioned cells and checked by the same rules, so both report `file:line:col` problems.
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, extname, isAbsolute, normalize, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { closest } from '../asl/suggest.js';
import { shownPath, type PipelineProblem } from './errors.js';
import type { SampleRow, SamplesSource, SourcePos } from './model.js';
import { VAR_NAME } from './schema.js';
import { AGGREGATE_SAMPLE } from './contract.js';

/** A value with the position it was written at. */
export interface SampleCell {
  text: string;
  line: number;
  column: number;
  /** Problem path for a header cell (`header`, `samples[0].fastq_1`). */
  path?: string;
}

/** Samples as positioned cells, before any rule is applied. */
export interface SampleTable {
  /** The file as shown to the user. */
  file: string;
  /** Directory relative values are resolved against. */
  dir: string;
  header: SampleCell[];
  rows: {
    line: number;
    column: number;
    /** Aligned with `header`; undefined where the row has no value. */
    cells: (SampleCell | undefined)[];
    /** The row's shape was already reported (a ragged line), so missing cells are not. */
    reported?: boolean;
  }[];
  /** Where to point when the table has no rows. */
  at: { line: number; column: number; path: string };
}

/** A place in a sheet (or in pipeline.yaml) and its path there (`samples[2].fastq_1`). */
export interface SampleCellPos extends SourcePos {
  path: string;
}

/** Where a sample's id and each of its values were written, for messages about them. */
export interface SamplePositions {
  id: SampleCellPos;
  /** By variable name. */
  values: Record<string, SampleCellPos>;
}

/** Checked samples: rows in order, column (variable) names, and every problem. */
export interface SamplesInfo {
  rows: SampleRow[];
  /** Aligned with `rows`. */
  positions: SamplePositions[];
  /** Variable names of the columns other than the id, in sheet order. */
  columns: string[];
  problems: PipelineProblem[];
}

const SAMPLE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const ID_COLUMNS = ['ID', 'SAMPLE'];

/** `fastq_1` → `FASTQ_1`, `Read 1` → `READ_1`: nf-core headers as variable names. */
function normaliseColumn(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
}

/**
 * A relative path that names an existing file or directory becomes absolute, so tools find it
 * from any working directory. Only values that look like paths are tried, so a word that
 * happens to name a file (`data`) stays a word.
 */
export function resolveValue(text: string, dir: string): string {
  if (text === '' || isAbsolute(text) || text.includes('://') || !/[./]/.test(text)) return text;
  const candidate = resolve(dir, text);
  try {
    const stat = statSync(candidate);
    return stat.isFile() || stat.isDirectory() ? candidate : text;
  } catch {
    return text;
  }
}

/** Trees of the kernel's own files: reading them as data hangs, fails, or never ends. */
const SYSTEM_TREES = ['/proc', '/sys', '/dev'];

function inSystemTree(path: string): string | undefined {
  return SYSTEM_TREES.find((root) => path === root || path.startsWith(`${root}/`));
}

/**
 * Why a value cannot be an input, or undefined when it can: a value naming a device, a FIFO, a
 * socket, or anything under /proc, /sys or /dev (directly or through a symlink). Strand reads
 * an input whole to fingerprint it, and a job reads it as a file: /dev/zero never ends, a FIFO
 * blocks until someone writes, /proc files change as they are read. Relative values are tried
 * against `dir`, as `resolveValue` does; values that do not name anything are not inputs.
 */
export function specialInputProblem(text: string, dir: string): string | undefined {
  if (text === '' || text.includes('://') || text.includes('\0')) return undefined;
  if (!isAbsolute(text) && !/[./]/.test(text)) return undefined;
  const path = isAbsolute(text) ? normalize(text) : resolve(dir, text);
  // The empty input: reading it ends at once, and it is never hashed (not a regular file).
  if (path === '/dev/null') return undefined;
  const tree = isAbsolute(text) ? inSystemTree(path) : undefined;
  if (tree) return `${JSON.stringify(text)} is under ${tree}, not a file of data`;
  let kind: string | undefined;
  try {
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) return undefined;
    if (st.isFIFO()) kind = 'a FIFO (named pipe)';
    else if (st.isCharacterDevice()) kind = 'a character device';
    else if (st.isBlockDevice()) kind = 'a block device';
    else if (st.isSocket()) kind = 'a socket';
    else {
      const real = inSystemTree(realpathSync(path));
      if (real) return `${JSON.stringify(text)} leads to ${realpathSync(path)}, under ${real}`;
      return undefined;
    }
  } catch {
    return undefined; // unreadable: the job will say so, with its own error
  }
  return `${JSON.stringify(text)} is ${kind}, not a file of data`;
}

/** The hint that goes with `specialInputProblem`. */
export const SPECIAL_INPUT_HINT =
  'inputs are regular files or directories; Strand reads each whole to fingerprint it';

/** Applies the sample rules to a table: id column, names, unique ids, every cell present. */
export function checkSampleTable(table: SampleTable): SamplesInfo {
  const problems: PipelineProblem[] = [];
  const report = (
    at: { line: number; column: number },
    path: string,
    message: string,
    hint?: string,
  ) => {
    const p: PipelineProblem = {
      file: table.file,
      line: at.line,
      column: at.column,
      path,
      message,
    };
    if (hint !== undefined) p.hint = hint;
    problems.push(p);
  };
  const rowPath = (r: number): string => `${table.at.path}[${r}]`;

  // Column index → variable name, for the columns that are usable.
  const names = new Map<number, string>();
  const firstWith = new Map<string, SampleCell>();
  let idIndex = -1;
  const idCandidates = table.header.flatMap((c, i) =>
    ID_COLUMNS.includes(normaliseColumn(c.text)) ? [i] : [],
  );
  if (idCandidates.length > 1) {
    const second = table.header[idCandidates[1]];
    report(
      second,
      second.path ?? 'header',
      `both "${table.header[idCandidates[0]].text}" and "${second.text}" look like the sample id column`,
      'keep one: "id", or "sample" as nf-core sheets call it',
    );
  }
  if (idCandidates.length > 0) idIndex = idCandidates[0];
  else if (table.header.length > 0) {
    const first = table.header[0];
    report(
      first,
      first.path ?? 'header',
      `no sample id column (found ${table.header.map((c) => JSON.stringify(c.text)).join(', ')})`,
      'name the column of sample ids "id", or "sample" as nf-core sheets do',
    );
  }
  table.header.forEach((cell, i) => {
    if (i === idIndex) return;
    const path = cell.path ?? 'header';
    const name = normaliseColumn(cell.text);
    if (cell.text === '') {
      report(cell, path, `column ${i + 1} has no name`, 'name it, or remove a trailing delimiter');
      return;
    }
    if (!VAR_NAME.test(name)) {
      report(
        cell,
        path,
        `column "${cell.text}" cannot be a variable name`,
        'start it with a letter',
      );
      return;
    }
    if (name.startsWith('STRAND_') || name.startsWith('AWS_')) {
      report(
        cell,
        path,
        `column "${cell.text}" is reserved`,
        'STRAND_ and AWS_ names are set by Strand and AWS',
      );
      return;
    }
    const earlier = firstWith.get(name);
    if (earlier) {
      report(cell, path, `"${earlier.text}" and "${cell.text}" both become $${name}`, 'rename one');
      return;
    }
    firstWith.set(name, cell);
    names.set(i, name);
  });

  const rows: SampleRow[] = [];
  const positions: SamplePositions[] = [];
  const seen = new Map<string, number>();
  const pos = (at: { line: number; column: number }, path: string): SampleCellPos => ({
    file: table.file,
    line: at.line,
    column: at.column,
    path,
  });
  table.rows.forEach((row, r) => {
    const idCell = idIndex >= 0 ? row.cells[idIndex] : undefined;
    const id = idCell?.text ?? '';
    if (idIndex >= 0) {
      const idPath = `${rowPath(r)}.${table.header[idIndex].text}`;
      if (id === '') {
        if (idCell || !row.reported) report(idCell ?? row, idPath, 'no sample id');
      } else if (id === AGGREGATE_SAMPLE) {
        report(idCell!, idPath, '"_all" is reserved', 'it names the results of aggregate steps');
      } else if (!SAMPLE_ID.test(id)) {
        report(
          idCell!,
          idPath,
          `${JSON.stringify(id)} is not a sample id`,
          'use letters, digits, ".", "_" and "-", starting with a letter or digit',
        );
      } else if (seen.has(id)) {
        report(idCell!, idPath, `sample "${id}" is repeated`, `first on line ${seen.get(id)}`);
      } else {
        seen.set(id, idCell!.line);
      }
    }
    const values: Record<string, string> = {};
    const idName = idIndex >= 0 ? table.header[idIndex].text : 'id';
    const at: SamplePositions = { id: pos(idCell ?? row, `${rowPath(r)}.${idName}`), values: {} };
    for (const [i, name] of names) {
      const cell = row.cells[i];
      if (cell) {
        values[name] = resolveValue(cell.text, table.dir);
        at.values[name] = pos(cell, `${rowPath(r)}.${table.header[i].text}`);
        const special = specialInputProblem(cell.text, table.dir);
        if (special) {
          report(
            cell,
            `${rowPath(r)}.${table.header[i].text}`,
            `sample "${id}": ${special}`,
            SPECIAL_INPUT_HINT,
          );
        }
      } else if (!row.reported) {
        report(
          row,
          rowPath(r),
          `has no ${table.header[i].text}`,
          'every sample needs every column',
        );
      }
    }
    rows.push({ id, values });
    positions.push(at);
  });
  if (table.rows.length === 0) {
    report(table.at, table.at.path, 'no samples', 'add one row per sample');
  }
  return { rows, positions, columns: [...names.values()], problems };
}

/** The delimiter a sheet's extension implies. */
function delimiterOf(file: string): ',' | '\t' | undefined {
  const ext = extname(file).toLowerCase();
  if (ext === '.csv') return ',';
  if (ext === '.tsv' || ext === '.txt' || ext === '.tab') return '\t';
  return undefined;
}

/** Where each field of a record starts, relative to the record's first line. */
function fieldStarts(
  raw: string,
  delimiter: string,
  quoted: boolean,
): { line: number; column: number }[] {
  const starts = [{ line: 0, column: 1 }];
  let line = 0;
  let column = 1;
  let inQuotes = false;
  for (const ch of raw) {
    column++;
    if (ch === '\n') {
      line++;
      column = 1;
    } else if (quoted && ch === '"') {
      inQuotes = !inQuotes;
    } else if (ch === delimiter && !inQuotes) {
      starts.push({ line, column });
    }
  }
  return starts;
}

interface CsvRecord {
  record: string[];
  raw: string;
}

interface CsvParseError {
  code?: string;
  message: string;
  lines?: number;
  /** Byte offset where the failing record starts. */
  bytes_records?: number;
  raw?: string;
}

const CSV_ERRORS: Record<string, { message: string; hint: string }> = {
  CSV_QUOTE_NOT_CLOSED: {
    message: 'a quoted value is never closed',
    hint: 'end it with ", or remove the opening "',
  },
  INVALID_OPENING_QUOTE: {
    message: 'a quote inside an unquoted value',
    hint: 'quote the whole value and double the quote inside: "ab""c"',
  },
  CSV_INVALID_CLOSING_QUOTE: {
    message: 'text after a closing quote',
    hint: 'quote the whole value and double the quote inside: "ab""c"',
  },
};

/** A CSV syntax error, pointing at the quote that started the trouble when there is one. */
function sheetSyntaxProblem(e: CsvParseError, text: string, file: string): PipelineProblem {
  let line = e.lines ?? 1;
  let column = 1;
  if (e.bytes_records !== undefined) {
    const before = Buffer.from(text, 'utf8').subarray(0, e.bytes_records).toString('utf8');
    line = before.split('\n').length;
    const quote = e.raw?.indexOf('"') ?? -1;
    if (quote >= 0) {
      const lead = e.raw!.slice(0, quote);
      line += lead.split('\n').length - 1;
      column = quote - lead.lastIndexOf('\n');
    }
  }
  const known = e.code === undefined ? undefined : CSV_ERRORS[e.code];
  const message = known?.message ?? `not a valid sheet: ${e.message.replace(/^[A-Za-z ]+: /, '')}`;
  const p: PipelineProblem = { file, line, column, path: 'samples', message };
  if (known) p.hint = known.hint;
  return p;
}

/** Parses a CSV or TSV sheet into positioned cells; ragged lines are problems already. */
function sheetTable(
  text: string,
  file: string,
  dir: string,
  delimiter: ',' | '\t',
): { table?: SampleTable; problems: PipelineProblem[] } {
  // TSV sheets do not quote: a `"` in one is data.
  const quoted = delimiter === ',';
  let records: CsvRecord[];
  try {
    records = parse(text, {
      delimiter,
      quote: quoted ? '"' : false,
      raw: true,
      bom: true,
      trim: true,
      relax_column_count: true,
      skip_empty_lines: true,
    }) as unknown as CsvRecord[];
  } catch (err) {
    return { problems: [sheetSyntaxProblem(err as CsvParseError, text, file)] };
  }
  // Lines are counted from the raw text of each record rather than taken from csv-parse's
  // `info.lines`, which counts a CRLF inside a quoted value as two lines.
  const breaks = (t: string): number => t.match(/\r\n|\r|\n/g)?.length ?? 0;
  let line = 1;
  const positioned = records.map((rec) => {
    const lead = /^(?:[ \t]*(?:\r\n|\r|\n))*/.exec(rec.raw)?.[0] ?? '';
    const first = line + breaks(lead);
    line += breaks(rec.raw);
    const body = rec.raw.slice(lead.length).replace(/\r\n?/g, '\n').replace(/\n$/, '');
    const starts = fieldStarts(body, delimiter, quoted);
    const cells = rec.record.map((t, i): SampleCell => ({
      text: t,
      line: first + (starts[i]?.line ?? 0),
      column: starts[i]?.column ?? 1,
    }));
    return { line: first, column: 1, cells };
  });
  const [header, ...rows] = positioned;
  if (!header) {
    const hint = 'it needs a header line: id,…';
    return {
      problems: [
        { file, line: 1, column: 1, path: 'samples', message: 'the sheet is empty', hint },
      ],
    };
  }
  const table: SampleTable = {
    file,
    dir,
    header: header.cells.map((c) => ({ ...c, path: 'header' })),
    rows: [],
    at: { line: header.line, column: 1, path: 'samples' },
  };
  const problems: PipelineProblem[] = [];
  rows.forEach((row, r) => {
    const width = header.cells.length;
    const reported = row.cells.length !== width;
    if (reported) {
      problems.push({
        file,
        line: row.line,
        column: 1,
        path: `samples[${r}]`,
        message: `has ${row.cells.length} field${row.cells.length === 1 ? '' : 's'}; the header has ${width}`,
        hint:
          delimiter === '\t' ? 'fields are separated by tabs' : 'quote values that contain commas',
      });
    }
    table.rows.push({ ...row, cells: row.cells.slice(0, width), reported });
  });
  return { table, problems };
}

/**
 * Loads the samples of a pipeline. A sheet is read from disk (CSV by `.csv`, TSV by `.tsv`,
 * `.txt` or `.tab`) and checked; problems point into the sheet, except a missing sheet, which
 * points at the `samples:` key that names it. Inline rows were checked when the pipeline was
 * read and are returned as they are.
 */
export function loadSamples(source: SamplesSource, options: { pipelineFile: string }): SamplesInfo {
  if (source.kind === 'none') return { rows: [], positions: [], columns: [], problems: [] };
  if (source.kind === 'inline') {
    const columns = [...new Set(source.rows.flatMap((r) => Object.keys(r.values)))];
    const positions = source.rows.map((_row, r) => ({
      id: { ...source.at, path: `samples[${r}]` },
      values: {},
    }));
    return { rows: source.rows, positions, columns, problems: [] };
  }
  const path = isAbsolute(source.path)
    ? source.path
    : resolve(dirname(options.pipelineFile), source.path);
  const shown = shownPath(path);
  const keyPath = source.at.file === '' ? '--samples' : 'samples';
  const at = {
    file: source.at.file,
    line: source.at.line,
    column: source.at.column,
    path: keyPath,
  };
  const delimiter = delimiterOf(path);
  if (delimiter === undefined) {
    return {
      rows: [],
      positions: [],
      columns: [],
      problems: [
        { ...at, message: `"${shown}" is not a CSV or TSV sheet`, hint: 'name it .csv or .tsv' },
      ],
    };
  }
  let text: string;
  try {
    // A FIFO or a device would block or never end; only a regular file is read.
    const st = statSync(path, { throwIfNoEntry: false });
    if (st && !st.isFile()) {
      const problem: PipelineProblem = {
        ...at,
        message: `sheet "${shown}" is not a regular file`,
        hint: 'give the path of a CSV or TSV file',
      };
      return { rows: [], positions: [], columns: [], problems: [problem] };
    }
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const message =
      code === 'ENOENT'
        ? `sheet "${shown}" not found`
        : `cannot read sheet "${shown}": ${(err as Error).message}`;
    const problem: PipelineProblem = { ...at, message };
    if (code === 'ENOENT') problem.hint = `looked for ${path}`;
    return { rows: [], positions: [], columns: [], problems: [problem] };
  }
  const parsed = sheetTable(text, shown, dirname(path), delimiter);
  if (!parsed.table) return { rows: [], positions: [], columns: [], problems: parsed.problems };
  const info = checkSampleTable(parsed.table);
  return { ...info, problems: [...parsed.problems, ...info.problems] };
}

/**
 * Picks the samples named on the command line (`--samples S1,S7`), in sheet order; an id
 * that is not in the sheet is a problem naming the closest one.
 */
export function selectSamples(
  rows: SampleRow[],
  ids: string[],
): { rows: SampleRow[]; problems: PipelineProblem[] } {
  const known = rows.map((r) => r.id);
  const problems: PipelineProblem[] = [];
  for (const id of ids) {
    if (known.includes(id)) continue;
    const near = closest(id, known);
    const shownIds = known.slice(0, 8).join(', ') + (known.length > 8 ? ', …' : '');
    problems.push({
      file: '',
      line: 0,
      column: 0,
      path: '--samples',
      message: `no sample "${id}"${near ? `; did you mean "${near}"?` : ''}`,
      hint: known.length > 0 ? `samples: ${shownIds}` : 'the pipeline has no samples',
    });
  }
  const wanted = new Set(ids);
  return { rows: rows.filter((r) => wanted.has(r.id)), problems };
}

/**
 * Input files a samples sheet names that are not there, so that a run stops before any job
 * rather than inside a tool. A value counts as a file when it has a `/` (not a URL) or its column
 * names an existing file in another row (a reads column); such a value that is not there, or is
 * a directory where the rest of its column are files, is a problem at its cell. `missing` lists
 * the samples concerned, for a run that skips them (`--skip-missing`).
 */
export function missingInputs(
  rows: SampleRow[],
  positions: SamplePositions[],
  columns: string[],
  dir: string,
): { problems: PipelineProblem[]; missing: Map<string, string> } {
  const problems: PipelineProblem[] = [];
  const missing = new Map<string, string>();
  const kind = (value: string): 'file' | 'dir' | 'other' | undefined => {
    try {
      const st = statSync(isAbsolute(value) ? value : resolve(dir, value), {
        throwIfNoEntry: false,
      });
      return st?.isFile() ? 'file' : st?.isDirectory() ? 'dir' : st ? 'other' : undefined;
    } catch {
      // Not a name the file system takes (too long, say): no file, and no path of one.
      return 'other';
    }
  };
  for (const column of columns) {
    const kinds = rows.map((r) => {
      const v = r.values[column] ?? '';
      return v === '' || v.includes('://') ? undefined : kind(v);
    });
    const fileColumn = kinds.includes('file');
    rows.forEach((row, i) => {
      const value = row.values[column] ?? '';
      if (value === '' || value.includes('://')) return;
      const found = kinds[i];
      let message: string | undefined;
      if (found === undefined && (fileColumn || value.includes('/')))
        message = `${column} of sample ${row.id}: file "${value}" not found`;
      else if (found === 'dir' && fileColumn)
        message = `${column} of sample ${row.id}: "${value}" is a directory; the column's other values are files`;
      if (message === undefined) return;
      const at = positions[i]?.values[column] ?? positions[i]?.id;
      problems.push({
        file: at?.file ?? '',
        line: at?.line ?? 0,
        column: at?.column ?? 0,
        path: at?.path ?? 'samples',
        message,
        hint: `looked for ${isAbsolute(value) ? value : resolve(dir, value)}; --skip-missing runs the other samples`,
      });
      if (!missing.has(row.id)) missing.set(row.id, message);
    });
  }
  return { problems, missing };
}
