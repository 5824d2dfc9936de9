/**
 * The stage-in of a pipeline job on this machine (docs/adr/0002-staging.md): its inputs are
 * where its variables say (the store, files beside the pipeline), so staging in is naming them,
 * for the executor to mount read-only (or to check after the end).
 */
import { realpathSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { JobDetail } from '../batch/types.js';
import { TAG } from '../pipeline/contract.js';

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
