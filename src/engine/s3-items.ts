/**
 * A Map's items from the bytes of one object, as Step Functions' ItemReader makes them: a JSON
 * array (or the array an `ItemsPointer` names), one JSON value per line of JSON Lines, or one
 * object of strings per row of a delimited file. JSON Lines and CSV are read as streams and
 * stop at MaxItems; a JSON document is parsed whole. Errors carry AWS's causes where AWS's are
 * known ("Attempting to map over non-iterable node.", "CSV headers cannot contain duplicates.").
 */
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import type { Json, JsonObject } from '../asl/types.js';

/** The item source is unreadable as configured: the Map fails with States.ItemReaderFailed. */
export class ItemReaderError extends Error {
  readonly code = 'ITEM_READER_FAILED';
  constructor(message: string) {
    super(message);
    this.name = 'ItemReaderError';
  }
}

/** `ReaderConfig.CSVDelimiter` → the character. */
export const CSV_DELIMITERS: Record<string, string> = {
  COMMA: ',',
  PIPE: '|',
  SEMICOLON: ';',
  SPACE: ' ',
  TAB: '\t',
};

export type ItemFormat =
  | { inputType: 'JSON'; itemsPointer?: string }
  | { inputType: 'JSONL' }
  | { inputType: 'CSV'; headers: string[] | 'FIRST_ROW'; delimiter: string };

/**
 * The format a ReaderConfig describes; an ItemReaderError for what Step Functions would not
 * accept or Strand does not read.
 */
export function itemFormatOf(config: JsonObject): ItemFormat {
  const type = config.InputType;
  switch (type) {
    case 'JSON': {
      const pointer = config.ItemsPointer;
      if (pointer !== undefined && typeof pointer !== 'string')
        throw new ItemReaderError(`ReaderConfig.ItemsPointer must be a JSON pointer (a string)`);
      return pointer === undefined
        ? { inputType: 'JSON' }
        : { inputType: 'JSON', itemsPointer: pointer };
    }
    case 'JSONL':
      return { inputType: 'JSONL' };
    case 'CSV': {
      const delimiterName = config.CSVDelimiter ?? 'COMMA';
      const delimiter = CSV_DELIMITERS[delimiterName as string];
      if (delimiter === undefined)
        throw new ItemReaderError(
          `ReaderConfig.CSVDelimiter must be ${Object.keys(CSV_DELIMITERS).join(', ')}, not ${JSON.stringify(delimiterName)}`,
        );
      const location = config.CSVHeaderLocation ?? 'FIRST_ROW';
      if (location === 'FIRST_ROW') return { inputType: 'CSV', headers: 'FIRST_ROW', delimiter };
      if (location !== 'GIVEN')
        throw new ItemReaderError(
          `ReaderConfig.CSVHeaderLocation must be FIRST_ROW or GIVEN, not ${JSON.stringify(location)}`,
        );
      const headers = config.CSVHeaders;
      if (!Array.isArray(headers) || headers.some((h) => typeof h !== 'string'))
        throw new ItemReaderError(
          'ReaderConfig.CSVHeaderLocation GIVEN needs CSVHeaders, an array of column names',
        );
      checkHeaders(headers as string[]);
      return { inputType: 'CSV', headers: headers as string[], delimiter };
    }
    case 'PARQUET':
    case 'MANIFEST':
      throw new ItemReaderError(
        `ReaderConfig.InputType ${type} is not supported by Strand yet (it reads JSON, JSONL and CSV)`,
      );
    case undefined:
      throw new ItemReaderError(
        'an ItemReader reading one object (s3:getObject) needs ReaderConfig.InputType: JSON, JSONL or CSV',
      );
    default:
      throw new ItemReaderError(
        `ReaderConfig.InputType must be CSV, JSON, JSONL, PARQUET or MANIFEST, not ${JSON.stringify(type)}`,
      );
  }
}

function checkHeaders(headers: string[]): void {
  if (new Set(headers).size < headers.length)
    throw new ItemReaderError('CSV headers cannot contain duplicates.');
}

