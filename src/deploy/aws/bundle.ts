/**
 * The code of the stack's Lambda functions: lambda-handler with everything it imports, bundled
 * by esbuild into one ES module (`index.mjs`) that Lambda's Node.js runtime loads as it is.
 * Bundled here rather than by aws-lambda-nodejs, which would fall back to Docker where esbuild is
 * missing: synth has to work offline with neither Docker nor a network.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FUNCTIONS } from '../../pipeline/contract.js';

/** The handler setting of each function (`file.export`): see the exports of lambda-handler. */
export const HANDLERS: Record<string, string> = {
  [FUNCTIONS.preflight]: 'index.preflight',
  [FUNCTIONS.publish]: 'index.publish',
  [FUNCTIONS.syncFailure]: 'index.syncFailure',
  [FUNCTIONS.collect]: 'index.collect',
};

/** The Node.js version the bundle is built for; the stack's runtime must be it or newer. */
export const LAMBDA_NODE = 'node22';

/**
 * The handler's source beside this module: the `.ts` file when Strand runs from its sources, the
 * compiled `.js` when it runs from `dist/`.
 */
function entry(name: string): string {
  for (const ext of ['.ts', '.js']) {
    const path = fileURLToPath(new URL(`./${name}${ext}`, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error(
    `${name}.ts or .js is not beside ${fileURLToPath(import.meta.url)}; reinstall Strand`,
  );
}

/** esbuild's settings for one ES module of Strand's code that Node runs as it is. */
function moduleSettings(entryPoint: string, outfile: string) {
  return {
    entryPoints: [entryPoint],
    outfile,
    bundle: true,
    platform: 'node' as const,
    format: 'esm' as const,
    target: LAMBDA_NODE,
    minify: true,
    // Names stay: errors are reported by their class and function names.
    keepNames: true,
    legalComments: 'none' as const,
    logLevel: 'silent' as const,
    metafile: true as const,
    // CommonJS packages inside an ES module still call require(); give them one.
    banner: {
      js: "import { createRequire as __strandRequire } from 'node:module'; const require = __strandRequire(import.meta.url);",
    },
    // pg's optional native binding: pg loads it only when asked for `pg.native`.
    external: ['pg-native'],
  };
}

/**
 * Bundles Strand's stage program (stage-entry.ts: `strand stage …`) into `outfile`, one ES
 * module for the Node of a deployed job's image. Returns its size in bytes.
 */
export async function bundleStage(outfile: string): Promise<number> {
  const { build } = await import('esbuild');
  const result = await build(moduleSettings(entry('stage-entry'), outfile));
  return Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
}

export interface LambdaBundleInfo {
  /** A new directory holding `index.mjs` (the caller removes it once the assembly has its copy). */
  dir: string;
  bytes: number;
}

/** Bundles the Lambda handler into a new temporary directory. */
export async function bundleLambda(): Promise<LambdaBundleInfo> {
  const { build } = await import('esbuild');
  const dir = mkdtempSync(join(tmpdir(), 'strand-lambda-'));
  const result = await build(moduleSettings(entry('lambda-handler'), join(dir, 'index.mjs')));
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  // Lambda reads the bundle as an ES module because of its extension; this says so to tools too.
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  return { dir, bytes };
}
