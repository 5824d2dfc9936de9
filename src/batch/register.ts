/** Registering job definitions only when they changed, so reruns add no revisions. */
import type { LocalBatch } from './local-batch.js';
import type { RegisterJobDefinitionRequest } from './types.js';

/** Registers each definition unless its latest ACTIVE revision is the same. */
export function registerIfChanged(batch: LocalBatch, defs: RegisterJobDefinitionRequest[]): void {
  const comparable = (d: RegisterJobDefinitionRequest) =>
    JSON.stringify({
      c: d.containerProperties,
      p: d.parameters ?? null,
      r: d.retryStrategy ?? null,
      t: d.timeout ?? null,
      g: d.tags ?? null,
    });
  for (const def of defs) {
    const latest = batch
      .describeJobDefinitions(def.jobDefinitionName)
      .filter((d) => d.status === 'ACTIVE')
      .sort((a, b) => b.revision - a.revision)[0];
    if (!latest || comparable(latest) !== comparable(def)) batch.registerJobDefinition(def);
  }
}
