/** Reading definition files and `--input JSON|@file` values, with located errors. */
import { readFileSync } from 'node:fs';
import { formatProblemAt, validateText } from '../asl/validate.js';
import { readMockCase, type MockCase } from '../asl/mock-config.js';
import type { Json, StateMachineDefinition } from '../asl/types.js';
import { InputError } from './errors.js';

/** Reads a file, turning "not found" and friends into an InputError naming the path. */
export function readTextFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : String(err);
    throw new InputError(`${path}: cannot read ${what}: ${why}`);
  }
}

/** Loads and validates an ASL definition; every problem is reported with file and pointer. */
export function loadDefinition(path: string): StateMachineDefinition {
  const text = readTextFile(path, 'the state machine definition');
  const { definition, problems } = validateText(text);
  if (problems.length > 0) {
    throw new InputError(
      `${path}: ${problems.length} problem${problems.length === 1 ? '' : 's'} in the state machine definition`,
      problems.map((p) => formatProblemAt(path, p)),
    );
  }
  return definition as StateMachineDefinition;
}

/** Parses `--input`: inline JSON, or `@file` holding JSON. */
export function parseInputOption(value: string | undefined): Json {
  if (value === undefined) return {};
  return parseJsonArg('--input', value, 'the execution input');
}

/** Parses a JSON option (`--task-output`): inline JSON, or `@file` holding JSON. */
export function parseJsonArg(flag: string, value: string, what = 'the value'): Json {
  let text = value;
  let where = flag;
  if (value.startsWith('@')) {
    where = value.slice(1);
    text = readTextFile(where, what);
  }
  try {
    return JSON.parse(text) as Json;
  } catch (err) {
    throw new InputError(`${where}: ${what} is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * `--mock-config FILE --mock-case NAME`: the test case NAME of state machine `stateMachine` in a
 * mock configuration of AWS Step Functions Local's format (FILE defaults to $SFN_MOCK_CONFIG,
 * as Step Functions Local reads it), checked against the definition it mocks.
 */
export function loadMockCase(
  given: { mockConfig?: string; mockCase?: string },
  stateMachine: string,
  definition: StateMachineDefinition,
  env: NodeJS.ProcessEnv = process.env,
): MockCase | undefined {
  const file = given.mockConfig ?? (given.mockCase !== undefined ? env.SFN_MOCK_CONFIG : undefined);
  if (file === undefined || file === '') {
    if (given.mockCase === undefined) return undefined;
    throw new InputError(
      `--mock-case ${given.mockCase}: which mock configuration? Give --mock-config FILE (or set $SFN_MOCK_CONFIG)`,
    );
  }
  const text = readTextFile(file, 'the mock configuration');
  const { mock, problems, testCases } = readMockCase(
    text,
    { stateMachine, testCase: given.mockCase ?? '' },
    definition,
  );
  if (given.mockCase === undefined && testCases) {
    throw new InputError(
      `--mock-config ${file}: --mock-case NAME says which test case of "${stateMachine}" to run${testCases ? ` (it has: ${testCases.join(', ') || 'none'})` : ''}`,
    );
  }
  if (problems.length > 0 || !mock) {
    throw new InputError(
      `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'} in the mock configuration`,
      problems.map((p) => formatProblemAt(file, p)),
    );
  }
  return mock;
}
