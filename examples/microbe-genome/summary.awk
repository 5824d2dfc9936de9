# One row per sample from the per-sample outputs of microbe-genome. Arguments: four files that
# list published paths, one per line (fastp.json, stats.tsv, genes.gff, rrna.gff), then the
# mash distances table. The sample of a published file is the directory above its step:
# {store}/microbe-genome/{sample}/{step}/out/{file}.
function sample_of(path, up,    n, parts) { n = split(path, parts, "/"); return parts[n - up] }
function read_fastp(path, s,    line, n) {
  n = 0
  while ((getline line < path) > 0) {
    if (line ~ /"total_reads"/ && n < 2) {
      gsub(/[^0-9]/, "", line)
      if (++n == 1) reads_in[s] = line; else reads_out[s] = line
    }
  }
  close(path)
}
function read_stats(path, s,    line, i, n, head, cols) {
  while ((getline line < path) > 0) {
    n = split(line, cols, "\t")
    if (!head++) { for (i = 1; i <= n; i++) at[cols[i]] = i; continue }
    contigs[s] = cols[at["num_seqs"]]; length_bp[s] = cols[at["sum_len"]]; n50[s] = cols[at["N50"]]
  }
  close(path)
}
function count(path, pattern,    line, c) {
  c = 0
  while ((getline line < path) > 0) if (line ~ pattern) c++
  close(path)
  return c
}
FILENAME == ARGV[1] { s = sample_of($0, 3); order[++samples] = s; read_fastp($0, s); next }
FILENAME == ARGV[2] { read_stats($0, sample_of($0, 3)); next }
FILENAME == ARGV[3] { genes[sample_of($0, 3)] = count($0, "\tCDS\t"); next }
FILENAME == ARGV[4] { rrnas[sample_of($0, 3)] = count($0, "^[^#]"); next }
FILENAME == ARGV[5] {
  r = sample_of($1, 4); q = sample_of($2, 4)
  if (r != q && (!(q in best) || $3 < best[q])) { best[q] = $3; nearest[q] = r }
  next
}
END {
  print "sample\treads_in\treads_out\tcontigs\ttotal_length\tn50\tgenes\trrnas\tnearest\tdistance" > "summary.tsv"
  for (i = 1; i <= samples; i++) {
    s = order[i]
    printf "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", s, reads_in[s], reads_out[s], contigs[s], \
      length_bp[s], n50[s], genes[s], rrnas[s], (s in nearest ? nearest[s] : "-"), \
      (s in best ? best[s] : "-") > "summary.tsv"
  }
}
