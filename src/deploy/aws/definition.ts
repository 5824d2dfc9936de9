/**
 * The state machine `strand deploy aws` puts on Step Functions is the ASL `strand compile`
 * prints, byte for byte, except where the compiled definition names a resource: the job queue,
 * each job definition and each of Strand's functions. Those names become `${…}` placeholders
 * that CloudFormation fills with the deployed resources' ARNs (`DefinitionSubstitutions`), so the
 * definition stays the compiled one and the ARNs, which exist only once the stack does, come from
 * the template. Pure: no CDK here, so the CLI and the tests can use it without loading it.
 */
import type { Json, JsonObject, StateMachineDefinition } from '../../asl/types.js';
import { FUNCTIONS } from '../../pipeline/contract.js';

const BATCH_RESOURCES = /^arn:aws:states:::batch:submitJob(\.sync)?$/;
const LAMBDA_RESOURCE = /^arn:aws:states:::lambda:invoke$/;

/** The placeholders of a definition and what each stands for. */
export interface DefinitionPlaceholders {
  /** The definition as text, placeholders in place of the names. */
  text: string;
  /** Placeholder key of the job queue every job is submitted to. */
  jobQueue: string;
  /** Placeholder key by job definition name (`microbe-genome-qc`). */
  jobDefinitions: Map<string, string>;
  /** Placeholder key by function name (`strand-preflight`). */
  functions: Map<string, string>;
}

/** A definition naming something the stack does not make, or holding text CloudFormation would read as a placeholder. */
export class DefinitionPlaceholderError extends Error {
  readonly code = 'DEPLOY_DEFINITION';
  constructor(message: string) {
    super(message);
    this.name = 'DefinitionPlaceholderError';
  }
}

/** `annotate.genes` → `AnnotateGenes`: placeholder keys keep to letters and digits. */
function pascal(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter((w) => w !== '')
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');
}

/** A key of its own for each name: the first taker of a spelling keeps it, later ones get a number. */
function keysFor(prefix: string, names: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const used = new Set<string>();
  for (const name of names) {
    let key = `${prefix}${pascal(name)}`;
    for (let n = 2; used.has(key); n++) key = `${prefix}${pascal(name)}${n}`;
    used.add(key);
    out.set(name, key);
  }
  return out;
}

/**
 * The compiled definition with `${…}` placeholders for the job queue `jobQueue`, the job
 * definitions `jobDefinitionNames` and Strand's four functions. Throws DefinitionPlaceholderError
 * for a name it has no placeholder for, and for a `${` already in the text: CloudFormation would
 * take it for a placeholder of its own.
 */
export function withPlaceholders(
  definition: StateMachineDefinition,
  jobQueue: string,
  jobDefinitionNames: string[],
): DefinitionPlaceholders {
  const original = JSON.stringify(definition);
  const at = original.indexOf('${');
  if (at >= 0)
    throw new DefinitionPlaceholderError(
      `the compiled state machine holds the text "${original.slice(at, at + 40)}…", which CloudFormation would read as a placeholder; write the literal $ in pipeline.yaml some other way`,
    );
  const queueKey = 'JobQueue';
  const jobDefinitions = keysFor('JobDefinition', jobDefinitionNames);
  const functions = keysFor('Function', Object.values(FUNCTIONS));
  const placeholder = (key: string) => `\${${key}}`;
  const rewrite = (node: Json, where: string): Json => {
    if (Array.isArray(node)) return node.map((n, i) => rewrite(n, `${where}/${i}`));
    if (node === null || typeof node !== 'object') return node;
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(node)) out[k] = rewrite(v, `${where}/${k}`);
    const resource = typeof out.Resource === 'string' ? out.Resource : '';
    const params = out.Parameters;
    if (out.Type !== 'Task' || !params || typeof params !== 'object' || Array.isArray(params))
      return out;
    if (BATCH_RESOURCES.test(resource)) {
      const queue = params.JobQueue;
      const jobDefinition = params.JobDefinition;
      if (queue !== jobQueue)
        throw new DefinitionPlaceholderError(
          `${where}: JobQueue ${JSON.stringify(queue)} is not the stack's queue ${JSON.stringify(jobQueue)}`,
        );
      const key = typeof jobDefinition === 'string' ? jobDefinitions.get(jobDefinition) : undefined;
      if (!key)
        throw new DefinitionPlaceholderError(
          `${where}: JobDefinition ${JSON.stringify(jobDefinition)} is none of the pipeline's (${jobDefinitionNames.join(', ')})`,
        );
      out.Parameters = {
        ...params,
        JobQueue: placeholder(queueKey),
        JobDefinition: placeholder(key),
      };
    } else if (LAMBDA_RESOURCE.test(resource)) {
      const fn = params.FunctionName;
      const key = typeof fn === 'string' ? functions.get(fn) : undefined;
      if (!key)
        throw new DefinitionPlaceholderError(
          `${where}: FunctionName ${JSON.stringify(fn)} is none of Strand's functions (${[...functions.keys()].join(', ')})`,
        );
      out.Parameters = { ...params, FunctionName: placeholder(key) };
    }
    return out;
  };
  const rewritten = rewrite(definition as unknown as JsonObject, '');
  return { text: JSON.stringify(rewritten), jobQueue: queueKey, jobDefinitions, functions };
}

/**
 * `${key}` replaced by `values[key]`, as CloudFormation does with `DefinitionSubstitutions`
 * (values are ARNs: nothing in them needs escaping in JSON). Throws for a placeholder with no value.
 */
export function substitute(text: string, values: Record<string, string>): string {
  return text.replace(/\$\{([A-Za-z0-9_]+)\}/g, (_m, key: string) => {
    const value = values[key];
    if (value === undefined)
      throw new DefinitionPlaceholderError(`no value for the placeholder \${${key}}`);
    return value;
  });
}
