/**
 * The dependency graph of a pipeline's steps, as the loader infers it (a step needs the steps
 * whose outputs it reads, and those it names under `after:`), and the two things made of it:
 * which steps a sliced run (`--from/--to/--only`) runs, and the series-parallel plan the
 * compiler turns into ASL. Pure functions over step names and their `needs`.
 */

/** What the graph functions need of a step. */
export interface GraphStep {
  name: string;
  /** Steps this one waits for (data or `after:`), by name. */
  needs: string[];
}

/** A series-parallel plan: one step, steps one after another, or branches side by side. */
export type Plan =
  | { kind: 'step'; name: string }
  | { kind: 'seq'; items: Plan[] }
  | { kind: 'par'; branches: Plan[] };

/** Every step `name` needs, directly or not (not itself). */
export function ancestors(steps: readonly GraphStep[], name: string): Set<string> {
  const byName = new Map(steps.map((s) => [s.name, s]));
  const seen = new Set<string>();
  const visit = (n: string): void => {
    for (const d of byName.get(n)?.needs ?? []) {
      if (seen.has(d)) continue;
      seen.add(d);
      visit(d);
    }
  };
  visit(name);
  return seen;
}

/** Every step that needs `name`, directly or not (not itself). */
export function descendants(steps: readonly GraphStep[], name: string): Set<string> {
  const reversed = steps.map((s) => ({
    name: s.name,
    needs: steps.filter((o) => o.needs.includes(s.name)).map((o) => o.name),
  }));
  return ancestors(reversed, name);
}

/**
 * The steps a run sliced with `--from`/`--to` runs, in the order given: `from` and what
 * depends on it, and `to` and what it needs; '' leaves that side open. Empty when `to` does not
 * depend on `from`.
 */
export function selectSteps(steps: readonly GraphStep[], from: string, to: string): string[] {
  const after = from ? new Set([from, ...descendants(steps, from)]) : undefined;
  const before = to ? new Set([to, ...ancestors(steps, to)]) : undefined;
  return steps
    .map((s) => s.name)
    .filter((n) => (!after || after.has(n)) && (!before || before.has(n)));
}

/**
 * A cycle among the steps, as the names along it with the first repeated at the end
 * (`[a, b, a]`: a needs b, b needs a), or undefined. Looks in the order given, so the same
 * pipeline always reports the same cycle.
 */
export function findCycle(steps: readonly GraphStep[]): string[] | undefined {
  const byName = new Map(steps.map((s) => [s.name, s]));
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (n: string): string[] | undefined => {
    state.set(n, 'open');
    path.push(n);
    for (const d of byName.get(n)?.needs ?? []) {
      if (!byName.has(d)) continue;
      if (state.get(d) === 'open') return [...path.slice(path.indexOf(d)), d];
      if (state.get(d) === undefined) {
        const found = visit(d);
        if (found) return found;
      }
    }
    path.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const s of steps) {
    if (state.get(s.name) !== undefined) continue;
    const found = visit(s.name);
    if (found) return found;
  }
  return undefined;
}

/**
 * The steps as a series-parallel plan that keeps every dependency: parts with no edge between
 * them become branches; a connected part is cut into what runs first and what runs after.
 * ASL has no join of arbitrary branches, so a graph that is not series-parallel (an `N`: a→c,
 * b→c, b→d) gets the cut that adds the fewest waits (here d also waits for a). Needs naming
 * steps outside `steps` are ignored; the graph must be acyclic.
 */
export function seriesParallel(steps: readonly GraphStep[]): Plan {
  const names = steps.map((s) => s.name);
  const inSet = new Set(names);
  const needs = new Map(steps.map((s) => [s.name, s.needs.filter((d) => inSet.has(d))]));
  return plan(names, needs);
}

function plan(names: string[], allNeeds: Map<string, string[]>): Plan {
  if (names.length === 1) return { kind: 'step', name: names[0] };
  const inSet = new Set(names);
  const needs = new Map(names.map((n) => [n, allNeeds.get(n)!.filter((d) => inSet.has(d))]));
  const parts = components(names, needs);
  if (parts.length > 1) {
    return { kind: 'par', branches: parts.map((p) => plan(p, needs)) };
  }
  const [first, rest] = bestCut(names, needs);
  const items: Plan[] = [];
  for (const p of [plan(first, needs), plan(rest, needs)]) {
    if (p.kind === 'seq') items.push(...p.items);
    else items.push(p);
  }
  return { kind: 'seq', items };
}

