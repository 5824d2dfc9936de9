/**
 * A Map's ResultWriter in the pure interpreter: the write is a task the driver carries out,
 * whose input lists every iteration's record; the Map's result names the manifest; a Map run
 * that fails beyond its tolerance is written before it fails; WriterConfig alone shapes the
 * result without writing. Through the in-memory driver; no store.
 */
import { describe, expect, it } from 'vitest';
import { StatesError } from '../../src/asl/errors.js';
import { resultWriterObjects, type ResultWriterRequest } from '../../src/asl/result-writer.js';
import { runInMemory, type TaskRequest } from '../../src/asl/run-in-memory.js';
import type { Json, JsonObject, StateMachineDefinition } from '../../src/asl/types.js';
import { validate } from '../../src/asl/validate.js';

const PUT = 'arn:aws:states:::s3:putObject';

/** A Map over `$.items` failing the iterations whose item is "bad". */
function machine(map: JsonObject, after: JsonObject = {}): StateMachineDefinition {
  const each: JsonObject = {
    Type: 'Map',
    ItemsPath: '$.items',
    ItemProcessor: {
      StartAt: 'Check',
      States: {
        Check: {
          Type: 'Choice',
          Choices: [{ Variable: '$', StringEquals: 'bad', Next: 'Broke' }],
          Default: 'Ok',
        },
        Broke: { Type: 'Fail', Error: 'Bad', Cause: 'a bad item' },
        Ok: { Type: 'Pass', Parameters: { 'item.$': '$' }, End: true },
      },
    },
    End: true,
    ...map,
  };
  if (map.Next !== undefined) delete each.End;
  return { StartAt: 'Each', States: { Each: each, ...after } } as unknown as StateMachineDefinition;
}

const writer = (extra: JsonObject = {}) => ({
  ResultWriter: { Resource: PUT, Parameters: { Bucket: 'out', 'Prefix.$': '$.prefix' }, ...extra },
});

/** Runs `definition`, recording the ResultWriter requests; `fail` makes the write fail. */
async function run(definition: StateMachineDefinition, input: Json, fail = false) {
  const writes: ResultWriterRequest[] = [];
  const result = await runInMemory(definition, input, {
    tasks: {
      [PUT]: (request: TaskRequest) => {
        writes.push(request.input as ResultWriterRequest);
        if (fail) throw new StatesError('States.ResultWriterFailed', 'the bucket is full', false);
        return 'ignored: the Map knows its result';
      },
    },
  });
  return { ...result, writes };
}

