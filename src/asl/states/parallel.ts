/** Parallel: runs every branch on the same input; its result is the array of branch outputs. */
import type { Pending, Thread } from '../execution.js';
import { evaluateJsonataTemplate } from '../jsonata.js';
import { inRanges } from '../redrive.js';
import type { Runtime } from '../runtime.js';
import type { ParallelState } from '../types.js';
import type { StateHandler } from './handler.js';

async function succeed(
  rt: Runtime,
  thread: Thread,
  pending: Extract<Pending, { kind: 'parallel' }>,
): Promise<void> {
  rt.setPending(thread, undefined);
  rt.emit(thread, 'ParallelStateSucceeded');
  await rt.completeWithResult(thread, pending.results);
}

export const parallelState: StateHandler<ParallelState> = {
  async run(rt, thread, def) {
    const input =
      rt.queryLanguage(def) === 'JSONata'
        ? def.Arguments !== undefined
          ? await evaluateJsonataTemplate(def.Arguments, rt.jsonataScope(thread), 'Arguments')
          : thread.input
        : rt.effectiveInput(thread, def.Parameters);
    rt.emit(thread, 'ParallelStateStarted');
    // A redrive does not run again the branches that had succeeded, and continues each one
    // that had not from where it stopped.
    const progress = thread.resume;
    const resume =
      progress?.state === thread.state && progress.results.length === def.Branches.length
        ? progress
        : undefined;
    thread.resume = undefined;
    const children: string[] = [];
    const pending: Extract<Pending, { kind: 'parallel' }> = {
      kind: 'parallel',
      effectiveInput: input,
      children,
      results: new Array(def.Branches.length).fill(null),
      remaining: def.Branches.length,
      succeeded: [],
    };
    rt.setPending(thread, pending);
    for (let i = 0; i < def.Branches.length; i++) {
      if (resume && inRanges(resume.succeeded, i)) {
        pending.results[i] = resume.results[i];
        pending.succeeded!.push(i);
        pending.remaining--;
        continue;
      }
      const from = resume?.children[String(i)];
      children.push(
        rt.spawn(thread, rt.scopeKey(thread, 'Branches', i), i, input, undefined, from).id,
      );
    }
    if (pending.remaining === 0) await succeed(rt, thread, pending);
  },
  async childSucceeded(rt, parent, child, output) {
    const pending = parent.pending;
    if (pending?.kind !== 'parallel') return;
    pending.results[child.index!] = output;
    (pending.succeeded ??= []).push(child.index!);
    pending.remaining--;
    if (pending.remaining > 0) return;
    await succeed(rt, parent, pending);
  },
  async childFailed(rt, parent, child, error, cause) {
    const pending = parent.pending;
    if (pending?.kind !== 'parallel') return;
    rt.recordProgress(parent, child);
    rt.abortThreads(pending.children.filter((id) => id !== child.id));
    rt.setPending(parent, undefined);
    rt.emit(parent, 'ParallelStateFailed');
    await rt.handleError(parent, error, cause);
  },
};
