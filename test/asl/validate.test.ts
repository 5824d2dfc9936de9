import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatProblem, validate, validateText } from '../../src/asl/validate.js';
import { loadCases } from '../../scripts/lib/conformance.js';

const require = createRequire(import.meta.url);
const aslValidator = require('asl-validator') as (
  definition: unknown,
  options?: { checkPaths?: boolean; checkArn?: boolean },
) => { isValid: boolean };

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const corpus = process.env.STRAND_ASL_CORPUS ?? resolve(repo, '../shared/asl-corpus/open');
const cases = existsSync(corpus) ? loadCases(corpus) : [];

/** Where Strand deliberately disagrees with asl-validator, and why. */
const DISAGREES_WITH_ASL_VALIDATOR: Record<string, string> = {
  'validation/av_valid_assign.asl':
    'asl-validator accepts the variable name "top-level"; it could never be referenced ($top-level is a subtraction in JSONata), so Strand rejects it',
};

/**
 * Execution cases AWS ran although their definitions are not valid as written: the corpus
 * keeps LocalStack's template placeholders, substituted before the test deployed them.
 */
function placeholderProblem(message: string): boolean {
  return /Resource "_+tbd_+" is not an ARN/.test(message) || /timestamp, not "date"/.test(message);
}

describe('validate against the corpus', () => {
  it('the corpus is present', () => expect(cases.length).toBeGreaterThan(600));

  const validation = cases.filter((c) => c.expect.valid !== undefined);
  it.each(validation.map((c) => [c.name, c] as const))('%s', (name, c) => {
    const definition = c.definitionText ? JSON.parse(c.definitionText) : c.definition;
    const ours =
      (c.definitionText ? validateText(c.definitionText).problems : validate(c.definition))
        .length === 0;
    const theirs = aslValidator(structuredClone(definition), {
      checkPaths: true,
      checkArn: true,
    }).isValid;
    const reason = DISAGREES_WITH_ASL_VALIDATOR[name];
    if (reason) {
      expect(theirs, `asl-validator now agrees with us on ${name}`).toBe(c.expect.valid);
      expect(ours, reason).toBe(!c.expect.valid);
    } else {
      expect(theirs, 'asl-validator').toBe(c.expect.valid);
      expect(ours, 'strand').toBe(c.expect.valid);
    }
  });

  it('every execution case definition (all of them ran on AWS) is valid, but for placeholders', () => {
    const unexpected: string[] = [];
    let placeholders = 0;
    for (const c of cases.filter((x) => x.expect.valid === undefined)) {
      const problems = validate(c.definition);
      if (problems.length === 0) continue;
      if (problems.every((p) => placeholderProblem(p.message))) placeholders++;
      else unexpected.push(`${c.name}: ${problems.map(formatProblem).join('; ')}`);
    }
    expect(unexpected).toEqual([]);
    // 6 definitions keep a "__tbd__" Resource, 22 the timestamp placeholder "date".
    expect(placeholders).toBe(28);
  });
});

describe('validate messages', () => {
  const machine = (states: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    StartAt: 'QC',
    States: states,
    ...extra,
  });

  it.each([
    [
      machine({ QC: { Type: 'Pass', Next: 'Asembly' }, Assembly: { Type: 'Pass', End: true } }),
      '/States/QC/Next: state "Asembly" does not exist; did you mean "Assembly"?',
    ],
    [
      machine({ QC: { Type: 'Pass', End: true, Typ: 1 } }),
      '/States/QC/Typ: unknown field "Typ" in a Pass state; did you mean "Type"?',
    ],
    [
      machine({ QC: { Type: 'Pas', End: true } }),
      '/States/QC/Type: unknown state type "Pas"; did you mean "Pass"?',
    ],
    [
      machine({ QC: { Type: 'Pass', End: true }, Lost: { Type: 'Succeed' } }),
      '/States/Lost: state "Lost" cannot be reached from StartAt "QC"',
    ],
    [
      machine({ QC: { Type: 'Pass' } }),
      '/States/QC: a Pass state needs exactly one of Next or End',
    ],
    [
      machine({ QC: { Type: 'Pass', InputPath: 'reads', End: true } }),
      '/States/QC/InputPath: "reads" is not a valid JSONPath',
    ],
    [
      machine({
        QC: { Type: 'Pass', Parameters: { 'x.$': "States.Formatt('{}', $.a)" }, End: true },
      }),
      '/States/QC/Parameters/x.$: invalid intrinsic call: unknown intrinsic function States.Formatt',
    ],
    [
      machine({ QC: { Type: 'Pass', QueryLanguage: 'JSONata', Output: '{% 1 + %}', End: true } }),
      '/States/QC/Output: invalid JSONata "{% 1 + %}"',
    ],
    [
      machine({ QC: { Type: 'Pass', QueryLanguage: 'JSONata', Parameters: {}, End: true } }),
      '/States/QC/Parameters: field "Parameters" is not allowed in a JSONata Pass state (it is a JSONPath field)',
    ],
    [
      machine({
        QC: {
          Type: 'Task',
          Resource: 'arn:aws:states:::batch:submitJob.sync',
          Retry: [{ ErrorEquals: ['States.ALL'] }, { ErrorEquals: ['X'] }],
          End: true,
        },
      }),
      '/States/QC/Retry/0/ErrorEquals: States.ALL must be in the last retrier or catcher',
    ],
    [
      machine({ QC: { Type: 'Wait', Seconds: 1, SecondsPath: '$.s', End: true } }),
      '/States/QC: has Seconds and SecondsPath; exactly one of Seconds, SecondsPath, Timestamp, TimestampPath is allowed',
    ],
    [
      machine({ QC: { Type: 'Pass', End: true } }, { Extra: 1 }),
      '/Extra: unknown top-level field "Extra"',
    ],
  ])('%#: %s', (definition, expected) => {
    const messages = validate(definition).map(formatProblem);
    expect(
      messages.some((m) => m.startsWith(expected)),
      messages.join('\n'),
    ).toBe(true);
  });

  it('reports every problem, not just the first', () => {
    const problems = validate({ StartAt: 'Nope', States: { A: { Type: 'Pass', Bogus: 1 } } });
    expect(problems.map((p) => p.pointer).sort()).toEqual([
      '/StartAt',
      '/States/A',
      '/States/A/Bogus',
    ]);
  });

  it('not an object', () => {
    expect(validate([]).map(formatProblem)).toEqual([
      '(root): a state machine definition must be a JSON object, not []',
    ]);
  });

  it('validateText gives line and column for syntax errors, duplicate keys and problems', () => {
    const broken = validateText('{\n  "StartAt": "A",\n  "States": {\n}');
    expect(broken.problems[0]).toMatchObject({ code: 'NOT_JSON', line: 4 });
    const dup = validateText(
      '{"StartAt": "A", "StartAt": "B", "States": {"A": {"Type": "Pass", "End": true}}}',
    );
    expect(dup.problems.some((p) => p.code === 'DUPLICATE_KEY' && p.line === 1)).toBe(true);
    const located = validateText(
      '{\n  "StartAt": "A",\n  "States": {\n    "A": { "Type": "Pass", "Next": "B" }\n  }\n}',
    );
    expect(located.problems.find((p) => p.pointer === '/States/A/Next')).toMatchObject({
      line: 4,
      column: 36,
    });
    const lines = located.problems.map((p) => p.line ?? 0);
    expect(lines).toEqual([...lines].sort((a, b) => a - b));
  });
});
