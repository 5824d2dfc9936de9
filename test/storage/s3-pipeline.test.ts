/**
 * A whole pipeline run with `--store s3://…` on a real S3-protocol server: the same layout as
 * a file store, downstream steps and the aggregate step reading their inputs from S3, and the
 * failed sample's log and manifest published there too.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../src/storage/s3-store.js';
import { strand } from '../pipeline/cli.js';
import { startS3Server, type S3TestServer } from './s3-server.js';

let server: S3TestServer;
beforeAll(async () => {
  server = await startS3Server();
  // The in-process CLI reads the endpoint and keys from the environment, as `strand` does.
  Object.assign(process.env, server.env);
});
afterAll(async () => server?.close());

function filesBelow(root: string, dir = root): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesBelow(root, path));
    else out.push(relative(root, path));
  }
  return out;
}

/** Keys without the execution's name (the aggregate steps' input lists are per execution). */
const layout = (keys: string[]) =>
  keys
    .filter((k) => !k.startsWith('.strand-locks/'))
    .map((k) => k.replace(/_inputs\/[^/]+\//, '_inputs/EXECUTION/'))
    .sort();

describe('strand run --store s3://', () => {
  it('publishes what a file store gets, reading each input from S3', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strand-s3-run-'));
    cpSync(join(process.cwd(), 'examples', 'word-count'), dir, { recursive: true });
    const file = join(dir, 'pipeline.yaml');
    const url = `s3://${server.bucket}/runs`;
    const s3 = await strand('run', file, '--home', join(dir, 'home-s3'), '--store', url);
    // The example's empty text fails by design; the other samples and the summary succeed.
    expect(s3.code, s3.err).toBe(1);
    expect(s3.err).toContain('1 of 3 samples failed');
    const local = await strand('run', file, '--home', join(dir, 'home-file'));
    expect(local.code, local.err).toBe(1);
    const store = new S3Store(url, { env: server.env });
    const keys = (await store.list('')).map((o) => o.key);
    const fileRoot = join(dir, 'home-file', 'store');
    expect(layout(keys)).toEqual(layout(filesBelow(fileRoot)));
    const summary = 'word-count/_all/summary/summary.tsv';
    expect((await store.get(summary)).toString()).toBe(
      readFileSync(join(fileRoot, summary), 'utf8'),
    );
    expect((await store.get(summary)).toString()).toMatch(/^sample\twords/);
    const failed = JSON.parse((await store.get('word-count/empty/words/_strand.json')).toString());
    expect(failed).toMatchObject({ status: 'FAILED', exitCode: 3 });
    expect((await store.get('word-count/empty/words/_strand.log')).toString()).toContain(
      'no words in the input',
    );
  });
});
