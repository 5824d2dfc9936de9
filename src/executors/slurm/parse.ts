/**
 * What SLURM's commands print, read as data: `squeue` lines, `sacct` lines, `sinfo` node lines,
 * `sbatch --parsable` answers and errors; and SLURM's job states mapped to AWS Batch's, with the
 * reasons AWS Batch gives. Pure: no process, no clock, no file.
 */
import { OOM_REASON, TIMEOUT_REASON } from '../executor.js';

/** The `squeue --format` this executor asks for: job id, state, reason, then the name (last, as
 * it is the one field a user could fill with anything). */
export const SQUEUE_FORMAT = '%i|%T|%r|%j';

/** One job as `squeue` (or `sacct`) lists it. */
export interface SlurmJobInfo {
  id: string;
  /** The long state name (PENDING, RUNNING, COMPLETED, OUT_OF_MEMORY, …). */
  state: string;
  /** Why it is pending, or why it ended ("None" when SLURM gives none). */
  reason: string;
  name: string;
  /** `sacct`'s "CODE:SIGNAL", when known. */
  exitCode?: string;
}

/**
 * Lines of `squeue --noheader --format=SQUEUE_FORMAT`, by job id. Lines that are not of that
 * shape (a warning SLURM printed on standard output) are skipped; an array job's tasks keep their
 * `ID_TASK` ids.
 */
export function parseSqueue(text: string): Map<string, SlurmJobInfo> {
  const jobs = new Map<string, SlurmJobInfo>();
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+(?:_\d+)?)\|([A-Z_]+)\|([^|]*)\|(.*)$/.exec(line.trimEnd());
    if (!m) continue;
    jobs.set(m[1], { id: m[1], state: m[2], reason: m[3].trim() || 'None', name: m[4] });
  }
  return jobs;
}

/** `sacct --noheader --parsable2 --format=JobID,State,ExitCode,JobName` lines, by job id (the
 * job's own line, not its steps'). */
export function parseSacct(text: string): Map<string, SlurmJobInfo> {
  const jobs = new Map<string, SlurmJobInfo>();
  for (const line of text.split('\n')) {
    const [id, state, exitCode, ...name] = line.trim().split('|');
    if (!id || !/^\d+(_\d+)?$/.test(id) || !state) continue;
    // "CANCELLED by 0": the state is the first word.
    jobs.set(id, {
      id,
      state: state.split(' ')[0],
      reason: 'None',
      name: name.join('|'),
      ...(exitCode ? { exitCode } : {}),
    });
  }
  return jobs;
}

/** The job id `sbatch --parsable` printed ("ID" or "ID;CLUSTER"); undefined when there is none. */
export function parseSbatch(text: string): string | undefined {
  const line = text
    .split('\n')
    .map((l) => l.trim())
    .find((l) => /^\d+(;\S+)?$/.test(l));
  return line?.split(';')[0];
}

/**
 * The message of a SLURM command's error output: its `error:` lines without the program's
 * prefix, the last first (sbatch ends with the verdict: "Batch job submission failed: Invalid
 * partition name specified"), joined; `fallback` when it printed none.
 */
export function slurmError(stderr: string, fallback: string): string {
  const errors = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /\berror:/.test(l))
    .map((l) => l.replace(/^.*?\berror:\s*/, ''));
  if (errors.length === 0) return stderr.trim().split('\n')[0]?.trim() || fallback;
  return [...new Set(errors.reverse())].join('; ');
}

/** One node of `sinfo --noheader --Node --format=SINFO_FORMAT`. */
export const SINFO_FORMAT = '%N|%c|%m|%P|%t';

export interface SlurmNodeInfo {
  name: string;
  cpus: number;
  memoryMiB: number;
  /** Its partitions (sinfo lists a node once per partition; the default one without its `*`). */
  partitions: string[];
  /** The short state (idle, mix, alloc, down, drain, …; `*` when not responding). */
  state: string;
  /** The partition sinfo marks as the default (`*`), when this node is in it. */
  defaultPartition?: string;
}

/** Nodes of `sinfo --Node` lines, one entry per node, their partitions gathered. */
export function parseSinfo(text: string): SlurmNodeInfo[] {
  const nodes = new Map<string, SlurmNodeInfo>();
  for (const line of text.split('\n')) {
    const [name, cpus, memory, partition, state] = line.trim().split('|');
    if (!name || !partition || !/^\d+$/.test(cpus ?? '') || !/^\d+/.test(memory ?? '')) continue;
    const isDefault = partition.endsWith('*');
    const p = partition.replace(/\*$/, '');
    const node = nodes.get(name) ?? {
      name,
      cpus: Number(cpus),
      memoryMiB: parseInt(memory, 10),
      partitions: [],
      state: state ?? '',
    };
    if (!node.partitions.includes(p)) node.partitions.push(p);
    if (isDefault) node.defaultPartition = p;
    nodes.set(name, node);
  }
  return [...nodes.values()];
}

/** Node states whose CPUs a job cannot be given (sinfo's short names; `*`: not responding). */
const UNUSABLE = /^(down|drain|drng|fail|failg|futr|inval|maint|boot|powered_down|pow_dn|npc)/;

/**
 * What a partition (its nodes that can run jobs) has in all, and its largest node: the capacity
 * of a compute environment SLURM places the jobs of. `partition` undefined: the default one.
 */
