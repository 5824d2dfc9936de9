/**
 * The step graph of a pipeline, for `strand graph`: the steps as the data orders them (steps
 * side by side when no path joins them), substeps inside their step, the steps over all samples
 * beside or after the per-sample part, and which variable flows where. Pure: a PipelineSpec in,
 * a string out.
 */
import { ancestors, earlyAggregates, samplesAwaited, seriesParallel, type Plan } from './dag.js';
import type { JobSpec, PipelineSpec, StepSpec } from './model.js';

export type GraphFormat = 'text' | 'mermaid' | 'dot';

/** An edge between two jobs: the order they run in, the variables that flow, or both. */
interface Edge {
  from: string;
  to: string;
  /** Variables produced by `from` and used by `to`, in first-use order. */
  vars: string[];
  /** The edge from the last per-sample step to the first aggregate step. */
  allSamples: boolean;
}

/** The jobs a step is entered by and left from. */
function entries(step: StepSpec): JobSpec[] {
  return step.parallel ? step.jobs : step.jobs.slice(0, 1);
}

function exits(step: StepSpec): JobSpec[] {
  return step.parallel ? step.jobs : step.jobs.slice(-1);
}

/**
 * Every edge, in a stable order (by the job they lead into): the data edges from the job
 * producing a variable to each job that uses it, the order of sequential substeps, and each
 * `after:` entry that carries no data (from its step's last jobs to this step's first ones).
 */
function graphEdges(spec: PipelineSpec): Edge[] {
  const edges = new Map<string, Edge>();
  const edge = (from: string, to: string): Edge => {
    const key = `${from}\n${to}`;
    let e = edges.get(key);
    if (!e) {
      e = { from, to, vars: [], allSamples: false };
      edges.set(key, e);
    }
    return e;
  };
  const producer = new Map<string, { job: string; step: StepSpec }>();
  for (const s of spec.steps)
    for (const j of s.jobs)
      for (const v of Object.keys(j.outputs)) producer.set(v, { job: j.name, step: s });
  for (const step of spec.steps) {
    const fed = new Set<string>();
    for (const [k, j] of step.jobs.entries()) {
      if (!step.parallel && k > 0) edge(step.jobs[k - 1].name, j.name);
      for (const v of j.vars) {
        const from = producer.get(v);
        if (from === undefined || from.job === j.name) continue;
        const e = edge(from.job, j.name);
        if (!e.vars.includes(v)) e.vars.push(v);
        // The aggregate step waits for every sample, not just one.
        if (from.step.scope === 'sample' && step.scope === 'all') e.allSamples = true;
        fed.add(from.step.name);
      }
    }
    for (const name of step.after) {
      if (fed.has(name)) continue;
      const other = spec.steps.find((s) => s.name === name)!;
      for (const a of exits(other))
        for (const b of entries(step)) {
          const e = edge(a.name, b.name);
          if (other.scope === 'sample' && step.scope === 'all') e.allSamples = true;
        }
    }
  }
  return [...edges.values()];
}

function edgeLabel(e: Edge): string {
  const vars = e.vars.join(', ');
  if (!e.allSamples) return vars;
  return vars === '' ? 'all samples' : `all samples: ${vars}`;
}

/** A substep's own name (`genes` of `annotate.genes`). */
function shortName(step: StepSpec, job: JobSpec): string {
  return step.hasSubsteps ? job.name.slice(step.name.length + 1) : job.name;
}

function stepLabel(step: StepSpec): string {
  const notes = [
    ...(step.hasSubsteps ? [step.parallel ? 'parallel' : 'sequence'] : []),
    ...(step.scope === 'all' ? ['all samples'] : []),
  ];
  return notes.length === 0 ? step.name : `${step.name} (${notes.join(', ')})`;
}

// ---- text ----

