/**
 * What the AWS Batch executor asks of AWS Batch, as pure functions: the job definition of an
 * image (a multi-container `ecsProperties` one: stage-in, the tool, stage-out; see
 * docs/adr/0002-staging.md), the job name of an attempt, and the SubmitJob request of an attempt.
 */
import { createHash } from 'node:crypto';
import type {
  KeyValuePair,
  RegisterJobDefinitionCommandInput,
  SubmitJobCommandInput,
  TaskContainerProperties,
} from '@aws-sdk/client-batch';

/** The containers of every Strand job on AWS Batch, by name (DescribeJobs reports them so). */
export const CONTAINER = { stageIn: 'stage-in', tool: 'tool', stageOut: 'stage-out' } as const;

/** Where the task volume shared by the three containers is mounted in each. */
export const TASK_ROOT = '/strand';
const VOLUME = 'strand';

/** The variable the stage containers read their plan from (`strand stage in env:…`). */
export const PLAN_VARIABLE = 'STRAND_STAGE_PLAN';

/** What the stage containers get: they download and upload, the tool's container computes. */
const STAGE_VCPUS = 1;
const STAGE_MEMORY_MIB = 512;

/**
 * Added to a job's timeout for its Batch attempt: the wrapper stops the tool at the job's own
 * timeout, and the stage-out then needs time to publish what it left.
 */
export const STAGE_ALLOWANCE_SECONDS = 1800;

/** Seconds between the wrapper's SIGTERM and SIGKILL of a tool it stops. */
const GRACE_SECONDS = 10;

export interface JobDefinitionSettings {
  /** The image of the stage-in and stage-out containers (Node and Strand). */
  stageImage: string;
  jobRoleArn?: string;
  executionRoleArn?: string;
  /** CloudWatch Logs group of the containers (default: Batch's, /aws/batch/job). */
  logGroup?: string;
  region: string;
}

/** A name AWS takes (letters, digits, - and _, up to `max`), readable and unique by a hash. */
function awsName(prefix: string, text: string, unique: string, max: number): string {
  const safe = text.replace(/[^A-Za-z0-9_-]/g, '_');
  const full = `${prefix}${safe}`;
  if (full.length <= max && unique === '') return full;
  const hash = createHash('sha256')
    .update(unique || text)
    .digest('hex')
    .slice(0, 16);
  const room = max - prefix.length - hash.length - 1;
  return `${prefix}${safe.slice(0, room)}-${hash}`;
}

/** The job name of an attempt: the same for every submit of it, so ListJobs finds it again. */
export function jobNameFor(jobId: string, attempt: number): string {
  const tail = `-${attempt}`;
  const safe = jobId.replace(/[^A-Za-z0-9_-]/g, '_');
  const name = `strand-${safe}${tail}`;
  if (name.length <= 128 && safe === jobId) return name;
  // Two ids that differ only where characters were replaced must not share a name.
  return awsName('strand-', jobId, `${jobId}\0${attempt}`, 128 - tail.length) + tail;
}

function logConfiguration(s: JobDefinitionSettings): TaskContainerProperties['logConfiguration'] {
  if (s.logGroup === undefined) return undefined;
  return {
    logDriver: 'awslogs',
    options: {
      'awslogs-group': s.logGroup,
      'awslogs-region': s.region,
      'awslogs-stream-prefix': 'strand',
    },
  };
}

/**
 * The job definition for jobs of `image`: a task of three containers sharing a volume. The
 * stage-in (Strand's stage image) makes the inputs available and puts the launcher on the
 * volume; the tool (the step's image, which needs nothing else) starts once it has completed,
 * through the launcher, which records its exit; the stage-out, the one essential container,
 * starts once the tool has completed, publishes, and exits with the tool's exit code. Commands,
 * environments and sizes come with each SubmitJob. Its name is a digest of its content, so it
 * is registered once and found again by any Strand.
 */