describe('ResultWriter', () => {
  it('asks the driver to write every record; the Map returns the MapRunArn and manifest key', async () => {
    const r = await run(machine({ ToleratedFailureCount: 1, ...writer() }), {
      prefix: 'jobs',
      items: ['a', 'bad', 'b'],
    });
    expect(r.status, r.cause).toBe('SUCCEEDED');
    expect(r.writes).toHaveLength(1);
    const request = r.writes[0];
    const id = request.MapRunArn.split(':').pop();
    expect(request.MapRunArn).toBe(
      `arn:aws:states:local:000000000000:mapRun:StateMachine/Each:${id}`,
    );
    expect(r.output).toEqual({
      MapRunArn: request.MapRunArn,
      ResultWriterDetails: { Bucket: 'out', Key: `jobs/${id}/manifest.json` },
    });
    expect(request.ResultFiles.SUCCEEDED.map((x) => (x as JsonObject).Output)).toEqual([
      '{"item":"a"}',
      '{"item":"b"}',
    ]);
    expect(request.ResultFiles.FAILED).toEqual([
      expect.objectContaining({
        Input: '"bad"',
        Error: 'Bad',
        Cause: 'a bad item',
        Status: 'FAILED',
      }),
    ]);
    expect(request.ResultFiles.PENDING).toEqual([]);
    // The history shows the ResultWriter's parameters, not every record.
    const scheduled = r.events.filter((e) => e.type === 'TaskScheduled');
    expect(scheduled.at(-1)).toMatchObject({
      taskScheduledEventDetails: { resource: PUT, parameters: { Bucket: 'out', Prefix: 'jobs' } },
    });
  });

  it('JSONata: Arguments name the Bucket and Prefix', async () => {
    const definition = machine({
      QueryLanguage: 'JSONata',
      Items: '{% $states.input.items %}',
      ItemProcessor: { StartAt: 'Ok', States: { Ok: { Type: 'Pass', End: true } } },
      ResultWriter: {
        Resource: PUT,
        Arguments: { Bucket: 'out', Prefix: "{% 'runs/' & $states.input.prefix %}" },
      },
    });
    delete (definition.States.Each as unknown as JsonObject).ItemsPath;
    const r = await run(definition, { prefix: 'x', items: [1] });
    expect(r.status, r.cause).toBe('SUCCEEDED');
    expect(r.writes[0]).toMatchObject({ Bucket: 'out', Prefix: 'runs/x' });
    expect(r.output).toMatchObject({
      ResultWriterDetails: { Key: expect.stringMatching(/^runs\/x\/.+\/manifest\.json$/) },
    });
  });

  it('the same execution always asks for the same bytes', async () => {
    const definition = machine(writer());
    const input = { prefix: 'p', items: ['a', 'b'] };
    const [one, two] = [await run(definition, input), await run(definition, input)];
    expect(resultWriterObjects(two.writes[0])).toEqual(resultWriterObjects(one.writes[0]));
  });

  it('an ItemSelector input is the record Input', async () => {
    const r = await run(
      machine({
        ItemSelector: { 'value.$': '$$.Map.Item.Value', 'i.$': '$$.Map.Item.Index' },
        ...writer(),
      }),
      { prefix: '', items: ['a'] },
    );
    expect((r.writes[0].ResultFiles.SUCCEEDED[0] as JsonObject).Input).toBe('{"value":"a","i":0}');
    expect((r.output as { ResultWriterDetails: { Key: string } }).ResultWriterDetails.Key).toMatch(
      /^[0-9a-f-]{36}\/manifest\.json$/,
    );
  });

  it('a Map run failing beyond its threshold is written (PENDING included), then fails', async () => {
    const r = await run(
      machine(
        {
          MaxConcurrency: 1,
          ToleratedFailureCount: 1,
          ...writer(),
          Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Caught' }],
          Next: 'Caught',
        },
        { Caught: { Type: 'Pass', End: true } },
      ),
      { prefix: 'p', items: ['bad', 'a', 'bad', 'b', 'c'] },
    );
    expect(r.status).toBe('SUCCEEDED');
    expect(r.output).toMatchObject({ Error: 'States.ExceedToleratedFailureThreshold' });
    const files = r.writes[0].ResultFiles;
    expect(files.SUCCEEDED).toHaveLength(1);
    expect(files.FAILED).toHaveLength(2);
    expect(files.PENDING.map((p) => [(p as JsonObject).Input, (p as JsonObject).Status])).toEqual([
      ['"b"', 'PENDING'],
      ['"c"', 'PENDING'],
    ]);
    const types = r.events.map((e) => e.type);
    expect(types.indexOf('MapStateFailed')).toBeGreaterThan(types.lastIndexOf('TaskScheduled'));
  });

  it('a failed write fails the Map with the driver error, which its Catch sees', async () => {
    const r = await run(
      machine(
        {
          ...writer(),
          Catch: [{ ErrorEquals: ['States.ResultWriterFailed'], Next: 'Caught' }],
          Next: 'Caught',
        },
        { Caught: { Type: 'Pass', End: true } },
      ),
      { prefix: 'p', items: ['a'] },
      true,
    );
    expect(r.status).toBe('SUCCEEDED');
    expect(r.output).toEqual({ Error: 'States.ResultWriterFailed', Cause: 'the bucket is full' });
  });

  it('Parameters without a Bucket fail with States.ResultWriterFailed before anything is written', async () => {
    const r = await run(machine({ ResultWriter: { Resource: PUT, Parameters: { Prefix: 'p' } } }), {
      items: ['a'],
    });
    expect(r).toMatchObject({ status: 'FAILED', error: 'States.ResultWriterFailed', writes: [] });
    expect(r.cause).toContain('need a Bucket');
  });

  it('WriterConfig alone shapes the result and writes nothing (FLATTEN; failures whole)', async () => {
    const r = await run(
      {
        StartAt: 'Each',
        States: {
          Each: {
            Type: 'Map',
            ToleratedFailureCount: 1,
            ItemProcessor: {
              StartAt: 'Split',
              States: {
                Split: {
                  Type: 'Choice',
                  Choices: [{ Variable: '$', NumericEquals: 0, Next: 'Zero' }],
                  Default: 'Pair',
                },
                Zero: { Type: 'Fail', Error: 'Zero' },
                Pair: {
                  Type: 'Pass',
                  Parameters: { 'pair.$': 'States.Array($, $)' },
                  OutputPath: '$.pair',
                  End: true,
                },
              },
            },
            ResultWriter: { WriterConfig: { Transformation: 'FLATTEN', OutputType: 'JSON' } },
            End: true,
          },
        },
      } as unknown as StateMachineDefinition,
      [1, 0, 2],
    );
    expect(r.writes).toEqual([]);
    const out = r.output as Json[];
    expect(out.filter((x) => typeof x === 'number')).toEqual([1, 1, 2, 2]);
    expect(out.find((x) => typeof x === 'object')).toMatchObject({
      Status: 'FAILED',
      Error: 'Zero',
      Input: '0',
    });
  });

  it('resultWriterObjects: result files first, then a manifest with their sizes', () => {
    const objects = resultWriterObjects({
      Bucket: 'b',
      Prefix: 'pre/',
      MapRunArn: 'arn:aws:states:r:1:mapRun:sm/L:id-1',
      OutputType: 'JSONL',
      ResultFiles: { SUCCEEDED: [1, 'é'], FAILED: [], PENDING: [{ Input: '3' }] },
    });
    expect(objects.map((o) => o.key)).toEqual([
      'pre/id-1/PENDING_0.json',
      'pre/id-1/SUCCEEDED_0.json',
      'pre/id-1/manifest.json',
    ]);
    expect(objects[1].body).toBe('1\n"é"\n');
    expect(JSON.parse(objects[2].body)).toEqual({
      DestinationBucket: 'b',
      MapRunArn: 'arn:aws:states:r:1:mapRun:sm/L:id-1',
      ResultFiles: {
        FAILED: [],
        PENDING: [{ Key: 'pre/id-1/PENDING_0.json', Size: objects[0].body.length }],
        SUCCEEDED: [{ Key: 'pre/id-1/SUCCEEDED_0.json', Size: Buffer.byteLength('1\n"é"\n') }],
      },
    });
  });
});

