/**
 * Renders result rows for people (an aligned table) and for programs (CSV, JSON): what
 * `strand results --format table|csv|json` prints.
 */

export type RowsFormat = 'table' | 'csv' | 'json';

/** The text of one value: '' for null/undefined, JSON for objects. */
function text(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** Control characters would break the table's alignment; show them escaped. */
function oneLine(s: string): string {
  return s.replace(/\r/g, '\\r').replace(/\n/g, '\\n').replace(/\t/g, '\\t');
}

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * Formats `rows` with `columns` (default: every key, in first-seen order). Table: a header, then
 * columns separated by two spaces, numeric columns right-aligned. CSV: a header line and RFC 4180
 * quoting. JSON: an array of objects holding just those columns. Ends with a newline unless
 * there is nothing to show.
 */
export function formatRows(
  rows: Record<string, unknown>[],
  format: RowsFormat,
  columns?: string[],
): string {
  const names = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  if (format === 'json') {
    const picked = rows.map((r) => Object.fromEntries(names.map((c) => [c, r[c] ?? null])));
    return `${JSON.stringify(picked, null, 2)}\n`;
  }
  if (names.length === 0) return '';
  if (format === 'csv') {
    const lines = [names, ...rows.map((r) => names.map((c) => text(r[c])))];
    return lines.map((cells) => cells.map(csvField).join(',')).join('\n') + '\n';
  }
  const cells = rows.map((r) => names.map((c) => oneLine(text(r[c]))));
  const numeric = names.map(
    (c) =>
      rows.some((r) => r[c] != null) &&
      rows.every((r) => r[c] == null || typeof r[c] === 'number' || typeof r[c] === 'bigint'),
  );
  const widths = names.map((c, j) => Math.max(c.length, ...cells.map((row) => row[j].length)));
  const line = (row: string[]): string =>
    row
      .map((cell, j) => (numeric[j] ? cell.padStart(widths[j]) : cell.padEnd(widths[j])))
      .join('  ')
      .trimEnd();
  return [names, ...cells].map(line).join('\n') + '\n';
}
