/**
 * Loads pipeline.yaml into a PipelineSpec: YAML syntax, then the shape (zod), then the rules
 * that need the whole file (names, units, variables, step order, results), then the samples.
 * Every problem is collected with its file, line and column before anything is thrown.
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, posix, resolve, sep } from 'node:path';
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  type Document,
  type Node,
} from 'yaml';
import { z } from 'zod';
import { closest, didYouMean } from '../asl/suggest.js';
import { PipelineError, shownPath, sortProblems, type PipelineProblem } from './errors.js';
import type {
  JobSpec,
  PipelineSpec,
  ResourceSpec,
  ResultSpec,
  SampleRow,
  SamplesSource,
  SecretSpec,
  SourcePos,
  StepSpec,
} from './model.js';
import { limitProblems, NAME_MAX, PATH_MAX } from './limits.js';
import {
  checkSampleTable,
  loadSamples,
  missingInputs,
  resolveValue,
  selectSamples,
  specialInputProblem,
  SPECIAL_INPUT_HINT,
  type SampleCell,
  type SamplePositions,
  type SampleTable,
} from './samples.js';
import { findCycle } from './dag.js';
import { SIZE_VARIABLES } from '../batch/elastic.js';
import { PIPELINE_NAME, SECRET_SOURCE, STEP_NAME, VAR_NAME, pipelineSchema } from './schema.js';
import {
  parseDuration,
  parseRetry,
  parseSizeRange,
  parseVcpuRange,
  type UnitResult,
} from './units.js';
import { templateParts } from './template.js';

export { templateParts, type TemplatePart } from './template.js';

/** Command-line overrides applied while loading. */
export interface LoadOptions {
  /**
   * A sample sheet to use instead of the pipeline's (a value ending in .csv/.tsv/.txt/.tab or
   * containing a `/`), or a comma-separated subset of sample ids (`S1,S7`).
   */
  samples?: string;
  /** Parameter values (`--param NAME=value`); each must be declared under `params:`. */
  params?: Record<string, string>;
  /**
   * The largest compute environment the jobs can run on: a range of vCPUs or memory whose low
   * end is above it can never run, and is an error at its value.
   */
  capacity?: { vcpus: number; memoryMiB: number; where: string };
  /**
   * The local directory outputs will be published to (a `file://` store), whose path counts
   * against Linux's PATH_MAX and ARG_MAX; without it those checks leave it out.
   */
  store?: string;
  /**
   * The pipeline is about to run on the local engine: every secret must be one it can read now
   * (no AWS ARN; the `env:` variable set, the `file:` readable).
   */
  runLocally?: boolean;
  /**
   * `false`: the samples sheet is not read (for commands about the steps alone, such as
   * `strand images`, which work before the sheet exists); the pipeline then has no samples.
   */
  readSheet?: boolean;
  /**
   * A sample whose sheet names an input file that is not there is left out (listed in
   * `skipped`) instead of being a problem.
   */
  skipMissing?: boolean;
}

/** A loaded pipeline and the samples this run covers (after any `--samples` subset). */
export interface LoadedPipeline {
  spec: PipelineSpec;
  samples: SampleRow[];
  /** Samples left out because an input file they name is not there (`skipMissing`). */
  skipped?: { id: string; reason: string }[];
}

type Seg = string | number;
type Obj = Record<string, unknown>;

const BUILTIN_RESOURCES: ResourceSpec = { vcpus: 1, memoryMiB: 1024, retry: 0 };
const MAX_STEP_NAME = 32;
const MAX_PIPELINE_NAME = 64;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isScalarValue(v: unknown): v is string | number | boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

function entries(v: unknown): [string, unknown][] {
  return isObj(v) ? Object.entries(v) : [];
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/** `steps.qc.command[3]`; keys that are not plain words are quoted. */
function formatPath(path: Seg[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z0-9_.-]+$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

function isReserved(name: string): boolean {
  return name === 'SAMPLE' || name.startsWith('STRAND_') || name.startsWith('AWS_');
}

function listNames(names: string[], max = 10): string {
  return names.slice(0, max).join(', ') + (names.length > max ? ', …' : '');
}

/** Positions of YAML nodes by path. */
class Source {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    readonly file: string,
  ) {}

  private find(path: Seg[]): { node: Node | null; key?: Node; found: boolean } {
    let node = this.doc.contents as Node | null;
    let key: Node | undefined;
    for (const seg of path) {
      if (isAlias(node)) node = (node.resolve(this.doc) as Node | undefined) ?? null;
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) return { node, key, found: false };
        key = pair.key as Node;
        node = (pair.value as Node | null) ?? null;
      } else if (isSeq(node) && typeof seg === 'number' && node.items[seg]) {
        key = undefined;
        node = node.items[seg] as Node;
      } else {
        return { node, key, found: false };
      }
    }
    return { node, key, found: true };
  }

  private at(node: Node | null | undefined): SourcePos | undefined {
    if (!node?.range) return undefined;
    const { line, col } = this.lines.linePos(node.range[0]);
    return { file: this.file, line, column: col };
  }

  /**
   * Where a problem about `path` points: the key for `which: 'key'` (unknown keys, names), the
   * value otherwise; a missing key points at its parent's key.
   */
  pos(path: Seg[], which: 'key' | 'value' = 'value'): SourcePos {
    const { node, key, found } = this.find(path);
    const empty = isScalar(node) && node.value === null;
    const chosen =
      found && which === 'value' && node && !empty
        ? node
        : (key ?? (found || !node ? undefined : node));
    return this.at(chosen) ?? this.at(node) ?? { file: this.file, line: 1, column: 1 };
  }

  /** A scalar as written: `1.10` stays "1.10" and `007` stays "007" (tools get strings). */
  text(path: Seg[], value: unknown): string {
    if (typeof value === 'string') return value;
    const { node } = this.find(path);
    if (isScalar(node) && node.type === 'PLAIN' && typeof node.source === 'string') {
      return node.source;
    }
    return value === null || value === undefined ? '' : String(value);
  }

  /** The path of the innermost key whose node contains `offset`, for syntax errors. */
  pathAt(offset: number): Seg[] {
    const path: Seg[] = [];
    let node = this.doc.contents as Node | null;
    for (;;) {
      if (isMap(node)) {
        const pair = node.items.find((p) => {
          const end = (p.value as Node | null)?.range?.[2] ?? (p.key as Node | null)?.range?.[2];
          const start = (p.key as Node | null)?.range?.[0];
          return start !== undefined && end !== undefined && start <= offset && offset <= end;
        });
        if (!pair || !isScalar(pair.key)) return path;
        path.push(String(pair.key.value));
        node = pair.value as Node | null;
      } else if (isSeq(node)) {
        const i = node.items.findIndex((item) => {
          const r = (item as Node).range;
          return r != null && r[0] <= offset && offset <= r[2];
        });
        if (i < 0) return path;
        path.push(i);
        node = node.items[i] as Node;
      } else {
        return path;
      }
    }
  }
}

