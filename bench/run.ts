/**
 * `npm run -s bench -- <name> [args]`: runs bench/<name>.ts. Each benchmark prints readable
 * lines and, as its last line, one JSON summary.
 */
const BENCHMARKS: Record<string, () => Promise<{ main: (args: string[]) => Promise<void> }>> = {
  asl: () => import('./asl.js'),
  overhead: () => import('./overhead.js'),
  durable: () => import('./durable.js'),
  genome: () => import('./genome.js'),
};

const [name, ...args] = process.argv.slice(2);
const load = name ? BENCHMARKS[name] : undefined;
if (!load) {
  process.stderr.write(
    `usage: npm run -s bench -- <${Object.keys(BENCHMARKS).join('|')}>${name ? `\nunknown benchmark "${name}"` : ''}\n`,
  );
  process.exit(2);
}
await (await load()).main(args);
