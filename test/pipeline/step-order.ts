/**
 * Reads back, from a compiled state machine, the order its steps run in: for each step (found
 * by its entry Choice `<step>: run?`), the steps certain to have ended when it starts. Works on
 * the ASL alone, following the path of a run that skips nothing: a chain of states, Parallel
 * branches (all of whose steps have ended after it) and the Map over samples. An aggregate step
 * that starts early waits (`<step>: samples`, strand-collect) for the per-sample steps it
 * needs, directly or not, as the steps in that call's payload say.
 */
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const GUARD = /^(.*): run\?$/;

function walk(states: Obj, start: string, done: Set<string>, out: Map<string, Set<string>>) {
  // A step has ended when the run reaches the state its entry Choice skips to.
  const endsAt = new Map<string, string[]>();
  let name: string | undefined = start;
  const seen = new Set<string>();
  while (name !== undefined) {
    if (seen.has(name)) throw new Error(`the path loops at "${name}"`);
    seen.add(name);
    for (const step of endsAt.get(name) ?? []) done.add(step);
    const state: Obj | undefined = states[name];
    if (!state) throw new Error(`no state "${name}"`);
    const guard = GUARD.exec(name);
    if (guard && state.Type === 'Choice') {
      if (out.has(guard[1])) throw new Error(`step "${guard[1]}" is entered twice`);
      out.set(guard[1], new Set([...done, ...awaited(states[state.Default], guard[1])]));
      const skipTo = state.Choices[0].Next as string;
      endsAt.set(skipTo, [...(endsAt.get(skipTo) ?? []), guard[1]]);
      name = state.Default;
      continue;
    }
    if (state.Type === 'Parallel' || state.Type === 'Map') {
      const branches: Obj[] = state.Type === 'Map' ? [state.ItemProcessor] : state.Branches;
      const ended = branches.map((b) => walk(b.States, b.StartAt, new Set(done), out));
      for (const e of ended) for (const step of e) done.add(step);
      name = state.Next;
      continue;
    }
    if (state.Type === 'Succeed' || state.Type === 'Fail') break;
    name = state.Type === 'Choice' ? state.Default : state.Next;
  }
  return done;
}

/** The per-sample steps a wait for samples (a strand-collect Task in `mode: wait`) waits for. */
function awaited(state: Obj | undefined, step: string): string[] {
  const payload = state?.Parameters?.Payload;
  if (state?.Type !== 'Task' || payload?.mode !== 'wait') return [];
  const steps = payload.steps as { name: string; scope: string; needs: string[] }[];
  const needs = new Set<string>();
  const add = (name: string): void => {
    for (const n of steps.find((s) => s.name === name)?.needs ?? [])
      if (!needs.has(n)) {
        needs.add(n);
        add(n);
      }
  };
  add(step);
  return steps.filter((s) => s.scope === 'sample' && needs.has(s.name)).map((s) => s.name);
}

/** Each step of `definition`, with the steps that have ended when it starts. */
export function stepOrder(definition: Obj): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  walk(definition.States, definition.StartAt, new Set(), out);
  return out;
}
