/**
 * An execution's state machine as a graph for the dashboard to lay out: one node per state with
 * how it has gone, edges for Next, Choice rules, Default and Catch, and the branches of a
 * Parallel and the iterator of a Map as nested graphs. How each state went is read from the
 * history: events follow their thread (`previousEventId`), so each event belongs to the state
 * entry its thread is in, however many Map iterations run side by side.
 */
import type { ExecutionStatus, HistoryEvent } from '../../asl/execution.js';
import type {
  ChoiceRule,
  MapState,
  ParallelState,
  StateDefinition,
  StateMachineDefinition,
  TaskState,
} from '../../asl/types.js';
import type { StateEdge, StateGraph, StateNode, StateNodeStatus } from './types.js';

type Outcome = 'running' | 'succeeded' | 'failed' | 'caught';

/** How the entries of one state went. */
export interface StateTally {
  entered: number;
  succeeded: number;
  failed: number;
  caught: number;
  running: number;
  /** Its status: that of the entries since the latest redrive that re-entered it. */
  status: StateNodeStatus;
}

/** Events that fail the state their thread is in (a Catch may still take the failure). */
const FAILURE =
  /^(Task(Failed|TimedOut|SubmitFailed|StartFailed)|MapStateFailed|ParallelStateFailed|MapRunFailed|LambdaFunction(Failed|TimedOut|StartFailed))$/;
/** Events that start a state's work again after a Retry. */
const RETRIED = /^(TaskScheduled|MapStateStarted|ParallelStateStarted)$/;

/** How each state (by name) has gone in the execution whose history is `events`. */
export function stateTallies(
  events: readonly HistoryEvent[],
  executionStatus: ExecutionStatus,
): Map<string, StateTally> {
  interface Entry {
    name: string;
    type: string;
    failed: boolean;
    outcome?: Outcome;
    redrive: number;
  }
  const entries = new Map<number, Entry>();
  const entryOf = new Map<number, Entry>();
  let redrive = 0;
  for (const e of events) {
    if (e.type === 'ExecutionRedriven') {
      redrive++;
      continue;
    }
    if (e.type.endsWith('StateEntered')) {
      const name = (e.stateEnteredEventDetails as { name?: string } | undefined)?.name;
      if (typeof name !== 'string') continue;
      const entry: Entry = {
        name,
        type: e.type.slice(0, -'StateEntered'.length),
        failed: false,
        redrive,
      };
      entries.set(e.id, entry);
      entryOf.set(e.id, entry);
      continue;
    }
    const entry = entryOf.get(e.previousEventId);
    if (!entry) continue;
    if (e.type.endsWith('StateExited')) {
      entry.outcome = entry.failed ? 'caught' : 'succeeded';
      continue;
    }
    entryOf.set(e.id, entry);
    if (FAILURE.test(e.type)) entry.failed = true;
    else if (RETRIED.test(e.type)) entry.failed = false;
  }
  const byName = new Map<string, Entry[]>();
  for (const entry of entries.values()) {
    entry.outcome ??= entry.failed
      ? 'failed'
      : executionStatus === 'RUNNING'
        ? 'running'
        : entry.type === 'Succeed'
          ? 'succeeded'
          : // Still in it when the execution ended: a Fail state, or stopped, timed out or failed.
            'failed';
    const list = byName.get(entry.name) ?? [];
    list.push(entry);
    byName.set(entry.name, list);
  }
  const tallies = new Map<string, StateTally>();
  for (const [name, list] of byName) {
    const count = (o: Outcome, of = list) => of.filter((x) => x.outcome === o).length;
    const latest = Math.max(...list.map((x) => x.redrive));
    const recent = list.filter((x) => x.redrive === latest);
    const status: StateNodeStatus =
      count('running', recent) > 0
        ? 'running'
        : count('failed', recent) > 0
          ? 'failed'
          : count('caught', recent) > 0
            ? 'caught'
            : 'succeeded';
    tallies.set(name, {
      entered: list.length,
      succeeded: count('succeeded'),
      failed: count('failed'),
      caught: count('caught'),
      running: count('running'),
      status,
    });
  }
  return tallies;
}

const RULE_KEYS = new Set(['Variable', 'Next', 'Assign', 'Output', 'Comment']);

/** A Choice rule, short: `$.x NumericEquals 3`, `a and b`, or a JSONata condition. */
export function ruleText(rule: ChoiceRule): string {
  if (rule.Condition !== undefined) return String(rule.Condition);
  if (rule.And) return rule.And.map((r) => ruleText(r)).join(' and ');
  if (rule.Or) return rule.Or.map((r) => ruleText(r)).join(' or ');
  if (rule.Not) return `not (${ruleText(rule.Not)})`;
  const op = Object.keys(rule).find((k) => !RULE_KEYS.has(k));
  const text = op
    ? `${rule.Variable ?? ''} ${op} ${JSON.stringify(rule[op])}`.trim()
    : (rule.Variable ?? '');
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

/** The graph of `definition`, each node with its status from `tallies` (by state name). */
export function stateGraph(
  definition: StateMachineDefinition,
  tallies: Map<string, StateTally>,
  prefix = '',
): StateGraph {
  const id = (name: string) => `${prefix}${name}`;
  const nodes: StateNode[] = [];
  const edges: StateEdge[] = [];
  for (const [name, state] of Object.entries(definition.States ?? {})) {
    const s = state as StateDefinition;
    const tally = tallies.get(name);
    const node: StateNode = {
      id: id(name),
      name,
      type: s.Type,
      status: tally?.status ?? 'not-run',
      end: s.End === true || s.Type === 'Succeed' || s.Type === 'Fail',
    };
    if (s.Type === 'Task') node.resource = (s as TaskState).Resource;
    if (s.Comment) node.comment = s.Comment;
    if (tally && (tally.entered > 1 || prefix !== ''))
      node.runs = {
        entered: tally.entered,
        succeeded: tally.succeeded,
        failed: tally.failed,
        caught: tally.caught,
        running: tally.running,
      };
    if (s.Type === 'Parallel')
      node.subgraphs = ((s as ParallelState).Branches ?? []).map((b, i) =>
        stateGraph(b, tallies, `${id(name)}/${i}/`),
      );
    if (s.Type === 'Map') {
      const processor = (s as MapState).ItemProcessor ?? (s as MapState).Iterator;
      if (processor) node.subgraphs = [stateGraph(processor, tallies, `${id(name)}/`)];
    }
    nodes.push(node);
    if (s.Next) edges.push({ from: id(name), to: id(s.Next), kind: 'Next' });
    if (s.Type === 'Choice') {
      for (const rule of s.Choices ?? [])
        if (rule.Next)
          edges.push({ from: id(name), to: id(rule.Next), kind: 'Choice', label: ruleText(rule) });
      if (s.Default) edges.push({ from: id(name), to: id(s.Default), kind: 'Default' });
    }
    const catchers = 'Catch' in s ? (s.Catch ?? []) : [];
    for (const c of catchers)
      edges.push({
        from: id(name),
        to: id(c.Next),
        kind: 'Catch',
        label: c.ErrorEquals.join(', '),
      });
  }
  return { startAt: id(definition.StartAt), nodes, edges };
}
