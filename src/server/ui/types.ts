/**
 * The dashboard's API (`/ui/api/*` of `strand server`): the request and response types of every
 * endpoint, shared by the server and the front end (`ui/`). Plain types only, no imports of
 * Node or of the server, so a browser build can import this file as it is.
 *
 * Conventions: times are epoch milliseconds; sizes MiB unless named otherwise; every error is
 * `UiErrorBody` with an HTTP status (400 bad input, 401 not signed in, 403 the CSRF guard, 404
 * unknown name, 413 body too large, 503 the home is busy or the front end is not built).
 * Lists are capped: a response that stops early carries `nextToken`, given back as the
 * `nextToken` query parameter to read on.
 */

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED' | 'TIMED_OUT';

export type JobStatus =
  'SUBMITTED' | 'PENDING' | 'RUNNABLE' | 'STARTING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';

/** Every error: a stable name, a sentence for people, and sometimes what was probably meant. */
export interface UiErrorBody {
  /** `BadRequest`, `Unauthorized`, `Forbidden`, `NotFound`, `PayloadTooLarge`, `HomeBusy`, … */
  error: string;
  message: string;
  /** For an unknown name: the closest known one. */
  suggestion?: string;
}

// ---------------------------------------------------------------------------------------------
// Session: POST/GET/DELETE /ui/api/session

/** POST /ui/api/session (content-type: application/json). */
export interface SessionRequest {
  accessKeyId: string;
  secretAccessKey: string;
}

