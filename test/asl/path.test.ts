import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PathNotFoundError, StatesError } from '../../src/asl/errors.js';
import {
  applyResultPath,
  isValidPath,
  isValidReferencePath,
  readPath,
  selectPath,
  type EvalScope,
} from '../../src/asl/path.js';
import { evaluatePayloadTemplate } from '../../src/asl/payload.js';
import type { Json, JsonObject } from '../../src/asl/types.js';

const scope = (
  input: Json,
  variables: Record<string, Json> = {},
  context: Json = {},
): EvalScope => ({
  input,
  context,
  variable: (name) => (name in variables ? variables[name] : undefined),
  random: () => 0.5,
});

const doc = {
  sample: { id: 'S1', reads: [10, 20, 30], 'odd key': true, nested: { deep: null } },
  samples: [
    { id: 'A', reads: 5 },
    { id: 'B', reads: 50 },
  ],
};

describe('readPath', () => {
  it.each([
    ['$', doc],
    ['$.sample.id', 'S1'],
    ['$.sample.reads[1]', 20],
    ["$.sample['odd key']", true],
    ['$.sample.nested.deep', null],
    ['$.samples[1].id', 'B'],
    ['$.samples[*].id', ['A', 'B']],
    ['$.samples[?(@.reads > 10)].id', ['B']],
    ['$.sample.reads[0:2]', [10, 20]],
    ['$..id', ['S1', 'A', 'B']],
  ] as [string, Json][])('%s', (path, expected) => {
    expect(readPath(path, scope(doc))).toEqual(expected);
  });

  it('reads the context object with $$ and variables with $name', () => {
    const s = scope({}, { run: { id: 'R7' } }, { Execution: { Name: 'exec-1' } });
    expect(readPath('$$.Execution.Name', s)).toBe('exec-1');
    expect(readPath('$run.id', s)).toBe('R7');
    expect(readPath('$run', s)).toEqual({ id: 'R7' });
  });

  it('a definite path that selects nothing throws PathNotFoundError naming the path', () => {
    expect(() => readPath('$.sample.missing', scope(doc))).toThrow(PathNotFoundError);
    expect(() => readPath('$.sample.reads[9]', scope(doc))).toThrow(/\$\.sample\.reads\[9\]/);
  });

  it('an undeclared variable is a States.Runtime error', () => {
    expect(() => readPath('$nope.x', scope({}))).toThrow(StatesError);
  });

  it('an indefinite path that selects nothing is an empty array', () => {
    expect(readPath('$.samples[?(@.reads > 1000)]', scope(doc))).toEqual([]);
  });

  it('property: every key reached by a simple dotted path reads back its value', () => {
    const key = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/);
    fc.assert(
      fc.property(fc.array(key, { minLength: 1, maxLength: 5 }), fc.jsonValue(), (keys, leaf) => {
        let value = leaf as Json;
        for (let i = keys.length - 1; i >= 0; i--) value = { [keys[i]]: value };
        const path = '$.' + keys.join('.');
        expect(readPath(path, scope(value))).toEqual(leaf);
        expect(readPath("$['" + keys.join("']['") + "']", scope(value))).toEqual(leaf);
      }),
    );
  });
});

describe('selectPath (InputPath/OutputPath)', () => {
  it('undefined and $ keep the value, null gives {}', () => {
    expect(selectPath(undefined, scope(doc))).toBe(doc);
    expect(selectPath('$', scope(doc))).toBe(doc);
    expect(selectPath(null, scope(doc))).toEqual({});
    expect(selectPath('$.sample.id', scope(doc))).toBe('S1');
  });
});

