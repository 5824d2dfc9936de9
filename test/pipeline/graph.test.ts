/** pipelineGraph: the step DAG as text, Mermaid and dot, compared as exact strings. */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { mermaidId, pipelineGraph, type GraphFormat } from '../../src/pipeline/graph.js';
import { loadPipelineText } from '../../src/pipeline/load.js';

// Per-sample steps, parallel and sequential substeps, an aggregate step, and a variable (RRNA)
// that skips a step on its way.
const TINY = `
name: tiny-graph
samples: [{ id: S1, READS: s1.fq }]
steps:
  qc:
    image: strand/fastp
    command: [fastp, -i, $READS, -o, $QC]
    outputs: { QC: out/qc.fq }
    vcpus: 2
    memory: 2GiB
  annotate:
    parallel: true
    substeps:
      genes: { image: strand/prodigal, command: [prodigal, -i, $QC], outputs: { GENES: genes.gff } }
      rrna: { image: strand/barrnap, command: [barrnap, $QC], stdout: rrna.gff, outputs: { RRNA: rrna.gff } }
  tidy:
    substeps:
      sort: { image: debian, command: [sort, -o, sorted.gff, $GENES], outputs: { SORTED: sorted.gff } }
      count: { image: debian, command: [wc, -l, $SORTED], memory: 512MiB }
  check: { image: debian, command: ['true'], after: qc }
  matrix:
    aggregate: true
    image: debian
    command: [cat, $RRNA]
`;

const EXPECTED: [GraphFormat, string[]][] = [
  [
    'text',
    [
      'tiny-graph: per sample',
      '  qc             fastp        2 vCPU, 2 GiB     → QC',
      '  side by side:',
      '  ├ annotate (substeps side by side)',
      '  │ ├ genes      prodigal     1 vCPU, 1 GiB     ← QC  → GENES',
      '  │ └ rrna       barrnap      1 vCPU, 1 GiB     ← QC  → RRNA',
      '  │ tidy (substeps in order)',
      '  │ ├ sort       sort         1 vCPU, 1 GiB     ← GENES  → SORTED',
      '  │ └ count      wc           1 vCPU, 512 MiB   ← SORTED',
      '  └ check        true         1 vCPU, 1 GiB     (after qc)',
      // matrix reads annotate's RRNA only: it runs beside tidy and check.
      'meanwhile once for all samples',
      "  matrix         cat          1 vCPU, 1 GiB     ← RRNA  (once every sample's annotate has ended)",
    ],
  ],
  [
    'mermaid',
    [
      'flowchart TD',
      '  qc["qc"]',
      '  subgraph annotate["annotate (parallel)"]',
      '    annotate_genes["genes"]',
      '    annotate_rrna["rrna"]',
      '  end',
      '  subgraph tidy["tidy (sequence)"]',
      '    tidy_sort["sort"]',
      '    tidy_count["count"]',
      '  end',
      '  check["check"]',
      '  matrix["matrix (all samples)"]',
      '  qc -->|QC| annotate_genes',
      '  qc -->|QC| annotate_rrna',
      '  annotate_genes -->|GENES| tidy_sort',
      '  tidy_sort -->|SORTED| tidy_count',
      '  qc --> check',
      '  annotate_rrna -->|all samples: RRNA| matrix',
    ],
  ],
  [
    'dot',
    [
      'digraph "tiny-graph" {',
      '  rankdir=TB;',
      '  node [shape=box];',
      '  "qc";',
      '  subgraph "cluster_annotate" {',
      '    label="annotate (parallel)";',
      '    "annotate.genes" [label="genes"];',
      '    "annotate.rrna" [label="rrna"];',
      '  }',
      '  subgraph "cluster_tidy" {',
      '    label="tidy (sequence)";',
      '    "tidy.sort" [label="sort"];',
      '    "tidy.count" [label="count"];',
      '  }',
      '  "check";',
      '  "matrix" [label="matrix (all samples)"];',
      '  "qc" -> "annotate.genes" [label="QC"];',
      '  "qc" -> "annotate.rrna" [label="QC"];',
      '  "annotate.genes" -> "tidy.sort" [label="GENES"];',
      '  "tidy.sort" -> "tidy.count" [label="SORTED"];',
      '  "qc" -> "check";',
      '  "annotate.rrna" -> "matrix" [label="all samples: RRNA"];',
      '}',
    ],
  ],
];

const load = (text: string) => loadPipelineText(text, 'pipeline.yaml').spec;

