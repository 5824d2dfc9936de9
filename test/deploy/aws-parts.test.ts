/**
 * The pieces of `strand deploy aws` that need no stack: placeholders in the compiled ASL,
 * where credentials are looked for, Fargate sizes, the results secret's forms, and the Lambda
 * bundle itself — loaded in Node and called as Lambda calls it, its secret from a stand-in
 * Secrets Manager endpoint on loopback.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { genomeExample } from './example.js';
import type { StateMachineDefinition } from '../../src/asl/types.js';
import {
  DefinitionPlaceholderError,
  substitute,
  withPlaceholders,
} from '../../src/deploy/aws/definition.js';
import { findCredentials, parseIni } from '../../src/deploy/aws/credentials.js';
import { fargateSize } from '../../src/deploy/aws/stack.js';
import { resultsUrlOf } from '../../src/deploy/aws/lambda-handler.js';
import { bundleLambda } from '../../src/deploy/aws/bundle.js';
import { JOB_ENTRYPOINT, jobDockerfile } from '../../src/deploy/aws/job-image.js';
import { loadPipeline } from '../../src/pipeline/load.js';
import { compileForAws } from '../../src/deploy/aws/synth.js';

const task = (Parameters: Record<string, unknown>, Resource: string) => ({
  Type: 'Task',
  Resource,
  Parameters,
  End: true,
});
const machine = (states: Record<string, unknown>) =>
  ({ StartAt: Object.keys(states)[0], States: states }) as unknown as StateMachineDefinition;
const BATCH = 'arn:aws:states:::batch:submitJob.sync';
const LAMBDA = 'arn:aws:states:::lambda:invoke';

describe('placeholders in the compiled definition', () => {
  it('replaces the queue, job definitions and functions, and nothing else', () => {
    const def = machine({
      qc: task(
        { JobName: 'p-qc', JobQueue: 'default', JobDefinition: 'p-qc', 'x.$': '$.y' },
        BATCH,
      ),
      pub: task({ FunctionName: 'strand-publish', Payload: { a: 1 } }, LAMBDA),
    });
    const p = withPlaceholders(def, 'default', ['p-qc']);
    const arns = {
      [p.jobQueue]: 'arn:q',
      [p.jobDefinitions.get('p-qc')!]: 'arn:jd',
      [p.functions.get('strand-publish')!]: 'arn:fn',
      ...Object.fromEntries([...p.functions.values()].map((k) => [k, `arn:${k}`])),
    };
    arns[p.functions.get('strand-publish')!] = 'arn:fn';
    expect(JSON.parse(substitute(p.text, arns))).toEqual(
      machine({
        qc: task(
          { JobName: 'p-qc', JobQueue: 'arn:q', JobDefinition: 'arn:jd', 'x.$': '$.y' },
          BATCH,
        ),
        pub: task({ FunctionName: 'arn:fn', Payload: { a: 1 } }, LAMBDA),
      }),
    );
  });

  it('gives names that spell alike keys of their own', () => {
    const p = withPlaceholders(machine({ s: { Type: 'Succeed' } }), 'default', [
      'a-b',
      'a.b',
      'ab',
    ]);
    expect([...p.jobDefinitions.values()]).toEqual([
      'JobDefinitionAB',
      'JobDefinitionAB2',
      'JobDefinitionAb',
    ]);
  });

  it.each([
    [
      'a ${ in the text',
      machine({ s: { Type: 'Pass', Result: 'cost ${HOME}', End: true } }),
      'holds the text "${HOME}',
    ],
    [
      'a queue of another name',
      machine({ s: task({ JobQueue: 'gpu', JobDefinition: 'p-qc' }, BATCH) }),
      '/States/s: JobQueue "gpu" is not the stack\'s queue "default"',
    ],
    [
      'a job definition not in the pipeline',
      machine({ s: task({ JobQueue: 'default', JobDefinition: 'other' }, BATCH) }),
      'JobDefinition "other" is none of the pipeline\'s (p-qc)',
    ],
    [
      "a function not Strand's",
      machine({ s: task({ FunctionName: 'my-fn' }, LAMBDA) }),
      'FunctionName "my-fn" is none of Strand\'s functions',
    ],
  ])('refuses %s', (_what, def, message) => {
    expect(() => withPlaceholders(def, 'default', ['p-qc'])).toThrow(DefinitionPlaceholderError);
    expect(() => withPlaceholders(def, 'default', ['p-qc'])).toThrow(message);
  });

  it('leaves no name of the microbe-genome example in place, and substitutes back to it', () => {
    const compiled = compileForAws(loadPipeline(genomeExample(), {}));
    const names = compiled.jobDefinitions.map((d) => d.jobDefinitionName);
    const p = withPlaceholders(compiled.definition, 'default', names);
    // Substituting each placeholder by the name it stood for gives the compiled text back.
    const back: Record<string, string> = { [p.jobQueue]: 'default' };
    for (const [name, key] of [...p.jobDefinitions, ...p.functions]) back[key] = name;
    expect(JSON.parse(substitute(p.text, back))).toEqual(compiled.definition);
    expect(p.text).not.toMatch(/"(JobQueue|JobDefinition|FunctionName)":"(?!\$\{)/);
    expect(() => substitute(p.text, {})).toThrow('no value for the placeholder');
  });
});

describe('where credentials and the region are looked for', () => {
  const dir = mkdtempSync(join(tmpdir(), 'strand-aws-files-'));
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const base = { HOME: join(dir, 'nohome') };

  it.each([
    [
      'keys in the environment',
      { AWS_ACCESS_KEY_ID: 'A', AWS_SECRET_ACCESS_KEY: 'S' },
      'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
    ],
    ['a key without its secret', { AWS_ACCESS_KEY_ID: 'A' }, undefined],
    [
      'web identity',
      { AWS_WEB_IDENTITY_TOKEN_FILE: '/t', AWS_ROLE_ARN: 'arn:r' },
      'AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN',
    ],
    [
      'a container endpoint',
      { AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '/v2/c' },
      'the container credentials endpoint',
    ],
    [
      'the default profile in the credentials file',
      {
        AWS_SHARED_CREDENTIALS_FILE: file(
          'c1',
          '[default]\naws_access_key_id = A\naws_secret_access_key = S\n',
        ),
      },
      'profile default (aws_access_key_id)',
    ],
    [
      'an SSO profile in the config file',
      {
        AWS_PROFILE: 'lab',
        AWS_CONFIG_FILE: file(
          'k1',
          '[profile lab]\nsso_session = s\n[sso-session s]\nsso_start_url = https://x\n',
        ),
      },
      'profile lab (sso_session)',
    ],
    [
      'an instance-role profile',
      {
        AWS_PROFILE: 'ec2',
        AWS_CONFIG_FILE: file(
          'k2',
          '[profile ec2]\nrole_arn = arn:r\ncredential_source = Ec2InstanceMetadata\n',
        ),
      },
      'profile ec2 (role_arn)',
    ],
    [
      'a profile with a region only',
      { AWS_CONFIG_FILE: file('k3', '[default]\nregion = eu-west-1\n') },
      undefined,
    ],
    ['empty values', { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' }, undefined],
  ])('%s', (_what, env, source) => {
    const found = findCredentials({ ...base, ...env });
    if (source === undefined) expect(found.found).toBe(false);
    else expect(found).toMatchObject({ found: true, source: expect.stringContaining(source) });
  });

  it('says what it looked at when it finds nothing', () => {
    const found = findCredentials({
      ...base,
      AWS_PROFILE: 'nope',
      AWS_CONFIG_FILE: file('k4', '[profile lab]\nregion = us-east-1\n'),
    });
    expect(found.found).toBe(false);
    if (found.found) return;
    expect(found.looked).toContain('AWS_PROFILE (nope)');
    expect(found.looked).toContain(`${join(dir, 'k4')} (no profile nope)`);
    expect(found.looked).toContain(`${join(base.HOME, '.aws', 'credentials')} (no such file)`);
  });

  it('takes the region from --region, AWS_REGION, AWS_DEFAULT_REGION, then the profile', () => {
    const config = file('k5', '[default]\nregion = ap-south-1\n');
    const env = { ...base, AWS_CONFIG_FILE: config };
    expect(findCredentials(env).region).toBe('ap-south-1');
    expect(findCredentials({ ...env, AWS_DEFAULT_REGION: 'us-west-2' }).region).toBe('us-west-2');
    expect(
      findCredentials({ ...env, AWS_DEFAULT_REGION: 'us-west-2', AWS_REGION: 'eu-west-1' }).region,
    ).toBe('eu-west-1');
    expect(findCredentials({ ...env, AWS_REGION: 'eu-west-1' }, 'sa-east-1')).toMatchObject({
      region: 'sa-east-1',
      regionSource: '--region',
    });
  });

  it('reads INI as the AWS files write it', () => {
    const ini = parseIni('# c\n[default]\n region = x \n; c\n[profile a b]\nk=v=w\n');
    expect(ini.get('default')?.get('region')).toBe('x');
    expect(ini.get('profile a b')?.get('k')).toBe('v=w');
  });
});

describe('Fargate sizes', () => {
  it.each([
    [1, 1024, 1, 2048],
    [1, 2048, 1, 2048],
    [2, 2048, 2, 4096],
    [0.5, 512, 0.5, 1024],
    [4, 40_000, 8, 40_960],
    [16, 122_880, 16, 122_880],
  ])('%s vCPU %s MiB → %s vCPU %s MiB', (vcpus, memory, wantVcpus, wantMemory) => {
    expect(fargateSize(vcpus, memory)).toEqual({ vcpus: wantVcpus, memoryMiB: wantMemory });
  });

  it('names a size no Fargate task has', () => {
    expect(() => fargateSize(32, 1024)).toThrow('32 vCPU and 1024 MiB fit no Fargate size');
  });
});

describe('the results secret', () => {
  const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:r-AbC123';
  it.each([
    ['a URL', 'postgres://u:p@db:5432/strand\n', 'postgres://u:p@db:5432/strand'],
    [
      'an RDS secret',
      JSON.stringify({
        engine: 'postgres',
        host: 'db.x',
        port: 5432,
        username: 'u@x',
        password: 'p/w',
        dbname: 'strand',
      }),
      'postgres://u%40x:p%2Fw@db.x:5432/strand',
    ],
  ])('%s', (_what, text, url) => {
    expect(resultsUrlOf(text, arn)).toBe(url);
  });

  it('names the secret, never its value, when it holds neither', () => {
    const err = (() => {
      try {
        resultsUrlOf('hunter2-generated', arn);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err?.message).toContain(`secret ${arn} holds neither a results URL`);
    expect(err?.message).toContain('aws secretsmanager put-secret-value');
    expect(err?.message).not.toContain('hunter2');
    expect(() =>
      resultsUrlOf(JSON.stringify({ engine: 'mysql', host: 'h', username: 'u' }), arn),
    ).toThrow('engine "mysql" is not a results database');
  });
});

describe('the Lambda bundle', () => {
  let server: Server;
  let bundle: { dir: string; bytes: number };
  const requests: { target: string; authorization: string; body: string }[] = [];
  const secretArn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:results-AbC123';
  let work: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'strand-lambda-test-'));
    // Secrets Manager's JSON protocol: the operation in X-Amz-Target, the answer as JSON.
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        requests.push({
          target: String(req.headers['x-amz-target']),
          authorization: String(req.headers.authorization),
          body,
        });
        res.setHeader('content-type', 'application/x-amz-json-1.1');
        res.end(
          JSON.stringify({
            ARN: secretArn,
            Name: 'results',
            SecretString: `sqlite://${join(work, 'results.db')}`,
          }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    bundle = await bundleLambda();
    vi.stubEnv('AWS_ENDPOINT_URL_SECRETS_MANAGER', `http://127.0.0.1:${port}`);
    vi.stubEnv('AWS_REGION', 'us-east-1');
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDEXAMPLE');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'example');
    vi.stubEnv('AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED', 'true');
    vi.stubEnv('STRAND_STORE', pathToFileURL(join(work, 'store')).href);
    vi.stubEnv('STRAND_RESULTS_SECRET', secretArn);
  }, 60_000);

  afterAll(() => {
    vi.unstubAllEnvs();
    server.close();
    rmSync(bundle.dir, { recursive: true, force: true });
  });

  it('is one ES module exporting the four handlers, which run as Lambda calls them', async () => {
    expect(readFileSync(join(bundle.dir, 'package.json'), 'utf8')).toContain('"module"');
    const m = (await import(pathToFileURL(join(bundle.dir, 'index.mjs')).href)) as Record<
      string,
      (event: unknown) => Promise<unknown>
    >;
    for (const name of ['preflight', 'publish', 'syncFailure', 'collect'])
      expect(typeof m[name]).toBe('function');
    const store = pathToFileURL(join(work, 'store')).href;
    const run = { pipeline: 'p', execution: 'e1', store, from: '', to: '', cache: 'false' };
    const out = await m.preflight({
      run,
      samples: [{ id: 'S1', values: { READS: 's3://b/r.fq' } }],
      params: { MIN: '5' },
      steps: [{ name: 'qc', scope: 'sample', needs: [], jobs: [] }],
    });
    expect(out).toEqual({
      run: { ...run, aggregates: false },
      items: [{ MIN: '5', READS: 's3://b/r.fq', SAMPLE: 'S1' }],
      params: { MIN: '5' },
    });
    // The secret was read once, by a signed request, for this secret.
    expect(requests).toHaveLength(1);
    expect(requests[0].target).toBe('secretsmanager.GetSecretValue');
    expect(requests[0].authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\//);
    expect(JSON.parse(requests[0].body)).toEqual({ SecretId: secretArn });

    // A store other than the stack's is refused, naming both.
    await expect(
      m.publish({
        run: { ...run, store: 's3://another-bucket' },
        plan: { name: 'qc', outputs: {}, results: [] },
        sample: 'S1',
        job: { JobId: 'j' },
      }),
    ).rejects.toThrow(
      `the execution's store is s3://another-bucket, but this stack's functions work on ${store} only`,
    );
  });
});

describe("a job image's Dockerfile", () => {
  it("keeps the tool's parser directives first and its own stages whole, Strand added last", () => {
    const text = jobDockerfile({
      image: 'strand/x',
      dockerfile:
        '# syntax=docker/dockerfile:1\nFROM debian:bookworm-slim AS build\nRUN true\nFROM build\nENTRYPOINT ["x"]\n',
    });
    const lines = text.split('\n');
    expect(lines[0]).toBe('# syntax=docker/dockerfile:1');
    const at = (s: string) => lines.findIndex((l) => l.startsWith(s));
    expect(at('FROM node:22-bookworm-slim AS strand-runtime')).toBeLessThan(
      at('FROM debian:bookworm-slim AS build'),
    );
    // The tool's ENTRYPOINT stays in its stage; Strand's, after it, is the image's.
    expect(at('ENTRYPOINT ["x"]')).toBeLessThan(at('COPY --from=strand-runtime /opt/strand'));
    expect(lines.filter((l) => l.startsWith('ENTRYPOINT')).at(-1)).toBe(
      `ENTRYPOINT ${JSON.stringify(JOB_ENTRYPOINT)}`,
    );
    expect(jobDockerfile({ image: 'debian:bookworm-slim' })).toContain(
      '\nFROM debian:bookworm-slim\n',
    );
  });
});
