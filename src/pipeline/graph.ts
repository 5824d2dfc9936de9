/**
 * The step graph of a pipeline, for `strand graph`: steps in order, substeps inside their step,
 * the steps over all samples after the per-sample part, and which variable flows where.
 */
import type { JobSpec, PipelineSpec } from './model.js';

export type GraphFormat = 'text' | 'mermaid' | 'dot';

interface Edge {
  from: string;
  to: string;
  vars: string[];
}

/** Data edges: from the job that produces a variable to each job that uses it. */
function dataEdges(spec: PipelineSpec): Edge[] {
  const producer = new Map<string, string>();
  for (const s of spec.steps)
    for (const j of s.jobs) for (const v of Object.keys(j.outputs)) producer.set(v, j.name);
  const edges = new Map<string, Edge>();
  for (const s of spec.steps) {
    for (const j of s.jobs) {
      for (const v of j.vars) {
        const from = producer.get(v);
        if (!from || from === j.name) continue;
        const key = `${from}->${j.name}`;
        const e = edges.get(key) ?? { from, to: j.name, vars: [] };
        e.vars.push(v);
        edges.set(key, e);
      }
    }
  }
  return [...edges.values()];
}

function resources(j: JobSpec): string {
  const mem = j.memoryMiB % 1024 === 0 ? `${j.memoryMiB / 1024} GiB` : `${j.memoryMiB} MiB`;
  return `${j.vcpus} vCPU, ${mem}`;
}

function text(spec: PipelineSpec): string {
  const lines: string[] = [];
  const inputs = new Map<string, string[]>();
  for (const e of dataEdges(spec)) inputs.set(e.to, [...(inputs.get(e.to) ?? []), ...e.vars]);
  const job = (j: JobSpec, label: string, indent: string) => {
    const outs = Object.keys(j.outputs);
    const ins = inputs.get(j.name) ?? [];
    lines.push(
      `${indent}${label.padEnd(Math.max(1, 18 - indent.length))} ${(j.command[0] ?? '').padEnd(12)} ${resources(j).padEnd(16)}` +
        `${ins.length ? `  ← ${ins.join(', ')}` : ''}${outs.length ? `  → ${outs.join(', ')}` : ''}`,
    );
  };
  const section = (scope: 'sample' | 'all') => {
    for (const s of spec.steps.filter((x) => x.scope === scope)) {
      if (!s.hasSubsteps) {
        job(s.jobs[0], s.name, '  ');
        continue;
      }
      lines.push(`  ${s.name} (${s.parallel ? 'in parallel' : 'in sequence'})`);
      s.jobs.forEach((j, i) =>
        job(j, j.name.slice(s.name.length + 1), `    ${i === s.jobs.length - 1 ? '└' : '├'} `),
      );
    }
  };
  lines.push(`${spec.name}: per sample`);
  section('sample');
  if (spec.steps.some((s) => s.scope === 'all')) {
    lines.push('then once for all samples');
    section('all');
  }
  return lines.join('\n') + '\n';
}

const id = (name: string) => name.replace(/[^A-Za-z0-9_]/g, '_');

function mermaid(spec: PipelineSpec): string {
  const out = ['flowchart TD'];
  for (const s of spec.steps) {
    if (s.hasSubsteps) {
      out.push(`  subgraph ${id(s.name)}["${s.name} (${s.parallel ? 'parallel' : 'sequence'})"]`);
      for (const j of s.jobs) out.push(`    ${id(j.name)}["${j.name}"]`);
      out.push('  end');
    } else {
      out.push(`  ${id(s.name)}["${s.name}${s.scope === 'all' ? ' (all samples)' : ''}"]`);
    }
  }
  for (const e of dataEdges(spec))
    out.push(`  ${id(e.from)} -->|${e.vars.join(', ')}| ${id(e.to)}`);
  return out.join('\n') + '\n';
}

function dot(spec: PipelineSpec): string {
  const q = (s: string) => JSON.stringify(s);
  const out = [`digraph ${q(spec.name)} {`, '  rankdir=TB;', '  node [shape=box];'];
  for (const s of spec.steps) {
    if (s.hasSubsteps) {
      out.push(`  subgraph ${q(`cluster_${s.name}`)} {`);
      out.push(`    label=${q(`${s.name} (${s.parallel ? 'parallel' : 'sequence'})`)};`);
      for (const j of s.jobs) out.push(`    ${q(j.name)};`);
      out.push('  }');
    } else {
      out.push(
        `  ${q(s.name)}${s.scope === 'all' ? ' [label=' + q(`${s.name} (all samples)`) + ']' : ''};`,
      );
    }
  }
  for (const e of dataEdges(spec))
    out.push(`  ${q(e.from)} -> ${q(e.to)} [label=${q(e.vars.join(', '))}];`);
  out.push('}');
  return out.join('\n') + '\n';
}

/** The pipeline's graph as text, Mermaid or Graphviz dot. */
export function pipelineGraph(spec: PipelineSpec, format: GraphFormat): string {
  return format === 'mermaid' ? mermaid(spec) : format === 'dot' ? dot(spec) : text(spec);
}
