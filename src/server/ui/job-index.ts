/**
 * Which execution each Batch job belongs to, and its status, kept in memory and brought up to
 * date from the home's database on each use without reading it whole: the execution is a tag
 * inside each job's JSON, and the table has no index on it. Each refresh reads the jobs added
 * since the last (by rowid), the jobs not ended (by the status index), and those that were not
 * ended last time and are now. A home with 200,000 jobs is read whole once.
 */
import type Database from 'better-sqlite3';
import type { JobStatus } from '../../batch/types.js';
import type { JobCounts } from './types.js';

interface Entry {
  execution: string | null;
  status: JobStatus;
  attempts: number;
}

const LIVE = "('SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING')";
const COLUMNS = `job_id AS id, status, json_array_length(detail, '$.attempts') AS attempts`;

/** The home's jobs by execution; `refresh` tells listeners which jobs changed. */
export class JobIndex {
  private lastRowid = 0;
  private readonly jobs = new Map<string, Entry>();
  private readonly byExecution = new Map<string, Set<string>>();
  private live = new Set<string>();
  private primed = false;
  private readonly listeners: ((changed: string[]) => void)[] = [];

  /** Told the ids of the jobs added or changed at each refresh (after the first). */
  onChange(fn: (changed: string[]) => void): void {
    this.listeners.push(fn);
  }

  /** Reads what changed since the last refresh. */
  refresh(db: Database.Database): void {
    const has = db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'batch_jobs'")
      .get();
    if (!has) return;
    const first = !this.primed;
    this.primed = true;
    const changed: string[] = [];
    const added = db
      .prepare(
        `SELECT rowid, ${COLUMNS}, json_extract(detail, '$.tags."strand:execution"') AS execution
         FROM batch_jobs WHERE rowid > ? ORDER BY rowid`,
      )
      .all(this.lastRowid) as (Entry & { rowid: number; id: string })[];
    for (const r of added) {
      this.lastRowid = Math.max(this.lastRowid, r.rowid);
      // Array children are summed up on their parent.
      if (r.id.includes(':')) continue;
      const execution = typeof r.execution === 'string' ? r.execution : null;
      this.jobs.set(r.id, { execution, status: r.status, attempts: r.attempts });
      if (execution !== null) {
        let ids = this.byExecution.get(execution);
        if (!ids) this.byExecution.set(execution, (ids = new Set()));
        ids.add(r.id);
      }
      changed.push(r.id);
    }
    const live = db
      .prepare(`SELECT ${COLUMNS} FROM batch_jobs WHERE status IN ${LIVE}`)
      .all() as (Omit<Entry, 'execution'> & { id: string })[];
    const liveNow = new Set<string>();
    const update = (r: Omit<Entry, 'execution'> & { id: string }) => {
      const known = this.jobs.get(r.id);
      if (!known) return;
      if (known.status !== r.status || known.attempts !== r.attempts) {
        known.status = r.status;
        known.attempts = r.attempts;
        changed.push(r.id);
      }
    };
    for (const r of live) {
      if (r.id.includes(':')) continue;
      liveNow.add(r.id);
      update(r);
    }
    const ended = [...this.live].filter((id) => !liveNow.has(id));
    if (ended.length > 0)
      for (const r of db
        .prepare(
          `SELECT ${COLUMNS} FROM batch_jobs WHERE job_id IN (SELECT value FROM json_each(?))`,
        )
        .all(JSON.stringify(ended)) as (Omit<Entry, 'execution'> & { id: string })[])
        update(r);
    this.live = liveNow;
    if (!first && changed.length > 0) {
      const unique = [...new Set(changed)];
      for (const fn of this.listeners) fn(unique);
    }
  }

  /** The execution's jobs by status (statuses with none left out). */
  counts(execution: string): JobCounts {
    const out: JobCounts = {};
    for (const id of this.byExecution.get(execution) ?? []) {
      const status = this.jobs.get(id)!.status;
      out[status] = (out[status] ?? 0) + 1;
    }
    return out;
  }

  /** The ids of the execution's jobs (by its `strand:execution` tag). */
  jobsOf(execution: string): string[] {
    return [...(this.byExecution.get(execution) ?? [])];
  }
}
