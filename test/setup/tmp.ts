/**
 * Every test's temporary files go under one directory for the run, removed when it ends: the
 * tests (and the Strand processes they start) make homes, stores and pipelines under
 * os.tmpdir(), and hundreds of runs of the suite would otherwise fill /tmp. STRAND_KEEP_TEST_TMP=1
 * keeps it, to look into what a failing test left behind.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'strand-tests-'));
  process.env.TMPDIR = dir;
  return () => {
    if (process.env.STRAND_KEEP_TEST_TMP === '1') {
      console.log(`kept the tests' temporary files in ${dir}`);
      return;
    }
    // Jobs a test left running detached may still write here for a moment.
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  };
}
