/** Pass: passes its input (or Result, or Parameters) to its output. */
import type { PassState } from '../types.js';
import type { StateHandler } from './handler.js';

export const passState: StateHandler<PassState> = {
  async run(rt, thread, def) {
    if (rt.queryLanguage(def) === 'JSONata') {
      await rt.completeWithResult(thread, thread.input);
      return;
    }
    const effective = rt.effectiveInput(thread, def.Parameters);
    await rt.completeWithResult(thread, def.Result !== undefined ? def.Result : effective);
  },
};
