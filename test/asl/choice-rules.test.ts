import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluateChoiceRule } from '../../src/asl/choice-rules.js';
import { PathNotFoundError } from '../../src/asl/errors.js';
import type { EvalScope } from '../../src/asl/path.js';
import type { ChoiceRule, Json } from '../../src/asl/types.js';

const scope = (input: Json): EvalScope => ({
  input,
  context: {},
  variable: (name) => (name === 'limit' ? 10 : undefined),
  random: () => 0,
});
const check = (rule: ChoiceRule, input: Json) => evaluateChoiceRule(rule, scope(input));

describe('Choice comparison operators', () => {
  it.each([
    // operator, value, operand, expected
    ['NumericEquals', 3, 3, true],
    ['NumericEquals', 3, 3.0, true],
    ['NumericEquals', '3', 3, false],
    ['NumericGreaterThan', 4, 3, true],
    ['NumericGreaterThanEquals', 3, 3, true],
    ['NumericLessThan', -1, 0, true],
    ['NumericLessThanEquals', 0.5, 0.25, false],
    ['StringEquals', 'a', 'a', true],
    ['StringEquals', 1, '1', false],
    ['StringGreaterThan', 'b', 'a', true],
    ['StringLessThanEquals', 'abc', 'abd', true],
    ['StringMatches', 'sample_S12.fastq.gz', 'sample_*.fastq.gz', true],
    ['StringMatches', 'log.txt', '*.fastq', false],
    ['StringMatches', 'a*b', 'a\\*b', true],
    ['StringMatches', 'axb', 'a\\*b', false],
    ['BooleanEquals', true, true, true],
    ['BooleanEquals', 'true', true, false],
    ['TimestampEquals', '2026-01-01T00:00:00Z', '2026-01-01T01:00:00+01:00', true],
    ['TimestampGreaterThan', '2026-01-02T00:00:00Z', '2026-01-01T00:00:00Z', true],
    ['TimestampLessThan', 'not a date', '2026-01-01T00:00:00Z', false],
    ['IsNull', null, true, true],
    ['IsNull', 0, true, false],
    ['IsNumeric', 1.5, true, true],
    ['IsNumeric', '1.5', false, true],
    ['IsString', 'x', true, true],
    ['IsBoolean', false, true, true],
    ['IsTimestamp', '2026-11-25T03:07:30Z', true, true],
    ['IsTimestamp', '2026-11-25 03:07:30', true, false],
  ] as [string, Json, Json, boolean][])('%s(%j, %j) = %s', (op, value, operand, expected) => {
    expect(check({ Variable: '$.v', [op]: operand, Next: 'X' }, { v: value })).toBe(expected);
  });

  it('…Path operators read the operand from the input or a variable', () => {
    expect(
      check({ Variable: '$.reads', NumericGreaterThanEqualsPath: '$.min' }, { reads: 5, min: 5 }),
    ).toBe(true);
    expect(check({ Variable: '$.reads', NumericLessThanPath: '$limit' }, { reads: 5 })).toBe(true);
    expect(check({ Variable: '$.a', StringEqualsPath: '$.b' }, { a: 'x', b: 'y' })).toBe(false);
  });

  it('IsPresent is false for a missing variable; other operators fail on it', () => {
    expect(check({ Variable: '$.missing', IsPresent: true }, {})).toBe(false);
    expect(check({ Variable: '$.missing', IsPresent: false }, {})).toBe(true);
    expect(() => check({ Variable: '$.missing', StringEquals: 'x' }, {})).toThrow(
      PathNotFoundError,
    );
  });

  it('And, Or and Not combine rules, nested', () => {
    const rule: ChoiceRule = {
      And: [
        { Variable: '$.reads', NumericGreaterThan: 100 },
        // Guard first: a comparison on a missing Variable is a runtime error, as on AWS.
        {
          Or: [
            { Not: { Variable: '$.layout', IsPresent: true } },
            { Variable: '$.layout', StringEquals: 'paired' },
          ],
        },
      ],
    };
    expect(check(rule, { reads: 500, layout: 'paired' })).toBe(true);
    expect(check(rule, { reads: 500 })).toBe(true);
    expect(check(rule, { reads: 500, layout: 'single' })).toBe(false);
    expect(check(rule, { reads: 5, layout: 'paired' })).toBe(false);
  });

  it('property: Not(r) is the negation of r; a > b iff b < a for numbers', () => {
    fc.assert(
      fc.property(
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        (a, b) => {
          const gt = check({ Variable: '$.a', NumericGreaterThanPath: '$.b' }, { a, b });
          expect(check({ Variable: '$.b', NumericLessThanPath: '$.a' }, { a, b })).toBe(gt);
          expect(check({ Not: { Variable: '$.a', NumericGreaterThanPath: '$.b' } }, { a, b })).toBe(
            !gt,
          );
        },
      ),
    );
  });

  it('property: values of another type never compare equal to a string', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string())),
        fc.string(),
        (v, s) => {
          expect(check({ Variable: '$.v', StringEquals: s }, { v: v as Json })).toBe(false);
        },
      ),
    );
  });
});
