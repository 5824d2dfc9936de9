/**
 * Arguments are exactly what was written. A property test: command items and env values that
 * mix literal text (`$$`, `$1`, braces, quotes, backslashes, spaces, newlines, unicode, literal
 * `Ref::` text) with variables (`$P0`, `${P1}`, the sample id, the job's own output) and parameters of
 * arbitrary text are compiled, run through the engine, the local Batch and a real process that
 * writes its argv and environment to files, and compared with the strings worked out here from
 * the pieces they were generated from. Few runs, many arguments per job.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { strand } from './cli.js';

/** One piece of an argument: literal text (as written and as meant) or a variable. */
type Piece = { src: string; means: string } | { var: string };

const PARAMS = ['P0', 'P1', 'P2', 'P3'];
const OUTPUT = 'out/o.txt';

/** Literal text as written in YAML, and what the tool must receive for it. */
const literal: fc.Arbitrary<Piece> = fc.oneof(
  fc.constantFrom(
    { src: '$$', means: '$' },
    { src: '$$$$', means: '$$' },
    { src: '$1', means: '$1' },
    { src: '$(', means: '$(' },
    { src: '$ ', means: '$ ' },
    { src: "'", means: "'" },
    { src: '"', means: '"' },
    { src: '{', means: '{' },
    { src: '}', means: '}' },
    { src: '{}', means: '{}' },
    { src: '\\', means: '\\' },
    { src: '\\\\', means: '\\\\' },
    { src: '\\n', means: '\\n' },
    { src: '\n', means: '\n' },
    { src: '\t', means: '\t' },
    { src: '(', means: '(' },
    { src: ')', means: ')' },
    { src: ' ', means: ' ' },
    { src: ',', means: ',' },
    { src: 'Ref::P0', means: 'Ref::P0' },
    { src: 'Ref::', means: 'Ref::' },
    { src: 'Ref::arg1', means: 'Ref::arg1' },
    { src: 'é漢🧬', means: 'é漢🧬' },
    { src: '_R1.fq', means: '_R1.fq' },
  ),
  fc
    .string({ unit: fc.constantFrom(...'abcXYZ019_.-=:/ @%*?[]~#'.split('')), minLength: 1 })
    .map((t) => ({ src: t, means: t })),
);

const variable: fc.Arbitrary<Piece> = fc.constantFrom(
  ...[...PARAMS, 'SAMPLE', 'OUT'].map((v) => ({ var: v })),
);

const argument = fc.array(fc.oneof({ arbitrary: literal, weight: 2 }, variable), {
  minLength: 1,
  maxLength: 6,
});

/**
 * A parameter's value: any text but NUL that names nothing on this machine. A value naming a
 * file or a directory is an input: hashed whole for the cache (`/` would take minutes) and
 * mounted read-only, which is not what this property is about.
 */
const value = fc
  .string({ unit: 'binary', maxLength: 20 })
  .filter((v) => !v.includes('\0') && !(v.startsWith('/') && existsSync(v)));

/** The pieces as written: a variable braced when a name character follows it, or at random. */
function written(pieces: Piece[], braced: boolean[]): string {
  return pieces
    .map((p, i) => {
      if ('src' in p) return p.src;
      const next = pieces[i + 1];
      const nameFollows = next !== undefined && 'src' in next && /^[A-Za-z0-9_]/.test(next.src);
      return nameFollows || braced[i] ? `\${${p.var}}` : `$${p.var}`;
    })
    .join('');
}

function meant(pieces: Piece[], vars: Record<string, string>): string {
  return pieces.map((p) => ('src' in p ? p.means : vars[p.var])).join('');
}

/** NUL-separated strings, as `printf '%s\0'` and `env -0` write them. */
function nulSeparated(bytes: Buffer): string[] {
  const text = bytes.toString('utf8');
  return text === '' ? [] : text.slice(0, -1).split('\0');
}

describe('arguments and env values reach the tool exactly as written', () => {
  it('text mixed with variables, several variables, literal $, braces, quotes, Ref:: (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(argument, { minLength: 12, maxLength: 24 }),
        fc.array(argument, { minLength: 1, maxLength: 4 }),
        fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
        fc.tuple(value, value, value, value),
        fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,11}$/).filter((s) => s !== '_all'),
        async (args, envs, braced, values, sample) => {
          const dir = mkdtempSync(join(tmpdir(), 'strand-args-'));
          const home = join(dir, 'home');
          const items = args.map((a) => written(a, braced));
          const env = envs.map((e) => written(e, braced));
          // The script records argv and the environment; everything after `sh` is generated.
          const script = `printf '%s\\0' "$@" > args.bin; env -0 > env.bin; : > ${OUTPUT}`;
          writeFileSync(
            join(dir, 'pipeline.yaml'),
            [
              'name: args',
              `samples: [ { id: ${JSON.stringify(sample)} } ]`,
              `params: { ${PARAMS.map((p) => `${p}: ~`).join(', ')} }`,
              'steps:',
              '  echo:',
              '    image: debian:bookworm-slim',
              `    command: ${JSON.stringify(['sh', '-c', script.replace(/\$/g, '$$$$'), 'sh', ...items])}`,
              `    env: { ${env.map((e, i) => `E${i}: ${JSON.stringify(e)}`).join(', ')} }`,
              `    outputs: { OUT: ${OUTPUT}, ARGS: args.bin, ENV: env.bin }`,
              '',
            ].join('\n'),
          );
          const r = await strand(
            'run',
            join(dir, 'pipeline.yaml'),
            '--home',
            home,
            '--no-cache',
            ...PARAMS.flatMap((p, i) => ['--param', `${p}=${values[i]}`]),
          );
          expect(r.code, r.err).toBe(0);
          const vars: Record<string, string> = { SAMPLE: sample, OUT: OUTPUT };
          PARAMS.forEach((p, i) => (vars[p] = values[i]));
          const published = join(home, 'store', 'args', sample, 'echo');
          expect(nulSeparated(readFileSync(join(published, 'args.bin')))).toEqual(
            args.map((a) => meant(a, vars)),
          );
          const received = new Map(
            nulSeparated(readFileSync(join(published, 'env.bin'))).map((kv) => {
              const eq = kv.indexOf('=');
              return [kv.slice(0, eq), kv.slice(eq + 1)];
            }),
          );
          envs.forEach((e, i) => expect(received.get(`E${i}`), `E${i}`).toBe(meant(e, vars)));
        },
      ),
      { numRuns: 6 },
    );
  });
});
