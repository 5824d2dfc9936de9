/** Items from an object's bytes, format by format: tables of text → items or the error. */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Json, JsonObject } from '../../src/asl/types.js';
import { itemFormatOf, readItems } from '../../src/engine/s3-items.js';

async function items(text: string, config: JsonObject, maxItems?: number): Promise<Json[]> {
  // Several chunks, so records and lines cross chunk boundaries.
  const bytes = Buffer.from(text);
  const chunks = [bytes.subarray(0, 3), bytes.subarray(3, 7), bytes.subarray(7)];
  return readItems(Readable.from(chunks), itemFormatOf(config), maxItems);
}

const CSV = { InputType: 'CSV' };

/** `first`, then the lines 0, 1, 2, … without end. */
function* endless(first: string): Generator<string> {
  yield first;
  for (let i = 0; ; i++) yield `${i}\n`;
}

describe('CSV', () => {
  it.each<[string, string, JsonObject, Json[]]>([
    [
      'header and rows',
      'a,b\n1,2\n3,4\n',
      CSV,
      [
        { a: '1', b: '2' },
        { a: '3', b: '4' },
      ],
    ],
    ['CRLF and a byte order mark', '\uFEFFa,b\r\n1,2\r\n', CSV, [{ a: '1', b: '2' }]],
    [
      'a quoted field keeps delimiters, newlines and doubled quotes',
      'a,b\n"x, ""y""\nz",2\n',
      CSV,
      [{ a: 'x, "y"\nz', b: '2' }],
    ],
    ['a quote inside an unquoted field is kept', 'a\n5"\n', CSV, [{ a: '5"' }]],
    [
      'whitespace is data; empty lines are skipped',
      'a,b\n   \n\n1,2\n',
      CSV,
      [
        { a: '   ', b: '' },
        { a: '1', b: '2' },
      ],
    ],
    ['an empty header is a key like any other', 'H1,\nx,y,z\n', CSV, [{ H1: 'x', '': 'y' }]],
    ['SEMICOLON', 'a;b\n1;2\n', { ...CSV, CSVDelimiter: 'SEMICOLON' }, [{ a: '1', b: '2' }]],
    ['TAB', 'a\tb\n1\t2\n', { ...CSV, CSVDelimiter: 'TAB' }, [{ a: '1', b: '2' }]],
    ['SPACE', 'a b\n1 2\n', { ...CSV, CSVDelimiter: 'SPACE' }, [{ a: '1', b: '2' }]],
    [
      'GIVEN headers: the first row is data',
      '1,2\n',
      { ...CSV, CSVHeaderLocation: 'GIVEN', CSVHeaders: ['x', 'y'] },
      [{ x: '1', y: '2' }],
    ],
    ['an empty object has no items', '', CSV, []],
  ])('%s', async (_name, text, config, expected) => {
    expect(await items(text, config)).toEqual(expected);
  });

  it('stops reading at MaxItems (the object here never ends)', async () => {
    const source = Readable.from(endless('n\n'));
    expect(await readItems(source, itemFormatOf(CSV), 2)).toEqual([{ n: '0' }, { n: '1' }]);
    expect(source.destroyed).toBe(true);
  });

  it.each<[string, string, JsonObject, string | RegExp]>([
    ['an unclosed quote', 'a\n"x\n', CSV, /^the object is not CSV: /],
    ['duplicate headers', 'a,a\n1,2\n', CSV, 'CSV headers cannot contain duplicates.'],
    [
      'duplicate GIVEN headers',
      '1,2\n',
      { ...CSV, CSVHeaderLocation: 'GIVEN', CSVHeaders: ['x', 'x'] },
      'CSV headers cannot contain duplicates.',
    ],
  ])('%s fails', async (_name, text, config, message) => {
    await expect(items(text, config)).rejects.toThrow(message);
  });
});

describe('JSONL and JSON', () => {
  it('JSONL: each line a value; blank lines skipped; MaxItems stops reading', async () => {
    expect(await items('1\n\n"a"\n{"b":[2]}\n', { InputType: 'JSONL' })).toEqual([
      1,
      'a',
      { b: [2] },
    ]);
    const source = Readable.from(endless(''));
    expect(await readItems(source, itemFormatOf({ InputType: 'JSONL' }), 3)).toEqual([0, 1, 2]);
    expect(source.destroyed).toBe(true);
    await expect(items('1\n{oops\n', { InputType: 'JSONL' })).rejects.toThrow(
      /^line 2 is not JSON: /,
    );
  });

  it('JSON: the array, or the one ItemsPointer names (~1 is /); else AWS’s error', async () => {
    expect(await items('[1,2,3]', { InputType: 'JSON' }, 2)).toEqual([1, 2]);
    const doc = JSON.stringify({ 'a/b': { list: [{ x: 1 }] }, n: 1 });
    expect(await items(doc, { InputType: 'JSON', ItemsPointer: '/a~1b/list' })).toEqual([{ x: 1 }]);
    await expect(items(doc, { InputType: 'JSON', ItemsPointer: '/n' })).rejects.toThrow(
      'Attempting to map over non-iterable node.',
    );
    await expect(items(doc, { InputType: 'JSON', ItemsPointer: '/none' })).rejects.toThrow(
      'ItemsPointer /none names nothing in the object',
    );
  });
});

describe('ReaderConfig', () => {
  it.each<[JsonObject, string]>([
    [{}, 'needs ReaderConfig.InputType: JSON, JSONL or CSV'],
    [{ InputType: 'PARQUET' }, 'InputType PARQUET is not supported by Strand yet'],
    [{ InputType: 'MANIFEST' }, 'InputType MANIFEST is not supported by Strand yet'],
    [{ InputType: 'CSV', CSVDelimiter: 'COLON' }, 'CSVDelimiter must be COMMA, PIPE'],
    [{ InputType: 'CSV', CSVHeaderLocation: 'GIVEN' }, 'GIVEN needs CSVHeaders'],
  ])('%j is refused', (config, message) => {
    expect(() => itemFormatOf(config)).toThrow(message);
  });
});
