/**
 * A Strand home's settings file, `<home>/config.yaml`: which executor runs jobs by default, the
 * options of each container executor, and named profiles a run picks with `--profile`.
 *
 *   executor: podman              # the default for runs that say nothing
 *   executors:
 *     podman: { network: none, volumes: [/data/refs:/data/refs:ro] }
 *   profiles:
 *     laptop: { executor: local }
 *     containers: { executor: podman }
 *
 * Which executor a run uses, first that applies: `--executor`, the profile `--profile` names,
 * the pipeline's `executor:`, the file's `executor:`, `local`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';

const executorName = z.enum(['local', 'podman', 'docker']);
export type ExecutorChoice = z.infer<typeof executorName>;

const containerOptions = z.strictObject({
  network: z.string().min(1).optional(),
  volumes: z
    .array(
      z
        .string()
        .regex(/^\/[^:]*:\/[^:]*(:(ro|rw))?$/, 'expected HOST:CONTAINER or HOST:CONTAINER:ro'),
    )
    .optional(),
});
export type ContainerOptions = z.infer<typeof containerOptions>;

const configSchema = z.strictObject({
  executor: executorName.optional(),
  executors: z
    .strictObject({ podman: containerOptions.optional(), docker: containerOptions.optional() })
    .optional(),
  profiles: z.record(z.string(), z.strictObject({ executor: executorName.optional() })).optional(),
});
export type StrandConfig = z.infer<typeof configSchema>;

/** A config file that cannot be used: the message names the file, line and key. */
export class ConfigError extends Error {
  readonly code = 'STRAND_CONFIG';
}

export function configPath(home: string): string {
  return join(home, 'config.yaml');
}

/** The home's settings; none when it has no config.yaml. Throws ConfigError naming the place. */
export function readConfig(home: string): StrandConfig {
  const file = configPath(home);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(`${file}: ${(err as Error).message}`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const at = lines.linePos(e.pos[0]);
    throw new ConfigError(`${file}:${at.line}:${at.col} ${e.message.split('\n')[0]}`);
  }
  const parsed = configSchema.safeParse(doc.toJS() ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const node = doc.getIn(issue.path as (string | number)[], true) as
    { range?: [number, number, number] } | undefined;
  const at = node?.range ? lines.linePos(node.range[0]) : undefined;
  const where = at ? `${file}:${at.line}:${at.col}` : file;
  throw new ConfigError(`${where} ${issue.path.join('.') || '(top)'}: ${issue.message}`);
}

/**
 * The executor a run uses and what chose it (for the run's headline), by the precedence above.
 */
export function chooseExecutor(
  config: StrandConfig,
  choice: { flag?: string; profile?: string; pipeline?: ExecutorChoice },
  file: string,
): { executor: ExecutorChoice; from: string } {
  if (choice.flag !== undefined) {
    const parsed = executorName.safeParse(choice.flag);
    if (!parsed.success)
      throw new ConfigError(
        `--executor ${choice.flag}: use one of ${executorName.options.join(', ')}`,
      );
    return { executor: parsed.data, from: '--executor' };
  }
  if (choice.profile !== undefined) {
    const profile = config.profiles?.[choice.profile];
    if (!profile) {
      const names = Object.keys(config.profiles ?? {});
      throw new ConfigError(
        `--profile ${choice.profile}: ${file} has no such profile${names.length ? ` (profiles: ${names.join(', ')})` : ' (it defines none)'}`,
      );
    }
    if (profile.executor) return { executor: profile.executor, from: `profile ${choice.profile}` };
  }
  if (choice.pipeline) return { executor: choice.pipeline, from: 'the pipeline' };
  if (config.executor) return { executor: config.executor, from: file };
  return { executor: 'local', from: 'the default' };
}
