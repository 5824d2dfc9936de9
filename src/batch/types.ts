/** AWS Batch shapes, named as in the AWS Batch API (RegisterJobDefinition, SubmitJob, DescribeJobs). */

export type JobStatus =
  'SUBMITTED' | 'PENDING' | 'RUNNABLE' | 'STARTING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';

export interface KeyValuePair {
  name: string;
  value: string;
}

export interface ResourceRequirement {
  type: 'VCPU' | 'MEMORY' | 'GPU';
  value: string;
}

export interface EvaluateOnExit {
  onStatusReason?: string;
  onReason?: string;
  onExitCode?: string;
  action: 'RETRY' | 'EXIT' | 'retry' | 'exit';
}

export interface RetryStrategy {
  attempts?: number;
  evaluateOnExit?: EvaluateOnExit[];
}

/**
 * A value the job gets in its environment when it starts, read from `valueFrom` (AWS: a Secrets
 * Manager or SSM Parameter Store ARN; the local Batch: `env:NAME` or `file:/path`). Only the
 * reference is ever recorded or shown.
 */
export interface Secret {
  name: string;
  valueFrom: string;
}

export interface ContainerProperties {
  image?: string;
  command?: string[];
  environment?: KeyValuePair[];
  secrets?: Secret[];
  resourceRequirements?: ResourceRequirement[];
  /** Legacy fields, still accepted by AWS. */
  vcpus?: number;
  memory?: number;
}

export interface RegisterJobDefinitionRequest {
  jobDefinitionName: string;
  type: 'container';
  parameters?: Record<string, string>;
  containerProperties: ContainerProperties;
  retryStrategy?: RetryStrategy;
  timeout?: { attemptDurationSeconds?: number };
  tags?: Record<string, string>;
}

export interface JobDefinition extends RegisterJobDefinitionRequest {
  jobDefinitionArn: string;
  revision: number;
  status: 'ACTIVE' | 'INACTIVE';
}

export interface ComputeEnvironment {
  computeEnvironmentName: string;
  computeEnvironmentArn: string;
  state: 'ENABLED' | 'DISABLED';
  /** The local executor's capacity. */
  maxvCpus: number;
  memoryMiB: number;
  /** What its jobs run on: `local` (processes, the default), `podman` or `docker` (containers). */
  executor?: string;
  /** As declared by CreateComputeEnvironment (see resources.ts); MANAGED when absent. */
  type?: 'MANAGED' | 'UNMANAGED';
  computeResources?: Record<string, unknown>;
  serviceRole?: string;
  tags?: Record<string, string>;
  /**
   * Created or updated by a request: kept as it is when the Batch opens (otherwise `local`
   * follows this machine's size, and an executor's environment follows `local`).
   */
  declared?: boolean;
}

export interface JobQueue {
  jobQueueName: string;
  jobQueueArn: string;
  state: 'ENABLED' | 'DISABLED';
  priority: number;
  computeEnvironmentOrder: { order: number; computeEnvironment: string }[];
  tags?: Record<string, string>;
}

export interface ContainerOverrides {
  command?: string[];
  environment?: KeyValuePair[];
  resourceRequirements?: ResourceRequirement[];
  vcpus?: number;
  memory?: number;
}

export interface JobDependency {
  jobId: string;
  type?: 'N_TO_N' | 'SEQUENTIAL';
}

export interface SubmitJobRequest {
  jobName: string;
  jobQueue: string;
  jobDefinition: string;
  parameters?: Record<string, string>;
  containerOverrides?: ContainerOverrides;
  arrayProperties?: { size?: number };
  dependsOn?: JobDependency[];
  retryStrategy?: RetryStrategy;
  timeout?: { attemptDurationSeconds?: number };
  tags?: Record<string, string>;
}

export interface AttemptDetail {
  container: { exitCode?: number; reason?: string; logStreamName: string };
  startedAt?: number;
  stoppedAt?: number;
  statusReason?: string;
  /**
   * Strand's: the vCPUs and memory (MiB) the attempt had, its processes' CPU time, and their
   * peak memory (MiB; measured by the local, container and SLURM executors, not on AWS Batch).
   */
  vcpus?: number;
  memoryMiB?: number;
  cpuSeconds?: number;
  peakMemoryMiB?: number;
}

/** A job as DescribeJobs returns it. */
export interface JobDetail {
  jobArn: string;
  jobName: string;
  jobId: string;
  jobQueue: string;
  status: JobStatus;
  statusReason?: string;
  attempts: AttemptDetail[];
  createdAt: number;
  startedAt?: number;
  stoppedAt?: number;
  dependsOn: JobDependency[];
  jobDefinition: string;
  parameters: Record<string, string>;
  container: {
    image?: string;
    command: string[];
    environment: KeyValuePair[];
    /** Names and sources only, as DescribeJobs shows them; never the values. */
    secrets?: Secret[];
    resourceRequirements: ResourceRequirement[];
    exitCode?: number;
    reason?: string;
    logStreamName?: string;
  };
  retryStrategy?: RetryStrategy;
  timeout?: { attemptDurationSeconds?: number };
  tags?: Record<string, string>;
  /**
   * Strand's: for a job with a range of vCPUs, the size its latest attempt was given and why
   * (`strand batch describe` shows it).
   */
  sizing?: { vcpus: number; memoryMiB: number; reason: string };
  arrayProperties?: {
    size?: number;
    index?: number;
    statusSummary?: Partial<Record<JobStatus, number>>;
  };
}