/** The zod schema at a path, to list the keys an object allows. */
function schemaAt(path: Seg[]): z.ZodType | undefined {
  let s: z.ZodType | undefined = pipelineSchema;
  const unwrap = (t: z.ZodType | undefined): z.ZodType | undefined => {
    while (t instanceof z.ZodOptional || t instanceof z.ZodNullable) t = t.unwrap() as z.ZodType;
    return t;
  };
  for (const seg of path) {
    s = unwrap(s);
    if (s instanceof z.ZodUnion) {
      const options = s.options as z.ZodType[];
      s = options.find((o) =>
        typeof seg === 'number' ? o instanceof z.ZodArray : !(o instanceof z.ZodArray),
      );
      s = unwrap(s);
    }
    if (s instanceof z.ZodObject) s = (s.shape as Record<string, z.ZodType>)[String(seg)];
    else if (s instanceof z.ZodRecord) s = s.valueType as z.ZodType;
    else if (s instanceof z.ZodArray) s = s.element as z.ZodType;
    else return undefined;
  }
  s = unwrap(s);
  if (s instanceof z.ZodUnion) s = (s.options as z.ZodType[]).find((o) => o instanceof z.ZodObject);
  return s;
}

const EXPECTED: Record<string, string> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
  null: 'nothing',
};

class Loader {
  readonly problems: PipelineProblem[] = [];
  /** Paths of keys that an unknown key is probably a misspelling of. */
  readonly misspelt = new Set<string>();
  private columns: string[] = [];
  /** False when the sample sheet could not be read: its columns are unknown. */
  private columnsKnown = true;
  private params: Record<string, string> = {};
  /** Where each parameter's value was written; undefined for `--param`. */
  private readonly paramAt: Record<string, SourcePos | undefined> = {};
  /** Every declared parameter, with or without a default. */
  private paramNames: string[] = [];
  /** Where the samples of this run were written (aligned with the rows `load` returns). */
  private samplePositions: SamplePositions[] = [];
  private defaultSecrets: SecretSpec[] = [];
  /** The document path of each secret, for messages about it. */
  private readonly secretPaths = new WeakMap<SecretSpec, Seg[]>();
  private readonly reported = new Set<string>();
  private readonly outputOwner = new Map<string, { job: string; step: number; sub: number }>();

  constructor(
    private readonly src: Source,
    private readonly absFile: string,
    private readonly options: LoadOptions,
  ) {}

