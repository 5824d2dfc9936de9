/**
 * The stage-in of a pipeline job on this machine (docs/adr/0002-staging.md): its inputs are
 * where its variables say (a file store, files beside the pipeline), so staging in is naming
 * them, for the executor to mount read-only (or to check after the end); inputs in a remote
 * store are downloaded first (pipelineFetchInputs).
 */
import { createWriteStream, realpathSync, statSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import type { JobDetail } from '../batch/types.js';
import { TAG } from '../pipeline/contract.js';
import type { ObjectStore } from '../storage/store.js';

/** Paths whose contents are the kernel's (reading them may never end), never a job's input. */
const SYSTEM = /^\/(proc|sys|dev)(\/|$)/;

/**
 * Where an image keeps its own files: a value naming a path there means the image's file (a
 * tool's database under /usr/share, say), never one of this machine's to mount over it.
 */
const IMAGE_OWN = /^\/(usr|etc|bin|sbin|lib|lib32|lib64|libx32|boot|run|var\/lib)(\/|$)/;

/**
 * The paths a job of a pipeline (one tagged with its store, TAG.store) must leave as they
 * are (JobAttemptSpec.readOnlyPaths): its file store, and every regular file an argument (not the
 * program) or an environment value of the job names by an absolute path. Other jobs get none: a
 * plain Batch job may name a file it is meant to write. A job in a container (`isolated`) sees
 * only what is mounted, so a directory named that way counts too (a reference database), and
 * no path of the image's own system directories does.
 */
export function pipelineStageIn(job: JobDetail, isolated = false): string[] {
  const store = job.tags?.[TAG.store];
  if (store === undefined) return [];
  const paths = new Set<string>();
  if (store.startsWith('file://')) {
    try {
      paths.add(fileURLToPath(store));
    } catch {
      // a file URL of another host: not a path here
    }
  }
  const named = [
    ...job.container.command.slice(1),
    ...job.container.environment.map((kv) => kv.value),
  ];
  for (const value of named) {
    if (!value.startsWith('/') || SYSTEM.test(value) || paths.has(value)) continue;
    // `/` or a top-level directory names the machine, not an input to mount.
    if (isolated && (IMAGE_OWN.test(value) || /^\/[^/]*\/?$/.test(value))) continue;
    try {
      const st = statSync(value);
      if ((st.isFile() || (isolated && st.isDirectory())) && !SYSTEM.test(realpathSync(value)))
        paths.add(value);
    } catch {
      // not a path that exists: an ordinary value
    }
  }
  return [...paths];
}

/** Keys of the lists strand-collect writes for aggregate steps: one input per line. */
const INPUT_LIST = /\/_all\/_inputs\/[^/]+\/[^/]+\.txt$/;

/**
 * The stage-in of a pipeline job whose store is remote (s3://) and whose executor runs it on
 * this machine: every value that names an object or a prefix of the job's store is downloaded
 * under `<stagingRoot>/<jobId>/` and the value names the local copy; the lists strand-collect
 * writes for aggregate steps are rewritten to name local copies too. Jobs of a store that has
 * local paths (file://) read their inputs in place and are left as they are.
 */
export function pipelineFetchInputs(options: {
  store: (url: string) => ObjectStore;
  stagingRoot: string;
}) {
  return async (
    job: JobDetail,
    values: { command: string[]; environment: Record<string, string> },
  ): Promise<
    { command: string[]; environment: Record<string, string>; readOnlyPaths: string[] } | undefined
  > => {
    const url = job.tags?.[TAG.store];
    if (url === undefined) return undefined;
    const store = options.store(url);
    if (store.localPath('probe') !== undefined) return undefined;
    const base = `${store.url}/`;
    const root = join(options.stagingRoot, job.jobId);
    const fetched = new Map<string, Promise<string | undefined>>();
    const download = async (key: string, dest: string): Promise<void> => {
      await mkdir(dirname(dest), { recursive: true });
      const partial = `${dest}.partial`;
      await pipeline(await store.read(key), createWriteStream(partial));
      await rename(partial, dest);
    };
    // The local path of a store key, or undefined when the key names nothing.
    const fetchKey = (key: string): Promise<string | undefined> => {
      let p = fetched.get(key);
      if (!p) {
        p = (async () => {
          const dest = join(root, 'inputs', ...key.split('/'));
          if (await store.head(key)) {
            if (!INPUT_LIST.test(key)) {
              await download(key, dest);
              return dest;
            }
            const lines = (await store.get(key)).toString('utf8').split('\n');
            const local = await Promise.all(lines.map((line) => fetchValue(line)));
            await mkdir(dirname(dest), { recursive: true });
            await writeFile(dest, local.join('\n'));
            return dest;
          }
          const below = await store.list(key);
          if (below.length === 0) return undefined;
          for (const o of below) await download(o.key, join(root, 'inputs', ...o.key.split('/')));
          return dest;
        })();
        fetched.set(key, p);
      }
      return p;
    };
    const fetchValue = async (value: string): Promise<string> => {
      if (!value.startsWith(base)) return value;
      return (await fetchKey(value.slice(base.length))) ?? value;
    };
    const command = [
      values.command[0],
      ...(await Promise.all(values.command.slice(1).map(fetchValue))),
    ];
    const environment: Record<string, string> = {};
    for (const [name, value] of Object.entries(values.environment))
      environment[name] = await fetchValue(value);
    return fetched.size === 0 ? undefined : { command, environment, readOnlyPaths: [root] };
  };
}
