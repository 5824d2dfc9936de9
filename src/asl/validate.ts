/**
 * Validation of ASL definitions: every problem, each with the JSON pointer of the field it
 * concerns (`/States/Assemble/Next: state "Asembly" does not exist; did you mean "Assembly"?`).
 */
import { parseDocument, LineCounter, isMap, isSeq, isScalar, type Node } from 'yaml';
import { COMPARISON_OPERATORS } from './choice-rules.js';
import { IntrinsicSyntaxError, isIntrinsicCall, parseIntrinsic } from './intrinsics.js';
import { compileJsonata } from './jsonata.js';
import { isValidPath, isValidReferencePath } from './path.js';
import { OUTPUT_TYPES, RESULT_WRITER_RESOURCE, TRANSFORMATIONS } from './result-writer.js';
import { didYouMean } from './suggest.js';
import { STATE_TYPES, type QueryLanguage } from './types.js';

export interface ValidationProblem {
  /** RFC 6901 JSON pointer to the offending field ('' for the whole document). */
  pointer: string;
  message: string;
  /** Stable problem code, e.g. MISSING_STATE. */
  code: string;
  /** 1-based position in the source text, when validated from text. */
  line?: number;
  column?: number;
}

export interface ValidateOptions {
  /** Check the syntax of paths (default true). */
  checkPaths?: boolean;
  /** Require Task resources to be ARNs (default true). */
  checkArn?: boolean;
}

type Obj = Record<string, unknown>;

const COMMON = ['Type', 'Comment', 'QueryLanguage'];
const FLOW = ['Next', 'End'];
const PATH_IO = ['InputPath', 'OutputPath'];

/** Fields each state type allows, by query language. */
const FIELDS: Record<string, { both: string[]; JSONPath: string[]; JSONata: string[] }> = {
  Pass: {
    both: [...FLOW, 'Assign'],
    JSONPath: [...PATH_IO, 'Result', 'ResultPath', 'Parameters'],
    JSONata: ['Output'],
  },
  Task: {
    both: [
      ...FLOW,
      'Assign',
      'Resource',
      'Retry',
      'Catch',
      'TimeoutSeconds',
      'HeartbeatSeconds',
      'Credentials',
    ],
    JSONPath: [
      ...PATH_IO,
      'Parameters',
      'ResultSelector',
      'ResultPath',
      'TimeoutSecondsPath',
      'HeartbeatSecondsPath',
    ],
    JSONata: ['Arguments', 'Output'],
  },
  Choice: { both: ['Choices', 'Default', 'Assign'], JSONPath: [...PATH_IO], JSONata: ['Output'] },
  Wait: {
    both: [...FLOW, 'Assign', 'Seconds', 'Timestamp'],
    JSONPath: [...PATH_IO, 'SecondsPath', 'TimestampPath'],
    JSONata: ['Output'],
  },
  Succeed: { both: [], JSONPath: [...PATH_IO], JSONata: ['Output'] },
  Fail: { both: ['Error', 'Cause'], JSONPath: ['ErrorPath', 'CausePath'], JSONata: [] },
  Parallel: {
    both: [...FLOW, 'Assign', 'Branches', 'Retry', 'Catch'],
    JSONPath: [...PATH_IO, 'Parameters', 'ResultSelector', 'ResultPath'],
    JSONata: ['Arguments', 'Output'],
  },
  Map: {
    both: [
      ...FLOW,
      'Assign',
      'ItemProcessor',
      'Iterator',
      'ItemReader',
      'ItemSelector',
      'ItemBatcher',
      'ResultWriter',
      'MaxConcurrency',
      'ToleratedFailureCount',
      'ToleratedFailurePercentage',
      'Label',
      'Retry',
      'Catch',
    ],
    JSONPath: [
      ...PATH_IO,
      'ItemsPath',
      'Parameters',
      'MaxConcurrencyPath',
      'ToleratedFailureCountPath',
      'ToleratedFailurePercentagePath',
      'ResultSelector',
      'ResultPath',
    ],
    JSONata: ['Items', 'Output'],
  },
};

