/**
 * The s3:// store on a real S3-protocol server (s3rver on loopback, signed requests): the
 * store conformance suite exactly as on file://, then what only S3 has (multipart uploads, the
 * endpoint's faults, an endpoint without conditional writes).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store, type S3LockHandle } from '../../src/storage/s3-store.js';
import { openStore } from '../../src/storage/store.js';
import { storeConformance } from './conformance.js';
import { startS3Server, type S3TestServer } from './s3-server.js';

let server: S3TestServer;
let plain: S3TestServer;
beforeAll(async () => {
  server = await startS3Server();
  plain = await startS3Server('plain', { conditionalWrites: false });
});
afterAll(async () => {
  await server?.close();
  await plain?.close();
});
let counter = 0;
const fresh = () => new S3Store(`s3://${server.bucket}/t${counter++}/store`, { env: server.env });

storeConformance('s3', fresh, { abandonLock: (lock) => (lock as S3LockHandle).abandon() });

describe('s3 store', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'strand-s3-src-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('openStore takes s3://bucket/prefix; a bad bucket name is BAD_URL', () => {
    expect(openStore('s3://my-bucket/runs/a', { home: scratch }).url).toBe('s3://my-bucket/runs/a');
    expect(() => openStore('s3://My_Bucket/x', { home: scratch })).toThrow(
      /"My_Bucket" is not a valid bucket name/,
    );
  });

  it('stores a file larger than a part through a multipart upload, with its sha256', async () => {
    const store = fresh();
    const path = join(scratch, 'big');
    const data = Buffer.alloc(20 * 1024 * 1024 + 123);
    for (let i = 0; i < data.length; i += 4096) data[i] = i % 251;
    writeFileSync(path, data);
    const info = await store.putFile('big/file', path);
    const sha256 = createHash('sha256').update(data).digest('hex');
    expect(info).toEqual({ size: data.length, sha256 });
    const back = await store.get('big/file');
    expect(createHash('sha256').update(back).digest('hex')).toBe(sha256);
    expect(await store.list('big')).toEqual([{ key: 'big/file', size: data.length }]);
  });

  it('names the bucket, the endpoint and what to check when the service refuses', async () => {
    const missing = new S3Store('s3://no-such-bucket/x', { env: server.env });
    await expect(missing.putBytes('a', 'a')).rejects.toMatchObject({
      code: 'NO_BUCKET',
      message: expect.stringContaining('the bucket "no-such-bucket" does not exist'),
    });
    const wrongKey = new S3Store(`s3://${server.bucket}/x`, {
      env: {
        ...server.env,
        AWS_ACCESS_KEY_ID: 'NOT-A-KEY',
        AWS_SECRET_ACCESS_KEY: 'not-the-secret',
      },
    });
    const denied = await wrongKey.putBytes('a', 'a').catch((e: Error) => e);
    expect(denied).toMatchObject({ code: 'ACCESS_DENIED' });
    expect((denied as Error).message).toContain(server.endpoint);
    expect((denied as Error).message).not.toContain('not-the-secret');
    const nowhere = new S3Store(`s3://${server.bucket}/x`, {
      env: { ...server.env, AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' },
    });
    await expect(nowhere.get('a')).rejects.toMatchObject({
      code: 'UNREACHABLE',
      message: expect.stringContaining('http://127.0.0.1:9'),
    });
  });

  it('refuses to lock on an endpoint that ignores conditional writes', async () => {
    const store = new S3Store(`s3://${plain.bucket}/x`, { env: plain.env });
    await store.putBytes('a/b', 'fine');
    await expect(store.lock('a')).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringContaining('ignores conditional writes'),
    });
  });
});
