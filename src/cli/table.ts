/**
 * The one formatter of the CLI's tables (`batch ls`, `executions ls`/`history`, `status`,
 * `results`, `images ls`, `clean`) and detail views (`executions describe`), so they look alike:
 * upper-case headers, columns two spaces apart, numbers right-aligned, empty cells blank, cells
 * on one line (control characters shown escaped) and measured as the terminal shows them (a
 * wide character takes two columns). Colour, when wanted, is laid over cells already padded, so
 * it never moves a column.
 */
import stringWidth from 'string-width';

export interface Column {
  /** The row's key. */
  key: string;
  /** Its header; default: the key in upper case, camelCase words apart (exitCode → EXIT CODE). */
  header?: string;
  /** Default: right when every value present is a number, else left. */
  align?: 'left' | 'right';
}

export interface TableOptions {
  /**
   * Colours a cell's text (never its padding): gets the column's key, the cell's value, the
   * text shown and the whole row. It must not change the text's width (add escape sequences
   * only).
   */
  style?: (key: string, value: unknown, text: string, row: Record<string, unknown>) => string;
}

/** The default header of a key: `exitCode` → `EXIT CODE`, `num_seqs` → `NUM_SEQS`. */
export function headerOf(key: string): string {
  return key.replace(/([a-z0-9])([A-Z][a-z])/g, '$1 $2').toUpperCase();
}

const CONTROL = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * A value's text on one line: control characters (line breaks, tabs, escape sequences) and
 * bidirectional overrides, which would break the alignment or rewrite the terminal, escaped.
 */
export function escapeControls(s: string): string {
  return s.replace(CONTROL, (c) => {
    const code = c.codePointAt(0)!;
    return (
      NAMED[c] ??
      (code <= 0xff
        ? `\\x${code.toString(16).padStart(2, '0')}`
        : `\\u${code.toString(16).padStart(4, '0')}`)
    );
  });
}

/** The text of one value: '' for null/undefined, JSON for objects. */
export function valueText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

const isNumber = (v: unknown): boolean => typeof v === 'number' || typeof v === 'bigint';

function render(
  rows: Record<string, unknown>[],
  columns: Column[],
  header: boolean,
  options: TableOptions,
): string {
  const cells = rows.map((r) => columns.map((c) => escapeControls(valueText(r[c.key]))));
  const heads = columns.map((c) => escapeControls(c.header ?? headerOf(c.key)));
  const right = columns.map(
    (c) =>
      c.align === 'right' ||
      (c.align === undefined &&
        rows.some((r) => r[c.key] != null) &&
        rows.every((r) => r[c.key] == null || isNumber(r[c.key]))),
  );
  const all = header ? [heads, ...cells] : cells;
  const widths = columns.map((_, j) => Math.max(0, ...all.map((row) => stringWidth(row[j]))));
  const line = (row: string[], values?: Record<string, unknown>): string => {
    // The last cell with text ends the line: no padding after it.
    let last = row.length - 1;
    while (last >= 0 && row[last] === '') last--;
    const parts: string[] = [];
    for (let j = 0; j <= last; j++) {
      const text = row[j];
      const gap = ' '.repeat(widths[j] - stringWidth(text));
      const shown =
        values && options.style && text !== ''
          ? options.style(columns[j].key, values[columns[j].key], text, values)
          : text;
      parts.push(right[j] ? gap + shown : j === last ? shown : shown + gap);
    }
    return parts.join('  ');
  };
  const lines = cells.map((row, i) => line(row, rows[i]));
  return [...(header ? [line(heads)] : []), ...lines].map((l) => `${l}\n`).join('');
}

/**
 * A table of `rows` in `columns` (keys or Column; default: every key, in first-seen order): a
 * header line, then a line per row. Empty with no columns; only the header with no rows.
 */
export function formatTable(
  rows: Record<string, unknown>[],
  columns?: (string | Column)[],
  options: TableOptions = {},
): string {
  const cols = (columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))]).map((c) =>
    typeof c === 'string' ? { key: c } : c,
  );
  if (cols.length === 0) return '';
  return render(rows, cols, true, options);
}

/**
 * A detail view (one record): a line per field, its name, two spaces past the longest name, then
 * its value (left-aligned, on one line as in a table); fields without a value are left out.
 * `style` gets the field's name as the key.
 */
export function formatDetails(
  record: Record<string, unknown> | [string, unknown][],
  options: TableOptions = {},
): string {
  const fields = (Array.isArray(record) ? record : Object.entries(record)).filter(
    ([, v]) => v !== undefined && v !== null,
  );
  const rows = fields.map(([field, value]) => ({ field, value }));
  return render(
    rows,
    [
      { key: 'field', align: 'left' },
      { key: 'value', align: 'left' },
    ],
    false,
    {
      style: options.style
        ? (key, value, text, row) =>
            key === 'value' ? options.style!(String(row.field), value, text, row) : text
        : undefined,
    },
  );
}
