/**
 * Map: runs the ItemProcessor once per item, at most MaxConcurrency at a time; its result
 * is the array of iteration outputs. DISTRIBUTED mode runs the same way (inline) here. An
 * ItemReader and a ResultWriter are tasks the driver carries out: reading the items before the
 * iterations, writing their results after them (see result-writer.ts).
 */
import { StatesError } from '../errors.js';
import type { IterationRuns, Pending, Thread } from '../execution.js';
import { evaluateJsonataTemplate } from '../jsonata.js';
import { readPath } from '../path.js';
import { evaluatePayloadTemplate } from '../payload.js';
import { indexRanges } from '../redrive.js';
import {
  mapRunNames,
  previewResults,
  resultWriterOutput,
  resultWriterRequest,
  writerConfigOf,
  type IterationRun,
  type IterationStatus,
  type MapRunNames,
} from '../result-writer.js';
import type { Runtime } from '../runtime.js';
import type { Json, JsonObject, MapState } from '../types.js';
import { readIntegerField } from './common.js';
import type { StateHandler } from './handler.js';

type MapPending = Extract<Pending, { kind: 'map' }>;

function describeType(value: Json): string {
  return JSON.stringify(value);
}

function mapDef(rt: Runtime, thread: Thread): MapState {
  return rt.scopeDefinition(thread.scope).States[thread.state] as MapState;
}

async function readItems(
  rt: Runtime,
  thread: Thread,
  def: MapState,
  effective: Json,
): Promise<Json> {
  if (rt.queryLanguage(def) === 'JSONata') {
    if (def.Items === undefined) return thread.input;
    return evaluateJsonataTemplate(def.Items, rt.jsonataScope(thread), 'Items');
  }
  return def.ItemsPath !== undefined
    ? readPath(def.ItemsPath, rt.pathScope(thread, effective))
    : effective;
}

