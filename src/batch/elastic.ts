/**
 * Elastic job sizes: a job that declares a range of vCPUs (`vcpus: 1-4`) gets, when it starts,
 * the size that is expected to finish what is queued soonest. Pure functions: the scheduler
 * gives the history of the job's step, the free capacity and what else waits; they answer a
 * size and the reason for it, which `strand batch describe` shows.
 *
 * The run time of a step at v vCPUs is modelled as Amdahl's law, T(v) = serial + parallel / v,
 * fitted to earlier runs: with runs at two or more sizes, by least squares over the median time
 * at each size; with runs at one size v0 > 1 only, from their CPU time C and wall time W (the
 * work is C = serial + parallel, and W = serial + parallel / v0); otherwise (no CPU time, or
 * only v0 = 1) as if it scaled perfectly, marked as assumed (see chooseSize for what that changes).
 */
import { resolveContainer } from './register.js';
import type { JobDefinition, JobDetail } from './types.js';

/**
 * The tags that give a job a range (set by the compiler on the job definition, so on every job
 * of it): `strand:vcpus` = "1-4", `strand:memory` = "2048-8192" (MiB). The job definition's own
 * VCPU and MEMORY are the top of the range (what AWS Batch runs without an override).
 */
export const RANGE_TAG = { vcpus: 'strand:vcpus', memory: 'strand:memory' } as const;

/** The parameters a command refers to for the size its attempt got (`Ref::STRAND_VCPUS`). */
export const SIZE_PARAMETERS = { vcpus: 'STRAND_VCPUS', memory: 'STRAND_MEMORY_MIB' } as const;

/** Their names, for what reads them apart from the state (the loader, the compiler). */
export const SIZE_VARIABLES: readonly string[] = Object.values(SIZE_PARAMETERS);

/** The two parameters (and environment variables) that give a job its size. */
export function sizeParameters(vcpus: number, memoryMiB: number): Record<string, string> {
  return { [SIZE_PARAMETERS.vcpus]: String(vcpus), [SIZE_PARAMETERS.memory]: String(memoryMiB) };
}

export interface ElasticRange {
  vcpus: [number, number];
  /** MiB; undefined: the job's fixed memory. */
  memory?: [number, number];
}

function parseRange(text: string | undefined): [number, number] | undefined {
  const m = /^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$/.exec(text ?? '');
  if (!m) return undefined;
  const lo = Number(m[1]);
  const hi = Number(m[2]);
  return lo > 0 && lo <= hi ? [lo, hi] : undefined;
}

/** A job's range of vCPUs (and of memory), from its tags; undefined for a fixed size. */
export function elasticRange(tags: Record<string, string> | undefined): ElasticRange | undefined {
  const vcpus = parseRange(tags?.[RANGE_TAG.vcpus]);
  if (!vcpus) return undefined;
  const memory = parseRange(tags?.[RANGE_TAG.memory]);
  return memory ? { vcpus, memory } : { vcpus };
}

/**
 * The command an attempt of `job` runs when given `vcpus` and `memoryMiB`: its definition's
 * command with `Ref::STRAND_VCPUS` and `Ref::STRAND_MEMORY_MIB` resolved to them. A job whose
 * command was overridden at submit, or that refers to neither, runs its command as submitted.
 */
export function sizedCommand(
  def: Pick<JobDefinition, 'parameters' | 'containerProperties'> | undefined,
  job: Pick<JobDetail, 'parameters' | 'container'>,
  vcpus: number,
  memoryMiB: number,
): string[] {
  const template = def?.containerProperties.command ?? [];
  const refs = SIZE_VARIABLES.map((p) => `Ref::${p}`);
  if (!def || !template.some((c) => refs.includes(c))) return job.container.command;
  const asSubmitted = resolveContainer(def, { parameters: job.parameters }).command;
  if (JSON.stringify(asSubmitted) !== JSON.stringify(job.container.command))
    return job.container.command;
  return resolveContainer(def, {
    parameters: { ...job.parameters, ...sizeParameters(vcpus, memoryMiB) },
  }).command;
}

/**
 * What a SubmitJob to AWS Batch adds for a size chosen for a job with a range: the resource
 * override, the parameters its command refers to, and the environment the job reads.
 */
export function sizeOverride(
  vcpus: number,
  memoryMiB: number,
): {
  parameters: Record<string, string>;
  containerOverrides: {
    resourceRequirements: { type: 'VCPU' | 'MEMORY'; value: string }[];
    environment: { name: string; value: string }[];
  };
} {
  const values = sizeParameters(vcpus, memoryMiB);
  return {
    parameters: values,
    containerOverrides: {
      resourceRequirements: [
        { type: 'VCPU', value: String(vcpus) },
        { type: 'MEMORY', value: String(memoryMiB) },
      ],
      environment: Object.entries(values).map(([name, value]) => ({ name, value })),
    },
  };
}

