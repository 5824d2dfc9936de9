/**
 * An object store in an S3 bucket (`s3://bucket/prefix`), through `@aws-sdk/client-s3`: the
 * same contract as the file store. Endpoint, region and credentials come from the standard AWS
 * variables and files (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY, AWS_PROFILE), as every AWS tool reads them; an endpoint that is not
 * AWS's is addressed path-style, which S3-protocol servers expect.
 *
 * A PUT is atomic on S3 (readers see the old object or the new one), so objects are written in
 * place. Files stream through a multipart upload (never whole in memory) while their sha256 is
 * computed on the way. Prefix locks are lock objects under `<prefix>/.strand-locks/`, taken,
 * renewed, taken over and released with conditional writes (If-None-Match / If-Match), so of
 * any number of writers on any machines exactly one wins.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { StorageError } from './errors.js';
import { checkKey, checkPrefix, LOCKS_DIR, TEMP_PREFIX } from './keys.js';
import type {
  ObjectStore,
  PutFileOptions,
  StoredFileInfo,
  StoredObjectHead,
  StoredObjectInfo,
  StoreLockHandle,
  StoreLockOptions,
} from './store.js';
import { holderText, lockLost, thisWriter, writerState, type WriterInfo } from './writer.js';

const DEFAULT_LOCK_TTL_MS = 30_000;
const DEFAULT_LOCK_WAIT_MS = 10 * 60_000;
/** S3 takes parts of 5 MiB or more and at most 10,000 of them: a larger file gets larger parts. */
const MIN_PART_BYTES = 8 * 1024 * 1024;
const MAX_PARTS = 10_000;

/** Where a store lives: a bucket and a key prefix ('' for the bucket's root). */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/?#]+)\/?([^?#]*)$/i.exec(url);
  if (!m)
    throw new StorageError(
      'BAD_URL',
      `store URL ${JSON.stringify(url)}: expected s3://bucket/prefix`,
    );
  const bucket = m[1];
  // S3's bucket naming rules, so a typo is caught before any request.
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) || bucket.includes('..'))
    throw new StorageError(
      'BAD_URL',
      `store URL ${url}: "${bucket}" is not a valid bucket name (3-63 lower-case letters, digits, dots and hyphens)`,
    );
  const prefix = m[2].replace(/\/+$/, '');
  if (prefix !== '') checkPrefix(prefix, false);
  return { bucket, prefix };
}

/** The endpoint given by the standard variables, if any (else the SDK picks AWS's own). */
function configuredEndpoint(env: NodeJS.ProcessEnv): string | undefined {
  return env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
}

export interface S3StoreOptions {
  /** A client to use instead of one built from the environment (tests, deploys). */
  client?: S3Client;
  env?: NodeJS.ProcessEnv;
}

interface LockContent extends WriterInfo {
  prefix: string;
  token: string;
  since: string;
  /** Bumped at each renewal, so the object (and its ETag) changes while the holder lives. */
  beat: number;
  free?: boolean;
}

export class S3Store implements ObjectStore {
  readonly url: string;
  readonly bucket: string;
  /** The key prefix of the store within the bucket ('' or 'a/b/'). */
  private readonly base: string;
  private readonly client: S3Client;
  private readonly endpoint: string;
  private conditionalChecked: Promise<void> | undefined;

  constructor(url: string, options: S3StoreOptions = {}) {
    const { bucket, prefix } = parseS3Url(url);
    this.bucket = bucket;
    this.base = prefix === '' ? '' : `${prefix}/`;
    this.url = `s3://${bucket}${prefix === '' ? '' : `/${prefix}`}`;
    const env = options.env ?? process.env;
    const endpoint = configuredEndpoint(env);
    this.endpoint =
      endpoint ?? `AWS S3 (${env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1'})`;
    this.client =
      options.client ??
      new S3Client({
        region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
        // Keys in a given environment (not the process's, which the SDK reads itself).
        ...(options.env && env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
          ? {
              credentials: {
                accessKeyId: env.AWS_ACCESS_KEY_ID,
                secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
                ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
              },
            }
          : {}),
        ...(endpoint
          ? { endpoint, forcePathStyle: !/\.amazonaws\.com(\.cn)?(:\d+)?\/?$/.test(endpoint) }
          : {}),
      });
  }

  private keyOf(key: string): string {
    return this.base + key;
  }

