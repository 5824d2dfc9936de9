/**
 * The ASL interpreter benchmark: a Map over 10,000 items where each item runs a Choice and 3
 * Pass states with Parameters/ResultPath, on Strand's in-memory driver and on
 * aws-local-stepfunctions, in one process. Prints state transitions per second.
 * Targets: strand_tps ≥ 100,000 and ratio ≥ 5.
 */
import { runInMemory } from '../src/asl/run-in-memory.js';
import type { Json, StateMachineDefinition } from '../src/asl/types.js';

const ITEMS = 10_000;
const RUNS = 3;

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

export function makeInput(items = ITEMS): Json {
  const samples: Json[] = [];
  for (let i = 0; i < items; i++)
    samples.push({ id: `S${i}`, reads: 1000 + i, paired: i % 2 === 0 });
  return { samples };
}

/** States entered: the Map state plus four per item. */
const TRANSITIONS = 1 + ITEMS * 4;

function check(output: unknown): void {
  const results = (output as { results?: { layout: string }[] }).results;
  if (
    !Array.isArray(results) ||
    results.length !== ITEMS ||
    results[0].layout !== 'paired' ||
    results[1].layout !== 'single'
  ) {
    throw new Error(`unexpected output: ${JSON.stringify(output).slice(0, 200)}`);
  }
}

async function timeBest(label: string, run: () => Promise<unknown>): Promise<number> {
  check(await run()); // warm-up
  let best = Infinity;
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const out = await run();
    const ms = performance.now() - t0;
    check(out);
    best = Math.min(best, ms);
  }
  const tps = TRANSITIONS / (best / 1000);
  process.stdout.write(
    `${label.padEnd(24)} best of ${RUNS}: ${best.toFixed(0).padStart(6)} ms  ${Math.round(tps).toLocaleString('en').padStart(10)} transitions/s\n`,
  );
  return tps;
}

export async function main(): Promise<void> {
  const input = makeInput();
  process.stdout.write(
    `Map over ${ITEMS.toLocaleString('en')} items × (Choice + 3 Pass) = ${TRANSITIONS.toLocaleString('en')} state transitions\n`,
  );

  const strandTps = await timeBest('strand (in-memory)', async () => {
    const r = await runInMemory(definition, input);
    if (r.status !== 'SUCCEEDED' || r.transitions !== TRANSITIONS) {
      throw new Error(
        `strand: ${r.status} after ${r.transitions} transitions (${r.error}: ${r.cause})`,
      );
    }
    return r.output;
  });

  // aws-local-stepfunctions 3 uses Promise.withResolvers, which Node 20 lacks.
  const P = Promise as unknown as { withResolvers?: () => unknown };
  P.withResolvers ??= () => {
    let resolve!: (v: unknown) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
  const { StateMachine } = await import('aws-local-stepfunctions');
  const machine = new StateMachine(definition as never, {
    validationOptions: { checkPaths: false },
  });
  const peerTps = await timeBest(
    'aws-local-stepfunctions',
    async () => machine.run(input as never).result,
  );

  const ratio = strandTps / peerTps;
  const rssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(
    `ratio ${ratio.toFixed(2)} (target ≥ 5: ${ratio >= 5 ? 'met' : 'NOT met'}); strand ${Math.round(strandTps)} transitions/s (target ≥ 100,000: ${strandTps >= 100_000 ? 'met' : 'NOT met'}); peak RSS ${rssMb.toFixed(0)} MB\n`,
  );
  process.stdout.write(
    JSON.stringify({
      strand_tps: Math.round(strandTps),
      peer_tps: Math.round(peerTps),
      ratio: Number(ratio.toFixed(2)),
      items: ITEMS,
      transitions: TRANSITIONS,
      peak_rss_mb: Math.round(rssMb),
    }) + '\n',
  );
}