/** Weakly connected parts, each in the given order, ordered by their first step. */
function components(names: string[], needs: Map<string, string[]>): string[][] {
  const part = new Map<string, number>();
  const adjacent = new Map<string, string[]>(names.map((n) => [n, []]));
  for (const n of names)
    for (const d of needs.get(n)!) {
      adjacent.get(n)!.push(d);
      adjacent.get(d)!.push(n);
    }
  let count = 0;
  for (const n of names) {
    if (part.has(n)) continue;
    const stack = [n];
    part.set(n, count);
    while (stack.length > 0) {
      for (const m of adjacent.get(stack.pop()!)!) {
        if (part.has(m)) continue;
        part.set(m, count);
        stack.push(m);
      }
    }
    count++;
  }
  return Array.from({ length: count }, (_, i) => names.filter((n) => part.get(n) === i));
}

/**
 * Splits a connected acyclic graph into what runs first and what runs after. The candidates are
 * the cuts between levels counted from the sources (as early as possible) and from the sinks
 * (as late as possible): no edge crosses them backwards. Each costs the pairs it makes wait
 * without a path between them; the cheapest wins, the earliest on a tie.
 */
function bestCut(names: string[], needs: Map<string, string[]>): [string[], string[]] {
  const users = new Map<string, string[]>(names.map((n) => [n, []]));
  for (const n of names) for (const d of needs.get(n)!) users.get(d)!.push(n);
  // Levels from the sources (along needs) and from the sinks (along users).
  const early = longestPaths(names, needs);
  const height = longestPaths(names, users);
  const longest = Math.max(...names.map((n) => early.get(n)!));
  const late = new Map(names.map((n) => [n, longest - height.get(n)!]));
  const reach = new Map(names.map((n) => [n, reachable(n, users)]));

  let best: { cost: number; first: string[]; rest: string[] } | undefined;
  for (const level of [early, late]) {
    for (let k = 1; k <= longest; k++) {
      const first = names.filter((n) => level.get(n)! < k);
      const rest = names.filter((n) => level.get(n)! >= k);
      let cost = 0;
      for (const p of first) for (const q of rest) if (!reach.get(p)!.has(q)) cost++;
      if (!best || cost < best.cost) best = { cost, first, rest };
    }
  }
  return [best!.first, best!.rest];
}

/** For each step, the longest path from it along `edges` (0 where there is none). */
function longestPaths(names: string[], edges: Map<string, string[]>): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (n: string): number => {
    let d = out.get(n);
    if (d === undefined) {
      d = Math.max(-1, ...edges.get(n)!.map(walk)) + 1;
      out.set(n, d);
    }
    return d;
  };
  names.forEach(walk);
  return out;
}

/** The steps reachable from `n` through `users` (those that need it, and so on). */
function reachable(n: string, users: Map<string, string[]>): Set<string> {
  const seen = new Set<string>();
  const stack = [n];
  while (stack.length > 0) {
    for (const m of users.get(stack.pop()!)!) {
      if (seen.has(m)) continue;
      seen.add(m);
      stack.push(m);
    }
  }
  return seen;
}

/** The steps of a plan, in the order they appear in it. */
export function planSteps(p: Plan): string[] {
  if (p.kind === 'step') return [p.name];
  return (p.kind === 'seq' ? p.items : p.branches).flatMap(planSteps);
}

/** What the aggregate functions need of a step: its graph links and whether it runs per sample. */
export interface ScopedStep extends GraphStep {
  scope: 'sample' | 'all';
}

/**
 * The per-sample steps aggregate step `name` waits for: those it reads or names in `after:`,
 * and what they need, directly or through other aggregate steps.
 */
export function samplesAwaited<S extends ScopedStep>(steps: readonly S[], name: string): S[] {
  const needed = ancestors(steps, name);
  return steps.filter((s) => s.scope === 'sample' && needed.has(s.name));
}

/**
 * The aggregate steps that can start before every sample has ended: those that wait for some
 * per-sample steps only (the others start once the samples are done, as a whole). None when no
 * step runs per sample.
 */
export function earlyAggregates<S extends ScopedStep>(steps: readonly S[]): S[] {
  const perSample = steps.filter((s) => s.scope === 'sample').length;
  if (perSample === 0) return [];
  return steps.filter((s) => s.scope === 'all' && samplesAwaited(steps, s.name).length < perSample);
}