  /** A failure of the service, as a StorageError naming the bucket, key and endpoint. */
  private fail(err: unknown, what: string): never {
    if (err instanceof StorageError) throw err;
    const name = (err as { name?: string }).name ?? '';
    const status = (err as S3ServiceException).$metadata?.httpStatusCode;
    const where = `s3://${this.bucket}/${what} at ${this.endpoint}`;
    if (name === 'NoSuchBucket')
      throw new StorageError('NO_BUCKET', `${where}: the bucket "${this.bucket}" does not exist`);
    if (name === 'AccessDenied' || name === 'Forbidden' || status === 403)
      throw new StorageError(
        'ACCESS_DENIED',
        `${where}: access denied (${name || 'HTTP 403'}); check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID) and the bucket's policy`,
      );
    if (
      name === 'ExpiredToken' ||
      name === 'ExpiredTokenException' ||
      name === 'InvalidAccessKeyId' ||
      name === 'SignatureDoesNotMatch' ||
      name === 'CredentialsProviderError'
    )
      throw new StorageError(
        'ACCESS_DENIED',
        `${where}: the credentials were refused (${name}): ${(err as Error).message}`,
      );
    const code = (err as NodeJS.ErrnoException).code;
    if (
      code === 'ECONNREFUSED' ||
      code === 'ENOTFOUND' ||
      code === 'EAI_AGAIN' ||
      code === 'ECONNRESET' ||
      name === 'TimeoutError'
    )
      throw new StorageError(
        'UNREACHABLE',
        `${where}: cannot reach the endpoint (${code ?? name}); check AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL and the network`,
      );
    const e = err as Error;
    throw new StorageError('UNAVAILABLE', `${where}: ${name || 'error'}: ${e.message}`);
  }

  private notFound(err: unknown): boolean {
    const name = (err as { name?: string }).name;
    return (
      name === 'NoSuchKey' ||
      name === 'NotFound' ||
      (err as S3ServiceException).$metadata?.httpStatusCode === 404
    );
  }

