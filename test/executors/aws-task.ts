/**
 * Runs a fake AWS Batch job's three containers on this machine, as ECS would run them in one
 * task: the stage-in and stage-out through Strand's own staging (what `strand stage in|out` do
 * in the stage image), the tool as the command its container was given (the launcher's `wrap`,
 * copied by the stage-in onto the task's volume). The task's volume, `/strand` in the
 * containers, is a directory of its own per job here; its image is ignored.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PLAN_VARIABLE, TASK_ROOT } from '../../src/executors/aws-batch/job-definition.js';
import { parseStagePlan } from '../../src/functions/stage-plan.js';
import { stageIn, stageOut } from '../../src/functions/stage-task.js';
import { openStore } from '../../src/storage/store.js';
import type { FakeAws, FakeJob, Outcome } from './aws-fake.js';

/** `TASK_ROOT` as a path (not as the start of a longer name) in a text. */
const ROOT = new RegExp(`${TASK_ROOT}(?=/|"|$)`, 'g');

/** A runner for FakeAws that runs each job's containers here (see above). */
export function runTasksHere(fake: FakeAws, home: string): (job: FakeJob) => Promise<Outcome> {
  return async (job) => {
    const root = mkdtempSync(join(tmpdir(), 'strand-task-'));
    const here = (text: string) => text.replace(ROOT, root);
    const planOf = (name: string) => {
      const env = fake.container(job, name).environment ?? [];
      const text = env.find((e) => e.name === PLAN_VARIABLE)?.value ?? '';
      return parseStagePlan(here(text), `${name} ${PLAN_VARIABLE}`);
    };
    const options = { store: (url: string) => openStore(url, { home }) };
    const logs: Record<string, string[]> = { 'stage-in': [], tool: [], 'stage-out': [] };
    try {
      await stageIn(planOf('stage-in'), options);
    } catch (err) {
      logs['stage-in'].push(`strand: stage in: ${(err as Error).message}`);
    }
    const tool = fake.container(job, 'tool');
    const argv = (tool.command ?? []).map(here);
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    for (const e of tool.environment ?? []) env[e.name] = here(e.value);
    const toolOutput: string[] = [];
    await new Promise<void>((resolve) => {
      const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
      // A terminate stops the task's containers: the wrapper ends the tool (and its children).
      job.stop = () => child.kill('SIGTERM');
      child.stdout.on('data', (d: Buffer) => toolOutput.push(d.toString()));
      child.stderr.on('data', (d: Buffer) => toolOutput.push(d.toString()));
      child.on('error', () => resolve());
      child.on('close', () => resolve());
    });
    logs.tool.push(...toolOutput.join('').split('\n').filter(Boolean));
    let out = '';
    const exitCode = await stageOut(planOf('stage-out'), { ...options, out: (t) => (out += t) });
    logs['stage-out'].push(...out.split('\n').filter(Boolean));
    return { exitCode, logs };
  };
}
