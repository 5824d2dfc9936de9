/** Wait: delays for Seconds or until Timestamp, then passes its input on. */
import { StatesError } from '../errors.js';
import { evaluateJsonataTemplate, isJsonataString } from '../jsonata.js';
import { readPath } from '../path.js';
import type { Json, WaitState } from '../types.js';
import { exitWithoutResult } from './common.js';
import type { StateHandler } from './handler.js';

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function parseTimestamp(value: Json, field: string, path?: string): number {
  const ms = typeof value === 'string' && RFC3339.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) {
    throw new StatesError(
      'States.Runtime',
      path
        ? `The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: ${path} == ${JSON.stringify(value)}`
        : `The ${field} field does not hold a valid ISO-8601 extended offset date-time format string: ${JSON.stringify(value)}`,
    );
  }
  return ms;
}

export const waitState: StateHandler<WaitState> = {
  async run(rt, thread, def) {
    const now = rt.now();
    let due: number;
    if (rt.queryLanguage(def) === 'JSONata') {
      if (def.Seconds !== undefined) {
        const seconds = isJsonataString(def.Seconds)
          ? await evaluateJsonataTemplate(def.Seconds, rt.jsonataScope(thread), 'Seconds')
          : def.Seconds;
        if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 0) {
          throw new StatesError(
            'States.QueryEvaluationError',
            `The Seconds field must evaluate to a non-negative integer, but evaluated to ${JSON.stringify(seconds)}.`,
          );
        }
        due = now + seconds * 1000;
      } else {
        const ts = isJsonataString(def.Timestamp)
          ? await evaluateJsonataTemplate(def.Timestamp!, rt.jsonataScope(thread), 'Timestamp')
          : (def.Timestamp ?? null);
        due = parseTimestamp(ts, 'Timestamp');
      }
    } else {
      const effective = rt.effectiveInput(thread, undefined);
      if (def.Seconds !== undefined) {
        due = now + Number(def.Seconds) * 1000;
      } else if (def.SecondsPath !== undefined) {
        const seconds = readPath(def.SecondsPath, rt.pathScope(thread, effective));
        if (typeof seconds !== 'number' || !Number.isInteger(seconds)) {
          throw new StatesError(
            'States.Runtime',
            `The SecondsPath parameter cannot be parsed as a long value: ${def.SecondsPath} == ${JSON.stringify(seconds)}`,
          );
        }
        if (seconds < 0) {
          throw new StatesError(
            'States.Runtime',
            `The SecondsPath parameter references a negative value: ${def.SecondsPath} == ${seconds}`,
          );
        }
        due = now + seconds * 1000;
      } else if (def.Timestamp !== undefined) {
        due = parseTimestamp(def.Timestamp, 'Timestamp');
      } else {
        const path = def.TimestampPath!;
        due = parseTimestamp(
          readPath(path, rt.pathScope(thread, effective)),
          'TimestampPath',
          path,
        );
      }
    }
    rt.startTimer(thread, Math.max(due, now), 'wait');
  },
  async resume(rt, thread) {
    const def = rt.scopeDefinition(thread.scope).States[thread.state] as WaitState;
    const jsonata = rt.queryLanguage(def) === 'JSONata';
    const effective = jsonata ? thread.input : rt.effectiveInput(thread, undefined);
    await exitWithoutResult(rt, thread, def, effective, def.Next, def.Assign, def.Output);
  },
};
