/**
 * What `strand deploy aws` is asked for, checked before anything is built: names AWS would
 * refuse at deploy time are refused here, with the rule they break. No CDK here.
 */

/** How jobs get machines. */
export type Capacity = 'spot' | 'on-demand';

/** Everything the stack is made from besides the pipeline. */
export interface AwsStackOptions {
  /** The CloudFormation stack name (default `strand-<pipeline>`); also the state machine's and job queue's name. */
  stackName: string;
  /** Account and region the stack is for; unset: an environment-agnostic template. */
  account?: string;
  region?: string;
  /** Fargate compute environments instead of EC2 ones. */
  fargate: boolean;
  /** Spot first with on-demand behind it, or on-demand only. */
  capacity: Capacity;
  /** The most vCPUs each compute environment may run at once. */
  maxVcpus: number;
  /** A name for the bucket the stack makes; unset: CloudFormation names it. */
  bucketName?: string;
  /** Days every log group keeps its events (a value CloudWatch Logs accepts). */
  logRetentionDays: number;
  /** Days after which the pipeline's objects expire; unset: they are kept. */
  expireDays?: number;
  /** An existing secret holding the results database's connection; unset: the stack makes one to fill. */
  resultsSecretArn?: string;
}

/** A value the stack cannot be made with; the message names the option and the rule. */
export class DeployOptionError extends Error {
  readonly code = 'DEPLOY_OPTION';
  constructor(message: string) {
    super(message);
    this.name = 'DeployOptionError';
  }
}

/** The retention periods CloudWatch Logs accepts (PutRetentionPolicy). */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288,
  3653,
] as const;

export const DEFAULTS = {
  maxVcpus: 64,
  logRetentionDays: 30,
} as const;

const STACK_NAME = /^[A-Za-z][A-Za-z0-9-]*$/;
/** Longest stack name: the job queue and state machine take it as their name (80 characters). */
const MAX_STACK_NAME = 80;
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const ACCOUNT = /^[0-9]{12}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-[0-9]+$/;
const SECRET_ARN =
  /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$/;

/** A whole number in `[min, max]` from option text, or DeployOptionError naming the option. */
export function wholeNumber(flag: string, text: string, min: number, max: number): number {
  const n = /^[0-9]+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new DeployOptionError(`${flag} ${text}: give a whole number from ${min} to ${max}`);
  return n;
}

/** The stack name a pipeline gets when none is given. */
export function defaultStackName(pipeline: string): string {
  return `strand-${pipeline}`.replace(/[^A-Za-z0-9-]/g, '-').slice(0, MAX_STACK_NAME);
}

/** Checks options against AWS's naming rules; throws DeployOptionError for the first it breaks. */
export function checkStackOptions(o: AwsStackOptions): AwsStackOptions {
  if (!STACK_NAME.test(o.stackName) || o.stackName.length > MAX_STACK_NAME)
    throw new DeployOptionError(
      `--stack-name ${o.stackName}: a stack name starts with a letter and holds only letters, digits and - (at most ${MAX_STACK_NAME} characters)`,
    );
  if (o.account !== undefined && !ACCOUNT.test(o.account))
    throw new DeployOptionError(`--account ${o.account}: an AWS account id is 12 digits`);
  if (o.region !== undefined && !REGION.test(o.region))
    throw new DeployOptionError(`--region ${o.region}: not a region name (like us-east-1)`);
  if (
    o.bucketName !== undefined &&
    (!BUCKET_NAME.test(o.bucketName) ||
      o.bucketName.includes('..') ||
      /^\d+\.\d+\.\d+\.\d+$/.test(o.bucketName))
  )
    throw new DeployOptionError(
      `--bucket-name ${o.bucketName}: a bucket name is 3-63 lowercase letters, digits, . and -, starting and ending with a letter or digit`,
    );
  if (!(LOG_RETENTION_DAYS as readonly number[]).includes(o.logRetentionDays))
    throw new DeployOptionError(
      `--log-retention-days ${o.logRetentionDays}: CloudWatch Logs keeps events for one of ${LOG_RETENTION_DAYS.join(', ')} days`,
    );
  if (o.resultsSecretArn !== undefined && !SECRET_ARN.test(o.resultsSecretArn))
    throw new DeployOptionError(
      `--results-secret ${o.resultsSecretArn}: give a Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-abc123)`,
    );
  return o;
}
