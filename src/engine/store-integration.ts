/**
 * The S3 calls of a Map state, answered from one of Strand's object stores: its ItemReader's
 * `s3:getObject` (a JSON, JSON Lines or CSV object read into items) and `s3:listObjectsV2`
 * (the objects under a prefix, as items shaped like AWS's), and its ResultWriter's
 * `s3:putObject` (the result files and manifest). Errors are AWS's: `States.ItemReaderFailed`
 * and `States.ResultWriterFailed`, which the Map state's Retry and Catch see.
 */
import { createHash } from 'node:crypto';
import { pipeline, type Readable, type Transform } from 'node:stream';
import * as zlib from 'node:zlib';
import {
  isResultWriterRequest,
  resultWriterObjects,
  resultWriterOutput,
} from '../asl/result-writer.js';
import type { Json, JsonObject } from '../asl/types.js';
import { exhausted } from '../faults.js';
import { StorageError } from '../storage/errors.js';
import type { ObjectStore } from '../storage/store.js';
import type { TaskCallbacks, TaskIntegration, TaskInvocation } from './integrations.js';
import { ItemReaderError, itemFormatOf, readItems, type ItemFormat } from './s3-items.js';

export const S3_GET_OBJECT = 'arn:aws:states:::s3:getObject';
export const S3_LIST_OBJECTS_V2 = 'arn:aws:states:::s3:listObjectsV2';
export const S3_PUT_OBJECT = 'arn:aws:states:::s3:putObject';

const RESOURCES = new Set([S3_GET_OBJECT, S3_LIST_OBJECTS_V2, S3_PUT_OBJECT]);

/** Where one bucket's objects are: a store, and the key prefix the bucket is in it. */
export interface BucketLocation {
  store: ObjectStore;
  /** '' when the bucket is the whole store. */
  root: string;
}

/** Finds a bucket by name; throws an Error naming it when there is no such bucket. */
export type BucketResolver = (bucket: string) => BucketLocation;

/**
 * The buckets a Map state reads and writes, as its store sees them. A `file://` store stands for
 * an S3 endpoint: each top-level directory is a bucket, so object `K` of bucket `B` is store key
 * `B/K`. With an `s3://` store, bucket `B` is the real bucket `s3://B` at the same endpoint.
 */
export function bucketsIn(
  store: ObjectStore,
  open: (url: string) => ObjectStore = () => store,
): BucketResolver {
  return (bucket) => {
    if (bucket === '' || bucket.includes('/') || bucket === '.' || bucket === '..')
      throw new Error(`${JSON.stringify(bucket)} is not a bucket name`);
    if (store.url.startsWith('s3://')) return { store: open(`s3://${bucket}`), root: '' };
    return { store, root: bucket };
  };
}

function storeKey(location: BucketLocation, key: string): string {
  if (location.root === '') return key;
  return key === '' ? location.root : `${location.root}/${key}`;
}

/** An error of the S3 call that the Map state sees, with AWS's error name. */
class S3CallError extends Error {
  constructor(
    readonly error: 'States.ItemReaderFailed' | 'States.ResultWriterFailed' | 'States.Runtime',
    message: string,
  ) {
    super(message);
    this.name = 'S3CallError';
  }
}

/** Answers a Map state's ItemReader and ResultWriter from an object store (see the top). */
export class StoreIntegration implements TaskIntegration {
  readonly name = 's3';
  constructor(private readonly buckets: BucketResolver) {}

  supports(resource: string): boolean {
    return RESOURCES.has(resource);
  }

  async invoke(task: TaskInvocation, callbacks: TaskCallbacks): Promise<void> {
    let output: Json;
    try {
      output = await this.call(task);
    } catch (err) {
      // A full disk is the machine's fault, not the Map's: the engine stops and runs it again.
      if (exhausted(err)) throw err;
      if (err instanceof S3CallError) {
        callbacks.failed(err.error, err.message);
        return;
      }
      const error =
        task.resource === S3_PUT_OBJECT ? 'States.ResultWriterFailed' : 'States.ItemReaderFailed';
      callbacks.failed(error, (err as Error).message);
      return;
    }
    callbacks.succeeded(output);
  }