function resources(j: JobSpec): string {
  const size = (mib: number) => (mib % 1024 === 0 ? `${mib / 1024}` : `${mib}`);
  const unit = (mib: number) => (mib % 1024 === 0 ? 'GiB' : 'MiB');
  const mem =
    j.memoryMinMiB === undefined
      ? `${size(j.memoryMiB)} ${unit(j.memoryMiB)}`
      : unit(j.memoryMinMiB) === unit(j.memoryMiB)
        ? `${size(j.memoryMinMiB)}-${size(j.memoryMiB)} ${unit(j.memoryMiB)}`
        : `${j.memoryMinMiB}-${j.memoryMiB} MiB`;
  return `${j.vcpusMin === undefined ? j.vcpus : `${j.vcpusMin}-${j.vcpus}`} vCPU, ${mem}`;
}

/**
 * The steps of each scope as they will run: one after another down the page, steps side by side
 * as the branches of a `side by side` block, each job with its tool, resources, and the
 * variables it reads and declares.
 */
function text(spec: PipelineSpec): string {
  const inputs = new Map<string, string[]>();
  for (const e of graphEdges(spec))
    if (e.vars.length > 0) inputs.set(e.to, [...(inputs.get(e.to) ?? []), ...e.vars]);
  const job = (j: JobSpec, label: string, indent: number, after: string[] = []): string => {
    const outs = Object.keys(j.outputs);
    const ins = inputs.get(j.name) ?? [];
    const name = label.padEnd(Math.max(1, 16 - indent));
    const tool = (j.command[0] ?? '').padEnd(12);
    return (
      `${name} ${tool} ${resources(j).padEnd(16)}` +
      (ins.length > 0 ? `  ← ${ins.join(', ')}` : '') +
      (outs.length > 0 ? `  → ${outs.join(', ')}` : '') +
      (after.length > 0 ? `  (after ${after.join(', ')})` : '')
    );
  };
  const byName = new Map(spec.steps.map((s) => [s.name, s]));
  const early = earlyAggregates(spec.steps);
  // When each aggregate step that starts early does: once every sample has ended the last of
  // the per-sample steps it waits for.
  const starts = new Map(
    early.map((e) => {
      const awaited = samplesAwaited(spec.steps, e.name);
      const last = awaited
        .filter((a) => !awaited.some((b) => ancestors(spec.steps, b.name).has(a.name)))
        .map((a) => a.name);
      return [
        e.name,
        last.length === 0
          ? 'at once'
          : `once every sample's ${last.join(', ')} ${last.length === 1 ? 'has' : 'have'} ended`,
      ];
    }),
  );
  // Lines of a plan drawn at `indent` columns from the margin (for the names' alignment).
  const draw = (plan: Plan, indent: number): string[] => {
    if (plan.kind === 'seq') return plan.items.flatMap((p) => draw(p, indent));
    if (plan.kind === 'par') {
      const lines = ['side by side:'];
      plan.branches.forEach((b, i) => {
        const last = i === plan.branches.length - 1;
        draw(b, indent + 2).forEach((line, k) =>
          lines.push(`${k === 0 ? (last ? '└ ' : '├ ') : last ? '  ' : '│ '}${line}`),
        );
      });
      return lines;
    }
    const s = byName.get(plan.name)!;
    const dataless = s.after;
    const start = starts.has(s.name) ? `  (${starts.get(s.name)!})` : '';
    if (!s.hasSubsteps) return [job(s.jobs[0], s.name, indent, dataless) + start];
    return [
      `${s.name} (substeps ${s.parallel ? 'side by side' : 'in order'})${dataless.length > 0 ? `  (after ${dataless.join(', ')})` : ''}${start}`,
      ...s.jobs.map(
        (j, i) => `${i === s.jobs.length - 1 ? '└' : '├'} ${job(j, shortName(s, j), indent + 2)}`,
      ),
    ];
  };
  const section = (steps: StepSpec[]): string[] =>
    draw(seriesParallel(steps), 2).map((line) => `  ${line}`.trimEnd());
  const lines: string[] = [];
  if (spec.steps.some((s) => s.scope === 'sample')) {
    lines.push(
      `${spec.name}: per sample`,
      ...section(spec.steps.filter((s) => s.scope === 'sample')),
    );
  }
  // Aggregate steps that wait for some per-sample steps only run beside the samples.
  if (early.length > 0) lines.push('meanwhile once for all samples', ...section(early));
  const late = spec.steps.filter((s) => s.scope === 'all' && !early.includes(s));
  if (late.length > 0) {
    lines.push(
      lines.length > 0 ? 'then once for all samples' : `${spec.name}: once for all samples`,
    );
    lines.push(...section(late));
  }
  return lines.join('\n') + '\n';
}

