/**
 * The dashboard's state graph (ui/src/graph): the API's graph of an execution, with Parallel
 * branches and a Map iterator nested, laid out by ELK in absolute coordinates, as the SVG view
 * draws it.
 */
import { describe, expect, it } from 'vitest';
import type { StateGraph, StateNode } from '../../src/server/ui/types.js';
import { END_ID, START_ID, graphModel } from '../../ui/src/graph/model.js';
import { layoutGraph, subtitle, type PlacedNode } from '../../ui/src/graph/layout.js';

const state = (id: string, type: string, extra: Partial<StateNode> = {}): StateNode => ({
  id,
  name: id.split('/').at(-1)!,
  type,
  status: 'not-run',
  end: false,
  ...extra,
});

/** Check → (Both: Parallel of two branches) → Each (Map) → Done; Check may go to Failed. */
const GRAPH: StateGraph = {
  startAt: 'Check',
  nodes: [
    state('Check', 'Choice', { status: 'succeeded' }),
    state('Both', 'Parallel', {
      status: 'running',
      subgraphs: [
        {
          startAt: 'Both/A1',
          nodes: [
            state('Both/A1', 'Task', { status: 'succeeded' }),
            state('Both/A2', 'Task', { end: true }),
          ],
          edges: [{ from: 'Both/A1', to: 'Both/A2', kind: 'Next' }],
        },
        {
          startAt: 'Both/B1',
          nodes: [state('Both/B1', 'Task', { status: 'running', end: true })],
          edges: [],
        },
      ],
    }),
    state('Each', 'Map', {
      runs: { entered: 12, succeeded: 10, failed: 1, caught: 1, running: 0 },
      subgraphs: [
        {
          startAt: 'Each/Work',
          nodes: [state('Each/Work', 'Task', { end: true })],
          edges: [],
        },
      ],
    }),
    state('Done', 'Succeed', { end: true }),
    state('Failed', 'Fail', { end: true }),
  ],
  edges: [
    { from: 'Check', to: 'Both', kind: 'Choice', label: '$.ok == true' },
    { from: 'Check', to: 'Failed', kind: 'Default' },
    { from: 'Both', to: 'Each', kind: 'Next' },
    { from: 'Both', to: 'Failed', kind: 'Catch', label: 'States.ALL' },
    { from: 'Each', to: 'Done', kind: 'Next' },
  ],
};

const inside = (inner: PlacedNode, outer: PlacedNode) =>
  inner.x >= outer.x &&
  inner.y >= outer.y &&
  inner.x + inner.width <= outer.x + outer.width &&
  inner.y + inner.height <= outer.y + outer.height;

describe('the state graph', () => {
  it('nests Parallel branches and a Map iterator, with a start and an end marker', () => {
    const model = graphModel(GRAPH);
    expect(model.nodes.map((n) => n.id)).toEqual([
      START_ID,
      'Check',
      'Both',
      'Each',
      'Done',
      'Failed',
      END_ID,
    ]);
    const both = model.nodes.find((n) => n.id === 'Both')!;
    expect(both.children.map((b) => [b.type, b.children.map((c) => c.id)])).toEqual([
      ['Branch', ['Both/A1', 'Both/A2']],
      ['Branch', ['Both/B1']],
    ]);
    expect(model.nodes.find((n) => n.id === 'Each')!.children.map((c) => c.id)).toEqual([
      'Each/Work',
    ]);
    // The machine's end states lead to the end marker; its StartAt comes from the start marker.
    expect(model.edges.filter((e) => e.target === END_ID).map((e) => e.source)).toEqual([
      'Done',
      'Failed',
    ]);
    expect(model.edges.find((e) => e.source === START_ID)?.target).toBe('Check');
  });

  it('is laid out top to bottom, each state inside its group, every edge routed', async () => {
    const placed = await layoutGraph(graphModel(GRAPH));
    const at = new Map(placed.nodes.map((n) => [n.id, n]));
    expect([...at.keys()].sort()).toEqual(
      [
        START_ID,
        END_ID,
        'Check',
        'Both',
        'Both#branch1',
        'Both#branch2',
        'Both/A1',
        'Both/A2',
        'Both/B1',
        'Each',
        'Each/Work',
        'Done',
        'Failed',
      ].sort(),
    );
    for (const n of placed.nodes) {
      expect(n.width).toBeGreaterThan(0);
      expect(n.x + n.width).toBeLessThanOrEqual(placed.width);
      expect(n.y + n.height).toBeLessThanOrEqual(placed.height);
    }
    const get = (id: string) => at.get(id)!;
    expect(inside(get('Both#branch1'), get('Both'))).toBe(true);
    expect(inside(get('Both#branch2'), get('Both'))).toBe(true);
    expect(inside(get('Both/A1'), get('Both#branch1'))).toBe(true);
    expect(inside(get('Both/A2'), get('Both#branch1'))).toBe(true);
    expect(inside(get('Both/B1'), get('Both#branch2'))).toBe(true);
    expect(inside(get('Each/Work'), get('Each'))).toBe(true);
    // Branches side by side; within one, states in order downwards; the machine downwards too.
    const [b1, b2] = [get('Both#branch1'), get('Both#branch2')].sort((a, b) => a.x - b.x);
    expect(b1.x + b1.width).toBeLessThanOrEqual(b2.x);
    expect(get('Both/A1').y).toBeLessThan(get('Both/A2').y);
    expect(get(START_ID).y).toBeLessThan(get('Check').y);
    expect(get('Check').y).toBeLessThan(get('Both').y);
    expect(get('Both').y + get('Both').height).toBeLessThanOrEqual(get('Each').y);
    expect(get('Done').y).toBeLessThan(get(END_ID).y);
    // Every edge has a route, from its source's box to its target's.
    expect(placed.edges).toHaveLength(graphModel(GRAPH).edges.length);
    for (const e of placed.edges) {
      expect(e.points.length).toBeGreaterThanOrEqual(2);
      const near = (p: { x: number; y: number }, n: PlacedNode) =>
        p.x >= n.x - 1 && p.x <= n.x + n.width + 1 && p.y >= n.y - 1 && p.y <= n.y + n.height + 1;
      expect(near(e.points[0], get(e.source)), `${e.id} starts at ${e.source}`).toBe(true);
      expect(near(e.points.at(-1)!, get(e.target)), `${e.id} ends at ${e.target}`).toBe(true);
    }
  });

  it('tells how a state run many times went', () => {
    const each = graphModel(GRAPH).nodes.find((n) => n.id === 'Each')!;
    expect(subtitle(each)).toBe('Map · 12× 10 ok 1 failed 1 caught');
    expect(subtitle(graphModel(GRAPH).nodes.find((n) => n.id === 'Check')!)).toBe('Choice');
  });
});
