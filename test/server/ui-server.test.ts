/**
 * The dashboard's API on a real `strand server` (listening on a loopback port, its engine
 * running jobs as local processes): a pipeline started with POST /ui/api/runs and followed to
 * its end through the live event stream, its sample × step matrix and attempts, outputs and
 * results; a failed job's log; stop and redrive; why jobs wait when a compute environment is
 * too small; and the same API beside another engine that owns the home.
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CreateComputeEnvironmentCommand,
  CreateJobQueueCommand,
  RegisterJobDefinitionCommand,
  SubmitJobCommand,
  TerminateJobCommand,
} from '@aws-sdk/client-batch';
import { afterEach, describe, expect, it } from 'vitest';
import { openStrand, type Strand } from '../../src/app/index.js';
import { startStrandServer, type StrandServerHandle } from '../../src/server/serve.js';
import type {
  ActionResponse,
  BatchResponse,
  ExecutionDetail,
  ExecutionsResponse,
  ExecutionSummary,
  HistoryResponse,
  JobDetailResponse,
  JobLogResponse,
  OutputsResponse,
  PipelinesResponse,
  ResultsResponse,
  StartRunResponse,
  UiEventName,
} from '../../src/server/ui/types.js';
import { heldPipeline, inlinePipeline, releaseHolders, strand } from '../pipeline/cli.js';
import { batchClient, openSmall, waitUntil } from './helpers.js';

const cleanup: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  releaseHolders();
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** Two samples through two steps; `greet` fails for a sample called `bad` (exit 3). */
const GREETINGS = (samples: string[]) => [
  'name: greetings',
  `samples: [ ${samples.map((s) => `{ id: ${s} }`).join(', ')} ]`,
  'defaults: { vcpus: 0.25, memory: 64MiB }',
  'steps:',
  '  greet:',
  '    image: debian:bookworm-slim',
  `    command: [sh, -c, 'if [ "$$1" = bad ]; then echo "cannot greet $$1: no such person" >&2; exit 3; fi; printf "sample\\tgreeting\\n%s\\thello-%s\\n" "$$1" "$$1" > greet.tsv', sh, $SAMPLE]`,
  '    outputs: { GREETING: greet.tsv }',
  '  shout:',
  '    image: debian:bookworm-slim',
  `    command: [sh, -c, 'tr a-z A-Z < "$$1"', sh, $GREETING]`,
  '    stdout: shout.txt',
  '    outputs: { SHOUT: shout.txt }',
  'results:',
  '  greet: { from: greet.tsv, format: tsv }',
];

interface SseEvent {
  event: string;
  id?: string;
  data: unknown;
}

