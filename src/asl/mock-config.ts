/**
 * Mocked service integrations in AWS Step Functions Local's mock configuration format
 * (`MockConfigFile.json`): `StateMachines` → NAME → `TestCases` → CASE → { state: response set },
 * and `MockedResponses` → response set → { "0": {Return|Throw}, "1-2": …, … }.
 *
 * A test case chosen at start becomes a `MockCase`: per mocked Task state, its responses by
 * attempt. Like Step Functions Local, the response a task gets is the one numbered by the
 * state's retry count ($$.State.RetryCount): the first try takes "0", the first retry "1". Each
 * entry of a Map or each visit of a loop starts again at "0".
 */
import { didYouMean } from './suggest.js';
import type { Json, JsonObject, StateMachineDefinition } from './types.js';
import { parseJsonText, placeProblems, type ValidationProblem } from './validate.js';

/** One mocked answer: the service's response, or the error it raises. */
export type MockedResponse = { Return: Json } | { Throw: { Error: string; Cause?: string } };

/** The mocks of one execution: for each mocked state, its responses by attempt. */
export interface MockCase {
  stateMachine: string;
  testCase: string;
  states: Record<string, MockedResponse[]>;
}

/** The answer for a mocked state's attempt; undefined when the state is not mocked. */
export function mockedAnswer(
  mock: MockCase,
  stateName: string,
  attempt: number,
): MockedResponse | { missing: string } | undefined {
  const responses = mock.states[stateName];
  if (!responses) return undefined;
  const response = responses[attempt];
  if (response) return response;
  return {
    missing: `no mocked response for state "${stateName}" and retry number ${attempt} in test case "${mock.testCase}" (its responses are numbered 0-${responses.length - 1})`,
  };
}

const isObject = (v: unknown): v is JsonObject =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const escapePointer = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

/** The type of every state of a definition, nested ones (Parallel branches, Map processors) too. */
function stateTypes(def: StateMachineDefinition, out = new Map<string, string>()) {
  for (const [name, state] of Object.entries(def.States ?? {})) {
    out.set(name, state.Type);
    if (state.Type === 'Parallel') for (const b of state.Branches) stateTypes(b, out);
    if (state.Type === 'Map') {
      const processor = state.ItemProcessor ?? state.Iterator;
      if (processor) stateTypes(processor, out);
    }
  }
  return out;
}

/** "0" → [0, 0], "1-2" → [1, 2]; undefined for anything else. */
function responseRange(key: string): [number, number] | undefined {
  const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(key);
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  return end >= start ? [start, end] : undefined;
}

/** The responses of one response set, checked: ranges consecutive from 0, one Return or Throw each. */
function responseSet(
  set: unknown,
  pointer: string,
  problem: (pointer: string, message: string) => void,
): MockedResponse[] {
  if (!isObject(set) || Object.keys(set).length === 0) {
    problem(pointer, 'a mocked response must be an object of responses numbered from "0"');
    return [];
  }
  const ranged: { range: [number, number]; response: MockedResponse }[] = [];
  for (const [key, value] of Object.entries(set)) {
    const at = `${pointer}/${escapePointer(key)}`;
    const range = responseRange(key);
    if (!range) {
      problem(at, `"${key}" is not a retry number ("0") or a range of them ("1-2")`);
      continue;
    }
    if (!isObject(value)) {
      problem(at, 'a response must be an object with "Return" or "Throw"');
      continue;
    }
    const fields = Object.keys(value);
    const unknown = fields.filter((f) => f !== 'Return' && f !== 'Throw');
    for (const f of unknown)
      problem(
        `${at}/${escapePointer(f)}`,
        `unknown field "${f}"${didYouMean(f, ['Return', 'Throw'])}`,
      );
    if ('Return' in value === 'Throw' in value) {
      problem(at, 'a response has exactly one of "Return" and "Throw"');
      continue;
    }
    if ('Return' in value) {
      ranged.push({ range, response: { Return: value.Return } });
      continue;
    }
    const thrown = value.Throw;
    if (!isObject(thrown) || typeof thrown.Error !== 'string') {
      problem(`${at}/Throw`, '"Throw" needs an "Error" string (and may have a "Cause" string)');
      continue;
    }
    if (thrown.Cause !== undefined && typeof thrown.Cause !== 'string') {
      problem(`${at}/Throw/Cause`, '"Cause" must be a string');
      continue;
    }
    ranged.push({
      range,
      response: {
        Throw: {
          Error: thrown.Error,
          ...(thrown.Cause !== undefined ? { Cause: thrown.Cause } : {}),
        },
      },
    });
  }
  ranged.sort((a, b) => a.range[0] - b.range[0]);
  const out: MockedResponse[] = [];
  for (const { range, response } of ranged) {
    if (range[0] !== out.length) {
      problem(
        pointer,
        `responses must be numbered consecutively from "0": the next one after ${out.length === 0 ? 'none' : `"${out.length - 1}"`} is "${range[0]}${range[1] > range[0] ? `-${range[1]}` : ''}", expected "${out.length}"`,
      );
      return [];
    }
    for (let i = range[0]; i <= range[1]; i++) out.push(response);
  }
  return out;
}