  async putBytes(key: string, data: Uint8Array | string): Promise<StoredFileInfo> {
    checkKey(key);
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key), Body: bytes }),
      );
    } catch (err) {
      this.fail(err, this.keyOf(key));
    }
    return { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  }

  async putFile(
    key: string,
    localPath: string,
    options: PutFileOptions = {},
  ): Promise<StoredFileInfo> {
    checkKey(key);
    let size: number;
    try {
      const st = await stat(localPath);
      if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
      size = st.size;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new StorageError(
        'BAD_SOURCE',
        `cannot store ${JSON.stringify(key)} in ${this.url} from ${localPath}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'not a regular file' : String(err)}`,
      );
    }
    const hash = createHash('sha256');
    let seen = 0;
    const body = new PassThrough();
    const source = createReadStream(localPath);
    source.on('data', (chunk: Buffer | string) => {
      hash.update(chunk);
      seen += chunk.length;
    });
    source.on('error', (err) => body.destroy(err));
    source.pipe(body);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: this.keyOf(key), Body: body },
      partSize: Math.max(MIN_PART_BYTES, Math.ceil(size / MAX_PARTS)),
      queueSize: 4,
      // A failed upload aborts its parts: nothing half-written stays behind.
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (err) {
      this.fail(err, this.keyOf(key));
    }
    if (options.move) await unlink(localPath).catch(() => undefined);
    return { size: seen, sha256: hash.digest('hex') };
  }

  async get(key: string): Promise<Buffer> {
    const stream = await this.read(key);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async read(key: string): Promise<Readable> {
    checkKey(key);
    try {
      const r = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }),
      );
      return r.Body as Readable;
    } catch (err) {
      if (this.notFound(err))
        throw new StorageError('NOT_FOUND', `no object ${JSON.stringify(key)} in ${this.url}`);
      this.fail(err, this.keyOf(key));
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.head(key)) !== undefined;
  }

  async head(key: string): Promise<StoredObjectHead | undefined> {
    checkKey(key);
    try {
      const r = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }),
      );
      return { size: r.ContentLength ?? 0, lastModified: r.LastModified?.getTime() ?? 0 };
    } catch (err) {
      if (this.notFound(err)) return undefined;
      this.fail(err, this.keyOf(key));
    }
  }

  /** Every key at or below `prefix` with its size, the locks left out. */
  private async listRaw(prefix: string): Promise<StoredObjectInfo[]> {
    const out: StoredObjectInfo[] = [];
    const from = this.base + prefix;
    let token: string | undefined;
    do {
      let r;
      try {
        r = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: from,
            ContinuationToken: token,
          }),
        );
      } catch (err) {
        this.fail(err, from);
      }
      for (const o of r.Contents ?? []) {
        const key = (o.Key ?? '').slice(this.base.length);
        // S3 prefixes are strings; a store's are whole segments (`a/S1` is not `a/S10`).
        if (prefix !== '' && key !== prefix && !key.startsWith(`${prefix}/`)) continue;
        if (key.split('/').some((s) => s === LOCKS_DIR || s.startsWith(TEMP_PREFIX))) continue;
        out.push({ key, size: o.Size ?? 0 });
      }
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async list(prefix: string): Promise<StoredObjectInfo[]> {
    const base = checkPrefix(prefix, true);
    const all = await this.listRaw(base);
    return all.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(prefix: string): Promise<void> {
    const base = checkPrefix(prefix, false);
    const keys = (await this.listRaw(base)).map((o) => this.keyOf(o.key));
    // DeleteObjects takes at most 1,000 keys a call.
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      try {
        const r = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        const failed = r.Errors?.[0];
        if (failed)
          throw new StorageError(
            'UNAVAILABLE',
            `cannot delete s3://${this.bucket}/${failed.Key} at ${this.endpoint}: ${failed.Code}: ${failed.Message}`,
          );
      } catch (err) {
        this.fail(err, `${this.base}${base}`);
      }
    }
  }

  localPath(key: string): string | undefined {
    checkKey(key);
    return undefined;
  }

  async sweep(prefix: string): Promise<void> {
    const base = checkPrefix(prefix, false);
    const from = `${this.base}${base}/`;
    let keyMarker: string | undefined;
    let uploadMarker: string | undefined;
    do {
      let r;
      try {
        r = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: from,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadMarker,
          }),
        );
      } catch (err) {
        // A server that keeps no incomplete uploads (some S3-protocol servers) has none to sweep.
        if ((err as { name?: string }).name === 'NotImplemented') return;
        this.fail(err, from);
      }
      // The caller holds the prefix's lock, so an upload in progress below it is an orphan.
      for (const u of r.Uploads ?? []) {
        await this.client
          .send(
            new AbortMultipartUploadCommand({
              Bucket: this.bucket,
              Key: u.Key,
              UploadId: u.UploadId,
            }),
          )
          .catch((err: unknown) => {
            if (!this.notFound(err)) this.fail(err, u.Key ?? from);
          });
      }
      keyMarker = r.IsTruncated ? r.NextKeyMarker : undefined;
      uploadMarker = r.IsTruncated ? r.NextUploadIdMarker : undefined;
    } while (keyMarker);
  }

  private lockKey(prefix: string): string {
    return `${this.base}${LOCKS_DIR}/${prefix}`;
  }

  /** The lock object's content and ETag; undefined when there is none. */
  async readLock(prefix: string): Promise<{ content?: LockContent; etag: string } | undefined> {
    try {
      const r = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.lockKey(prefix) }),
      );
      const text = await r.Body!.transformToString();
      let content: LockContent | undefined;
      try {
        content = JSON.parse(text) as LockContent;
      } catch {
        content = undefined;
      }
      return { content, etag: r.ETag ?? '' };
    } catch (err) {
      if (this.notFound(err)) return undefined;
      this.fail(err, this.lockKey(prefix));
    }
  }

  /**
   * Writes the lock object only if it is still as seen (`etag`) or, with none, absent; the new
   * ETag, or undefined when another writer changed it first.
   */
  async writeLock(
    prefix: string,
    content: LockContent,
    etag: string | undefined,
  ): Promise<string | undefined> {
    try {
      const r = await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.lockKey(prefix),
          Body: JSON.stringify(content),
          ...(etag === undefined ? { IfNoneMatch: '*' } : { IfMatch: etag }),
        }),
      );
      return r.ETag ?? '';
    } catch (err) {
      const name = (err as { name?: string }).name;
      const status = (err as S3ServiceException).$metadata?.httpStatusCode;
      // 412: the condition failed; 409: a concurrent conditional write won; 404: gone meanwhile.
      if (
        name === 'PreconditionFailed' ||
        name === 'ConditionalRequestConflict' ||
        status === 412 ||
        status === 409 ||
        (etag !== undefined && this.notFound(err))
      )
        return undefined;
      this.fail(err, this.lockKey(prefix));
    }
  }

  /**
   * Refuses an endpoint that ignores conditional writes (S3-protocol servers older than S3's
   * own support for them): there its prefix locks would not exclude anybody.
   */
  private checkConditionalWrites(): Promise<void> {
    this.conditionalChecked ??= (async () => {
      const probe = `${this.base}${LOCKS_DIR}/.probe-${randomUUID()}`;
      const put = (ifNoneMatch: boolean) =>
        this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: probe,
            Body: 'probe',
            ...(ifNoneMatch ? { IfNoneMatch: '*' } : {}),
          }),
        );
      try {
        await put(false);
      } catch (err) {
        this.fail(err, probe);
      }
      let honoured = false;
      try {
        await put(true);
      } catch (err) {
        const status = (err as S3ServiceException).$metadata?.httpStatusCode;
        if (status !== 412 && status !== 409) this.fail(err, probe);
        honoured = true;
      }
      await this.client
        .send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: [{ Key: probe }] } }),
        )
        .catch(() => undefined);
      if (!honoured)
        throw new StorageError(
          'UNSUPPORTED',
          `${this.url} at ${this.endpoint}: the endpoint ignores conditional writes (If-None-Match), so prefix locks cannot keep two writers apart; use an S3 endpoint that supports them (AWS S3 does)`,
        );
    })();
    this.conditionalChecked.catch(() => (this.conditionalChecked = undefined));
    return this.conditionalChecked;
  }

  /** Writes (and removes) a probe object with a conditional write: bucket, keys and locks work. */
  check(): Promise<void> {
    return this.checkConditionalWrites();
  }

  async lock(prefix: string, options: StoreLockOptions = {}): Promise<StoreLockHandle> {
    const base = checkPrefix(prefix, false);
    await this.checkConditionalWrites();
    const ttl = options.ttlMs ?? DEFAULT_LOCK_TTL_MS;
    const waitMs = options.waitMs ?? DEFAULT_LOCK_WAIT_MS;
    const deadline = Date.now() + waitMs;
    const what = `"${base}" in ${this.url}`;
    let watched: { etag: string; since: number } | undefined;
    let pause = 5;
    for (;;) {
      const seen = await this.readLock(base);
      const holder = seen?.content;
      if (seen && (!watched || watched.etag !== seen.etag))
        watched = { etag: seen.etag, since: performance.now() };
      const takeable =
        seen === undefined ||
        holder?.free === true ||
        (holder !== undefined && writerState(holder) === 'dead') ||
        performance.now() - watched!.since >= ttl;
      if (takeable) {
        const content: LockContent = {
          prefix: base,
          ...thisWriter(),
          token: randomUUID(),
          since: new Date().toISOString(),
          beat: 0,
        };
        const etag = await this.writeLock(base, content, seen?.etag);
        if (etag !== undefined) return new S3LockHandle(this, base, content, etag, ttl, what);
        pause = 5;
        continue;
      }
      if (Date.now() >= deadline) {
        const who = holderText(holder);
        throw new StorageError(
          'LOCK_TIMEOUT',
          `cannot lock ${what}: held by ${who}; gave up after ${Math.round(waitMs / 1000)} s (lock object s3://${this.bucket}/${this.lockKey(base)})`,
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(pause, Math.max(0, deadline - Date.now()))));
      pause = Math.min(pause * 2, 250, Math.max(5, ttl / 4));
    }
  }
}

