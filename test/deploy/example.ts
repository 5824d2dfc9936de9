/**
 * The genome example as the deploy tests read it: a copy of its pipeline, script and
 * Dockerfiles with a samples sheet of its own, so the tests do not depend on the reads
 * `prepare.mjs` makes (a deploy reads the sheet's columns, never the files it names).
 */
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export function genomeExample(): string {
  const from = resolve('examples/microbe-genome');
  const dir = mkdtempSync(join(tmpdir(), 'strand-deploy-example-'));
  for (const name of ['pipeline.yaml', 'summary.awk', 'images'])
    cpSync(join(from, name), join(dir, name), { recursive: true });
  mkdirSync(join(dir, 'data'));
  writeFileSync(
    join(dir, 'data', 'samples.csv'),
    'id,READS_1,READS_2\nG27,G27_1.fq,G27_2.fq\nELS37,ELS37_1.fq,ELS37_2.fq\n',
  );
  return join(dir, 'pipeline.yaml');
}