async function batch(
  rt: Runtime,
  thread: Thread,
  def: MapState,
  items: Json[],
  effective: Json,
): Promise<Json[]> {
  const batcher = def.ItemBatcher;
  if (!batcher) return items;
  const maxItems =
    (await readIntegerField(
      rt,
      thread,
      effective,
      batcher.MaxItemsPerBatch,
      batcher.MaxItemsPerBatchPath,
      'MaxItemsPerBatch',
    )) ?? Number.MAX_SAFE_INTEGER;
  const maxBytes =
    (await readIntegerField(
      rt,
      thread,
      effective,
      batcher.MaxInputBytesPerBatch,
      batcher.MaxInputBytesPerBatchPath,
      'MaxInputBytesPerBatch',
    )) ?? 262144;
  let batchInput: Json | undefined;
  if (batcher.BatchInput !== undefined) {
    batchInput =
      rt.queryLanguage(def) === 'JSONata'
        ? await evaluateJsonataTemplate(batcher.BatchInput, rt.jsonataScope(thread), 'BatchInput')
        : evaluatePayloadTemplate(
            batcher.BatchInput,
            rt.pathScope(thread, effective),
            'BatchInput',
          );
  }
  const batches: Json[] = [];
  let current: Json[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = JSON.stringify(item).length;
    if (current.length > 0 && (current.length >= maxItems || bytes + size > maxBytes)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches.map((b) => {
    const obj: JsonObject = {};
    if (batchInput !== undefined) obj.BatchInput = batchInput;
    obj.Items = b;
    return obj;
  });
}

async function iterationInput(
  rt: Runtime,
  thread: Thread,
  def: MapState,
  pending: MapPending,
  index: number,
): Promise<Json> {
  const value = pending.items[index];
  const selector = def.ItemSelector ?? def.Parameters;
  if (selector === undefined) return value;
  const context = rt.context(thread);
  context.Map = { Item: { Index: index, Value: value } };
  if (rt.queryLanguage(def) === 'JSONata') {
    const scope = rt.jsonataScope(thread);
    scope.states.context = context;
    return evaluateJsonataTemplate(selector, scope, 'ItemSelector');
  }
  const base = rt.pathScope(thread, pending.effectiveInput);
  return evaluatePayloadTemplate(
    selector,
    { input: pending.effectiveInput, context, variable: base.variable, random: base.random },
    def.ItemSelector !== undefined ? 'ItemSelector' : 'Parameters',
  );
}

/**
 * How many iterations run at once when MaxConcurrency is 0 ("no limit"): Step Functions runs at
 * most 40 iterations of an inline Map at a time and up to 10,000 child workflows of a
 * distributed one. Keeping to that also bounds the live threads of a very large Map.
 */
function unlimitedConcurrency(def: MapState): number {
  const mode = (def.ItemProcessor as { ProcessorConfig?: { Mode?: string } } | undefined)
    ?.ProcessorConfig?.Mode;
  return mode === 'DISTRIBUTED' ? 10_000 : 40;
}

async function launch(
  rt: Runtime,
  thread: Thread,
  def: MapState,
  pending: MapPending,
): Promise<void> {
  const field = def.ItemProcessor ? 'ItemProcessor' : 'Iterator';
  while (
    pending.next < pending.items.length &&
    pending.runningCount < (pending.maxConcurrency || unlimitedConcurrency(def))
  ) {
    if (pending.skip) {
      // Written by an older Strand: the indices left to skip, as ranges.
      pending.skipRanges = indexRanges(pending.skip.slice(pending.skipAt));
      pending.skipAt = 0;
      delete pending.skip;
    }
    const skip = pending.skipRanges;
    if (skip && pending.skipAt! < skip.length && skip[pending.skipAt!] <= pending.next) {
      // A redrive passes over the iterations that had succeeded, a range at a time.
      const end = skip[pending.skipAt! + 1];
      if (end > pending.next) {
        if (pending.runs) pending.runs.state.fill(SUCCEEDED, pending.next, end);
        pending.completed += end - pending.next;
        pending.next = end;
      }
      pending.skipAt! += 2;
      continue;
    }
    const index = pending.next++;
    const from = pending.resume?.[String(index)];
    if (from) delete pending.resume![String(index)];
    const input = await iterationInput(rt, thread, def, pending, index);
    const runs = pending.runs;
    if (runs) {
      runs.state[index] = RUNNING;
      runs.start[index] = rt.now();
      if (runs.input) runs.input[index] = input;
    }
    rt.emit(thread, 'MapIterationStarted', {
      mapIterationStartedEventDetails: { name: thread.state, index },
    });
    const child = rt.spawn(thread, rt.scopeKey(thread, field), index, input, undefined, from);
    pending.running[String(index)] = child.id;
    pending.runningCount++;
  }
}

async function finishIfDone(rt: Runtime, thread: Thread, pending: MapPending): Promise<void> {
  if (pending.completed + pending.failed < pending.items.length) return;
  const def = mapDef(rt, thread);
  const writer = def.ResultWriter;
  if (writer?.Resource !== undefined) {
    rt.recordProgress(thread);
    rt.setPending(thread, undefined);
    await requestWrite(rt, thread, def, pending, undefined);
    return;
  }
  rt.setPending(thread, undefined);
  rt.emit(thread, 'MapStateSucceeded');
  const result = writer?.WriterConfig
    ? previewResults(
        mapRunOf(rt, thread, def),
        await iterationRuns(rt, thread, def, pending),
        writerConfigOf(writer.WriterConfig, false),
      )
    : pending.results;
  await rt.completeWithResult(thread, result);
}

// What IterationRuns.state holds for an iteration.
const NOT_STARTED = 0;
const RUNNING = 1;
const SUCCEEDED = 2;
const FAILED = 3;
const ABORTED = 4;

const STATUS: IterationStatus[] = ['PENDING', 'ABORTED', 'SUCCEEDED', 'FAILED', 'ABORTED'];

function newRuns(def: MapState, count: number): IterationRuns {
  const runs: IterationRuns = {
    state: new Array<number>(count).fill(NOT_STARTED),
    start: new Array<number>(count).fill(0),
    stop: new Array<number>(count).fill(0),
  };
  if ((def.ItemSelector ?? def.Parameters) !== undefined)
    runs.input = new Array<Json>(count).fill(null);
  return runs;
}

/** The Map run of the state's current entry (and attempt: a Retry starts another run). */
function mapRunOf(rt: Runtime, thread: Thread, def: MapState): MapRunNames {
  const ctx = rt.context(thread);
  const execution = ctx.Execution as JsonObject;
  const machine = ctx.StateMachine as JsonObject;
  const attempt = thread.retries.reduce((a, b) => a + b, 0);
  return mapRunNames(
    execution.Id as string,
    machine.Name as string,
    def.Label ?? thread.state,
    `${thread.id}\n${thread.enteredEventId}\n${attempt}`,
  );
}

/** What each iteration did, for the ResultWriter's records. */
async function iterationRuns(
  rt: Runtime,
  thread: Thread,
  def: MapState,
  pending: MapPending,
): Promise<IterationRun[]> {
  const runs = pending.runs ?? newRuns(def, pending.items.length);
  const out: IterationRun[] = [];
  for (let index = 0; index < pending.items.length; index++) {
    const state = runs.state[index];
    const run: IterationRun = {
      index,
      status: STATUS[state],
      // An iteration not started in this run (pending, or kept by a redrive) has no input
      // recorded: it is what it would have been given.
      input: !runs.input
        ? pending.items[index]
        : runs.start[index] === 0
          ? await iterationInput(rt, thread, def, pending, index)
          : runs.input[index],
    };
    if (state === SUCCEEDED) run.output = pending.results[index];
    if (state === FAILED) {
      const failure = pending.results[index] as { Error?: string; Cause?: string } | null;
      if (typeof failure?.Error === 'string') run.error = failure.Error;
      if (typeof failure?.Cause === 'string') run.cause = failure.Cause;
    }
    if (runs.start[index] > 0) run.start = runs.start[index];
    if (runs.stop[index] > 0) run.stop = runs.stop[index];
    out.push(run);
  }
  return out;
}

/**
 * Asks the driver to write the results (ResultWriter) as a task. The state's result, once the
 * write succeeds, is known now: it names the manifest. `failure` is the error of a Map run that
 * failed, which the state fails with after its results are written, as a Map run's are.
 */
async function requestWrite(
  rt: Runtime,
  thread: Thread,
  def: MapState,
  pending: MapPending,
  failure: { error: string; cause?: string } | undefined,
): Promise<void> {
  const writer = def.ResultWriter!;
  const jsonata = rt.queryLanguage(def) === 'JSONata';
  const template = jsonata ? writer.Arguments : writer.Parameters;
  const parameters =
    template === undefined
      ? {}
      : jsonata
        ? await evaluateJsonataTemplate(template, rt.jsonataScope(thread), 'ResultWriter/Arguments')
        : evaluatePayloadTemplate(
            template,
            rt.pathScope(thread, pending.effectiveInput),
            'ResultWriter/Parameters',
          );
  const p = (parameters ?? {}) as Record<string, Json>;
  const field = jsonata ? 'Arguments' : 'Parameters';
  if (typeof p.Bucket !== 'string' || p.Bucket === '') {
    throw new StatesError(
      'States.ResultWriterFailed',
      `ResultWriter ${field} need a Bucket (a bucket name); they gave ${describeType(parameters)}`,
    );
  }
  if (p.Prefix !== undefined && typeof p.Prefix !== 'string') {
    throw new StatesError(
      'States.ResultWriterFailed',
      `ResultWriter ${field}.Prefix must be a string, not ${describeType(p.Prefix)}`,
    );
  }
  const request = resultWriterRequest(
    mapRunOf(rt, thread, def),
    p.Bucket,
    p.Prefix ?? '',
    await iterationRuns(rt, thread, def, pending),
    writerConfigOf(writer.WriterConfig, true),
  );
  const output = resultWriterOutput(request);
  rt.invokeTask(thread, writer.Resource!, request, {
    resultWriter: failure ? { output, failure } : { output },
    parameters,
  });
}

/** Asks the driver to read the items (ItemReader) as a task whose result is the item list. */
async function requestItems(
  rt: Runtime,
  thread: Thread,
  def: MapState,
  effective: Json,
): Promise<void> {
  const reader = def.ItemReader!;
  const config: JsonObject = { ...(reader.ReaderConfig ?? {}) };
  const maxItems = await readIntegerField(
    rt,
    thread,
    effective,
    config.MaxItems as number | string | undefined,
    config.MaxItemsPath as string | undefined,
    'MaxItems',
  );
  delete config.MaxItemsPath;
  if (maxItems !== undefined) config.MaxItems = maxItems;
  const jsonata = rt.queryLanguage(def) === 'JSONata';
  const template = jsonata ? reader.Arguments : reader.Parameters;
  const input =
    template === undefined
      ? {}
      : jsonata
        ? await evaluateJsonataTemplate(template, rt.jsonataScope(thread), 'ItemReader/Arguments')
        : evaluatePayloadTemplate(
            template,
            rt.pathScope(thread, effective),
            'ItemReader/Parameters',
          );
  rt.invokeTask(thread, reader.Resource, input, {
    itemReader: maxItems === undefined ? { config } : { config, maxItems },
  });
}

async function startIterations(
  rt: Runtime,
  thread: Thread,
  def: MapState,
  effective: Json,
  raw: Json,
): Promise<void> {
  if (!Array.isArray(raw)) {
    throw new StatesError(
      'States.QueryEvaluationError',
      `Map state input must be an array but was: ${describeType(raw)}`,
    );
  }
  const maxConcurrency =
    (await readIntegerField(
      rt,
      thread,
      effective,
      def.MaxConcurrency,
      def.MaxConcurrencyPath,
      'MaxConcurrency',
    )) ?? 0;
  const toleratedCount =
    (await readIntegerField(
      rt,
      thread,
      effective,
      def.ToleratedFailureCount,
      def.ToleratedFailureCountPath,
      'ToleratedFailureCount',
    )) ?? 0;
  if (toleratedCount < 0)
    throw new StatesError('States.Runtime', 'ToleratedFailureCount cannot be negative.');
  const toleratedPercentage =
    (await readIntegerField(
      rt,
      thread,
      effective,
      def.ToleratedFailurePercentage,
      def.ToleratedFailurePercentagePath,
      'ToleratedFailurePercentage',
      'float',
    )) ?? 0;
  if (toleratedPercentage < 0 || toleratedPercentage > 100) {
    throw new StatesError(
      'States.Runtime',
      'ToleratedFailurePercentage must be between 0 and 100.',
    );
  }
  const items = await batch(rt, thread, def, raw, effective);
  rt.emit(thread, 'MapStateStarted', { mapStateStartedEventDetails: { length: items.length } });
  const pending: MapPending = {
    kind: 'map',
    effectiveInput: effective,
    items,
    next: 0,
    running: {},
    runningCount: 0,
    results: new Array(items.length).fill(null),
    completed: 0,
    failed: 0,
    toleratedCount,
    toleratedPercentage,
    maxConcurrency,
    succeeded: [],
  };
  if (def.ResultWriter) pending.runs = newRuns(def, items.length);
  // A redrive does not run again the iterations that had succeeded, and continues each one
  // that had not from where it stopped.
  const progress = thread.resume;
  if (progress && progress.state === thread.state && progress.results.length === items.length) {
    pending.results = progress.results;
    pending.skipRanges = progress.succeeded;
    pending.skipAt = 0;
    if (Object.keys(progress.children).length > 0) pending.resume = { ...progress.children };
  }
  thread.resume = undefined;
  rt.setPending(thread, pending);
  if (items.length === 0) {
    await finishIfDone(rt, thread, pending);
    return;
  }
  await launch(rt, thread, def, pending);
  // On a redrive every remaining item may have been skipped.
  await finishIfDone(rt, thread, pending);
}

export const mapState: StateHandler<MapState> = {
  async run(rt, thread, def) {
    const jsonata = rt.queryLanguage(def) === 'JSONata';
    const effective = jsonata ? thread.input : rt.effectiveInput(thread, undefined);
    if (def.ItemReader) {
      await requestItems(rt, thread, def, effective);
      return;
    }
    await startIterations(rt, thread, def, effective, await readItems(rt, thread, def, effective));
  },
  async itemsRead(rt, thread, items, maxItems) {
    const def = mapDef(rt, thread);
    const jsonata = rt.queryLanguage(def) === 'JSONata';
    const effective = jsonata ? thread.input : rt.effectiveInput(thread, undefined);
    const list =
      Array.isArray(items) && maxItems !== undefined && maxItems > 0
        ? items.slice(0, maxItems)
        : items;
    await startIterations(rt, thread, def, effective, list);
  },

  async resultsWritten(rt, thread, output, failure) {
    if (failure) {
      rt.emit(thread, 'MapStateFailed');
      await rt.handleError(thread, failure.error, failure.cause);
      return;
    }
    rt.emit(thread, 'MapStateSucceeded');
    await rt.completeWithResult(thread, output);
  },

  async childSucceeded(rt, parent, child, output) {
    const pending = parent.pending;
    if (pending?.kind !== 'map') return;
    const index = child.index!;
    rt.emit(parent, 'MapIterationSucceeded', {
      mapIterationSucceededEventDetails: { name: parent.state, index },
    });
    if (pending.runs) {
      pending.runs.state[index] = SUCCEEDED;
      pending.runs.stop[index] = rt.now();
    }
    pending.results[index] = output;
    pending.succeeded.push(index);
    pending.completed++;
    delete pending.running[String(index)];
    pending.runningCount--;
    await launch(rt, parent, mapDef(rt, parent), pending);
    await finishIfDone(rt, parent, pending);
  },
  async childFailed(rt, parent, child, error, cause) {
    const pending = parent.pending;
    if (pending?.kind !== 'map') return;
    const index = child.index!;
    rt.emit(parent, 'MapIterationFailed', {
      mapIterationFailedEventDetails: { name: parent.state, index },
    });
    const runs = pending.runs;
    if (runs) {
      runs.state[index] = FAILED;
      runs.stop[index] = rt.now();
    }
    const errorOutput: JsonObject = { Error: error };
    if (cause !== undefined) errorOutput.Cause = cause;
    pending.results[index] = errorOutput;
    pending.failed++;
    delete pending.running[String(index)];
    pending.runningCount--;
    pending.firstFailure ??= cause === undefined ? { error } : { error, cause };
    const total = pending.items.length;
    const tolerated =
      pending.failed <= pending.toleratedCount ||
      (pending.toleratedPercentage > 0 &&
        (pending.failed / total) * 100 <= pending.toleratedPercentage);
    if (!tolerated) {
      rt.recordProgress(parent, child);
      if (runs) {
        for (const i of Object.keys(pending.running)) {
          runs.state[Number(i)] = ABORTED;
          runs.stop[Number(i)] = rt.now();
        }
      }
      rt.abortThreads(Object.values(pending.running));
      rt.setPending(parent, undefined);
      const thresholdSet = pending.toleratedCount > 0 || pending.toleratedPercentage > 0;
      const failure = thresholdSet
        ? {
            error: 'States.ExceedToleratedFailureThreshold',
            cause: 'The specified tolerated failure threshold was exceeded',
          }
        : cause === undefined
          ? { error }
          : { error, cause };
      const def = mapDef(rt, parent);
      if (def.ResultWriter?.Resource !== undefined) {
        // A failed Map run still writes its results (PENDING: the iterations never started).
        await requestWrite(rt, parent, def, pending, failure);
        return;
      }
      rt.emit(parent, 'MapStateFailed');
      await rt.handleError(parent, failure.error, failure.cause);
      return;
    }
    // Tolerated, but still unsuccessful: a later redrive of this Map continues it.
    (pending.failedPoints ??= {})[String(index)] = rt.redrivePointOf(child);
    await launch(rt, parent, mapDef(rt, parent), pending);
    await finishIfDone(rt, parent, pending);
  },
};
