/**
 * The ASL interpreter benchmark: a Map over 10,000 items where each item runs a Choice and 3
 * Pass states with Parameters/ResultPath, on Strand's in-memory driver and on
 * aws-local-stepfunctions, in one process. Prints state transitions per second.
 * Targets: strand_tps ≥ 100,000 and ratio ≥ 5.
 *
 * Transitions are states entered, the Map state and every iteration's states included. Both
 * counts are measured (Strand's `transitions`, the peer's StateEntered event logs) in an
 * untimed run and must agree; the timed runs then check only the output.
 */
import { runInMemory } from '../src/asl/run-in-memory.js';
import type { Json, StateMachineDefinition } from '../src/asl/types.js';
import { polyfillWithResolvers } from '../scripts/lib/with-resolvers.js';

const ITEMS = 10_000;
const RUNS = 5;

/** Each sample goes paired or single by the parity of its number, then is annotated. */
export const definition: StateMachineDefinition = {
  Comment: 'Benchmark: Map over items, each a Choice and three Pass states',
  StartAt: 'EachSample',
  States: {
    EachSample: {
      Type: 'Map',
      ItemsPath: '$.samples',
      MaxConcurrency: 0,
      ItemProcessor: {
        ProcessorConfig: { Mode: 'INLINE' },
        StartAt: 'Paired',
        States: {
          Paired: {
            Type: 'Choice',
            Choices: [{ Variable: '$.paired', BooleanEquals: true, Next: 'PairedReads' }],
            Default: 'SingleReads',
          },
          PairedReads: {
            Type: 'Pass',
            Parameters: { 'id.$': '$.id', 'reads.$': '$.reads', layout: 'paired' },
            Next: 'Annotate',
          },
          SingleReads: {
            Type: 'Pass',
            Parameters: { 'id.$': '$.id', 'reads.$': '$.reads', layout: 'single' },
            Next: 'Annotate',
          },
          Annotate: {
            Type: 'Pass',
            Result: { pipeline: 'bench', version: 1 },
            ResultPath: '$.meta',
            Next: 'Done',
          },
          Done: {
            Type: 'Pass',
            Parameters: { 'id.$': '$.id', 'layout.$': '$.layout', 'pipeline.$': '$.meta.pipeline' },
            End: true,
          },
        },
      },
      ResultPath: '$.results',
      End: true,
    },
  },
};

/** The benchmark's input: `items` samples, even-numbered ones paired. */
export function makeInput(items = ITEMS): Json {
  const samples: Json[] = [];
  for (let i = 0; i < items; i++)
    samples.push({ id: `S${i}`, reads: 1000 + i, paired: i % 2 === 0 });
  return { samples };
}

/** States entered: the Map state plus four per item. */
const TRANSITIONS = 1 + ITEMS * 4;

function check(engine: string, output: unknown): void {
  const results = (output as { results?: { id: string; layout: string; pipeline: string }[] })
    .results;
  const ok =
    Array.isArray(results) &&
    results.length === ITEMS &&
    results.every(
      (r, i) =>
        r.id === `S${i}` &&
        r.layout === (i % 2 === 0 ? 'paired' : 'single') &&
        r.pipeline === 'bench',
    );
  if (!ok) throw new Error(`${engine}: unexpected output ${JSON.stringify(output).slice(0, 200)}`);
}

interface Timing {
  bestMs: number;
  medianMs: number;
  tps: number;
}

async function time(label: string, run: () => Promise<unknown>): Promise<Timing> {
  check(label, await run()); // warm-up
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const out = await run();
    times.push(performance.now() - t0);
    check(label, out);
  }
  times.sort((a, b) => a - b);
  const bestMs = times[0];
  const medianMs = times[Math.floor(times.length / 2)];
  const tps = TRANSITIONS / (bestMs / 1000);
  process.stdout.write(
    `${label.padEnd(24)} best ${bestMs.toFixed(0).padStart(5)} ms, median ${medianMs.toFixed(0).padStart(5)} ms of ${RUNS}  ${Math.round(tps).toLocaleString('en').padStart(10)} transitions/s\n`,
  );
  return { bestMs, medianMs, tps };
}

const mb = (): number => process.resourceUsage().maxRSS / 1024;

/** Runs the benchmark and prints one line per engine and a JSON summary last. */
export async function main(): Promise<void> {
  const input = makeInput();
  process.stdout.write(
    `Map over ${ITEMS.toLocaleString('en')} items × (Choice + 3 Pass) = ${TRANSITIONS.toLocaleString('en')} state transitions\n`,
  );

  const counted = await runInMemory(definition, input);
  if (counted.status !== 'SUCCEEDED' || counted.transitions !== TRANSITIONS) {
    throw new Error(
      `strand: ${counted.status} after ${counted.transitions} transitions, expected ${TRANSITIONS} (${counted.error}: ${counted.cause})`,
    );
  }
  const strand = await time('strand (in-memory)', async () => {
    const r = await runInMemory(definition, input);
    if (r.status !== 'SUCCEEDED') throw new Error(`strand: ${r.status} (${r.error}: ${r.cause})`);
    return r.output;
  });
  const strandRssMb = mb();

  polyfillWithResolvers();
  const { StateMachine } = await import('aws-local-stepfunctions');
  const machine = new StateMachine(definition as never, {
    validationOptions: { checkPaths: false },
  });
  const execution = machine.run(input as never);
  let peerEntered = 0;
  for await (const event of execution.eventLogs) if (event.type === 'StateEntered') peerEntered++;
  await execution.result;
  if (peerEntered !== TRANSITIONS) {
    throw new Error(
      `aws-local-stepfunctions entered ${peerEntered} states, expected ${TRANSITIONS}`,
    );
  }
  const peer = await time(
    'aws-local-stepfunctions',
    async () => machine.run(input as never).result,
  );

  const ratio = strand.tps / peer.tps;
  const rssMb = mb();
  const verdict = (met: boolean): string => (met ? 'met' : 'NOT met');
  process.stdout.write(
    `ratio ${ratio.toFixed(2)} (target ≥ 5: ${verdict(ratio >= 5)}); strand ${Math.round(strand.tps).toLocaleString('en')} transitions/s (target ≥ 100,000: ${verdict(strand.tps >= 100_000)})\n` +
      `peak RSS ${strandRssMb.toFixed(0)} MB after Strand's runs, ${rssMb.toFixed(0)} MB after both\n`,
  );
  process.stdout.write(
    JSON.stringify({
      strand_tps: Math.round(strand.tps),
      peer_tps: Math.round(peer.tps),
      ratio: Number(ratio.toFixed(2)),
      ratio_target_met: ratio >= 5,
      strand_tps_target_met: strand.tps >= 100_000,
      strand_median_ms: Math.round(strand.medianMs),
      peer_median_ms: Math.round(peer.medianMs),
      items: ITEMS,
      transitions: TRANSITIONS,
      strand_peak_rss_mb: Math.round(strandRssMb),
      peak_rss_mb: Math.round(rssMb),
    }) + '\n',
  );
}
