/**
 * `strand clean` and the inputs fetched from an s3:// store for jobs that ran on this machine
 * (`<home>/staged/<jobId>`): removed with the execution's other leftovers, shown by --dry-run,
 * kept for an execution `strand redrive` may still carry on unless --all.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openStore } from '../../src/app/index.js';
import { startS3Server, type S3TestServer } from '../storage/s3-server.js';
import { inlinePipeline, strand } from './cli.js';

describe('strand clean and staged inputs', () => {
  let s3: S3TestServer;

  beforeAll(async () => {
    s3 = await startS3Server('strand-clean');
    for (const [k, v] of Object.entries(s3.env)) vi.stubEnv(k, v);
    vi.stubEnv('AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED', 'true');
    const store = openStore('s3://strand-clean', { home: '/nonexistent' });
    await store.putBytes('inputs/good.txt', 'good\n');
    await store.putBytes('inputs/bad.txt', 'bad\n');
  }, 60_000);

  afterAll(async () => {
    vi.unstubAllEnvs();
    await s3?.close();
  });

  it('removes staged inputs of finished executions, keeps redrivable ones unless --all', async () => {
    const p = inlinePipeline(
      [
        'name: fetched',
        'samples: samples.csv',
        'steps:',
        "  one: { image: debian:bookworm-slim, command: [sh, -c, 'cat $0 > out.txt; grep -q good $0', $INPUT], outputs: { OUT: out.txt } }",
      ],
      { 'samples.csv': 'id,INPUT\ngood,s3://strand-clean/inputs/good.txt\n' },
    );
    const run = (name: string) =>
      strand('run', p.file, '--home', p.home, '--store', 's3://strand-clean', '--name', name);
    expect((await run('ok')).code).toBe(0);
    writeFileSync(join(p.dir, 'samples.csv'), 'id,INPUT\nbad,s3://strand-clean/inputs/bad.txt\n');
    expect((await run('broken')).code).toBe(1);
    const staged = join(p.home, 'staged');
    const jobs = readdirSync(staged).sort();
    // A directory per job (ok's one, broken's each attempt): its input fetched from the store.
    expect(jobs.length).toBeGreaterThanOrEqual(2);

    const dry = await strand('clean', '--home', p.home, '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.out).toMatch(/^ok +\d+ /m);
    expect(dry.out).not.toContain('broken');
    expect(readdirSync(staged).sort()).toEqual(jobs);

    await strand('clean', '--home', p.home);
    const left = readdirSync(staged);
    // The redrivable execution keeps what its redrive would read again; ok's one job's went.
    expect(left).toHaveLength(jobs.length - 1);
    for (const j of left) expect(jobs).toContain(j);

    const all = await strand('clean', '--home', p.home, '--all');
    expect(all.out).toMatch(/^broken +\d+ /m);
    expect(existsSync(staged) ? readdirSync(staged) : []).toEqual([]);
  }, 120_000);
});
