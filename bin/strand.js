#!/usr/bin/env node
// Entry point of the `strand` command: runs the compiled CLI (npm ci / npm run build make it).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  process.stderr.write('strand: not built yet; run `npm run build` (npm ci does it for you)\n');
  process.exit(2);
}
// The AWS SDK warns on Node 20 that its releases after January 2027 will need Node 22; Strand
// pins its SDK version, so the notice is nothing a user of `strand` can act on.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { run } = await import(main);
process.exitCode = await run(process.argv);