export function partitionCapacity(
  nodes: SlurmNodeInfo[],
  partition?: string,
): { vcpus: number; memoryMiB: number; largest: { cpus: number; memoryMiB: number } } | undefined {
  const name = partition ?? nodes.find((n) => n.defaultPartition)?.defaultPartition;
  const members = nodes.filter(
    (n) =>
      (name === undefined || n.partitions.includes(name)) &&
      !UNUSABLE.test(n.state) &&
      !n.state.endsWith('*'),
  );
  if (members.length === 0) return undefined;
  return {
    vcpus: members.reduce((sum, n) => sum + n.cpus, 0),
    memoryMiB: members.reduce((sum, n) => sum + n.memoryMiB, 0),
    largest: {
      cpus: Math.max(...members.map((n) => n.cpus)),
      memoryMiB: Math.max(...members.map((n) => n.memoryMiB)),
    },
  };
}

/**
 * Reasons a PENDING job gives when it can never start as asked (more CPUs or memory than any
 * node of its partition has, a time limit over the partition's, an account or QOS it may not
 * use): SLURM keeps such a job pending for ever, as AWS Batch keeps a job RUNNABLE; Strand fails
 * it instead, naming the reason. Reasons that pass (Resources, Priority, a partition that is
 * down for a while, a held job) are not among them.
 */
const NEVER_RUNS =
  /^(BadConstraints|PartitionConfig|PartitionNodeLimit|PartitionTimeLimit|InvalidAccount|InvalidQOS|DependencyNeverSatisfied|(Assoc|QOS)Max\w*PerJob\w*|QOSMinGRES|MaxCpuPerAccount)$/;

/** Whether a PENDING job with this reason can never start (see NEVER_RUNS). */
export function neverRuns(reason: string): boolean {
  return NEVER_RUNS.test(reason);
}

/** What AWS Batch would say of a SLURM job: its state and, once it has ended, why. */
export type BatchView =
  | { status: 'RUNNABLE' | 'STARTING' | 'RUNNING'; statusReason: string }
  | { status: 'SUCCEEDED' }
  | { status: 'FAILED'; statusReason: string; exitCode?: number };

/**
 * A SLURM job state (squeue's %T, sacct's State) as AWS Batch's job status, with the reason AWS
 * Batch gives for the like of it: an out-of-memory end is 137 with OutOfMemoryError, a time
 * limit the timeout's reason, a lost or preempted node a host's. What ended with an exit file is
 * read from the file instead; this is for a job whose file is not there. `id` names the job in
 * reasons.
 */
export function batchViewOf(id: string, state: string, reason = 'None'): BatchView {
  const why = reason && reason !== 'None' ? ` (${reason})` : '';
  switch (state) {
    case 'PENDING':
    case 'REQUEUED':
    case 'REQUEUE_HOLD':
    case 'REQUEUE_FED':
      return {
        status: 'RUNNABLE',
        statusReason: neverRuns(reason)
          ? `SLURM job ${id} can never start as asked${why}`
          : `SLURM job ${id} is ${state}${why}`,
      };
    case 'CONFIGURING':
    case 'RESV_DEL_HOLD':
      return { status: 'STARTING', statusReason: `SLURM job ${id} is ${state}` };
    case 'RUNNING':
    case 'COMPLETING':
    case 'SIGNALING':
    case 'STAGE_OUT':
    case 'RESIZING':
    case 'SUSPENDED':
    case 'STOPPED':
      return { status: 'RUNNING', statusReason: `SLURM job ${id} is ${state}${why}` };
    case 'COMPLETED':
      return { status: 'SUCCEEDED' };
    case 'OUT_OF_MEMORY':
      return { status: 'FAILED', exitCode: 137, statusReason: OOM_REASON };
    case 'TIMEOUT':
    case 'DEADLINE':
      return { status: 'FAILED', statusReason: TIMEOUT_REASON };
    case 'CANCELLED':
      return {
        status: 'FAILED',
        statusReason: `Terminated: SLURM job ${id} was cancelled (scancel, or an administrator)`,
      };
    case 'NODE_FAIL':
      return {
        status: 'FAILED',
        statusReason: `Host terminated: the node of SLURM job ${id} failed (NODE_FAIL)`,
      };
    case 'BOOT_FAIL':
      return {
        status: 'FAILED',
        statusReason: `Host terminated: the node of SLURM job ${id} failed to boot (BOOT_FAIL)`,
      };
    case 'PREEMPTED':
      return {
        status: 'FAILED',
        statusReason: `Host terminated: SLURM job ${id} was preempted by another job (PREEMPTED)`,
      };
    case 'FAILED':
      return {
        status: 'FAILED',
        statusReason: `SLURM job ${id} FAILED${why} without recording an exit code (see its log)`,
      };
    default:
      // REVOKED, SPECIAL_EXIT and states of later versions: ended, for a reason SLURM names.
      return {
        status: 'FAILED',
        statusReason: `SLURM job ${id} ended as ${state}${why} without recording an exit code`,
      };
  }
}

/** Whether a SLURM job state is an end (the job's processes are gone, or going). */
export function hasEnded(state: string): boolean {
  const view = batchViewOf('', state);
  return view.status === 'SUCCEEDED' || view.status === 'FAILED';
}
