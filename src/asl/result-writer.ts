/**
 * A Map state's `ResultWriter`, as a Distributed Map exports its results: a record per
 * iteration (AWS's child workflow execution) in `SUCCEEDED_0.json`, `FAILED_0.json` and
 * `PENDING_0.json`, then a `manifest.json` naming them, all under `<Prefix>/<MapRunId>/`; the
 * Map's result becomes `{ MapRunArn, ResultWriterDetails }`. Strand's iterations are threads,
 * not executions, so their names and ARNs are derived from the execution, the Map state and the
 * index: the same run always gives the same keys and the same bytes, and a write repeated after a
 * restart changes nothing. Pure: the interpreter builds the request, a driver writes its objects.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { StatesError } from './errors.js';
import type { Json, JsonObject } from './types.js';

/** The S3 resource a ResultWriter calls (the only one Step Functions documents). */
export const RESULT_WRITER_RESOURCE = 'arn:aws:states:::s3:putObject';

export const TRANSFORMATIONS = ['NONE', 'COMPACT', 'FLATTEN'] as const;
export const OUTPUT_TYPES = ['JSON', 'JSONL'] as const;

/** `ResultWriter.WriterConfig`, with AWS's defaults filled in. */
export interface WriterConfigInfo {
  Transformation: (typeof TRANSFORMATIONS)[number];
  OutputType: (typeof OUTPUT_TYPES)[number];
}

/** How one iteration ended, in the Status words of DescribeExecution. */
export type IterationStatus = 'SUCCEEDED' | 'FAILED' | 'ABORTED' | 'PENDING';

/** What the interpreter knows of one iteration when the Map run ends. */
export interface IterationRun {
  index: number;
  status: IterationStatus;
  input: Json;
  output?: Json;
  error?: string;
  cause?: string;
  /** Epoch ms; unknown for iterations a redrive did not run again. */
  start?: number;
  stop?: number;
}

/** The names of one Map run and of its iterations. */
export interface MapRunNames {
  arn: string;
  /** The last part of the ARN: the folder of the result files. */
  id: string;
  /** `…:execution:STATEMACHINE/LABEL`: an iteration's ARN is this, `:` and its name. */
  executionPrefix: string;
  stateMachineArn: string;
}

/**
 * The InvokeTask input of a ResultWriter: where to write, and the records of each file (already
 * transformed as WriterConfig says). Drivers turn it into objects with `resultWriterObjects`.
 */
export interface ResultWriterRequest extends JsonObject {
  Bucket: string;
  Prefix: string;
  MapRunArn: string;
  OutputType: WriterConfigInfo['OutputType'];
  ResultFiles: { SUCCEEDED: Json[]; FAILED: Json[]; PENDING: Json[] };
}

const FILE_KINDS = ['SUCCEEDED', 'FAILED', 'PENDING'] as const;

