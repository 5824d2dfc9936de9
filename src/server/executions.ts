/**
 * Listings the engine's API has no call for, read from its database: the executions of one state
 * machine (ListExecutions) and the state machines its executions ran (so runs started by
 * `strand run` or `strand start` show in ListStateMachines). Only the few columns a listing
 * shows are read: an execution's definition and state can be large.
 */
import type Database from 'better-sqlite3';
import type { ExecutionStatus } from '../asl/execution.js';

export interface ExecutionSummary {
  arn: string;
  name: string;
  status: ExecutionStatus;
  /** Epoch ms. */
  startDate: number;
  stopDate: number | null;
  redriveCount: number;
}

/** The executions of the state machine called `stateMachineName`. */
export function executionSummaries(
  db: Database.Database,
  stateMachineName: string,
): ExecutionSummary[] {
  return (
    db
      .prepare(
        `SELECT arn, name, status, start_date, stop_date, redrive_count FROM executions
         WHERE state_machine_name = ?`,
      )
      .all(stateMachineName) as Record<string, unknown>[]
  ).map((r) => ({
    arn: r.arn as string,
    name: r.name as string,
    status: r.status as ExecutionStatus,
    startDate: r.start_date as number,
    stopDate: (r.stop_date as number | null) ?? null,
    redriveCount: r.redrive_count as number,
  }));
}

/** Each state machine the home's executions ran, with the start of its first execution (ms). */
export function stateMachinesRun(db: Database.Database): { name: string; firstStart: number }[] {
  return db
    .prepare(
      'SELECT state_machine_name AS name, MIN(start_date) AS firstStart FROM executions GROUP BY state_machine_name',
    )
    .all() as { name: string; firstStart: number }[];
}
