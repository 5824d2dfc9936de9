import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StatesError } from '../../src/asl/errors.js';
import {
  evaluateIntrinsic,
  IntrinsicSyntaxError,
  isIntrinsicCall,
  jsonEqual,
  parseIntrinsic,
} from '../../src/asl/intrinsics.js';
import type { EvalScope } from '../../src/asl/path.js';
import type { Json } from '../../src/asl/types.js';

const scope = (input: Json = {}, random = () => 0.5): EvalScope => ({
  input,
  context: { Execution: { Name: 'e1' } },
  variable: (name) => (name === 'v' ? 42 : undefined),
  random,
});
const run = (text: string, input: Json = {}, random?: () => number) =>
  evaluateIntrinsic(parseIntrinsic(text), scope(input, random));

function failure(fn: () => unknown): StatesError {
  try {
    fn();
  } catch (e) {
    return e as StatesError;
  }
  throw new Error('did not throw');
}

describe('intrinsic functions', () => {
  it.each([
    ["States.Format('{} and {}', 'a', 1)", 'a and 1'],
    ["States.Format('literal \\{\\} braces {}', $.x)", 'literal {} braces 7'],
    ["States.Format('{}', $.obj)", '{k=1, l=[1, 2]}'],
    ['States.StringToJson(\'{"a":[1,2]}\')', { a: [1, 2] }],
    ['States.JsonToString($.obj)', '{"k":1,"l":[1,2]}'],
    ['States.Array(1, $.x, States.Array())', [1, 7, []]],
    ['States.ArrayPartition($.list, 2)', [[1, 2], [3, 4], [5]]],
    ['States.ArrayContains($.list, 3)', true],
    ['States.ArrayContains($.objs, $.obj)', true],
    ['States.ArrayRange(1, 9, 2)', [1, 3, 5, 7, 9]],
    ['States.ArrayRange(5, 1, -2)', [5, 3, 1]],
    ['States.ArrayGetItem($.list, 4)', 5],
    ['States.ArrayLength($.list)', 5],
    ['States.ArrayUnique(States.Array(1, 1, 2, $.x, 7))', [1, 2, 7]],
    ["States.Base64Encode('Strand ✓')", 'U3RyYW5kIOKckw=='],
    ["States.Base64Decode('U3RyYW5kIOKckw==')", 'Strand ✓'],
    [
      "States.Hash('input data', 'SHA-256')",
      'b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3',
    ],
    [
      'States.JsonMerge($.obj, States.StringToJson(\'{"k":2,"m":3}\'), false)',
      { k: 2, l: [1, 2], m: 3 },
    ],
    ['States.MathAdd(1.5, -1.5)', 1],
    ['States.MathAdd($.x, $v)', 49],
    ["States.StringSplit('a,b;;c', ',;')", ['a', 'b', 'c']],
    ['States.Format($$.Execution.Name)', 'e1'],
  ] as [string, Json][])('%s', (text, expected) => {
    const input = {
      x: 7,
      list: [1, 2, 3, 4, 5],
      obj: { k: 1, l: [1, 2] },
      objs: [{ l: [1, 2], k: 1 }],
    };
    expect(run(text, input)).toEqual(expected);
  });

  it('States.Hash agrees with node:crypto for every algorithm', () => {
    const algorithms: [string, string][] = [
      ['MD5', 'md5'],
      ['SHA-1', 'sha1'],
      ['SHA-256', 'sha256'],
      ['SHA-384', 'sha384'],
      ['SHA-512', 'sha512'],
    ];
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (data) => {
        for (const [asl, node] of algorithms) {
          expect(run(`States.Hash($.d, '${asl}')`, { d: data })).toBe(
            createHash(node).update(data, 'utf8').digest('hex'),
          );
        }
      }),
      { numRuns: 50 },
    );
  });

  it('property: Base64Decode(Base64Encode(s)) = s and matches Buffer', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 300 }), (s) => {
        const encoded = run('States.Base64Encode($.s)', { s });
        expect(encoded).toBe(Buffer.from(s, 'utf8').toString('base64'));
        expect(run('States.Base64Decode($.e)', { e: encoded })).toBe(s);
      }),
    );
  });

  it('property: StringToJson(JsonToString(v)) = v', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = run('States.JsonToString($.v)', { v: v as Json });
        expect(
          jsonEqual(run('States.StringToJson($.t)', { t: text }), JSON.parse(JSON.stringify(v))),
        ).toBe(true);
      }),
    );
  });

  it('property: ArrayPartition chunks concatenate back to the array', () => {
    fc.assert(
      fc.property(fc.array(fc.integer()), fc.integer({ min: 1, max: 10 }), (list, size) => {
        const chunks = run('States.ArrayPartition($.l, $.n)', { l: list, n: size }) as Json[][];
        expect(chunks.flat()).toEqual(list);
        expect(chunks.every((c, i) => c.length === size || i === chunks.length - 1)).toBe(true);
      }),
    );
  });

  it('property: MathRandom stays in [start, end) and a seed makes it repeatable', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -1000, max: 1000 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        (start, span, r) => {
          const v = run(`States.MathRandom(${start}, ${start + span})`, {}, () => r) as number;
          expect(v).toBeGreaterThanOrEqual(start);
          expect(v).toBeLessThan(start + span);
          expect(run(`States.MathRandom(${start}, ${start + span}, 7)`)).toBe(
            run(`States.MathRandom(${start}, ${start + span}, 7)`),
          );
        },
      ),
    );
  });

  it('States.UUID is a version 4 UUID drawn from the injected randomness', () => {
    let i = 0;
    const id = run('States.UUID()', {}, () => (i++ * 0.37) % 1) as string;
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    i = 0;
    expect(run('States.UUID()', {}, () => (i++ * 0.37) % 1)).toBe(id);
  });

  it('bad arguments are States.IntrinsicFailure naming the function', () => {
    const e = failure(() => run('States.ArrayGetItem($.l, 5)', { l: [1] }));
    expect(e.error).toBe('States.IntrinsicFailure');
    expect(e.causeText).toContain('States.ArrayGetItem');
    expect(failure(() => run("States.Hash('x', 'SHA-3')")).causeText).toContain('SHA-3');
    expect(failure(() => run("States.Format('{} {}', 1)")).error).toBe('States.IntrinsicFailure');
    expect(failure(() => run('States.ArrayRange(1, 5000, 1)')).causeText).toContain('1000');
  });

  it('syntax errors say where parsing stopped', () => {
    for (const [text, message] of [
      ["States.Format('x'", 'missing ")"'],
      ['States.Nope(1)', 'unknown intrinsic function States.Nope'],
      ['States.ArrayLength()', 'takes 1 argument'],
      ["States.Format('unterminated)", 'unterminated string'],
      ['States.UUID() trailing', 'unexpected text'],
    ]) {
      expect(() => parseIntrinsic(text)).toThrow(IntrinsicSyntaxError);
      expect(() => parseIntrinsic(text)).toThrow(message);
    }
    expect(isIntrinsicCall('States.Format(')).toBe(true);
    expect(isIntrinsicCall('$.States')).toBe(false);
  });
});
