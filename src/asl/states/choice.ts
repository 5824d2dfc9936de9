/** Choice: picks the Next state from the first rule that matches, or Default. */
import { evaluateChoiceRule } from '../choice-rules.js';
import { StatesError } from '../errors.js';
import { evaluateJsonataTemplate, isJsonataString } from '../jsonata.js';
import type { ChoiceState, Json } from '../types.js';
import { exitWithoutResult } from './common.js';
import type { StateHandler } from './handler.js';

export const choiceState: StateHandler<ChoiceState> = {
  async run(rt, thread, def) {
    const jsonata = rt.queryLanguage(def) === 'JSONata';
    const effective = jsonata ? thread.input : rt.effectiveInput(thread, undefined);
    for (let i = 0; i < def.Choices.length; i++) {
      const rule = def.Choices[i];
      let matched: boolean;
      if (jsonata) {
        const condition: Json = isJsonataString(rule.Condition)
          ? await evaluateJsonataTemplate(rule.Condition, rt.jsonataScope(thread), `Condition`)
          : (rule.Condition as Json);
        if (typeof condition !== 'boolean') {
          throw new StatesError(
            'States.QueryEvaluationError',
            `The Condition field of a Choice rule must evaluate to a boolean, but evaluated to ${JSON.stringify(condition)}.`,
          );
        }
        matched = condition;
      } else {
        matched = evaluateChoiceRule(rule, rt.pathScope(thread, effective));
      }
      if (matched) {
        await exitWithoutResult(rt, thread, def, effective, rule.Next, rule.Assign, rule.Output);
        return;
      }
    }
    if (def.Default !== undefined) {
      await exitWithoutResult(rt, thread, def, effective, def.Default, def.Assign, def.Output);
      return;
    }
    throw new StatesError('States.NoChoiceMatched', `No Matches!`);
  },
};
