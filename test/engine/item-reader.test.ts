/**
 * A Map state's ItemReader and ResultWriter on the home's object store: `s3:getObject` of JSON,
 * JSON Lines and CSV objects, `s3:listObjectsV2` with S3's string prefixes, MaxItems, AWS's
 * errors caught by a Catch, and the result files and manifest a ResultWriter leaves — through a
 * real engine on a temporary home, and through `strand start`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, openStrand, type Strand } from '../../src/app/index.js';
import type { Json, JsonObject, StateMachineDefinition } from '../../src/asl/types.js';
import type { TaskIntegration } from '../../src/engine/integrations.js';
import { resultWriterObjects, type ResultWriterRequest } from '../../src/asl/result-writer.js';
import { S3_PUT_OBJECT } from '../../src/engine/store-integration.js';
import { strand, waitUntil } from '../pipeline/cli.js';

const opened: Strand[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) {
    s.engine.close();
    await s.services.close();
  }
});

function home(): string {
  return mkdtempSync(join(tmpdir(), 'strand-items-'));
}

function open(dir: string, integrations: TaskIntegration[] = []): Strand {
  const s = openStrand({ home: dir, engine: { integrations } });
  opened.push(s);
  return s;
}

const echo = { StartAt: 'Echo', States: { Echo: { Type: 'Pass', End: true } } };

/** A Map reading its items with `reader`, plus `extra` Map fields. */
function reading(reader: JsonObject, extra: JsonObject = {}): StateMachineDefinition {
  return {
    StartAt: 'Each',
    States: {
      Each: {
        Type: 'Map',
        ItemReader: reader,
        ItemProcessor: { ProcessorConfig: { Mode: 'DISTRIBUTED' }, ...echo },
        End: true,
        ...extra,
      },
    },
  } as unknown as StateMachineDefinition;
}

/** `definition` with a Catch on its Map for `error`, going to a Pass state. */
function catching(definition: StateMachineDefinition, error: string): StateMachineDefinition {
  const map = { ...(definition.States.Each as unknown as JsonObject) };
  delete map.End;
  map.Next = 'Caught';
  map.Catch = [{ ErrorEquals: [error], ResultPath: '$.failure', Next: 'Caught' }];
  return {
    StartAt: 'Each',
    States: { Each: map, Caught: { Type: 'Pass', End: true } },
  } as unknown as StateMachineDefinition;
}

async function run(
  s: Strand,
  definition: StateMachineDefinition,
  input: Json = {},
  name = 'run-1',
) {
  await s.engine.startExecution({ definition, input, name });
  const d = await s.engine.waitForExecution(name);
  return { ...d, value: d.output === undefined ? undefined : (JSON.parse(d.output) as Json) };
}

const getObject = (key: string, config: JsonObject, bucket = 'inputs') => ({
  Resource: 'arn:aws:states:::s3:getObject',
  ReaderConfig: config,
  Parameters: { Bucket: bucket, Key: key },
});

