/**
 * Compute environments and job queues in AWS Batch's request and response shapes
 * (CreateComputeEnvironment, UpdateJobQueue, DescribeJobQueues, …): checked here, stored by the
 * local Batch as ComputeEnvironment and JobQueue records. A local compute environment is a
 * capacity on one machine (or in one container runtime): `maxvCpus` and a memory size. It may be
 * declared larger than the machine, to run definitions written for bigger instances: its jobs
 * then share the machine's cores, which `statusReason` says.
 */
import type { ComputeEnvironment, JobQueue } from './types.js';

/** Bad Batch input (unknown queue or definition, bad sizes): the CLI exits 2. */
export class BatchInputError extends Error {
  readonly code = 'BATCH_INPUT';
  constructor(message: string) {
    super(message);
    this.name = 'BatchInputError';
  }
}

export const ARN = 'arn:aws:batch:local:000000000000';

export type ResourceState = 'ENABLED' | 'DISABLED';

export interface ComputeResources {
  /** EC2, SPOT, FARGATE or FARGATE_SPOT on AWS; kept as declared, jobs run locally either way. */
  type?: string;
  minvCpus?: number;
  maxvCpus?: number;
  desiredvCpus?: number;
  instanceTypes?: string[];
  [key: string]: unknown;
}

export interface CreateComputeEnvironmentRequest {
  computeEnvironmentName: string;
  /** MANAGED (default) or UNMANAGED (sized by `unmanagedvCpus`). */
  type?: 'MANAGED' | 'UNMANAGED';
  state?: ResourceState;
  unmanagedvCpus?: number;
  computeResources?: ComputeResources;
  serviceRole?: string;
  tags?: Record<string, string>;
  /** Strand: its memory in MiB (default: this machine's). */
  memoryMiB?: number;
  /** Strand: what runs its jobs, `local` (default), `podman`, `docker`, `aws-batch` or `slurm`. */
  executor?: string;
}

export interface UpdateComputeEnvironmentRequest {
  computeEnvironment: string;
  state?: ResourceState;
  unmanagedvCpus?: number;
  computeResources?: ComputeResources;
  serviceRole?: string;
  memoryMiB?: number;
}

export interface ComputeEnvironmentOrder {
  order: number;
  computeEnvironment: string;
}

export interface CreateJobQueueRequest {
  jobQueueName: string;
  priority: number;
  computeEnvironmentOrder: ComputeEnvironmentOrder[];
  state?: ResourceState;
  tags?: Record<string, string>;
}

export interface UpdateJobQueueRequest {
  jobQueue: string;
  priority?: number;
  computeEnvironmentOrder?: ComputeEnvironmentOrder[];
  state?: ResourceState;
}

/** DescribeComputeEnvironments' entries. */
export interface ComputeEnvironmentDetail {
  computeEnvironmentName: string;
  computeEnvironmentArn: string;
  type: 'MANAGED' | 'UNMANAGED';
  state: ResourceState;
  status: 'VALID';
  statusReason: string;
  unmanagedvCpus?: number;
  computeResources?: ComputeResources;
  serviceRole?: string;
  tags?: Record<string, string>;
  containerOrchestrationType: 'ECS';
  /** Strand: its memory, and what runs its jobs. */
  memoryMiB: number;
  executor: string;
}

/** DescribeJobQueues' entries. */
export interface JobQueueDetail {
  jobQueueName: string;
  jobQueueArn: string;
  state: ResourceState;
  status: 'VALID';
  statusReason: string;
  priority: number;
  computeEnvironmentOrder: ComputeEnvironmentOrder[];
  tags?: Record<string, string>;
}

/** A name or an ARN (of any account and region) → the name. */
export function resourceName(nameOrArn: string, kind: 'job-queue' | 'compute-environment'): string {
  const i = nameOrArn.lastIndexOf(`:${kind}/`);
  return i >= 0 ? nameOrArn.slice(i + kind.length + 2) : nameOrArn;
}

export function computeEnvironmentArn(name: string): string {
  return `${ARN}:compute-environment/${name}`;
}

export function jobQueueArn(name: string): string {
  return `${ARN}:job-queue/${name}`;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

function checkName(what: string, name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name))
    throw new BatchInputError(
      `${what} ${JSON.stringify(name)} must be 1-128 letters, digits, - or _, starting with a letter or digit`,
    );
  return name;
}

function checkState(state: unknown): ResourceState | undefined {
  if (state === undefined) return undefined;
  if (state !== 'ENABLED' && state !== 'DISABLED')
    throw new BatchInputError(`state ${JSON.stringify(state)}: use ENABLED or DISABLED`);
  return state;
}

function positive(what: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
    throw new BatchInputError(`${what} must be a whole number of at least 1, not ${String(value)}`);
  return value;
}

const EXECUTORS = ['local', 'podman', 'docker', 'aws-batch', 'slurm'];