/** A name-based id in UUID form: the same seed always gives the same id. */
function uuidOf(seed: string): string {
  const hex = bytesToHex(sha256(new TextEncoder().encode(seed)))
    .slice(0, 32)
    .split('');
  hex[12] = '5';
  hex[16] = ((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16);
  const h = hex.join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The Map run of one entry of a Map state. AWS's ARN is
 * `arn:aws:states:REGION:ACCOUNT:mapRun:STATEMACHINE/LABEL:ID`; the label is the state's `Label`,
 * else (where AWS makes one up) the state's name; the id is derived from `seed`, which names the
 * entry (execution, thread, event id, attempt).
 */
export function mapRunNames(
  executionArn: string,
  stateMachineName: string,
  label: string,
  seed: string,
): MapRunNames {
  const m = /^arn:([^:]+):states:([^:]*):([^:]*):execution:([^:]+):/.exec(executionArn);
  const [partition, region, account, machine] = m
    ? [m[1], m[2], m[3], m[4]]
    : ['aws', 'local', '000000000000', stateMachineName];
  const safeLabel = label.replace(/[^A-Za-z0-9_-]/g, '-');
  const id = uuidOf(`${executionArn}\n${seed}`);
  const base = `arn:${partition}:states:${region}:${account}`;
  return {
    arn: `${base}:mapRun:${machine}/${safeLabel}:${id}`,
    id,
    executionPrefix: `${base}:execution:${machine}/${safeLabel}`,
    stateMachineArn: `${base}:stateMachine:${machine}/${safeLabel}`,
  };
}

/** WriterConfig with its defaults; a StatesError for a value AWS does not know. */
export function writerConfigOf(config: unknown, exporting: boolean): WriterConfigInfo {
  const c = (config ?? {}) as Record<string, unknown>;
  const transformation = c.Transformation ?? (exporting ? 'NONE' : 'COMPACT');
  const outputType = c.OutputType ?? 'JSON';
  if (!TRANSFORMATIONS.includes(transformation as never))
    throw new StatesError(
      'States.Runtime',
      `ResultWriter.WriterConfig.Transformation must be ${TRANSFORMATIONS.join(', ')}, not ${JSON.stringify(transformation)}`,
    );
  if (!OUTPUT_TYPES.includes(outputType as never))
    throw new StatesError(
      'States.Runtime',
      `ResultWriter.WriterConfig.OutputType must be ${OUTPUT_TYPES.join(' or ')}, not ${JSON.stringify(outputType)}`,
    );
  return {
    Transformation: transformation as WriterConfigInfo['Transformation'],
    OutputType: outputType as WriterConfigInfo['OutputType'],
  };
}

/** One iteration as DescribeExecution shows a child execution (Transformation NONE). */
export function iterationRecord(names: MapRunNames, run: IterationRun): JsonObject {
  const name = uuidOf(`${names.arn}\n${run.index}`);
  const record: JsonObject = {};
  if (run.status !== 'PENDING') record.ExecutionArn = `${names.executionPrefix}:${name}`;
  record.Input = JSON.stringify(run.input);
  record.InputDetails = { Included: true };
  if (run.status !== 'PENDING') record.Name = name;
  if (run.status === 'SUCCEEDED') {
    record.Output = JSON.stringify(run.output ?? null);
    record.OutputDetails = { Included: true };
  }
  if (run.error !== undefined) record.Error = run.error;
  if (run.cause !== undefined) record.Cause = run.cause;
  if (run.status !== 'PENDING') {
    record.RedriveCount = 0;
    if (run.status === 'SUCCEEDED') {
      record.RedriveStatus = 'NOT_REDRIVABLE';
      record.RedriveStatusReason = 'Execution is SUCCEEDED and cannot be redriven';
    } else {
      record.RedriveStatus = 'REDRIVABLE_BY_MAP_RUN';
    }
    if (run.start !== undefined) record.StartDate = new Date(run.start).toISOString();
  }
  record.StateMachineArn = names.stateMachineArn;
  record.Status = run.status;
  if (run.stop !== undefined && run.status !== 'PENDING')
    record.StopDate = new Date(run.stop).toISOString();
  return record;
}

/**
 * A succeeded iteration as WriterConfig.Transformation shapes it: its whole record (NONE), its
 * output (COMPACT), or its output's elements when that is an array (FLATTEN). Failed ones keep
 * their whole record whatever the transformation, as AWS does.
 */
function shaped(names: MapRunNames, run: IterationRun, config: WriterConfigInfo): Json[] {
  if (run.status !== 'SUCCEEDED' || config.Transformation === 'NONE')
    return [iterationRecord(names, run)];
  const output = run.output ?? null;
  return config.Transformation === 'FLATTEN' && Array.isArray(output) ? output : [output];
}

/** The Map's result when a WriterConfig is given without a Resource: nothing is written. */
export function previewResults(
  names: MapRunNames,
  runs: IterationRun[],
  config: WriterConfigInfo,
): Json[] {
  return runs.flatMap((run) => shaped(names, run, config));
}

/** The request a ResultWriter task carries (see ResultWriterRequest). */
export function resultWriterRequest(
  names: MapRunNames,
  bucket: string,
  prefix: string,
  runs: IterationRun[],
  config: WriterConfigInfo,
): ResultWriterRequest {
  const files: ResultWriterRequest['ResultFiles'] = { SUCCEEDED: [], FAILED: [], PENDING: [] };
  for (const run of runs) {
    const kind =
      run.status === 'SUCCEEDED' ? 'SUCCEEDED' : run.status === 'PENDING' ? 'PENDING' : 'FAILED';
    files[kind].push(...shaped(names, run, config));
  }
  return {
    Bucket: bucket,
    Prefix: prefix,
    MapRunArn: names.arn,
    OutputType: config.OutputType,
    ResultFiles: files,
  };
}

function folderOf(request: ResultWriterRequest): string {
  const id = request.MapRunArn.slice(request.MapRunArn.lastIndexOf(':') + 1);
  const prefix =
    request.Prefix === '' || request.Prefix.endsWith('/') ? request.Prefix : `${request.Prefix}/`;
  return `${prefix}${id}/`;
}

/** The Map state's result once its results are written. */
export function resultWriterOutput(request: ResultWriterRequest): JsonObject {
  return {
    MapRunArn: request.MapRunArn,
    ResultWriterDetails: { Bucket: request.Bucket, Key: `${folderOf(request)}manifest.json` },
  };
}

/**
 * The objects to put in the request's bucket, in the order to put them: each non-empty result
 * file, then the manifest, so that a manifest names only files already there.
 */
export function resultWriterObjects(request: ResultWriterRequest): { key: string; body: string }[] {
  const folder = folderOf(request);
  const objects: { key: string; body: string }[] = [];
  const manifestFiles: JsonObject = {};
  for (const kind of ['FAILED', 'PENDING', 'SUCCEEDED'] as const) {
    const records = request.ResultFiles[kind] ?? [];
    const listed: Json[] = [];
    if (records.length > 0) {
      const body =
        request.OutputType === 'JSONL'
          ? records.map((r) => JSON.stringify(r)).join('\n') + '\n'
          : JSON.stringify(records);
      const key = `${folder}${kind}_0.json`;
      objects.push({ key, body });
      listed.push({ Key: key, Size: new TextEncoder().encode(body).length });
    }
    manifestFiles[kind] = listed;
  }
  objects.push({
    key: `${folder}manifest.json`,
    body: JSON.stringify({
      DestinationBucket: request.Bucket,
      MapRunArn: request.MapRunArn,
      ResultFiles: manifestFiles,
    }),
  });
  return objects;
}

/** True when a task input has the shape of a ResultWriterRequest. */
export function isResultWriterRequest(input: Json): input is ResultWriterRequest {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return false;
  const r = input as Record<string, Json>;
  const files = r.ResultFiles as Record<string, Json> | undefined;
  return (
    typeof r.Bucket === 'string' &&
    typeof r.Prefix === 'string' &&
    typeof r.MapRunArn === 'string' &&
    (r.OutputType === 'JSON' || r.OutputType === 'JSONL') &&
    files !== null &&
    typeof files === 'object' &&
    FILE_KINDS.every((k) => Array.isArray(files[k]))
  );
}