describe('ItemReader on the store', () => {
  it('s3:getObject JSON: the array in bucket/key is the item list', async () => {
    const dir = home();
    await openStore(undefined, { home: dir }).putBytes(
      'inputs/samples/list.json',
      JSON.stringify([{ id: 'S1' }, { id: 'S2' }, { id: 'S3' }]),
    );
    const r = await run(
      open(dir),
      reading({
        Resource: 'arn:aws:states:::s3:getObject',
        ReaderConfig: { InputType: 'JSON' },
        Parameters: { 'Bucket.$': '$.bucket', 'Key.$': '$.key' },
      }),
      { bucket: 'inputs', key: 'samples/list.json' },
    );
    expect(r.status, r.cause).toBe('SUCCEEDED');
    expect(r.value).toEqual([{ id: 'S1' }, { id: 'S2' }, { id: 'S3' }]);
  });

  it('JSON with ItemsPointer: the array it names', async () => {
    const dir = home();
    await openStore(undefined, { home: dir }).putBytes(
      'inputs/nested.json',
      JSON.stringify({ run: { samples: ['a', 'b'] } }),
    );
    const r = await run(
      open(dir),
      reading(getObject('nested.json', { InputType: 'JSON', ItemsPointer: '/run/samples' })),
    );
    expect(r.value).toEqual(['a', 'b']);
  });

  it('s3:getObject JSONL: one value per line, blank lines skipped; gzip read by its name', async () => {
    const dir = home();
    const store = openStore(undefined, { home: dir });
    const lines = '{"id":"S1"}\n\n  \n"two"\r\n3\n[4]\n';
    await store.putBytes('inputs/rows.jsonl', lines);
    await store.putBytes('inputs/rows.jsonl.gz', gzipSync(lines));
    const s = open(dir);
    const plain = await run(s, reading(getObject('rows.jsonl', { InputType: 'JSONL' })));
    expect(plain.value).toEqual([{ id: 'S1' }, 'two', 3, [4]]);
    const gz = await run(
      s,
      reading(getObject('rows.jsonl.gz', { InputType: 'JSONL' })),
      {},
      'run-gz',
    );
    expect(gz.value).toEqual(plain.value);
    await store.putBytes('inputs/fake.jsonl.gz', lines);
    const fake = await run(
      s,
      reading(getObject('fake.jsonl.gz', { InputType: 'JSONL' })),
      {},
      'run-fake',
    );
    expect(fake).toMatchObject({ status: 'FAILED', error: 'States.ItemReaderFailed' });
    expect(fake.cause).toMatch(/^cannot read bucket "inputs", key "fake.jsonl.gz": /);
  });

  it('CSV FIRST_ROW: rows become objects of strings; short rows padded, long ones cut', async () => {
    const dir = home();
    await openStore(undefined, { home: dir }).putBytes(
      'inputs/sheet.csv',
      'id,reads,note\nS1,s1.fq,"has, a comma"\nS2,s2.fq\nS3,s3.fq,x,extra\n"S""4",,\n',
    );
    const r = await run(
      open(dir),
      reading(getObject('sheet.csv', { InputType: 'CSV', CSVHeaderLocation: 'FIRST_ROW' })),
    );
    expect(r.value).toEqual([
      { id: 'S1', reads: 's1.fq', note: 'has, a comma' },
      { id: 'S2', reads: 's2.fq', note: '' },
      { id: 'S3', reads: 's3.fq', note: 'x' },
      { id: 'S"4', reads: '', note: '' },
    ]);
  });

  it('CSV GIVEN headers, PIPE delimiter: every row is data', async () => {
    const dir = home();
    await openStore(undefined, { home: dir }).putBytes(
      'inputs/ratings.psv',
      '1|307|3.5\n1|481|3.5\n',
    );
    const r = await run(
      open(dir),
      reading(
        getObject('ratings.psv', {
          InputType: 'CSV',
          CSVHeaderLocation: 'GIVEN',
          CSVHeaders: ['userId', 'movieId', 'rating'],
          CSVDelimiter: 'PIPE',
        }),
      ),
    );
    expect(r.value).toEqual([
      { userId: '1', movieId: '307', rating: '3.5' },
      { userId: '1', movieId: '481', rating: '3.5' },
    ]);
  });

  it('CSV headers with a duplicate fail the Map with States.ItemReaderFailed, as AWS does', async () => {
    const dir = home();
    await openStore(undefined, { home: dir }).putBytes('inputs/dup.csv', 'a,b,a\n1,2,3\n');
    const r = await run(open(dir), reading(getObject('dup.csv', { InputType: 'CSV' })));
    expect(r).toMatchObject({
      status: 'FAILED',
      error: 'States.ItemReaderFailed',
      cause: 'CSV headers cannot contain duplicates.',
    });
  });

  it('s3:listObjectsV2: Prefix is a string prefix (S1 matches S10); items shaped as on AWS', async () => {
    const dir = home();
    const store = openStore(undefined, { home: dir });
    const before = Math.floor(Date.now() / 1000) - 1;
    await store.putBytes('data/runs/S1/reads.fq', 'ACGT\n');
    await store.putBytes('data/runs/S10/reads.fq', 'ACGTACGT\n');
    await store.putBytes('data/runs/S2/reads.fq', 'A\n');
    await store.putBytes('other/runs/S1/reads.fq', 'A\n');
    const r = await run(
      open(dir),
      reading({
        Resource: 'arn:aws:states:::s3:listObjectsV2',
        Parameters: { Bucket: 'data', Prefix: 'runs/S1' },
      }),
    );
    expect(r.status, r.cause).toBe('SUCCEEDED');
    const items = r.value as JsonObject[];
    expect(items.map((i) => i.Key)).toEqual(['runs/S1/reads.fq', 'runs/S10/reads.fq']);
    expect(items[1]).toEqual({
      Etag: expect.stringMatching(/^"[0-9a-f]{32}"$/),
      Key: 'runs/S10/reads.fq',
      LastModified: expect.any(Number),
      Size: 9,
      StorageClass: 'STANDARD',
    });
    expect(items[0].LastModified).toBeGreaterThanOrEqual(before);
    expect(items[0].LastModified).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 1);
  });

  it('listObjectsV2 with LOAD_AND_FLATTEN: the items of every object listed', async () => {
    const dir = home();
    const store = openStore(undefined, { home: dir });
    await store.putBytes('logs/day1/a.jsonl', '{"n":1}\n{"n":2}\n');
    await store.putBytes('logs/day1/b.jsonl', '{"n":3}\n');
    const r = await run(
      open(dir),
      reading({
        Resource: 'arn:aws:states:::s3:listObjectsV2',
        ReaderConfig: { InputType: 'JSONL', Transformation: 'LOAD_AND_FLATTEN' },
        Parameters: { Bucket: 'logs', Prefix: 'day1/' },
      }),
    );
    expect(r.value).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
  });

  it('MaxItems and MaxItemsPath: only the first items are read', async () => {
    const dir = home();
    const store = openStore(undefined, { home: dir });
    await store.putBytes('inputs/many.jsonl', [1, 2, 3, 4, 5].map(String).join('\n'));
    await store.putBytes('inputs/many.csv', 'n\n1\n2\n3\n4\n');
    const s = open(dir);
    const jsonl = await run(
      s,
      reading(getObject('many.jsonl', { InputType: 'JSONL', MaxItemsPath: '$.max' })),
      { max: 2 },
    );
    expect(jsonl.value).toEqual([1, 2]);
    const csv = await run(
      s,
      reading(getObject('many.csv', { InputType: 'CSV', MaxItems: 3 })),
      {},
      'run-csv',
    );
    expect(csv.value).toEqual([{ n: '1' }, { n: '2' }, { n: '3' }]);
  });

  it('a missing object fails with States.ItemReaderFailed, which a Catch on the Map catches', async () => {
    const r = await run(
      open(home()),
      catching(
        reading(getObject('nope/absent.json', { InputType: 'JSON' })),
        'States.ItemReaderFailed',
      ),
    );
    expect(r.status, r.cause).toBe('SUCCEEDED');
    const failure = (r.value as { failure: { Error: string; Cause: string } }).failure;
    expect(failure.Error).toBe('States.ItemReaderFailed');
    expect(failure.Cause).toContain('"inputs"');
    expect(failure.Cause).toContain('"nope/absent.json"');
  });

  it('bad JSON and a JSON document that is not an array fail with States.ItemReaderFailed', async () => {
    const dir = home();
    const store = openStore(undefined, { home: dir });
    await store.putBytes('inputs/broken.json', '[{"id": 1},');
    await store.putBytes('inputs/object.json', '{"id": 1}');
    const s = open(dir);
    const broken = await run(s, reading(getObject('broken.json', { InputType: 'JSON' })));
    expect(broken).toMatchObject({ status: 'FAILED', error: 'States.ItemReaderFailed' });
    expect(broken.cause).toMatch(/^the object is not JSON: /);
    const object = await run(
      s,
      reading(getObject('object.json', { InputType: 'JSON' })),
      {},
      'run-object',
    );
    expect(object).toMatchObject({
      status: 'FAILED',
      error: 'States.ItemReaderFailed',
      cause: 'Attempting to map over non-iterable node.',
    });
  });

  it('s3:getObject without an InputType is refused with a cause saying what to add', async () => {
    const dir = home();
    await openStore(undefined, { home: dir }).putBytes('inputs/x.json', '[]');
    const r = await run(open(dir), reading(getObject('x.json', {})));
    expect(r).toMatchObject({ status: 'FAILED', error: 'States.ItemReaderFailed' });
    expect(r.cause).toContain('ReaderConfig.InputType');
  });
});