/** A signed-in client of a running server, and its live event streams. */
async function uiClient(server: StrandServerHandle) {
  const base = server.endpoint;
  const signIn = await fetch(`${base}/ui/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      accessKeyId: server.credentials.accessKeyId,
      secretAccessKey: server.credentials.secretAccessKey,
    }),
  });
  expect(signIn.status).toBe(200);
  const cookie = (signIn.headers.get('set-cookie') ?? '').split(';')[0];
  const call = async <T>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T; res: Response }> => {
    const res = await fetch(`${base}/ui/api${path}`, {
      method,
      headers: { cookie, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // CSV and the like stay text
    }
    return { status: res.status, body: parsed as T, res };
  };
  const get = async <T>(path: string): Promise<T> => {
    const r = await call<T>('GET', path);
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  /** Opens the event stream; its events are collected as they come. */
  const events = async (lastEventId?: string) => {
    const abort = new AbortController();
    const res = await fetch(`${base}/ui/api/events`, {
      headers: { cookie, ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const seen: SseEvent[] = [];
    let comments = 0;
    const reading = (async () => {
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return 'ended';
          buffer += decoder.decode(value, { stream: true });
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const e: Partial<SseEvent> & { lines: string[] } = { lines: [] };
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) comments++;
              else if (line.startsWith('event: ')) e.event = line.slice(7);
              else if (line.startsWith('id: ')) e.id = line.slice(4);
              else if (line.startsWith('data: ')) e.lines.push(line.slice(6));
            }
            if (e.event)
              seen.push({ event: e.event, id: e.id, data: JSON.parse(e.lines.join('\n')) });
          }
        }
      } catch {
        return 'aborted';
      }
    })();
    cleanup.push(() => abort.abort());
    return {
      seen,
      comments: () => comments,
      reading,
      close: () => abort.abort(),
      /** The first event named `name` for which `match` holds. */
      waitFor: <T>(name: UiEventName, match: (data: T) => boolean, timeoutMs = 60_000) =>
        waitUntil(
          `a "${name}" event`,
          () => seen.find((e) => e.event === name && match(e.data as T)),
          timeoutMs,
        ),
    };
  };
  return { base, cookie, call, get, events };
}

async function serverFor(home: string, pipelines: string[] = [], open = openSmall(home)) {
  const log: string[] = [];
  const server = await startStrandServer({
    home,
    port: 0,
    open,
    pipelines,
    log: (l) => log.push(l),
  });
  cleanup.push(() => server.close());
  return { server, log };
}

const ended = (e: ExecutionSummary) => e.status !== 'RUNNING';

describe('a pipeline run from the dashboard', () => {
  it('starts with POST /ui/api/runs, is followed to SUCCEEDED through the event stream, and shows its matrix, attempts, outputs and results', async () => {
    const p = inlinePipeline(GREETINGS(['ann', 'bob']));
    const { server } = await serverFor(p.home, [p.file]);
    const ui = await uiClient(server);

    const { pipelines } = await ui.get<PipelinesResponse>('/pipelines');
    expect(pipelines).toEqual([
      expect.objectContaining({
        name: 'greetings',
        file: p.file,
        source: 'flag',
        samples: [
          { id: 'ann', values: {} },
          { id: 'bob', values: {} },
        ],
      }),
    ]);
    expect(pipelines[0].steps.map((s) => [s.name, s.scope, s.needs])).toEqual([
      ['greet', 'sample', []],
      ['shout', 'sample', ['greet']],
    ]);

    const live = await ui.events();
    await live.waitFor('hello', () => true);
    const started = await ui.call<StartRunResponse>('POST', '/runs', {
      pipeline: 'greetings',
      name: 'greet-1',
    });
    expect(started.status).toBe(201);
    expect(started.body.execution).toMatchObject({
      name: 'greet-1',
      pipeline: 'greetings',
      stateMachine: 'greetings',
    });

    // Followed through the stream: the execution's end, its jobs on the way, and its history.
    const done = await live.waitFor<ExecutionSummary>(
      'execution',
      (e) => e.name === 'greet-1' && ended(e),
    );
    expect((done.data as ExecutionSummary).status).toBe('SUCCEEDED');
    const jobEvents = live.seen.filter((e) => e.event === 'job');
    expect(jobEvents.some((e) => (e.data as { status: string }).status === 'SUCCEEDED')).toBe(true);
    expect(
      live.seen.some(
        (e) => e.event === 'history' && (e.data as { execution: string }).execution === 'greet-1',
      ),
    ).toBe(true);
    // Ids rise, so a client that comes back says where it was.
    const seqs = live.seen.filter((e) => e.id).map((e) => Number(e.id!.split('.')[1]));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));

    const listed = await ui.get<ExecutionsResponse>('/executions?pipeline=greetings');
    expect(listed.executions).toEqual([
      expect.objectContaining({ name: 'greet-1', status: 'SUCCEEDED', jobs: { SUCCEEDED: 4 } }),
    ]);
    expect((await ui.get<ExecutionsResponse>('/executions?status=FAILED')).executions).toEqual([]);

    const detail = await ui.get<ExecutionDetail>('/executions/greet-1');
    expect(detail.redrivable).toBe(false);
    const run = detail.pipelineRun!;
    expect(run.pipeline).toBe('greetings');
    expect(run.matrix.samples).toEqual(['ann', 'bob']);
    expect(run.matrix.steps).toEqual(['greet', 'shout']);
    expect(run.matrix.cells).toHaveLength(4);
    for (const cell of run.matrix.cells) {
      expect(cell).toMatchObject({ status: 'SUCCEEDED', cached: false, attempts: 1, exitCode: 0 });
      expect(cell.jobId).toMatch(/^[0-9a-f-]{36}$/);
      expect(cell.durationMs).toBeGreaterThanOrEqual(0);
    }
    expect(run.attempts).toHaveLength(4);
    expect(run.attempts.map((a) => `${a.sample}/${a.step}/${a.status}`).sort()).toEqual([
      'ann/greet/SUCCEEDED',
      'ann/shout/SUCCEEDED',
      'bob/greet/SUCCEEDED',
      'bob/shout/SUCCEEDED',
    ]);
    expect(detail.jobList).toHaveLength(4);
    // The graph: the Map over samples succeeded, with the steps inside it.
    const samples = detail.graph.nodes.find((n) => n.name === 'Samples')!;
    expect(samples).toMatchObject({ type: 'Map', status: 'succeeded' });
    const inner = samples.subgraphs![0].nodes;
    const greet = inner.find(
      (n) =>
        n.type === 'Task' && /batch:submitJob/.test(n.resource ?? '') && n.runs?.succeeded === 2,
    );
    expect(greet).toBeDefined();
    expect(
      detail.graph.nodes.every((n) => ['succeeded', 'not-run', 'caught'].includes(n.status)),
    ).toBe(true);

    // History, a page at a time.
    const first = await ui.get<HistoryResponse>('/executions/greet-1/history?limit=5');
    expect(first.events.map((e) => e.id)).toEqual([1, 2, 3, 4, 5]);
    expect(first.events[0].type).toBe('ExecutionStarted');
    expect(first.more).toBe(true);
    const rest = await ui.get<HistoryResponse>(
      `/executions/greet-1/history?after=${first.lastEventId}`,
    );
    expect(rest.events[0].id).toBe(6);
    expect(rest.events.at(-1)!.type).toBe('ExecutionSucceeded');
    expect(rest.more).toBe(false);
    expect(rest.lastEventId).toBe(detail.lastEventId);

    // A job, and its log.
    const cell = run.matrix.cells.find((c) => c.sample === 'ann' && c.step === 'shout')!;
    const job = await ui.get<JobDetailResponse>(`/jobs/${cell.jobId}`);
    expect(job).toMatchObject({
      status: 'SUCCEEDED',
      execution: 'greet-1',
      sample: 'ann',
      step: 'shout',
    });
    expect(job.attemptList).toEqual([expect.objectContaining({ attempt: 1, exitCode: 0 })]);
    expect(job.waiting).toBeUndefined();

    // Outputs: the manifest, each file with its size and sha256 as stored.
    const out = await ui.get<OutputsResponse>('/outputs?pipeline=greetings&sample=bob&step=greet');
    expect(out.manifest).toMatchObject({ status: 'SUCCEEDED', execution: 'greet-1', exitCode: 0 });
    const greeting = out.manifest!.outputs.find((o) => o.name === 'GREETING')!;
    expect(greeting.files).toHaveLength(1);
    const stored = readFileSync(fileURLToPath(greeting.location));
    expect(stored.toString()).toBe('sample\tgreeting\nbob\thello-bob\n');
    expect(greeting.files[0]).toEqual({
      path: greeting.files[0].path,
      size: stored.length,
      sha256: createHash('sha256').update(stored).digest('hex'),
    });
    const unknownStep = await ui.call<{ suggestion?: string }>(
      'GET',
      '/outputs?pipeline=greetings&sample=bob&step=gret',
    );
    expect(unknownStep.status).toBe(404);
    expect(unknownStep.body.suggestion).toBe('greet');

    // Results: rows as JSON, and the same as a CSV download.
    const results = await ui.get<ResultsResponse>('/results?pipeline=greetings&step=greet');
    expect(results.rows.map((r) => [r.sample, r.status]).sort()).toEqual([
      ['ann', 'SUCCEEDED'],
      ['bob', 'SUCCEEDED'],
    ]);
    const csv = await ui.call<string>('GET', '/results?pipeline=greetings&format=csv');
    expect(csv.status).toBe(200);
    expect(csv.res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(csv.res.headers.get('content-disposition')).toBe(
      'attachment; filename="strand-results-greetings.csv"',
    );
    const lines = csv.body.trim().split('\n');
    expect(lines[0].split(',').slice(0, 4)).toEqual(['execution', 'sample', 'step', 'status']);
    expect(
      lines
        .slice(1)
        .map((l) => l.split(',').slice(0, 4).join(','))
        .sort(),
    ).toEqual([
      'greet-1,ann,greet,SUCCEEDED',
      'greet-1,ann,shout,SUCCEEDED',
      'greet-1,bob,greet,SUCCEEDED',
      'greet-1,bob,shout,SUCCEEDED',
    ]);
    const metrics = await ui.get<ResultsResponse>(
      '/results?pipeline=greetings&step=greet&metrics=true',
    );
    expect(metrics.rows.map((r) => [r.sample, r.greeting]).sort()).toEqual([
      ['ann', 'hello-ann'],
      ['bob', 'hello-bob'],
    ]);
    const typo = await ui.call<{ suggestion?: string }>('GET', '/results?pipeline=greeting');
    expect(typo.status).toBe(404);
    expect(typo.body.suggestion).toBe('greetings');
  }, 120_000);

  it('shows a failed job’s log, and redrives the run', async () => {
    const p = inlinePipeline(GREETINGS(['good', 'bad']));
    const { server } = await serverFor(p.home, [p.file]);
    const ui = await uiClient(server);
    const live = await ui.events();
    const started = await ui.call<StartRunResponse>('POST', '/runs', {
      pipeline: p.file,
      name: 'greet-bad',
    });
    expect(started.status).toBe(201);
    const done = await live.waitFor<ExecutionSummary>(
      'execution',
      (e) => e.name === 'greet-bad' && ended(e),
    );
    expect((done.data as ExecutionSummary).status).toBe('FAILED');

    const detail = await ui.get<ExecutionDetail>('/executions/greet-bad');
    expect(detail.redrivable).toBe(true);
    const cells = Object.fromEntries(
      detail.pipelineRun!.matrix.cells.map((c) => [`${c.sample}/${c.step}`, c]),
    );
    expect(cells['good/greet'].status).toBe('SUCCEEDED');
    expect(cells['good/shout'].status).toBe('SUCCEEDED');
    expect(cells['bad/greet']).toMatchObject({ status: 'FAILED', exitCode: 3 });
    expect(['NOT_RUN', 'SKIPPED']).toContain(cells['bad/shout'].status);
    expect(detail.pipelineRun!.attempts.find((a) => a.sample === 'bad')).toMatchObject({
      status: 'FAILED',
      exitCode: 3,
    });

    // In the graph, the failed job's Task was caught (its Catch syncs the partial results)
    // for one sample, and succeeded for the other.
    const samplesMap = detail.graph.nodes.find((n) => n.name === 'Samples')!;
    const greetTask = samplesMap.subgraphs![0].nodes.find(
      (n) =>
        n.type === 'Task' && /batch:submitJob/.test(n.resource ?? '') && n.name.includes('greet'),
    )!;
    expect(greetTask).toMatchObject({
      status: 'caught',
      runs: { entered: 2, succeeded: 1, caught: 1, failed: 0, running: 0 },
    });
    expect(greetTask.id).toBe(`Samples/${greetTask.name}`);
    expect(samplesMap.subgraphs![0].edges).toContainEqual(
      expect.objectContaining({ from: greetTask.id, kind: 'Catch', label: 'States.ALL' }),
    );

    const log = await ui.get<JobLogResponse>(`/jobs/${cells['bad/greet'].jobId}/log`);
    expect(log.text).toContain('cannot greet bad: no such person');
    expect(log.complete).toBe(true);
    expect(log.nextOffset).toBe(log.size);
    // Read on from where it ended: nothing more.
    const after = await ui.get<JobLogResponse>(
      `/jobs/${cells['bad/greet'].jobId}/log?offset=${log.nextOffset}`,
    );
    expect(after).toMatchObject({ text: '', complete: true, offset: log.nextOffset });
    // A piece of it from an offset.
    const piece = await ui.get<JobLogResponse>(`/jobs/${cells['bad/greet'].jobId}/log?offset=7`);
    expect(piece.text).toBe(Buffer.from(log.text).subarray(7).toString());
    const past = await ui.call(
      'GET',
      `/jobs/${cells['bad/greet'].jobId}/log?offset=${log.size + 100}`,
    );
    expect(past.status).toBe(400);

    // Redriven: it runs again (the failed sample fails again), counted as a redrive.
    const redriven = await ui.call<ActionResponse>('POST', '/executions/greet-bad/redrive', {});
    expect(redriven.status).toBe(200);
    expect(redriven.body.execution.redriveCount).toBe(1);
    await live.waitFor<ExecutionSummary>(
      'execution',
      (e) => e.name === 'greet-bad' && e.redriveCount === 1 && ended(e),
    );
    const again = await ui.get<ExecutionDetail>('/executions/greet-bad');
    expect(again).toMatchObject({ status: 'FAILED', redriveCount: 1 });
    const history = await ui.get<HistoryResponse>('/executions/greet-bad/history');
    expect(history.events.some((e) => e.type === 'ExecutionRedriven')).toBe(true);
    // A run that is not running cannot be stopped.
    const stop = await ui.call('POST', '/executions/greet-bad/stop', {});
    expect(stop.status).toBe(409);
  }, 120_000);

  it('stops a running run, and redrives it to the end', async () => {
    const held = heldPipeline('held');
    const home = join(held.dir, 'home');
    const { server } = await serverFor(home, [held.file]);
    const ui = await uiClient(server);
    const live = await ui.events();
    const started = await ui.call<StartRunResponse>('POST', '/runs', {
      pipeline: 'held',
      name: 'held-1',
    });
    expect(started.status).toBe(201);
    await live.waitFor<{ status: string; execution?: string }>(
      'job',
      (j) => j.execution === 'held-1' && j.status === 'RUNNING',
    );
    const stopped = await ui.call<ActionResponse>('POST', '/executions/held-1/stop', {
      error: 'Stopped',
      cause: 'from the dashboard',
    });
    expect(stopped.status).toBe(200);
    await live.waitFor<ExecutionSummary>(
      'execution',
      (e) => e.name === 'held-1' && e.status === 'ABORTED',
    );
    const detail = await ui.get<ExecutionDetail>('/executions/held-1');
    expect(detail).toMatchObject({
      status: 'ABORTED',
      error: 'Stopped',
      cause: 'from the dashboard',
      redrivable: true,
    });
    // Its jobs end too.
    await waitUntil('the held jobs to end', async () =>
      (await ui.get<ExecutionDetail>('/executions/held-1')).jobList.every(
        (j) => j.status === 'FAILED' || j.status === 'SUCCEEDED',
      ),
    );

    held.release();
    const redriven = await ui.call<ActionResponse>('POST', '/executions/held-1/redrive', {});
    expect(redriven.status).toBe(200);
    const done = await live.waitFor<ExecutionSummary>(
      'execution',
      (e) => e.name === 'held-1' && e.redriveCount === 1 && ended(e),
    );
    expect((done.data as ExecutionSummary).status).toBe('SUCCEEDED');
  }, 120_000);
});

describe('the live event stream', () => {
  it('replays what a client missed from its Last-Event-ID, and tells one it cannot serve to reload', async () => {
    const p = inlinePipeline(GREETINGS(['ann']));
    const { server } = await serverFor(p.home, [p.file]);
    const ui = await uiClient(server);
    const first = await ui.events();
    const hello = await first.waitFor('hello', () => true);
    expect(hello.id).toMatch(/^[A-Za-z0-9_-]+\.\d+$/);
    expect(
      await ui.call('POST', '/runs', { pipeline: 'greetings', name: 'replayed' }),
    ).toMatchObject({ status: 201 });
    const firstEnd = await first.waitFor<ExecutionSummary>(
      'execution',
      (e) => e.name === 'replayed' && ended(e),
    );
    first.close();
    expect(await first.reading).toBe('aborted');

    // Back from where it was at hello: every event since, in order, and nothing else.
    const again = await ui.events(hello.id);
    const replayedEnd = await again.waitFor<ExecutionSummary>(
      'execution',
      (e) => e.name === 'replayed' && ended(e),
    );
    expect(replayedEnd.id).toBe(firstEnd.id);
    const missed = first.seen.filter((e) => e.id && e.id !== hello.id).map((e) => e.id);
    expect(
      again.seen
        .filter((e) => e.id)
        .map((e) => e.id)
        .slice(0, missed.length),
    ).toEqual(missed);
    again.close();

    for (const id of ['someone-else.3', 'garbage', `${hello.id!.split('.')[0]}.999999`]) {
      const stale = await ui.events(id);
      const reload = await stale.waitFor<{ reason: string }>('reload', () => true);
      expect(typeof (reload.data as { reason: string }).reason).toBe('string');
      stale.close();
    }
  }, 120_000);

  it('ends its streams when the server stops', async () => {
    const p = inlinePipeline(GREETINGS(['ann']));
    const { server } = await serverFor(p.home);
    const ui = await uiClient(server);
    const live = await ui.events();
    await live.waitFor('hello', () => true);
    await server.close();
    expect(await live.reading).toMatch(/ended|aborted/);
  });

  it('refuses sign-ins from an address after 10 failed ones, naming it', async () => {
    const p = inlinePipeline(GREETINGS(['ann']));
    const { server } = await serverFor(p.home);
    const attempt = () =>
      fetch(`${server.endpoint}/ui/api/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ accessKeyId: 'AKSTWRONGWRONGWRONG1', secretAccessKey: 'guess' }),
      });
    for (let i = 0; i < 10; i++) expect((await attempt()).status).toBe(401);
    const limited = await attempt();
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await limited.json()) as { message: string }).message).toMatch(
      /too many failed sign-ins from (127\.0\.0\.1|::1|::ffff:127\.0\.0\.1): try again in \d+ s/,
    );
  });
});

