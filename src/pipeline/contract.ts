/**
 * The runtime contract of a compiled pipeline: the names the state machine, Strand's functions
 * and the CLI must agree on — the functions `lambda:invoke` calls, the settings carried as
 * `$.run`, the tags every job carries, the sample name of steps over all samples, the states the
 * CLI looks for, and the errors a run ends with. One module, so none of them drifts apart.
 */

/** Names of Strand's own functions, invoked through `lambda:invoke`. */
export const FUNCTIONS = {
  preflight: 'strand-preflight',
  publish: 'strand-publish',
  syncFailure: 'strand-sync-failure',
  collect: 'strand-collect',
} as const;

/** The tags of every job of a pipeline (on the job definition and on each SubmitJob). */
export const TAG = {
  pipeline: 'strand:pipeline',
  step: 'strand:step',
  /** The sample, or AGGREGATE_SAMPLE for a step over all samples. */
  sample: 'strand:sample',
  execution: 'strand:execution',
  /** The store URL outputs go to. */
  store: 'strand:store',
  /** The run's cache mode (RunSettings.cache). */
  cache: 'strand:cache',
  /** Set on a job answered from the cache instead of run. */
  cached: 'strand:cached',
} as const;

/**
 * The environment variable of every step over all samples holding the digest of the per-sample
 * outputs it reads (see `collectedDigest`): its jobs' cache sees a sample's changed output
 * through it, and not the change of one it does not read.
 */
export const INPUTS_DIGEST = 'STRAND_INPUTS_DIGEST';

/** The variable in `$.vars` that holds INPUTS_DIGEST for the jobs of aggregate step `step`. */
export function inputsDigestVar(step: string): string {
  return `${INPUTS_DIGEST}_${stepKey(step)}`;
}

/** The sample name of a step that runs once over all samples (and its store folder). */
export { AGGREGATE_SAMPLE } from '../results/sink.js';

/**
 * Top-level states the CLI refers to: `Samples`, where a redrive of failed samples starts again
 * (the Map over samples; or, when the aggregate steps run beside it, the Task that starts the
 * sample ledger before it), and the collect after the samples, whose output holds the run's
 * notes.
 */
export const STATE = { samples: 'Samples', collect: 'Collect' } as const;

/** The errors a pipeline run ends with, by what happened. */
export const ERROR = {
  /** One or more samples failed; the others finished (the run's final Fail state). */
  samplesFailed: 'Strand.SamplesFailed',
  /** A step failed (the cause names it, the sample and the log). */
  stepFailed: 'Strand.StepFailed',
  /** A job no compute environment can ever fit (not retried). */
  jobNeverFits: 'Strand.JobNeverFits',
  /** Stopped with Ctrl-C. */
  interrupted: 'Strand.Interrupted',
  /** A run sliced with --from whose inputs are not in the store. */
  missingInputs: 'Strand.MissingInputs',
  cacheMiss: 'Strand.CacheMiss',
  publishFailed: 'Strand.PublishFailed',
} as const;

/** Settings of one run, carried through the state machine as `$.run`. */
export interface RunSettings {
  pipeline: string;
  /** The pipeline file, for hints. */
  file?: string;
  execution: string;
  store: string;
  /** '' when not sliced (as given, for messages). */
  from: string;
  to: string;
  /**
   * The steps a sliced run leaves out, by `stepKey`: each step's entry Choice passes over
   * those present (`IsPresent`), so one definition serves every slice.
   */
  skip?: Record<string, boolean>;
  /**
   * 'true' | 'false' | 'deep' (a Batch tag value): with 'deep' a cache hit also checks the
   * sha256 of every stored file, not only that each is there with its size.
   */
  cache: string;
  aggregates?: boolean;
  failed?: number;
  failureMessage?: string;
  /** The samples whose outputs the steps over all samples get (set by collect). */
  collected?: string[];
  /** What the run's output should tell the user (set by collect). */
  notes?: string[];
}

/**
 * A step's key under `$.run.skip`: JSONPath implementations disagree on `-` in a dotted name, so
 * the key keeps to `[a-z0-9_]`, one-to-one (`_` → `__`, `-` → `_h`: `a-b` → `a_hb`).
 */
export function stepKey(name: string): string {
  return name.replace(/[_-]/g, (c) => (c === '_' ? '__' : '_h'));
}

/**
 * The per-sample steps whose outputs aggregate step `step` reads (its needs among them): the
 * ones its INPUTS_DIGEST covers.
 */
export function perSampleNeeds<S extends { name: string; scope: string; needs: readonly string[] }>(
  steps: readonly S[],
  step: S,
): S[] {
  return steps.filter((s) => s.scope === 'sample' && step.needs.includes(s.name));
}
