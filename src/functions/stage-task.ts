/**
 * `strand stage in` and `strand stage out`: the staging of one attempt where it runs, for the
 * executors whose jobs see neither the store's files nor this machine's (AWS Batch: the job's
 * `stage-in` and `stage-out` containers, docs/adr/0002-staging.md). They follow a plan made when
 * the attempt was submitted (stage-plan.ts).
 *
 * Stage in makes the job's directories under the plan's root (writable by any user: a tool's
 * image may run as one of its own), copies Strand's static launcher there for the tool's
 * container to run its command through, makes the output directories, downloads every input
 * (read-only) and writes the environment file. When it fails it says why in `run/stage-in.error`
 * and claims the wrapper's pid file with an exit of its own, so that the tool's wrapper runs
 * nothing and the stage-out publishes a FAILED manifest naming the cause.
 *
 * Stage out reads the exit the wrapper recorded, publishes the log, outputs and manifest as the
 * local stage-out does (publishAttempt), copies the log to its standard output (for CloudWatch
 * Logs) and answers the exit code to end with: the tool's, so that the Batch job's status and
 * exit code are the tool's.
 */
import { createWriteStream } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { pipeline as pump } from 'node:stream/promises';
import { parseExitLine } from '../executors/executor.js';
import { nativeLauncher } from '../executors/local/local-executor.js';
import type { ObjectStore } from '../storage/store.js';
import { publishAttempt } from './stage-out.js';
import { storeKey, taskPaths, type StagePlan } from './stage-plan.js';

export interface StageTaskOptions {
  store: (url: string) => ObjectStore;
  /** The static launcher to copy for the tool's container (default: this Strand's). */
  launcher?: string;
  /** Where the stage-out's copy of the log goes (default: standard output). */
  out?: (text: string) => void;
}

/** The exit a stage-in that failed records in place of the tool's. */
const STAGE_IN_FAILED = 'exit 1 stage-in\n';

/** Makes a directory any user can write: the tool's image may run as a user of its own. */
async function openDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true });
  await chmod(path, 0o777);
}

/** Downloads an object (or every object below a prefix) to `target`, read-only. */
async function download(
  store: ObjectStore,
  key: string,
  target: string,
  directory: boolean,
): Promise<void> {
  const objects = directory
    ? (await store.list(key)).map((o) => ({ key: o.key, path: join(target, relative(key, o.key)) }))
    : [{ key, path: target }];
  if (directory && objects.length === 0)
    throw new Error(`input ${key}: nothing below it in ${store.url}`);
  for (const o of objects) {
    await mkdir(dirname(o.path), { recursive: true });
    await pump(await store.read(o.key), createWriteStream(o.path, { mode: 0o444 }));
  }
}

/**
 * Stages a list strand-collect wrote (a location a line, each a sample's output): each location
 * of the store is downloaded beside the list, which then names the copies.
 */
async function stageList(store: ObjectStore, key: string, target: string): Promise<void> {
  const lines = (await store.get(key)).toString('utf8').split('\n');
  const items = `${target}.d`;
  const staged: string[] = [];
  for (const [i, line] of lines.entries()) {
    const itemKey = line === '' ? undefined : storeKey(store, line);
    if (itemKey === undefined) {
      staged.push(line);
      continue;
    }
    const path = join(items, String(i), itemKey.split('/').at(-1) ?? 'item');
    await download(store, itemKey, path, !(await store.head(itemKey)));
    staged.push(path);
  }
  await mkdir(dirname(target), { recursive: true });
  await writeFile(target, staged.join('\n'), { mode: 0o444 });
}

