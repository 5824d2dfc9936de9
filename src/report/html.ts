/**
 * `strand report`'s page: one self-contained HTML file (inline CSS and SVG; nothing is fetched,
 * no script runs), like Nextflow's `-with-report` and `-with-timeline` together. Every string
 * that came from a user (pipeline, sample and step names, reasons, job names) is escaped; the
 * data behind the page is also embedded as JSON (`#strand-report-data`), for scripts.
 */
import { AGGREGATE_SAMPLE } from '../results/sink.js';
import type { AttemptRow } from './attempts.js';
import {
  attemptSeconds,
  byJob,
  stepUsage,
  summarise,
  type ExecutionInfo,
  type ReportSummary,
  type Spread,
  type StepUsage,
} from './summary.js';

/** What the page shows, as embedded in it (`#strand-report-data`). */
export interface ReportData {
  /** The layout of this object; a change that removes or renames a field raises it. */
  version: 1;
  generatedAt: number;
  execution: ExecutionInfo;
  summary: ReportSummary;
  steps: StepUsage[];
  attempts: AttemptRow[];
}

/** The report's data: the execution, its attempts, their totals and per-step use. */
export function reportData(
  execution: ExecutionInfo,
  attempts: AttemptRow[],
  generatedAt: number,
): ReportData {
  return {
    version: 1,
    generatedAt,
    execution,
    summary: summarise(execution, attempts, generatedAt),
    steps: stepUsage(attempts, generatedAt),
    attempts,
  };
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text for HTML (element content and quoted attribute values alike). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** JSON to sit inside a <script> element: nothing in it can close the element or open a comment. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Seconds as people read them: 0.4 s, 12 s, 3m 05s, 2h 10m. */
export function formatSeconds(seconds: number): string {
  if (seconds < 10) return `${+seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) {
    const s = Math.round(seconds);
    return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  }
  const m = Math.round(seconds / 60);
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** MiB as people read them: 312.5 MiB, 3.25 GiB. */
export function formatMiB(mib: number): string {
  return mib < 1024 ? `${+mib.toFixed(1)} MiB` : `${+(mib / 1024).toFixed(2)} GiB`;
}

/** An instant, in UTC to the second. */
function formatTime(ms: number): string {
  return `${clock(ms)} UTC`;
}

/** An instant in UTC to the second, without the zone (for a column that names it). */
function clock(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

function sampleName(sample: string): string {
  return sample === AGGREGATE_SAMPLE ? '(all samples)' : sample;
}

function spreadText(s: Spread | undefined, format: (n: number) => string): string {
  if (!s) return '';
  if (s.min === s.max) return format(s.min);
  return `${format(s.min)} / ${format(s.median)} / ${format(s.max)}`;
}

const percent = (share: number) => `${Math.round(share * 100)}%`;

/**
 * When an attempt began to wait: its Batch job's submission, or the end of the attempt before
 * when that was later (a retry of the same Batch job waits from there).
 */
function queuedAt(a: AttemptRow, previous: AttemptRow | undefined): number {
  return Math.max(a.createdAt, previous?.stoppedAt ?? 0);
}

/** The tooltip of an attempt's bar: what it was, when, and what it had and used. */
function attemptTitle(a: AttemptRow, of: number, queued: number, now: number): string {
  const lines = [
    `${a.step} · ${sampleName(a.sample)} · ${a.cached ? 'cached' : `attempt ${a.attempt} of ${of}`} · ${a.status}`,
    `job ${a.jobName} (${a.jobId})`,
  ];
  if (a.cached) {
    lines.push(`answered from the cache at ${formatTime(a.createdAt)}; did not run`);
    return lines.join('\n');
  }
  if (a.startedAt !== undefined) {
    lines.push(
      `waited ${formatSeconds(Math.max(0, (a.startedAt - queued) / 1000))}, ran ${formatSeconds(attemptSeconds(a, now) ?? 0)}${a.stoppedAt === undefined ? ' so far' : ''}`,
      `started ${formatTime(a.startedAt)}${a.stoppedAt === undefined ? '' : `, stopped ${formatTime(a.stoppedAt)}`}`,
    );
  } else {
    lines.push(`submitted ${formatTime(a.createdAt)}; not started`);
  }
  const used = [
    a.cpuSeconds === undefined
      ? 'CPU time not measured'
      : `CPU time ${formatSeconds(a.cpuSeconds)}`,
    a.peakMemoryMiB === undefined
      ? 'peak memory not measured'
      : `peak memory ${formatMiB(a.peakMemoryMiB)}`,
  ];
  lines.push(used.join(' · '));
  if (a.vcpus !== undefined || a.memoryMiB !== undefined)
    lines.push(
      `had ${[a.vcpus === undefined ? '' : `${a.vcpus} vCPU`, a.memoryMiB === undefined ? '' : formatMiB(a.memoryMiB)].filter(Boolean).join(', ')}`,
    );
  if (a.exitCode !== undefined || a.reason)
    lines.push(
      [a.exitCode === undefined ? '' : `exit ${a.exitCode}`, a.reason ?? '']
        .filter(Boolean)
        .join(': '),
    );
  return lines.join('\n');
}

/** Tick spacing (ms) for a span, so that an axis has at most about eight ticks. */
function tickStep(spanMs: number): number {
  const steps = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
  ].map((s) => s * 1000);
  return steps.find((s) => spanMs / s <= 8) ?? Math.ceil(spanMs / 8 / 86_400_000) * 86_400_000;
}

function tickLabel(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return s % 60 === 0 ? `${s / 60}m` : `${Math.floor(s / 60)}m${s % 60}s`;
  return s % 3600 === 0
    ? `${s / 3600}h`
    : `${Math.floor(s / 3600)}h${Math.round((s % 3600) / 60)}m`;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

const WIDTH = 1100;
const LABEL = 250;
const ROW = 18;
const AXIS = 24;

/**
 * The timeline: a row per attempt under a heading per group (sample or step), each bar from
 * when it began to wait (lighter) through its start to its stop; a job the cache answered is a
 * diamond where it was answered.
 */
function timelineSvg(data: ReportData, by: 'sample' | 'step'): string {
  const now = data.generatedAt;
  const jobs = byJob(data.attempts);
  const t0 = Math.min(data.summary.startedAt, ...data.attempts.map((a) => a.createdAt));
  const t1 = Math.max(
    data.summary.stoppedAt,
    t0 + 1000,
    ...data.attempts.map((a) => a.stoppedAt ?? (a.status === 'RUNNING' ? now : a.createdAt)),
  );
  const plot = WIDTH - LABEL - 16;
  const x = (t: number) => LABEL + ((t - t0) / (t1 - t0)) * plot;
  const stepOrder = new Map(data.steps.map((s, i) => [s.step, i]));
  const sampleOrder = new Map(data.execution.samples.map((s, i) => [s, i]));
  const order = (key: string, which: 'sample' | 'step') =>
    which === 'step'
      ? (stepOrder.get(key) ?? Infinity)
      : key === AGGREGATE_SAMPLE
        ? Infinity
        : (sampleOrder.get(key) ?? data.execution.samples.length);
  const other = by === 'sample' ? 'step' : 'sample';
  const groups = new Map<string, AttemptRow[][]>();
  for (const job of jobs) {
    const key = job[0][by];
    const list = groups.get(key);
    if (list) list.push(job);
    else groups.set(key, [job]);
  }
  const sorted = [...groups].sort(([a], [b]) => order(a, by) - order(b, by) || a.localeCompare(b));
  const parts: string[] = [];
  let y = AXIS;
  for (const [group, groupJobs] of sorted) {
    groupJobs.sort(
      (a, b) =>
        order(a[0][other], other) - order(b[0][other], other) ||
        a[0][other].localeCompare(b[0][other]) ||
        a[0].createdAt - b[0].createdAt,
    );
    const name = by === 'sample' ? sampleName(group) : group;
    parts.push(
      `<text class="group" x="4" y="${y + 13}">${escapeHtml(truncate(name, 34))}<title>${escapeHtml(name)}</title></text>`,
      `<line class="group-rule" x1="0" x2="${WIDTH}" y1="${y + 0.5}" y2="${y + 0.5}"/>`,
    );
    y += ROW;
    for (const job of groupJobs) {
      job.forEach((a, i) => {
        const label = `${by === 'sample' ? a.step : sampleName(a.sample)}${job.length > 1 ? ` #${a.attempt}` : ''}`;
        const queued = queuedAt(a, job[i - 1]);
        const title = escapeHtml(attemptTitle(a, job.length, queued, now));
        const cls = a.cached ? 'cached' : a.status.toLowerCase();
        const mid = y + ROW / 2;
        let shape: string;
        if (a.cached) {
          const cx = x(a.createdAt);
          shape = `<path d="M${cx.toFixed(1)} ${mid - 5}l5 5l-5 5l-5 -5z"/>`;
        } else {
          const start = a.startedAt;
          const stop =
            a.stoppedAt ?? (a.status === 'RUNNING' || a.status === 'WAITING' ? now : start);
          const waitEnd = start ?? stop ?? now;
          const rects = [
            `<rect class="wait" x="${x(queued).toFixed(1)}" y="${mid - 3}" width="${Math.max(1, x(waitEnd) - x(queued)).toFixed(1)}" height="6"/>`,
          ];
          if (start !== undefined)
            rects.push(
              `<rect class="run" x="${x(start).toFixed(1)}" y="${mid - 6}" width="${Math.max(2, x(stop ?? now) - x(start)).toFixed(1)}" height="12"/>`,
            );
          shape = rects.join('');
        }
        parts.push(
          `<g class="bar ${cls}" data-job="${escapeHtml(a.jobId)}" data-attempt="${a.attempt}"><title>${title}</title>` +
            `<text class="label" x="16" y="${y + 13}">${escapeHtml(truncate(label, 32))}</text>${shape}</g>`,
        );
        y += ROW;
      });
    }
  }
  const ticks: string[] = [];
  const step = tickStep(t1 - t0);
  for (let t = 0; t0 + t <= t1; t += step) {
    const tx = x(t0 + t).toFixed(1);
    ticks.push(
      `<line class="tick" x1="${tx}" x2="${tx}" y1="${AXIS - 4}" y2="${y}"/>`,
      `<text class="tick-label" x="${tx}" y="${AXIS - 8}">${tickLabel(t)}</text>`,
    );
  }
  if (parts.length === 0)
    parts.push(`<text class="label" x="16" y="${AXIS + 13}">no jobs were submitted</text>`);
  const height = Math.max(y, AXIS + ROW) + 4;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="timeline-svg" viewBox="0 0 ${WIDTH} ${height}" width="${WIDTH}" height="${height}" role="img" aria-label="timeline by ${by}">` +
    `${ticks.join('')}${parts.join('')}</svg>`
  );
}