// ---- mermaid ----

/** Words Mermaid's flowchart grammar reads as keywords, never usable as a bare node id. */
const MERMAID_KEYWORDS = new Set([
  'end',
  'graph',
  'flowchart',
  'subgraph',
  'direction',
  'style',
  'linkstyle',
  'classdef',
  'class',
  'click',
  'call',
  'href',
  'default',
  'interpolate',
]);

/**
 * A Mermaid node id for a step or job name. Names are `[a-z][a-z0-9_-]*`, with one `.` before
 * a substep's name (which starts with a letter), so this is one-to-one: `.` → `_`, `_` → `__`,
 * `-` → `_H`, and a keyword gets `_K` (`count.stats` → `count_stats`, `end` → `end_K`).
 */
export function mermaidId(name: string): string {
  const id = name.replace(/[^a-z0-9]/g, (c) =>
    c === '.' ? '_' : c === '_' ? '__' : c === '-' ? '_H' : `_${c.codePointAt(0)}_`,
  );
  return MERMAID_KEYWORDS.has(id) ? `${id}_K` : id;
}

/** Text inside `["…"]` or `|…|`, with the characters Mermaid would read as syntax escaped. */
function mermaidText(s: string): string {
  return s.replace(/[#"|<>]/g, (c) => `#${c.codePointAt(0)};`);
}

function mermaid(spec: PipelineSpec): string {
  const out = ['flowchart TD'];
  for (const s of spec.steps) {
    if (s.hasSubsteps) {
      out.push(`  subgraph ${mermaidId(s.name)}["${mermaidText(stepLabel(s))}"]`);
      for (const j of s.jobs)
        out.push(`    ${mermaidId(j.name)}["${mermaidText(shortName(s, j))}"]`);
      out.push('  end');
    } else {
      out.push(`  ${mermaidId(s.name)}["${mermaidText(stepLabel(s))}"]`);
    }
  }
  for (const e of graphEdges(spec)) {
    const label = edgeLabel(e);
    const arrow = label === '' ? '-->' : `-->|${mermaidText(label)}|`;
    out.push(`  ${mermaidId(e.from)} ${arrow} ${mermaidId(e.to)}`);
  }
  return out.join('\n') + '\n';
}

// ---- dot ----

/** A Graphviz quoted string. */
function dotString(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\r?\n/g, '\\n')}"`;
}

function dot(spec: PipelineSpec): string {
  const q = dotString;
  const out = [`digraph ${q(spec.name)} {`, '  rankdir=TB;', '  node [shape=box];'];
  for (const s of spec.steps) {
    if (s.hasSubsteps) {
      out.push(`  subgraph ${q(`cluster_${s.name}`)} {`);
      out.push(`    label=${q(stepLabel(s))};`);
      for (const j of s.jobs) out.push(`    ${q(j.name)} [label=${q(shortName(s, j))}];`);
      out.push('  }');
    } else {
      const label = stepLabel(s);
      out.push(`  ${q(s.name)}${label === s.name ? '' : ` [label=${q(label)}]`};`);
    }
  }
  for (const e of graphEdges(spec)) {
    const label = edgeLabel(e);
    out.push(`  ${q(e.from)} -> ${q(e.to)}${label === '' ? '' : ` [label=${q(label)}]`};`);
  }
  out.push('}');
  return out.join('\n') + '\n';
}

/**
 * The pipeline's step graph as an indented text tree, a Mermaid flowchart or a Graphviz
 * digraph; the same spec always gives the same string.
 */
export function pipelineGraph(spec: PipelineSpec, format: GraphFormat): string {
  return format === 'mermaid' ? mermaid(spec) : format === 'dot' ? dot(spec) : text(spec);
}