describe('beside another engine', () => {
  it('starts a run through the engine that owns the home, and follows it there', async () => {
    const p = inlinePipeline(GREETINGS(['ann', 'bob']));
    // This process's other engine owns the home; the server only follows it.
    const owner: Strand = openStrand({ home: p.home, batch: { maxvCpus: 4, memoryMiB: 4096 } });
    cleanup.push(() => owner.engine.close());
    const { server, log } = await serverFor(p.home, [p.file]);
    expect(server.home.owner).toBe(false);
    expect(log.join('\n')).toMatch(/another Strand engine .* owns/);
    const ui = await uiClient(server);
    const live = await ui.events();
    const hello = await live.waitFor<{ owner: boolean }>('hello', () => true);
    expect((hello.data as { owner: boolean }).owner).toBe(false);
    const started = await ui.call<StartRunResponse>('POST', '/runs', {
      pipeline: 'greetings',
      name: 'handed',
    });
    expect(started.status).toBe(201);
    const done = await live.waitFor<ExecutionSummary>(
      'execution',
      (e) => e.name === 'handed' && ended(e),
    );
    expect((done.data as ExecutionSummary).status).toBe('SUCCEEDED');
    const detail = await ui.get<ExecutionDetail>('/executions/handed');
    expect(detail.pipelineRun!.matrix.cells.map((c) => c.status)).toEqual([
      'SUCCEEDED',
      'SUCCEEDED',
      'SUCCEEDED',
      'SUCCEEDED',
    ]);
    const batch = await ui.get<BatchResponse>('/batch');
    expect(batch.computeEnvironments.find((c) => c.name === 'local')).toMatchObject({
      vcpus: { total: 4, inUse: 0 },
    });
  }, 120_000);
});

