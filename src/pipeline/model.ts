/**
 * The normalised pipeline model: what `pipeline.yaml` means once it has been parsed, checked
 * and had its defaults applied. The loader produces it; the compiler consumes it. Sizes are
 * MiB, durations seconds, so nothing downstream parses units again.
 */

/** Resources and failure policy of one job (after `defaults:` were applied). */
export interface ResourceSpec {
  /** vCPUs; with a range (`vcpus: 1-4`), its top, and `vcpusMin` its low end. */
  vcpus: number;
  vcpusMin?: number;
  /** Memory in MiB; with a range (`memory: 2GiB-8GiB`), its top, and `memoryMinMiB` its low end. */
  memoryMiB: number;
  memoryMinMiB?: number;
  /** Extra attempts after the first (AWS Batch retryStrategy.attempts = retry + 1). */
  retry: number;
  /** Attempt timeout in seconds; undefined = none. */
  timeoutSeconds?: number;
}

/** One container invocation: a step without substeps, or one substep. */
export interface JobSpec extends ResourceSpec {
  /** `qc` for a step, `annotate.genes` for a substep. */
  name: string;
  image: string;
  /** argv; `$NAME` / `${NAME}` tokens are references to declared variables (see `vars`). */
  command: string[];
  /** Extra environment given to the tool; values may reference variables too. */
  env: Record<string, string>;
  /**
   * Declared outputs: variable name → path relative to the job's working directory
   * (`QC_R1: out/r1.fq.gz`). Later steps see each as an environment variable holding the
   * published location.
   */
  outputs: Record<string, string>;
  /**
   * Where the tool's standard output goes, relative to the job's working directory (for tools
   * that only print their results, like `mash dist` or `barrnap`); undefined = the job's log.
   */
  stdout?: string;
  /** Every variable name the command and env refer to, in first-use order. */
  vars: string[];
  /**
   * Values taken when an attempt starts, into the job's environment only (AWS Batch's
   * `containerProperties.secrets`), sorted by name; `defaults:`, then the step, then the
   * substep, a later one replacing an earlier one of the same name.
   */
  secrets: SecretSpec[];
  /** Source position of the job's key, for messages. */
  at: SourcePos;
}

/**
 * One secret: the environment variable it becomes and where its value comes from — `env:NAME`
 * (Strand's own environment), `file:/abs/path`, or an AWS Secrets Manager or SSM Parameter
 * Store ARN. Only this reference is ever recorded, never the value.
 */
export interface SecretSpec {
  name: string;
  valueFrom: string;
  /** Where it was written, for messages. */
  at: SourcePos;
}

/** A pipeline step: one job, or substeps run in sequence or in parallel. */
export interface StepSpec {
  name: string;
  /** `sample`: once per sample (inside the Map); `all`: once after every sample (aggregate). */
  scope: 'sample' | 'all';
  /** Exactly one job for a plain step; one per substep otherwise. */
  jobs: JobSpec[];
  /** True when the step was written with `substeps:`. */
  hasSubsteps: boolean;
  /** Substeps run side by side (Parallel) instead of one after another. */
  parallel: boolean;
  /**
   * The steps this one waits for, in the pipeline's order: those whose outputs it reads and
   * those named under `after:`. An aggregate step's include the per-sample steps it reads.
   */
  needs: string[];
  /** The steps named under `after:` (also in `needs`). */
  after: string[];
  at: SourcePos;
}

/** Where the samples come from. */
export type SamplesSource =
  | { kind: 'sheet'; path: string; at: SourcePos }
  | { kind: 'inline'; rows: SampleRow[]; at: SourcePos }
  | { kind: 'none' };

/** One sample: its id and its columns (each becomes an environment variable). */
export interface SampleRow {
  id: string;
  values: Record<string, string>;
}

/** A `results:` entry: which file of which step becomes rows in the results database. */
export interface ResultSpec {
  /** Step (or `step.substep`) whose output it reads. */
  step: string;
  /** Path relative to that job's working directory. */
  from: string;
  format: 'tsv' | 'csv' | 'json';
  /**
   * Declared column types; columns not listed are inferred (integer, real, text). For JSON,
   * keys may be dotted paths into the document (`summary.after_filtering.total_reads`).
   */
  columns: Record<string, 'integer' | 'real' | 'text'>;
  /** Column names of a tsv/csv file that has no header line of its own. */
  header?: string[];
  at: SourcePos;
}

export interface SourcePos {
  file: string;
  line: number;
  column: number;
}

/** A whole pipeline. */
export interface PipelineSpec {
  name: string;
  /** Absolute path of pipeline.yaml. */
  file: string;
  description?: string;
  samples: SamplesSource;
  /** Parameters with their defaults (all strings: they reach tools as env vars). */
  params: Record<string, string>;
  /** How many samples run at once (Map MaxConcurrency); 0 = no limit. */
  maxConcurrency: number;
  /** Let other samples finish when one fails (Map ToleratedFailurePercentage 100). */
  continueOnFailure: boolean;
  /** What jobs run on unless the run says otherwise (`executor:`). */
  executor?: 'local' | 'podman' | 'docker';
  steps: StepSpec[];
  results: ResultSpec[];
}