/** A held lock object; it renews itself (a conditional rewrite) every quarter of the TTL. */
export class S3LockHandle implements StoreLockHandle {
  private lost = false;
  private released = false;
  private readonly timer: NodeJS.Timeout;
  private renewing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: S3Store,
    readonly prefix: string,
    private content: LockContent,
    private etag: string,
    ttl: number,
    private readonly what: string,
  ) {
    let busy = false;
    this.timer = setInterval(
      () => {
        // One renewal at a time: two with the same If-Match would fail one another.
        if (busy) return;
        busy = true;
        this.renewing = this.renew().finally(() => (busy = false));
      },
      Math.max(1, ttl / 4),
    );
    // A holder's renewals must not keep a finished process alive.
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    if (this.lost || this.released) return;
    const next = { ...this.content, beat: this.content.beat + 1 };
    const etag = await this.store.writeLock(this.prefix, next, this.etag).catch(() => this.etag);
    if (this.released) return;
    if (etag === undefined) {
      this.lose();
      return;
    }
    this.content = next;
    this.etag = etag;
  }

  /** Stops renewing without releasing, as a holder whose machine hung would (tests take it over). */
  abandon(): void {
    clearInterval(this.timer);
  }

  private lose(): void {
    this.lost = true;
    clearInterval(this.timer);
  }

  async check(): Promise<void> {
    if (this.released) throw lockLost(this.what, true);
    await this.renewing;
    if (!this.lost) {
      const seen = await this.store.readLock(this.prefix);
      if (seen?.content?.token !== this.content.token || seen.content.free) this.lose();
    }
    if (this.lost) throw lockLost(this.what, false);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    await this.renewing;
    if (this.lost) return;
    // Only if still ours: a holder taken over must not free the new holder's lock.
    await this.store
      .writeLock(
        this.prefix,
        { ...this.content, free: true, since: new Date().toISOString() },
        this.etag,
      )
      .catch(() => undefined);
  }
}