describe('why jobs wait', () => {
  it('names the resource a compute environment is short of, the jobs ahead, and the dependencies', async () => {
    const home = inlinePipeline(GREETINGS(['x'])).home;
    const { server } = await serverFor(home);
    const batch = batchClient(server);
    await batch.send(
      new CreateComputeEnvironmentCommand({
        computeEnvironmentName: 'small',
        type: 'UNMANAGED',
        unmanagedvCpus: 2,
      }),
    );
    await batch.send(
      new CreateJobQueueCommand({
        jobQueueName: 'small-q',
        priority: 1,
        computeEnvironmentOrder: [{ order: 1, computeEnvironment: 'small' }],
      }),
    );
    await batch.send(
      new RegisterJobDefinitionCommand({
        jobDefinitionName: 'two-cpus',
        type: 'container',
        containerProperties: {
          command: [process.execPath, '-e', 'setTimeout(() => {}, 600000)'],
          resourceRequirements: [
            { type: 'VCPU', value: '2' },
            { type: 'MEMORY', value: '256' },
          ],
        },
      }),
    );
    const submit = async (name: string, dependsOn?: string) =>
      (
        await batch.send(
          new SubmitJobCommand({
            jobName: name,
            jobQueue: 'small-q',
            jobDefinition: 'two-cpus',
            ...(dependsOn ? { dependsOn: [{ jobId: dependsOn }] } : {}),
          }),
        )
      ).jobId!;
    const submitted: string[] = [];
    cleanup.push(async () => {
      for (const jobId of submitted)
        await batch
          .send(new TerminateJobCommand({ jobId, reason: 'test over' }))
          .catch(() => undefined);
    });
    const first = await submit('first');
    submitted.push(first);
    const ui = await uiClient(server);
    await waitUntil('the first job to run', async () =>
      (await ui.get<BatchResponse>('/batch')).running.some(
        (j) => j.jobId === first && j.status === 'RUNNING',
      ),
    );
    const second = await submit('second');
    submitted.push(second, await submit('third'), await submit('after-first', first));
    const view = await waitUntil('the others to wait', async () => {
      const b = await ui.get<BatchResponse>('/batch');
      return b.waiting.length === 3 && b.waiting.every((w) => w.waiting.kind !== 'starting')
        ? b
        : undefined;
    });
    const small = view.computeEnvironments.find((c) => c.name === 'small')!;
    expect(small).toMatchObject({ vcpus: { total: 2, inUse: 2 }, running: 1 });
    expect(view.queues.find((q) => q.name === 'small-q')!.computeEnvironments).toEqual(['small']);
    const byName = Object.fromEntries(view.waiting.map((w) => [w.jobName, w.waiting]));
    expect(byName.second).toMatchObject({
      kind: 'resources',
      ahead: 0,
      needs: { vcpus: 2, memoryMiB: 256 },
      shortages: [
        { computeEnvironment: 'small', resource: 'vcpus', needed: 2, free: 0, total: 2, short: 2 },
      ],
    });
    expect(byName.second.message).toMatch(
      /compute environment "small" has 0 vCPU of 2 vCPU free \(2 vCPU short\)/,
    );
    expect(byName.third).toMatchObject({ kind: 'resources', ahead: 1 });
    expect(byName.third.message).toMatch(/1 job ahead of it in queue "small-q"/);
    expect(byName['after-first']).toMatchObject({
      kind: 'dependency',
      waitingOn: [{ jobId: first, jobName: 'first', status: 'RUNNING' }],
    });
    // The job's own page says the same.
    const job = await ui.get<JobDetailResponse>(`/jobs/${second}`);
    expect(job.status).toBe('RUNNABLE');
    expect(job.waiting).toMatchObject({
      kind: 'resources',
      shortages: [expect.objectContaining({ short: 2 })],
    });
    // And `strand batch ls` beside the server, from the home's database.
    const ls = await strand('batch', 'ls', '--home', home, '--job-queue', 'small-q');
    const line = (name: string) => ls.out.split('\n').find((l) => l.includes(` ${name} `)) ?? '';
    expect(line('second')).toMatch(/compute environment "small" has 0 vCPU of 2 vCPU free/);
    expect(line('third')).toMatch(/1 job ahead of it in queue "small-q"/);
    expect(line('first')).toMatch(/RUNNING/);
  }, 60_000);
});
