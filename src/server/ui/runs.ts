/**
 * The pipelines the dashboard can start, and starting one as `strand run FILE` does (without
 * following it): loaded and checked as the CLI loads it, sliced, its executor chosen and
 * checked, compiled, its job definitions registered, and the execution started by this server's
 * engine or handed to the engine that owns the home. Only known pipelines can be started: those
 * given to `strand server --pipeline`, and those the home has run before (by the file their
 * execution input names), so a request can never name an arbitrary file.
 */
import type Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { executorCapacity } from '../../app/index.js';
import { thisMachine } from '../../batch/local-batch.js';
import { registerIfChanged } from '../../batch/register.js';
import { InputError } from '../../cli/errors.js';
import { checkRunExecutor, runExecutor } from '../../cli/executor.js';
import type { Engine, ExecutionDescription } from '../../engine/engine.js';
import { compilePipeline } from '../../pipeline/compile.js';
import { stepKey } from '../../pipeline/contract.js';
import { selectSteps } from '../../pipeline/dag.js';
import { formatPipelineProblem, PipelineError } from '../../pipeline/errors.js';
import { loadPipeline, type LoadedPipeline } from '../../pipeline/load.js';
import { StorageError } from '../../storage/errors.js';
import { openStore } from '../../storage/store.js';
import { closest } from '../../asl/suggest.js';
import type { ServerHome } from '../home.js';
import { badRequest, notFound, UiError } from './errors.js';
import type { ExecutionStatus } from '../../asl/execution.js';
import type { PipelineInfo, StartRunRequest } from './types.js';

/** A pipeline file problem as one message (each problem with its place). */
function problemsOf(err: unknown): string | undefined {
  if (err instanceof PipelineError)
    return `${err.problems.length} problem(s): ${err.problems.map(formatPipelineProblem).join('; ')}`;
  if (err instanceof InputError) return [err.message, ...err.details].join('; ');
  return undefined;
}

/** Loads a pipeline file for a listing (its sheet read); PipelineError and InputError as they are. */
export function loadForListing(file: string): LoadedPipeline {
  return loadPipeline(file, {});
}

/**
 * The pipeline files given with `strand server --pipeline`, each made absolute and loaded once
 * to refuse a file that is not a pipeline before the server starts (InputError, exit 2).
 */
export function checkPipelineFlags(files: string[]): string[] {
  return files.map((f) => {
    const file = resolve(f);
    try {
      loadPipeline(file, { readSheet: false });
    } catch (err) {
      const problems = problemsOf(err);
      if (problems !== undefined) throw new InputError(`--pipeline ${f}: ${problems}`);
      throw err;
    }
    return file;
  });
}

interface KnownPipeline {
  file: string;
  source: 'flag' | 'run';
  lastRun?: { name: string; status: ExecutionStatus; startDate: number };
}

/**
 * The file a past run names (`$.run.file`, as it was given to `strand run`): absolute as it is,
 * else relative to the directory the home is in (where `strand run` usually ran) or to this
 * server's directory; undefined when neither has it.
 */
function runFile(home: string, file: string): string | undefined {
  if (isAbsolute(file)) return file;
  for (const base of [dirname(home), process.cwd()]) {
    const path = resolve(base, file);
    if (existsSync(path)) return path;
  }
  return undefined;
}

/** Every pipeline the server can start, the flags' first, newest run first after. */
export function knownPipelineFiles(
  db: Database.Database,
  home: string,
  flags: string[],
): KnownPipeline[] {
  const out = new Map<string, KnownPipeline>();
  for (const file of flags) out.set(file, { file, source: 'flag' });
  const rows = db
    .prepare(
      `SELECT json_extract(input, '$.run.file') AS file, name, status, start_date AS startDate
       FROM executions
       WHERE json_valid(input) AND json_type(input, '$.run.file') = 'text'
       ORDER BY start_date DESC`,
    )
    .all() as { file: string; name: string; status: ExecutionStatus; startDate: number }[];
  for (const r of rows) {
    const file = runFile(home, r.file.startsWith('file:') ? fileURLToPath(r.file) : r.file);
    if (!file) continue;
    const known = out.get(file);
    if (known) known.lastRun ??= { name: r.name, status: r.status, startDate: r.startDate };
    else
      out.set(file, {
        file,
        source: 'run',
        lastRun: { name: r.name, status: r.status, startDate: r.startDate },
      });
  }
  return [...out.values()];
}

