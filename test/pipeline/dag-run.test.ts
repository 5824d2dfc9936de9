/**
 * Pipelines run as their data orders them: steps with no path between them run at the same
 * time, `after:` orders steps without data, and `--from/--to/--only` slice the graph.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inlinePipeline, strand } from './cli.js';

/**
 * Per sample: `prep`, then `a`, `b` and `c`, which all read prep's output and wait (up to 20 s)
 * until WANT of them have started: run one after another, the first would give up and fail. Then
 * `late` after `c` (order only), and `table` over all samples reading only `a`'s output.
 */
function diamond() {
  const barrier = (name: string, out: string) =>
    [
      `  ${name}:`,
      '    image: debian:bookworm-slim',
      // Marks itself started in the shared directory, then waits for the other two.
      '    command:',
      '      - sh',
      '      - -c',
      '      - \'touch "$$1/$$2.$$3"; i=0; while [ "$$(ls "$$1" | grep -c "\\.$$3$$")" -lt "$$5" ]; do i=$$((i+1)); [ $$i -gt 200 ] && exit 1; sleep 0.1; done; cp "$$4" out.txt\'',
      '      - sh',
      '      - $MEET',
      `      - ${name}`,
      '      - $SAMPLE',
      '      - $PREP',
      '      - $WANT',
      `    outputs: { ${out}: out.txt }`,
    ].join('\n');
  const p = inlinePipeline(
    [
      'name: diamond',
      'samples: [ { id: s1 }, { id: s2 } ]',
      'params: { MEET: "", WANT: 3 }',
      'defaults: { vcpus: 0.25, memory: 64MiB }',
      'steps:',
      '  prep:',
      '    image: debian:bookworm-slim',
      '    command: [sh, -c, \'echo "$$1" > prep.txt\', sh, $SAMPLE]',
      '    outputs: { PREP: prep.txt }',
      barrier('a', 'A'),
      barrier('b', 'B'),
      barrier('c', 'C'),
      '  late:',
      '    image: debian:bookworm-slim',
      '    command: [sort, -o, late.txt, /dev/null]',
      '    after: [c]',
      '  table:',
      '    aggregate: true',
      '    image: debian:bookworm-slim',
      '    command: [sh, -c, \'while read f; do cat "$$f"; done < "$$1" > table.txt\', sh, $A]',
      '    outputs: { TABLE: table.txt }',
    ],
    {},
  );
  const meet = join(p.dir, 'meet');
  mkdirSync(meet);
  return { ...p, args: ['--home', p.home, '--param', `MEET=${meet}`] };
}

/** The execution whose manifest is in the store for a step of a sample (`_all` for aggregates). */
function madeBy(home: string, sample: string, step: string): string | undefined {
  try {
    const file = join(home, 'store', 'diamond', sample, step, '_strand.json');
    return (JSON.parse(readFileSync(file, 'utf8')) as { execution: string }).execution;
  } catch {
    return undefined;
  }
}

describe('a pipeline run as a graph', () => {
  it('runs steps with no path between them at the same time, then the aggregate', async () => {
    const p = diamond();
    const r = await strand('run', p.file, ...p.args, '--name', 'full');
    expect(r.code, r.err).toBe(0);
    for (const sample of ['s1', 's2'])
      for (const step of ['prep', 'a', 'b', 'c', 'late'])
        expect(madeBy(p.home, sample, step), `${step} of ${sample}`).toBe('full');
    expect(madeBy(p.home, '_all', 'table')).toBe('full');
    expect(readFileSync(join(p.home, 'store/diamond/_all/table/table.txt'), 'utf8')).toBe(
      's1\ns2\n',
    );

    // Each sliced run below has one of the three meeting steps at most.
    const sliced = async (name: string, ...flags: string[]) =>
      strand('run', p.file, ...p.args, '--param', 'WANT=1', '--no-cache', '--name', name, ...flags);

    // --to a: a and what it needs; b, c, late and the table are left out.
    const to = await sliced('to', '--to', 'a');
    expect(to.code, to.err).toBe(0);
    expect(to.err).toMatch(/2 of 6 step\(s\) \(--to a\)/);
    for (const [step, by] of Object.entries({ prep: 'to', a: 'to', b: 'full', late: 'full' }))
      expect(madeBy(p.home, 's1', step), step).toBe(by);
    expect(madeBy(p.home, '_all', 'table')).toBe('full');

    // --from c: c and what depends on it (late, by after:), over prep's output in the store.
    const from = await sliced('from', '--from', 'c');
    expect(from.code, from.err).toBe(0);
    for (const [step, by] of Object.entries({
      prep: 'to',
      a: 'to',
      b: 'full',
      c: 'from',
      late: 'from',
    }))
      expect(madeBy(p.home, 's2', step), step).toBe(by);
    expect(madeBy(p.home, '_all', 'table')).toBe('full');

    // --only table: the aggregate alone, over a's outputs from the store.
    const only = await sliced('only', '--only', 'table');
    expect(only.code, only.err).toBe(0);
    expect(madeBy(p.home, '_all', 'table')).toBe('only');
    expect(madeBy(p.home, 's1', 'a')).toBe('to');
  }, 120_000);
});