function hasGraphviz(): boolean {
  try {
    execFileSync('dot', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('pipelineGraph', () => {
  it.each(EXPECTED)('%s', (format, lines) => {
    const spec = load(TINY);
    expect(pipelineGraph(spec, format)).toBe(lines.join('\n') + '\n');
    // Stable: the same spec, loaded again, draws the same graph.
    expect(pipelineGraph(load(TINY), format)).toBe(pipelineGraph(spec, format));
  });

  it.each([
    [
      'one plain step',
      'steps: { hello: { image: x, command: [echo, hi] } }',
      'flowchart TD\n  hello["hello"]\n',
    ],
    [
      'only aggregate steps: no "all samples" edge',
      'steps:\n  a: { aggregate: true, image: x, command: [true] }\n  b: { aggregate: true, image: x, command: [true], after: a }',
      'flowchart TD\n  a["a (all samples)"]\n  b["b (all samples)"]\n  a --> b\n',
    ],
    [
      'parallel into parallel: every pair',
      'steps:\n  p: { parallel: true, substeps: { x: { image: i, command: [true] }, y: { image: i, command: [true] } } }\n  q: { parallel: true, after: p, substeps: { u: { image: i, command: [true] }, v: { image: i, command: [true] } } }',
      [
        'flowchart TD',
        '  subgraph p["p (parallel)"]',
        '    p_x["x"]',
        '    p_y["y"]',
        '  end',
        '  subgraph q["q (parallel)"]',
        '    q_u["u"]',
        '    q_v["v"]',
        '  end',
        '  p_x --> q_u',
        '  p_x --> q_v',
        '  p_y --> q_u',
        '  p_y --> q_v',
        '',
      ].join('\n'),
    ],
  ])('mermaid: %s', (_what, steps, expected) => {
    expect(pipelineGraph(load(`name: g\n${steps}\n`), 'mermaid')).toBe(expected);
  });

  it('data and order edges into an aggregate step share one labelled edge', () => {
    const spec = load(
      'name: g\nsamples: [{ id: S1 }]\nsteps:\n  a: { image: x, command: [true, $OUT], outputs: { OUT: o.txt } }\n  b: { aggregate: true, image: x, command: [cat, $OUT] }\n',
    );
    expect(pipelineGraph(spec, 'dot')).toContain('  "a" -> "b" [label="all samples: OUT"];\n');
    expect(pipelineGraph(spec, 'mermaid')).toContain('  a -->|all samples: OUT| b\n');
  });
});

describe('pipelineGraph text: when the steps over all samples start', () => {
  const head = 'name: g\nsamples: [{ id: S1 }]\nsteps:\n';
  const a = '  a: { image: x, command: [true], outputs: { A: a.txt } }\n';
  const b = '  b: { image: x, command: [true, $A], outputs: { B: b.txt } }\n';
  const c = '  c: { image: x, command: [true], outputs: { C: c.txt } }\n';
  it.each([
    [
      'reads the last steps: after the samples',
      '  t: { aggregate: true, image: x, command: [cat, $B, $C] }\n',
      ['then once for all samples', '  t              cat          1 vCPU, 1 GiB     ← B, C'],
    ],
    [
      'reads an earlier step: beside them',
      '  t: { aggregate: true, image: x, command: [cat, $A] }\n',
      [
        'meanwhile once for all samples',
        "  t              cat          1 vCPU, 1 GiB     ← A  (once every sample's a has ended)",
      ],
    ],
    [
      'reads two branches: once both have ended',
      '  t: { aggregate: true, image: x, command: [cat, $A, $C] }\n',
      [
        'meanwhile once for all samples',
        "  t              cat          1 vCPU, 1 GiB     ← A, C  (once every sample's a, c have ended)",
      ],
    ],
    [
      'reads nothing of the samples: at once',
      '  t: { aggregate: true, image: x, command: [true] }\n',
      [
        'meanwhile once for all samples',
        '  t              true         1 vCPU, 1 GiB     (at once)',
      ],
    ],
  ])('%s', (_what, t, tail) => {
    const text = pipelineGraph(load(head + a + b + c + t), 'text');
    expect(text.split('\n').slice(-1 - tail.length, -1)).toEqual(tail);
  });
});

describe('mermaidId', () => {
  it.each([
    ['qc', 'qc'],
    ['count.stats', 'count_stats'],
    ['fast_qc', 'fast__qc'],
    ['fast-qc', 'fast_Hqc'],
    ['fast_qc.x', 'fast__qc_x'],
    ['end', 'end_K'],
    ['subgraph', 'subgraph_K'],
    ['end.x', 'end_x'],
  ])('%s → %s', (name, id) => {
    expect(mermaidId(name)).toBe(id);
  });

  it('gives different names different ids, each a plain word', () => {
    const names = ['a_b', 'a-b', 'a.b', 'a__b', 'a_.b', 'a-.b', 'a_b.c', 'a.b_c', 'a_h', 'a-h'];
    const ids = names.map(mermaidId);
    expect(new Set(ids).size).toBe(names.length);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_]+$/);
  });

  it('keeps steps named like Mermaid keywords or each other apart in a graph', () => {
    const spec = load(
      'name: g\nsteps:\n  end: { image: x, command: [true] }\n  a-b: { image: x, command: [true], after: end }\n  a_b: { image: x, command: [true], after: a-b }\n',
    );
    expect(pipelineGraph(spec, 'mermaid')).toBe(
      [
        'flowchart TD',
        '  end_K["end"]',
        '  a_Hb["a-b"]',
        '  a__b["a_b"]',
        '  end_K --> a_Hb',
        '  a_Hb --> a__b',
        '',
      ].join('\n'),
    );
  });
});

describe.skipIf(!hasGraphviz())('dot output read by Graphviz', () => {
  it('parses, with one node per job and one edge per line', () => {
    const dot = pipelineGraph(load(TINY), 'dot');
    const plain = execFileSync('dot', ['-Tplain'], { input: dot, encoding: 'utf8' }).split('\n');
    const nodes = plain.filter((l) => l.startsWith('node ')).map((l) => l.split(' ')[1]);
    expect(nodes.map((n) => n.replace(/^"|"$/g, '')).sort()).toEqual([
      'annotate.genes',
      'annotate.rrna',
      'check',
      'matrix',
      'qc',
      'tidy.count',
      'tidy.sort',
    ]);
    const edges = plain.filter((l) => l.startsWith('edge ')).length;
    expect(edges).toBe(dot.split('\n').filter((l) => l.includes(' -> ')).length);
  });
});
