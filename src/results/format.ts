/**
 * Renders result rows for people (an aligned table) and for programs (CSV, JSON): what
 * `strand results --format table|csv|json` prints. The table is the CLI's one table formatter.
 */
import { formatTable, valueText as text, type TableOptions } from '../cli/table.js';

export type RowsFormat = 'table' | 'csv' | 'json';

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * Formats `rows` with `columns` (default: every key, in first-seen order). Table: see
 * formatTable (upper-case headers, columns two spaces apart, numeric columns right-aligned;
 * `table` may colour its cells). CSV: a header line of the column names and RFC 4180 quoting.
 * JSON: an array of objects holding just those columns. Ends with a newline unless there is
 * nothing to show.
 */
export function formatRows(
  rows: Record<string, unknown>[],
  format: RowsFormat,
  columns?: string[],
  table: TableOptions = {},
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
  return formatTable(rows, names, table);
}