  private async call(task: TaskInvocation): Promise<Json> {
    if (task.resource === S3_PUT_OBJECT) return this.writeResults(task);
    if (!task.itemReader) {
      throw new S3CallError(
        'States.Runtime',
        `${task.stateName}: ${task.resource} answers a Map state's ItemReader only (a Task state calls S3 as arn:aws:states:::aws-sdk:s3:…, which Strand does not answer yet)`,
      );
    }
    const config = task.itemReader;
    const maxItems = typeof config.MaxItems === 'number' ? config.MaxItems : undefined;
    const input = (task.input ?? {}) as Record<string, Json>;
    try {
      return task.resource === S3_GET_OBJECT
        ? await this.getObjectItems(input, config, maxItems)
        : await this.listObjectItems(input, config, maxItems);
    } catch (err) {
      if (err instanceof ItemReaderError)
        throw new S3CallError('States.ItemReaderFailed', err.message);
      throw err;
    }
  }

  private bucket(input: Record<string, Json>, error: S3CallError['error']): BucketLocation {
    const bucket = input.Bucket;
    if (typeof bucket !== 'string' || bucket === '')
      throw new S3CallError(
        error,
        `the S3 call needs a Bucket (a string), not ${JSON.stringify(bucket ?? null)}`,
      );
    try {
      return this.buckets(bucket);
    } catch (e) {
      throw new S3CallError(error, (e as Error).message);
    }
  }

  /** `s3:getObject`: the object's content read as ReaderConfig.InputType says. */
  private async getObjectItems(
    input: Record<string, Json>,
    config: JsonObject,
    maxItems: number | undefined,
  ): Promise<Json[]> {
    const location = this.bucket(input, 'States.ItemReaderFailed');
    const key = input.Key;
    if (typeof key !== 'string' || key === '')
      throw new ItemReaderError(
        `s3:getObject needs a Key (a string), not ${JSON.stringify(key ?? null)}`,
      );
    const format = itemFormatOf(config);
    return this.read(location, input.Bucket as string, key, format, maxItems);
  }

  /** The items of one object; an error reading it names the object. */
  private async read(
    location: BucketLocation,
    bucket: string,
    key: string,
    format: ItemFormat,
    maxItems: number | undefined,
  ): Promise<Json[]> {
    const stream = await this.open(location, bucket, key);
    try {
      return await readItems(stream, format, maxItems);
    } catch (e) {
      if (e instanceof ItemReaderError || exhausted(e)) throw e;
      throw new ItemReaderError(
        `cannot read bucket ${JSON.stringify(bucket)}, key ${JSON.stringify(key)}: ${(e as Error).message}`,
      );
    }
  }

  /**
   * `s3:listObjectsV2`: the objects whose key starts with Prefix (as a string: `a/S1` matches
   * `a/S10/x`), in key order. With `Transformation: LOAD_AND_FLATTEN`, the items read from
   * each of those objects instead.
   */
  private async listObjectItems(
    input: Record<string, Json>,
    config: JsonObject,
    maxItems: number | undefined,
  ): Promise<Json[]> {
    const location = this.bucket(input, 'States.ItemReaderFailed');
    const prefix = input.Prefix ?? '';
    const startAfter = input.StartAfter ?? '';
    if (typeof prefix !== 'string' || typeof startAfter !== 'string')
      throw new ItemReaderError('s3:listObjectsV2: Prefix and StartAfter must be strings');
    if (input.Delimiter !== undefined)
      throw new ItemReaderError(
        's3:listObjectsV2: Delimiter is not supported by Strand (the Map iterates over every object under the Prefix)',
      );
    if (config.ManifestType !== undefined)
      throw new ItemReaderError(
        `ReaderConfig.ManifestType ${JSON.stringify(config.ManifestType)} is not supported by Strand yet`,
      );
    const transformation = config.Transformation ?? 'NONE';
    if (transformation !== 'NONE' && transformation !== 'LOAD_AND_FLATTEN')
      throw new ItemReaderError(
        `ReaderConfig.Transformation must be NONE or LOAD_AND_FLATTEN, not ${JSON.stringify(transformation)}`,
      );
    const limit = maxItems !== undefined && maxItems > 0 ? maxItems : Infinity;
    const format = transformation === 'LOAD_AND_FLATTEN' ? itemFormatOf(config) : undefined;
    const items: Json[] = [];
    for (const object of await this.objectsUnder(location, prefix)) {
      if (items.length >= limit) break;
      if (object.key <= startAfter) continue;
      if (format) {
        const left = limit === Infinity ? undefined : limit - items.length;
        items.push(
          ...(await this.read(location, input.Bucket as string, object.key, format, left)),
        );
        continue;
      }
      const head = await location.store.head(storeKey(location, object.key));
      if (!head) continue; // deleted since it was listed
      items.push({
        // Not the MD5 of the content (reading every object to list it would be slow): a digest
        // of key, size and time, which changes whenever the object does.
        Etag: `"${createHash('md5').update(`${object.key}\n${head.size}\n${head.lastModified}`).digest('hex')}"`,
        Key: object.key,
        LastModified: Math.floor(head.lastModified / 1000),
        Size: head.size,
        StorageClass: 'STANDARD',
      });
    }
    return items;
  }