  private report(
    path: Seg[],
    message: string,
    hint?: string,
    which: 'key' | 'value' = 'value',
  ): void {
    const at = this.src.pos(path, which);
    const p: PipelineProblem = {
      file: at.file,
      line: at.line,
      column: at.column,
      path: formatPath(path),
      message,
    };
    if (hint !== undefined) p.hint = hint;
    // A secret inherited from defaults: or its step is checked with each job that has it.
    const key = `${p.path}\0${p.message}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.problems.push(p);
  }

  private reportOption(option: string, message: string, hint?: string): void {
    const p: PipelineProblem = { file: '', line: 0, column: 0, path: option, message };
    if (hint !== undefined) p.hint = hint;
    this.problems.push(p);
  }

  // ---- shape ----

  zodIssues(issues: readonly z.core.$ZodIssue[], prefix: Seg[] = []): void {
    for (const issue of issues) {
      const path = [...prefix, ...(issue.path as Seg[])];
      const input = (issue as { input?: unknown }).input;
      switch (issue.code) {
        case 'unrecognized_keys': {
          const known = schemaAt(path);
          const keys = known instanceof z.ZodObject ? Object.keys(known.shape) : [];
          for (const key of issue.keys) {
            const near = closest(key, keys);
            if (near !== undefined) this.misspelt.add(formatPath([...path, near]));
            const value = isObj(input) ? input[key] : undefined;
            const looksLikeStep =
              path.length === 0 && isObj(value) && ('image' in value || 'substeps' in value);
            const hint = looksLikeStep ? 'steps go under steps:, indented' : undefined;
            this.report([...path, key], `unknown key${didYouMean(key, keys)}`, hint, 'key');
          }
          break;
        }
        case 'invalid_union': {
          // Report the branch the value was evidently meant for: the one that got past the
          // top-level type check. Otherwise the union's own message says what is accepted.
          const meant = issue.errors.filter(
            (branch) => !branch.every((i) => i.code === 'invalid_type' && i.path.length === 0),
          );
          if (meant.length === 1) this.zodIssues(meant[0], path);
          else this.report(path, `${issue.message}, got ${describe(input)}`);
          break;
        }
        case 'invalid_type': {
          if (input === undefined) {
            this.report(path, 'is required', undefined, 'key');
            break;
          }
          const expected = EXPECTED[issue.expected] ?? issue.expected;
          let hint: string | undefined;
          if (issue.expected === 'boolean' && typeof input === 'string') {
            hint = 'write true or false';
          }
          if (issue.expected === 'record' && Array.isArray(input)) {
            hint = 'write name: value pairs, not a list of "- " items';
          }
          if (path.at(-1) === 'command' && typeof input === 'string') {
            hint = `write it as a list, one argument each: [${input.trim().split(/\s+/).join(', ')}]`;
          }
          this.report(path, `expected ${expected}, got ${describe(input)}`, hint);
          break;
        }
        case 'invalid_value': {
          const values = issue.values.map(String);
          const near = typeof input === 'string' ? didYouMean(input, values) : '';
          this.report(path, `${describe(input)} is not one of ${values.join(', ')}${near}`);
          break;
        }
        case 'too_small':
          this.report(path, `${describe(input)} is too small (at least ${String(issue.minimum)})`);
          break;
        default:
          this.report(path, issue.message);
      }
    }
  }

  // ---- top level ----

  load(root: Obj): LoadedPipeline {
    const name = typeof root.name === 'string' ? root.name : '';
    if (typeof root.name === 'string') this.checkPipelineName(name);
    this.loadParams(root.params);
    const defaults = this.resources(root.defaults, ['defaults'], BUILTIN_RESOURCES);
    this.defaultSecrets = this.secrets(root.defaults, ['defaults'], []);
    const { source, rows: all } = this.loadSamples(root.samples);
    const rows = this.checkInputFiles(source, all);
    const steps = this.loadSteps(root.steps, defaults);
    const results = this.loadResults(root.results, steps);
    const spec: PipelineSpec = {
      name,
      file: this.absFile,
      ...(typeof root.description === 'string' ? { description: root.description } : {}),
      samples: source,
      params: this.params,
      maxConcurrency: typeof root.max_concurrency === 'number' ? root.max_concurrency : 0,
      continueOnFailure:
        typeof root.continue_on_failure === 'boolean' ? root.continue_on_failure : true,
      ...(root.executor === 'local' || root.executor === 'podman' || root.executor === 'docker'
        ? { executor: root.executor }
        : {}),
      steps,
      results,
    };
    // Limits and local secrets are about values that mean something only in a valid pipeline.
    if (this.problems.length === 0) {
      this.problems.push(
        ...limitProblems({
          spec,
          samples: rows,
          positions: this.samplePositions,
          columns: this.columns,
          paramAt: this.paramAt,
          ...(this.options.store !== undefined ? { store: this.options.store } : {}),
        }),
      );
      if (this.options.runLocally) this.checkLocalSecrets(steps);
    }
    return {
      spec,
      samples: rows,
      ...(this.skipped.length > 0 ? { skipped: this.skipped } : {}),
    };
  }

  private checkPipelineName(name: string): void {
    if (PIPELINE_NAME.test(name) && name.length <= MAX_PIPELINE_NAME) return;
    const suggestion = name
      .toLowerCase()
      .replace(/[^a-z0-9_-]+/g, '-')
      .replace(/^[^a-z0-9]+|-+$/g, '');
    const tooLong = name.length > MAX_PIPELINE_NAME;
    this.report(
      ['name'],
      tooLong
        ? `is ${name.length} characters long; at most ${MAX_PIPELINE_NAME}`
        : `${JSON.stringify(name)} is not a pipeline name`,
      `lowercase letters, digits, "_" and "-", as it names store folders and AWS resources` +
        (!tooLong && PIPELINE_NAME.test(suggestion) ? `: ${suggestion}` : ''),
    );
  }

  /** Checks a declared variable name (param, output); false when it is unusable. */
  private checkVarName(path: Seg[], name: string, what: string): boolean {
    if (!VAR_NAME.test(name)) {
      const upper = name.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
      this.report(
        path,
        `${JSON.stringify(name)} is not a variable name`,
        `${what} names are capitals, digits and "_"` + (VAR_NAME.test(upper) ? `: ${upper}` : ''),
        'key',
      );
      return false;
    }
    if (isReserved(name)) {
      this.report(
        path,
        `${name} is reserved`,
        name === 'SAMPLE'
          ? '$SAMPLE is the sample id'
          : 'names starting with STRAND_ or AWS_ are set by Strand and AWS',
        'key',
      );
      return false;
    }
    return true;
  }

  private loadParams(raw: unknown): void {
    const required: string[] = [];
    for (const [key, value] of entries(raw)) {
      if (!this.checkVarName(['params', key], key, 'parameter')) continue;
      if (value === null) required.push(key);
      else if (isScalarValue(value)) {
        const text = this.src.text(['params', key], value);
        const special = specialInputProblem(text, dirname(this.absFile));
        if (special) this.report(['params', key], special, SPECIAL_INPUT_HINT);
        // A default naming a file next to the pipeline (a script, a reference) becomes absolute.
        this.params[key] = resolveValue(text, dirname(this.absFile));
        this.paramAt[key] = this.src.pos(['params', key]);
      }
    }
    const declared = [...Object.keys(this.params), ...required];
    this.paramNames = declared;
    for (const [key, value] of Object.entries(this.options.params ?? {})) {
      if (!declared.includes(key)) {
        this.reportOption(
          '--param',
          `"${key}" is not a parameter of this pipeline${didYouMean(key, declared)}`,
          declared.length > 0
            ? `parameters: ${listNames(declared)}`
            : 'declare it under params: to pass it',
        );
        continue;
      }
      const special = specialInputProblem(value, process.cwd());
      if (special) {
        this.problems.push({
          file: '',
          line: 0,
          column: 0,
          path: `--param ${key}`,
          message: special,
          hint: SPECIAL_INPUT_HINT,
        });
      }
      this.params[key] = value;
      this.paramAt[key] = undefined;
    }
    for (const key of required) {
      if (this.params[key] === undefined) {
        this.report(
          ['params', key],
          'has no default and was not given',
          `pass --param ${key}=…`,
          'key',
        );
      }
    }
  }

  private resources(raw: unknown, path: Seg[], base: ResourceSpec): ResourceSpec {
    const out: ResourceSpec = { ...base };
    if (!isObj(raw)) return out;
    const apply = <T>(key: string, result: UnitResult<T>, set: (v: T) => void): void => {
      if (result.ok) set(result.value);
      else this.report([...path, key], result.message, result.hint);
    };
    if (typeof raw.vcpus === 'number' || typeof raw.vcpus === 'string') {
      apply('vcpus', parseVcpuRange(raw.vcpus), ({ low, high }) => {
        out.vcpus = high;
        if (low < high) out.vcpusMin = low;
        else delete out.vcpusMin;
      });
    }
    if (typeof raw.memory === 'number' || typeof raw.memory === 'string') {
      apply('memory', parseSizeRange(raw.memory), ({ low, high }) => {
        out.memoryMiB = high;
        if (low < high) out.memoryMinMiB = low;
        else delete out.memoryMinMiB;
      });
    }
    const cap = this.options.capacity;
    if (cap && 'vcpus' in raw && out.vcpusMin !== undefined && out.vcpusMin > cap.vcpus)
      this.report(
        [...path, 'vcpus'],
        `${out.vcpusMin}-${out.vcpus}: even the low end is more than ${cap.where} has (${cap.vcpus} vCPU)`,
        `lower the low end to ${cap.vcpus} at most`,
      );
    if (
      cap &&
      'memory' in raw &&
      out.memoryMinMiB !== undefined &&
      out.memoryMinMiB > cap.memoryMiB
    )
      this.report(
        [...path, 'memory'],
        `even the low end, ${out.memoryMinMiB} MiB, is more than ${cap.where} has (${cap.memoryMiB} MiB)`,
        `lower the low end to ${cap.memoryMiB} MiB at most`,
      );
    if (out.memoryMinMiB !== undefined && out.vcpusMin === undefined && 'memory' in raw) {
      this.report(
        [...path, 'memory'],
        'a range of memory goes with a range of vCPUs (it grows with the vCPUs a job gets)',
        `give vcpus a range too (vcpus: 1-${Math.max(2, out.vcpus)}), or memory one size`,
      );
    }
    if (typeof raw.retry === 'number') {
      apply('retry', parseRetry(raw.retry), (v) => (out.retry = v));
    }
    if (raw.timeout === 'none') delete out.timeoutSeconds;
    else if (typeof raw.timeout === 'number' || typeof raw.timeout === 'string') {
      apply('timeout', parseDuration(raw.timeout), (v) => (out.timeoutSeconds = v));
    }
    return out;
  }

  // ---- samples ----

  private loadSamples(raw: unknown): { source: SamplesSource; rows: SampleRow[] } {
    const before = this.problems.length;
    const at = this.src.pos(['samples'], 'key');
    let source: SamplesSource = { kind: 'none' };
    let inlinePositions: SamplePositions[] | undefined;
    const override = this.options.samples?.trim() ?? '';
    const overrideIsSheet =
      /\.(csv|tsv|txt|tab)$/i.test(override) || override.includes('/') || override.includes(sep);
    const ids =
      override === '' || overrideIsSheet
        ? undefined
        : [...new Set(override.split(',').map((s) => s.trim()))].filter((s) => s !== '');
    const sheet = typeof raw === 'string' ? raw : isObj(raw) ? raw.sheet : undefined;
    if (overrideIsSheet) {
      // A sheet on the command line replaces the pipeline's samples; they are not read at all.
      source = { kind: 'sheet', path: resolve(override), at: { file: '', line: 0, column: 0 } };
    } else if (typeof sheet === 'string') {
      const where: Seg[] = typeof raw === 'string' ? ['samples'] : ['samples', 'sheet'];
      if (sheet.trim() === '') {
        this.report(where, 'is empty', 'give the path of a CSV or TSV sheet');
      } else {
        source = { kind: 'sheet', path: resolve(dirname(this.absFile), sheet), at };
      }
    } else if (Array.isArray(raw)) {
      const info = checkSampleTable(this.inlineTable(raw));
      this.problems.push(...info.problems);
      source = { kind: 'inline', rows: info.rows, at };
      inlinePositions = info.positions;
    }

    if (this.options.readSheet === false && source.kind === 'sheet') {
      // Not read: its columns are unknown, so references to them are not reported.
      this.columns = [];
      this.columnsKnown = false;
      return { source, rows: [] };
    }
    const info = loadSamples(source, { pipelineFile: this.absFile });
    const positions = inlinePositions ?? info.positions;
    this.samplePositions = positions;
    this.problems.push(...info.problems);
    this.columns = info.columns;
    // A sheet that could not be read leaves its columns unknown: references to them are not
    // reported as undeclared, which would bury the one real problem.
    this.columnsKnown = this.problems.length === before || info.columns.length > 0;
    for (const column of this.columns) {
      if (this.paramNames.includes(column)) {
        this.report(
          ['params', column],
          `${column} is also a column of the samples`,
          'rename one: each variable has one meaning',
          'key',
        );
      }
    }
    if (ids === undefined) return { source, rows: info.rows };
    if (source.kind === 'none') {
      this.reportOption(
        '--samples',
        'this pipeline has no samples to choose from',
        'pass a sheet: --samples samples.csv',
      );
      return { source, rows: [] };
    }
    if (info.problems.length > 0) return { source, rows: [] };
    const picked = selectSamples(info.rows, ids);
    this.problems.push(...picked.problems);
    const byId = new Map(info.rows.map((row, i) => [row.id, positions[i]]));
    this.samplePositions = picked.rows.map((row) => byId.get(row.id)!);
    return { source, rows: picked.rows };
  }

  /** Samples left out by `skipMissing`, and why. */
  private skipped: { id: string; reason: string }[] = [];

  /**
   * The sheet's input files that are not there: problems at their cells, or (`skipMissing`) the
   * samples naming them left out. The rows that run.
   */
  private checkInputFiles(source: SamplesSource, rows: SampleRow[]): SampleRow[] {
    if (source.kind !== 'sheet' || this.problems.length > 0) return rows;
    const positions = this.samplePositions;
    const found = missingInputs(rows, positions, this.columns, dirname(source.path));
    if (!this.options.skipMissing) {
      this.problems.push(...found.problems);
      return rows;
    }
    this.skipped = [...found.missing].map(([id, reason]) => ({ id, reason }));
    this.samplePositions = positions.filter((_p, i) => !found.missing.has(rows[i].id));
    return rows.filter((r) => !found.missing.has(r.id));
  }

  private inlineTable(raw: unknown[]): SampleTable {
    const at = this.src.pos(['samples'], 'key');
    const header: SampleCell[] = [];
    const index = new Map<string, number>();
    raw.forEach((item, r) => {
      for (const key of Object.keys(isObj(item) ? item : {})) {
        if (index.has(key)) continue;
        index.set(key, header.length);
        const pos = this.src.pos(['samples', r, key], 'key');
        header.push({
          text: key,
          line: pos.line,
          column: pos.column,
          path: `samples[${r}].${key}`,
        });
      }
    });
    return {
      file: this.src.file,
      dir: dirname(this.absFile),
      header,
      rows: raw.map((item, r) => {
        const pos = this.src.pos(['samples', r]);
        const cells: (SampleCell | undefined)[] = header.map(() => undefined);
        for (const [key, value] of entries(item)) {
          if (!isScalarValue(value)) continue;
          const p = this.src.pos(['samples', r, key]);
          cells[index.get(key)!] = {
            text: this.src.text(['samples', r, key], value),
            line: p.line,
            column: p.column,
          };
        }
        return { line: pos.line, column: pos.column, cells, reported: !isObj(item) };
      }),
      at: { line: at.line, column: at.column, path: 'samples' },
    };
  }

  // ---- steps ----

  private checkStepName(path: Seg[], name: string, what: string): void {
    if (STEP_NAME.test(name) && name.length <= MAX_STEP_NAME) return;
    if (name.length > MAX_STEP_NAME) {
      this.report(
        path,
        `${what} name is ${name.length} characters long; at most ${MAX_STEP_NAME}`,
        undefined,
        'key',
      );
      return;
    }
    const suggestion = name.toLowerCase().replace(/[^a-z0-9_-]+/g, '_');
    this.report(
      path,
      `${JSON.stringify(name)} is not a ${what} name`,
      'lowercase letters, digits, "_" and "-", starting with a letter' +
        (STEP_NAME.test(suggestion) ? `: ${suggestion}` : ''),
      'key',
    );
  }

  private loadSteps(raw: unknown, defaults: ResourceSpec): StepSpec[] {
    if (isObj(raw) && Object.keys(raw).length === 0) {
      this.report(['steps'], 'a pipeline needs at least one step', undefined, 'key');
    }
    const steps: StepSpec[] = [];
    // Source paths of each step's jobs, for the variable check once every output is known.
    const jobPaths: Seg[][][] = [];
    // Each step's `after:` entries with where they were written.
    const afterPaths: { name: string; path: Seg[] }[][] = [];
    for (const [name, value] of entries(raw)) {
      const path: Seg[] = ['steps', name];
      this.checkStepName(path, name, 'step');
      if (!isObj(value)) continue;
      const scope = value.aggregate === true ? 'all' : 'sample';
      const hasSubsteps = 'substeps' in value;
      const parallel = hasSubsteps && value.parallel === true;
      // A plain step's resources are read with its job, so they are reported once.
      const stepResources = hasSubsteps ? this.resources(value, path, defaults) : defaults;
      // Likewise a step's secrets are its substeps' (a plain step's are read with its job).
      const stepSecrets = hasSubsteps
        ? this.secrets(value, path, this.defaultSecrets)
        : this.defaultSecrets;
      const jobs: JobSpec[] = [];
      const paths: Seg[][] = [];
      if (hasSubsteps) {
        for (const key of ['image', 'command', 'env', 'stdout', 'outputs']) {
          if (key in value) {
            this.report(
              [...path, key],
              `a step with substeps has no ${key} of its own`,
              'move it into a substep',
              'key',
            );
          }
        }
        if (isObj(value.substeps) && Object.keys(value.substeps).length === 0) {
          this.report([...path, 'substeps'], 'needs at least one substep', undefined, 'key');
        }
        for (const [sub, subValue] of entries(value.substeps)) {
          const subPath = [...path, 'substeps', sub];
          this.checkStepName(subPath, sub, 'substep');
          if (!isObj(subValue)) continue;
          jobs.push(this.job(`${name}.${sub}`, subValue, subPath, stepResources, stepSecrets));
          paths.push(subPath);
        }
      } else {
        if ('parallel' in value) {
          this.report(
            [...path, 'parallel'],
            'only applies to a step with substeps',
            undefined,
            'key',
          );
        }
        const missing = ['image', 'command'].filter((key) => !(key in value));
        if (missing.length === 2) {
          this.report(path, 'needs image and command, or substeps', undefined, 'key');
        } else if (missing.length === 1) {
          this.report([...path, missing[0]], 'is required', 'or give the step substeps', 'key');
        }
        jobs.push(this.job(name, value, path, stepResources, stepSecrets));
        paths.push(path);
      }
      jobs.forEach((job, j) => this.declareOutputs(job, paths[j], steps.length, j));
      const after = Array.isArray(value.after)
        ? value.after.map((a, i) => ({ name: String(a), path: [...path, 'after', i] }))
        : typeof value.after === 'string'
          ? [{ name: value.after, path: [...path, 'after'] }]
          : [];
      steps.push({
        name,
        scope,
        jobs,
        hasSubsteps,
        parallel,
        needs: [],
        after: after.map((a) => a.name),
        at: this.src.pos(path, 'key'),
      });
      jobPaths.push(paths);
      afterPaths.push(after);
    }
    steps.forEach((step, s) =>
      step.jobs.forEach((_job, j) => this.checkVariables(steps, s, j, jobPaths[s][j])),
    );
    this.inferGraph(steps, afterPaths);
    return steps;
  }

  /**
   * Each step's `needs`: the steps owning the variables its jobs read, and its `after:` entries
   * (checked here: known, not itself, not an aggregate step for a per-sample one); then a cycle,
   * if any, is reported at the first step along it.
   */
  private inferGraph(steps: StepSpec[], afterPaths: { name: string; path: Seg[] }[][]): void {
    const names = steps.map((s) => s.name);
    const owner = new Map<string, string>();
    for (const st of steps)
      for (const j of st.jobs) for (const v of Object.keys(j.outputs)) owner.set(v, st.name);
    // Why each edge exists, for the cycle message.
    const because = new Map<string, string>();
    steps.forEach((step, s) => {
      const needs = new Set<string>();
      for (const job of step.jobs)
        for (const v of job.vars) {
          const o = owner.get(v);
          if (o === undefined || o === step.name) continue;
          needs.add(o);
          if (!because.has(`${step.name}\n${o}`)) because.set(`${step.name}\n${o}`, `$${v}`);
        }
      for (const a of afterPaths[s]) {
        const other = steps.find((x) => x.name === a.name);
        if (!other) {
          this.report(
            a.path,
            `no step "${a.name}"${didYouMean(a.name, names)}`,
            `steps: ${listNames(names)}`,
          );
        } else if (other === step) {
          this.report(a.path, `step "${step.name}" cannot wait for itself`);
        } else if (step.scope === 'sample' && other.scope === 'all') {
          this.report(
            a.path,
            `"${a.name}" is an aggregate step, which runs once after every sample; per-sample step "${step.name}" cannot wait for it`,
            'make this step aggregate too, or drop the entry',
          );
        } else {
          needs.add(other.name);
          if (!because.has(`${step.name}\n${other.name}`))
            because.set(`${step.name}\n${other.name}`, 'after:');
        }
      }
      step.needs = names.filter((n) => needs.has(n));
    });
    const cycle = findCycle(steps);
    if (cycle) {
      const links = cycle
        .slice(0, -1)
        .map((n, i) => `${n} needs ${cycle[i + 1]} (${because.get(`${n}\n${cycle[i + 1]}`)})`);
      this.report(
        ['steps', cycle[0]],
        `steps wait for each other in a cycle: ${links.join(', ')}`,
        'a step can only read outputs of steps that do not read its own; remove one of these uses',
        'key',
      );
      // The compiler needs an acyclic graph; a pipeline with a problem is never compiled.
    }
  }

  private job(
    name: string,
    raw: Obj,
    path: Seg[],
    base: ResourceSpec,
    baseSecrets: SecretSpec[],
  ): JobSpec {
    const image = typeof raw.image === 'string' ? raw.image : '';
    if (typeof raw.image === 'string' && (image.trim() === '' || /\s/.test(image))) {
      this.report(
        [...path, 'image'],
        `${JSON.stringify(image)} is not an image name`,
        'image names have no spaces: strand/fastp:0.23',
      );
    }
    const command = Array.isArray(raw.command)
      ? raw.command.map((item, i) =>
          isScalarValue(item) ? this.src.text([...path, 'command', i], item) : '',
        )
      : [];
    if (Array.isArray(raw.command) && command.length === 0) {
      this.report([...path, 'command'], 'is empty', 'give at least the program to run: [fastp, …]');
    }
    const env: Record<string, string> = {};
    for (const [key, value] of entries(raw.env)) {
      if (!ENV_NAME.test(key)) {
        this.report(
          [...path, 'env', key],
          `${JSON.stringify(key)} is not an environment variable name`,
          'letters, digits and "_", not starting with a digit',
          'key',
        );
      } else if (key.startsWith('STRAND_') || key.startsWith('AWS_BATCH')) {
        this.report(
          [...path, 'env', key],
          `${key} is reserved`,
          'STRAND_ and AWS_BATCH names are set by Strand and AWS Batch',
          'key',
        );
      }
      if (isScalarValue(value)) env[key] = this.src.text([...path, 'env', key], value);
    }
    const outputs: Record<string, string> = {};
    for (const [key, value] of entries(raw.outputs)) {
      if (typeof value !== 'string') continue;
      const rel = this.relativePath([...path, 'outputs', key], value, 'output');
      if (rel !== undefined) outputs[key] = rel;
    }
    const stdout =
      typeof raw.stdout === 'string'
        ? this.relativePath([...path, 'stdout'], raw.stdout, 'output')
        : undefined;
    const resources = this.resources(raw, path, base);
    return {
      name,
      image,
      command,
      env,
      ...(stdout !== undefined ? { stdout } : {}),
      outputs,
      vars: [],
      secrets: this.secrets(raw, path, baseSecrets),
      ...resources,
      at: this.src.pos(path, 'key'),
    };
  }

  /**
   * The secrets written under `raw.secrets` at `path`, over `base` (the ones inherited from
   * `defaults:` or the step): each name checked as an environment variable name, each source
   * as one Strand or AWS Batch can read.
   */
  private secrets(raw: unknown, path: Seg[], base: SecretSpec[]): SecretSpec[] {
    const out = new Map(base.map((s) => [s.name, s]));
    for (const [name, value] of entries(isObj(raw) ? raw.secrets : undefined)) {
      const at: Seg[] = [...path, 'secrets', name];
      if (!ENV_NAME.test(name)) {
        this.report(
          at,
          `${JSON.stringify(name)} is not an environment variable name`,
          'letters, digits and "_", not starting with a digit',
          'key',
        );
        continue;
      }
      if (name.startsWith('STRAND_') || name.startsWith('AWS_BATCH')) {
        this.report(
          at,
          `${name} is reserved`,
          'STRAND_ and AWS_BATCH names are set by Strand and AWS Batch',
          'key',
        );
        continue;
      }
      if (typeof value !== 'string') continue; // the shape check said so
      const valueFrom = this.secretSource(at, value);
      if (valueFrom === undefined) continue;
      const secret: SecretSpec = { name, valueFrom, at: this.src.pos(at, 'key') };
      this.secretPaths.set(secret, at);
      out.set(name, secret);
    }
    return [...out.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** A secret's source as it will be recorded (a relative `file:` made absolute). */
  private secretSource(at: Seg[], value: string): string | undefined {
    const hint =
      'write env:NAME, file:/path, arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME or arn:aws:ssm:REGION:ACCOUNT:parameter/NAME';
    if (value.startsWith('env:')) {
      if (SECRET_SOURCE.test(value)) return value;
      this.report(at, `${JSON.stringify(value)} does not name an environment variable`, hint);
      return undefined;
    }
    if (value.startsWith('file:')) {
      const file = value.slice('file:'.length);
      if (file.trim() === '' || file.includes('\0')) {
        this.report(at, `${JSON.stringify(value)} does not name a file`, hint);
        return undefined;
      }
      return `file:${resolve(dirname(this.absFile), file)}`;
    }
    if (value.startsWith('arn:')) {
      if (SECRET_SOURCE.test(value)) return value;
      this.report(
        at,
        `${JSON.stringify(value)} is not a Secrets Manager secret or SSM parameter ARN`,
        hint,
      );
      return undefined;
    }
    this.report(at, `${JSON.stringify(value)} is not a secret source`, hint);
    return undefined;
  }

  /** Before a local run: each secret must be one this machine can read now. */
  private checkLocalSecrets(steps: StepSpec[]): void {
    for (const secret of steps.flatMap((s) => s.jobs.flatMap((j) => j.secrets))) {
      const at = this.secretPaths.get(secret) ?? [];
      const { valueFrom } = secret;
      if (valueFrom.startsWith('arn:')) {
        this.report(
          at,
          `${valueFrom} is read by AWS Batch; Strand's local engine cannot read AWS secrets`,
          'run it on AWS, or give the value here as env:NAME or file:/path',
        );
      } else if (valueFrom.startsWith('env:')) {
        const name = valueFrom.slice('env:'.length);
        if (process.env[name] === undefined) {
          this.report(
            at,
            `environment variable ${name} is not set`,
            `set it in the environment strand runs in (export ${name}=…)`,
          );
        }
      } else {
        const file = valueFrom.slice('file:'.length);
        const st = statSync(file, { throwIfNoEntry: false });
        let problem: string | undefined;
        if (!st) problem = `${file} does not exist`;
        else if (!st.isFile()) problem = `${file} is not a regular file`;
        else {
          try {
            accessSync(file, constants.R_OK);
          } catch {
            problem = `${file} cannot be read`;
          }
        }
        if (problem) this.report(at, problem, 'the secret is read from it when each job starts');
      }
    }
  }

  /** A path inside the job directory, normalised (`./out/x` → `out/x`). */
  private relativePath(path: Seg[], value: string, what: 'output' | 'result'): string | undefined {
    const hint =
      what === 'output'
        ? 'paths are relative to the job directory, e.g. out/r1.fq.gz'
        : 'it is read from the job directory of the step, e.g. out/stats.tsv';
    if (value.trim() === '') {
      this.report(path, 'is empty', hint);
      return undefined;
    }
    if (isAbsolute(value) || /^[A-Za-z]:[\\/]/.test(value) || value.startsWith('~')) {
      this.report(path, `"${value}" is an absolute path`, hint);
      return undefined;
    }
    if (value.split(/[\\/]/).includes('..')) {
      this.report(path, `"${value}" leaves the job directory`, hint);
      return undefined;
    }
    if (value.includes('$')) {
      this.report(
        path,
        `"${value}": variables are not substituted in ${what} paths`,
        "the store already keeps each sample's files apart; use a fixed name",
      );
      return undefined;
    }
    const normal = posix.normalize(value).replace(/^(\.\/)+/, '');
    if (normal === '.' || normal === './') {
      this.report(path, `"${value}" is the job directory itself`, hint);
      return undefined;
    }
    const long = normal.split('/').find((c) => Buffer.byteLength(c) > NAME_MAX);
    if (long !== undefined) {
      this.report(
        path,
        `"${long.slice(0, 32)}…" is ${Buffer.byteLength(long)} bytes; a file or directory name has at most ${NAME_MAX} (NAME_MAX)`,
        'use a shorter name',
      );
      return undefined;
    }
    if (Buffer.byteLength(normal) + 1 > PATH_MAX) {
      this.report(
        path,
        `is ${Buffer.byteLength(normal)} bytes; a path has at most ${PATH_MAX - 1} (PATH_MAX)`,
        'use a shorter path',
      );
      return undefined;
    }
    return normal;
  }

  private declareOutputs(job: JobSpec, path: Seg[], step: number, sub: number): void {
    for (const key of Object.keys(job.outputs)) {
      const at = [...path, 'outputs', key];
      if (!this.checkVarName(at, key, 'output')) {
        delete job.outputs[key];
        continue;
      }
      const owner = this.outputOwner.get(key);
      if (owner) {
        this.report(
          at,
          `$${key} is already an output of "${owner.job}"`,
          'each output needs its own name',
          'key',
        );
      } else if (this.paramNames.includes(key)) {
        this.report(at, `$${key} is already a parameter`, 'each variable has one meaning', 'key');
      } else if (this.columns.includes(key)) {
        this.report(
          at,
          `$${key} is already a column of the samples`,
          'each variable has one meaning',
          'key',
        );
      } else {
        this.outputOwner.set(key, { job: job.name, step, sub });
      }
    }
  }

  private checkVariables(steps: StepSpec[], s: number, j: number, path: Seg[]): void {
    const step = steps[s];
    const job = step.jobs[j];
    const visible: string[] = [];
    if (step.scope === 'sample') visible.push(...this.columns, 'SAMPLE');
    visible.push(...this.paramNames);
    // Outputs of the other steps, wherever they are written: the graph orders the steps. A
    // per-sample step cannot read an aggregate step's, which runs after every sample.
    for (const other of steps) {
      if (other === step || (step.scope === 'sample' && other.scope === 'all')) continue;
      for (const job of other.jobs) visible.push(...Object.keys(job.outputs));
    }
    step.jobs.forEach((other, k) => {
      if (k === j || (k < j && !step.parallel)) visible.push(...Object.keys(other.outputs));
    });
    const vars: string[] = [];
    const check = (where: Seg[], text: string, inCommand: boolean): void => {
      const { parts, problem } = templateParts(text);
      if (problem) this.report(where, problem.message, problem.hint);
      for (const part of parts) {
        if (!('var' in part)) continue;
        if (SIZE_VARIABLES.includes(part.var)) {
          // The size an attempt gets is known when it starts, where Batch replaces a whole
          // command item (Ref::) and nothing else.
          if (!inCommand)
            this.report(
              where,
              `$${part.var} is the size the job's attempt gets, already in its environment`,
              `read ${part.var} from the environment, or pass it on the command line: [-t, $${part.var}]`,
            );
          else if (parts.length !== 1)
            this.report(
              where,
              `$${part.var} must be a command item of its own`,
              `write it apart from the text around it: [--threads, $${part.var}]`,
            );
          continue;
        }
        if (visible.includes(part.var)) {
          if (!vars.includes(part.var)) vars.push(part.var);
        } else {
          this.undeclared(where, part.var, visible, steps, s, j);
        }
      }
    };
    job.command.forEach((item, i) => check([...path, 'command', i], item, true));
    for (const [key, value] of Object.entries(job.env)) {
      const same = value === `$${key}` || value === `\${${key}}`;
      if (visible.includes(key) && !same) {
        this.report(
          [...path, 'env', key],
          `would hide $${key}`,
          'give the environment variable another name',
          'key',
        );
      }
      check([...path, 'env', key], value, false);
    }
    for (const secret of job.secrets) {
      const at = this.secretPaths.get(secret) ?? [...path, 'secrets', secret.name];
      if (visible.includes(secret.name)) {
        this.report(
          at,
          `would hide $${secret.name}, which job "${job.name}" sees`,
          'give the secret another name',
          'key',
        );
      } else if (Object.hasOwn(job.env, secret.name)) {
        this.report(
          at,
          `${secret.name} is also set by env: of job "${job.name}"`,
          'keep one of the two',
          'key',
        );
      }
    }
    job.vars = vars;
  }

  private undeclared(
    where: Seg[],
    name: string,
    visible: string[],
    steps: StepSpec[],
    s: number,
    j: number,
  ): void {
    const step = steps[s];
    const job = step.jobs[j];
    if (step.scope === 'all' && (name === 'SAMPLE' || this.columns.includes(name))) {
      this.report(
        where,
        `$${name} is ${name === 'SAMPLE' ? 'the sample id' : 'a sample column'}, and aggregate step "${step.name}" runs once for all samples`,
        "use an output of a per-sample step: here it is a file listing every sample's copy",
      );
      return;
    }
    const owner = this.outputOwner.get(name);
    if (owner && owner.step === s) {
      const other = step.jobs[owner.sub].name;
      if (step.parallel) {
        this.report(
          where,
          `$${name} is an output of "${other}", which runs in parallel with "${job.name}"`,
          'set parallel: false to run the substeps in order, or move it to an earlier step',
        );
      } else {
        this.report(
          where,
          `$${name} is an output of "${other}", which runs after "${job.name}"`,
          `move "${other}" before "${job.name}"`,
        );
      }
      return;
    }
    if (owner && steps[owner.step].scope === 'all' && step.scope === 'sample') {
      this.report(
        where,
        `$${name} is an output of aggregate step "${steps[owner.step].name}", which runs once after every sample`,
        `make "${step.name}" aggregate too, or read a per-sample output`,
      );
      return;
    }
    if (!this.columnsKnown) return;
    const near = closest(name, visible);
    const prefix = visible.filter((v) => name.startsWith(v)).sort((a, b) => b.length - a.length)[0];
    const hint = prefix
      ? `write \${${prefix}}${name.slice(prefix.length)} if the name ends at ${prefix}`
      : visible.length > 0
        ? `declared here: ${listNames(visible)}`
        : 'nothing is declared here';
    this.report(where, `$${name} is not declared${near ? `; did you mean $${near}?` : ''}`, hint);
  }

  // ---- results ----

  private loadResults(raw: unknown, steps: StepSpec[]): ResultSpec[] {
    const results: ResultSpec[] = [];
    const jobNames = steps.flatMap((s) => s.jobs.map((j) => j.name));
    const names = [...steps.map((s) => s.name), ...jobNames.filter((n) => n.includes('.'))];
    for (const [key, value] of entries(raw)) {
      const path: Seg[] = ['results', key];
      const [stepName, sub] = key.split('.', 2);
      const step = steps.find((s) => s.name === stepName);
      if (!step || key.split('.').length > 2) {
        this.report(
          path,
          `no step "${key}"${didYouMean(key, names)}`,
          `steps: ${listNames(names)}`,
          'key',
        );
        continue;
      }
      if (step.hasSubsteps && sub === undefined) {
        this.report(
          path,
          `"${key}" has substeps; name one`,
          listNames(step.jobs.map((j) => j.name)),
          'key',
        );
        continue;
      }
      if (!step.hasSubsteps && sub !== undefined) {
        this.report(path, `step "${stepName}" has no substeps`, `write ${stepName}`, 'key');
        continue;
      }
      if (sub !== undefined && !step.jobs.some((j) => j.name === key)) {
        const subs = step.jobs.map((j) => j.name);
        this.report(
          path,
          `no substep "${key}"${didYouMean(key, subs)}`,
          `substeps: ${listNames(subs)}`,
          'key',
        );
        continue;
      }
      if (!isObj(value) || typeof value.from !== 'string') continue;
      const from = this.relativePath([...path, 'from'], value.from, 'result');
      if (from === undefined) continue;
      let format = value.format as ResultSpec['format'] | undefined;
      if (format === undefined) {
        const ext = posix.extname(from).toLowerCase();
        format =
          ext === '.csv'
            ? 'csv'
            : ext === '.json'
              ? 'json'
              : ['.tsv', '.txt', '.tab'].includes(ext)
                ? 'tsv'
                : undefined;
        if (format === undefined) {
          this.report(
            [...path, 'from'],
            `cannot tell the format of "${from}"`,
            'add format: tsv, csv or json',
          );
          continue;
        }
      }
      const columns: ResultSpec['columns'] = {};
      for (const [column, type] of entries(value.columns)) {
        if (type === 'integer' || type === 'real' || type === 'text') columns[column] = type;
      }
      const result: ResultSpec = {
        step: key,
        from,
        format,
        columns,
        at: this.src.pos(path, 'key'),
      };
      if (Array.isArray(value.header)) {
        const header = value.header.filter((h): h is string => typeof h === 'string');
        if (format === 'json') {
          this.report([...path, 'header'], 'only applies to tsv and csv files', undefined, 'key');
        }
        header.forEach((h, i) => {
          if (h.trim() === '') this.report([...path, 'header', i], 'is empty');
          else if (header.indexOf(h) < i) this.report([...path, 'header', i], `"${h}" is repeated`);
        });
        for (const column of Object.keys(columns)) {
          if (!header.includes(column)) {
            this.report(
              [...path, 'columns', column],
              `"${column}" is not in header${didYouMean(column, header)}`,
              undefined,
              'key',
            );
          }
        }
        result.header = header;
      }
      results.push(result);
    }
    return results;
  }
}