describe('validation of ItemReader and ResultWriter', () => {
  const problems = (map: JsonObject) =>
    validate(machine(map)).map((p) => `${p.pointer}: ${p.message}`);

  it.each([
    [{ ResultWriter: {} }, '/States/Each/ResultWriter: ResultWriter needs a Resource'],
    [
      { ResultWriter: { Resource: 'arn:aws:states:::s3:getObject', Parameters: { Bucket: 'b' } } },
      "/States/Each/ResultWriter/Resource: a ResultWriter's Resource is arn:aws:states:::s3:putObject",
    ],
    [
      { ResultWriter: { WriterConfig: { Transformation: 'SHRINK' } } },
      '/States/Each/ResultWriter/WriterConfig/Transformation: Transformation must be NONE, COMPACT, FLATTEN',
    ],
    [
      {
        ItemReader: {
          Resource: 'arn:aws:states:::s3:getObject',
          ReaderConfig: { InputType: 'CSV', CSVHeaderLocation: 'GIVEN' },
          Parameters: { Bucket: 'b', Key: 'k' },
        },
      },
      '/States/Each/ItemReader/ReaderConfig/CSVHeaders: CSVHeaderLocation GIVEN needs CSVHeaders',
    ],
    [
      {
        ItemReader: {
          Resource: 'arn:aws:states:::s3:getObject',
          ReaderConfig: { InputType: 'XML' },
          Parameters: { Bucket: 'b', Key: 'k' },
        },
      },
      '/States/Each/ItemReader/ReaderConfig/InputType: InputType must be CSV, JSON, JSONL, PARQUET, MANIFEST',
    ],
  ])('%j is refused at its field', (map, message) => {
    expect(problems(map as JsonObject).some((p) => p.startsWith(message))).toBe(true);
  });

  it('a full ResultWriter and a GIVEN header list are accepted', () => {
    expect(
      problems({
        ItemReader: {
          Resource: 'arn:aws:states:::s3:getObject',
          ReaderConfig: {
            InputType: 'CSV',
            CSVHeaderLocation: 'GIVEN',
            CSVHeaders: ['a'],
            CSVDelimiter: 'TAB',
          },
          Parameters: { Bucket: 'b', Key: 'k' },
        },
        ResultWriter: {
          Resource: PUT,
          Parameters: { Bucket: 'b', Prefix: 'p' },
          WriterConfig: { Transformation: 'COMPACT', OutputType: 'JSONL' },
        },
      }),
    ).toEqual([]);
  });
});
