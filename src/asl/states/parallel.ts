/** Parallel: runs every branch on the same input; its result is the array of branch outputs. */
import { evaluateJsonataTemplate } from '../jsonata.js';
import type { ParallelState } from '../types.js';
import type { StateHandler } from './handler.js';

export const parallelState: StateHandler<ParallelState> = {
  async run(rt, thread, def) {
    const input =
      rt.queryLanguage(def) === 'JSONata'
        ? def.Arguments !== undefined
          ? await evaluateJsonataTemplate(def.Arguments, rt.jsonataScope(thread), 'Arguments')
          : thread.input
        : rt.effectiveInput(thread, def.Parameters);
    rt.emit(thread, 'ParallelStateStarted');
    const children: string[] = [];
    const pending = {
      kind: 'parallel' as const,
      effectiveInput: input,
      children,
      results: new Array(def.Branches.length).fill(null),
      remaining: def.Branches.length,
    };
    rt.setPending(thread, pending);
    for (let i = 0; i < def.Branches.length; i++) {
      children.push(rt.spawn(thread, rt.scopeKey(thread, 'Branches', i), i, input).id);
    }
  },
  async childSucceeded(rt, parent, child, output) {
    const pending = parent.pending;
    if (pending?.kind !== 'parallel') return;
    pending.results[child.index!] = output;
    pending.remaining--;
    if (pending.remaining > 0) return;
    rt.setPending(parent, undefined);
    rt.emit(parent, 'ParallelStateSucceeded');
    await rt.completeWithResult(parent, pending.results);
  },
  async childFailed(rt, parent, child, error, cause) {
    const pending = parent.pending;
    if (pending?.kind !== 'parallel') return;
    rt.abortThreads(pending.children.filter((id) => id !== child.id));
    rt.setPending(parent, undefined);
    rt.emit(parent, 'ParallelStateFailed');
    await rt.handleError(parent, error, cause);
  },
};