/** Stage in: everything the tool needs is in place (or the plan says why not, and it throws). */
export async function stageIn(plan: StagePlan, options: StageTaskOptions): Promise<void> {
  const p = taskPaths(plan.root);
  await openDir(p.run);
  try {
    await openDir(p.work);
    await mkdir(dirname(p.launcher), { recursive: true });
    const launcher = options.launcher ?? nativeLauncher();
    if (!launcher)
      throw new Error(
        "this image has no Strand native launcher (dist/strand-launcher): build the stage image from Strand's package with a C compiler",
      );
    await copyFile(launcher, p.launcher);
    await chmod(p.launcher, 0o755);
    await writeFile(p.log, '', { flag: 'a' });
    await chmod(p.log, 0o666);
    for (const d of plan.outputDirs) await openDir(join(p.work, d));
    const store = plan.store === undefined ? undefined : options.store(plan.store);
    for (const input of plan.inputs) {
      if (!store) break;
      const target = join(p.work, input.path);
      if (input.list) await stageList(store, input.key, target);
      else await download(store, input.key, target, input.directory === true);
    }
    await writeFile(p.environment, JSON.stringify(plan.environment, null, 2) + '\n');
  } catch (err) {
    const why = (err as Error).message;
    await writeFile(p.stageInError, `${why}\n`).catch(() => undefined);
    // The wrapper claims the attempt by creating its pid file: taken, it runs nothing.
    await writeFile(p.pid, `0 0 0:: v2:stage-in\n${STAGE_IN_FAILED}`, { flag: 'wx' }).catch(
      () => undefined,
    );
    throw err;
  }
}

/** The exit the wrapper recorded: "exit CODE[ CAUSE]" on the pid file's second line. */
async function recordedExit(
  pidPath: string,
): Promise<{ code: number; cause?: string; startedAt: number; stoppedAt: number } | undefined> {
  const text = await readFile(pidPath, 'utf8').catch(() => undefined);
  const line = text?.split('\n')[1];
  if (!text?.endsWith('\n') || !line?.startsWith('exit ')) return undefined;
  const { code, cause } = parseExitLine(line.slice(5));
  const n = Number(code);
  if (!Number.isInteger(n)) return undefined;
  // The wrapper made the file as the tool started and appended the exit as it ended.
  const st = await stat(pidPath);
  return {
    code: n,
    ...(cause ? { cause } : {}),
    startedAt: Math.round(st.birthtimeMs || st.ctimeMs),
    stoppedAt: Math.round(st.mtimeMs),
  };
}

/**
 * Stage out: publishes what the attempt left (when the plan names a store) and answers the exit
 * code the stage-out container ends with: the tool's; 1 when the tool never ran or the publish
 * failed after the tool succeeded.
 */
export async function stageOut(plan: StagePlan, options: StageTaskOptions): Promise<number> {
  const p = taskPaths(plan.root);
  const out = options.out ?? ((t: string) => process.stdout.write(t));
  const stageInError = (await readFile(p.stageInError, 'utf8').catch(() => undefined))?.trim();
  const exit = stageInError === undefined ? await recordedExit(p.pid) : undefined;
  const error =
    stageInError !== undefined
      ? `stage-in failed: ${stageInError}`
      : exit === undefined
        ? "the tool's wrapper recorded no exit (its container was stopped or killed, or the image's ENTRYPOINT ran instead of the wrapper)"
        : undefined;
  const log = await readFile(p.log, 'utf8').catch(() => '');
  if (log !== '') out(log.endsWith('\n') ? log : `${log}\n`);
  let code = exit?.code ?? 1;
  if (plan.store !== undefined && plan.prefix !== undefined && plan.info) {
    const store = options.store(plan.store);
    try {
      const status = await publishAttempt({
        store,
        prefix: plan.prefix,
        workDir: p.work,
        logPath: p.log,
        outputs: plan.outputs,
        succeeded: exit !== undefined && exit.code === 0 && exit.cause === undefined,
        info: {
          ...plan.info,
          exitCode: exit?.code ?? null,
          startedAt: exit?.startedAt ?? null,
          stoppedAt: exit?.stoppedAt ?? null,
          ...(error === undefined ? {} : { error }),
        },
        fingerprint: () => Promise.resolve(plan.fingerprint ?? null),
      });
      // Outputs refused (one missing): the job failed, whatever the tool's exit.
      if (status === 'FAILED' && code === 0) code = 1;
    } catch (err) {
      process.stderr.write(
        `strand stage out: publishing to ${store.url}/${plan.prefix} failed: ${(err as Error).message}\n`,
      );
      if (code === 0) code = 1;
    }
  }
  if (error !== undefined) process.stderr.write(`strand stage out: ${error}\n`);
  return code;
}