/** A Map over `$.items` whose iterations fail for items that are "bad". */
function writing(extra: JsonObject): StateMachineDefinition {
  return {
    StartAt: 'Each',
    States: {
      Each: {
        Type: 'Map',
        ItemsPath: '$.items',
        Label: 'Samples',
        ItemProcessor: {
          ProcessorConfig: { Mode: 'DISTRIBUTED' },
          StartAt: 'Check',
          States: {
            Check: {
              Type: 'Choice',
              Choices: [{ Variable: '$.id', StringEquals: 'bad', Next: 'Broke' }],
              Default: 'Ok',
            },
            Broke: { Type: 'Fail', Error: 'SampleFailed', Cause: 'the sample is bad' },
            Ok: { Type: 'Pass', Parameters: { 'done.$': '$.id' }, End: true },
          },
        },
        ResultWriter: {
          Resource: 'arn:aws:states:::s3:putObject',
          Parameters: { Bucket: 'results', 'Prefix.$': '$.prefix' },
        },
        End: true,
        ...extra,
      },
    },
  } as unknown as StateMachineDefinition;
}

async function stored(dir: string, key: string): Promise<Json> {
  return JSON.parse(
    (await openStore(undefined, { home: dir }).get(`results/${key}`)).toString(),
  ) as Json;
}

