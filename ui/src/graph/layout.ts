/**
 * Lays a state graph out with ELK (layered, top to bottom, groups laid out with their contents so
 * that edges route around them), in absolute coordinates ready for SVG.
 */
import type { ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk-api.js';
import type { GraphEdge, GraphNode, GraphModel } from './model.js';

export interface PlacedNode {
  id: string;
  node: GraphNode;
  x: number;
  y: number;
  width: number;
  height: number;
  /** Nesting depth: 0 for the machine's own states. */
  depth: number;
  group: boolean;
}

export interface PlacedEdge extends GraphEdge {
  points: { x: number; y: number }[];
}

export interface PlacedGraph {
  width: number;
  height: number;
  nodes: PlacedNode[];
  edges: PlacedEdge[];
}

const CHAR_WIDTH = 7.2;
const LEAF_HEIGHT = 38;
const GROUP_HEADER = 22;

/**
 * A leaf's size from its two lines (the name, then the type): 12 px sans-serif is close enough to
 * 7.2 px a character, and a box too wide costs less than a name cut short.
 */
function leafSize(node: GraphNode): { width: number; height: number } {
  if (node.type === 'Start' || node.type === 'End') return { width: 56, height: 24 };
  // Room for the runs (`Task · 12× 10 ok 2 failed`) whatever they become, so that the layout
  // need not change as they are counted.
  const many = (node.state?.runs?.entered ?? 0) > 1;
  const text = Math.max(node.name.length, (many ? 30 : node.type.length) * 0.85);
  return { width: Math.max(90, Math.ceil(text * CHAR_WIDTH) + 24), height: LEAF_HEIGHT };
}

/** The small second line of a state: its type, and how its runs went when it ran many times. */
export function subtitle(node: GraphNode): string {
  const runs = node.state?.runs;
  const type = node.type;
  if (!runs || runs.entered <= 1) return type;
  const parts = [`${runs.entered}×`];
  if (runs.succeeded) parts.push(`${runs.succeeded} ok`);
  if (runs.running) parts.push(`${runs.running} running`);
  if (runs.failed) parts.push(`${runs.failed} failed`);
  if (runs.caught) parts.push(`${runs.caught} caught`);
  return `${type} · ${parts.join(' ')}`;
}

function toElk(node: GraphNode, edgesByParent: Map<string, GraphEdge[]>): ElkNode {
  const own = (edgesByParent.get(node.id) ?? []).map(toElkEdge);
  if (node.children.length === 0) return { id: node.id, ...leafSize(node), edges: own };
  return {
    id: node.id,
    layoutOptions: {
      'elk.padding': `[top=${GROUP_HEADER + 8},left=12,bottom=12,right=12]`,
      'elk.nodeSize.constraints': 'MINIMUM_SIZE',
      'elk.nodeSize.minimum': `(${Math.ceil(node.name.length * CHAR_WIDTH) + 60}, 60)`,
    },
    children: node.children.map((c) => toElk(c, edgesByParent)),
    edges: own,
  };
}

const toElkEdge = (e: GraphEdge): ElkExtendedEdge => ({
  id: e.id,
  sources: [e.source],
  targets: [e.target],
});

/** Lays `model` out; resolves to absolute positions. */
export async function layoutGraph(model: GraphModel): Promise<PlacedGraph> {
  const parentOf = new Map<string, string>();
  const info = new Map<string, { node: GraphNode; depth: number }>();
  const visit = (nodes: GraphNode[], parent: string, depth: number) => {
    for (const n of nodes) {
      parentOf.set(n.id, parent);
      info.set(n.id, { node: n, depth });
      visit(n.children, n.id, depth + 1);
    }
  };
  visit(model.nodes, 'root', 0);
  // An edge belongs to the group both its ends are in (they are always siblings here).
  const edgesByParent = new Map<string, GraphEdge[]>();
  for (const e of model.edges) {
    const parent = parentOf.get(e.source) ?? 'root';
    edgesByParent.set(parent, [...(edgesByParent.get(parent) ?? []), e]);
  }
  const root: ElkNode = {
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'DOWN',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.layered.spacing.nodeNodeBetweenLayers': '28',
      'elk.spacing.nodeNode': '20',
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.json.shapeCoords': 'ROOT',
      'elk.json.edgeCoords': 'ROOT',
    },
    children: model.nodes.map((n) => toElk(n, edgesByParent)),
    edges: (edgesByParent.get('root') ?? []).map(toElkEdge),
  };
  // ELK is most of the front end's size: loaded with the first graph, not with every page.
  const elk = await import('elkjs/lib/elk.bundled.js');
  // A CommonJS module: its constructor is the default export, and also that export's `default`,
  // which is where TypeScript looks under Node's resolution (the graph's tests).
  const ELK = ((elk.default as unknown as { default?: unknown }).default ??
    elk.default) as new () => { layout(graph: ElkNode): Promise<ElkNode> };
  const laid = await new ELK().layout(root);

  const nodes: PlacedNode[] = [];
  const collectNodes = (elk: ElkNode) => {
    for (const c of elk.children ?? []) {
      const i = info.get(c.id);
      if (i)
        nodes.push({
          id: c.id,
          node: i.node,
          x: c.x ?? 0,
          y: c.y ?? 0,
          width: c.width ?? 0,
          height: c.height ?? 0,
          depth: i.depth,
          group: i.node.children.length > 0,
        });
      collectNodes(c);
    }
  };
  collectNodes(laid);

  const byId = new Map(model.edges.map((e) => [e.id, e]));
  const edges: PlacedEdge[] = [];
  const collectEdges = (elk: ElkNode) => {
    for (const e of elk.edges ?? []) {
      const edge = byId.get(e.id);
      const points = (e.sections ?? []).flatMap((s) => [
        s.startPoint,
        ...(s.bendPoints ?? []),
        s.endPoint,
      ]);
      if (edge) edges.push({ ...edge, points });
    }
    for (const c of elk.children ?? []) collectEdges(c);
  };
  collectEdges(laid);
  return { width: laid.width ?? 0, height: laid.height ?? 0, nodes, edges };
}
