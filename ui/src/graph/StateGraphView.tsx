/**
 * The execution's state graph as SVG, laid out by ELK and coloured by how each state has gone
 * (as the Step Functions console's graph view): green succeeded, blue running, red failed,
 * orange caught, grey not run. The layout is computed again only when the graph's shape changes,
 * not on each status change.
 */
import { useEffect, useMemo, useState } from 'react';
import type { StateGraph, StateNode } from '../../../src/server/ui/types.js';
import { graphModel } from './model.js';
import { layoutGraph, subtitle, type PlacedGraph, type PlacedNode } from './layout.js';

/** Every state of the graph (nested ones too), by id. */
function statesById(
  graph: StateGraph,
  into = new Map<string, StateNode>(),
): Map<string, StateNode> {
  for (const n of graph.nodes) {
    into.set(n.id, n);
    for (const g of n.subgraphs ?? []) statesById(g, into);
  }
  return into;
}

/** The graph without statuses: what the layout depends on. */
function shapeOf(graph: StateGraph): string {
  const strip = (g: StateGraph): unknown => ({
    s: g.startAt,
    n: g.nodes.map((n) => [
      n.id,
      n.name,
      n.type,
      n.end,
      (n.subgraphs ?? []).map(strip),
      (n.runs?.entered ?? 0) > 1,
    ]),
    e: g.edges.map((e) => [e.from, e.to, e.kind]),
  });
  return JSON.stringify(strip(graph));
}

const TONE: Record<string, string> = {
  'not-run': 'none',
  running: 'run',
  succeeded: 'ok',
  failed: 'bad',
  caught: 'caught',
};

export function StateGraphView({
  graph,
  selected,
  onSelect,
}: {
  graph: StateGraph;
  selected?: string;
  onSelect?: (state: StateNode | undefined) => void;
}) {
  const shape = useMemo(() => shapeOf(graph), [graph]);
  const [placed, setPlaced] = useState<{ shape: string; graph: PlacedGraph }>();
  const [failure, setFailure] = useState<string>();

  useEffect(() => {
    let cancelled = false;
    layoutGraph(graphModel(graph)).then(
      (g) => !cancelled && setPlaced({ shape, graph: g }),
      (err: Error) => !cancelled && setFailure(err.message),
    );
    return () => {
      cancelled = true;
    };
    // Laid out again only when the shape changes; statuses are read at render.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape]);

  const states = useMemo(() => statesById(graph), [graph]);
  if (failure) return <div className="error-box">The graph could not be laid out: {failure}</div>;
  if (!placed) return <div className="muted graph-loading">Laying out the graph…</div>;
  const g = placed.graph;
  const pad = 8;
  const groups = g.nodes.filter((n) => n.group).sort((a, b) => a.depth - b.depth);
  const leaves = g.nodes.filter((n) => !n.group);
  const toneOf = (n: PlacedNode) => {
    const s = states.get(n.id);
    return s ? (TONE[s.status] ?? 'none') : 'none';
  };
  const titleOf = (n: PlacedNode) => {
    const s = states.get(n.id);
    if (!s) return n.node.name;
    const lines = [`${s.name} (${s.type}): ${s.status}`];
    if (s.resource) lines.push(s.resource);
    if (s.runs) lines.push(subtitle({ ...n.node, state: s }));
    if (s.comment) lines.push(s.comment);
    return lines.join('\n');
  };

  return (
    <div className="graph-wrap">
      <svg
        className="state-graph"
        role="img"
        aria-label="State graph"
        viewBox={`${-pad} ${-pad} ${g.width + 2 * pad} ${g.height + 2 * pad}`}
        width={g.width + 2 * pad}
        style={{ maxWidth: '100%', height: 'auto' }}
      >
        <defs>
          <marker
            id="arrow"
            viewBox="0 0 10 10"
            refX="9"
            refY="5"
            markerWidth="7"
            markerHeight="7"
            orient="auto-start-reverse"
          >
            <path d="M 0 0 L 10 5 L 0 10 z" className="arrow-head" />
          </marker>
        </defs>
        {groups.map((n) => (
          <g
            key={n.id}
            className={`g-group tone-${n.node.type === 'Branch' ? 'branch' : toneOf(n)}${selected === n.id ? ' selected' : ''}`}
            data-state={n.node.type === 'Branch' ? undefined : n.node.name}
            onClick={(e) => {
              e.stopPropagation();
              if (n.node.type !== 'Branch') onSelect?.(states.get(n.id));
            }}
          >
            <title>{n.node.type === 'Branch' ? n.node.name : titleOf(n)}</title>
            <rect x={n.x} y={n.y} width={n.width} height={n.height} rx={6} />
            <text x={n.x + 8} y={n.y + 15} className="g-group-label">
              {n.node.type === 'Branch' ? n.node.name : `${n.node.name}`}
              {n.node.type !== 'Branch' && (
                <tspan className="g-sub"> {subtitle({ ...n.node, state: states.get(n.id) })}</tspan>
              )}
            </text>
          </g>
        ))}
        {g.edges.map((e) => (
          <path
            key={e.id}
            className={`g-edge kind-${e.kind}`}
            d={e.points.map((p, i) => `${i ? 'L' : 'M'} ${p.x} ${p.y}`).join(' ')}
            markerEnd="url(#arrow)"
          >
            <title>{`${e.kind}${e.label ? `: ${e.label}` : ''}`}</title>
          </path>
        ))}
        {leaves.map((n) =>
          n.node.type === 'Start' || n.node.type === 'End' ? (
            <g key={n.id} className="g-marker">
              <rect x={n.x} y={n.y} width={n.width} height={n.height} rx={n.height / 2} />
              <text x={n.x + n.width / 2} y={n.y + n.height / 2 + 4} textAnchor="middle">
                {n.node.name}
              </text>
            </g>
          ) : (
            <g
              key={n.id}
              className={`g-state tone-${toneOf(n)}${selected === n.id ? ' selected' : ''}`}
              data-state={n.node.name}
              data-status={states.get(n.id)?.status}
              onClick={(e) => {
                e.stopPropagation();
                onSelect?.(states.get(n.id));
              }}
            >
              <title>{titleOf(n)}</title>
              <rect x={n.x} y={n.y} width={n.width} height={n.height} rx={4} />
              <text x={n.x + n.width / 2} y={n.y + 16} textAnchor="middle" className="g-name">
                {n.node.name}
              </text>
              <text x={n.x + n.width / 2} y={n.y + 30} textAnchor="middle" className="g-sub">
                {subtitle({ ...n.node, state: states.get(n.id) })}
              </text>
            </g>
          ),
        )}
      </svg>
    </div>
  );
}