const TOP_FIELDS = ['StartAt', 'States', 'Comment', 'Version', 'TimeoutSeconds', 'QueryLanguage'];
const SCOPE_FIELDS = ['StartAt', 'States', 'Comment', 'QueryLanguage', 'ProcessorConfig'];
const RETRIER_FIELDS = [
  'ErrorEquals',
  'IntervalSeconds',
  'MaxAttempts',
  'BackoffRate',
  'MaxDelaySeconds',
  'JitterStrategy',
  'Comment',
];
const CATCHER_FIELDS = ['ErrorEquals', 'Next', 'Comment', 'Assign'];
const ARN = /^arn:(aws|aws-cn|aws-us-gov):[^:\n]+:[^:\n]*:\d*:([^:/*]+([:/].*[^:/]+)?)$/iu;
const PLACEHOLDER = /^\$\{[^}]+\}$/;
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function escapePointer(segment: string | number): string {
  return String(segment).replace(/~/g, '~0').replace(/\//g, '~1');
}

function ptr(base: string, ...segments: (string | number)[]): string {
  return base + segments.map((s) => '/' + escapePointer(s)).join('');
}

const READER_INPUT_TYPES = ['CSV', 'JSON', 'JSONL', 'PARQUET', 'MANIFEST'];
const CSV_DELIMITERS = ['COMMA', 'PIPE', 'SEMICOLON', 'SPACE', 'TAB'];

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function describe(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

class Validator {
  readonly problems: ValidationProblem[] = [];
  private readonly stateNames = new Map<string, string>();
  private readonly checkPaths: boolean;
  private readonly checkArn: boolean;

  constructor(options: ValidateOptions) {
    this.checkPaths = options.checkPaths ?? true;
    this.checkArn = options.checkArn ?? true;
  }

  add(pointer: string, code: string, message: string): void {
    this.problems.push({ pointer, code, message });
  }

  machine(def: unknown): void {
    if (!isObj(def)) {
      this.add(
        '',
        'NOT_AN_OBJECT',
        `a state machine definition must be a JSON object, not ${describe(def)}`,
      );
      return;
    }
    for (const key of Object.keys(def)) {
      if (!TOP_FIELDS.includes(key)) {
        this.add(
          ptr('', key),
          'UNKNOWN_FIELD',
          `unknown top-level field "${key}"${didYouMean(key, TOP_FIELDS)}`,
        );
      }
    }
    if (
      def.TimeoutSeconds !== undefined &&
      !(Number.isInteger(def.TimeoutSeconds) && (def.TimeoutSeconds as number) > 0)
    ) {
      this.add(
        '/TimeoutSeconds',
        'BAD_VALUE',
        `TimeoutSeconds must be a positive integer, not ${describe(def.TimeoutSeconds)}`,
      );
    }
    if (def.Version !== undefined && def.Version !== '1.0') {
      this.add('/Version', 'BAD_VALUE', `Version must be "1.0", not ${describe(def.Version)}`);
    }
    const ql = this.queryLanguage(def.QueryLanguage, '/QueryLanguage') ?? 'JSONPath';
    this.scope(def, '', ql, true);
  }

  private queryLanguage(value: unknown, pointer: string): QueryLanguage | undefined {
    if (value === undefined) return undefined;
    if (value !== 'JSONPath' && value !== 'JSONata') {
      this.add(
        pointer,
        'BAD_VALUE',
        `QueryLanguage must be "JSONPath" or "JSONata", not ${describe(value)}`,
      );
      return undefined;
    }
    return value;
  }

  /** A States scope: the root, a Parallel branch or a Map processor. */
  private scope(def: Obj, base: string, ql: QueryLanguage, root: boolean): void {
    if (!root) {
      for (const key of Object.keys(def)) {
        if (!SCOPE_FIELDS.includes(key)) {
          this.add(
            ptr(base, key),
            'UNKNOWN_FIELD',
            `unknown field "${key}"${didYouMean(key, SCOPE_FIELDS)}`,
          );
        }
      }
    }
    const states = def.States;
    if (!isObj(states) || Object.keys(states).length === 0) {
      this.add(
        ptr(base, 'States'),
        'MISSING_FIELD',
        'States must be an object with at least one state',
      );
      return;
    }
    const names = Object.keys(states);
    if (typeof def.StartAt !== 'string') {
      this.add(ptr(base, 'StartAt'), 'MISSING_FIELD', 'StartAt must name the first state');
    } else if (!(def.StartAt in states)) {
      this.add(
        ptr(base, 'StartAt'),
        'MISSING_STATE',
        `state "${def.StartAt}" does not exist${didYouMean(def.StartAt, names)}`,
      );
    }
    for (const name of names) {
      const pointer = ptr(base, 'States', name);
      if (name.length === 0 || name.length > 80) {
        this.add(
          pointer,
          'BAD_NAME',
          `state names must be 1 to 80 characters; "${name}" has ${name.length}`,
        );
      }
      const earlier = this.stateNames.get(name);
      if (earlier !== undefined) {
        this.add(
          pointer,
          'DUPLICATE_STATE',
          `state name "${name}" is already used at ${earlier}; names must be unique in the whole state machine`,
        );
      } else {
        this.stateNames.set(name, pointer);
      }
      this.state(states[name], pointer, names, ql);
    }
    this.reachability(def, states, base);
  }

  private reachability(def: Obj, states: Obj, base: string): void {
    if (typeof def.StartAt !== 'string' || !(def.StartAt in states)) return;
    const seen = new Set<string>();
    const queue = [def.StartAt];
    let terminal = false;
    while (queue.length > 0) {
      const name = queue.pop()!;
      if (seen.has(name)) continue;
      seen.add(name);
      const s = states[name];
      if (!isObj(s)) continue;
      if (s.End === true || s.Type === 'Succeed' || s.Type === 'Fail') terminal = true;
      const targets: unknown[] = [s.Next, s.Default];
      if (Array.isArray(s.Choices)) for (const c of s.Choices) if (isObj(c)) targets.push(c.Next);
      if (Array.isArray(s.Catch)) for (const c of s.Catch) if (isObj(c)) targets.push(c.Next);
      for (const t of targets) if (typeof t === 'string' && t in states) queue.push(t);
    }
    for (const name of Object.keys(states)) {
      if (!seen.has(name)) {
        this.add(
          ptr(base, 'States', name),
          'UNREACHABLE',
          `state "${name}" cannot be reached from StartAt "${def.StartAt}"`,
        );
      }
    }
    if (!terminal) {
      this.add(
        ptr(base, 'States'),
        'NO_TERMINAL',
        'no state reachable from StartAt ends the execution (End, Succeed or Fail)',
      );
    }
  }

  private target(value: unknown, pointer: string, names: string[]): void {
    if (typeof value !== 'string') {
      this.add(pointer, 'BAD_VALUE', `must name a state, not ${describe(value)}`);
    } else if (!names.includes(value)) {
      this.add(
        pointer,
        'MISSING_STATE',
        `state "${value}" does not exist${didYouMean(value, names)}`,
      );
    }
  }

  private state(s: unknown, pointer: string, names: string[], parentQl: QueryLanguage): void {
    if (!isObj(s)) {
      this.add(pointer, 'NOT_AN_OBJECT', `a state must be an object, not ${describe(s)}`);
      return;
    }
    const type = s.Type;
    if (typeof type !== 'string' || !STATE_TYPES.includes(type as never)) {
      this.add(
        ptr(pointer, 'Type'),
        type === undefined ? 'MISSING_FIELD' : 'BAD_VALUE',
        type === undefined
          ? `Type is required (one of ${STATE_TYPES.join(', ')})`
          : `unknown state type ${describe(type)}${typeof type === 'string' ? didYouMean(type, STATE_TYPES) : ''}`,
      );
      return;
    }
    const ql = this.queryLanguage(s.QueryLanguage, ptr(pointer, 'QueryLanguage')) ?? parentQl;
    const spec = FIELDS[type];
    const allowed = new Set([...COMMON, ...spec.both, ...spec[ql]]);
    const other = ql === 'JSONPath' ? 'JSONata' : 'JSONPath';
    for (const key of Object.keys(s)) {
      if (allowed.has(key)) continue;
      if (
        spec[other].includes(key) ||
        (ql === 'JSONata' && PATH_IO.includes(key) && FIELDS[type].JSONPath.includes(key))
      ) {
        this.add(
          ptr(pointer, key),
          'WRONG_QUERY_LANGUAGE',
          `field "${key}" is not allowed in a ${ql} ${type} state (it is a ${other} field)`,
        );
      } else {
        this.add(
          ptr(pointer, key),
          'UNKNOWN_FIELD',
          `unknown field "${key}" in a ${type} state${didYouMean(key, allowed)}`,
        );
      }
    }
    // Transitions.
    const terminal = type === 'Succeed' || type === 'Fail';
    if (type !== 'Choice' && !terminal) {
      const hasNext = s.Next !== undefined;
      const hasEnd = s.End !== undefined;
      if (hasNext === hasEnd) {
        this.add(pointer, 'TRANSITION', `a ${type} state needs exactly one of Next or End`);
      }
      if (hasNext) this.target(s.Next, ptr(pointer, 'Next'), names);
      if (hasEnd && s.End !== true) this.add(ptr(pointer, 'End'), 'BAD_VALUE', 'End must be true');
    }
    if (s.Assign !== undefined) this.assign(s.Assign, ptr(pointer, 'Assign'), ql);
    if (ql === 'JSONata') this.jsonataFields(s, pointer);
    else this.pathFields(s, pointer, type);
    if (s.Retry !== undefined) this.retry(s.Retry, ptr(pointer, 'Retry'));
    if (s.Catch !== undefined) this.catchers(s.Catch, ptr(pointer, 'Catch'), names, ql);
    switch (type) {
      case 'Task':
        this.task(s, pointer);
        break;
      case 'Choice':
        this.choice(s, pointer, names, ql);
        break;
      case 'Wait':
        this.exactlyOne(s, pointer, ['Seconds', 'SecondsPath', 'Timestamp', 'TimestampPath']);
        if (typeof s.Seconds === 'number' && !(Number.isInteger(s.Seconds) && s.Seconds >= 0)) {
          this.add(
            ptr(pointer, 'Seconds'),
            'BAD_VALUE',
            `Seconds must be a non-negative integer, not ${s.Seconds}`,
          );
        }
        if (
          typeof s.Timestamp === 'string' &&
          ql === 'JSONPath' &&
          Number.isNaN(Date.parse(s.Timestamp))
        ) {
          this.add(
            ptr(pointer, 'Timestamp'),
            'BAD_VALUE',
            `Timestamp must be an RFC 3339 date-time, not ${describe(s.Timestamp)}`,
          );
        }
        break;
      case 'Fail':
        this.atMostOne(s, pointer, ['Error', 'ErrorPath']);
        this.atMostOne(s, pointer, ['Cause', 'CausePath']);
        break;
      case 'Parallel':
        if (!Array.isArray(s.Branches) || s.Branches.length === 0) {
          this.add(
            ptr(pointer, 'Branches'),
            'MISSING_FIELD',
            'Branches must be a non-empty array of state machines',
          );
        } else {
          s.Branches.forEach((b, i) => {
            if (!isObj(b))
              this.add(
                ptr(pointer, 'Branches', i),
                'NOT_AN_OBJECT',
                `a branch must be an object with StartAt and States, not ${describe(b)}`,
              );
            else this.scope(b, ptr(pointer, 'Branches', i), ql, false);
          });
        }
        break;
      case 'Map':
        this.map(s, pointer, ql);
        break;
    }
  }

  private exactlyOne(s: Obj, pointer: string, fields: string[]): void {
    const present = fields.filter((f) => s[f] !== undefined);
    if (present.length !== 1) {
      this.add(
        pointer,
        'FIELD_COMBINATION',
        present.length === 0
          ? `needs one of ${fields.join(', ')}`
          : `has ${present.join(' and ')}; exactly one of ${fields.join(', ')} is allowed`,
      );
    }
  }

  /** A field that, when given, must be one of `values`. */
  private oneOf(s: Obj, pointer: string, field: string, values: readonly string[]): void {
    const v = s[field];
    if (v !== undefined && !values.includes(v as string))
      this.add(
        ptr(pointer, field),
        'BAD_VALUE',
        `${field} must be ${values.join(', ')}, not ${describe(v)}`,
      );
  }

  private resultWriter(w: unknown, pointer: string, ql: QueryLanguage): void {
    if (!isObj(w)) {
      this.add(pointer, 'NOT_AN_OBJECT', 'ResultWriter must be an object');
      return;
    }
    if (w.Resource === undefined && w.WriterConfig === undefined) {
      this.add(
        pointer,
        'MISSING_FIELD',
        'ResultWriter needs a Resource (with Parameters or Arguments naming the Bucket and Prefix), a WriterConfig, or both',
      );
    }
    if (w.Resource !== undefined && w.Resource !== RESULT_WRITER_RESOURCE)
      this.add(
        ptr(pointer, 'Resource'),
        'BAD_VALUE',
        `a ResultWriter's Resource is ${RESULT_WRITER_RESOURCE}, not ${describe(w.Resource)}`,
      );
    if (w.Resource === undefined && (w.Parameters ?? w.Arguments) !== undefined)
      this.add(
        pointer,
        'MISSING_FIELD',
        `ResultWriter has ${w.Parameters !== undefined ? 'Parameters' : 'Arguments'} but no Resource`,
      );
    if (w.WriterConfig !== undefined) {
      if (!isObj(w.WriterConfig)) {
        this.add(ptr(pointer, 'WriterConfig'), 'NOT_AN_OBJECT', 'WriterConfig must be an object');
      } else {
        this.oneOf(w.WriterConfig, ptr(pointer, 'WriterConfig'), 'Transformation', TRANSFORMATIONS);
        this.oneOf(w.WriterConfig, ptr(pointer, 'WriterConfig'), 'OutputType', OUTPUT_TYPES);
      }
    }
    if (w.Parameters !== undefined && ql === 'JSONPath')
      this.template(w.Parameters, ptr(pointer, 'Parameters'));
  }

  private atMostOne(s: Obj, pointer: string, fields: string[]): void {
    const present = fields.filter((f) => s[f] !== undefined);
    if (present.length > 1) {
      this.add(
        pointer,
        'FIELD_COMBINATION',
        `has both ${present.join(' and ')}; at most one is allowed`,
      );
    }
  }

  private task(s: Obj, pointer: string): void {
    if (
      isObj(s.Resource) &&
      Object.keys(s.Resource).length === 1 &&
      /^(Ref|Fn::\w+)$/.test(Object.keys(s.Resource)[0])
    ) {
      // A CloudFormation intrinsic (Ref, Fn::GetAtt, …): resolved when the template is deployed.
    } else if (typeof s.Resource !== 'string') {
      this.add(ptr(pointer, 'Resource'), 'MISSING_FIELD', 'a Task state needs a Resource (an ARN)');
    } else if (this.checkArn && !ARN.test(s.Resource) && !PLACEHOLDER.test(s.Resource)) {
      this.add(
        ptr(pointer, 'Resource'),
        'BAD_ARN',
        `Resource ${describe(s.Resource)} is not an ARN (arn:aws:…)`,
      );
    }
    this.atMostOne(s, pointer, ['TimeoutSeconds', 'TimeoutSecondsPath']);
    this.atMostOne(s, pointer, ['HeartbeatSeconds', 'HeartbeatSecondsPath']);
    for (const f of ['TimeoutSeconds', 'HeartbeatSeconds']) {
      const v = s[f];
      if (typeof v === 'number' && !(Number.isInteger(v) && v > 0)) {
        this.add(ptr(pointer, f), 'BAD_VALUE', `${f} must be a positive integer, not ${v}`);
      }
    }
    if (
      typeof s.TimeoutSeconds === 'number' &&
      typeof s.HeartbeatSeconds === 'number' &&
      s.HeartbeatSeconds >= s.TimeoutSeconds
    ) {
      this.add(
        ptr(pointer, 'HeartbeatSeconds'),
        'BAD_VALUE',
        `HeartbeatSeconds (${s.HeartbeatSeconds}) must be smaller than TimeoutSeconds (${s.TimeoutSeconds})`,
      );
    }
    if (s.Credentials !== undefined) {
      if (!isObj(s.Credentials)) {
        this.add(ptr(pointer, 'Credentials'), 'BAD_VALUE', 'Credentials must be an object');
      } else if ((s.QueryLanguage ?? 'JSONPath') !== 'JSONata') {
        this.template(s.Credentials, ptr(pointer, 'Credentials'));
      }
    }
  }

  private map(s: Obj, pointer: string, ql: QueryLanguage): void {
    this.exactlyOne(s, pointer, ['ItemProcessor', 'Iterator']);
    this.atMostOne(s, pointer, ['ItemSelector', 'Parameters']);
    this.atMostOne(s, pointer, ['MaxConcurrency', 'MaxConcurrencyPath']);
    this.atMostOne(s, pointer, ['ToleratedFailureCount', 'ToleratedFailureCountPath']);
    this.atMostOne(s, pointer, ['ToleratedFailurePercentage', 'ToleratedFailurePercentagePath']);
    const nonNegInt = (f: string) => {
      const v = s[f];
      if (typeof v === 'number' && !(Number.isInteger(v) && v >= 0)) {
        this.add(ptr(pointer, f), 'BAD_VALUE', `${f} must be a non-negative integer, not ${v}`);
      }
    };
    nonNegInt('MaxConcurrency');
    nonNegInt('ToleratedFailureCount');
    const pct = s.ToleratedFailurePercentage;
    if (typeof pct === 'number' && !(pct >= 0 && pct <= 100)) {
      this.add(
        ptr(pointer, 'ToleratedFailurePercentage'),
        'BAD_VALUE',
        `ToleratedFailurePercentage must be between 0 and 100, not ${pct}`,
      );
    }
    const processorField = s.ItemProcessor !== undefined ? 'ItemProcessor' : 'Iterator';
    const processor = s[processorField];
    if (processor !== undefined) {
      if (!isObj(processor)) {
        this.add(
          ptr(pointer, processorField),
          'NOT_AN_OBJECT',
          `${processorField} must be an object with StartAt and States`,
        );
      } else {
        const mode = isObj(processor.ProcessorConfig) ? processor.ProcessorConfig.Mode : undefined;
        if (mode !== undefined && mode !== 'INLINE' && mode !== 'DISTRIBUTED') {
          this.add(
            ptr(pointer, processorField, 'ProcessorConfig', 'Mode'),
            'BAD_VALUE',
            `Mode must be INLINE or DISTRIBUTED, not ${describe(mode)}`,
          );
        }
        this.scope(
          processor,
          ptr(pointer, processorField),
          this.queryLanguage(
            processor.QueryLanguage,
            ptr(pointer, processorField, 'QueryLanguage'),
          ) ?? ql,
          false,
        );
      }
    }
    if (s.ItemReader !== undefined) {
      const reader = s.ItemReader;
      const rp = ptr(pointer, 'ItemReader');
      if (!isObj(reader)) {
        this.add(rp, 'NOT_AN_OBJECT', 'ItemReader must be an object');
      } else {
        if (typeof reader.Resource !== 'string')
          this.add(ptr(rp, 'Resource'), 'MISSING_FIELD', 'ItemReader needs a Resource');
        if (isObj(reader.ReaderConfig)) {
          const cp = ptr(rp, 'ReaderConfig');
          this.atMostOne(reader.ReaderConfig, cp, ['MaxItems', 'MaxItemsPath']);
          this.oneOf(reader.ReaderConfig, cp, 'InputType', READER_INPUT_TYPES);
          this.oneOf(reader.ReaderConfig, cp, 'CSVHeaderLocation', ['FIRST_ROW', 'GIVEN']);
          this.oneOf(reader.ReaderConfig, cp, 'CSVDelimiter', CSV_DELIMITERS);
          const headers = reader.ReaderConfig.CSVHeaders;
          if (reader.ReaderConfig.CSVHeaderLocation === 'GIVEN') {
            if (!Array.isArray(headers) || headers.some((h) => typeof h !== 'string'))
              this.add(
                ptr(cp, 'CSVHeaders'),
                headers === undefined ? 'MISSING_FIELD' : 'BAD_VALUE',
                'CSVHeaderLocation GIVEN needs CSVHeaders, an array of column names',
              );
          }
        }
        if (reader.Parameters !== undefined && ql === 'JSONPath')
          this.template(reader.Parameters, ptr(rp, 'Parameters'));
      }
    }
    if (s.ResultWriter !== undefined)
      this.resultWriter(s.ResultWriter, ptr(pointer, 'ResultWriter'), ql);
    if (isObj(s.ItemBatcher)) {
      const b = s.ItemBatcher;
      const bp = ptr(pointer, 'ItemBatcher');
      this.atMostOne(b, bp, ['MaxItemsPerBatch', 'MaxItemsPerBatchPath']);
      this.atMostOne(b, bp, ['MaxInputBytesPerBatch', 'MaxInputBytesPerBatchPath']);
      if (ql === 'JSONPath' && b.BatchInput !== undefined)
        this.template(b.BatchInput, ptr(bp, 'BatchInput'));
    }
    if (ql === 'JSONPath') {
      if (s.ItemSelector !== undefined) this.template(s.ItemSelector, ptr(pointer, 'ItemSelector'));
    }
  }

  private retry(value: unknown, pointer: string): void {
    if (!Array.isArray(value)) {
      this.add(pointer, 'BAD_VALUE', 'Retry must be an array of retriers');
      return;
    }
    value.forEach((r, i) => {
      const rp = ptr(pointer, i);
      if (!isObj(r)) {
        this.add(rp, 'NOT_AN_OBJECT', 'a retrier must be an object');
        return;
      }
      for (const key of Object.keys(r)) {
        if (!RETRIER_FIELDS.includes(key))
          this.add(
            ptr(rp, key),
            'UNKNOWN_FIELD',
            `unknown field "${key}" in a retrier${didYouMean(key, RETRIER_FIELDS)}`,
          );
      }
      this.errorEquals(r.ErrorEquals, ptr(rp, 'ErrorEquals'), i === value.length - 1);
      const checkNumber = (f: string, ok: (n: number) => boolean, what: string) => {
        const v = r[f];
        if (v !== undefined && (typeof v !== 'number' || !ok(v)))
          this.add(ptr(rp, f), 'BAD_VALUE', `${f} must be ${what}, not ${describe(v)}`);
      };
      checkNumber('IntervalSeconds', (n) => Number.isInteger(n) && n >= 1, 'an integer ≥ 1');
      checkNumber('MaxAttempts', (n) => Number.isInteger(n) && n >= 0, 'an integer ≥ 0');
      checkNumber('BackoffRate', (n) => n >= 1, 'a number ≥ 1');
      checkNumber('MaxDelaySeconds', (n) => Number.isInteger(n) && n >= 1, 'an integer ≥ 1');
      if (
        r.JitterStrategy !== undefined &&
        r.JitterStrategy !== 'FULL' &&
        r.JitterStrategy !== 'NONE'
      ) {
        this.add(
          ptr(rp, 'JitterStrategy'),
          'BAD_VALUE',
          `JitterStrategy must be FULL or NONE, not ${describe(r.JitterStrategy)}`,
        );
      }
    });
  }

  private catchers(value: unknown, pointer: string, names: string[], ql: QueryLanguage): void {
    if (!Array.isArray(value)) {
      this.add(pointer, 'BAD_VALUE', 'Catch must be an array of catchers');
      return;
    }
    const fields = [...CATCHER_FIELDS, ...(ql === 'JSONata' ? ['Output'] : ['ResultPath'])];
    value.forEach((c, i) => {
      const cp = ptr(pointer, i);
      if (!isObj(c)) {
        this.add(cp, 'NOT_AN_OBJECT', 'a catcher must be an object');
        return;
      }
      for (const key of Object.keys(c)) {
        if (!fields.includes(key))
          this.add(
            ptr(cp, key),
            'UNKNOWN_FIELD',
            `unknown field "${key}" in a catcher${didYouMean(key, fields)}`,
          );
      }
      this.errorEquals(c.ErrorEquals, ptr(cp, 'ErrorEquals'), i === value.length - 1);
      this.target(c.Next, ptr(cp, 'Next'), names);
      if (c.ResultPath !== undefined && c.ResultPath !== null)
        this.referencePath(c.ResultPath, ptr(cp, 'ResultPath'));
      if (c.Assign !== undefined) this.assign(c.Assign, ptr(cp, 'Assign'), ql);
      if (c.Output !== undefined) this.jsonataValue(c.Output, ptr(cp, 'Output'));
    });
  }

  private errorEquals(value: unknown, pointer: string, last: boolean): void {
    if (!Array.isArray(value) || value.length === 0) {
      this.add(pointer, 'MISSING_FIELD', 'ErrorEquals must be a non-empty array of error names');
      return;
    }
    value.forEach((e, i) => {
      if (typeof e !== 'string')
        this.add(ptr(pointer, i), 'BAD_VALUE', `error names are strings, not ${describe(e)}`);
    });
    if (value.includes('States.ALL')) {
      if (value.length > 1)
        this.add(pointer, 'STATES_ALL', 'States.ALL must appear alone in ErrorEquals');
      if (!last)
        this.add(pointer, 'STATES_ALL', 'States.ALL must be in the last retrier or catcher');
    }
  }

  private choice(s: Obj, pointer: string, names: string[], ql: QueryLanguage): void {
    if (!Array.isArray(s.Choices) || s.Choices.length === 0) {
      this.add(
        ptr(pointer, 'Choices'),
        'MISSING_FIELD',
        'a Choice state needs a non-empty Choices array',
      );
    } else {
      s.Choices.forEach((rule, i) => this.rule(rule, ptr(pointer, 'Choices', i), true, names, ql));
    }
    if (s.Default !== undefined) this.target(s.Default, ptr(pointer, 'Default'), names);
    for (const f of ['Next', 'End']) {
      if (s[f] !== undefined)
        this.add(
          ptr(pointer, f),
          'TRANSITION',
          `a Choice state cannot have ${f}; its rules and Default choose the next state`,
        );
    }
  }

  private rule(
    rule: unknown,
    pointer: string,
    top: boolean,
    names: string[],
    ql: QueryLanguage,
  ): void {
    if (!isObj(rule)) {
      this.add(pointer, 'NOT_AN_OBJECT', 'a Choice rule must be an object');
      return;
    }
    if (top) {
      if (rule.Next === undefined)
        this.add(ptr(pointer, 'Next'), 'MISSING_FIELD', 'a top-level Choice rule needs Next');
      else this.target(rule.Next, ptr(pointer, 'Next'), names);
      if (rule.Assign !== undefined) this.assign(rule.Assign, ptr(pointer, 'Assign'), ql);
    } else if (rule.Next !== undefined) {
      this.add(ptr(pointer, 'Next'), 'TRANSITION', 'only top-level Choice rules have Next');
    }
    if (ql === 'JSONata') {
      const allowed = top
        ? ['Condition', 'Next', 'Comment', 'Assign', 'Output']
        : ['Condition', 'Comment'];
      for (const key of Object.keys(rule)) {
        if (!allowed.includes(key))
          this.add(
            ptr(pointer, key),
            'UNKNOWN_FIELD',
            `field "${key}" is not allowed in a JSONata Choice rule${didYouMean(key, allowed)}`,
          );
      }
      if (rule.Condition === undefined)
        this.add(
          ptr(pointer, 'Condition'),
          'MISSING_FIELD',
          'a JSONata Choice rule needs a Condition',
        );
      else if (typeof rule.Condition !== 'boolean')
        this.jsonataValue(rule.Condition, ptr(pointer, 'Condition'), true);
      if (rule.Output !== undefined) this.jsonataValue(rule.Output, ptr(pointer, 'Output'));
      return;
    }
    const combinators = ['And', 'Or', 'Not'].filter((k) => rule[k] !== undefined);
    const operators = Object.keys(rule).filter((k) => COMPARISON_OPERATORS.includes(k));
    const meta = new Set([
      'Variable',
      'Next',
      'Comment',
      'Assign',
      'And',
      'Or',
      'Not',
      ...operators,
    ]);
    for (const key of Object.keys(rule)) {
      if (!meta.has(key)) {
        this.add(
          ptr(pointer, key),
          'UNKNOWN_FIELD',
          `unknown field "${key}" in a Choice rule${didYouMean(key, [...COMPARISON_OPERATORS, 'Variable', 'Next', 'And', 'Or', 'Not'])}`,
        );
      }
    }
    if (combinators.length + operators.length !== 1) {
      this.add(
        pointer,
        'CHOICE_RULE',
        combinators.length + operators.length === 0
          ? 'a Choice rule needs one comparison operator (e.g. StringEquals) or And/Or/Not'
          : `a Choice rule has exactly one of And/Or/Not or a comparison; found ${[...combinators, ...operators].join(', ')}`,
      );
      return;
    }
    if (combinators.length === 1) {
      const c = combinators[0];
      if (rule.Variable !== undefined)
        this.add(ptr(pointer, 'Variable'), 'CHOICE_RULE', `a rule with ${c} has no Variable`);
      if (c === 'Not') this.rule(rule.Not, ptr(pointer, 'Not'), false, names, ql);
      else if (!Array.isArray(rule[c]) || (rule[c] as unknown[]).length === 0)
        this.add(ptr(pointer, c), 'BAD_VALUE', `${c} must be a non-empty array of rules`);
      else
        (rule[c] as unknown[]).forEach((r, i) =>
          this.rule(r, ptr(pointer, c, i), false, names, ql),
        );
      return;
    }
    const op = operators[0];
    if (typeof rule.Variable !== 'string') {
      this.add(ptr(pointer, 'Variable'), 'MISSING_FIELD', `a ${op} rule needs a Variable (a path)`);
    } else {
      this.path(rule.Variable, ptr(pointer, 'Variable'));
    }
    const v = rule[op];
    const vp = ptr(pointer, op);
    if (op.endsWith('Path')) {
      if (typeof v !== 'string')
        this.add(vp, 'BAD_VALUE', `${op} must be a path, not ${describe(v)}`);
      else this.path(v, vp);
    } else if (op.startsWith('Is') || op === 'BooleanEquals') {
      if (typeof v !== 'boolean')
        this.add(vp, 'BAD_VALUE', `${op} must be true or false, not ${describe(v)}`);
    } else if (op.startsWith('Numeric')) {
      if (typeof v !== 'number')
        this.add(vp, 'BAD_VALUE', `${op} compares with a number, not ${describe(v)}`);
    } else if (typeof v !== 'string') {
      this.add(vp, 'BAD_VALUE', `${op} compares with a string, not ${describe(v)}`);
    } else if (op.startsWith('Timestamp') && Number.isNaN(Date.parse(v))) {
      this.add(vp, 'BAD_VALUE', `${op} compares with an RFC 3339 timestamp, not ${describe(v)}`);
    }
  }

  private assign(value: unknown, pointer: string, ql: QueryLanguage): void {
    if (!isObj(value)) {
      this.add(pointer, 'BAD_VALUE', 'Assign must be an object of variable names to values');
      return;
    }
    for (const key of Object.keys(value)) {
      const name = ql === 'JSONPath' && key.endsWith('.$') ? key.slice(0, -2) : key;
      if (!VARIABLE_NAME.test(name)) {
        this.add(
          ptr(pointer, key),
          'BAD_NAME',
          `"${name}" is not a valid variable name (letters, digits and _, not starting with a digit)`,
        );
      }
    }
    if (ql === 'JSONPath') this.template(value, pointer);
    else this.jsonataValue(value, pointer);
  }

  private pathFields(s: Obj, pointer: string, type: string): void {
    for (const f of [
      'InputPath',
      'OutputPath',
      'ItemsPath',
      'SecondsPath',
      'TimestampPath',
      'ErrorPath',
      'CausePath',
      'TimeoutSecondsPath',
      'HeartbeatSecondsPath',
      'MaxConcurrencyPath',
      'ToleratedFailureCountPath',
      'ToleratedFailurePercentagePath',
    ]) {
      const v = s[f];
      if (v === undefined || (v === null && (f === 'InputPath' || f === 'OutputPath'))) continue;
      if (typeof v !== 'string') {
        this.add(ptr(pointer, f), 'BAD_PATH', `${f} must be a path string, not ${describe(v)}`);
      } else if ((f === 'ErrorPath' || f === 'CausePath') && isIntrinsicCall(v)) {
        this.intrinsic(v, ptr(pointer, f));
      } else {
        this.path(v, ptr(pointer, f));
      }
    }
    if (s.ResultPath !== undefined && s.ResultPath !== null)
      this.referencePath(s.ResultPath, ptr(pointer, 'ResultPath'));
    for (const f of ['Parameters', 'ResultSelector']) {
      if (
        s[f] !== undefined &&
        !(type === 'Map' && f === 'Parameters' && s.ItemSelector !== undefined)
      )
        this.template(s[f], ptr(pointer, f));
    }
    if (s.ResultSelector !== undefined && !isObj(s.ResultSelector) && s.ResultSelector !== null) {
      this.add(ptr(pointer, 'ResultSelector'), 'BAD_VALUE', 'ResultSelector must be an object');
    }
  }

  private jsonataFields(s: Obj, pointer: string): void {
    for (const f of [
      'Arguments',
      'Output',
      'Items',
      'Seconds',
      'Timestamp',
      'Error',
      'Cause',
      'TimeoutSeconds',
      'HeartbeatSeconds',
      'MaxConcurrency',
      'ToleratedFailureCount',
      'ToleratedFailurePercentage',
      'ItemSelector',
    ]) {
      if (s[f] !== undefined) this.jsonataValue(s[f], ptr(pointer, f));
    }
  }

  /** A JSONata field value: strings that look like `{% %}` must be well formed and parse. */
  private jsonataValue(value: unknown, pointer: string, mustBeExpression = false): void {
    if (typeof value === 'string') {
      const opens = value.startsWith('{%');
      const closes = value.endsWith('%}');
      if (!opens && !closes) {
        if (mustBeExpression)
          this.add(
            pointer,
            'BAD_JSONATA',
            `must be a JSONata expression "{% … %}", not ${describe(value)}`,
          );
        return;
      }
      if (!/^\{% .+ %\}$/.test(value)) {
        this.add(
          pointer,
          'BAD_JSONATA',
          `a JSONata expression is written "{% expression %}" on one line, with a space inside each delimiter; got ${describe(value)}`,
        );
        return;
      }
      try {
        compileJsonata(value.slice(2, -2).trim());
      } catch (err) {
        const e = err as { message?: string; position?: number };
        this.add(
          pointer,
          'BAD_JSONATA',
          `invalid JSONata ${describe(value)}: ${e.message ?? String(err)}${e.position !== undefined ? ` (at character ${e.position})` : ''}`,
        );
      }
      return;
    }
    if (Array.isArray(value)) value.forEach((v, i) => this.jsonataValue(v, ptr(pointer, i)));
    else if (isObj(value))
      for (const [k, v] of Object.entries(value)) this.jsonataValue(v, ptr(pointer, k));
  }

  /** A JSONPath payload template: `.$` keys hold paths or intrinsic calls; no duplicate keys after stripping `.$`. */
  private template(value: unknown, pointer: string): void {
    if (Array.isArray(value)) {
      value.forEach((v, i) => this.template(v, ptr(pointer, i)));
      return;
    }
    if (!isObj(value)) return;
    const seen = new Map<string, string>();
    for (const [key, v] of Object.entries(value)) {
      const dynamic = key.endsWith('.$') && key.length > 2;
      const name = dynamic ? key.slice(0, -2) : key;
      const other = seen.get(name);
      if (other !== undefined) {
        this.add(
          ptr(pointer, key),
          'DUPLICATE_FIELD',
          `"${key}" and "${other}" both produce the field "${name}"`,
        );
      }
      seen.set(name, key);
      if (dynamic) {
        if (typeof v !== 'string') {
          this.add(
            ptr(pointer, key),
            'BAD_PATH',
            `"${key}" must hold a path or an intrinsic call, not ${describe(v)}`,
          );
        } else if (isIntrinsicCall(v)) {
          this.intrinsic(v, ptr(pointer, key));
        } else {
          this.path(v, ptr(pointer, key));
        }
      } else {
        this.template(v, ptr(pointer, key));
      }
    }
  }

  private intrinsic(text: string, pointer: string): void {
    try {
      parseIntrinsic(text);
    } catch (err) {
      if (err instanceof IntrinsicSyntaxError)
        this.add(pointer, 'BAD_INTRINSIC', `invalid intrinsic call: ${err.message}`);
      else throw err;
    }
  }

  private path(value: string, pointer: string): void {
    if (this.checkPaths && !isValidPath(value)) {
      this.add(
        pointer,
        'BAD_PATH',
        `${describe(value)} is not a valid JSONPath (it starts with $, e.g. "$.reads[0]")`,
      );
    }
  }

  private referencePath(value: unknown, pointer: string): void {
    if (typeof value !== 'string') {
      this.add(pointer, 'BAD_PATH', `must be a reference path or null, not ${describe(value)}`);
    } else if (this.checkPaths && !isValidReferencePath(value)) {
      this.add(
        pointer,
        'BAD_PATH',
        `${describe(value)} is not a valid reference path (like "$.result" or "$['a b'][0]"; no variables, wildcards or filters)`,
      );
    }
  }
}

/** Returns every problem in an ASL definition (an empty array when it is valid). */
export function validate(definition: unknown, options: ValidateOptions = {}): ValidationProblem[] {
  const v = new Validator(options);
  v.machine(definition);
  return v.problems;
}

function pointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Walks the parsed document along a pointer, as deep as it goes. */
function nodeAt(root: Node | null, segments: string[]): Node | null {
  let node: Node | null = root;
  for (const seg of segments) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === seg);
      if (!pair) return node;
      node = (pair.value as Node | null) ?? (pair.key as Node);
    } else if (isSeq(node)) {
      const item = node.items[Number(seg)] as Node | undefined;
      if (!item) return node;
      node = item;
    } else {
      return node;
    }
  }
  return node;
}

