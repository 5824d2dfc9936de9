/** The pipeline whose jobs' use of memory and CPU the report tests know beforehand. */

/** What the `hog` step holds at once: a 200 MiB Perl string, every page of it written. */
export const HELD_MIB = 200;

export const PIPELINE = [
  'name: measured',
  'samples: [ { id: alpha }, { id: beta } ]',
  'defaults: { vcpus: 1, memory: 512MiB }',
  'steps:',
  '  hog:',
  '    image: debian:bookworm-slim',
  // vec() extends the string to 200 MiB and zero-fills it (touching every page); the loop burns
  // a little CPU. `$$` is a literal `$` for Strand.
  `    command: [perl, -e, 'my $$x = ""; vec($$x, ${HELD_MIB} * 1048576 - 1, 8) = 1; my $$s = 0; $$s += $$_ for 1 .. 3000000; open my $$f, ">", "out.txt" or die; print $$f length($$x), " ", $$s, "\\n";']`,
  '    outputs: { OUT: out.txt }',
  '  count:',
  '    image: debian:bookworm-slim',
  '    memory: 64MiB',
  '    command: [wc, -c, $OUT]',
  '    stdout: n.txt',
  '    outputs: { N: n.txt }',
];

/** A row of `strand results --format json` with the columns the report tests pick. */
export interface MeasuredRow {
  sample: string;
  step: string;
  status: string;
  executor: string;
  cpuSeconds: number | null;
  peakMemoryMiB: number | null;
}

/** The columns to ask `strand results` for, to get MeasuredRow. */
export const MEASURED_COLUMNS = 'sample,step,status,executor,cpuSeconds,peakMemoryMiB';
