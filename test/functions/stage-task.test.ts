/**
 * Staging where a job runs (docs/adr/0002-staging.md), as an AWS Batch job's stage containers do
 * it: a plan made on the engine's machine, `strand stage in PLAN`, the tool run by the real
 * launcher's `wrap`, `strand stage out PLAN`, with a real file:// store.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JobDetail } from '../../src/batch/types.js';
import { nativeLauncher } from '../../src/executors/local/local-executor.js';
import { stagePlan, taskPaths, type StagedAttempt } from '../../src/functions/stage-plan.js';
import { TAG } from '../../src/pipeline/contract.js';
import { readManifest } from '../../src/storage/publish.js';
import { FileStore } from '../../src/storage/file-store.js';
import { strand } from '../pipeline/cli.js';

/** A new file:// store and task directory, and the plans of jobs of step `count` of S1. */
function workspace() {
  const dir = mkdtempSync(join(tmpdir(), 'strand-stage-'));
  const store = new FileStore(join(dir, 'store'));
  const root = join(dir, 'task');
  const plan = (
    command: string[],
    env: Record<string, string> = {},
    outputs: Record<string, string> = { OUT: 'out/result.txt' },
  ) => {
    const environment: Record<string, string> = {
      ...env,
      STRAND_OUTPUTS: JSON.stringify(outputs),
      STRAND_OUTPUT_DIRS: 'out',
    };
    const job = {
      jobId: 'job-1',
      tags: {
        [TAG.store]: store.url,
        [TAG.pipeline]: 'genome',
        [TAG.step]: 'count',
        [TAG.sample]: 'S1',
        [TAG.execution]: 'run-1',
      },
      container: {
        image: 'strand/tool:1',
        command,
        environment: Object.entries(environment).map(([name, value]) => ({ name, value })),
      },
    } as unknown as JobDetail;
    return stagePlan(job, { attempt: 1, command, environment }, root, {
      store: () => store,
      executor: 'aws-batch',
    });
  };
  return { dir, store, root, plan };
}

/** Runs the tool as the tool container does: the launcher (copied by stage-in) wraps it. */
function runTool(staged: StagedAttempt, root: string): number {
  const p = taskPaths(root);
  const stdout = staged.environment.STRAND_STDOUT ?? '';
  const r = spawnSync(
    p.launcher,
    ['wrap', '-C', p.work, p.pid, p.stop, p.log, stdout, '0::2', '--', ...staged.command],
    { env: { ...staged.environment, PATH: process.env.PATH ?? '/usr/bin:/bin' } },
  );
  return r.status ?? -1;
}

async function writePlan(staged: StagedAttempt, dir: string): Promise<string> {
  const path = join(dir, 'plan.json');
  writeFileSync(path, JSON.stringify(staged.plan));
  return path;
}

