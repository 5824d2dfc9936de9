/**
 * The server's hold on the Strand home. One engine schedules a home at a time (its lease); the
 * server takes the home when it starts, and serves from it while runs start, crash and resume.
 * When another engine owns the home (a `strand run` started before the server), the server does
 * not wait for it: it reads the home beside it, hands execution requests (start, stop, redrive,
 * task tokens) to it as `strand stop` does (see engine/control.ts), and takes the home over as
 * soon as that engine ends. Batch changes have no hand-off yet: until then they are refused with
 * a message naming the owner. If the engine halts after a fault (a full disk), the server keeps
 * answering, and opens the home again once it can.
 */
import type { Strand } from '../app/index.js';
import type { Json } from '../asl/types.js';
import { askOwner } from '../engine/control.js';
import { Engine, EngineBusyError } from '../engine/engine.js';
import type { StateMachineResolver } from '../engine/states-integration.js';
import type { RequestKind } from '../engine/store.js';

/** Why the server cannot change the home now; the API says it with a 503. */
export class HomeBusyError extends Error {
  readonly code = 'HOME_BUSY';
  constructor(message: string) {
    super(message);
    this.name = 'HomeBusyError';
  }
}

export interface ServerHomeOptions {
  home: string;
  /** Opens the home's scheduling engine with its backends; throws EngineBusyError while another owns it. */
  open: () => Strand | Promise<Strand>;
  /** Where `states:startExecution` tasks find the state machines they name. */
  stateMachines?: StateMachineResolver;
  /** Told when the server takes the home, follows another engine, or its engine halts. */
  log?: (line: string) => void;
  /** How often to try again to take the home (default 1000 ms). */
  retryMs?: number;
}

/** The server's hold on its home: the engine it schedules with, or the one it follows. */
export class ServerHome {
  private strand: Strand | undefined;
  private reader: Engine | undefined;
  private holder: { pid: number; host: string } | undefined;
  private halted: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private taking: Promise<boolean> | undefined;
  private closed = false;

  constructor(private readonly options: ServerHomeOptions) {}

  get home(): string {
    return this.options.home;
  }

  /** Whether this server's engine schedules the home now. */
  get owner(): boolean {
    return this.strand !== undefined;
  }

  /**
   * Takes the home, or starts following the engine that owns it. What opening refuses (a damaged
   * database) is thrown: the server does not start on it.
   */
  async start(): Promise<void> {
    if (!(await this.take())) this.retryLater();
  }

  /** Tries to open the home's engine now; false while another engine owns it. */
  private take(): Promise<boolean> {
    this.taking ??= this.takeNow().finally(() => (this.taking = undefined));
    return this.taking;
  }

  private async takeNow(): Promise<boolean> {
    if (this.closed) return false;
    if (this.strand) return true;
    let strand: Strand;
    try {
      strand = await this.options.open();
    } catch (err) {
      if (!(err instanceof EngineBusyError)) throw err;
      if (this.holder?.pid !== err.holder.pid || this.holder.host !== err.holder.host)
        this.options.log?.(
          `another Strand engine (pid ${err.holder.pid} on ${err.holder.host}) owns ${this.home}: ` +
            'reads are served beside it, execution requests are handed to it, Batch changes wait; ' +
            'the server takes the home over when it ends',
        );
      this.holder = { pid: err.holder.pid, host: err.holder.host };
      return false;
    }
    if (this.closed) {
      strand.engine.close();
      return false;
    }
    this.reader?.close();
    this.reader = undefined;
    if (this.holder || this.halted)
      this.options.log?.(`this server's engine now schedules ${this.home}`);
    this.holder = undefined;
    this.halted = undefined;
    this.strand = strand;
    if (this.options.stateMachines) strand.engine.stateMachines = this.options.stateMachines;
    strand.engine.onHalt((err) => {
      if (this.strand !== strand) return;
      this.strand = undefined;
      this.halted = err.message;
      this.options.log?.(
        `${err.message} The server keeps answering and opens the home again once it can.`,
      );
      this.retryLater();
    });
    return true;
  }

  private retryLater(): void {
    if (this.closed || this.timer) return;
    this.timer = setInterval(() => {
      this.take().then(
        (taken) => {
          if (taken && this.timer) {
            clearInterval(this.timer);
            this.timer = undefined;
          }
        },
        (err: unknown) => {
          // Still refused (the fault persists): told once, tried again.
          const message = err instanceof Error ? err.message : String(err);
          if (message !== this.halted) this.options.log?.(`cannot open ${this.home}: ${message}`);
          this.halted = message;
        },
      );
    }, this.options.retryMs ?? 1000);
  }

  /** Why this server cannot change the home now. */
  private busy(what: string): HomeBusyError {
    if (this.holder)
      return new HomeBusyError(
        `${what} waits: another Strand engine (pid ${this.holder.pid} on ${this.holder.host}) owns ${this.home}, and this server takes it over when that engine ends; try again then`,
      );
    return new HomeBusyError(
      `${what} waits: this server's engine stopped (${this.halted ?? 'closed'}) and opens the home again once it can`,
    );
  }

  /** The engine to read the home with: this server's, or one that only reads beside the owner. */
  reading(): Engine {
    if (this.strand) return this.strand.engine;
    this.reader ??= Engine.open({ home: this.home, readOnly: true });
    return this.reader;
  }

  /** The scheduling engine, for changes that have no hand-off; HomeBusyError when it is not ours. */
  scheduling(what: string): Engine {
    if (this.strand) return this.strand.engine;
    throw this.busy(what);
  }

  /**
   * Carries out an execution request: here when this server owns the home, else by the engine
   * that does (its answer is returned as JSON). When that engine ends before taking it, the server
   * takes the home and carries it out itself. Errors are the engine's (EngineInputError, or
   * RequestFailedError with the owner's code).
   */
  async request<T>(
    kind: RequestKind,
    body: Record<string, unknown>,
    here: (engine: Engine) => Promise<T>,
  ): Promise<T | Json> {
    for (let tries = 0; tries < 5; tries++) {
      if (this.strand) return here(this.strand.engine);
      const outcome = await askOwner(this.home, kind, body);
      if (outcome.served) return outcome.response;
      // The owner ended before taking it: carried out here if the home can be opened now.
      await this.take().catch(() => false);
    }
    throw this.busy(kind);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.reader?.close();
    this.reader = undefined;
    this.strand?.engine.close();
    this.strand = undefined;
  }
}