/** GET /ui/api/pipelines: each known pipeline with its steps and samples (or why it cannot load). */
export function pipelineInfos(known: KnownPipeline[]): PipelineInfo[] {
  return known.map((k) => {
    const base = {
      file: k.file,
      source: k.source,
      ...(k.lastRun ? { lastRun: k.lastRun } : {}),
    };
    let loaded: LoadedPipeline;
    try {
      loaded = loadForListing(k.file);
    } catch (err) {
      const problem = problemsOf(err) ?? (err as Error).message;
      return { ...base, name: '', steps: [], samples: [], params: {}, problem };
    }
    const { spec, samples } = loaded;
    return {
      ...base,
      name: spec.name,
      ...(spec.description ? { description: spec.description } : {}),
      steps: spec.steps.map((s) => ({
        name: s.name,
        scope: s.scope,
        needs: s.needs,
        jobs: s.jobs.map((j) => ({
          name: j.name,
          image: j.image,
          vcpus: j.vcpus,
          ...(j.vcpusMin !== undefined ? { vcpusMin: j.vcpusMin } : {}),
          memoryMiB: j.memoryMiB,
        })),
      })),
      samples: samples.map((s) => ({ id: s.id, values: s.values })),
      params: spec.params,
    };
  });
}

const NAME = /^[A-Za-z0-9._-]{1,80}$/;
const ID = /^[A-Za-z0-9._-]+$/;

/** The request's fields, checked (400 naming the field). */
function checkRequest(body: unknown): StartRunRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw badRequest(
      'the body is a JSON object: {"pipeline": NAME, "samples"?: [ID…], "from"?, "to"?, "only"?, "params"?: {NAME: VALUE}}',
    );
  const b = body as Record<string, unknown>;
  const known = ['pipeline', 'samples', 'from', 'to', 'only', 'params', 'name', 'noCache'];
  const extra = Object.keys(b).filter((k) => !known.includes(k));
  if (extra.length > 0)
    throw badRequest(
      `unknown field${extra.length === 1 ? '' : 's'} ${extra.join(', ')}${closest(extra[0], known) ? ` (did you mean ${closest(extra[0], known)}?)` : ''}; the fields are ${known.join(', ')}`,
    );
  const str = (k: string) => {
    const v = b[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v === '') throw badRequest(`${k}: give a non-empty string`);
    return v;
  };
  const pipeline = str('pipeline');
  if (!pipeline)
    throw badRequest('pipeline: name the pipeline to run (GET /ui/api/pipelines lists them)');
  let samples: string[] | undefined;
  if (b.samples !== undefined && b.samples !== null) {
    if (
      !Array.isArray(b.samples) ||
      b.samples.length === 0 ||
      b.samples.some((s) => typeof s !== 'string' || !ID.test(s))
    )
      throw badRequest(
        'samples: give a non-empty list of sample ids (letters, digits, ".", "_", "-")',
      );
    samples = b.samples as string[];
  }
  let params: Record<string, string> | undefined;
  if (b.params !== undefined && b.params !== null) {
    if (typeof b.params !== 'object' || Array.isArray(b.params))
      throw badRequest('params: give an object of NAME: "value"');
    for (const [k, v] of Object.entries(b.params))
      if (typeof v !== 'string') throw badRequest(`params.${k}: give the value as a string`);
    params = b.params as Record<string, string>;
  }
  const name = str('name');
  if (name !== undefined && !NAME.test(name))
    throw badRequest(`name ${JSON.stringify(name)}: 1-80 letters, digits, ".", "_" or "-"`);
  if (b.noCache !== undefined && typeof b.noCache !== 'boolean')
    throw badRequest('noCache: give true or false');
  return {
    pipeline,
    ...(samples ? { samples } : {}),
    ...(str('from') ? { from: str('from') } : {}),
    ...(str('to') ? { to: str('to') } : {}),
    ...(str('only') ? { only: str('only') } : {}),
    ...(params ? { params } : {}),
    ...(name ? { name } : {}),
    ...(b.noCache === true ? { noCache: true } : {}),
  };
}

/** Which known pipeline a request names: by file, or by its name (one file of that name). */
function pipelineFile(known: KnownPipeline[], asked: string): string {
  const byFile = known.find((k) => k.file === asked || k.file === resolve(asked));
  if (byFile) return byFile.file;
  const named: { file: string; name: string }[] = [];
  for (const k of known) {
    try {
      named.push({ file: k.file, name: loadPipeline(k.file, { readSheet: false }).spec.name });
    } catch {
      // a file that no longer loads is not what a name asks for
    }
  }
  const matches = named.filter((n) => n.name === asked);
  if (matches.length === 1) return matches[0].file;
  if (matches.length > 1)
    throw badRequest(
      `pipeline ${asked}: ${matches.length} files have that name (${matches.map((m) => m.file).join(', ')}); give the file`,
    );
  throw notFound(
    'pipeline',
    asked,
    named.map((n) => n.name),
    'that this server can start (GET /ui/api/pipelines lists them; strand server --pipeline FILE adds one)',
  );
}

