/**
 * Index sets kept for RedriveExecution. A Map of 100,000 items whose iterations nearly all
 * succeeded is described by a few ranges, not by one entry per iteration.
 */

/** Ascending, disjoint, non-adjacent half-open ranges, flattened: `[start0, end0, start1, end1, …]`. */
export type IndexRanges = number[];

/** The ranges covering `indices` (any order, duplicates allowed) and the ranges `also`. */
export function indexRanges(indices: readonly number[], also: IndexRanges = []): IndexRanges {
  const starts: [number, number][] = [];
  for (let i = 0; i < also.length; i += 2) starts.push([also[i], also[i + 1]]);
  const sorted = Int32Array.from(indices).sort();
  for (let i = 0; i < sorted.length;) {
    let end = sorted[i] + 1;
    let j = i + 1;
    while (j < sorted.length && sorted[j] <= end) end = Math.max(end, sorted[j++] + 1);
    starts.push([sorted[i], end]);
    i = j;
  }
  starts.sort((a, b) => a[0] - b[0]);
  const out: IndexRanges = [];
  for (const [start, end] of starts) {
    if (out.length > 0 && start <= out[out.length - 1]) {
      out[out.length - 1] = Math.max(out[out.length - 1], end);
    } else {
      out.push(start, end);
    }
  }
  return out;
}

/** True when `index` lies in one of the ranges. */
export function inRanges(ranges: IndexRanges, index: number): boolean {
  let lo = 0;
  let hi = ranges.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (index < ranges[2 * mid]) hi = mid - 1;
    else if (index >= ranges[2 * mid + 1]) lo = mid + 1;
    else return true;
  }
  return false;
}

/** How many indices the ranges cover. */
export function rangesSize(ranges: IndexRanges): number {
  let n = 0;
  for (let i = 0; i < ranges.length; i += 2) n += ranges[i + 1] - ranges[i];
  return n;
}
