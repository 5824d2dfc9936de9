/** Error names defined by the States language. */
export const StatesErrorName = {
  ALL: 'States.ALL',
  HeartbeatTimeout: 'States.HeartbeatTimeout',
  Timeout: 'States.Timeout',
  TaskFailed: 'States.TaskFailed',
  Permissions: 'States.Permissions',
  ResultPathMatchFailure: 'States.ResultPathMatchFailure',
  ParameterPathFailure: 'States.ParameterPathFailure',
  QueryEvaluationError: 'States.QueryEvaluationError',
  BranchFailed: 'States.BranchFailed',
  NoChoiceMatched: 'States.NoChoiceMatched',
  IntrinsicFailure: 'States.IntrinsicFailure',
  ExceedToleratedFailureThreshold: 'States.ExceedToleratedFailureThreshold',
  ItemReaderFailed: 'States.ItemReaderFailed',
  ResultWriterFailed: 'States.ResultWriterFailed',
  Runtime: 'States.Runtime',
  DataLimitExceeded: 'States.DataLimitExceeded',
} as const;

/**
 * An error raised while running a state, carrying the ASL error name (`States.Runtime`,
 * a task's own error name, …) and its cause. Code inside `asl/` throws these; the
 * interpreter turns them into Retry/Catch handling or an execution failure.
 *
 * `cause` is the detail only; when `statePrefix` is true the interpreter prefixes it
 * with "An error occurred while executing the state 'X' (entered at the event id #N). "
 * as Step Functions does for errors raised by the service itself.
 */
export class StatesError extends Error {
  readonly code = 'ASL_STATES_ERROR';
  constructor(
    readonly error: string,
    readonly causeText: string | undefined,
    readonly statePrefix = true,
  ) {
    super(causeText ? `${error}: ${causeText}` : error);
    this.name = 'StatesError';
  }
}

/** Raised by path evaluation when a JSONPath selects nothing. Callers phrase the message. */
export class PathNotFoundError extends Error {
  readonly code = 'ASL_PATH_NOT_FOUND';
  constructor(readonly path: string) {
    super(`path ${path} selected nothing`);
    this.name = 'PathNotFoundError';
  }
}