describe.runIf(nativeLauncher())('strand stage in / out with a file:// store', () => {
  it('stages store objects and files of this machine in, runs the tool, publishes outputs last', async () => {
    const { dir, store, root, plan: planOf } = workspace();
    // An earlier step's output in the store, and a sample file beside the pipeline.
    await store.putBytes('genome/S1/qc/out/r1.fq', 'ACGT\nACGT\n');
    const sheetFile = join(dir, 'reads.txt');
    writeFileSync(sheetFile, 'beside the pipeline\n');
    const script = `const fs = require('fs');
      const a = fs.readFileSync(process.env.QC_R1, 'utf8');
      const b = fs.readFileSync(process.argv[1], 'utf8');
      console.log('read', a.length, b.trim());
      fs.writeFileSync('out/result.txt', String(a.split('\\n').length - 1));`;
    const job2 = await planOf([process.execPath, '-e', script, sheetFile], {
      QC_R1: store.localPath('genome/S1/qc/out/r1.fq'),
      SAMPLE: 'S1',
    });
    const p = taskPaths(root);
    // The tool's values name the staged copies; nothing of this machine's is left in them.
    expect(job2.environment.QC_R1).toBe(join(p.work, 'inputs/QC_R1/r1.fq'));
    expect(job2.command[3]).toBe(join(p.work, 'inputs/arg3/reads.txt'));
    expect(job2.plan.inputs).toEqual([
      { key: 'genome/S1/qc/out/r1.fq', path: 'inputs/QC_R1/r1.fq' },
      {
        key: expect.stringMatching(/^_strand\/files\/[0-9a-f]{32}\/reads\.txt$/),
        path: 'inputs/arg3/reads.txt',
      },
    ]);
    expect(job2.plan.fingerprint?.fingerprint).toMatch(/^[0-9a-f]{64}$/);

    const plan = await writePlan(job2, dir);
    const staged = await strand('stage', 'in', plan, '--home', join(dir, 'home'));
    expect(staged).toMatchObject({ code: 0, err: '' });
    expect(readFileSync(join(p.work, 'inputs/QC_R1/r1.fq'), 'utf8')).toBe('ACGT\nACGT\n');
    expect(statSync(join(p.work, 'inputs/QC_R1/r1.fq')).mode & 0o222).toBe(0);
    expect(statSync(p.work).mode & 0o777).toBe(0o777);
    expect(existsSync(join(p.work, 'out'))).toBe(true);
    expect(JSON.parse(readFileSync(p.environment, 'utf8'))).toMatchObject({
      QC_R1: join(p.work, 'inputs/QC_R1/r1.fq'),
    });

    expect(runTool(job2, root)).toBe(0);

    const out = await strand('stage', 'out', plan, '--home', join(dir, 'home'));
    expect(out.code).toBe(0);
    // The tool's log is echoed for CloudWatch.
    expect(out.out).toContain('read 10 beside the pipeline');
    expect((await store.get('genome/S1/count/out/result.txt')).toString()).toBe('2');
    expect((await store.get('genome/S1/count/_strand.log')).toString()).toContain('read 10');
    const manifest = await readManifest(store, 'genome/S1/count');
    expect(manifest).toMatchObject({
      status: 'SUCCEEDED',
      jobId: 'job-1',
      attempt: 1,
      exitCode: 0,
      fingerprint: job2.plan.fingerprint?.fingerprint,
    });
    expect(manifest!.startedAt! <= manifest!.stoppedAt!).toBe(true);
  });

  it("a tool that fails: FAILED manifest with what it left, and stage out exits with the tool's code", async () => {
    const { dir, store, root, plan: planOf } = workspace();
    const staged = await planOf([
      process.execPath,
      '-e',
      'require("fs").writeFileSync("out/result.txt", "partial"); process.exit(3)',
    ]);
    const plan = await writePlan(staged, dir);
    expect((await strand('stage', 'in', plan)).code).toBe(0);
    expect(runTool(staged, root)).toBe(3);
    expect((await strand('stage', 'out', plan)).code).toBe(3);
    expect(await readManifest(store, 'genome/S1/count')).toMatchObject({
      status: 'FAILED',
      exitCode: 3,
      fingerprint: null,
    });
    expect((await store.get('genome/S1/count/out/result.txt')).toString()).toBe('partial');
  });

  it('a tool that exits 0 without its output: FAILED manifest naming it, stage out exits 1', async () => {
    const { dir, store, root, plan: planOf } = workspace();
    const staged = await planOf([process.execPath, '-e', '']);
    const plan = await writePlan(staged, dir);
    expect((await strand('stage', 'in', plan)).code).toBe(0);
    expect(runTool(staged, root)).toBe(0);
    expect((await strand('stage', 'out', plan)).code).toBe(1);
    const manifest = await readManifest(store, 'genome/S1/count');
    expect(manifest).toMatchObject({ status: 'FAILED', exitCode: 0 });
    expect(manifest?.error).toMatch(/out\/result\.txt/);
  });

  it('a stage-in that fails: the tool runs nothing, and the FAILED manifest says why', async () => {
    const { dir, store, root, plan: planOf } = workspace();
    await store.putBytes('genome/S1/qc/out/r1.fq', 'ACGT\n');
    const staged = await planOf([process.execPath, '-e', 'console.log("ran")'], {
      QC_R1: store.localPath('genome/S1/qc/out/r1.fq'),
    });
    // Gone between the submit and the job's start.
    await store.delete('genome/S1/qc');
    const plan = await writePlan(staged, dir);
    const staging = await strand('stage', 'in', plan);
    expect(staging.code).toBe(1);
    expect(staging.err).toMatch(/^strand: stage in: .*genome\/S1\/qc\/out\/r1\.fq/);
    expect(runTool(staged, root)).toBe(0);
    expect(readFileSync(taskPaths(root).log, 'utf8')).not.toContain('ran');
    expect((await strand('stage', 'out', plan)).code).toBe(1);
    const manifest = await readManifest(store, 'genome/S1/count');
    expect(manifest).toMatchObject({ status: 'FAILED', exitCode: null });
    expect(manifest?.error).toMatch(/^stage-in failed: .*r1\.fq/);
  });

  it('a list strand-collect wrote is staged with the locations it holds, naming the copies', async () => {
    const { dir, store, root, plan: planOf } = workspace();
    await store.putBytes('genome/S1/count/out/result.txt', '2');
    await store.putBytes('genome/S2/count/out/result.txt', '5');
    const listKey = 'genome/_all/_inputs/run-1/OUT.txt';
    await store.putBytes(
      listKey,
      ['genome/S1/count/out/result.txt', 'genome/S2/count/out/result.txt']
        .map((k) => `${store.localPath(k)}\n`)
        .join(''),
    );
    const staged = await planOf([process.execPath, '-e', 'console.log("total")'], {
      OUT: store.localPath(listKey),
    });
    expect(staged.plan.inputs).toEqual([{ key: listKey, path: 'inputs/OUT/OUT.txt', list: true }]);
    const plan = await writePlan(staged, dir);
    expect((await strand('stage', 'in', plan)).code).toBe(0);
    const lines = readFileSync(staged.environment.OUT, 'utf8').split('\n').filter(Boolean);
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line.startsWith(taskPaths(root).work)).toBe(true);
    expect(lines.map((l) => readFileSync(l, 'utf8'))).toEqual(['2', '5']);
  });

  it('a plan that is not one is bad input (exit 2)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strand-stage-'));
    writeFileSync(join(dir, 'plan.json'), '{"version": 9}');
    const r = await strand('stage', 'in', join(dir, 'plan.json'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/not a version 1 staging plan/);
    expect((await strand('stage', 'out', 'env:STRAND_NO_SUCH_PLAN')).code).toBe(2);
  });
});