function checkExecutor(executor: unknown): string | undefined {
  if (executor === undefined) return undefined;
  if (typeof executor !== 'string' || !EXECUTORS.includes(executor))
    throw new BatchInputError(`executor ${JSON.stringify(executor)}: use ${EXECUTORS.join(', ')}`);
  return executor;
}

/** The vCPUs a request declares: `computeResources.maxvCpus`, or `unmanagedvCpus`. */
function declaredVcpus(
  type: 'MANAGED' | 'UNMANAGED',
  req: { unmanagedvCpus?: number; computeResources?: ComputeResources },
): number | undefined {
  if (type === 'UNMANAGED') return positive('unmanagedvCpus', req.unmanagedvCpus);
  return positive('computeResources.maxvCpus', req.computeResources?.maxvCpus);
}

/** The record a CreateComputeEnvironment request makes, on a machine of `machine`'s size. */
export function newComputeEnvironment(
  req: CreateComputeEnvironmentRequest,
  machine: { vcpus: number; memoryMiB: number },
): ComputeEnvironment {
  const name = checkName('computeEnvironmentName', req.computeEnvironmentName);
  const type = req.type ?? 'MANAGED';
  if (type !== 'MANAGED' && type !== 'UNMANAGED')
    throw new BatchInputError(`type ${JSON.stringify(type)}: use MANAGED or UNMANAGED`);
  const vcpus = declaredVcpus(type, req);
  if (type === 'MANAGED' && vcpus === undefined)
    throw new BatchInputError(
      `compute environment "${name}": a MANAGED one needs computeResources.maxvCpus`,
    );
  if (type === 'UNMANAGED' && vcpus === undefined)
    throw new BatchInputError(
      `compute environment "${name}": an UNMANAGED one needs unmanagedvCpus`,
    );
  const executor = checkExecutor(req.executor);
  return {
    computeEnvironmentName: name,
    computeEnvironmentArn: computeEnvironmentArn(name),
    state: checkState(req.state) ?? 'ENABLED',
    maxvCpus: vcpus!,
    memoryMiB: positive('memoryMiB', req.memoryMiB) ?? machine.memoryMiB,
    ...(executor && executor !== 'local' ? { executor } : {}),
    type,
    declared: true,
    ...(req.computeResources ? { computeResources: { ...req.computeResources } } : {}),
    ...(req.serviceRole ? { serviceRole: req.serviceRole } : {}),
    ...(req.tags ? { tags: { ...req.tags } } : {}),
  };
}

/** `ce` as an UpdateComputeEnvironment request leaves it. */
export function updatedComputeEnvironment(
  ce: ComputeEnvironment,
  req: UpdateComputeEnvironmentRequest,
): ComputeEnvironment {
  const type = ce.type ?? 'MANAGED';
  const vcpus = declaredVcpus(type, req);
  const memoryMiB = positive('memoryMiB', req.memoryMiB);
  return {
    ...ce,
    state: checkState(req.state) ?? ce.state,
    ...(vcpus !== undefined ? { maxvCpus: vcpus } : {}),
    ...(memoryMiB !== undefined ? { memoryMiB } : {}),
    ...(req.computeResources
      ? { computeResources: { ...ce.computeResources, ...req.computeResources } }
      : {}),
    ...(req.serviceRole ? { serviceRole: req.serviceRole } : {}),
    declared: true,
  };
}

/** A memory size for messages: `512 MiB`, `4 GiB`, `23.4 GiB`. */
export function formatMiB(mib: number): string {
  return mib >= 1024 ? `${+(mib / 1024).toFixed(1)} GiB` : `${mib} MiB`;
}

/** DescribeComputeEnvironments' entry for `ce`, on a machine of `machine`'s size. */
export function computeEnvironmentDetail(
  ce: ComputeEnvironment,
  machine: { vcpus: number; memoryMiB: number },
): ComputeEnvironmentDetail {
  const executor = ce.executor ?? 'local';
  // SLURM places its jobs on the cluster's nodes: its size is what Strand hands it at once.
  const elsewhere = executor === 'slurm';
  const runs =
    executor === 'local'
      ? 'runs jobs as processes on this machine'
      : elsewhere
        ? "hands its jobs to SLURM, which places them on the cluster's nodes"
        : `runs jobs in ${executor} containers on this machine`;
  const shares: string[] = [];
  if (!elsewhere && ce.maxvCpus > machine.vcpus)
    shares.push(
      `declares ${ce.maxvCpus} vCPU on a machine with ${machine.vcpus}: its jobs share the machine's cores`,
    );
  if (!elsewhere && ce.memoryMiB > machine.memoryMiB)
    shares.push(
      `declares ${formatMiB(ce.memoryMiB)} on a machine with ${formatMiB(machine.memoryMiB)}: its jobs may run out of memory together`,
    );
  const type = ce.type ?? 'MANAGED';
  return {
    computeEnvironmentName: ce.computeEnvironmentName,
    computeEnvironmentArn: ce.computeEnvironmentArn,
    type,
    state: ce.state,
    status: 'VALID',
    statusReason: [`${runs} (${ce.maxvCpus} vCPU, ${formatMiB(ce.memoryMiB)})`, ...shares].join(
      '; ',
    ),
    ...(type === 'UNMANAGED'
      ? { unmanagedvCpus: ce.maxvCpus }
      : {
          computeResources: {
            type: 'EC2',
            minvCpus: 0,
            ...ce.computeResources,
            maxvCpus: ce.maxvCpus,
          },
        }),
    ...(ce.serviceRole ? { serviceRole: ce.serviceRole } : {}),
    ...(ce.tags ? { tags: ce.tags } : {}),
    containerOrchestrationType: 'ECS',
    memoryMiB: ce.memoryMiB,
    executor,
  };
}