export function jobDefinitionFor(
  image: string,
  s: JobDefinitionSettings,
): RegisterJobDefinitionCommandInput & { jobDefinitionName: string } {
  const mountPoints = [{ sourceVolume: VOLUME, containerPath: TASK_ROOT, readOnly: false }];
  const logs = logConfiguration(s);
  const stage = (
    name: string,
    verb: 'in' | 'out',
    essential: boolean,
  ): TaskContainerProperties => ({
    name,
    image: s.stageImage,
    essential,
    command: ['strand', 'stage', verb, `env:${PLAN_VARIABLE}`],
    mountPoints,
    resourceRequirements: [
      { type: 'VCPU', value: String(STAGE_VCPUS) },
      { type: 'MEMORY', value: String(STAGE_MEMORY_MIB) },
    ],
    ...(logs ? { logConfiguration: logs } : {}),
  });
  const containers: TaskContainerProperties[] = [
    stage(CONTAINER.stageIn, 'in', false),
    {
      name: CONTAINER.tool,
      image,
      // An essential tool's exit would stop the task before its outputs are published.
      essential: false,
      dependsOn: [{ containerName: CONTAINER.stageIn, condition: 'COMPLETE' }],
      command: [`${TASK_ROOT}/bin/strand-launcher`],
      mountPoints,
      resourceRequirements: [
        { type: 'VCPU', value: '1' },
        { type: 'MEMORY', value: '2048' },
      ],
      ...(logs ? { logConfiguration: logs } : {}),
    },
    {
      ...stage(CONTAINER.stageOut, 'out', true),
      dependsOn: [{ containerName: CONTAINER.tool, condition: 'COMPLETE' }],
    },
  ];
  const body = {
    type: 'container' as const,
    platformCapabilities: ['EC2' as const],
    // Retries are the state machine's and the local Batch's: each attempt is a job of its own.
    retryStrategy: { attempts: 1 },
    propagateTags: true,
    ecsProperties: {
      taskProperties: [
        {
          containers,
          volumes: [{ name: VOLUME }],
          ...(s.jobRoleArn ? { taskRoleArn: s.jobRoleArn } : {}),
          ...(s.executionRoleArn ? { executionRoleArn: s.executionRoleArn } : {}),
        },
      ],
    },
  };
  const digest = createHash('sha256').update(JSON.stringify({ image, body })).digest('hex');
  const jobDefinitionName = awsName('strand-', image, digest, 128);
  return { jobDefinitionName, ...body, tags: { 'strand:image': image.slice(0, 256) } };
}

/** What one attempt runs with (JobAttemptSpec after staging). */
export interface StagedSubmit {
  jobName: string;
  jobQueue: string;
  /** The definition's ARN (name:revision). */
  jobDefinition: string;
  /** The tool's argv and environment, with staged inputs' paths. */
  command: string[];
  environment: Record<string, string>;
  vcpus: number;
  memoryMiB: number;
  timeoutSeconds?: number;
  /** The stage-in's and stage-out's plan (JSON). */
  plan: string;
  tags: Record<string, string>;
}

/** A tag AWS takes: keys up to 128 characters, values up to 256, of its characters. */
const TAG_TEXT = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

/** The tags AWS accepts of `tags` (up to 50; the others are left off). */
export function awsTags(tags: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags)) {
    if (Object.keys(out).length >= 50) break;
    if (k.length === 0 || k.length > 128 || v.length > 256 || k.startsWith('aws:')) continue;
    if (TAG_TEXT.test(k) && TAG_TEXT.test(v)) out[k] = v;
  }
  return out;
}

/**
 * The SubmitJob request of an attempt: the tool's command wrapped by the launcher (its pid
 * file, log and `stdout:` file on the shared volume, its own timeout and grace period), its
 * environment and size, the plan for both stage containers, the timeout of the whole task.
 */
export function submitRequest(a: StagedSubmit): SubmitJobCommandInput {
  const root = TASK_ROOT;
  const stdout = a.environment.STRAND_STDOUT;
  const wrapped = [
    `${root}/bin/strand-launcher`,
    'wrap',
    '-C',
    `${root}/work`,
    `${root}/run/pid`,
    `${root}/run/stop`,
    `${root}/run/log`,
    stdout !== undefined && stdout !== '' && !stdout.startsWith('/') ? stdout : '',
    `0:${a.timeoutSeconds ?? ''}:${GRACE_SECONDS}`,
    '--',
    ...a.command,
  ];
  // AWS sets AWS_BATCH_* itself and refuses them in a request.
  const environment: KeyValuePair[] = Object.entries(a.environment)
    .filter(([name]) => !name.startsWith('AWS_BATCH'))
    .map(([name, value]) => ({ name, value }));
  const plan = [{ name: PLAN_VARIABLE, value: a.plan }];
  return {
    jobName: a.jobName,
    jobQueue: a.jobQueue,
    jobDefinition: a.jobDefinition,
    retryStrategy: { attempts: 1 },
    propagateTags: true,
    ...(a.timeoutSeconds === undefined
      ? {}
      : {
          timeout: {
            attemptDurationSeconds: Math.max(60, a.timeoutSeconds + STAGE_ALLOWANCE_SECONDS),
          },
        }),
    tags: awsTags(a.tags),
    ecsPropertiesOverride: {
      taskProperties: [
        {
          containers: [
            { name: CONTAINER.stageIn, environment: plan },
            {
              name: CONTAINER.tool,
              command: wrapped,
              environment,
              resourceRequirements: [
                // EC2 tasks take whole vCPUs.
                { type: 'VCPU', value: String(Math.max(1, Math.ceil(a.vcpus))) },
                { type: 'MEMORY', value: String(Math.max(4, Math.round(a.memoryMiB))) },
              ],
            },
            { name: CONTAINER.stageOut, environment: plan },
          ],
        },
      ],
    },
  };
}
