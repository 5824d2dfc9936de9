/**
 * The step graph: the series-parallel plan keeps every dependency (random graphs) and adds no
 * wait to a graph that is series-parallel already (random series-parallel graphs); slices,
 * cycles.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ancestors,
  descendants,
  findCycle,
  planSteps,
  selectSteps,
  seriesParallel,
  type GraphStep,
  type Plan,
} from '../../src/pipeline/dag.js';

/** For each step of a plan: the steps certain to have ended when it starts. */
function planOrder(plan: Plan, done = new Set<string>(), out = new Map<string, Set<string>>()) {
  if (plan.kind === 'step') {
    out.set(plan.name, new Set(done));
    done.add(plan.name);
  } else if (plan.kind === 'seq') {
    for (const item of plan.items) planOrder(item, done, out);
  } else {
    const ended = plan.branches.map((b) => {
      const d = new Set(done);
      planOrder(b, d, out);
      return d;
    });
    for (const d of ended) for (const n of d) done.add(n);
  }
  return out;
}

/** A random acyclic graph of up to 9 steps, listed in a random order. */
const dag = fc
  .integer({ min: 1, max: 9 })
  .chain((n) =>
    fc.tuple(
      fc.constant(n),
      fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: 20 }),
      fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
    ),
  )
  .map(([n, pairs, order]) => {
    // An edge always goes from the lower number to the higher: no cycle.
    const needs = Array.from({ length: n }, () => new Set<number>());
    for (const [a, b] of pairs) if (a !== b) needs[Math.max(a, b)].add(Math.min(a, b));
    return order.map((i) => ({ name: `s${i}`, needs: [...needs[i]].map((d) => `s${d}`) }));
  });

type Sp = { leaf: true } | { seq: boolean; parts: Sp[] };

/** A random series-parallel expression. */
const spTree: fc.Arbitrary<Sp> = fc.letrec<{ node: Sp }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant<Sp>({ leaf: true }),
    fc.record({ seq: fc.boolean(), parts: fc.array(tie('node'), { minLength: 2, maxLength: 3 }) }),
  ),
})).node;

/** The graph of a series-parallel expression: a sequence joins each part's ends to the next's starts. */
function spGraph(tree: Sp): GraphStep[] {
  const steps: GraphStep[] = [];
  const build = (t: Sp): { sources: string[]; sinks: string[] } => {
    if ('leaf' in t) {
      const name = `s${steps.length}`;
      steps.push({ name, needs: [] });
      return { sources: [name], sinks: [name] };
    }
    const parts = t.parts.map(build);
    if (!t.seq)
      return { sources: parts.flatMap((p) => p.sources), sinks: parts.flatMap((p) => p.sinks) };
    for (let i = 1; i < parts.length; i++)
      for (const b of parts[i].sources)
        steps.find((s) => s.name === b)!.needs.push(...parts[i - 1].sinks);
    return { sources: parts[0].sources, sinks: parts.at(-1)!.sinks };
  };
  build(tree);
  return steps;
}

