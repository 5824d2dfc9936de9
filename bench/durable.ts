/**
 * The durable engine's throughput and memory: a Map of 10,000 items × 3 Pass states through
 * the SQLite engine (target ≥ 20,000 transitions/s), then a Map of 100,000 items (target: peak
 * RSS ≤ 300 MB). Each size runs in a fresh child process so the peak RSS is its own.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StateMachineDefinition } from '../src/asl/types.js';
import { Engine } from '../src/engine/engine.js';

const definition: StateMachineDefinition = {
  StartAt: 'Each',
  States: {
    Each: {
      Type: 'Map',
      ItemProcessor: {
        StartAt: 'A',
        States: {
          A: { Type: 'Pass', Parameters: { 'n.$': '$' }, Next: 'B' },
          B: { Type: 'Pass', Result: 'b', ResultPath: '$.b', Next: 'C' },
          C: { Type: 'Pass', OutputPath: '$.n', End: true },
        },
      },
      ResultPath: null,
      End: true,
    },
  },
};

/** Runs one size in this process and prints {items, seconds, transitions, rss_mb}. */
async function one(items: number): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'strand-durable-'));
  const engine = Engine.open({ home });
  const t0 = performance.now();
  await engine.startExecution({
    definition,
    input: Array.from({ length: items }, (_, i) => i),
    name: 'durable',
  });
  const d = await engine.waitForExecution('durable');
  const seconds = (performance.now() - t0) / 1000;
  engine.close();
  rmSync(home, { recursive: true, force: true });
  if (d.status !== 'SUCCEEDED') throw new Error(`${d.status}: ${d.error} ${d.cause}`);
  const transitions = 1 + items * 3;
  process.stdout.write(
    JSON.stringify({ items, seconds, transitions, rss_mb: process.resourceUsage().maxRSS / 1024 }) +
      '\n',
  );
}

export async function main(args: string[]): Promise<void> {
  if (args[0] === '--one') {
    await one(Number(args[1]));
    return;
  }
  const self = fileURLToPath(new URL('./run.ts', import.meta.url));
  const run = (items: number) => {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', self, 'durable', '--one', String(items)],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`durable ${items}: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
      items: number;
      seconds: number;
      transitions: number;
      rss_mb: number;
    };
  };
  const small = run(10_000);
  const tps = small.transitions / small.seconds;
  process.stdout.write(
    `10,000 items × 3 Pass: ${small.seconds.toFixed(2)} s, ${Math.round(tps).toLocaleString('en')} transitions/s (target ≥ 20,000: ${tps >= 20_000 ? 'met' : 'NOT met'})\n`,
  );
  const big = run(100_000);
  process.stdout.write(
    `100,000 items: ${big.seconds.toFixed(2)} s, peak RSS ${big.rss_mb.toFixed(0)} MB (target ≤ 300: ${big.rss_mb <= 300 ? 'met' : 'NOT met'})\n`,
  );
  process.stdout.write(
    JSON.stringify({
      transitions_per_s: Math.round(tps),
      peak_rss_mb_100k: Math.round(big.rss_mb),
    }) + '\n',
  );
}
