/**
 * A real S3-protocol server for the tests: s3rver on loopback, a free port, a fresh directory.
 * Requests are SigV4-signed by the SDK; s3rver checks their access key id (S3RVER), not the
 * signature itself.
 *
 * A middleware in front of s3rver gives it two things S3 has and it lacks:
 * - atomic objects: s3rver writes an object's file in place, so a reader could get part of an
 *   old and part of a new one; here a key has one writer or any number of readers at a time;
 * - conditional writes (If-None-Match and If-Match on PutObject, in S3 since 2024), which the
 *   store's prefix locks rely on, answered as S3 documents them: 412 PreconditionFailed when
 *   `If-None-Match: *` finds the key or `If-Match` another ETag, 404 NoSuchKey when `If-Match`
 *   finds none. `conditionalWrites: false` leaves them out, as an older S3-protocol server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import S3rver from 's3rver';

export interface S3TestServer {
  endpoint: string;
  bucket: string;
  /** The variables the AWS SDK reads: this endpoint, a region and s3rver's key pair. */
  env: Record<string, string>;
  close(): Promise<void>;
}

function s3Error(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}

export async function startS3Server(
  bucket = 'strand-test',
  options: { conditionalWrites?: boolean } = {},
): Promise<S3TestServer> {
  const conditional = options.conditionalWrites !== false;
  const directory = mkdtempSync(join(tmpdir(), 'strand-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  // One writer or any number of readers of a key at a time: s3rver writes an object's file in
  // place, where S3 shows a reader the old object or the new one, never a part of each.
  const gates = new Map<string, { readers: number; writing: boolean; waiting: (() => void)[] }>();
  const gate = (id: string) => {
    let g = gates.get(id);
    if (!g) gates.set(id, (g = { readers: 0, writing: false, waiting: [] }));
    return g;
  };
  const enter = async (id: string, write: boolean) => {
    const g = gate(id);
    while (g.writing || (write && g.readers > 0)) await new Promise<void>((r) => g.waiting.push(r));
    if (write) g.writing = true;
    else g.readers++;
  };
  const leave = (id: string, write: boolean) => {
    const g = gate(id);
    if (write) g.writing = false;
    else g.readers--;
    for (const wake of g.waiting.splice(0)) wake();
  };
  server.middleware.unshift(async (ctx, next) => {
    const [, b, ...rest] = ctx.path.split('/');
    if (rest.length === 0) return next();
    const bucketName = decodeURIComponent(b);
    const key = decodeURIComponent(rest.join('/'));
    const id = `${bucketName}/${key}`;
    const part = 'uploadId' in ctx.query && ctx.method === 'PUT';
    const write =
      (ctx.method === 'PUT' && !part && !('tagging' in ctx.query)) ||
      (ctx.method === 'POST' && 'uploadId' in ctx.query) ||
      ctx.method === 'DELETE';
    const read = ctx.method === 'GET' || ctx.method === 'HEAD';
    if (!write && !read) return next();
    await enter(id, write);
    try {
      const ifNoneMatch = ctx.get('if-none-match');
      const ifMatch = ctx.get('if-match');
      if (write && ctx.method === 'PUT' && (ifNoneMatch || ifMatch) && conditional) {
        const etag = await server.store
          .getMetadata(bucketName, key)
          .then((m) => m.etag)
          .catch(() => undefined);
        const refuse = (status: number, code: string, message: string) => {
          ctx.status = status;
          ctx.type = 'application/xml';
          ctx.body = s3Error(code, message);
        };
        const failed = 'At least one of the pre-conditions you specified did not hold';
        if (ifNoneMatch === '*' && etag !== undefined)
          return refuse(412, 'PreconditionFailed', failed);
        if (ifMatch && etag === undefined)
          return refuse(404, 'NoSuchKey', 'The specified key does not exist.');
        if (ifMatch && ifMatch !== etag) return refuse(412, 'PreconditionFailed', failed);
      }
      await next();
      // A streamed body is read whole while the key is held, so no write lands halfway.
      if (read && ctx.body instanceof Readable) {
        const chunks: Buffer[] = [];
        for await (const chunk of ctx.body) chunks.push(Buffer.from(chunk as Buffer));
        ctx.body = Buffer.concat(chunks);
      }
    } finally {
      leave(id, write);
    }
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    env: {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
    },
    close: async () => {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
