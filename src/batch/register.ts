/**
 * Job definitions: registering them only when they changed, so reruns add no revisions, and
 * what a submission of one resolves to.
 */
import type { LocalBatch } from './local-batch.js';
import type { JobDefinition, RegisterJobDefinitionRequest, SubmitJobRequest } from './types.js';

/**
 * The container a SubmitJob request runs, as AWS Batch resolves it: the definition's parameters
 * overridden by the request's; each command item that is exactly `Ref::name` of a known
 * parameter replaced by its value; the definition's environment overridden by the request's.
 */
export function resolveContainer(
  def: Pick<JobDefinition, 'parameters' | 'containerProperties'>,
  req: Pick<SubmitJobRequest, 'parameters' | 'containerOverrides'>,
): {
  parameters: Record<string, string>;
  image?: string;
  command: string[];
  environment: Map<string, string>;
} {
  const parameters = { ...(def.parameters ?? {}), ...(req.parameters ?? {}) };
  const cp = def.containerProperties;
  const o = req.containerOverrides ?? {};
  const command = (o.command ?? cp.command ?? []).map((arg) => {
    const name = /^Ref::([A-Za-z0-9_]+)$/.exec(arg)?.[1];
    return name !== undefined && Object.hasOwn(parameters, name) ? parameters[name] : arg;
  });
  const environment = new Map<string, string>();
  for (const kv of [...(cp.environment ?? []), ...(o.environment ?? [])])
    environment.set(kv.name, kv.value);
  return { parameters, image: cp.image, command, environment };
}

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
