import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../src/cli/main.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: {
      out: (t: string) => void out.push(t),
      err: (t: string) => void err.push(t),
      isTTY: false,
    },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

const strand = async (...args: string[]) => {
  const c = capture();
  const code = await run(['node', 'strand', ...args], c.io);
  return { code, out: c.out(), err: c.err() };
};

const dir = mkdtempSync(join(tmpdir(), 'strand-cli-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('strand start', () => {
  it('runs the example to SUCCEEDED and prints its output (exit 0)', async () => {
    const r = await strand(
      'start',
      'examples/sample-qc.asl.json',
      '--input',
      '@examples/sample-qc.input.json',
      '--in-memory',
      '--quiet',
    );
    expect(r.code).toBe(0);
    const output = JSON.parse(r.out);
    expect(output).toMatchObject({ run: 'RUN-2026-11-25', passed: 3, failed: 2 });
    expect(output.samples).toHaveLength(5);
    expect(output.fingerprint).toMatch(/^[0-9a-f]{64}$/);
  });

  it('--json prints the DescribeExecution shape', async () => {
    const r = await strand(
      'start',
      'examples/sample-qc.asl.json',
      '--input',
      '@examples/sample-qc.input.json',
      '--in-memory',
      '--json',
      '--name',
      'run-1',
    );
    expect(r.code).toBe(0);
    const d = JSON.parse(r.out);
    expect(d).toMatchObject({ name: 'run-1', status: 'SUCCEEDED' });
    expect(typeof d.output).toBe('string');
    expect(JSON.parse(d.input).minReads).toBe(1000000);
  });

  it('a FAILED execution exits 1 and prints the error and cause', async () => {
    const r = await strand(
      'start',
      'examples/sample-qc.asl.json',
      '--input',
      JSON.stringify({ run: 'R', minReads: 10 ** 9, samples: [{ id: 'S1', reads: 5 }] }),
      '--in-memory',
      '--quiet',
    );
    expect(r.code).toBe(1);
    expect(r.err).toContain('FAILED');
    expect(r.err).toContain('RunRejected');
  });

  it('bad input exits 2 with the location and runs nothing', async () => {
    const notJson = file('bad.asl.json', '{ "StartAt": "A", ');
    let r = await strand('start', notJson);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/bad\.asl\.json/);

    const typo = file(
      'typo.asl.json',
      JSON.stringify({
        StartAt: 'A',
        States: { A: { Type: 'Pass', Next: 'Asembly' }, Assembly: { Type: 'Pass', End: true } },
      }),
    );
    r = await strand('start', typo);
    expect(r.code).toBe(2);
    expect(r.err).toContain('/States/A/Next');
    expect(r.err).toContain('"Assembly"');

    r = await strand('start', join(dir, 'missing.json'));
    expect(r.code).toBe(2);
    expect(r.err).toContain('no such file');

    r = await strand('start', 'examples/sample-qc.asl.json', '--input', '{nope');
    expect(r.code).toBe(2);
    expect(r.err).toContain('not valid JSON');
  });
});

describe('strand start on the durable engine', () => {
  it('records the execution in the home; executions ls/describe/history read it back', async () => {
    const home = join(dir, 'home');
    const r = await strand(
      'start',
      'examples/sample-qc.asl.json',
      '--input',
      '@examples/sample-qc.input.json',
      '--home',
      home,
      '--name',
      'qc-1',
      '--quiet',
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ passed: 3, failed: 2 });
    const ls = await strand('executions', 'ls', '--home', home, '--json');
    expect(
      JSON.parse(ls.out).map((d: { name: string; status: string }) => [d.name, d.status]),
    ).toEqual([['qc-1', 'SUCCEEDED']]);
    const describe = await strand('executions', 'describe', 'qc-1', '--home', home, '--json');
    expect(JSON.parse(describe.out)).toMatchObject({ name: 'qc-1', status: 'SUCCEEDED' });
    const shown = await strand('executions', 'describe', 'qc-1', '--home', home);
    expect(shown.out).toMatch(/^executionArn {5}arn:aws:states:\S+:qc-1\n/);
    expect(shown.out).toMatch(/^status {11}SUCCEEDED$/m);
    const listed = await strand('executions', 'ls', '--home', home);
    const [head, row, end] = listed.out.split('\n');
    expect(head).toBe('NAME  STATUS     STARTED                   SECONDS');
    expect(row).toMatch(/^qc-1 {2}SUCCEEDED {2}\S+Z +\d+\.\d\d$/);
    expect([row.length, end]).toEqual([head.length, '']);
    const history = await strand('executions', 'history', 'qc-1', '--home', home);
    expect(history.out).toContain('ExecutionStarted');
    expect(history.out).toContain('MapIterationStarted');
    expect(history.out).toMatch(/^ *ID {2}TIME +TYPE +DETAIL\n/);
    expect(history.out).toMatch(/^ *\d+ {2}\S+Z {2}WaitStateEntered +Settle$/m);
    const missing = await strand('executions', 'describe', 'nope', '--home', home);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('no execution named "nope"');
  });

  it('--detach leaves it RUNNING; strand resume finishes it', async () => {
    const home = join(dir, 'home-detach');
    const r = await strand(
      'start',
      'examples/sample-qc.asl.json',
      '--input',
      '@examples/sample-qc.input.json',
      '--home',
      home,
      '--name',
      'qc-2',
      '--detach',
    );
    expect(r.code).toBe(0);
    expect(r.out).toContain('qc-2: RUNNING');
    const resumed = await strand('resume', '--home', home);
    expect(resumed.code).toBe(0);
    expect(resumed.err).toContain('qc-2: SUCCEEDED');
  });

  it('stop aborts a detached execution; redrive runs it again to SUCCEEDED', async () => {
    const home = join(dir, 'home-stop');
    const machine = file(
      'wait.asl.json',
      JSON.stringify({
        StartAt: 'W',
        States: {
          W: { Type: 'Wait', Seconds: 1, Next: 'P' },
          P: { Type: 'Pass', Result: 'done', End: true },
        },
      }),
    );
    await strand('start', machine, '--home', home, '--name', 'w1', '--detach');
    const stopped = await strand('stop', 'w1', '--home', home, '--json');
    expect(JSON.parse(stopped.out)).toMatchObject({ status: 'ABORTED', error: 'Strand.Stopped' });
    const redriven = await strand('redrive', 'w1', '--home', home, '--json');
    expect(redriven.code).toBe(0);
    expect(JSON.parse(redriven.out)).toMatchObject({
      status: 'SUCCEEDED',
      output: '"done"',
      redriveCount: 1,
    });
    const again = await strand('redrive', 'w1', '--home', home);
    expect(again.code).toBe(2);
    expect(again.err).toContain('only a FAILED, ABORTED or TIMED_OUT execution can be redriven');
  });

  it('a foreign database in the home is refused with exit 2 and left alone', async () => {
    const home = join(dir, 'home-foreign');
    mkdirSync(home);
    writeFileSync(join(home, 'strand.db'), 'not a database');
    const r = await strand('executions', 'ls', '--home', home);
    expect(r.code).toBe(2);
    expect(r.err).toContain('not a Strand database');
  });
});