describe('seriesParallel', () => {
  it('holds every step once and starts each after all it needs (random graphs)', () => {
    fc.assert(
      fc.property(dag, (steps) => {
        const plan = seriesParallel(steps);
        expect(planSteps(plan).sort()).toEqual(steps.map((s) => s.name).sort());
        const order = planOrder(plan);
        for (const s of steps)
          for (const a of ancestors(steps, s.name)) expect(order.get(s.name)).toContain(a);
      }),
      { numRuns: 500 },
    );
  });

  it('adds no wait to a series-parallel graph: a step waits exactly for what it needs', () => {
    fc.assert(
      fc.property(spTree, (tree) => {
        const steps = spGraph(tree);
        const order = planOrder(seriesParallel(steps));
        for (const s of steps)
          expect([...order.get(s.name)!].sort()).toEqual([...ancestors(steps, s.name)].sort());
      }),
      { numRuns: 500 },
    );
  });

  it('the N graph waits for the fewest extra steps', () => {
    const steps = [
      { name: 'a', needs: [] },
      { name: 'b', needs: [] },
      { name: 'c', needs: ['a', 'b'] },
      { name: 'd', needs: ['b'] },
    ];
    const order = planOrder(seriesParallel(steps));
    expect([...order.get('d')!].sort()).toEqual(['a', 'b']);
    expect([...order.get('c')!].sort()).toEqual(['a', 'b']);
  });

  it('a fast side step joins the branch it can join, not the level it sits on', () => {
    // a → b → c and d → c: d runs beside a → b, not beside a alone.
    const steps = [
      { name: 'a', needs: [] },
      { name: 'b', needs: ['a'] },
      { name: 'd', needs: [] },
      { name: 'c', needs: ['b', 'd'] },
    ];
    const plan = seriesParallel(steps);
    expect(plan).toEqual({
      kind: 'seq',
      items: [
        {
          kind: 'par',
          branches: [
            {
              kind: 'seq',
              items: [
                { kind: 'step', name: 'a' },
                { kind: 'step', name: 'b' },
              ],
            },
            { kind: 'step', name: 'd' },
          ],
        },
        { kind: 'step', name: 'c' },
      ],
    });
  });
});

describe('selectSteps', () => {
  const steps = [
    { name: 'qc', needs: [] },
    { name: 'assemble', needs: ['qc'] },
    { name: 'stats', needs: ['assemble'] },
    { name: 'sketch', needs: ['assemble'] },
    { name: 'dist', needs: ['sketch'] },
  ];

  it.each<[string, string, string, string[]]>([
    ['everything', '', '', ['qc', 'assemble', 'stats', 'sketch', 'dist']],
    ['--to X: X and what it needs', '', 'sketch', ['qc', 'assemble', 'sketch']],
    ['--from X: X and what needs it', 'sketch', '', ['sketch', 'dist']],
    ['--from X --to Y: between them', 'assemble', 'dist', ['assemble', 'sketch', 'dist']],
    ['--only X', 'stats', 'stats', ['stats']],
    ['--to Y not after --from X: nothing', 'stats', 'dist', []],
  ])('%s', (_what, from, to, want) => {
    expect(selectSteps(steps, from, to)).toEqual(want);
  });

  it('--from and --to are descendants and ancestors (random graphs)', () => {
    fc.assert(
      fc.property(dag, (g) => {
        for (const s of g) {
          expect(new Set(selectSteps(g, '', s.name))).toEqual(
            new Set([s.name, ...ancestors(g, s.name)]),
          );
          expect(new Set(selectSteps(g, s.name, ''))).toEqual(
            new Set([s.name, ...descendants(g, s.name)]),
          );
        }
      }),
    );
  });
});

describe('findCycle', () => {
  it('none in an acyclic graph', () => {
    fc.assert(
      fc.property(dag, (g) => {
        expect(findCycle(g)).toBeUndefined();
      }),
    );
  });

  it('a cycle, as a path of needs back to where it started', () => {
    fc.assert(
      fc.property(dag, fc.nat(), fc.nat(), (g, i, j) => {
        // Close a cycle: some step's ancestor (or itself) now needs that step.
        const s = g[i % g.length];
        const up = [s.name, ...ancestors(g, s.name)];
        const target = up[j % up.length];
        const cyclic = g.map((x) =>
          x.name === target ? { ...x, needs: [...x.needs, s.name] } : x,
        );
        const cycle = findCycle(cyclic)!;
        expect(cycle).toBeDefined();
        expect(cycle[0]).toBe(cycle.at(-1));
        for (let k = 0; k + 1 < cycle.length; k++)
          expect(cyclic.find((x) => x.name === cycle[k])!.needs).toContain(cycle[k + 1]);
      }),
    );
  });
});
