import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalExecutor } from '../../src/executors/local/local-executor.js';
import { executorConformance, spec, waitDone } from './conformance.js';

const root = mkdtempSync(join(tmpdir(), 'strand-local-exec-'));
const make = () => new LocalExecutor({ workRoot: join(root, 'work'), graceSeconds: 1 });

executorConformance('local', make, () => root);

describe('local executor', () => {
  it('a job keeps running when the process that started it is killed with SIGKILL', async () => {
    const marker = join(root, 'survived.txt');
    const script = join(root, 'starter.mts');
    const job = spec(
      `setTimeout(() => require("fs").writeFileSync(${JSON.stringify(marker)}, "done"), 700)`,
    );
    writeFileSync(
      script,
      `import { LocalExecutor } from ${JSON.stringify(join(process.cwd(), 'src/executors/local/local-executor.ts'))};
       const ex = new LocalExecutor({ workRoot: ${JSON.stringify(join(root, 'work'))} });
       const h = await ex.submit(${JSON.stringify(job)});
       process.stdout.write(JSON.stringify(h) + '\\n');
       setInterval(() => {}, 1000);`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const handle = await new Promise<string>((resolve) =>
      child.stdout.on('data', (d: Buffer) => resolve(d.toString())),
    );
    child.kill('SIGKILL');
    const s = await waitDone(make(), JSON.parse(handle));
    expect(s).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
    expect(readFileSync(marker, 'utf8')).toBe('done');
  });

  it('jobs outlive a killed launcher, which is started again for the next job', async () => {
    const ex = make();
    const h = await ex.submit(spec('setTimeout(() => console.log("late"), 300)'));
    const first = ex.launcherPid!;
    process.kill(first, 'SIGKILL');
    expect(await waitDone(ex, h)).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
    expect(readFileSync(h.logPath, 'utf8')).toContain('late');
    const h2 = await ex.submit(spec('console.log("again")'));
    expect(ex.launcherPid).not.toBe(first);
    expect(await waitDone(ex, h2)).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
    ex.close();
  });

  it('the image field is noted in the log, not used', async () => {
    const ex = make();
    const h = await ex.submit(spec('console.log("ok")', { image: 'strand/fastp:0.23' }));
    await waitDone(ex, h);
    expect(readFileSync(h.logPath, 'utf8')).toMatch(
      /image strand\/fastp:0\.23 is not used[\s\S]*ok/,
    );
    expect(existsSync(join(h.ref, 'work'))).toBe(true);
  });
});
