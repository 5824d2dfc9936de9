/** Elastic sizes: the scaling fitted from history, and the size chosen for a queue. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  candidates,
  chooseSize,
  expectedLeft,
  fitScaling,
  memoryFor,
  timeAt,
  type OtherJob,
} from '../../src/batch/elastic.js';

describe('fitScaling', () => {
  it('none without history', () => {
    expect(fitScaling([])).toBeUndefined();
  });

  it('recovers T(v) = serial + parallel / v from runs at several sizes', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 100, noNaN: true }),
        fc.double({ min: 1, max: 1000, noNaN: true }),
        (serial, parallel) => {
          const runs = [1, 2, 4].flatMap((v) => [
            { vcpus: v, seconds: serial + parallel / v },
            { vcpus: v, seconds: serial + parallel / v },
          ]);
          const s = fitScaling(runs)!;
          for (const v of [1, 2, 3, 4]) expect(timeAt(s, v)).toBeCloseTo(serial + parallel / v, 6);
        },
      ),
    );
  });

  it('from one size above 1: the CPU time tells the work, the wall time how it spread', () => {
    // megahit -t 2 on a 10x sample: 16 s wall, 28 s of CPU (1.75 busy cores).
    const s = fitScaling([{ vcpus: 2, seconds: 16, cpuSeconds: 28 }])!;
    expect(timeAt(s, 2)).toBeCloseTo(16);
    expect(timeAt(s, 1)).toBeCloseTo(28);
    expect(s.basis).toBe('1 run at 2 vCPU using 1.75 of them');
  });

  it('from one size without CPU time, or at 1 vCPU only: as if it scaled perfectly', () => {
    expect(timeAt(fitScaling([{ vcpus: 2, seconds: 10 }])!, 1)).toBeCloseTo(20);
    expect(timeAt(fitScaling([{ vcpus: 1, seconds: 10, cpuSeconds: 10 }])!, 2)).toBeCloseTo(5);
  });

  it('medians per size: one slow outlier does not move the fit', () => {
    const runs = [
      { vcpus: 1, seconds: 30 },
      { vcpus: 1, seconds: 30 },
      { vcpus: 1, seconds: 300 },
      { vcpus: 2, seconds: 16 },
    ];
    expect(timeAt(fitScaling(runs)!, 1)).toBeCloseTo(30);
  });
});

describe('chooseSize', () => {
  const megahit = fitScaling([{ vcpus: 2, seconds: 16, cpuSeconds: 28 }])!;
  const waiting = (n: number): OtherJob[] =>
    Array.from({ length: n }, () => ({ range: [1, 2], scaling: megahit }));

  it('no history: the top of the range', () => {
    expect(chooseSize([1, 2], undefined, 2, 2, waiting(7))).toEqual({
      vcpus: 2,
      reason: 'no history: the top of the range',
    });
  });

  it('alone: the top of the range (it ends soonest)', () => {
    expect(chooseSize([1, 2], megahit, 2, 2, [])!.vcpus).toBe(2);
  });

  it('with others of its kind waiting: one vCPU each (less work in all)', () => {
    const c = chooseSize([1, 2], megahit, 2, 2, waiting(7))!;
    expect(c.vcpus).toBe(1);
    expect(c.reason).toMatch(
      /^expected 1 vCPU 28\.0 s, 2 vCPU 16\.0 s \(1 run at 2 vCPU using 1\.75 of them\); with 7 jobs waiting the queue ends soonest at 1 vCPU/,
    );
    expect(chooseSize([1, 2], megahit, 2, 2, waiting(1))!.vcpus).toBe(1);
  });

  it('a step measured to scale perfectly keeps the top of its range even with a queue', () => {
    const perfect = fitScaling([
      { vcpus: 1, seconds: 20 },
      { vcpus: 2, seconds: 10 },
    ])!;
    expect(perfect.assumed).toBeUndefined();
    const others: OtherJob[] = Array.from({ length: 5 }, () => ({
      range: [1, 2],
      scaling: perfect,
    }));
    expect(chooseSize([1, 2], perfect, 2, 2, others)!.vcpus).toBe(2);
  });

  it('scaling only assumed: the smaller size while others wait, the larger when alone', () => {
    // Runs at 1 vCPU only: perfect scaling is assumed, so with the machine full every size ties.
    const oneOnly = fitScaling([{ vcpus: 1, seconds: 40, cpuSeconds: 39 }])!;
    expect(oneOnly.assumed).toBe(true);
    const others: OtherJob[] = [
      { range: [1, 2], scaling: oneOnly },
      { range: [1, 1] }, // never run: no history
    ];
    expect(chooseSize([1, 2], oneOnly, 2, 2, others)!.vcpus).toBe(1);
    expect(chooseSize([1, 2], oneOnly, 2, 2, [])!.vcpus).toBe(2);
    // Only running jobs beside it: nothing waits for the cores, the larger size ends it sooner.
    expect(
      chooseSize([1, 2], oneOnly, 2, 3, [{ range: [1, 1], running: { vcpus: 1, endsIn: 100 } }])!
        .vcpus,
    ).toBe(2);
  });

  it('only sizes that fit now; none: undefined', () => {
    expect(chooseSize([1, 2], megahit, 1, 2, [])!.vcpus).toBe(1);
    expect(chooseSize([2, 4], megahit, 1, 4, [])).toBeUndefined();
  });

  it('when a long running job sets the end anyway, the tie goes to the top of the range', () => {
    // One of 3 cores is busy for 100 s: the queue cannot end before that whatever this job gets.
    const c = chooseSize([1, 2], megahit, 2, 3, [
      { range: [1, 1], running: { vcpus: 1, endsIn: 100 } },
    ]);
    expect(c!.vcpus).toBe(2);
  });

  it('waits for a larger size that is about to be free, not when the job holding it is unknown', () => {
    const soon = chooseSize([1, 2], megahit, 1, 2, [
      { range: [1, 1], running: { vcpus: 1, endsIn: 1 } },
    ])!;
    expect(soon).toMatchObject({ vcpus: 2, wait: true });
    expect(soon.reason).toMatch(/free in about 1 s: waiting for it$/);
    // The running job's length is unknown: start now with what is free.
    const unknown = chooseSize([1, 2], megahit, 1, 2, [{ range: [1, 1], running: { vcpus: 1 } }])!;
    expect(unknown).toEqual(expect.objectContaining({ vcpus: 1 }));
    expect(unknown.wait).toBeUndefined();
  });

  it('does not leave a core idle waiting for a larger size the queue gains nothing from', () => {
    // Assemblies run at 1 vCPU only so far (nothing says how they scale: as if perfectly), one
    // runs with 31 s to go, five wait: waiting 31 s for 2 vCPU would leave a core idle that long.
    const oneOnly = fitScaling([{ vcpus: 1, seconds: 34 }])!;
    const others: OtherJob[] = [
      { range: [1, 1], running: { vcpus: 1, endsIn: 31 } },
      ...Array.from({ length: 5 }, (): OtherJob => ({ range: [1, 2], scaling: oneOnly })),
    ];
    const c = chooseSize([1, 2], oneOnly, 1, 2, others)!;
    expect(c).toMatchObject({ vcpus: 1 });
    expect(c.wait).toBeUndefined();
    // The last of them, with the other about to end: waiting for 2 vCPU is worth it.
    const last = chooseSize([1, 2], oneOnly, 1, 2, [
      { range: [1, 1], running: { vcpus: 1, endsIn: 2 } },
    ])!;
    expect(last).toMatchObject({ vcpus: 2, wait: true });
  });

  it('never picks a size outside the range or above what is free (random queues)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 0, max: 8 }),
        fc.integer({ min: 0, max: 10 }),
        (lo, extra, free, n) => {
          const range: [number, number] = [lo, lo + extra];
          const c = chooseSize(range, megahit, free, 8, waiting(n));
          if (free < lo) expect(c).toBeUndefined();
          else {
            // Nothing runs, so nothing frees up: it never waits.
            expect(c!.wait).toBeUndefined();
            expect(c!.vcpus).toBeGreaterThanOrEqual(lo);
            expect(c!.vcpus).toBeLessThanOrEqual(Math.min(range[1], free));
          }
        },
      ),
    );
  });
});

describe('expectedLeft', () => {
  it('what is left of the expected time; past it, the overrun again, at least a tenth', () => {
    expect(expectedLeft(40, 10)).toBe(30);
    expect(expectedLeft(40, 39.5)).toBe(0.5);
    // Just past its expected end: about to end, give or take the spread of run times.
    expect(expectedLeft(40, 40.2)).toBe(4);
    // Far past it: as long again as it has overrun.
    expect(expectedLeft(40, 70)).toBe(30);
  });

  it('a job past its expected end is waited for while that pays, not once it has overrun', () => {
    const scales = fitScaling([
      { vcpus: 1, seconds: 28 },
      { vcpus: 2, seconds: 16 },
    ])!;
    const running = (overrun: number): OtherJob[] => [
      { range: [1, 1], running: { vcpus: 1, endsIn: expectedLeft(10, 10 + overrun) } },
    ];
    expect(chooseSize([1, 2], scales, 1, 2, running(0.2))).toMatchObject({ vcpus: 2, wait: true });
    // 20 s past its end, the 12 s a second vCPU saves no longer pay for waiting.
    const late = chooseSize([1, 2], scales, 1, 2, running(20))!;
    expect(late.vcpus).toBe(1);
    expect(late.wait).toBeUndefined();
  });
});

describe('candidates and memory', () => {
  it('the ends and the whole numbers between', () => {
    expect(candidates([1, 4])).toEqual([1, 2, 3, 4]);
    expect(candidates([0.5, 2])).toEqual([0.5, 1, 2]);
    expect(candidates([2, 2])).toEqual([2]);
  });

  it('memory in proportion to the vCPUs chosen, the most that fits, never below the low end', () => {
    expect(memoryFor([2048, 8192], [1, 4], 1, 65536)).toBe(2048);
    expect(memoryFor([2048, 8192], [1, 4], 4, 65536)).toBe(8192);
    expect(memoryFor([2048, 8192], [1, 4], 4, 4096)).toBe(4096);
    expect(memoryFor([2048, 8192], [1, 4], 4, 1024)).toBeUndefined();
    expect(memoryFor([1024, 1024], [2, 2], 2, 4096)).toBe(1024);
  });
});
