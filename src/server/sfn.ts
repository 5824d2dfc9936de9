/**
 * The Step Functions API (JSON 1.0, `X-Amz-Target: AWSStepFunctions.<Action>`) over the engine:
 * each action reads its request as AWS does, calls the engine (or the registry of state machines
 * this server keeps), and answers in AWS's response shape, with AWS's error names. Timestamps
 * are epoch seconds, as the JSON protocols carry them.
 */
import { randomUUID } from 'node:crypto';
import type { HistoryEvent } from '../asl/execution.js';
import { historyEventForApi } from '../asl/execution.js';
import type { Json, StateMachineDefinition } from '../asl/types.js';
import { validateText, type ValidationProblem } from '../asl/validate.js';
import { RequestFailedError } from '../engine/control.js';
import { EngineInputError, type ExecutionDescription } from '../engine/engine.js';
import { EngineHaltedError } from '../engine/faults.js';
import { ERROR, STATE } from '../pipeline/contract.js';
import { ApiError, validationError } from './errors.js';
import { executionSummaries, stateMachinesRun } from './executions.js';
import { Fields, wrongTypeMessage, type Body, type FieldRules } from './fields.js';
import { HomeBusyError, type ServerHome } from './home.js';
import { page, type Cursor, type PageTokens } from './paging.js';
import type { Registry, StateMachineRecord } from './registry.js';

/** The region and account in every ARN of the engine (see Engine.startExecution). */
export const REGION = 'local';
export const ACCOUNT = '000000000000';
const PREFIX = `arn:aws:states:${REGION}:${ACCOUNT}`;
/** The role a state machine created without one is shown with (nothing assumes it locally). */
export const DEFAULT_ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/strand`;

/** AWS's payload limit: execution input, task output (bytes of UTF-8). */
export const MAX_PAYLOAD_BYTES = 262_144;
/** AWS's limit on a definition (characters). */
export const MAX_DEFINITION_CHARS = 1_048_576;

/** The ARN of the state machine called `name`. */
export function stateMachineArn(name: string): string {
  return `${PREFIX}:stateMachine:${name}`;
}

const seconds = (ms: number) => ms / 1000;
const isoSeconds = (iso: string) => Date.parse(iso) / 1000;

/** How Step Functions reports bad fields: AWS's front end's exceptions and wording. */
export const SFN_RULES: FieldRules = {
  missing: (field) =>
    new ApiError(
      'ValidationException',
      `1 validation error detected: Value null at '${field}' failed to satisfy constraint: Member must not be null`,
    ),
  wrongType: (field, expected, value) =>
    new ApiError('SerializationException', wrongTypeMessage(field, expected, value)),
  outOfBounds: (field, constraint) => validationError(field, constraint),
};

/** AWS's rule for state machine and execution names. */
function checkName(field: string, name: string): string {
  // Whitespace, brackets, wildcards, the characters AWS reserves, and control characters.
  const bad = /[\s<>{}[\]?*"#%\\^|~`$&,;:/]|\p{Cc}/u.exec(name);
  if (bad)
    throw new ApiError(
      'InvalidName',
      `Invalid Name: '${name}' (${field} may not contain ${JSON.stringify(bad[0])}; names are 1-80 characters without whitespace, brackets, wildcards or any of " # % \\ ^ | ~ \` $ & , ; : /)`,
    );
  return name;
}

const ARN_PART = '[^:]+';
const STATE_MACHINE_ARN = new RegExp(
  `^arn:aws[a-z-]*:states:(${ARN_PART}):(${ARN_PART}):stateMachine:(${ARN_PART})(:${ARN_PART})?$`,
);
const EXECUTION_ARN = new RegExp(
  `^arn:aws[a-z-]*:states:(${ARN_PART}):(${ARN_PART}):(execution|express):(${ARN_PART}):(${ARN_PART})$`,
);

/** The state machine's name in its ARN; InvalidArn when it is not one. */
function stateMachineName(field: string, arn: string): string {
  const m = STATE_MACHINE_ARN.exec(arn);
  if (!m)
    throw new ApiError('InvalidArn', `Invalid Arn: '${arn}' is not a state machine ARN (${field})`);
  if (m[4])
    throw new ApiError(
      'InvalidArn',
      `Invalid Arn: '${arn}' names a version or alias; Strand keeps none (use ${stateMachineArn(m[3])})`,
    );
  if (m[1] !== REGION || m[2] !== ACCOUNT)
    throw new ApiError(
      'StateMachineDoesNotExist',
      `State Machine Does Not Exist: '${arn}' (this server's state machines are in region ${REGION}, account ${ACCOUNT})`,
    );
  return m[3];
}