/** Where in JSON text a problem lies: its line and column (1-based), when the text has them. */
export type Locate = (pointer: string) => { line: number; column: number } | undefined;

/**
 * Parses JSON text as JSON.parse does, and on failure says where: a problem with the line and
 * column of the syntax error. Duplicate keys (which JSON.parse hides) are problems too. On
 * success `locate` finds the line and column of any pointer into the value.
 */
export function parseJsonText(text: string): {
  value?: unknown;
  problems: ValidationProblem[];
  locate: Locate;
} {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const message = (err as Error).message;
    const m = /position (\d+)/.exec(message);
    const problem: ValidationProblem = {
      pointer: '',
      code: 'NOT_JSON',
      message: `not valid JSON: ${message}`,
    };
    if (m) {
      const before = text.slice(0, Number(m[1]));
      problem.line = before.split('\n').length;
      problem.column = Number(m[1]) - before.lastIndexOf('\n');
    } else {
      // Some of Node's messages give no position; a YAML parse of the text finds the place.
      const lines = new LineCounter();
      const error = parseDocument(text, { lineCounter: lines, prettyErrors: false }).errors[0];
      if (error) {
        const pos = lines.linePos(error.pos[0]);
        problem.line = pos.line;
        problem.column = pos.col;
      }
    }
    return { problems: [problem], locate: () => undefined };
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: true, lineCounter: lines, prettyErrors: false });
  const problems: ValidationProblem[] = [];
  for (const e of doc.errors) {
    if (e.code !== 'DUPLICATE_KEY') continue;
    const pos = lines.linePos(e.pos[0]);
    problems.push({
      pointer: '',
      code: 'DUPLICATE_KEY',
      message: `duplicate key at line ${pos.line}, column ${pos.col}: JSON objects must not repeat a key`,
      line: pos.line,
      column: pos.col,
    });
  }
  const locate: Locate = (pointer) => {
    const node = nodeAt(doc.contents as Node | null, pointerSegments(pointer));
    if (!node?.range) return undefined;
    const pos = lines.linePos(node.range[0]);
    return { line: pos.line, column: pos.col };
  };
  return { value, problems, locate };
}

