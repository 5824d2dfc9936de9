/**
 * The local executor starts jobs through the native launcher that `npm run build` compiles from
 * src/executors/local/launcher.c. The tests run the sources, so the binary is brought up to date
 * with its source first (a no-op when it is; without a C compiler the script says so and the
 * executor falls back to its Node launcher, which the tests of the native one then report).
 */
import { spawnSync } from 'node:child_process';

export default function setup(): void {
  spawnSync(process.execPath, ['scripts/build-launcher.mjs'], { stdio: 'inherit' });
}
