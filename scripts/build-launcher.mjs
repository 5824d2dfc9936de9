// Builds the local executor's native launcher (src/executors/local/launcher.c) into
// dist/strand-launcher, as a static program. Part of `npm run build` (and so of `npm ci`). Never
// fails the build: without a C compiler or a static C library the executor uses its Node
// launcher and `sh` wrapper, which cost about 1.7 ms of CPU more per job and cannot contain a
// job's processes (a double-forked daemon escapes them; see docs/feature-support.md).
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'src/executors/local/launcher.c');
const target = join(root, 'dist/strand-launcher');
const mtime = (path) => {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
};

if ((mtime(target) ?? -1) >= (mtime(source) ?? Infinity)) process.exit(0); // up to date
mkdirSync(dirname(target), { recursive: true });
const partial = `${target}.${process.pid}`;
const cc = process.env.CC || 'cc';
const r = spawnSync(cc, ['-O2', '-static', '-s', '-o', partial, source], { encoding: 'utf8' });
if (r.status === 0) {
  renameSync(partial, target);
} else {
  rmSync(partial, { force: true });
  const why = r.error ? r.error.message : (r.stderr || '').trim().split('\n').slice(-1)[0];
  process.stderr.write(
    `strand: the native job launcher was not built (${cc}: ${why}); jobs start through the Node launcher and sh wrapper instead, which cannot contain a job's processes\n`,
  );
}
