/**
 * The entry of Strand's stage program in a deployed job's image (see job-image.ts): `strand
 * stage …` alone, bundled by esbuild with everything it imports into one file that the Node
 * copied beside it runs. The launcher it copies for the tool lies beside it too.
 */
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { registerStageCommands } from '../../cli/stage.js';

process.env.STRAND_STAGE_LAUNCHER ??= fileURLToPath(new URL('./strand-launcher', import.meta.url));
const program = new Command('strand').exitOverride();
let code = 0;
registerStageCommands(
  program,
  {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    isTTY: false,
  },
  (c) => (code = c),
);
program.parseAsync([process.argv[0], 'strand', 'stage', ...process.argv.slice(2)]).then(
  () => (process.exitCode = code),
  (err: unknown) => {
    // Help is an "error" of an exitOverride program, with exit code 0; commander has already
    // printed what its own errors say.
    const e = err as { exitCode?: number; code?: string; message: string };
    if (e.exitCode === 0) return;
    if (!e.code?.startsWith('commander.')) process.stderr.write(`strand: ${e.message}\n`);
    process.exitCode = 2;
  },
);