/** Peak memory against what the step's attempts had: the range of peaks, the median marked. */
function memoryBar(s: StepUsage): string {
  if (!s.peakMemoryMiB) return '';
  const had = s.memoryMiB?.max ?? 0;
  const scale = Math.max(had, s.peakMemoryMiB.max) || 1;
  const w = 120;
  const at = (v: number) => ((v / scale) * w).toFixed(1);
  const over = had > 0 && s.peakMemoryMiB.max > had ? ' over' : '';
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="membar${over}" viewBox="0 0 ${w} 10" width="${w}" height="10">` +
    (had > 0 ? `<rect class="had" x="0" y="0" width="${at(had)}" height="10"/>` : '') +
    `<rect class="peak" x="${at(s.peakMemoryMiB.min)}" y="2" width="${Math.max(1, Number(at(s.peakMemoryMiB.max)) - Number(at(s.peakMemoryMiB.min))).toFixed(1)}" height="6"/>` +
    `<rect class="median" x="${at(s.peakMemoryMiB.median)}" y="0" width="1.5" height="10"/></svg>`
  );
}

function stepsTable(steps: StepUsage[]): string {
  const head = [
    'Step',
    'Jobs',
    'Cached',
    'Failed',
    'Attempts',
    'Duration',
    'CPU time',
    'CPU use',
    'vCPUs',
    'Peak memory',
    'Memory had',
    'Peak / had',
    '',
  ];
  const rows = steps.map((s) => {
    const cells = [
      `<th scope="row">${escapeHtml(s.step)}</th>`,
      `<td class="num">${s.jobs}</td>`,
      `<td class="num">${s.cached}</td>`,
      `<td class="num">${s.failed}</td>`,
      `<td class="num">${s.attempts}</td>`,
      `<td class="num">${spreadText(s.seconds, formatSeconds)}</td>`,
      `<td class="num">${spreadText(s.cpuSeconds, formatSeconds)}</td>`,
      `<td class="num">${s.cpuUse === undefined ? '' : percent(s.cpuUse)}</td>`,
      `<td class="num">${spreadText(s.vcpus, (n) => String(n))}</td>`,
      `<td class="num">${spreadText(s.peakMemoryMiB, formatMiB)}</td>`,
      `<td class="num">${spreadText(s.memoryMiB, formatMiB)}</td>`,
      `<td class="num${s.peakShare !== undefined && s.peakShare > 1 ? ' over' : ''}">${s.peakShare === undefined ? '' : percent(s.peakShare)}</td>`,
      `<td>${memoryBar(s)}</td>`,
    ];
    return `<tr data-step="${escapeHtml(s.step)}">${cells.join('')}</tr>`;
  });
  return (
    `<table id="steps"><thead><tr>${head.map((h) => `<th scope="col">${h}</th>`).join('')}</tr></thead>` +
    `<tbody>${rows.join('')}</tbody></table>`
  );
}

function attemptsTable(data: ReportData): string {
  const now = data.generatedAt;
  const head = [
    'Sample',
    'Step',
    'Attempt',
    'Status',
    'Submitted (UTC)',
    'Started',
    'Stopped',
    'Duration',
    'vCPUs',
    'Memory',
    'CPU time',
    'Peak memory',
    'Exit',
    'Reason',
    'Job',
  ];
  const rows = byJob(data.attempts)
    .flat()
    .map((a) => {
      const seconds = attemptSeconds(a, now);
      const cells = [
        escapeHtml(sampleName(a.sample)),
        escapeHtml(a.step),
        a.cached ? 'cached' : String(a.attempt),
        `<span class="status ${a.cached ? 'cached' : a.status.toLowerCase()}">${a.cached ? 'CACHED' : a.status}</span>`,
        clock(a.createdAt),
        a.startedAt === undefined ? '' : clock(a.startedAt),
        a.stoppedAt === undefined ? '' : clock(a.stoppedAt),
        seconds === undefined ? '' : formatSeconds(seconds),
        a.vcpus === undefined ? '' : String(a.vcpus),
        a.memoryMiB === undefined ? '' : formatMiB(a.memoryMiB),
        a.cpuSeconds === undefined ? '' : formatSeconds(a.cpuSeconds),
        a.peakMemoryMiB === undefined ? '' : formatMiB(a.peakMemoryMiB),
        a.exitCode === undefined ? '' : String(a.exitCode),
        escapeHtml(a.reason ?? ''),
        `<code title="${escapeHtml(a.jobId)}">${escapeHtml(truncate(a.jobId, 9))}</code>`,
      ];
      // Times and numbers on one line, the numbers right-aligned.
      const cls = (i: number) =>
        i >= 4 && i <= 6 ? ' class="time"' : i >= 7 && i <= 12 ? ' class="num"' : '';
      return `<tr data-job="${escapeHtml(a.jobId)}" data-attempt="${a.attempt}"${a.cached ? ' data-cached="true"' : ''}>${cells.map((c, i) => `<td${cls(i)}>${c}</td>`).join('')}</tr>`;
    });
  return (
    `<table id="attempt-table"><thead><tr>${head.map((h) => `<th scope="col">${h}</th>`).join('')}</tr></thead>` +
    `<tbody>${rows.join('')}</tbody></table>`
  );
}

function summaryList(data: ReportData): string {
  const { execution: e, summary: s } = data;
  const items: [string, string][] = [
    ['Pipeline', escapeHtml(e.pipeline)],
    ['Execution', escapeHtml(e.execution)],
    ['Status', `<span class="status ${e.status.toLowerCase()}">${escapeHtml(e.status)}</span>`],
    ['Started', formatTime(s.startedAt)],
    [
      'Ended',
      e.stoppedAt === undefined
        ? `not yet (as of ${formatTime(s.stoppedAt)})`
        : formatTime(s.stoppedAt),
    ],
    ['Duration', formatSeconds(s.durationMs / 1000)],
    ['Samples', String(e.samples.length)],
    [
      'Jobs',
      `${s.jobs}: ${s.ran} ran, ${s.cached} cached, ${s.failed} failed` +
        (s.running + s.waiting > 0 ? `, ${s.running} running, ${s.waiting} waiting` : ''),
    ],
    [
      'Attempts',
      `${s.attempts}${s.retries > 0 ? ` (${s.retries} ${s.retries === 1 ? 'retry' : 'retries'})` : ''}`,
    ],
    ['CPU time', `${(s.cpuSeconds / 3600).toFixed(3)} CPU hours (${formatSeconds(s.cpuSeconds)})`],
    [
      'Largest peak memory',
      s.peakMemoryMiB === undefined ? 'not measured' : formatMiB(s.peakMemoryMiB),
    ],
  ];
  if (e.error) items.push(['Error', escapeHtml(e.error)]);
  if (e.cause) items.push(['Cause', `<pre>${escapeHtml(e.cause)}</pre>`]);
  return `<dl id="summary-list">${items.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>`;
}

const CSS = `
:root{--ok:#2e7d32;--fail:#c62828;--run:#1565c0;--wait:#9e9e9e;--cached:#6a1b9a;--fg:#1d1d1f;--muted:#666;--rule:#e3e3e3}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);margin:0;padding:24px 32px;max-width:1300px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid var(--rule);padding-bottom:4px}
.sub{color:var(--muted);margin:0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 18px;margin:0}dt{color:var(--muted)}dd{margin:0}
pre{margin:0;white-space:pre-wrap;font-size:12px}
.status{font-weight:600}.status.succeeded{color:var(--ok)}.status.failed,.status.timed_out,.status.aborted{color:var(--fail)}
.status.running{color:var(--run)}.status.waiting{color:var(--wait)}.status.cached{color:var(--cached)}
table{border-collapse:collapse;font-size:13px;width:100%}th,td{padding:3px 8px;border-bottom:1px solid var(--rule);text-align:left;vertical-align:top}
thead th{font-weight:600;background:#fafafa;position:sticky;top:0}td.num{text-align:right;white-space:nowrap}td.time{white-space:nowrap}td.over{color:var(--fail);font-weight:600}
code{font-size:12px}
.switch{margin:0 0 8px}.switch label{margin-right:14px;cursor:pointer}
.timeline{overflow-x:auto}.timeline.by-step{display:none}
#by-step:checked~.timeline.by-step{display:block}#by-step:checked~.timeline.by-sample{display:none}
.timeline-svg{font-size:12px}
.timeline-svg .group{font-weight:600}.timeline-svg .group-rule{stroke:var(--rule)}
.timeline-svg .tick{stroke:#eee}.timeline-svg .tick-label{fill:var(--muted);text-anchor:middle;font-size:11px}
.timeline-svg .wait{fill:#d0d0d0}
.bar.succeeded .run{fill:var(--ok)}.bar.failed .run{fill:var(--fail)}.bar.running .run{fill:var(--run)}.bar.waiting .wait{fill:var(--wait)}
.bar.cached path{fill:var(--cached)}.bar:hover .run,.bar:hover path{opacity:.75}.bar:hover .label{font-weight:600}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:middle}
.membar .had{fill:#e8eef7}.membar .peak{fill:#5c8bd6}.membar .median{fill:#1d3f7a}.membar.over .peak{fill:var(--fail)}
`;

/** The whole page. */
export function renderReport(data: ReportData): string {
  const e = data.execution;
  const legend =
    '<div class="legend">' +
    '<span><i style="background:#d0d0d0"></i>waiting</span>' +
    '<span><i style="background:var(--ok)"></i>succeeded</span>' +
    '<span><i style="background:var(--fail)"></i>failed</span>' +
    '<span><i style="background:var(--run)"></i>running</span>' +
    '<span><i style="background:var(--cached)"></i>from the cache</span>' +
    '</div>';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="Strand">
<title>${escapeHtml(`${e.pipeline}: ${e.execution}`)} — Strand report</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>${escapeHtml(e.pipeline)} <span class="status ${e.status.toLowerCase()}">${escapeHtml(e.status)}</span></h1>
<p class="sub">execution ${escapeHtml(e.execution)} · report made ${formatTime(data.generatedAt)}</p>
</header>
<section id="summary">
<h2>Summary</h2>
${summaryList(data)}
</section>
<section id="timeline">
<h2>Timeline</h2>
<p class="sub">One bar per attempt: from when it began to wait (grey) through its run. Hover a bar for its CPU time and peak memory.</p>
<input type="radio" name="group" id="by-sample" checked><label for="by-sample">by sample</label>
<input type="radio" name="group" id="by-step"><label for="by-step">by step</label>
${legend}
<div class="timeline by-sample">${timelineSvg(data, 'sample')}</div>
<div class="timeline by-step">${timelineSvg(data, 'step')}</div>
</section>
<section id="resources">
<h2>Resources per step</h2>
<p class="sub">Over the attempts that ran: min / median / max across samples. Peak memory is what all of an attempt's processes used together; “memory had” is what it was given.</p>
${stepsTable(data.steps)}
</section>
<section id="attempts">
<h2>Attempts</h2>
${attemptsTable(data)}
</section>
<script type="application/json" id="strand-report-data">${scriptJson(data)}</script>
</body>
</html>
`;
}
