/**
 * `strand init`: a small pipeline to start from, with a samples sheet and the data it names. It
 * runs anywhere Debian's base tools do (coreutils and awk, never a shell), loads without
 * problems, and shows each kind of step: per sample, substeps, and once for all samples.
 */

/**
 * The files of a new pipeline named `name`, by path relative to its directory (pipeline.yaml,
 * samples.csv, data/*.txt, .gitignore). The caller writes them; nothing here touches the disk.
 */
export function scaffoldPipeline(name: string): Record<string, string> {
  const pipeline = `# ${name}: a pipeline to start from. Each step runs one tool per sample. \`$NAME\` in a
# command is a variable (a column of samples.csv, SAMPLE, a param, or an output of an earlier
# step), substituted by Strand: no shell is involved, so quotes and ; are just characters, and
# $$ is a literal $. Run it with
#
#   strand validate pipeline.yaml
#   strand run pipeline.yaml
#   strand results --pipeline ${name}
#
# Every key is described in docs/pipeline.md of Strand; \`strand schema\` prints the JSON Schema.
#
name: ${name}
samples: samples.csv                # one row per sample; every column becomes a variable ($TEXT)
params:
  MIN_LENGTH: 4                     # override with --param MIN_LENGTH=5
defaults: { vcpus: 1, memory: 256MiB, retry: 1, timeout: 10m }
steps:
  checksum:
    image: debian:bookworm-slim     # used by the container and AWS executors; ignored locally
    command: [sha256sum, $TEXT]
    stdout: sha256.txt              # for tools that only print: standard output to a file
    outputs: { CHECKSUM: sha256.txt }
  words:
    image: debian:bookworm-slim
    command:
      - awk
      - '{ for (i = 1; i <= NF; i++) print tolower($$i) > "words.txt" }'
      - $TEXT
    outputs: { WORDS: words.txt }   # later steps see $WORDS: where it was published
  describe:
    parallel: true                  # substeps side by side, each with its own image and resources
    substeps:
      sorted:
        image: debian:bookworm-slim
        command: [sort, -u, -o, sorted.txt, $WORDS]
        outputs: { SORTED: sorted.txt }
      long:
        image: debian:bookworm-slim
        command:
          - awk
          - -v
          - min=$MIN_LENGTH
          - -v
          - sample=$SAMPLE
          - 'length($$0) >= min { n++ } END { print "sample\\tlong_words" > "long.tsv"; print sample "\\t" n + 0 > "long.tsv" }'
          - $WORDS
        outputs: { LONG: long.tsv }
  table:
    aggregate: true                 # once, after every sample; $LONG lists each sample's long.tsv
    image: debian:bookworm-slim
    command:
      - awk
      - 'BEGIN { print "sample\\tlong_words" > "table.tsv" } { f = $$0; while ((getline l < f) > 0) if (l !~ /^sample\\t/) print l > "table.tsv" }'
      - $LONG
    outputs: { TABLE: table.tsv }
results:                            # files that become rows in the results database
  describe.long: { from: long.tsv, format: tsv }
`;
  return {
    'pipeline.yaml': pipeline,
    'samples.csv': 'id,TEXT\none,data/one.txt\ntwo,data/two.txt\n',
    'data/one.txt': 'A first text with a handful of words\n',
    'data/two.txt': 'Another text, a little longer than the first one was\n',
    '.gitignore': '.strand/\n',
  };
}
