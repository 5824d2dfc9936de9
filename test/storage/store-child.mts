// A separate writer process for the store tests (run with `node --import tsx`):
//   lock <root> <prefix>                       hold the prefix's lock until killed
//   publish <root> <workDir> <tag> <prefix>... for each prefix: writes the job's files with
//                                              content unique to tag and prefix, says
//                                              `ready <prefix>`, waits for a line on stdin and
//                                              publishes them there (tag ends in a number)
//   publish-once <root> <workDir> <prefix>     publish the files already in workDir once
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { FileStore } from '../../src/storage/file-store.js';
import { publishOutputs } from '../../src/storage/publish.js';

const [command, root, ...rest] = process.argv.slice(2);
const store = new FileStore(root);

const info = (prefix: string, tag: string) => ({
  pipeline: 'p',
  sample: 'S1',
  step: prefix,
  execution: tag,
  jobId: `${tag}-job`,
  attempt: 1,
  exitCode: 0,
  startedAt: null,
  stoppedAt: null,
  fingerprint: null,
});

const OUTPUTS = { SMALL: 'small.txt', DIR: 'out' };

if (command === 'lock') {
  await store.lock(rest[0]);
  process.stdout.write('locked\n');
  setInterval(() => undefined, 60_000);
} else if (command === 'publish') {
  const [workDir, tag, ...prefixes] = rest;
  mkdirSync(join(workDir, 'out'), { recursive: true });
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  for (const prefix of prefixes) {
    const unique = `${tag} ${prefix}\n`;
    // Sizes differ between writers, so a manifest of one over files of another shows; which
    // file is large differs too, so writers copy and hash them at different times. New files
    // each time, as a new job's would be: only the race between writers is tested.
    const repeats = [1, 2_000, 200_000];
    const turn = Number(/\d+$/.exec(tag)?.[0] ?? 0);
    const files = ['small.txt', 'out/a.txt', 'out/b.txt'].map(
      (path, i) => [path, unique.repeat(repeats[(i + turn) % 3])] as const,
    );
    for (const [path, content] of files) {
      rmSync(join(workDir, path), { force: true });
      writeFileSync(join(workDir, path), content);
    }
    // Every writer starts each prefix together, when the test says go.
    process.stdout.write(`ready ${prefix}\n`);
    await lines.next();
    await publishOutputs({
      store,
      prefix,
      workDir,
      outputs: OUTPUTS,
      status: 'SUCCEEDED',
      info: info(prefix.replace(/\//g, '_'), tag),
    });
  }
  process.exit(0);
} else if (command === 'publish-once') {
  const [workDir, prefix] = rest;
  process.stdout.write('publishing\n');
  await publishOutputs({
    store,
    prefix,
    workDir,
    outputs: { BIG: 'big.bin' },
    status: 'SUCCEEDED',
    info: info('big', 'killed'),
  });
  process.stdout.write('published\n');
} else {
  throw new Error(`store-child: unknown command ${command}`);
}
