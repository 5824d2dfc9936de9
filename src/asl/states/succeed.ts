/** Succeed: ends the current scope successfully. */
import { evaluateJsonataTemplate } from '../jsonata.js';
import { selectPath } from '../path.js';
import type { SucceedState } from '../types.js';
import type { StateHandler } from './handler.js';

export const succeedState: StateHandler<SucceedState> = {
  async run(rt, thread, def) {
    if (rt.queryLanguage(def) === 'JSONata') {
      const output =
        def.Output !== undefined
          ? await evaluateJsonataTemplate(def.Output, rt.jsonataScope(thread), 'Output')
          : thread.input;
      rt.exitState(thread, output, undefined, undefined);
      return;
    }
    const effective = rt.effectiveInput(thread, undefined);
    rt.exitState(
      thread,
      selectPath(def.OutputPath, rt.pathScope(thread, effective)),
      undefined,
      undefined,
    );
  },
};
