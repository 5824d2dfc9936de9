/** The contract each state type implements (one file per state type). */
import type { Thread } from '../execution.js';
import type { Runtime } from '../runtime.js';
import type { Json, StateDefinition } from '../types.js';

export interface StateHandler<S extends StateDefinition = StateDefinition> {
  /** Runs the state's body: on entry, and again after a Retry's backoff. */
  run(rt: Runtime, thread: Thread, def: S): Promise<void> | void;
  /** Continues after the thread's timer fired (Wait). */
  resume?(rt: Runtime, thread: Thread): Promise<void> | void;
  /** Map: the ItemReader's task returned the items. */
  itemsRead?(
    rt: Runtime,
    thread: Thread,
    items: Json,
    maxItems: number | undefined,
  ): Promise<void> | void;
  /**
   * Map: the ResultWriter's task wrote the results; `output` is the state's result, `failure`
   * the error of a Map run that had failed.
   */
  resultsWritten?(
    rt: Runtime,
    thread: Thread,
    output: Json,
    failure: { error: string; cause?: string } | undefined,
  ): Promise<void> | void;
  /** A branch or iteration of this state finished. */
  childSucceeded?(rt: Runtime, parent: Thread, child: Thread, output: Json): Promise<void> | void;
  childFailed?(
    rt: Runtime,
    parent: Thread,
    child: Thread,
    error: string,
    cause: string | undefined,
  ): Promise<void> | void;
}