/**
 * Loads pipeline text as if read from `file` (used for positions and to resolve relative
 * paths). Throws PipelineError listing every problem.
 */
export function loadPipelineText(
  text: string,
  file: string,
  options: LoadOptions = {},
): LoadedPipeline {
  const absFile = resolve(file);
  const shown = shownPath(absFile);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const src = new Source(doc, lines, shown);
  const loader = new Loader(src, absFile, options);
  const fail = (): never => {
    throw new PipelineError(sortProblems(loader.problems, shown));
  };

  for (const e of doc.errors) {
    const { line, col } = lines.linePos(e.pos[0]);
    const path = formatPath(src.pathAt(e.pos[0]));
    const duplicate = e.code === 'DUPLICATE_KEY';
    loader.problems.push({
      file: shown,
      line,
      column: col,
      path,
      message: duplicate ? 'duplicate key' : `not valid YAML: ${e.message}`,
      ...(duplicate ? { hint: 'each key appears once; merge the two' } : {}),
    });
  }
  if (doc.errors.some((e) => e.code !== 'DUPLICATE_KEY')) fail();
  if (!isMap(doc.contents)) {
    loader.problems.push({
      file: shown,
      line: 1,
      column: 1,
      path: '',
      message:
        doc.contents === null
          ? 'the file is empty'
          : `a pipeline is a mapping of keys (name:, steps:, …), not ${describe(doc.toJS())}`,
      hint: 'start with name: and steps:',
    });
    fail();
  }
  let root: Obj;
  try {
    root = doc.toJS({ maxAliasCount: 100 }) as Obj;
  } catch (err) {
    loader.problems.push({
      file: shown,
      line: 1,
      column: 1,
      path: '',
      message: (err as Error).message,
    });
    return fail();
  }
  const parsed = pipelineSchema.safeParse(root, { reportInput: true });
  if (!parsed.success) loader.zodIssues(parsed.error.issues);
  const loaded = loader.load(root);
  // `comand:` already says "did you mean command"; "command is required" would repeat it.
  const repeats = loader.problems.filter(
    (p) => p.message === 'is required' && loader.misspelt.has(p.path),
  );
  for (const p of repeats) loader.problems.splice(loader.problems.indexOf(p), 1);
  if (loader.problems.length > 0) fail();
  return loaded;
}

/** Reads and loads a pipeline file; throws PipelineError listing every problem. */
export function loadPipeline(path: string, options: LoadOptions = {}): LoadedPipeline {
  // A directory stands for the pipeline.yaml in it (`strand run .`).
  let file = path;
  try {
    if (statSync(path).isDirectory()) file = join(path, 'pipeline.yaml');
  } catch {
    // not there: reading it says so
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new PipelineError([
      {
        file: shownPath(resolve(file)),
        line: 0,
        column: 0,
        path: '',
        message: code === 'ENOENT' ? 'not found' : `cannot read: ${(err as Error).message}`,
      },
    ]);
  }
  return loadPipelineText(text, file, options);
}