describe('strand batch', () => {
  it('register, submit (follows the job), ls, describe, logs', async () => {
    const home = join(dir, 'home-batch');
    const jobdef = file(
      'echo.json',
      JSON.stringify({
        jobDefinitionName: 'echo',
        type: 'container',
        parameters: { who: 'world' },
        containerProperties: {
          command: [
            process.execPath,
            '-e',
            'console.log("hello", process.argv[1], process.env.AWS_BATCH_JOB_ATTEMPT)',
            'Ref::who',
          ],
          resourceRequirements: [
            { type: 'VCPU', value: '1' },
            { type: 'MEMORY', value: '128' },
          ],
        },
      }),
    );
    const reg = await strand('batch', 'register', jobdef, '--home', home, '--json');
    expect(reg.code).toBe(0);
    expect(JSON.parse(reg.out)).toMatchObject({ jobDefinitionName: 'echo', revision: 1 });
    const sub = await strand(
      'batch',
      'submit',
      '--job-name',
      'hi',
      '--job-definition',
      'echo',
      '--parameters',
      '{"who":"lab"}',
      '--home',
      home,
      '--json',
    );
    expect(sub.code).toBe(0);
    const job = JSON.parse(sub.out);
    expect(job).toMatchObject({ jobName: 'hi', status: 'SUCCEEDED' });
    const ls = await strand('batch', 'ls', '--job-status', 'SUCCEEDED', '--home', home);
    expect(ls.out).toContain(job.jobId);
    expect(ls.out).toMatch(/^JOB ID +NAME +STATUS +EXIT +REASON\n/);
    expect(ls.out).toMatch(new RegExp(`^${job.jobId}  hi +SUCCEEDED +0  `, 'm'));
    const described = await strand('batch', 'describe', job.jobId, '--home', home);
    expect(JSON.parse(described.out).jobs[0].attempts[0].container.exitCode).toBe(0);
    const logs = await strand('batch', 'logs', job.jobId, '--home', home);
    expect(logs.out).toContain('hello lab 1');
  });

  it('a job too big for any compute environment: exit 1 naming the values; bad JSON: exit 2', async () => {
    const home = join(dir, 'home-batch-2');
    const jobdef = file(
      'big.json',
      JSON.stringify({
        jobDefinitionName: 'big',
        type: 'container',
        containerProperties: {
          command: ['true'],
          resourceRequirements: [{ type: 'VCPU', value: '4096' }],
        },
      }),
    );
    await strand('batch', 'register', jobdef, '--home', home);
    const sub = await strand(
      'batch',
      'submit',
      '--job-name',
      'big',
      '--job-definition',
      'big',
      '--home',
      home,
    );
    expect(sub.code).toBe(1);
    expect(sub.out).toMatch(/needs 4096 vCPU/);
    const bad = await strand(
      'batch',
      'submit',
      '--job-name',
      'x',
      '--job-definition',
      'big',
      '--container-overrides',
      '{nope',
      '--home',
      home,
    );
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--container-overrides: not valid JSON');
  });
});

describe('strand validate', () => {
  it('exit 0 for a valid definition, 2 with every problem for an invalid one', async () => {
    let r = await strand('validate', 'examples/sample-qc.asl.json');
    expect(r.code).toBe(0);
    expect(r.out).toContain('valid');
    const bad = file(
      'two.asl.json',
      JSON.stringify({ StartAt: 'Nope', States: { A: { Type: 'Pass', End: true, Bogus: 1 } } }),
    );
    r = await strand('validate', bad);
    expect(r.code).toBe(2);
    expect(r.err).toContain('/StartAt');
    expect(r.err).toContain('/States/A/Bogus');
  });

  it('unknown command exits 2', async () => {
    const r = await strand('frobnicate');
    expect(r.code).toBe(2);
  });
});