  /** The bucket's objects whose key starts with `prefix`, by S3 key, sorted. */
  private async objectsUnder(
    location: BucketLocation,
    prefix: string,
  ): Promise<{ key: string; size: number }[]> {
    // Stores list whole segments (`a/S1` covers `a/S1/x`, not `a/S10`): list the segment the
    // prefix ends in, then keep the keys that start with it.
    const cut = prefix.lastIndexOf('/');
    const segment = cut < 0 ? '' : prefix.slice(0, cut);
    let listed;
    try {
      listed = await location.store.list(storeKey(location, segment));
    } catch (e) {
      // A prefix no key of the store can have ("a//b", "../x") matches nothing.
      if (e instanceof StorageError && e.code === 'BAD_KEY') return [];
      throw e;
    }
    const root = location.root === '' ? '' : `${location.root}/`;
    return listed
      .map((o) => ({ key: o.key.slice(root.length), size: o.size }))
      .filter((o) => o.key.startsWith(prefix));
  }

  /** The object's bytes, decompressed when its name says gzip or zstd (as AWS reads them). */
  private async open(location: BucketLocation, bucket: string, key: string): Promise<Readable> {
    let stream: Readable;
    try {
      stream = await location.store.read(storeKey(location, key));
    } catch (e) {
      if (e instanceof StorageError && (e.code === 'NOT_FOUND' || e.code === 'BAD_KEY'))
        throw new ItemReaderError(
          `The specified key does not exist: bucket ${JSON.stringify(bucket)}, key ${JSON.stringify(key)} (${e.message})`,
        );
      throw e;
    }
    const lower = key.toLowerCase();
    let decompress: Transform | undefined;
    if (lower.endsWith('.gz') || lower.endsWith('.gzip')) decompress = zlib.createGunzip();
    else if (lower.endsWith('.zst') || lower.endsWith('.zstd')) {
      const zstd = (zlib as unknown as { createZstdDecompress?: () => Transform })
        .createZstdDecompress;
      if (!zstd) {
        stream.destroy();
        throw new ItemReaderError(
          `${key} is zstd-compressed, which this Node.js (${process.version}) cannot read; gzip it or use Node.js 22.15 or later`,
        );
      }
      decompress = zstd();
    }
    if (!decompress) return stream;
    return pipeline(stream, decompress, () => undefined);
  }

  /** `s3:putObject` of a ResultWriter: the result files, then the manifest naming them. */
  private async writeResults(task: TaskInvocation): Promise<Json> {
    const request = task.input;
    if (!isResultWriterRequest(request)) {
      throw new S3CallError(
        'States.Runtime',
        `${task.stateName}: ${task.resource} answers a Map state's ResultWriter only (a Task state calls S3 as arn:aws:states:::aws-sdk:s3:…, which Strand does not answer yet)`,
      );
    }
    const location = this.bucket(request, 'States.ResultWriterFailed');
    try {
      // The same request always gives the same keys and bytes: writing again after a restart
      // replaces each object with itself.
      for (const object of resultWriterObjects(request))
        await location.store.putBytes(storeKey(location, object.key), object.body);
    } catch (e) {
      if (e instanceof StorageError)
        throw new S3CallError(
          'States.ResultWriterFailed',
          `cannot write the results to bucket ${JSON.stringify(request.Bucket)}, prefix ${JSON.stringify(request.Prefix)}: ${e.message}`,
        );
      throw e;
    }
    return resultWriterOutput(request);
  }
}