/**
 * Reads a mock configuration's text and picks one test case of one state machine, checked
 * against the definition it will run: the problems name their place (line, column, pointer).
 */
export function readMockCase(
  text: string,
  choice: { stateMachine: string; testCase: string },
  definition: StateMachineDefinition,
): { mock?: MockCase; problems: ValidationProblem[]; testCases?: string[] } {
  const parsed = parseJsonText(text);
  if (parsed.problems.length > 0) return { problems: parsed.problems };
  const problems: ValidationProblem[] = [];
  const problem = (pointer: string, message: string) =>
    problems.push({ pointer, code: 'MOCK_CONFIG', message });
  let testCases: string[] | undefined;
  const done = (mock?: MockCase) => ({
    mock: problems.length === 0 ? mock : undefined,
    problems: placeProblems(problems, parsed.locate),
    ...(testCases ? { testCases } : {}),
  });
  const config = parsed.value;
  if (!isObject(config)) {
    problem('', 'a mock configuration is an object with "StateMachines" and "MockedResponses"');
    return done();
  }
  for (const f of Object.keys(config)) {
    if (f !== 'StateMachines' && f !== 'MockedResponses')
      problem(
        `/${escapePointer(f)}`,
        `unknown field "${f}"${didYouMean(f, ['StateMachines', 'MockedResponses'])}`,
      );
  }
  const machines = config.StateMachines;
  const responses = config.MockedResponses ?? {};
  if (!isObject(machines)) {
    problem('', '"StateMachines" must be an object of state machine names');
    return done();
  }
  if (!isObject(responses)) {
    problem('/MockedResponses', '"MockedResponses" must be an object of response sets');
    return done();
  }
  const { stateMachine, testCase } = choice;
  const machine = machines[stateMachine];
  const names = Object.keys(machines);
  if (!isObject(machine)) {
    problem(
      '/StateMachines',
      `no state machine "${stateMachine}" in the mock configuration${didYouMean(stateMachine, names)} (it has: ${names.join(', ') || 'none'}; --state-machine-name picks one)`,
    );
    return done();
  }
  const casesPointer = `/StateMachines/${escapePointer(stateMachine)}/TestCases`;
  const cases = machine.TestCases;
  if (!isObject(cases)) {
    problem(casesPointer, `state machine "${stateMachine}" has no "TestCases" object`);
    return done();
  }
  const caseNames = (testCases = Object.keys(cases));
  const chosen = cases[testCase];
  if (!isObject(chosen)) {
    problem(
      casesPointer,
      `no test case "${testCase}" for state machine "${stateMachine}"${didYouMean(testCase, caseNames)} (it has: ${caseNames.join(', ') || 'none'})`,
    );
    return done();
  }
  const types = stateTypes(definition);
  const states: Record<string, MockedResponse[]> = {};
  const casePointer = `${casesPointer}/${escapePointer(testCase)}`;
  // A response set several states share is checked (and its problems told) once.
  const sets = new Map<string, MockedResponse[]>();
  for (const [state, responseName] of Object.entries(chosen)) {
    const at = `${casePointer}/${escapePointer(state)}`;
    const type = types.get(state);
    if (type === undefined) {
      problem(at, `the state machine has no state "${state}"${didYouMean(state, types.keys())}`);
      continue;
    }
    if (type !== 'Task') {
      problem(at, `state "${state}" is a ${type} state; only Task states can be mocked`);
      continue;
    }
    if (typeof responseName !== 'string') {
      problem(at, 'a test case maps a state name to the name of a mocked response');
      continue;
    }
    if (!(responseName in responses)) {
      problem(
        at,
        `no mocked response "${responseName}" in "MockedResponses"${didYouMean(responseName, Object.keys(responses))}`,
      );
      continue;
    }
    let set = sets.get(responseName);
    if (!set) {
      set = responseSet(
        responses[responseName],
        `/MockedResponses/${escapePointer(responseName)}`,
        problem,
      );
      sets.set(responseName, set);
    }
    states[state] = set;
  }
  return done({ stateMachine, testCase, states });
}
