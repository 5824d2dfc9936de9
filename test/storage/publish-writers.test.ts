/**
 * Publishing with other processes at the same store: writers racing for the same prefixes
 * (two homes sharing one `--store`), and a writer killed in the middle of a large copy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { FileStore } from '../../src/storage/file-store.js';
import { publishOutputs, readManifest } from '../../src/storage/publish.js';
import type { ObjectStore } from '../../src/storage/store.js';

const root = mkdtempSync(join(tmpdir(), 'strand-writers-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function child(...args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'test/storage/store-child.mts', ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
}

function exitOf(proc: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve(proc.exitCode);
    else proc.once('exit', (code) => resolve(code));
  });
}

/** Temporary files anywhere below `dir`. */
function temporaries(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((p) =>
    p.split('/').at(-1)!.startsWith('.strand-tmp-'),
  );
}

/** Every file the manifest at `prefix` lists, against the bytes stored there. */
async function mismatches(store: ObjectStore, prefix: string): Promise<string[]> {
  const manifest = await readManifest(store, prefix);
  if (!manifest) return [`${prefix}: no manifest`];
  const wrong: string[] = [];
  for (const output of Object.values(manifest.outputs)) {
    for (const file of output.files) {
      const stored = await store.get(`${prefix}/${file.path}`).catch(() => undefined);
      const sha256 = stored && createHash('sha256').update(stored).digest('hex');
      if (stored?.length !== file.size || sha256 !== file.sha256)
        wrong.push(`${prefix}/${file.path} (manifest of ${manifest.execution})`);
    }
  }
  return wrong;
}

describe('writers in other processes', () => {
  it('three processes publishing different contents to the same prefixes at once leave every manifest matching its files', async () => {
    const storeDir = join(root, 'shared-store');
    const prefixes = Array.from({ length: 30 }, (_, i) => `p/S${i}/step`);
    const writers = ['writer-0', 'writer-1', 'writer-2'].map((tag) => {
      const workDir = join(root, `work-${tag}`);
      mkdirSync(workDir, { recursive: true });
      return child('publish', storeDir, workDir, tag, ...prefixes);
    });
    // A barrier per prefix: all three start publishing it at the same moment.
    const ready = writers.map((w) => {
      const seen: string[] = [];
      createInterface({ input: w.stdout! }).on('line', (line) => seen.push(line));
      return seen;
    });
    for (const prefix of prefixes) {
      const deadline = Date.now() + 60_000;
      while (!ready.every((seen) => seen.includes(`ready ${prefix}`))) {
        if (writers.some((w) => w.exitCode !== null)) throw new Error('a writer exited early');
        if (Date.now() > deadline) throw new Error(`writers not ready for ${prefix} in 60 s`);
        await new Promise((r) => setTimeout(r, 2));
      }
      for (const w of writers) w.stdin!.write('go\n');
    }
    expect(await Promise.all(writers.map(exitOf))).toEqual([0, 0, 0]);
    const store = new FileStore(storeDir);
    const wrong = (await Promise.all(prefixes.map((p) => mismatches(store, p)))).flat();
    expect(wrong).toEqual([]);
    expect(temporaries(storeDir)).toEqual([]);
  }, 120_000);

  it('a writer killed in the middle of a 200 MB copy leaves nothing behind once the prefix is published again', async () => {
    const storeDir = join(root, 'killed-store');
    const workDir = join(root, 'work-big');
    mkdirSync(workDir, { recursive: true });
    const big = Buffer.alloc(200 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
    writeFileSync(join(workDir, 'big.bin'), big);
    const prefix = 'p/S1/assemble';
    const writer = child('publish-once', storeDir, workDir, prefix);
    let ended = false;
    void exitOf(writer).then(() => (ended = true));
    const deadline = Date.now() + 60_000;
    const prefixDir = join(storeDir, ...prefix.split('/'));
    // Poll for the half-written copy; kill the writer the moment one is there.
    for (;;) {
      let seen: string[] = [];
      try {
        seen = temporaries(prefixDir);
      } catch {
        // The prefix directory is not there yet.
      }
      if (seen.length > 0) break;
      if (ended) throw new Error('the publish finished before a temporary file was seen');
      if (Date.now() > deadline) throw new Error('no temporary file within 60 s');
      await new Promise((r) => setTimeout(r, 2));
    }
    writer.kill('SIGKILL');
    await exitOf(writer);
    expect(writer.signalCode).toBe('SIGKILL');
    expect(temporaries(prefixDir).length).toBeGreaterThan(0);

    const store = new FileStore(storeDir);
    writeFileSync(join(workDir, 'big.bin'), 'the second attempt\n');
    // The dead writer's lock is taken over at once: its process is gone.
    const manifest = await publishOutputs({
      store,
      prefix,
      workDir,
      outputs: { BIG: 'big.bin' },
      status: 'SUCCEEDED',
      info: {
        pipeline: 'p',
        sample: 'S1',
        step: 'assemble',
        execution: 'second',
        jobId: 'j2',
        attempt: 2,
        exitCode: 0,
        startedAt: null,
        stoppedAt: null,
        fingerprint: null,
      },
      lock: { waitMs: 5_000 },
    });
    expect(manifest.outputs.BIG.files).toEqual([
      {
        path: 'big.bin',
        size: 19,
        sha256: createHash('sha256').update('the second attempt\n').digest('hex'),
      },
    ]);
    expect(temporaries(storeDir)).toEqual([]);
    expect(await mismatches(store, prefix)).toEqual([]);
  }, 120_000);
});
