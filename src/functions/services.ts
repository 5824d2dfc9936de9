/**
 * What an engine of the CLI runs with: Strand's pipeline functions and the job cache, over the
 * home's store and results database (opened on first use, so plain ASL runs create neither).
 */
import type { LocalBatch } from '../batch/local-batch.js';
import type { JobCache } from '../engine/batch-integration.js';
import type { LambdaFunction } from '../engine/integrations.js';
import type { ResultsSink } from '../results/sink.js';
import { SqliteResults } from '../results/sqlite.js';
import { openStore } from '../storage/store.js';
import type { ObjectStore } from '../storage/store.js';
import { pipelineFunctions, pipelineJobCache } from './pipeline-functions.js';

export interface PipelineServices {
  functions: Record<string, LambdaFunction>;
  jobCache: JobCache;
  /** Called once the engine is open: the functions find jobs through its Batch. */
  attach(batch: () => LocalBatch | undefined): void;
  /** The results database (opened now if it was not yet). */
  results(): ResultsSink;
  close(): Promise<void>;
}

/** The services of one home. */
export function pipelineServices(home: string): PipelineServices {
  let sink: SqliteResults | undefined;
  let batch: () => LocalBatch | undefined = () => undefined;
  const stores = new Map<string, ObjectStore>();
  const results = (): SqliteResults => (sink ??= SqliteResults.inHome(home));
  const lazy: ResultsSink = {
    upsertStep: (row) => results().upsertStep(row),
    putMetrics: (key, table) => results().putMetrics(key, table),
    listSteps: (filter) => results().listSteps(filter),
    listMetrics: (pipeline, step, filter) => results().listMetrics(pipeline, step, filter),
    close: async () => {
      await sink?.close();
      sink = undefined;
    },
  };
  const options = {
    store: (url: string) => {
      let s = stores.get(url);
      if (!s) stores.set(url, (s = openStore(url, { home })));
      return s;
    },
    results: lazy,
    batch: () => batch(),
  };
  return {
    functions: pipelineFunctions(options),
    jobCache: pipelineJobCache(options),
    attach(b) {
      batch = b;
    },
    results,
    close: () => lazy.close(),
  };
}