describe('ResultWriter on the store', () => {
  it('writes SUCCEEDED_0.json, FAILED_0.json and manifest.json; the Map returns where', async () => {
    const dir = home();
    const r = await run(open(dir), writing({ ToleratedFailureCount: 1 }), {
      prefix: 'jobs',
      items: [{ id: 'S1' }, { id: 'bad' }, { id: 'S2' }],
    });
    expect(r.status, r.cause).toBe('SUCCEEDED');
    const out = r.value as {
      MapRunArn: string;
      ResultWriterDetails: { Bucket: string; Key: string };
    };
    const id = out.MapRunArn.split(':').pop()!;
    expect(out).toEqual({
      MapRunArn: `arn:aws:states:local:000000000000:mapRun:StateMachine/Samples:${id}`,
      ResultWriterDetails: { Bucket: 'results', Key: `jobs/${id}/manifest.json` },
    });
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);

    const store = openStore(undefined, { home: dir });
    const size = async (key: string) => (await store.get(`results/${key}`)).length;
    expect(await stored(dir, `jobs/${id}/manifest.json`)).toEqual({
      DestinationBucket: 'results',
      MapRunArn: out.MapRunArn,
      ResultFiles: {
        FAILED: [{ Key: `jobs/${id}/FAILED_0.json`, Size: await size(`jobs/${id}/FAILED_0.json`) }],
        PENDING: [],
        SUCCEEDED: [
          { Key: `jobs/${id}/SUCCEEDED_0.json`, Size: await size(`jobs/${id}/SUCCEEDED_0.json`) },
        ],
      },
    });
    expect((await store.list('results')).map((o) => o.key).sort()).toEqual([
      `results/jobs/${id}/FAILED_0.json`,
      `results/jobs/${id}/SUCCEEDED_0.json`,
      `results/jobs/${id}/manifest.json`,
    ]);

    const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
    const succeeded = (await stored(dir, `jobs/${id}/SUCCEEDED_0.json`)) as JsonObject[];
    expect(succeeded).toHaveLength(2);
    expect(succeeded[0]).toEqual({
      ExecutionArn: `arn:aws:states:local:000000000000:execution:StateMachine/Samples:${succeeded[0].Name as string}`,
      Input: '{"id":"S1"}',
      InputDetails: { Included: true },
      Name: expect.stringMatching(/^[0-9a-f-]{36}$/),
      Output: '{"done":"S1"}',
      OutputDetails: { Included: true },
      RedriveCount: 0,
      RedriveStatus: 'NOT_REDRIVABLE',
      RedriveStatusReason: 'Execution is SUCCEEDED and cannot be redriven',
      StartDate: expect.stringMatching(iso),
      StateMachineArn: 'arn:aws:states:local:000000000000:stateMachine:StateMachine/Samples',
      Status: 'SUCCEEDED',
      StopDate: expect.stringMatching(iso),
    });
    expect(succeeded[1]).toMatchObject({ Input: '{"id":"S2"}', Output: '{"done":"S2"}' });
    const failed = (await stored(dir, `jobs/${id}/FAILED_0.json`)) as JsonObject[];
    expect(failed).toEqual([
      expect.objectContaining({
        Input: '{"id":"bad"}',
        Status: 'FAILED',
        Error: 'SampleFailed',
        Cause: 'the sample is bad',
        RedriveStatus: 'REDRIVABLE_BY_MAP_RUN',
      }),
    ]);
    expect(failed[0]).not.toHaveProperty('Output');
  });

  it('a Map run failing beyond its tolerance writes its results, PENDING included, then fails', async () => {
    const dir = home();
    const r = await run(open(dir), writing({ MaxConcurrency: 1, ToleratedFailureCount: 0 }), {
      prefix: 'failing/',
      items: [{ id: 'S1' }, { id: 'bad' }, { id: 'S2' }, { id: 'S3' }],
    });
    expect(r).toMatchObject({
      status: 'FAILED',
      error: 'SampleFailed',
      cause: 'the sample is bad',
    });
    const [manifestKey] = (await openStore(undefined, { home: dir }).list('results/failing'))
      .map((o) => o.key.slice('results/'.length))
      .filter((k) => k.endsWith('manifest.json'));
    const manifest = (await stored(dir, manifestKey)) as {
      ResultFiles: Record<string, { Key: string }[]>;
    };
    const files = manifest.ResultFiles;
    expect(Object.values(files).map((f) => f.length)).toEqual([1, 1, 1]);
    const pending = (await stored(dir, files.PENDING[0].Key)) as JsonObject[];
    expect(pending.map((p) => [p.Input, p.Status])).toEqual([
      ['{"id":"S2"}', 'PENDING'],
      ['{"id":"S3"}', 'PENDING'],
    ]);
    expect(
      ((await stored(dir, files.SUCCEEDED[0].Key)) as JsonObject[]).map((p) => p.Input),
    ).toEqual(['{"id":"S1"}']);
  });

  it('WriterConfig COMPACT writes the outputs only; JSONL writes one line each', async () => {
    const dir = home();
    const r = await run(
      open(dir),
      writing({
        ToleratedFailureCount: 1,
        ResultWriter: {
          Resource: 'arn:aws:states:::s3:putObject',
          Parameters: { Bucket: 'results', Prefix: 'compact' },
          WriterConfig: { Transformation: 'COMPACT', OutputType: 'JSONL' },
        },
      }),
      { items: [{ id: 'S1' }, { id: 'S2' }] },
    );
    const key = (r.value as { ResultWriterDetails: { Key: string } }).ResultWriterDetails.Key;
    const text = (
      await openStore(undefined, { home: dir }).get(
        `results/${key.replace('manifest.json', 'SUCCEEDED_0.json')}`,
      )
    ).toString();
    expect(text).toBe('{"done":"S1"}\n{"done":"S2"}\n');
  });

  it('a restart while the results are being written loses nothing and writes the same bytes', async () => {
    const dir = home();
    const store = openStore(undefined, { home: dir });
    // Puts the first object of the write, then never answers: the engine goes away there.
    let written: { key: string; body: string } | undefined;
    const stalled: TaskIntegration = {
      name: 'stalled',
      supports: (resource) => resource === S3_PUT_OBJECT,
      invoke: async (task) => {
        const [first] = resultWriterObjects(task.input as ResultWriterRequest);
        await store.putBytes(`results/${first.key}`, first.body);
        written = first;
      },
    };
    const first = open(dir, [stalled]);
    const input = { prefix: 'restart', items: [{ id: 'S1' }, { id: 'S2' }] };
    await first.engine.startExecution({ definition: writing({}), input, name: 'crash-1' });
    await waitUntil('the first result file', () => written);
    expect(first.engine.describeExecution('crash-1').status).toBe('RUNNING');
    expect((await store.list('results')).map((o) => o.key)).toEqual([`results/${written!.key}`]);
    opened.splice(opened.indexOf(first), 1);
    first.engine.close();
    await first.services.close();

    const again = open(dir);
    const d = await again.engine.waitForExecution('crash-1');
    expect(d.status, d.cause).toBe('SUCCEEDED');
    const key = (JSON.parse(d.output!) as { ResultWriterDetails: { Key: string } })
      .ResultWriterDetails.Key;
    expect(key).toMatch(/^restart\/.+\/manifest\.json$/);
    expect(written!.key).toBe(key.replace('manifest.json', 'SUCCEEDED_0.json'));
    expect((await store.get(`results/${written!.key}`)).toString()).toBe(written!.body);
    expect((await store.list('results')).map((o) => o.key)).toEqual([
      `results/${written!.key}`,
      `results/${key}`,
    ]);
  });

  it('a failed write is redriven alone: the iterations that succeeded do not run again', async () => {
    const dir = home();
    const store = openStore(undefined, { home: dir });
    // An object where the results' folder must go: the write fails until it is removed.
    await store.putBytes('results/blocked', 'in the way');
    const s = open(dir);
    const r = await run(s, writing({}), { prefix: 'blocked', items: [{ id: 'S1' }, { id: 'S2' }] });
    expect(r).toMatchObject({ status: 'FAILED', error: 'States.ResultWriterFailed' });
    expect(r.cause).toContain('"blocked"');
    await store.delete('results/blocked');
    await s.engine.redriveExecution('run-1');
    const d = await s.engine.waitForExecution('run-1');
    expect(d.status, d.cause).toBe('SUCCEEDED');
    const history = s.engine.getExecutionHistory('run-1');
    const since = history.slice(history.findIndex((e) => e.type === 'ExecutionRedriven'));
    expect(since.filter((e) => e.type === 'MapIterationStarted')).toEqual([]);
    const key = (JSON.parse(d.output!) as { ResultWriterDetails: { Key: string } })
      .ResultWriterDetails.Key;
    const manifest = (await stored(dir, key)) as { ResultFiles: { SUCCEEDED: { Key: string }[] } };
    const records = (await stored(dir, manifest.ResultFiles.SUCCEEDED[0].Key)) as JsonObject[];
    expect(records.map((x) => x.Output)).toEqual(['{"done":"S1"}', '{"done":"S2"}']);
  });

  it('a Prefix the store cannot hold fails with States.ResultWriterFailed, which a Catch sees', async () => {
    const r = await run(
      open(home()),
      catching(
        writing({
          ResultWriter: {
            Resource: 'arn:aws:states:::s3:putObject',
            Parameters: { Bucket: 'results', Prefix: 'a//b' },
          },
        }),
        'States.ResultWriterFailed',
      ),
      { items: [{ id: 'S1' }] },
    );
    expect(r.status, r.cause).toBe('SUCCEEDED');
    const failure = (r.value as { failure: { Error: string; Cause: string } }).failure;
    expect(failure.Error).toBe('States.ResultWriterFailed');
    expect(failure.Cause).toContain('"a//b"');
  });
});