/** Gives each problem the line and column of its pointer, and sorts them by place. */
export function placeProblems(problems: ValidationProblem[], locate: Locate): ValidationProblem[] {
  for (const p of problems) {
    if (p.line !== undefined) continue;
    const pos = locate(p.pointer);
    if (pos) {
      p.line = pos.line;
      p.column = pos.column;
    }
  }
  return problems.sort(
    (a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0),
  );
}

/**
 * Validates raw JSON text: syntax errors with line and column, duplicate keys, then every
 * problem `validate` finds, each with the line and column of the field.
 */
export function validateText(
  text: string,
  options: ValidateOptions = {},
): { definition?: unknown; problems: ValidationProblem[] } {
  const parsed = parseJsonText(text);
  if (parsed.value === undefined) return { problems: parsed.problems };
  const problems = [...parsed.problems, ...validate(parsed.value, options)];
  return { definition: parsed.value, problems: placeProblems(problems, parsed.locate) };
}

/** Formats a problem as "<pointer>: <message>" (the pointer "(root)" for the whole document). */
export function formatProblem(p: ValidationProblem): string {
  return `${p.pointer === '' ? '(root)' : p.pointer}: ${p.message}`;
}

/** Formats a problem found in a file: "file:line:col /pointer: message". */
export function formatProblemAt(file: string, p: ValidationProblem): string {
  const where = p.line !== undefined ? `${file}:${p.line}:${p.column ?? 1}` : file;
  return `${where} ${formatProblem(p)}`;
}
