/**
 * The container executor on real podman: the shared conformance suite, then what is its own
 * (the step's image, its environment, the caller's files, no network, the runtime's errors).
 */
import { mkdtempSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ContainerExecutor } from '../../src/executors/container/container-executor.js';
import type { Executor } from '../../src/executors/executor.js';
import { executorConformance, spec, waitDone } from './conformance.js';
import {
  BASE_IMAGE,
  containerOf,
  hostPidsOf,
  nodeImage,
  podman,
  podmanReady,
} from './containers.js';

const root = realpathSync(mkdtempSync(join(tmpdir(), 'strand-container-exec-')));
const image = podmanReady ? nodeImage(podman!) : '';

/** The executor, with the Node image for jobs that name none (the suite's specs name none). */
function make(): Executor {
  const ex = new ContainerExecutor({
    runtime: podman!,
    workRoot: join(root, 'work'),
    graceSeconds: 1,
    // The suite's jobs write their reports and ledgers here.
    volumes: [`${root}:${root}`],
  });
  return {
    name: ex.name,
    isolated: ex.isolated,
    submit: (s) => ex.submit({ ...s, image: s.image ?? image }),
    poll: (h) => ex.poll(h),
    kill: (h, r) => ex.kill(h, r),
    reattach: (h) => ex.reattach(h),
    onSettled: (l) => ex.onSettled(l),
    close: () => ex.close(),
  };
}

describe.skipIf(!podmanReady)('container executor (podman)', () => {
  executorConformance('podman', make, () => root, {
    contained: true,
    hostPids: podmanReady ? hostPidsOf(podman!) : undefined,
  });

  const executors: Executor[] = [];
  afterAll(() => executors.forEach((e) => e.close?.()));
  const ex = () => {
    const e = make();
    executors.push(e);
    return e;
  };

  it("runs in the step's image with its environment, not the host's", async () => {
    const e = ex();
    const h = await e.submit(
      spec('', {
        image: BASE_IMAGE,
        command: [
          'sh',
          '-c',
          'echo "os=$(. /etc/os-release; echo $ID) home=${HOME:-} sample=$SAMPLE"',
        ],
        environment: { SAMPLE: 'S1 ; $(reboot)' },
      }),
    );
    expect(await waitDone(e, h)).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
    const log = readFileSync(h.logPath, 'utf8');
    expect(log).toContain(`[strand] podman: image ${BASE_IMAGE}`);
    expect(log).toContain('os=debian');
    expect(log).toContain('sample=S1 ; $(reboot)');
  });

  it('a secret reaches the job but not the runtime command line', async () => {
    const e = ex();
    const secret = `s3cr3t-${process.pid}-${Date.now()}`;
    const h = await e.submit(
      spec('', {
        image: BASE_IMAGE,
        command: ['sh', '-c', 'test "$TOKEN" = "$1" && echo token-ok; sleep 2', 'sh', secret],
        environment: { TOKEN: secret },
      }),
    );
    const id = containerOf(podman!, h);
    expect(id).toBeDefined();
    const { execFileSync } = await import('node:child_process');
    const config = execFileSync(
      podman!.program,
      ['inspect', '--format', '{{json .Config.Cmd}} {{json .Args}}', id!],
      {
        encoding: 'utf8',
      },
    );
    // The argv carries it (the test put it there); the environment was passed by name only.
    expect(config).toContain(secret);
    const created = execFileSync(
      podman!.program,
      ['inspect', '--format', '{{json .Config.CreateCommand}}', id!],
      {
        encoding: 'utf8',
      },
    );
    expect(created).toContain('"--env","TOKEN"');
    expect(created).not.toContain(`TOKEN=${secret}`);
    expect(await waitDone(e, h)).toMatchObject({ state: 'SUCCEEDED' });
    expect(readFileSync(h.logPath, 'utf8')).toContain('token-ok');
  });

  it('has no network unless configured', async () => {
    const e = ex();
    const h = await e.submit(
      spec('', { image: BASE_IMAGE, command: ['sh', '-c', 'ls /sys/class/net'] }),
    );
    expect(await waitDone(e, h)).toMatchObject({ state: 'SUCCEEDED' });
    expect(readFileSync(h.logPath, 'utf8').trim().split('\n').slice(1)).toEqual(['lo']);
  });

  it('writes outputs owned by the calling user, and stdout to the stdout: file', async () => {
    const e = ex();
    const h = await e.submit(
      spec('', {
        image: BASE_IMAGE,
        command: ['sh', '-c', 'echo data > out/file.txt; echo to-stdout; echo to-log >&2'],
        environment: { STRAND_OUTPUT_DIRS: 'out', STRAND_STDOUT: 'out/stdout.txt' },
      }),
    );
    expect(await waitDone(e, h)).toMatchObject({ state: 'SUCCEEDED' });
    const { statSync } = await import('node:fs');
    const st = statSync(join(h.ref, 'out/file.txt'));
    expect([st.uid, st.gid]).toEqual([process.getuid!(), process.getgid!()]);
    expect(readFileSync(join(h.ref, 'out/stdout.txt'), 'utf8')).toBe('to-stdout\n');
    expect(readFileSync(h.logPath, 'utf8')).toContain('to-log');
    expect(readFileSync(h.logPath, 'utf8')).not.toContain('to-stdout');
  });

  it('a missing image fails the attempt at the start, naming the image and the fix', async () => {
    const e = ex();
    await expect(
      e.submit(spec('', { image: 'strand-test/never-built:0', command: ['true'] })),
    ).rejects.toThrow(/strand-test\/never-built:0.*strand images build/);
  });

  it("a container the runtime cannot start fails the attempt, with the runtime's reason", async () => {
    const e = ex();
    // Below the smallest memory limit the runtime accepts (6 MB).
    const job = spec('', { image: BASE_IMAGE, command: ['true'], memoryMiB: 1 });
    await expect(e.submit(job)).rejects.toThrow(/memory/i);
    const h = {
      jobId: job.jobId,
      attempt: 1,
      ref: join(root, 'work', `${job.jobId}.1`),
      logPath: '',
    };
    expect(await e.poll(h)).toMatchObject({
      state: 'FAILED',
      reason: expect.stringMatching(/^CannotStartContainerError: .*memory/i),
    });
  });

  it('an input mounted read-only keeps its path inside the container', async () => {
    const e = ex();
    const dir = mkdtempSync(join(root, 'inputs-'));
    const input = join(dir, 'reads.txt');
    writeFileSync(input, 'ACGT\n');
    const h = await e.submit(
      spec('', {
        image: BASE_IMAGE,
        command: ['sh', '-c', 'cat "$READS"; echo x >> "$READS" || echo refused'],
        environment: { READS: input },
        readOnlyPaths: [input],
      }),
    );
    expect(await waitDone(e, h)).toMatchObject({ state: 'SUCCEEDED' });
    expect(readFileSync(h.logPath, 'utf8')).toMatch(/ACGT\n[^]*refused/);
    expect(readFileSync(input, 'utf8')).toBe('ACGT\n');
  });
});