/** Checks an execution ARN; InvalidArn when it is not one. */
function executionArn(field: string, arn: string): string {
  const m = EXECUTION_ARN.exec(arn);
  if (!m)
    throw new ApiError('InvalidArn', `Invalid Arn: '${arn}' is not an execution ARN (${field})`);
  if (m[3] === 'express')
    throw new ApiError(
      'InvalidArn',
      `Invalid Arn: '${arn}' is an Express execution; Strand runs Standard ones only`,
    );
  return arn;
}

const noExecution = (arn: string) =>
  new ApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${arn}'`);
const noStateMachine = (arn: string) =>
  new ApiError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${arn}'`);

/** What the engine or the owner of the home refused, in Step Functions' terms. */
export function sfnError(err: unknown): unknown {
  if (err instanceof HomeBusyError) return new ApiError('ServiceUnavailable', err.message, 503);
  if (err instanceof EngineHaltedError) return new ApiError('ServiceUnavailable', err.message, 503);
  if (!(err instanceof EngineInputError) && !(err instanceof RequestFailedError)) return err;
  const details = err.details.length > 0 ? `: ${err.details.join('; ')}` : '';
  const message = `${err.message}${details}`;
  switch (err.code) {
    case 'INVALID_DEFINITION':
    case 'UNKNOWN_RESOURCE':
      return new ApiError('InvalidDefinition', `Invalid State Machine Definition: ${message}`);
    case 'EXECUTION_ALREADY_EXISTS':
      return new ApiError('ExecutionAlreadyExists', message);
    case 'NO_SUCH_EXECUTION':
      return new ApiError('ExecutionDoesNotExist', message);
    case 'NOT_REDRIVABLE':
      return new ApiError('ExecutionNotRedrivable', message);
    case 'InvalidToken':
    case 'TaskDoesNotExist':
    case 'TaskTimedOut':
      return new ApiError(err.code, message);
    case 'CLOSED':
    case 'ENGINE_HALTED':
      return new ApiError('ServiceUnavailable', message, 503);
    default:
      return new ApiError('ValidationException', message);
  }
}

/** Strand's problem codes as ValidateStateMachineDefinition's diagnostic codes. */
function diagnosticCode(p: ValidationProblem): string {
  const codes: Record<string, string> = {
    NOT_JSON: 'INVALID_JSON_DESCRIPTION',
    DUPLICATE_KEY: 'INVALID_JSON_DESCRIPTION',
    NO_TERMINAL: 'MISSING_END_STATE',
    DUPLICATE_STATE: 'DUPLICATE_STATE_NAME',
    BAD_NAME: 'INVALID_STATE_NAME',
    BAD_ARN: 'INVALID_RESOURCE',
  };
  return codes[p.code] ?? 'SCHEMA_VALIDATION_FAILED';
}

function problemText(p: ValidationProblem): string {
  return `${diagnosticCode(p)}: ${p.message}${p.pointer ? ` at ${p.pointer}` : ''}`;
}

/** A definition's text, parsed and validated; InvalidDefinition naming every problem. */
function checkedDefinition(text: string): StateMachineDefinition {
  const { definition, problems } = validateText(text);
  if (problems.length > 0 || definition === undefined)
    throw new ApiError(
      'InvalidDefinition',
      `Invalid State Machine Definition: '${problems.map(problemText).join(', ')}'`,
    );
  return definition as StateMachineDefinition;
}

/** A state machine the API can describe and start. */
interface StateMachineView {
  name: string;
  definition: string;
  creationDate: number;
  /** Created through the API; absent for one known only from its executions. */
  record?: StateMachineRecord;
}

/** History events as GetExecutionHistory gives them: epoch-second timestamps, data optional. */
function apiEvent(e: HistoryEvent, includeData: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {
    ...historyEventForApi(e),
    timestamp: seconds(e.timestamp),
  };
  if (!includeData)
    for (const [key, value] of Object.entries(out)) {
      if (!key.endsWith('EventDetails') || value === null || typeof value !== 'object') continue;
      const {
        input: _i,
        output: _o,
        inputDetails: _id,
        outputDetails: _od,
        ...rest
      } = value as Record<string, unknown>;
      out[key] = rest;
    }
  return out;
}

