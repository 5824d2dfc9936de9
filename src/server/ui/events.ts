/**
 * What changed in the home, for the dashboard's live updates. The feed compares the home's
 * database with what it saw last — executions started since (by rowid), running, or running
 * last time; jobs likewise (job-index.ts); the last history event of each; the queues and
 * compute environments — reading each by an index, so a pass costs the same in a home of any
 * size, and tells the same whether this server's engine schedules the home or another engine
 * does. It looks only while someone listens (and a while after, so that a
 * client that reconnects misses nothing); each event has a sequence number, and the last
 * events are kept to replay to a client that comes back with Last-Event-ID. A client further
 * behind, or from before the server started or the feed paused, is told to reload.
 */
import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { JobDetail } from '../../batch/types.js';
import type { JobIndex } from './job-index.js';
import { executionSummary, jobSummary } from './read.js';
import type { UiEventName, UiEvents } from './types.js';

export interface FeedEvent<K extends UiEventName = UiEventName> {
  /** `<boot>.<seq>`: the SSE event id. */
  id: string;
  seq: number;
  name: K;
  data: UiEvents[K];
}

export interface ChangeFeedOptions {
  /** The database to look at (looked up on each pass: the server may take the home over). */
  db: () => Database.Database;
  /** The jobs by execution, which the feed brings up to date on each pass. */
  jobs: JobIndex;
  now?: () => number;
  /** Between passes (default 250 ms). */
  intervalMs?: number;
  /** How long the feed keeps looking after its last listener left (default 60 s). */
  lingerMs?: number;
  /** Events kept for replay (default 2000). */
  keep?: number;
  /** Told when a pass fails (the database is busy or gone for a moment); it tries again. */
  log?: (line: string) => void;
}

type Listener = (event: FeedEvent) => void;

interface ExecutionSeen {
  status: string;
  redriveCount: number;
  lastEventId: number;
}

/** A listener's start: events to replay, or that it must reload. */
export type Resume = { replay: FeedEvent[] } | { reload: string };