/** Reads at most `maxItems` items (0 or undefined: all) from `stream`, which it then closes. */
export async function readItems(
  stream: Readable,
  format: ItemFormat,
  maxItems: number | undefined,
): Promise<Json[]> {
  const limit = maxItems !== undefined && maxItems > 0 ? maxItems : Infinity;
  try {
    switch (format.inputType) {
      case 'JSON':
        return await readJson(stream, format.itemsPointer, limit);
      case 'JSONL':
        return await readJsonLines(stream, limit);
      case 'CSV':
        return await readCsv(stream, format, limit);
    }
  } finally {
    stream.destroy();
  }
}

async function readJson(
  stream: Readable,
  pointer: string | undefined,
  limit: number,
): Promise<Json[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/^\uFEFF/, '');
  let value: Json;
  try {
    value = JSON.parse(text) as Json;
  } catch (e) {
    throw new ItemReaderError(`the object is not JSON: ${(e as Error).message}`);
  }
  if (pointer !== undefined) value = atPointer(value, pointer);
  if (!Array.isArray(value)) throw new ItemReaderError('Attempting to map over non-iterable node.');
  return limit < value.length ? value.slice(0, limit) : value;
}

/** RFC 6901: the value `pointer` names in `doc`. */
function atPointer(doc: Json, pointer: string): Json {
  if (pointer === '') return doc;
  if (!pointer.startsWith('/'))
    throw new ItemReaderError(`ItemsPointer ${JSON.stringify(pointer)} must start with "/"`);
  let value: Json = doc;
  for (const raw of pointer.slice(1).split('/')) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const next: Json | undefined = Array.isArray(value)
      ? /^(0|[1-9]\d*)$/.test(token)
        ? value[Number(token)]
        : undefined
      : value !== null && typeof value === 'object'
        ? Object.prototype.hasOwnProperty.call(value, token)
          ? value[token]
          : undefined
        : undefined;
    if (next === undefined)
      throw new ItemReaderError(`ItemsPointer ${pointer} names nothing in the object`);
    value = next;
  }
  return value;
}

async function readJsonLines(stream: Readable, limit: number): Promise<Json[]> {
  const items: Json[] = [];
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const line of lines) {
      n++;
      if (line.trim() === '') continue;
      try {
        items.push(JSON.parse(n === 1 ? line.replace(/^\uFEFF/, '') : line) as Json);
      } catch (e) {
        throw new ItemReaderError(`line ${n} is not JSON: ${(e as Error).message}`);
      }
      if (items.length >= limit) break;
    }
  } finally {
    lines.close();
  }
  return items;
}

async function readCsv(
  stream: Readable,
  format: Extract<ItemFormat, { inputType: 'CSV' }>,
  limit: number,
): Promise<Json[]> {
  // Rows may have fewer fields than headers (the rest are "") or more (left out), as on AWS;
  // a quote inside an unquoted field is a character like any other.
  const parser = parse({
    delimiter: format.delimiter,
    bom: true,
    relax_column_count: true,
    relax_quotes: true,
    skip_empty_lines: true,
  });
  stream.on('error', (e) => parser.destroy(e));
  stream.pipe(parser);
  let headers = format.headers === 'FIRST_ROW' ? undefined : format.headers;
  const items: Json[] = [];
  try {
    for await (const row of parser as AsyncIterable<string[]>) {
      if (!headers) {
        checkHeaders(row);
        headers = row;
        continue;
      }
      const item: JsonObject = {};
      headers.forEach((h, i) => (item[h] = row[i] ?? ''));
      items.push(item);
      if (items.length >= limit) break;
    }
  } catch (e) {
    // csv-parse's own errors say what is wrong with the text; others (a broken gzip stream)
    // are the reader's caller's to name.
    if (!String((e as { code?: unknown }).code ?? '').startsWith('CSV_')) throw e;
    throw new ItemReaderError(`the object is not CSV: ${(e as Error).message}`);
  } finally {
    parser.destroy();
  }
  return items;
}