/** One earlier run of a step: the vCPUs it had, its wall time and (when known) its CPU time. */
export interface Observation {
  /** Which run (a job id), so one seen twice counts once. */
  id?: string;
  vcpus: number;
  seconds: number;
  cpuSeconds?: number;
}

/** T(v) = serial + parallel / v, in seconds. */
export interface Scaling {
  serial: number;
  parallel: number;
  /** How it was fitted, for the reason shown. */
  basis: string;
  /**
   * Nothing measured says how it scales (runs at one size only, without CPU time or at 1 vCPU):
   * perfect scaling is assumed, which makes every size look as good while the machine is full.
   */
  assumed?: true;
}

export function timeAt(s: Scaling, vcpus: number): number {
  return s.serial + s.parallel / vcpus;
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The step's scaling from its history, or undefined with none. */
export function fitScaling(history: readonly Observation[]): Scaling | undefined {
  const usable = history.filter((o) => o.vcpus > 0 && o.seconds > 0);
  if (usable.length === 0) return undefined;
  const bySize = new Map<number, Observation[]>();
  for (const o of usable) bySize.set(o.vcpus, [...(bySize.get(o.vcpus) ?? []), o]);
  const runs = `${usable.length} run${usable.length === 1 ? '' : 's'}`;
  if (bySize.size >= 2) {
    // Least squares of T = a + b·x with x = 1/v, one point per size (its median time).
    const points = [...bySize].map(([v, os]) => ({
      x: 1 / v,
      y: median(os.map((o) => o.seconds)),
    }));
    const n = points.length;
    const mx = points.reduce((s, p) => s + p.x, 0) / n;
    const my = points.reduce((s, p) => s + p.y, 0) / n;
    const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
    const sxy = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
    let parallel = Math.max(0, sxy / sxx);
    let serial = my - parallel * mx;
    if (serial < 0) {
      // Better than linear (noise, caches): keep it linear through the mean.
      serial = 0;
      parallel = my / mx;
    }
    const sizes = [...bySize.keys()].sort((a, b) => a - b).join(', ');
    return { serial, parallel, basis: `${runs} at ${sizes} vCPU` };
  }
  const [v0, os] = [...bySize][0];
  const wall = median(os.map((o) => o.seconds));
  const cpus = os.map((o) => o.cpuSeconds).filter((c): c is number => c !== undefined);
  if (v0 > 1 && cpus.length > 0) {
    const work = Math.max(wall, median(cpus));
    // W = s + p/v0 and C = s + p: p = (C - W) / (1 - 1/v0).
    const parallel = Math.min(work, (work - wall) / (1 - 1 / v0));
    const busy = (work / wall).toFixed(2);
    return {
      serial: work - parallel,
      parallel,
      basis: `${runs} at ${v0} vCPU using ${busy} of them`,
    };
  }
  // Nothing tells how it scales: as if perfectly (ties then go by what else waits: chooseSize).
  return { serial: 0, parallel: wall * v0, basis: `${runs} at ${v0} vCPU only`, assumed: true };
}

/**
 * Seconds until a running job is expected to end, `expected` seconds being its kind's time at
 * its size: what is left of that; once past it, as long again as it has overrun, and at least a
 * tenth of the expected time. A job just past its expected end is most likely about to end (run
 * times vary by some percent), so a size may wait for its cores; the longer it overruns, the
 * less that holds, and the wait stops paying once the overrun is about what a larger size saves.
 */
export function expectedLeft(expected: number, elapsed: number): number {
  const left = expected - elapsed;
  return left > 0 ? left : Math.max(-left, expected / 10);
}

/** A job that waits or runs beside the one being sized. */
export interface OtherJob {
  /** Its range of vCPUs ([n, n] for a fixed size) and its step's scaling, when known. */
  range: [number, number];
  scaling?: Scaling;
  /**
   * For a running job: its vCPUs and when it is expected to end (seconds from now; undefined
   * when its kind has no history).
   */
  running?: { vcpus: number; endsIn?: number };
}

export interface SizeChoice {
  vcpus: number;
  reason: string;
  /** The size is not free yet: the job should wait for it rather than start smaller. */
  wait?: boolean;
  /** With `wait`: seconds until the size is expected to be free. */
  freeIn?: number;
}

/** The sizes worth trying in a range: its ends and the whole numbers between. */
export function candidates([lo, hi]: [number, number]): number[] {
  const out = new Set<number>([lo, hi]);
  for (let v = Math.ceil(lo); v < hi; v++) if (v > lo) out.add(v);
  return [...out].sort((a, b) => a - b);
}

/** Core-seconds a job needs at its most economical size in its range (its time if unknown). */
function leastWork(job: OtherJob): number | undefined {
  if (!job.scaling) return undefined;
  return Math.min(...candidates(job.range).map((v) => v * timeAt(job.scaling!, v)));
}

/**
 * The size in `range` expected to finish the queue soonest. The queue's expected end, for each
 * size v of this job: the latest of this job's end (when v vCPUs are free, plus T(v)), the
 * running jobs' ends, and the time the machine's `capacity` needs for all the work (this job at
 * v, what runs, what waits at its most economical size). A size that is not free now is free
 * once enough running jobs of known length have ended, and the cores free meanwhile count as
 * idle; when such a size is best, the answer says to wait for it (`wait`). Ties go to the size
 * that starts now, then to the larger size: it ends this job sooner; but when the scaling is only
 * assumed and other jobs wait, to the smaller: real steps seldom scale perfectly, and the cores
 * a larger size would take are then worth more to the jobs behind it. With no history the top of
 * the range (of what is free). Undefined when not even the low end is free now.
 */
export function chooseSize(
  range: [number, number],
  scaling: Scaling | undefined,
  free: number,
  capacity: number,
  others: readonly OtherJob[],
): SizeChoice | undefined {
  const all = candidates(range).filter((v) => v <= capacity + 1e-9);
  const fitting = all.filter((v) => v <= free + 1e-9);
  if (fitting.length === 0) return undefined;
  if (!scaling) return { vcpus: fitting.at(-1)!, reason: 'no history: the top of the range' };
  let waitingWork = 0;
  let unknown = 0;
  for (const o of others) {
    if (o.running) continue;
    const w = leastWork(o);
    if (w === undefined) unknown++;
    else waitingWork += w;
  }
  const running = others.flatMap((o) => (o.running ? [o.running] : []));
  const runningWork = running.reduce((s, r) => s + r.vcpus * (r.endsIn ?? 0), 0);
  const runningEnd = Math.max(0, ...running.map((r) => r.endsIn ?? 0));
  // When v vCPUs will be free: now, or once enough running jobs of known length have ended.
  const freeAt = (v: number): number => {
    let have = free;
    if (have + 1e-9 >= v) return 0;
    for (const r of [...running]
      .filter((r) => r.endsIn !== undefined)
      .sort((a, b) => a.endsIn! - b.endsIn!)) {
      have += r.vcpus;
      if (have + 1e-9 >= v) return r.endsIn!;
    }
    return Infinity;
  };
  const preferSmaller = scaling.assumed === true && others.some((o) => !o.running);
  let best: { vcpus: number; end: number; at: number } | undefined;
  for (const v of all) {
    const at = freeAt(v);
    if (at === Infinity) continue;
    const own = timeAt(scaling, v);
    // Waiting leaves the cores free now idle until then: work no other job is counted on for.
    const idle = free * at;
    const end = Math.max(
      at + own,
      runningEnd,
      (v * own + runningWork + waitingWork + idle) / capacity,
    );
    const tie = best !== undefined && Math.abs(end - best.end) <= 1e-9;
    if (
      !best ||
      end < best.end - 1e-9 ||
      (tie && at < best.at - 1e-9) ||
      (tie && Math.abs(at - best.at) <= 1e-9 && (preferSmaller ? v < best.vcpus : v > best.vcpus))
    )
      best = { vcpus: v, end, at };
  }
  const waiting = others.length - running.length;
  const times = all.map((v) => `${v} vCPU ${timeAt(scaling, v).toFixed(1)} s`).join(', ');
  const context =
    `expected ${times} (${scaling.basis}); with ${waiting} job${waiting === 1 ? '' : 's'} waiting` +
    `${unknown > 0 ? ` (${unknown} without history)` : ''}`;
  if (best!.at > 0)
    return {
      vcpus: best!.vcpus,
      wait: true,
      freeIn: best!.at,
      reason: `${context} the queue ends soonest at ${best!.vcpus} vCPU, free in about ${best!.at.toFixed(0)} s: waiting for it`,
    };
  return {
    vcpus: best!.vcpus,
    reason: `${context} the queue ends soonest at ${best!.vcpus} vCPU, in about ${best!.end.toFixed(0)} s`,
  };
}

/**
 * Memory within its range for a job given `vcpus` of its vCPU range: in proportion, so a job
 * with more threads gets more memory; the most that fits when less is free, never below the
 * low end. Undefined when even that does not fit.
 */
export function memoryFor(
  memory: [number, number],
  vcpuRange: [number, number],
  vcpus: number,
  freeMiB: number,
): number | undefined {
  const [lo, hi] = memory;
  const share =
    vcpuRange[1] > vcpuRange[0] ? (vcpus - vcpuRange[0]) / (vcpuRange[1] - vcpuRange[0]) : 1;
  const wanted = Math.round(lo + (hi - lo) * share);
  const got = Math.min(wanted, freeMiB);
  return got >= lo ? got : undefined;
}
