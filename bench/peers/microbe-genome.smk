# The microbe-genome pipeline of examples/microbe-genome for Snakemake: the same tools, commands
# and thread counts, for `npm run -s bench -- genome`. Config: data (the directory prepare.mjs
# wrote), coverage, samples (comma-separated ids), summary (path of summary.awk), asm_threads
# (the assembly's threads; default 2, the top of the example's `vcpus: 1-2`).
SAMPLES = config["samples"].split(",")
DATA = config["data"]
COV = str(config["coverage"])

rule all:
    input: "all/summary.tsv"

rule qc:
    input: r1 = DATA + "/{s}_" + COV + "x_1.fq", r2 = DATA + "/{s}_" + COV + "x_2.fq"
    output: r1 = "{s}/qc/out/r1.fq.gz", r2 = "{s}/qc/out/r2.fq.gz", json = "{s}/qc/out/fastp.json"
    threads: 2
    resources: mem_mb = 2048
    shell: "fastp -i {input.r1} -I {input.r2} -o {output.r1} -O {output.r2} -j {output.json} -h {wildcards.s}/qc/out/fastp.html -w {threads} 2> {wildcards.s}/qc.log"

rule assemble:
    input: r1 = "{s}/qc/out/r1.fq.gz", r2 = "{s}/qc/out/r2.fq.gz"
    output: directory("{s}/assemble/out/asm")
    threads: int(config.get("asm_threads", 2))
    resources: mem_mb = 2048
    shell: "megahit -1 {input.r1} -2 {input.r2} -t {threads} --min-contig-len 500 -o {output} 2> {wildcards.s}/assemble.log"

rule stats:
    input: "{s}/assemble/out/asm"
    output: "{s}/stats/out/stats.tsv"
    shell: "seqkit stats -a -T -o {output} {input}/final.contigs.fa"

rule genes:
    input: "{s}/assemble/out/asm"
    output: "{s}/annotate.genes/out/genes.gff"
    shell: "prodigal -q -f gff -i {input}/final.contigs.fa -o {output}"

rule rrna:
    input: "{s}/assemble/out/asm"
    output: "{s}/annotate.rrna/out/rrna.gff"
    shell: "barrnap --quiet --kingdom bac --threads 1 {input}/final.contigs.fa > {output}"

rule sketch:
    input: "{s}/assemble/out/asm"
    output: "{s}/sketch/out/sketch.msh"
    shell: "mash sketch -o {wildcards.s}/sketch/out/sketch {input}/final.contigs.fa"

rule lists:
    input:
        json = expand("{s}/qc/out/fastp.json", s=SAMPLES),
        stats = expand("{s}/stats/out/stats.tsv", s=SAMPLES),
        genes = expand("{s}/annotate.genes/out/genes.gff", s=SAMPLES),
        rrna = expand("{s}/annotate.rrna/out/rrna.gff", s=SAMPLES),
        sketch = expand("{s}/sketch/out/sketch.msh", s=SAMPLES)
    output: json = "all/json.txt", stats = "all/stats.txt", genes = "all/genes.txt", rrna = "all/rrna.txt", sketch = "all/sketch.txt"
    run:
        for name in ["json", "stats", "genes", "rrna", "sketch"]:
            with open(output[name], "w") as f:
                f.write("".join(p + "\n" for p in input[name]))

rule distances:
    input: "all/sketch.txt"
    output: "all/distances.tsv"
    shell: "mash paste -l all/all {input} && mash dist all/all.msh all/all.msh > {output}"

rule summary:
    input: json = "all/json.txt", stats = "all/stats.txt", genes = "all/genes.txt", rrna = "all/rrna.txt", dist = "all/distances.tsv"
    output: "all/summary.tsv"
    shell: "awk -f {config[summary]} {input.json} {input.stats} {input.genes} {input.rrna} {input.dist} && mv summary.tsv {output}"
