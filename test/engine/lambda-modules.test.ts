/**
 * `strand start --lambda NAME=MODULE`: Lambda functions as local JavaScript modules, called as
 * Lambda calls them; what they throw is the task's error, as Lambda reports it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { strand } from '../pipeline/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'strand-lambda-'));
const file = (name: string, text: string) => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};

const machine = file(
  'check.asl.json',
  JSON.stringify({
    StartAt: 'Check',
    States: {
      Check: {
        Type: 'Task',
        Resource: 'arn:aws:states:::lambda:invoke',
        Parameters: {
          FunctionName: 'arn:aws:lambda:us-east-1:123456789012:function:check-reads',
          'Payload.$': '$',
        },
        OutputPath: '$.Payload',
        Retry: [{ ErrorEquals: ['TooFewReads'], MaxAttempts: 0 }],
        Catch: [{ ErrorEquals: ['TooFewReads'], ResultPath: '$.error', Next: 'Rejected' }],
        End: true,
      },
      Rejected: { Type: 'Pass', End: true },
    },
  }),
);

const handler = file(
  'check.mjs',
  `class TooFewReads extends Error { constructor(m) { super(m); this.name = 'TooFewReads'; } }
export const handler = async (event, context) => {
  if (event.reads < 1000) throw new TooFewReads(event.sample + ' has ' + event.reads + ' reads');
  return { sample: event.sample, ok: true, fn: context.functionName, id: typeof context.awsRequestId };
};
`,
);

describe('strand start --lambda', () => {
  it('calls the module as Lambda would; a thrown error is caught by its name', async () => {
    const home = join(dir, 'home');
    const ok = await strand(
      'start',
      machine,
      '--home',
      home,
      '--lambda',
      `check-reads=${handler}`,
      '--input',
      '{"sample":"S1","reads":5000}',
      '--quiet',
    );
    expect(ok.code, ok.err).toBe(0);
    expect(JSON.parse(ok.out)).toEqual({ sample: 'S1', ok: true, fn: 'check-reads', id: 'string' });
    const few = await strand(
      'start',
      machine,
      '--home',
      home,
      '--lambda',
      `check-reads=${handler}`,
      '--input',
      '{"sample":"S2","reads":10}',
      '--quiet',
    );
    expect(few.code, few.err).toBe(0);
    expect(JSON.parse(few.out).error).toEqual({
      Error: 'TooFewReads',
      Cause: JSON.stringify({ errorMessage: 'S2 has 10 reads', errorType: 'TooFewReads' }),
    });
  });

  it('without it: the task fails naming the function and the flag; bad modules: exit 2', async () => {
    const home = join(dir, 'home-2');
    const none = await strand(
      'start',
      machine,
      '--home',
      home,
      '--input',
      '{"reads":1}',
      '--quiet',
    );
    expect(none.code).toBe(1);
    expect(none.err).toContain('--lambda check-reads=MODULE');
    const empty = file('empty.mjs', 'export const other = 1;\n');
    const bad = await strand('start', machine, '--home', home, '--lambda', `check-reads=${empty}`);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('the module exports no `handler` function');
    const missing = await strand(
      'start',
      machine,
      '--home',
      home,
      '--lambda',
      'check-reads=./nope.mjs',
    );
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/--lambda check-reads=\.\/nope\.mjs: no file .*nope\.mjs/);
  });
});
