/**
 * The execution's state graph (as the API gives it: nodes with their status, nested graphs for
 * Parallel branches and Map iterators) turned into the tree of nodes and the edges ELK lays out:
 * a Parallel is a group holding one group per branch, a Map a group holding its iterator's
 * states; the machine itself gets a start and an end marker, as the Step Functions console draws.
 */
import type { StateEdgeKind, StateGraph, StateNode } from '../../../src/server/ui/types.js';

export interface GraphNode {
  id: string;
  /** The state's name, or `Branch N` for a Parallel's branch. */
  name: string;
  /** The ASL type, `Branch`, or `Start`/`End` for the markers. */
  type: string;
  state?: StateNode;
  children: GraphNode[];
}

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  kind: StateEdgeKind;
  label?: string;
}

export interface GraphModel {
  nodes: GraphNode[];
  edges: GraphEdge[];
}

export const START_ID = '#start';
export const END_ID = '#end';

/** The whole machine's graph, with its start and end markers. */
export function graphModel(graph: StateGraph): GraphModel {
  const edges: GraphEdge[] = [];
  const nodes = nodesOf(graph, edges);
  if (graph.nodes.some((n) => n.id === graph.startAt))
    edges.push({
      id: `${START_ID}->${graph.startAt}`,
      source: START_ID,
      target: graph.startAt,
      kind: 'Next',
    });
  for (const n of graph.nodes)
    if (n.end) edges.push({ id: `${n.id}->${END_ID}`, source: n.id, target: END_ID, kind: 'Next' });
  return {
    nodes: [
      { id: START_ID, name: 'Start', type: 'Start', children: [] },
      ...nodes,
      { id: END_ID, name: 'End', type: 'End', children: [] },
    ],
    edges,
  };
}

function nodesOf(graph: StateGraph, edges: GraphEdge[]): GraphNode[] {
  const ids = new Set(graph.nodes.map((n) => n.id));
  for (const e of graph.edges)
    if (ids.has(e.from) && ids.has(e.to))
      edges.push({
        id: `${e.from}->${e.to}#${edges.length}`,
        source: e.from,
        target: e.to,
        kind: e.kind,
        label: e.label,
      });
  return graph.nodes.map((state) => {
    const node: GraphNode = {
      id: state.id,
      name: state.name,
      type: state.type,
      state,
      children: [],
    };
    const subgraphs = state.subgraphs ?? [];
    if (state.type === 'Parallel')
      node.children = subgraphs.map((branch, i) => ({
        id: `${state.id}#branch${i + 1}`,
        name: `Branch ${i + 1}`,
        type: 'Branch',
        children: nodesOf(branch, edges),
      }));
    else if (subgraphs.length > 0) node.children = subgraphs.flatMap((g) => nodesOf(g, edges));
    return node;
  });
}
