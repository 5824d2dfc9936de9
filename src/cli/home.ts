/**
 * Opening the Strand home from the command line: where it is, a reader beside any running
 * engine, or the scheduling engine with its backends (waiting for, or handing over to, an engine
 * that owns it). What opening can refuse (a damaged database) becomes bad input, exit 2.
 */
import { join, resolve } from 'node:path';
import type { HistoryEvent } from '../asl/execution.js';
import { chooseResults, ConfigError, readConfig } from '../app/config.js';
import {
  openResults,
  openResultsIfAny,
  openStrand,
  openStrandWhenFree,
  resultsReady,
  type Strand,
} from '../app/index.js';
import { Engine, EngineBusyError } from '../engine/engine.js';
import { StoreError } from '../engine/store.js';
import { ResultsError } from '../results/errors.js';
import type { ResultsSink } from '../results/sink.js';
import { InputError } from './errors.js';
import type { Io } from './io.js';

/** The Strand home: --home, else STRAND_HOME, else ./.strand. */
export function strandHome(option?: string): string {
  return resolve(option ?? process.env.STRAND_HOME ?? join(process.cwd(), '.strand'));
}

/** Opens the home for reading only (listing, describing), beside any running engine. */
export function openEngine(home: string): Engine {
  try {
    return Engine.open({ home, readOnly: true });
  } catch (err) {
    if (err instanceof StoreError) throw new InputError(err.message);
    throw err;
  }
}

/**
 * Turns what opening a home can refuse (a damaged database, a results server that cannot be
 * used, a config.yaml that cannot be read) into bad input (exit 2).
 */
export function refusedHome(err: unknown): unknown {
  if (err instanceof StoreError || err instanceof ResultsError || err instanceof ConfigError)
    return new InputError(err.message);
  return err;
}

/**
 * Where a command records or reads results: `--results`, else the `--profile`'s, else the
 * home's config.yaml's, else `<home>/results.db` (url undefined).
 */
export function resultsOf(
  home: string,
  options: { results?: string; profile?: string },
): { url: string | undefined; from: string } {
  try {
    return chooseResults(
      readConfig(home),
      { flag: options.results, profile: options.profile },
      home,
    );
  } catch (err) {
    throw refusedHome(err);
  }
}

/**
 * Opens the results a command reads, ready to answer (a Postgres server reached); with
 * `ifAny`, undefined while the home has no results.db yet. What opening refuses is exit 2.
 */
export async function openResultsReader(
  home: string,
  url: string | undefined,
  options: { ifAny?: boolean } = {},
): Promise<ResultsSink | undefined> {
  let sink: ResultsSink | undefined;
  try {
    sink = options.ifAny ? openResultsIfAny(url, { home }) : openResults(url, { home });
    if (sink) await resultsReady(sink);
    return sink;
  } catch (err) {
    await sink?.close();
    throw refusedHome(err);
  }
}

/**
 * Opens the scheduling engine with its services, waiting (with a message) while another process
 * owns the home.
 */
export async function openStrandScheduler(
  io: Io,
  home: string,
  onEvent?: (arn: string, e: HistoryEvent) => void,
  sinks: { results?: string; store?: string } = {},
): Promise<Strand> {
  try {
    return await openStrandWhenFree({ home, onEvent, ...sinks }, (holder) =>
      io.err(
        `waiting: another Strand engine (pid ${holder.pid} on ${holder.host}) is running on ${home}\n`,
      ),
    );
  } catch (err) {
    throw refusedHome(err);
  }
}

/** Opens the scheduling engine, waiting (with a message) while another process owns the home. */
export async function openScheduler(
  io: Io,
  home: string,
  onEvent?: (arn: string, e: HistoryEvent) => void,
  sinks: { results?: string; store?: string } = {},
): Promise<Engine> {
  return (await openStrandScheduler(io, home, onEvent, sinks)).engine;
}

/**
 * Opens the scheduling engine if no other engine owns the home; undefined if one does (then
 * the caller asks it, see askOwner).
 */
export function openSchedulerIfFree(
  home: string,
  onEvent?: (arn: string, e: HistoryEvent) => void,
  results?: string,
): Strand | undefined {
  try {
    return openStrand({ home, onEvent, results });
  } catch (err) {
    if (err instanceof EngineBusyError) return undefined;
    throw refusedHome(err);
  }
}