/** Checks a queue's compute environment order: 1 to 3 entries, distinct orders and names. */
function checkOrder(order: unknown, environments: readonly string[]): ComputeEnvironmentOrder[] {
  if (!Array.isArray(order) || order.length === 0 || order.length > 3)
    throw new BatchInputError(
      'computeEnvironmentOrder needs 1 to 3 entries of {order, computeEnvironment}',
    );
  const out: ComputeEnvironmentOrder[] = [];
  for (const o of order as Partial<ComputeEnvironmentOrder>[]) {
    if (typeof o?.order !== 'number' || !Number.isInteger(o.order) || o.order < 0)
      throw new BatchInputError(
        `computeEnvironmentOrder: order ${JSON.stringify(o?.order)} must be a whole number`,
      );
    if (typeof o.computeEnvironment !== 'string' || o.computeEnvironment === '')
      throw new BatchInputError(
        `computeEnvironmentOrder: order ${o.order} names no computeEnvironment`,
      );
    const name = resourceName(o.computeEnvironment, 'compute-environment');
    if (!environments.includes(name))
      throw new BatchInputError(
        `no compute environment named "${name}" (compute environments: ${environments.join(', ')})`,
      );
    if (out.some((x) => x.order === o.order))
      throw new BatchInputError(`computeEnvironmentOrder: order ${o.order} is given twice`);
    if (out.some((x) => x.computeEnvironment === computeEnvironmentArn(name)))
      throw new BatchInputError(`computeEnvironmentOrder: "${name}" is given twice`);
    out.push({ order: o.order, computeEnvironment: computeEnvironmentArn(name) });
  }
  return out.sort((a, b) => a.order - b.order);
}

function checkPriority(priority: unknown): number {
  if (
    typeof priority !== 'number' ||
    !Number.isInteger(priority) ||
    priority < 0 ||
    priority > 1000
  )
    throw new BatchInputError(
      `priority must be a whole number from 0 to 1000, not ${JSON.stringify(priority)}`,
    );
  return priority;
}

/** The record a CreateJobQueue request makes, given the compute environments there are. */
export function newJobQueue(req: CreateJobQueueRequest, environments: readonly string[]): JobQueue {
  const name = checkName('jobQueueName', req.jobQueueName);
  return {
    jobQueueName: name,
    jobQueueArn: jobQueueArn(name),
    state: checkState(req.state) ?? 'ENABLED',
    priority: checkPriority(req.priority),
    computeEnvironmentOrder: checkOrder(req.computeEnvironmentOrder, environments),
    ...(req.tags ? { tags: { ...req.tags } } : {}),
  };
}

/** `q` as an UpdateJobQueue request leaves it. */
export function updatedJobQueue(
  q: JobQueue,
  req: UpdateJobQueueRequest,
  environments: readonly string[],
): JobQueue {
  return {
    ...q,
    state: checkState(req.state) ?? q.state,
    ...(req.priority !== undefined ? { priority: checkPriority(req.priority) } : {}),
    ...(req.computeEnvironmentOrder !== undefined
      ? { computeEnvironmentOrder: checkOrder(req.computeEnvironmentOrder, environments) }
      : {}),
  };
}

/** DescribeJobQueues' entry for `q`. */
export function jobQueueDetail(q: JobQueue): JobQueueDetail {
  return {
    jobQueueName: q.jobQueueName,
    jobQueueArn: q.jobQueueArn,
    state: q.state,
    status: 'VALID',
    statusReason: q.state === 'ENABLED' ? 'JobQueue Healthy' : 'JobQueue disabled',
    priority: q.priority,
    computeEnvironmentOrder: q.computeEnvironmentOrder.map((o) => ({
      order: o.order,
      computeEnvironment: computeEnvironmentArn(
        resourceName(o.computeEnvironment, 'compute-environment'),
      ),
    })),
    ...(q.tags ? { tags: q.tags } : {}),
  };
}
