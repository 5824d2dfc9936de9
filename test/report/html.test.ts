/**
 * The report page (src/report/html.ts) parsed as a browser parses it: names and reasons that
 * look like markup stay text, the data behind the page survives the trip, and the formats read
 * as people write them.
 */
import { describe, expect, it } from 'vitest';
import type { JobDetail } from '../../src/batch/types.js';
import { executionAttempts } from '../../src/report/attempts.js';
import {
  escapeHtml,
  formatMiB,
  formatSeconds,
  renderReport,
  reportData,
} from '../../src/report/html.js';
import { findAll, parsePage, text, tooltip } from './page.js';

const T = Date.parse('2026-12-06T03:00:00Z');
const HOSTILE_SAMPLE = '<img src=x onerror=alert(1)>';
const HOSTILE_STEP = 'qc"><script>alert(2)</script>';
const HOSTILE_REASON = '</script><script>alert(3)</script> & <!-- "quoted" \u2028';
const HOSTILE_PIPELINE = "p'<b>bold</b>";

function hostileJob(): JobDetail {
  return {
    jobArn: 'arn:aws:batch:local:000000000000:job/j1',
    jobName: `${HOSTILE_STEP}-${HOSTILE_SAMPLE}`,
    jobId: 'j1',
    jobQueue: 'q',
    status: 'FAILED',
    attempts: [
      {
        container: { exitCode: 137, reason: HOSTILE_REASON, logStreamName: '/w/j1.1.log' },
        startedAt: T + 1000,
        stoppedAt: T + 61_000,
        vcpus: 2,
        memoryMiB: 2048,
        cpuSeconds: 95.25,
        peakMemoryMiB: 2100.4,
      },
    ],
    createdAt: T,
    dependsOn: [],
    jobDefinition: 'd',
    parameters: {},
    container: { command: [], environment: [], resourceRequirements: [] },
    tags: {
      'strand:execution': 'run-1',
      'strand:step': HOSTILE_STEP,
      'strand:sample': HOSTILE_SAMPLE,
    },
  };
}

function page() {
  const info = {
    execution: 'run-1',
    pipeline: HOSTILE_PIPELINE,
    status: 'FAILED',
    startedAt: T,
    stoppedAt: T + 62_000,
    samples: [HOSTILE_SAMPLE],
    error: 'Strand.SamplesFailed',
    cause: HOSTILE_REASON,
  };
  const data = reportData(info, executionAttempts([hostileJob()], 'run-1'), T + 70_000);
  return parsePage(renderReport(data));
}

describe('strand report page', () => {
  it('every user string stays text: no element, script or attribute comes from one', () => {
    const p = page();
    const scripts = findAll(p.doc, (n) => n.tagName === 'script');
    expect(scripts.map((s) => s.attrs?.find((a) => a.name === 'id')?.value)).toEqual([
      'strand-report-data',
    ]);
    expect(findAll(p.doc, (n) => ['img', 'b'].includes(n.tagName!))).toEqual([]);
    expect(findAll(p.doc, (n) => (n.attrs ?? []).some((a) => a.name === 'onerror'))).toEqual([]);
    // Shown as written.
    const shown = text(p.doc);
    for (const s of [HOSTILE_SAMPLE, HOSTILE_STEP, HOSTILE_PIPELINE]) expect(shown).toContain(s);
    const [row] = p.attemptRows();
    expect(row).toMatchObject({
      Sample: HOSTILE_SAMPLE,
      Step: HOSTILE_STEP,
      Reason: HOSTILE_REASON,
    });
    // And the data behind the page comes back whole.
    expect(p.data.execution.pipeline).toBe(HOSTILE_PIPELINE);
    expect(p.data.attempts[0]).toMatchObject({ sample: HOSTILE_SAMPLE, reason: HOSTILE_REASON });
  });

  it("a bar's tooltip says what the attempt had and used", () => {
    const p = page();
    const [bar] = p.bars('step');
    expect(tooltip(bar).split('\n')).toEqual([
      `${HOSTILE_STEP} · ${HOSTILE_SAMPLE} · attempt 1 of 1 · FAILED`,
      `job ${HOSTILE_STEP}-${HOSTILE_SAMPLE} (j1)`,
      'waited 1 s, ran 1m 00s',
      'started 2026-12-06 03:00:01 UTC, stopped 2026-12-06 03:01:01 UTC',
      'CPU time 1m 35s · peak memory 2.05 GiB',
      'had 2 vCPU, 2 GiB',
      `exit 137: ${HOSTILE_REASON}`,
    ]);
    const [step] = p.stepRows();
    expect(step).toMatchObject({ 'Peak / had': '103%', 'CPU use': '79%', Failed: '1' });
  });

  it.each([
    [0.04, '0 s'],
    [3.25, '3.3 s'],
    [42.4, '42 s'],
    [185, '3m 05s'],
    [7800, '2h 10m'],
  ])('formatSeconds(%s) is %s', (s, want) => expect(formatSeconds(s)).toBe(want));

  it.each([
    [12.34, '12.3 MiB'],
    [1023.96, '1024 MiB'],
    [1536, '1.5 GiB'],
  ])('formatMiB(%s) is %s', (m, want) => expect(formatMiB(m)).toBe(want));

  it('escapeHtml escapes the five characters that matter', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe(
      '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;',
    );
  });
});