export interface StepFunctionsOptions {
  home: ServerHome;
  registry: Registry;
  tokens: PageTokens;
  now?: () => number;
}

/** The actions of the Step Functions API this server answers, by name. */
export function stepFunctionsActions(
  options: StepFunctionsOptions,
): Map<string, (body: Body) => Promise<unknown>> {
  const { home, registry, tokens } = options;
  const now = options.now ?? Date.now;

  /** A state machine by name: created here, or run by an execution of the home. */
  const findStateMachine = (name: string): StateMachineView | undefined => {
    const record = registry.get(name);
    if (record)
      return { name, definition: record.definition, creationDate: record.creationDate, record };
    const engine = home.reading();
    const definition = engine.store.latestDefinition(name);
    if (definition === undefined) return undefined;
    const first = stateMachinesRun(engine.store.db).find((s) => s.name === name);
    return { name, definition, creationDate: first?.firstStart ?? now() };
  };

  const stateMachineOf = (f: Fields): StateMachineView => {
    const arn = f.requiredString('stateMachineArn', { min: 1, max: 256 });
    const found = findStateMachine(stateMachineName('stateMachineArn', arn));
    if (!found) throw noStateMachine(arn);
    return found;
  };

  const executionOf = (f: Fields): ExecutionDescription => {
    const arn = executionArn(
      'executionArn',
      f.requiredString('executionArn', { min: 1, max: 256 }),
    );
    const d = home.reading().findExecution(arn);
    if (!d || d.executionArn !== arn) throw noExecution(arn);
    return d;
  };

  const pageSize = (f: Fields, max: number, fallback = 100) => {
    const n = f.integer('maxResults', { min: 0, max });
    return n === undefined || n === 0 ? fallback : n;
  };

  const cursorOf = (f: Fields, scope: string): Cursor | undefined => {
    const token = f.string('nextToken', { min: 1, max: 3096 });
    if (token === undefined) return undefined;
    const read = tokens.read(scope, token);
    if ('refused' in read) throw new ApiError('InvalidToken', `Invalid Token: ${read.refused}`);
    return read.cursor;
  };

  const nextToken = (scope: string, next: Cursor | undefined) =>
    next === undefined ? {} : { nextToken: tokens.issue(scope, next) };

  const settings = (f: Fields) => ({
    ...(f.has('loggingConfiguration')
      ? { loggingConfiguration: f.object('loggingConfiguration') }
      : {}),
    ...(f.has('tracingConfiguration')
      ? { tracingConfiguration: f.object('tracingConfiguration') }
      : {}),
    ...(f.has('encryptionConfiguration')
      ? { encryptionConfiguration: f.object('encryptionConfiguration') }
      : {}),
  });

  const roleArnOf = (f: Fields): string | undefined => {
    const arn = f.string('roleArn', { min: 1, max: 256 });
    if (arn !== undefined && !/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/.test(arn))
      throw new ApiError('InvalidArn', `Invalid Arn: '${arn}' is not an IAM role ARN (roleArn)`);
    return arn;
  };

  const noPublish = (f: Fields) => {
    if (f.boolean('publish'))
      throw new ApiError(
        'ValidationException',
        'publish: Strand keeps no state machine versions; leave publish out (the state machine is updated in place)',
      );
  };

  const actions: Record<string, (f: Fields) => unknown> = {
    CreateStateMachine(f) {
      const name = checkName('name', f.requiredString('name', { min: 1, max: 80 }));
      const definition = f.requiredString('definition', { min: 1, max: MAX_DEFINITION_CHARS });
      const roleArn = roleArnOf(f) ?? DEFAULT_ROLE_ARN;
      const type = f.oneOf('type', ['STANDARD', 'EXPRESS'] as const) ?? 'STANDARD';
      if (type === 'EXPRESS')
        throw new ApiError(
          'StateMachineTypeNotSupported',
          'Strand runs STANDARD state machines only (type EXPRESS is not supported)',
        );
      noPublish(f);
      const tags = (f.list('tags') ?? []).map((t) => {
        const tag = new Fields((t ?? {}) as Body, SFN_RULES);
        return {
          key: tag.requiredString('key', { min: 1, max: 128 }),
          value: tag.string('value', { max: 256 }) ?? '',
        };
      });
      checkedDefinition(definition);
      const arn = stateMachineArn(name);
      const record: StateMachineRecord = {
        name,
        definition,
        roleArn,
        type,
        creationDate: now(),
        revisionId: randomUUID(),
        ...settings(f),
        ...(tags.length > 0 ? { tags } : {}),
      };
      if (!registry.create(record)) {
        // Idempotent, as AWS's: the same request again answers as the first did.
        const existing = registry.get(name)!;
        if (existing.definition !== definition || existing.roleArn !== roleArn)
          throw new ApiError(
            'StateMachineAlreadyExists',
            `State Machine Already Exists: '${arn}' (with another definition or role; UpdateStateMachine changes it)`,
          );
        return { stateMachineArn: arn, creationDate: seconds(existing.creationDate) };
      }
      return { stateMachineArn: arn, creationDate: seconds(record.creationDate) };
    },

    DescribeStateMachine(f) {
      const sm = stateMachineOf(f);
      const r = sm.record;
      return {
        stateMachineArn: stateMachineArn(sm.name),
        name: sm.name,
        status: 'ACTIVE',
        definition: sm.definition,
        roleArn: r?.roleArn ?? DEFAULT_ROLE_ARN,
        type: 'STANDARD',
        creationDate: seconds(sm.creationDate),
        loggingConfiguration: r?.loggingConfiguration ?? {
          level: 'OFF',
          includeExecutionData: false,
        },
        tracingConfiguration: r?.tracingConfiguration ?? { enabled: false },
        ...(r ? { revisionId: r.revisionId } : {}),
        ...(r?.encryptionConfiguration
          ? { encryptionConfiguration: r.encryptionConfiguration }
          : {}),
        ...(r
          ? {}
          : {
              description:
                'known from its executions in this home (started by strand run or strand start); its definition is that of the latest',
            }),
      };
    },

    UpdateStateMachine(f) {
      const sm = stateMachineOf(f);
      const definition = f.string('definition', { min: 1, max: MAX_DEFINITION_CHARS });
      const roleArn = roleArnOf(f);
      const changed = settings(f);
      noPublish(f);
      if (definition === undefined && roleArn === undefined && Object.keys(changed).length === 0)
        throw new ApiError(
          'MissingRequiredParameter',
          'Either the definition, the role ARN, the LoggingConfiguration, the EncryptionConfiguration or the TracingConfiguration must be specified',
        );
      if (definition !== undefined) checkedDefinition(definition);
      const time = now();
      const base: StateMachineRecord = sm.record ?? {
        name: sm.name,
        definition: sm.definition,
        roleArn: DEFAULT_ROLE_ARN,
        type: 'STANDARD',
        creationDate: sm.creationDate,
        revisionId: randomUUID(),
      };
      const updated: StateMachineRecord = {
        ...base,
        ...changed,
        definition: definition ?? base.definition,
        roleArn: roleArn ?? base.roleArn,
        updateDate: time,
        revisionId: randomUUID(),
      };
      // One known only from its executions becomes one of the registry's.
      if (!sm.record) registry.create(updated);
      registry.update(updated);
      return { updateDate: seconds(time), revisionId: updated.revisionId };
    },

    DeleteStateMachine(f) {
      const arn = f.requiredString('stateMachineArn', { min: 1, max: 256 });
      // Deleting one that is not there succeeds, as on AWS; running executions carry on.
      registry.delete(stateMachineName('stateMachineArn', arn));
      return {};
    },

    ListStateMachines(f) {
      const limit = pageSize(f, 1000);
      const scope = 'ListStateMachines';
      const after = cursorOf(f, scope);
      const byName = new Map<string, number>();
      for (const s of stateMachinesRun(home.reading().store.db)) byName.set(s.name, s.firstStart);
      for (const r of registry.list()) byName.set(r.name, r.creationDate);
      const listed = page([...byName], ([name]) => [name], limit, after);
      return {
        stateMachines: listed.items.map(([name, created]) => ({
          stateMachineArn: stateMachineArn(name),
          name,
          type: 'STANDARD',
          creationDate: seconds(created),
        })),
        ...nextToken(scope, listed.next),
      };
    },

    ValidateStateMachineDefinition(f) {
      const definition = f.requiredString('definition', { min: 1, max: MAX_DEFINITION_CHARS });
      f.oneOf('type', ['STANDARD', 'EXPRESS'] as const);
      f.oneOf('severity', ['ERROR', 'WARNING'] as const);
      const limit = pageSize(f, 100);
      const { problems } = validateText(definition);
      return {
        result: problems.length === 0 ? 'OK' : 'FAIL',
        diagnostics: problems.slice(0, limit).map((p) => ({
          severity: 'ERROR',
          code: diagnosticCode(p),
          message:
            p.line === undefined
              ? p.message
              : `${p.message} (line ${p.line}, column ${p.column ?? 1})`,
          ...(p.pointer ? { location: p.pointer } : {}),
        })),
        truncated: problems.length > limit,
      };
    },

    async StartExecution(f) {
      const sm = stateMachineOf(f);
      const arn = stateMachineArn(sm.name);
      const name = checkName('name', f.string('name', { min: 1, max: 80 }) ?? randomUUID());
      const inputText = f.string('input', { max: MAX_PAYLOAD_BYTES, bytes: true }) ?? '{}';
      f.string('traceHeader', { max: 256 });
      let input: Json;
      try {
        input = JSON.parse(inputText) as Json;
      } catch (err) {
        throw new ApiError(
          'InvalidExecutionInput',
          `Invalid State Machine Execution Input: '${(err as Error).message}'`,
        );
      }
      const existing = home.reading().findExecution(name);
      if (existing) {
        // Names are unique in a home, across its state machines. A running execution started
        // again with the same input is that execution, as on AWS.
        if (
          existing.stateMachineArn === arn &&
          existing.status === 'RUNNING' &&
          existing.input === JSON.stringify(input)
        )
          return { executionArn: existing.executionArn, startDate: isoSeconds(existing.startDate) };
        throw new ApiError(
          'ExecutionAlreadyExists',
          `Execution Already Exists: '${existing.executionArn}' (${existing.status}${existing.stateMachineArn === arn ? '' : `, of state machine ${existing.stateMachineArn}: execution names are unique in a Strand home`})`,
        );
      }
      const definition = checkedDefinition(sm.definition);
      const d = (await home.request(
        'StartExecution',
        { definition, input, name, stateMachineName: sm.name },
        (engine) => engine.startExecution({ definition, input, name, stateMachineName: sm.name }),
      )) as ExecutionDescription;
      return { executionArn: d.executionArn, startDate: isoSeconds(d.startDate) };
    },

    DescribeExecution(f) {
      const d = executionOf(f);
      const redrivable = ['FAILED', 'ABORTED', 'TIMED_OUT'].includes(d.status);
      return {
        executionArn: d.executionArn,
        stateMachineArn: d.stateMachineArn,
        name: d.name,
        status: d.status,
        startDate: isoSeconds(d.startDate),
        ...(d.stopDate ? { stopDate: isoSeconds(d.stopDate) } : {}),
        input: d.input,
        inputDetails: { included: true },
        ...(d.output !== undefined ? { output: d.output, outputDetails: { included: true } } : {}),
        ...(d.error !== undefined ? { error: d.error } : {}),
        ...(d.cause !== undefined ? { cause: d.cause } : {}),
        redriveCount: d.redriveCount,
        redriveStatus: redrivable ? 'REDRIVABLE' : 'NOT_REDRIVABLE',
        ...(redrivable
          ? {}
          : {
              redriveStatusReason: `Execution is ${d.status}; only a FAILED, ABORTED or TIMED_OUT execution can be redriven`,
            }),
      };
    },

    ListExecutions(f) {
      if (f.has('mapRunArn'))
        throw new ApiError(
          'ValidationException',
          'mapRunArn: Strand has no Map Runs (Distributed Map runs inside its execution); list by stateMachineArn',
        );
      const sm = stateMachineOf(f);
      const arn = stateMachineArn(sm.name);
      const status = f.oneOf('statusFilter', [
        'RUNNING',
        'SUCCEEDED',
        'FAILED',
        'TIMED_OUT',
        'ABORTED',
        'PENDING_REDRIVE',
      ] as const);
      const redrive = f.oneOf('redriveFilter', ['REDRIVEN', 'NOT_REDRIVEN'] as const);
      const limit = pageSize(f, 1000);
      const scope = `ListExecutions|${arn}|${status ?? ''}|${redrive ?? ''}`;
      const after = cursorOf(f, scope);
      const rows = executionSummaries(home.reading().store.db, sm.name).filter(
        (r) =>
          (status === undefined || r.status === status) &&
          (redrive === undefined || (redrive === 'REDRIVEN') === r.redriveCount > 0),
      );
      // Newest first, as AWS lists them.
      const listed = page(rows, (r) => [-r.startDate, r.name], limit, after);
      return {
        executions: listed.items.map((r) => ({
          executionArn: r.arn,
          stateMachineArn: arn,
          name: r.name,
          status: r.status,
          startDate: seconds(r.startDate),
          ...(r.stopDate !== null ? { stopDate: seconds(r.stopDate) } : {}),
          redriveCount: r.redriveCount,
        })),
        ...nextToken(scope, listed.next),
      };
    },

    GetExecutionHistory(f) {
      const d = executionOf(f);
      const reverse = f.boolean('reverseOrder') ?? false;
      const includeData = f.boolean('includeExecutionData') ?? true;
      const limit = pageSize(f, 1000);
      const scope = `GetExecutionHistory|${d.executionArn}|${reverse}|${includeData}`;
      const after = cursorOf(f, scope);
      const store = home.reading().store;
      // Oldest first, a page is read from the database alone (a long Map's history is large);
      // newest first needs the whole history.
      const listed = reverse
        ? page(store.history(d.executionArn), (e) => [-e.id], limit, after)
        : (() => {
            const events = store.history(d.executionArn, Number(after?.[0] ?? 0), limit + 1);
            const items = events.slice(0, limit);
            return events.length > limit ? { items, next: [items[limit - 1].id] } : { items };
          })();
      return {
        events: listed.items.map((e) => apiEvent(e, includeData)),
        ...nextToken(scope, listed.next),
      };
    },

    async StopExecution(f) {
      const d = executionOf(f);
      const error = f.string('error', { max: 256 });
      const cause = f.string('cause', { max: 32_768 });
      const stopped = (await home.request(
        'StopExecution',
        { name: d.executionArn, error, cause },
        (engine) => engine.stopExecution(d.executionArn, error, cause),
      )) as ExecutionDescription;
      return { stopDate: stopped.stopDate ? isoSeconds(stopped.stopDate) : seconds(now()) };
    },

    async RedriveExecution(f) {
      const d = executionOf(f);
      f.string('clientToken', { min: 1, max: 64 });
      // As `strand redrive` does: a pipeline whose samples failed ended in its final Fail
      // state, after the Map that tolerated the failures, so it is carried on from the Map.
      const fromState = d.error === ERROR.samplesFailed ? STATE.samples : undefined;
      await home.request(
        'RedriveExecution',
        { name: d.executionArn, ...(fromState ? { fromState } : {}) },
        (engine) => engine.redriveExecution(d.executionArn, fromState ? { fromState } : {}),
      );
      return { redriveDate: seconds(now()) };
    },

    async SendTaskSuccess(f) {
      const taskToken = f.requiredString('taskToken', { min: 1, max: 2048 });
      const text = f.requiredString('output', { max: MAX_PAYLOAD_BYTES, bytes: true });
      let output: Json;
      try {
        output = JSON.parse(text) as Json;
      } catch (err) {
        throw new ApiError('InvalidOutput', `Invalid Output: '${(err as Error).message}'`);
      }
      await home.request('SendTaskSuccess', { taskToken, output }, (engine) =>
        engine.sendTaskSuccess(taskToken, output),
      );
      return {};
    },

    async SendTaskFailure(f) {
      const taskToken = f.requiredString('taskToken', { min: 1, max: 2048 });
      const error = f.string('error', { max: 256 });
      const cause = f.string('cause', { max: 32_768 });
      await home.request('SendTaskFailure', { taskToken, error, cause }, (engine) =>
        engine.sendTaskFailure(taskToken, error, cause),
      );
      return {};
    },

    async SendTaskHeartbeat(f) {
      const taskToken = f.requiredString('taskToken', { min: 1, max: 2048 });
      await home.request('SendTaskHeartbeat', { taskToken }, (engine) =>
        engine.sendTaskHeartbeat(taskToken),
      );
      return {};
    },
  };

  return new Map(
    Object.entries(actions).map(([name, fn]) => [
      name,
      async (body: Body) => {
        try {
          return await fn(new Fields(body, SFN_RULES));
        } catch (err) {
          throw sfnError(err);
        }
      },
    ]),
  );
}