/** The home's changes as events, for as many listeners as connect. */
export class ChangeFeed {
  /** Changes with each start of the server, so an id from an earlier one is never taken as ours. */
  readonly boot = randomBytes(6).toString('base64url');
  private seq = 0;
  /** Events with a seq up to this were not seen as they happened (the feed was paused). */
  private horizon = 0;
  private readonly kept: FeedEvent[] = [];
  private readonly listeners = new Set<Listener>();
  private timer: NodeJS.Timeout | undefined;
  private lingering: NodeJS.Timeout | undefined;
  /** Running executions as last seen, by ARN. */
  private executions = new Map<string, ExecutionSeen>();
  /** The executions table's last rowid seen: rows after it are executions started since. */
  private lastRowid = 0;
  /** Executions to read again on the next pass whatever their status (acted on here). */
  private readonly touched = new Set<string>();
  /** Jobs the job index saw change, told on the next pass. */
  private readonly changedJobs = new Set<string>();
  private batch = '';
  private primed = false;
  private failing = false;
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly options: ChangeFeedOptions) {
    this.now = options.now ?? Date.now;
    options.jobs.onChange((ids) => {
      if (!this.timer || !this.primed) return;
      for (const id of ids) this.changedJobs.add(id);
    });
  }

  /**
   * Reads the execution again on the next pass, whatever its status: one redriven and ended
   * between two passes would otherwise go unseen.
   */
  touch(arn: string): void {
    if (this.timer) this.touched.add(arn);
  }

  /**
   * Adds a listener. With `lastEventId` (a reconnecting client's), says what it missed: the
   * events after it, or that it must reload.
   */
  subscribe(listener: Listener, lastEventId?: string): { resume: Resume; unsubscribe: () => void } {
    if (this.closed) return { resume: { reload: 'the server is stopping' }, unsubscribe: () => {} };
    this.start();
    const resume = this.resumeFrom(lastEventId);
    this.listeners.add(listener);
    return {
      resume,
      unsubscribe: () => {
        this.listeners.delete(listener);
        if (this.listeners.size === 0) this.linger();
      },
    };
  }

  /** The id of the feed's position now: what a client that has read everything holds. */
  position(): string {
    return `${this.boot}.${this.seq}`;
  }

  private resumeFrom(lastEventId: string | undefined): Resume {
    if (lastEventId === undefined || lastEventId === '') return { replay: [] };
    const m = /^([A-Za-z0-9_-]+)\.(\d+)$/.exec(lastEventId);
    if (!m || m[1] !== this.boot) return { reload: 'the server restarted since the last event' };
    const seq = Number(m[2]);
    if (seq > this.seq) return { reload: 'the last event id is not one of this server' };
    if (seq <= this.horizon) return { reload: 'changes since the last event were not followed' };
    const oldest = this.kept[0]?.seq ?? this.seq + 1;
    if (seq < oldest - 1) return { reload: 'too much changed since the last event' };
    return { replay: this.kept.filter((e) => e.seq > seq) };
  }

  private start(): void {
    if (this.lingering) clearTimeout(this.lingering);
    this.lingering = undefined;
    if (this.timer) return;
    // Paused until now: what changed meanwhile was not seen as events. The position moves past
    // it, so a client that starts here is not taken for one from before.
    this.horizon = this.seq;
    this.seq++;
    this.primed = false;
    this.pass();
    this.timer = setInterval(() => this.pass(), this.options.intervalMs ?? 250);
    this.timer.unref();
  }

  private linger(): void {
    if (this.lingering || !this.timer) return;
    this.lingering = setTimeout(() => this.stop(), this.options.lingerMs ?? 60_000);
    this.lingering.unref();
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.lingering) clearTimeout(this.lingering);
    this.timer = undefined;
    this.lingering = undefined;
  }

  /** Ends the feed: no more passes, listeners dropped. */
  close(): void {
    this.closed = true;
    this.stop();
    this.listeners.clear();
  }

  private emit<K extends UiEventName>(name: K, data: UiEvents[K]): void {
    if (!this.primed) return;
    const seq = ++this.seq;
    const event = { id: `${this.boot}.${seq}`, seq, name, data } as FeedEvent;
    this.kept.push(event);
    if (this.kept.length > (this.options.keep ?? 2000)) this.kept.shift();
    for (const l of [...this.listeners]) l(event);
  }

  /** One look at the database: an event for each change since the last. */
  pass(): void {
    if (this.closed) return;
    try {
      this.look(this.options.db());
      if (this.failing) this.options.log?.('live updates: the database can be read again');
      this.failing = false;
    } catch (err) {
      if (!this.failing)
        this.options.log?.(
          `live updates: cannot read the home's database (${(err as Error).message}); trying again`,
        );
      this.failing = true;
    }
  }

  private look(db: Database.Database): void {
    const now = this.now();
    type Row = { arn: string; name: string; status: string; redriveCount: number };
    const columns = 'arn, name, status, redrive_count AS redriveCount';
    // Each query reads by an index: executions are large rows (definition, input, state).
    if (!this.primed) {
      this.lastRowid =
        (db.prepare('SELECT MAX(rowid) AS r FROM executions').get() as { r: number | null }).r ?? 0;
    }
    const added = db
      .prepare(`SELECT rowid, ${columns} FROM executions WHERE rowid > ? ORDER BY rowid`)
      .all(this.lastRowid) as (Row & { rowid: number })[];
    for (const r of added) this.lastRowid = Math.max(this.lastRowid, r.rowid);
    const running = db
      .prepare(`SELECT ${columns} FROM executions WHERE status = 'RUNNING'`)
      .all() as Row[];
    const runningArns = new Set(running.map((r) => r.arn));
    const again = [...this.executions.keys(), ...this.touched].filter((a) => !runningArns.has(a));
    this.touched.clear();
    const left =
      again.length === 0
        ? []
        : (db
            .prepare(
              `SELECT ${columns} FROM executions WHERE arn IN (SELECT value FROM json_each(?))`,
            )
            .all(JSON.stringify(again)) as Row[]);
    const lastEvent = db.prepare('SELECT MAX(id) AS id FROM history WHERE execution_arn = ?');
    const rows = new Map<string, Row>();
    for (const r of [...added, ...running, ...left]) rows.set(r.arn, r);
    const executions = new Map<string, ExecutionSeen>();
    for (const r of rows.values()) {
      const lastEventId = (lastEvent.get(r.arn) as { id: number | null }).id ?? 0;
      const seen = this.executions.get(r.arn);
      if (
        this.primed &&
        (!seen || seen.status !== r.status || seen.redriveCount !== r.redriveCount)
      ) {
        const summary = executionSummary(db, r.arn, this.options.jobs);
        if (summary) this.emit('execution', summary);
      }
      if (this.primed && (!seen || seen.lastEventId !== lastEventId))
        this.emit('history', { execution: r.name, lastEventId });
      // Only running executions are followed from pass to pass.
      if (r.status === 'RUNNING')
        executions.set(r.arn, { status: r.status, redriveCount: r.redriveCount, lastEventId });
    }
    this.executions = executions;

    const hasBatch =
      db
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'batch_jobs'")
        .get() !== undefined;
    if (hasBatch) {
      this.options.jobs.refresh(db);
      const changed = [...this.changedJobs];
      this.changedJobs.clear();
      if (changed.length > 0) {
        const details = db
          .prepare(
            'SELECT detail FROM batch_jobs WHERE job_id IN (SELECT value FROM json_each(?)) ORDER BY created_at',
          )
          .all(JSON.stringify(changed)) as { detail: string }[];
        for (const d of details) this.emit('job', jobSummary(JSON.parse(d.detail) as JobDetail));
      }
      const batch = db
        .prepare(
          `SELECT (SELECT group_concat(detail, '|') FROM batch_compute_environments) AS ce,
                  (SELECT group_concat(detail, '|') FROM batch_job_queues) AS q`,
        )
        .get() as { ce: string | null; q: string | null };
      const text = `${batch.ce ?? ''}#${batch.q ?? ''}`;
      if (text !== this.batch) this.emit('batch', { at: now });
      this.batch = text;
    }
    this.primed = true;
  }
}