describe('strand start', () => {
  it('runs a definition with an ItemReader on the home store instead of refusing it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strand-items-cli-'));
    const strandHome = join(dir, 'home');
    await openStore(undefined, { home: strandHome }).putBytes(
      'inputs/samples.csv',
      'id,reads\nS1,a.fq\nS2,b.fq\n',
    );
    const file = join(dir, 'samples.asl.json');
    writeFileSync(
      file,
      JSON.stringify(
        reading(getObject('samples.csv', { InputType: 'CSV' }), {
          ItemSelector: { 'sample.$': '$$.Map.Item.Value.id' },
        }),
      ),
    );
    const r = await strand('start', file, '--home', strandHome, '--quiet', '--name', 'cli-1');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toEqual([{ sample: 'S1' }, { sample: 'S2' }]);
  });

  it('--store names the store the buckets are read from', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strand-items-store-'));
    const elsewhere = join(dir, 'shared-store');
    await openStore(elsewhere, { home: dir }).putBytes('inputs/samples.csv', 'id\nS9\n');
    const file = join(dir, 'samples.asl.json');
    writeFileSync(file, JSON.stringify(reading(getObject('samples.csv', { InputType: 'CSV' }))));
    const home = join(dir, 'home');
    const r = await strand('start', file, '--home', home, '--store', elsewhere, '--quiet');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toEqual([{ id: 'S9' }]);
    // Without it the home's own store has no such object.
    const missing = await strand('start', file, '--home', home, '--quiet');
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('States.ItemReaderFailed');
  });
});
