/** The malformed pipeline fixtures and what each must report (shared by the loader and CLI tests). */
import type { LoadOptions } from '../../src/pipeline/load.js';

/**
 * Malformed pipelines: fixture, options, and for each problem (in the order reported) the
 * exact `file:line:col path` prefix and a part of the message.
 */
export const BAD_CASES: [string, LoadOptions, [string, string][]][] = [
  // YAML. Files that are not YAML at all end in .txt so that Prettier leaves them alone.
  [
    'syntax-unclosed-flow.yaml.txt',
    {},
    [['syntax-unclosed-flow.yaml.txt:7:5 steps.qc.command[2]', 'not valid YAML: Flow sequence']],
  ],
  [
    'syntax-tab-indent.yaml.txt',
    {},
    [['syntax-tab-indent.yaml.txt:5:1', 'not valid YAML: Tabs are not allowed as indentation']],
  ],
  ['duplicate-key.yaml', {}, [['duplicate-key.yaml:8:5 steps.qc.memory', 'duplicate key']]],
  ['duplicate-step.yaml', {}, [['duplicate-step.yaml:8:3 steps.qc', 'duplicate key']]],
  ['top-level-list.yaml', {}, [['top-level-list.yaml:1:1', 'a pipeline is a mapping of keys']]],
  ['empty.yaml', {}, [['empty.yaml:1:1', 'the file is empty']]],
  // Shape.
  [
    'unknown-key-step.yaml',
    {},
    [['unknown-key-step.yaml:8:5 steps.qc.memroy', 'unknown key; did you mean "memory"?']],
  ],
  [
    'unknown-key-top.yaml',
    {},
    [['unknown-key-top.yaml:3:1 stpes', 'unknown key; did you mean "steps"?']],
  ],
  [
    'unknown-key-substep.yaml',
    {},
    [
      [
        'unknown-key-substep.yaml:12:9 steps.annotate.substeps.genes.comand',
        'unknown key; did you mean "command"?',
      ],
    ],
  ],
  [
    'command-string.yaml',
    {},
    [
      [
        'command-string.yaml:6:14 steps.qc.command',
        'expected a list, got "fastp -i $READS_1" (write it as a list, one argument each: [fastp, -i, $READS_1])',
      ],
    ],
  ],
  [
    'bool-yes.yaml',
    {},
    [['bool-yes.yaml:3:22 continue_on_failure', 'expected true or false, got "yes"']],
  ],
  ['missing-steps.yaml', {}, [['missing-steps.yaml:1:1 steps', 'is required']]],
  ['missing-image.yaml', {}, [['missing-image.yaml:4:3 steps.qc.image', 'is required']]],
  [
    'results-bad-format.yaml',
    {},
    [['results-bad-format.yaml:9:39 results.qc.format', '"xlsx" is not one of tsv, csv, json']],
  ],
  [
    'max-concurrency-negative.yaml',
    {},
    [['max-concurrency-negative.yaml:3:18 max_concurrency', '-2 is too small (at least 0)']],
  ],
  // Units.
  [
    'size-space.yaml',
    {},
    [['size-space.yaml:12:13 steps.assemble.memory', '"4 GB" is not a size (use 4GiB or 4096MiB)']],
  ],
  [
    'size-plain-small.yaml',
    {},
    [['size-plain-small.yaml:8:13 steps.qc.memory', '8 is ambiguous: a plain number is MiB']],
  ],
  [
    'size-negative.yaml',
    {},
    [['size-negative.yaml:3:21 defaults.memory', '-1 is not a size (sizes are positive']],
  ],
  [
    'size-lowercase.yaml',
    {},
    [['size-lowercase.yaml:8:13 steps.qc.memory', '"512mb" is not a size (use 512MiB)']],
  ],
  [
    'duration-words.yaml',
    {},
    [['duration-words.yaml:8:14 steps.qc.timeout', '"2 hours" is not a duration (use 2h)']],
  ],
  [
    'duration-fraction.yaml',
    {},
    [['duration-fraction.yaml:3:22 defaults.timeout', '"1.5h" is not a duration (use 1h30m)']],
  ],
  [
    'vcpus-fraction.yaml',
    {},
    [['vcpus-fraction.yaml:8:12 steps.qc.vcpus', 'use a multiple of 0.25, such as 0.25']],
  ],
  [
    'retry-too-many.yaml',
    {},
    [['retry-too-many.yaml:8:12 steps.qc.retry', '10 is not a retry count']],
  ],
  // Names.
  [
    'pipeline-name.yaml',
    {},
    [['pipeline-name.yaml:1:7 name', '"Microbe Genome" is not a pipeline name']],
  ],
  [
    'step-name.yaml',
    {},
    [['step-name.yaml:4:3 steps.QC', '"QC" is not a step name (lowercase letters']],
  ],
  [
    'substep-name.yaml',
    {},
    [['substep-name.yaml:6:7 steps.annotate.substeps.Genes', '"Genes" is not a substep name']],
  ],
  [
    'output-name.yaml',
    {},
    [['output-name.yaml:7:16 steps.qc.outputs.qc_r1', 'capitals, digits and "_": QC_R1']],
  ],
  [
    'param-name.yaml',
    {},
    [['param-name.yaml:3:11 params.min-len', '"min-len" is not a variable name']],
  ],
  // Variables.
  [
    'undeclared.yaml',
    {},
    [
      [
        'undeclared.yaml:10:40 steps.assemble.command[4]',
        '$QC_R3 is not declared; did you mean $QC_R1? (declared here: READS_1, READS_2, SAMPLE, QC_R1, QC_R2)',
      ],
    ],
  ],
  [
    'undeclared-env.yaml',
    {},
    [['undeclared-env.yaml:8:17 steps.qc.env.OUT', '$OUTDIR is not declared']],
  ],
  [
    'undeclared-suffix.yaml',
    {},
    [
      [
        'undeclared-suffix.yaml:10:35 steps.sort.command[3]',
        'write ${QC_R1}_sorted if the name ends at QC_R1',
      ],
    ],
  ],
  [
    'parallel-sibling.yaml',
    {},
    [
      [
        'parallel-sibling.yaml:17:27 steps.annotate.substeps.count.command[2]',
        '$GENES is an output of "annotate.genes", which runs in parallel with "annotate.count"',
      ],
    ],
  ],
  [
    'range.yaml',
    {},
    [
      ['range.yaml:7:12 steps.qc.vcpus', '"4-1": the low end is above the high end'],
      ['range.yaml:8:13 steps.qc.memory', '"8GiB-2GiB": the low end is above the high end'],
      [
        'range.yaml:11:24 steps.assemble.command[1]',
        '$STRAND_VCPUS must be a command item of its own',
      ],
      [
        'range.yaml:12:29 steps.assemble.env.OMP_NUM_THREADS',
        "$STRAND_VCPUS is the size the job's attempt gets, already in its environment",
      ],
      ['range.yaml:13:13 steps.assemble.memory', 'a range of memory goes with a range of vCPUs'],
      ['range.yaml:17:12 steps.sketch.vcpus', '"1-two" is not a vCPU count'],
    ],
  ],
  [
    'cycle.yaml',
    {},
    [
      [
        'cycle.yaml:4:3 steps.qc',
        'steps wait for each other in a cycle: qc needs assemble ($CONTIGS), assemble needs qc ($QC_R1)',
      ],
    ],
  ],
  [
    'after-cycle.yaml',
    {},
    [
      [
        'after-cycle.yaml:4:3 steps.qc',
        'qc needs report (after:), report needs assemble (after:), assemble needs qc ($QC_R1)',
      ],
    ],
  ],
  [
    'after.yaml',
    {},
    [
      ['after.yaml:8:13 steps.qc.after[0]', 'no step "asemble"; did you mean "assemble"?'],
      ['after.yaml:8:22 steps.qc.after[1]', 'step "qc" cannot wait for itself'],
      ['after.yaml:8:26 steps.qc.after[2]', '"matrix" is an aggregate step'],
      ['after.yaml:16:12 steps.matrix.after', 'no step "assembly"; did you mean "assemble"?'],
    ],
  ],
  [
    'aggregate-output.yaml',
    {},
    [
      [
        'aggregate-output.yaml:15:27 steps.sketch.command[2]',
        '$MATRIX is an output of aggregate step "matrix", which runs once after every sample',
      ],
    ],
  ],
  [
    'aggregate-sample.yaml',
    {},
    [
      ['aggregate-sample.yaml:11:32 steps.matrix.command[3]', '$SAMPLE is the sample id'],
      ['aggregate-sample.yaml:11:41 steps.matrix.command[4]', '$READS_1 is a sample column'],
    ],
  ],
  [
    'unclosed-brace.yaml',
    {},
    [['unclosed-brace.yaml:10:24 steps.assemble.command[1]', '"${" is not closed']],
  ],
  ['env-hides-var.yaml', {}, [['env-hides-var.yaml:8:12 steps.qc.env.READS_1', 'would hide']]],
  // Reserved names.
  [
    'reserved-output.yaml',
    {},
    [['reserved-output.yaml:7:16 steps.qc.outputs.SAMPLE', 'SAMPLE is reserved']],
  ],
  [
    'reserved-param.yaml',
    {},
    [
      ['reserved-param.yaml:3:11 params.STRAND_HOME', 'STRAND_HOME is reserved'],
      ['reserved-param.yaml:3:30 params.AWS_REGION', 'AWS_REGION is reserved'],
    ],
  ],
  // Outputs.
  [
    'output-dotdot.yaml',
    {},
    [['output-dotdot.yaml:7:23 steps.qc.outputs.QC_R1', 'leaves the job directory']],
  ],
  [
    'output-absolute.yaml',
    {},
    [['output-absolute.yaml:7:23 steps.qc.outputs.QC_R1', 'is an absolute path']],
  ],
  [
    'output-duplicate.yaml',
    {},
    [
      [
        'output-duplicate.yaml:11:16 steps.trim.outputs.QC_R1',
        '$QC_R1 is already an output of "qc"',
      ],
    ],
  ],
  [
    'output-template.yaml',
    {},
    [['output-template.yaml:7:23 steps.qc.outputs.QC_R1', 'variables are not substituted']],
  ],
  // Results.
  [
    'results-unknown-step.yaml',
    {},
    [
      [
        'results-unknown-step.yaml:12:3 results.asembly',
        'no step "asembly"; did you mean "assembly"?',
      ],
    ],
  ],
  [
    'results-needs-substep.yaml',
    {},
    [
      [
        'results-needs-substep.yaml:9:3 results.annotate',
        '"annotate" has substeps; name one (annotate.genes, annotate.rrna)',
      ],
    ],
  ],
  [
    'results-unknown-ext.yaml',
    {},
    [['results-unknown-ext.yaml:9:15 results.qc.from', 'cannot tell the format']],
  ],
  [
    'results-from-dotdot.yaml',
    {},
    [['results-from-dotdot.yaml:9:15 results.qc.from', 'leaves the job directory']],
  ],
  // Samples: sheet problems point into the sheet, a missing sheet at the samples: key.
  ['missing-sheet.yaml', {}, [['missing-sheet.yaml:2:1 samples', 'sheet "']]],
  ['sheet-extension.yaml', {}, [['sheet-extension.yaml:2:1 samples', 'not a CSV or TSV sheet']]],
  [
    'ragged.yaml',
    {},
    [
      ['ragged.csv:3:1 samples[1]', 'has 2 fields; the header has 3'],
      ['ragged.csv:4:1 samples[2]', 'has 4 fields; the header has 3'],
    ],
  ],
  [
    'duplicate-ids.yaml',
    {},
    [['duplicate-ids.csv:4:1 samples[2].sample', 'sample "S1" is repeated (first on line 2)']],
  ],
  [
    'bad-ids.yaml',
    {},
    [
      ['bad-ids.tsv:2:1 samples[0].sample', '"S 1" is not a sample id'],
      ['bad-ids.tsv:3:1 samples[1].sample', '"_all" is reserved'],
      ['bad-ids.tsv:4:1 samples[2].sample', 'no sample id'],
    ],
  ],
  [
    'header-collision.yaml',
    {},
    [['header-collision.csv:1:12 header', '"fastq_1" and "FASTQ-1" both become $FASTQ_1']],
  ],
  ['no-id-column.yaml', {}, [['no-id-column.csv:1:1 header', 'no sample id column']]],
  ['reserved-column.yaml', {}, [['reserved-column.csv:1:20 header', 'is reserved']]],
  ['bad-quote.yaml', {}, [['bad-quote.csv:2:4 samples', 'a quoted value is never closed']]],
  [
    'inline-missing-column.yaml',
    {},
    [['inline-missing-column.yaml:4:5 samples[1]', 'has no READS_2']],
  ],
  [
    'inline-duplicate-id.yaml',
    {},
    [['inline-duplicate-id.yaml:4:11 samples[1].id', 'sample "S1" is repeated']],
  ],
  [
    'param-column-clash.yaml',
    {},
    [['param-column-clash.yaml:3:11 params.READS_1', 'READS_1 is also a column of the samples']],
  ],
  [
    'param-required.yaml',
    {},
    [['param-required.yaml:3:11 params.GENUS', 'has no default and was not given']],
  ],
  // Command-line options.
  [
    'unknown-key-step.yaml',
    { samples: 'S1,S9' },
    [
      ['--samples', 'no sample "S9"; did you mean "S1"? (samples: S1, S2, S7)'],
      ['unknown-key-step.yaml:8:5 steps.qc.memroy', 'unknown key'],
    ],
  ],
  [
    'param-required.yaml',
    { params: { GENUS: 'Helicobacter', GENSU: 'x' } },
    [['--param', '"GENSU" is not a parameter of this pipeline; did you mean "GENUS"?']],
  ],
  [
    'duplicate-ids.yaml',
    { samples: 'nowhere.csv' },
    [['--samples', 'sheet "nowhere.csv" not found']],
  ],
  // Every problem at once, in line order.
  [
    'many-problems.yaml',
    {},
    [
      ['many-problems.yaml:6:26 steps.qc.command[2]', '$READS_3 is not declared'],
      ['many-problems.yaml:7:5 steps.qc.memroy', 'unknown key; did you mean "memory"?'],
      ['many-problems.yaml:11:13 steps.assemble.memory', '"4 GB" is not a size'],
      ['many-problems.yaml:12:14 steps.assemble.timeout', '"forever" is not a duration'],
    ],
  ],
];
