/**
 * The job cache's fingerprint: the content of every regular file a value names, and nothing
 * else read: devices, FIFOs, sockets and kernel file systems never hang or fail it.
 */
import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { jobFingerprint } from '../../src/functions/pipeline-functions.js';
import { publishAttempt } from '../../src/functions/stage-out.js';
import { FileStore } from '../../src/storage/file-store.js';

const root = mkdtempSync(join(tmpdir(), 'strand-fingerprint-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const fresh = (): string => {
  const dir = join(root, `case-${counter++}`);
  mkdirSync(dir);
  return dir;
};

const fingerprint = (value: string, command: string[] = ['tool', value]) =>
  jobFingerprint({ image: 'img', command, environment: { INPUT: value } });

/** Settles within `ms` or fails naming `what` (a hang must fail the test, not stall it). */
async function within<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle in ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('jobFingerprint', () => {
  it('a FIFO, /dev/zero, a socket and /proc and /sys paths are never read: no hang, no error', async () => {
    const dir = fresh();
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const socket = join(dir, 'sock');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      for (const value of [
        fifo,
        '/dev/zero',
        '/dev/urandom',
        socket,
        '/proc/self/mem',

        '/sys/kernel/notes',
        '/proc/self/status',
      ]) {
        const first = await within(value, 5_000, fingerprint(value));
        // The value counts as the text it is: the same every time, another for another path.
        expect(await within(value, 5_000, fingerprint(value)), value).toBe(first);
        expect(first).not.toBe(await fingerprint(`${value}-other`));
      }
    } finally {
      server.close();
    }
  });

  it('a directory holding a FIFO and a symlink loop is walked for its regular files only', async () => {
    const dir = fresh();
    const input = join(dir, 'input');
    mkdirSync(join(input, 'sub'), { recursive: true });
    writeFileSync(join(input, 'reads.fq'), '@r1\nACGT\n');
    execFileSync('mkfifo', [join(input, 'sub', 'pipe')]);
    symlinkSync('..', join(input, 'sub', 'loop'));
    symlinkSync('/dev/zero', join(input, 'zero'));
    symlinkSync('/proc/self/status', join(input, 'status'));
    const first = await within('the directory', 5_000, fingerprint(input));
    expect(await fingerprint(input)).toBe(first);
    writeFileSync(join(input, 'reads.fq'), '@r1\nTTTT\n');
    expect(await within('the directory', 5_000, fingerprint(input))).not.toBe(first);
  });

  it('a file rewritten with the same size and mtime gets another fingerprint', async () => {
    const file = join(fresh(), 'reads.fq');
    const mtime = new Date('2026-01-01T00:00:00Z');
    writeFileSync(file, 'ACGT');
    utimesSync(file, mtime, mtime);
    const first = await fingerprint(file);
    // What a tool that keeps timestamps (cp -p, rsync -t) or a careful tamperer leaves.
    writeFileSync(file, 'TTTT');
    utimesSync(file, mtime, mtime);
    expect(statSync(file).mtimeMs).toBe(mtime.getTime());
    expect(await fingerprint(file)).not.toBe(first);
  });
});

describe('digests remembered across runs', () => {
  const job = (path: string) => ({ image: 'img', command: ['tool', path], environment: {} });

  it('a remembered digest is used instead of reading the file; fresh reads it again', async () => {
    const file = join(fresh(), 'reads.fq');
    writeFileSync(file, '@r\nACGT\n+\nIIII\n');
    const remembered = new Map<string, string>();
    const memo = {
      get: (id: string) => remembered.get(id),
      set: (id: string, sha: string) => void remembered.set(id, sha),
    };
    // A miss reads the file and remembers its digest under its identity (path first).
    const read = await jobFingerprint(job(file), { memo });
    expect([...remembered.keys()]).toHaveLength(1);
    expect([...remembered.keys()][0].startsWith(`${file}\0`)).toBe(true);
    // Another process (a memo, not this one's own map) with a digest for that identity uses it.
    const other = join(fresh(), 'reads.fq');
    writeFileSync(other, '@r\nACGT\n+\nIIII\n');
    const fake = {
      get: (id: string) => (id.startsWith(`${other}\0`) ? 'f'.repeat(64) : undefined),
      set: () => {},
    };
    const fromMemo = await jobFingerprint(job(other), { memo: fake });
    const fromFile = await jobFingerprint(job(other), { memo: fake, fresh: true });
    expect(fromMemo).not.toBe(fromFile);
    expect(await jobFingerprint(job(other), { fresh: true })).toBe(fromFile);
    // The same content under another path: the same fingerprint, as read from the file.
    expect(read).toBe(fromFile);
  });
});

describe('outputs published to a local store', () => {
  it("their digests are remembered: a job reading the store's copy does not read it again", async () => {
    const dir = fresh();
    const work = join(dir, 'work');
    mkdirSync(join(work, 'out'), { recursive: true });
    writeFileSync(join(work, 'out', 'r1.fq'), '@r\nACGT\n+\nIIII\n'.repeat(1000));
    writeFileSync(join(dir, 'job.log'), 'done\n');
    const store = new FileStore(join(dir, 'store'));
    const sets: string[] = [];
    const remembered = new Map<string, string>();
    const memo = {
      get: (id: string) => remembered.get(id),
      set: (id: string, sha: string) => {
        sets.push(id);
        remembered.set(id, sha);
      },
    };
    const status = await publishAttempt({
      store,
      prefix: 'p/S1/qc',
      workDir: work,
      logPath: join(dir, 'job.log'),
      outputs: { QC_R1: 'out/r1.fq' },
      succeeded: true,
      info: {
        pipeline: 'p',
        sample: 'S1',
        step: 'qc',
        execution: 'e',
        jobId: 'j',
        attempt: 1,
        exitCode: 0,
        startedAt: 1,
        stoppedAt: 2,
      },
      fingerprint: () => Promise.resolve(null),
      digests: memo,
    });
    expect(status).toBe('SUCCEEDED');
    const copy = store.localPath('p/S1/qc/out/r1.fq');
    expect(sets.filter((id) => id.startsWith(`${copy}\0`))).toHaveLength(1);
    const before = sets.length;
    const job = { image: 'img', command: ['tool', copy], environment: {} };
    const known = await jobFingerprint(job, { memo });
    // Nothing read, so nothing new remembered; and what was remembered is the content's digest.
    expect(sets).toHaveLength(before);
    expect(known).toBe(await jobFingerprint(job, { fresh: true }));
  });
});

describe('values that name the whole machine', () => {
  it('/ and a top-level directory count as text: never walked', async () => {
    for (const value of ['/', '/usr', '/tmp', '/usr/']) {
      const a = await within(`fingerprint of ${value}`, 5000, fingerprint(value));
      // The same text gives the same fingerprint, whatever is below it.
      expect(a).toBe(await fingerprint(value));
    }
  });
});