/** The slice a request asks for, as `strand run --from/--to/--only` takes it. */
function slice(loaded: LoadedPipeline, r: StartRunRequest) {
  const all = loaded.spec.steps;
  const names = all.map((s) => s.name);
  const check = (field: string, name: string | undefined): string => {
    if (name === undefined) return '';
    if (names.includes(name)) return name;
    throw notFound('step', name, names, `in pipeline ${loaded.spec.name} (${field})`);
  };
  if (r.only && (r.from || r.to))
    throw badRequest('only runs one step; it cannot be combined with from or to');
  const from = check(r.only ? 'only' : 'from', r.only ?? r.from);
  const to = check(r.only ? 'only' : 'to', r.only ?? r.to);
  const steps = selectSteps(all, from, to);
  if (steps.length === 0)
    throw badRequest(
      `to ${to} does not depend on from ${from}: no step runs after ${from} and before ${to}`,
    );
  const skip = Object.fromEntries(
    names.filter((n) => !steps.includes(n)).map((n) => [stepKey(n), true]),
  );
  if (steps.length === names.length) return { from: '', to: '', steps, skip };
  return { from, to, steps, skip };
}

/** POST /ui/api/runs: starts the run and returns its execution as the engine describes it. */
export async function startRun(
  home: ServerHome,
  known: KnownPipeline[],
  body: unknown,
  now: () => number,
): Promise<ExecutionDescription> {
  const r = checkRequest(body);
  const file = pipelineFile(known, r.pipeline);
  try {
    const store = openStore(undefined, { home: home.home });
    await store.check?.();
    const local = store.url.startsWith('file:') ? fileURLToPath(store.url) : '';
    let loaded: LoadedPipeline;
    try {
      loaded = loadPipeline(file, {
        ...(r.samples ? { samples: r.samples.join(',') } : {}),
        ...(r.params ? { params: r.params } : {}),
        store: local,
        runLocally: true,
        capacity: { ...thisMachine(), where: 'this machine' },
      });
    } catch (err) {
      const problems = problemsOf(err);
      if (problems !== undefined) throw badRequest(`${file}: ${problems}; nothing was run`);
      throw err;
    }
    const { from, to, steps: selected, skip } = slice(loaded, r);
    const { spec, samples } = loaded;
    if (samples.length === 0 && spec.steps.some((s) => s.scope === 'sample'))
      throw badRequest(`${file}: no samples (give a sheet under samples:)`);
    const ran = runExecutor(home.home, loaded, { steps: selected, file });
    await checkRunExecutor(home.home, ran);
    const queue = ran.executor === 'local' ? 'default' : ran.executor;
    const compiled = compilePipeline(spec, {
      jobQueue: queue,
      columns: Object.keys(samples[0]?.values ?? {}),
    });
    const name = r.name ?? `${spec.name}-${new Date(now()).toISOString().replace(/[:.]/g, '-')}`;
    const input = {
      run: {
        pipeline: spec.name,
        file,
        execution: name,
        store: store.url,
        from,
        to,
        skip,
        cache: r.noCache ? 'false' : 'true',
      },
      samples: samples.map((s) => ({ id: s.id, values: s.values })),
      params: { ...spec.params },
    };
    const start = { definition: compiled.definition, input, name, stateMachineName: spec.name };
    const here = async (engine: Engine) => {
      registerIfChanged(engine.batch!, compiled.jobDefinitions);
      if (ran.executor !== 'local')
        engine.batch!.ensureExecutorQueue(ran.executor, executorCapacity(home.home, ran.executor));
      return engine.startExecution(start);
    };
    return (await home.request(
      'StartExecution',
      { ...start, jobDefinitions: compiled.jobDefinitions, executor: ran.executor },
      here,
    )) as ExecutionDescription;
  } catch (err) {
    if (err instanceof InputError) throw badRequest([err.message, ...err.details].join('; '));
    if (err instanceof StorageError)
      throw new UiError(503, 'StoreUnavailable', `the store: ${err.message}`);
    throw err;
  }
}