describe('applyResultPath', () => {
  it('$ replaces, null discards, a reference path inserts and creates objects', () => {
    const input: Json = { a: 1, b: { c: 2 } };
    expect(applyResultPath(input, undefined, 'r')).toBe('r');
    expect(applyResultPath(input, '$', 'r')).toBe('r');
    expect(applyResultPath(input, null, 'r')).toBe(input);
    expect(applyResultPath(input, '$.b.d', 'r')).toEqual({ a: 1, b: { c: 2, d: 'r' } });
    expect(applyResultPath(input, '$.x.y', 'r')).toEqual({ a: 1, b: { c: 2 }, x: { y: 'r' } });
    expect(applyResultPath({ l: [1, 2] }, '$.l[1]', 'r')).toEqual({ l: [1, 'r'] });
  });

  it('fails with States.ResultPathMatchFailure when the input cannot hold the result', () => {
    const err = (() => {
      try {
        applyResultPath('text', '$.a', 1);
      } catch (e) {
        return e as StatesError;
      }
    })();
    expect(err).toBeInstanceOf(StatesError);
    expect(err?.error).toBe('States.ResultPathMatchFailure');
    expect(err?.causeText).toContain('$.a');
  });

  it('property: never mutates the input, and reading the path back gives the result', () => {
    const key = fc.stringMatching(/^[a-z]{1,5}$/);
    fc.assert(
      fc.property(
        fc.dictionary(key, fc.jsonValue()),
        fc.array(key, { minLength: 1, maxLength: 4 }),
        fc.jsonValue(),
        (input, keys, result) => {
          const before = JSON.stringify(input);
          const path = '$.' + keys.join('.');
          let out: Json;
          try {
            out = applyResultPath(input as JsonObject, path, result as Json);
          } catch (e) {
            // Only possible when an intermediate value is not an object.
            expect((e as StatesError).error).toBe('States.ResultPathMatchFailure');
            return;
          }
          expect(JSON.stringify(input)).toBe(before);
          expect(readPath(path, scope(out))).toEqual(result);
        },
      ),
    );
  });
});

describe('path syntax', () => {
  it.each([
    '$',
    '$.a',
    '$.a.b[0]',
    "$['a b']",
    '$$.Execution.Input',
    '$var.x',
    '$.a[*].b',
    '$..x',
    '$.a[?(@.b == 1)]',
  ])('valid path %s', (p) => expect(isValidPath(p)).toBe(true));
  it.each(['', 'a.b', '.guid', '..guid', '()', '$...', '$.'])('invalid path %j', (p) =>
    expect(isValidPath(p)).toBe(false),
  );
  it('reference paths exclude variables, wildcards and filters', () => {
    expect(isValidReferencePath('$.result')).toBe(true);
    expect(isValidReferencePath("$['a b'][0]")).toBe(true);
    expect(isValidReferencePath('$foo')).toBe(false);
    expect(isValidReferencePath('$.a[*]')).toBe(false);
    expect(isValidReferencePath('$$.Execution')).toBe(false);
  });
});

describe('evaluatePayloadTemplate', () => {
  it('resolves .$ keys from paths, context, variables and intrinsics, recursively', () => {
    const s = scope(doc, { threshold: 25 }, { Map: { Item: { Index: 3 } } });
    const out = evaluatePayloadTemplate(
      {
        'id.$': '$.sample.id',
        'index.$': '$$.Map.Item.Index',
        'min.$': '$threshold',
        'label.$': "States.Format('{} has {} reads', $.sample.id, $.sample.reads[0])",
        static: { 'nested.$': '$.samples[0].id', list: [{ 'x.$': '$.sample.nested.deep' }] },
        literal: 'kept $.as text',
      },
      s,
      'Parameters',
    );
    expect(out).toEqual({
      id: 'S1',
      index: 3,
      min: 25,
      label: 'S1 has 10 reads',
      static: { nested: 'A', list: [{ x: null }] },
      literal: 'kept $.as text',
    });
  });

  it('a missing path is a States.Runtime error naming the field and the input', () => {
    try {
      evaluatePayloadTemplate({ 'bar.$': '$.foo' }, scope({ a: 1 }), 'Parameters');
      expect.unreachable();
    } catch (e) {
      const err = e as StatesError;
      expect(err.error).toBe('States.Runtime');
      expect(err.causeText).toBe(
        "The JSONPath '$.foo' specified for the field 'bar.$' could not be found in the input '{\"a\":1}'",
      );
    }
  });
});