/** GET, POST and DELETE /ui/api/session. */
export interface SessionInfo {
  signedIn: boolean;
  /** When the session ends (epoch ms), when signed in. */
  expiresAt?: number;
  /** The key id signed in with. */
  accessKeyId?: string;
  /** The server's home directory and whether its engine schedules the home (or follows another). */
  home?: string;
  owner?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Executions: GET /ui/api/executions

/** Query of GET /ui/api/executions (all optional). */
export interface ExecutionsQuery {
  status?: ExecutionStatus;
  /** Only runs of this pipeline. */
  pipeline?: string;
  /** Started at or after / before this time: epoch ms or ISO 8601. */
  since?: string;
  until?: string;
  /** Page size, 1–500 (default 100). */
  limit?: string;
  nextToken?: string;
}

/** Jobs of an execution by status (statuses with none left out). */
export type JobCounts = Partial<Record<JobStatus, number>>;

export interface ExecutionSummary {
  name: string;
  arn: string;
  stateMachine: string;
  /** The pipeline, for a pipeline run. */
  pipeline?: string;
  status: ExecutionStatus;
  startDate: number;
  stopDate?: number;
  redriveCount: number;
  jobs: JobCounts;
}

/** GET /ui/api/executions: newest first. */
export interface ExecutionsResponse {
  executions: ExecutionSummary[];
  nextToken?: string;
}

// ---------------------------------------------------------------------------------------------
// One execution: GET /ui/api/executions/:name

/** How a state of the graph has gone in this execution. */
export type StateNodeStatus = 'not-run' | 'running' | 'succeeded' | 'failed' | 'caught';

export type StateEdgeKind = 'Next' | 'Default' | 'Choice' | 'Catch';

export interface StateNode {
  /** Unique in the whole graph: the state's name, prefixed by its enclosing states' ids. */
  id: string;
  /** The state's name in the definition. */
  name: string;
  /** ASL type: Task, Pass, Choice, Wait, Succeed, Fail, Parallel, Map. */
  type: string;
  status: StateNodeStatus;
  /** An end state (`End: true`, Succeed or Fail). */
  end: boolean;
  /** Task: its Resource. */
  resource?: string;
  comment?: string;
  /**
   * How often it was entered and how those went, for states run many times (inside a Map's
   * iterator, or after a Retry or a redrive).
   */
  runs?: { entered: number; succeeded: number; failed: number; caught: number; running: number };
  /** Parallel: one graph per branch. Map: one graph, its iterator (ItemProcessor). */
  subgraphs?: StateGraph[];
}

export interface StateEdge {
  /** Ids of nodes of the same graph. */
  from: string;
  to: string;
  kind: StateEdgeKind;
  /** Catch: the errors it takes (`States.ALL`); Choice: the rule, shortened (`$.x == 3`). */
  label?: string;
}

export interface StateGraph {
  /** Id of the StartAt state. */
  startAt: string;
  nodes: StateNode[];
  edges: StateEdge[];
}

/** The status of one sample × step cell of a pipeline run. */
export type CellStatus =
  'NOT_RUN' | 'WAITING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CACHED' | 'SKIPPED';

export interface MatrixCell {
  /** The sample id, or `_all` for a step that runs once over all samples. */
  sample: string;
  /** `qc`, or `annotate.genes` for a substep. */
  step: string;
  status: CellStatus;
  /** From the start of its last attempt to its end (or to now while it runs). */
  durationMs?: number;
  cached: boolean;
  attempts: number;
  jobId?: string;
  exitCode?: number;
  error?: string;
}

export interface PipelineMatrix {
  /** Rows, in the samples sheet's order (`_all` last, when the pipeline has aggregate steps). */
  samples: string[];
  /** Columns, in the pipeline's order. */
  steps: string[];
  cells: MatrixCell[];
}

/**
 * One attempt of one job of a pipeline run (src/report/attempts.ts's AttemptRow, repeated here
 * so that this file imports nothing; the server checks that the two agree).
 */
export interface AttemptRow {
  execution: string;
  sample: string;
  step: string;
  jobId: string;
  jobName: string;
  /**
   * 1-based: the attempt of its sample × step in this execution, as `strand run` counts them (a
   * step's `retry:` submits a new Batch job for each retry, and a job's own retryStrategy makes
   * attempts of one job; both count). A job the cache answered has one row, attempt 1.
   */
  attempt: number;
  /** 1-based: the attempt of the Batch job itself (DescribeJobs' `attempts`); always sent. */
  jobAttempt?: number;
  status: 'WAITING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';
  /** Served from the job cache: it did not run (jobId is the job whose outputs it reused). */
  cached: boolean;
  /** When the job was submitted (for a cached job: when the cache answered). */
  createdAt: number;
  startedAt?: number;
  stoppedAt?: number;
  exitCode?: number;
  reason?: string;
  /** What it had. */
  vcpus?: number;
  memoryMiB?: number;
  /** What it used: its processes' CPU time, and their peak memory. */
  cpuSeconds?: number;
  peakMemoryMiB?: number;
  logStreamName?: string;
}

export interface ExecutionDetail extends ExecutionSummary {
  input: unknown;
  output?: unknown;
  error?: string;
  cause?: string;
  /** Whether POST …/redrive may carry it on (FAILED, ABORTED or TIMED_OUT). */
  redrivable: boolean;
  graph: StateGraph;
  /** The id of the last history event (GET …/history?after= reads on from it). */
  lastEventId: number;
  /** Every job of the execution, oldest first (capped at 1000). */
  jobList: JobSummary[];
  /** For a pipeline run. */
  pipelineRun?: {
    pipeline: string;
    /** The pipeline file the run was started from. */
    file?: string;
    /** The store its outputs went to (`file:///…`, `s3://…`). */
    store: string;
    matrix: PipelineMatrix;
    attempts: AttemptRow[];
  };
}

// ---------------------------------------------------------------------------------------------
// History: GET /ui/api/executions/:name/history?after=&limit=

/** A history event as the engine keeps it (Step Functions' names; timestamp epoch ms). */
export interface HistoryEventInfo {
  id: number;
  previousEventId: number;
  type: string;
  timestamp: number;
  /** `<type>EventDetails`: as Step Functions gives it, with input/output as values. */
  [details: string]: unknown;
}

export interface HistoryResponse {
  events: HistoryEventInfo[];
  /** Give as `after` for the next page (or, once the execution moves on, the next events). */
  lastEventId: number;
  /** More events are there now. */
  more: boolean;
}

// ---------------------------------------------------------------------------------------------
// Jobs: GET /ui/api/jobs/:id, GET /ui/api/jobs/:id/log?offset=&attempt=

export interface JobSummary {
  jobId: string;
  jobName: string;
  status: JobStatus;
  statusReason?: string;
  /** The queue's name. */
  queue: string;
  createdAt: number;
  startedAt?: number;
  stoppedAt?: number;
  /** From the job's tags, for a job of a pipeline run. */
  execution?: string;
  pipeline?: string;
  sample?: string;
  step?: string;
  cached?: boolean;
  /** Requested (or, for a range, given) size. */
  vcpus?: number;
  memoryMiB?: number;
  attempts: number;
}

export interface JobAttemptInfo {
  attempt: number;
  startedAt?: number;
  stoppedAt?: number;
  exitCode?: number;
  reason?: string;
  statusReason?: string;
  vcpus?: number;
  memoryMiB?: number;
  cpuSeconds?: number;
  logStreamName: string;
}

export interface JobDetailResponse extends JobSummary {
  image?: string;
  command: string[];
  /** Names and values of its environment (secrets: names and sources only). */
  environment: { name: string; value: string }[];
  secrets: { name: string; valueFrom: string }[];
  dependsOn: string[];
  /** Attempts allowed (retryStrategy.attempts), and the timeout of each (s). */
  maxAttempts?: number;
  timeoutSeconds?: number;
  sizing?: { vcpus: number; memoryMiB: number; reason: string };
  attemptList: JobAttemptInfo[];
  /** Why it waits, while SUBMITTED, PENDING or RUNNABLE. */
  waiting?: WaitingReason;
  /** The execution it belongs to, when known. */
  executionArn?: string;
}

/** GET /ui/api/jobs/:id/log: `text` is the log from `offset` (bytes) to `nextOffset`. */
export interface JobLogResponse {
  jobId: string;
  /** The attempt whose log this is (default: the latest). */
  attempt: number;
  offset: number;
  nextOffset: number;
  /** Bytes of the log as far as known now. */
  size: number;
  text: string;
  /** No more text will come: the attempt has ended and all of its log was read. */
  complete: boolean;
  /** Where the log is read from (a file or store URL), for people. */
  source?: string;
}

// ---------------------------------------------------------------------------------------------
// Outputs: GET /ui/api/outputs?pipeline=&sample=&step=&execution=

export interface OutputFileInfo {
  /** Key relative to the step's prefix. */
  path: string;
  size: number;
  sha256: string;
}

export interface OutputsResponse {
  pipeline: string;
  sample: string;
  step: string;
  /** Store URL of the step's folder. */
  location: string;
  /** Absent when the step has published nothing there (it has not run, or its run failed early). */
  manifest?: {
    status: 'SUCCEEDED' | 'FAILED';
    execution: string;
    jobId: string;
    attempt: number;
    exitCode: number | null;
    startedAt: number | null;
    stoppedAt: number | null;
    publishedAt: number;
    fingerprint: string | null;
    error?: string;
    outputs: {
      name: string;
      path: string;
      location: string;
      missing: boolean;
      files: OutputFileInfo[];
    }[];
  };
}

// ---------------------------------------------------------------------------------------------
// Results: GET /ui/api/results?pipeline=&step=&execution=&sample=&metrics=&format=json|csv

export type ResultValue = string | number | null;

export interface ResultsResponse {
  /** In order; each row has a value (or null) for each. */
  columns: string[];
  rows: Record<string, ResultValue>[];
  /** True when rows were left off (more than 5000). */
  truncated: boolean;
}

// ---------------------------------------------------------------------------------------------
// Batch: GET /ui/api/batch

export interface ComputeEnvironmentInfo {
  name: string;
  state: 'ENABLED' | 'DISABLED';
  /** What its jobs run on (`local`, `podman`, `docker`, …). */
  executor: string;
  vcpus: { total: number; inUse: number };
  memoryMiB: { total: number; inUse: number };
  running: number;
}

export interface JobQueueInfo {
  name: string;
  state: 'ENABLED' | 'DISABLED';
  priority: number;
  /** In order. */
  computeEnvironments: string[];
  jobs: JobCounts;
}

/** A resource short on one compute environment for one waiting job. */
export interface Shortage {
  computeEnvironment: string;
  resource: 'vcpus' | 'memoryMiB';
  needed: number;
  free: number;
  total: number;
  /** needed − free (more than total − free … when it never fits). */
  short: number;
}

/**
 * Why a job waits. `kind`:
 * - `dependency`: jobs it depends on have not succeeded yet (`waitingOn`);
 * - `resources`: no compute environment of its queue has room now (`shortages`, one per
 *   compute environment and resource that is short);
 * - `queue`: there would be room, but jobs ahead of it in its queue go first (`ahead`), or the
 *   queue is reserved for a job passed over too long;
 * - `never-fits`: no compute environment of its queue is large enough, ever;
 * - `disabled`: its queue, or every compute environment of it, is DISABLED;
 * - `sizing`: a job with a range of vCPUs waits for a larger size to be free (`message` says why);
 * - `starting`: placed, being handed to its executor.
 */
export interface WaitingReason {
  kind: 'dependency' | 'resources' | 'queue' | 'never-fits' | 'disabled' | 'sizing' | 'starting';
  /** One sentence, as `strand batch` shows it. */
  message: string;
  /** Jobs ahead of it in its queue (higher priority queue first, then older). */
  ahead: number;
  waitingOn?: { jobId: string; jobName: string; status: JobStatus }[];
  shortages?: Shortage[];
  /** What it asks for. */
  needs: { vcpus: number; memoryMiB: number };
  /** Since when it has waited to be placed. */
  waitingSince?: number;
}

export interface WaitingJob extends JobSummary {
  waiting: WaitingReason;
}

export interface BatchResponse {
  computeEnvironments: ComputeEnvironmentInfo[];
  queues: JobQueueInfo[];
  /** STARTING and RUNNING jobs, with where they run. */
  running: (JobSummary & { computeEnvironment?: string })[];
  /** SUBMITTED, PENDING and RUNNABLE jobs, in the order they would start (capped at 500). */
  waiting: WaitingJob[];
  /** True when more jobs wait than are listed. */
  truncated: boolean;
}

// ---------------------------------------------------------------------------------------------
// Pipelines and actions

export interface PipelineStepInfo {
  name: string;
  /** `sample`: once per sample; `all`: once over all samples. */
  scope: 'sample' | 'all';
  /** The steps it waits for. */
  needs: string[];
  /** One job, or one per substep (`annotate.genes`). */
  jobs: { name: string; image: string; vcpus: number; vcpusMin?: number; memoryMiB: number }[];
}

export interface PipelineInfo {
  name: string;
  /** Absolute path of pipeline.yaml: what POST /ui/api/runs starts. */
  file: string;
  description?: string;
  /** Given to `strand server --pipeline`, or known from a run of the home. */
  source: 'flag' | 'run';
  steps: PipelineStepInfo[];
  /** The samples sheet's rows (empty without one). */
  samples: { id: string; values: Record<string, string> }[];
  params: Record<string, string>;
  /** Why the file cannot be loaded now (moved, changed into something invalid). */
  problem?: string;
  /** The newest run of it in this home. */
  lastRun?: { name: string; status: ExecutionStatus; startDate: number };
}

/** GET /ui/api/pipelines. */
export interface PipelinesResponse {
  pipelines: PipelineInfo[];
}

/** POST /ui/api/runs: as `strand run FILE --detach` with these flags. */
export interface StartRunRequest {
  /** A pipeline's name or its file, as GET /ui/api/pipelines lists it. */
  pipeline: string;
  /** Sample ids (default: all of the sheet). */
  samples?: string[];
  from?: string;
  to?: string;
  only?: string;
  /** Pipeline parameters (`--param NAME=VALUE`). */
  params?: Record<string, string>;
  /** Execution name (default: the pipeline's name and the time). */
  name?: string;
  /** Run every step even when the cache has its outputs. */
  noCache?: boolean;
}

export interface StartRunResponse {
  execution: ExecutionSummary;
}

/** POST /ui/api/executions/:name/stop and …/redrive (body `{}` or as below). */
export interface StopRequest {
  error?: string;
  cause?: string;
}

export interface ActionResponse {
  execution: ExecutionSummary;
}

// ---------------------------------------------------------------------------------------------
// Live updates: GET /ui/api/events (text/event-stream)

/**
 * Server-sent events, by `event:` name, each `data:` one JSON value. Every event has an `id:`;
 * a client that reconnects with Last-Event-ID is sent what it missed, or `reload` when the
 * server cannot tell (it restarted, or too much happened meanwhile). Comments (`: ping`) keep
 * the connection alive.
 */
export interface UiEvents {
  /** Sent first on each connection. */
  hello: { owner: boolean; home: string };
  /** An execution started, changed status or was redriven. */
  execution: ExecutionSummary;
  /** A job was submitted or changed status. */
  job: JobSummary;
  /** New history events of an execution (GET …/history?after= reads them). */
  history: { execution: string; lastEventId: number };
  /** Batch capacity or queues changed (GET /ui/api/batch reads them). */
  batch: { at: number };
  /** Read everything again: what was missed cannot be replayed. */
  reload: { reason: string };
}

export type UiEventName = keyof UiEvents;
