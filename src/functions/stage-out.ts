/**
 * The stage-out of a pipeline job (docs/adr/0002-staging.md): when an attempt has ended,
 * success or failure, what it left in its working directory goes to the store at
 * `{store}/{pipeline}/{sample}/{step}/` — its log as `_strand.log`, then the declared outputs
 * (the `stdout:` file among them) and the results files, then `_strand.json` last, under the
 * prefix's lock (see publishOutputs). Strand's functions then work on those store keys alone.
 *
 * It runs where the job ran: for the local and container executors that is this machine, and
 * the local Batch calls it before it records the attempt's end, so a job never counts as ended
 * before its outputs are in the store (after a crash the attempt is found ended and staged out
 * again: the same files, the same manifest).
 *
 * What it writes: a SUCCEEDED manifest, with the job's fingerprint, when the attempt succeeded
 * and every output is there and inside the job's directory; otherwise a FAILED one with what
 * could be kept (missing outputs and refused files named), and for an attempt that exited 0
 * the reason in `error`, which strand-publish reports.
 */
import type { EndedAttempt, StageOut } from '../batch/local-batch.js';
import type { JobDetail } from '../batch/types.js';
import { AGGREGATE_SAMPLE, TAG } from '../pipeline/contract.js';
import { StorageError } from '../storage/errors.js';
import { stepPrefix } from '../storage/layout.js';
import { publishOutputs, type PublishInfo } from '../storage/publish.js';
import type { ObjectStore } from '../storage/store.js';
import { fingerprintDetail, rememberDigest, type DigestMemo } from './fingerprint.js';

/** Where a step's log goes under its prefix. */
export const LOG_KEY = '_strand.log';

/** The name results files outside the outputs are published under (never a variable's name). */
export const RESULT_OUTPUT = '_result:';

/** The samples an aggregate step was given, written by strand-collect beside its inputs. */
export function samplesKey(pipeline: string, execution: string): string {
  return `${pipeline}/_all/_inputs/${execution}/_samples.json`;
}

/** Publish errors that are the job's doing (an output missing, refused): a FAILED manifest. */
const JOB_FAULTS: StorageError['code'][] = [
  'OUTPUT_MISSING',
  'OUTPUT_OUTSIDE_JOB_DIR',
  'BAD_OUTPUT_PATH',
  'BAD_SOURCE',
];

function json<T>(text: string | undefined, fallback: T): T {
  if (text === undefined) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

/** The stage-out of pipeline jobs (those tagged with their store); other jobs have none. */
export function pipelineStageOut(options: {
  store: (url: string) => ObjectStore;
  /** The executor a job's queue runs it on (part of a successful job's fingerprint). */
  executorOf: (job: JobDetail) => string;
  /** Digests of input files remembered across runs. */
  digests?: DigestMemo;
}): StageOut {
  return async (job: JobDetail, attempt: EndedAttempt): Promise<void> => {
    const tags = job.tags ?? {};
    const [url, pipeline, step, execution] = [
      tags[TAG.store],
      tags[TAG.pipeline],
      tags[TAG.step],
      tags[TAG.execution],
    ];
    if (!url || !pipeline || !step || !execution) return;
    const sample = tags[TAG.sample];
    const layoutSample = sample === undefined || sample === AGGREGATE_SAMPLE ? null : sample;
    const store = options.store(url);
    const prefix = stepPrefix(pipeline, layoutSample, step);
    const env = new Map(job.container.environment.map((kv) => [kv.name, kv.value]));
    const outputs: Record<string, string> = json(env.get('STRAND_OUTPUTS'), {});
    for (const from of json<string[]>(env.get('STRAND_RESULTS'), []))
      outputs[`${RESULT_OUTPUT}${from}`] = from;
    const samples =
      layoutSample === null
        ? json<string[] | undefined>(
            (await store.exists(samplesKey(pipeline, execution)))
              ? (await store.get(samplesKey(pipeline, execution))).toString('utf8')
              : undefined,
            undefined,
          )
        : undefined;
    const info: Omit<PublishInfo, 'fingerprint'> = {
      pipeline,
      sample: layoutSample,
      step,
      execution,
      jobId: job.jobId,
      attempt: attempt.attempt,
      exitCode: attempt.exitCode ?? null,
      startedAt: attempt.startedAt ?? null,
      stoppedAt: attempt.stoppedAt ?? null,
      ...(samples ? { samples } : {}),
    };
    await publishAttempt({
      store,
      prefix,
      workDir: attempt.workDir,
      logPath: attempt.logPath,
      outputs,
      succeeded: attempt.state === 'SUCCEEDED',
      info,
      digests: options.digests,
      fingerprint: () =>
        fingerprintDetail(
          {
            image: job.container.image,
            command: job.container.command,
            environment: env,
            executor: options.executorOf(job),
          },
          { memo: options.digests },
        ),
    });
  };
}

/** What an ended attempt publishes (see publishAttempt). */
export interface AttemptPublishOptions {
  store: ObjectStore;
  prefix: string;
  workDir: string;
  logPath: string;
  /** Variable → path relative to workDir, results files under RESULT_OUTPUT names. */
  outputs: Record<string, string>;
  /** The attempt succeeded (exit 0, nothing stopped it). */
  succeeded: boolean;
  info: Omit<PublishInfo, 'fingerprint'>;
  /** The job's fingerprint, asked for only when the attempt succeeded. */
  fingerprint: () => Promise<{ fingerprint: string; parts: Record<string, string> } | null>;
  /** Where the digests of the stored outputs are remembered for the fingerprints of later jobs. */
  digests?: DigestMemo;
}

/**
 * Publishes an ended attempt, wherever it ran: its log as `_strand.log` first (a failed job's
 * log is what tells why), then a SUCCEEDED manifest with the fingerprint when it succeeded and
 * every output is there, else a FAILED one with what could be kept (`error` saying why an
 * attempt that succeeded was refused). Returns the manifest's status.
 */
export async function publishAttempt(o: AttemptPublishOptions): Promise<'SUCCEEDED' | 'FAILED'> {
  await o.store.putFile(`${o.prefix}/${LOG_KEY}`, o.logPath).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  });
  let error: string | undefined;
  if (o.succeeded) {
    try {
      const fp = await o.fingerprint();
      const manifest = await publishOutputs({
        store: o.store,
        prefix: o.prefix,
        workDir: o.workDir,
        outputs: o.outputs,
        status: 'SUCCEEDED',
        info: {
          ...o.info,
          fingerprint: fp?.fingerprint ?? null,
          ...(fp ? { fingerprintParts: fp.parts } : {}),
        },
      });
      // The jobs that read these outputs read the store's copies: their digests are known.
      for (const output of Object.values(manifest.outputs))
        for (const file of output.files) {
          const path = o.store.localPath(`${o.prefix}/${file.path}`);
          if (path !== undefined) await rememberDigest(path, file.sha256, o.digests);
        }
      return 'SUCCEEDED';
    } catch (err) {
      if (!(err instanceof StorageError && JOB_FAULTS.includes(err.code))) throw err;
      error = err.message;
    }
  }
  await publishOutputs({
    store: o.store,
    prefix: o.prefix,
    workDir: o.workDir,
    outputs: o.outputs,
    status: 'FAILED',
    info: {
      ...o.info,
      fingerprint: null,
      ...(o.info.error === undefined && error !== undefined ? { error } : {}),
    },
  });
  return 'FAILED';
}
