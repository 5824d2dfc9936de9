/**
 * `strand deploy aws` on the microbe-genome example: the synthesized CloudFormation template,
 * checked with aws-cdk-lib/assertions (every resource, the embedded ASL against `strand
 * compile`'s, IAM, size), and the command itself. Synth runs offline: no credentials, no
 * network, no Docker (PATH holds none while the CLI synthesizes).
 */
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { genomeExample } from './example.js';
import { loadPipeline } from '../../src/pipeline/load.js';
import { FUNCTIONS } from '../../src/pipeline/contract.js';
import { pipelineImages } from '../../src/images/images.js';
import {
  buildStack,
  executionInput,
  TEMPLATE_LIMITS,
  type BuiltStack,
} from '../../src/deploy/aws/synth.js';
import { jobImageContexts, pipelineFiles } from '../../src/deploy/aws/job-image.js';
import { DEFAULTS, type AwsStackOptions } from '../../src/deploy/aws/options.js';
import { strand } from '../pipeline/cli.js';

const FILE = genomeExample();
const PIPELINE = 'microbe-genome';
const STACK = `strand-${PIPELINE}`;
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:strand/results-AbC123';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Resource = { Type: string; Properties: Record<string, Json> };
interface PolicyDocument {
  Statement: Statement[];
}
interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: Json;
  Condition?: Json;
}

const options = (o: Partial<AwsStackOptions> = {}): AwsStackOptions => ({
  stackName: STACK,
  fargate: false,
  capacity: 'spot',
  maxVcpus: DEFAULTS.maxVcpus,
  logRetentionDays: DEFAULTS.logRetentionDays,
  ...o,
});

interface Synthesized {
  built: BuiltStack;
  template: Template;
  resources: Record<string, Resource>;
  bytes: number;
}

async function synthesize(o: Partial<AwsStackOptions> = {}): Promise<Synthesized> {
  const built = await buildStack(loadPipeline(FILE, {}), options(o));
  try {
    const template = Template.fromStack(built.stack);
    const json = template.toJSON() as { Resources: Record<string, Resource> };
    return {
      built,
      template,
      resources: json.Resources,
      bytes: Buffer.byteLength(JSON.stringify(json, null, 1)),
    };
  } finally {
    built.cleanup();
  }
}

const ofType = (s: Synthesized, type: string): [string, Resource][] =>
  Object.entries(s.resources).filter(([, r]) => r.Type === type);

const actions = (st: Statement): string[] => [st.Action].flat();

/** Every statement of the template's policies (inline, role, bucket), with where it is. */
function statements(s: Synthesized): { at: string; st: Statement }[] {
  const out: { at: string; st: Statement }[] = [];
  for (const [id, r] of Object.entries(s.resources)) {
    const props = r.Properties as { PolicyDocument?: PolicyDocument; Policies?: Json };
    const docs = [
      ...(props.PolicyDocument ? [props.PolicyDocument] : []),
      ...((props.Policies ?? []) as unknown as { PolicyDocument: PolicyDocument }[]).map(
        (p) => p.PolicyDocument,
      ),
    ];
    for (const d of docs) for (const st of d.Statement) out.push({ at: id, st });
  }
  return out;
}

/** The statements of the inline policies attached to role `roleId`. */
function roleStatements(s: Synthesized, roleId: string): Statement[] {
  return ofType(s, 'AWS::IAM::Policy')
    .filter(([, r]) =>
      (r.Properties.Roles as Json[]).some((x) => JSON.stringify(x).includes(roleId)),
    )
    .flatMap(([, r]) => (r.Properties.PolicyDocument as unknown as PolicyDocument).Statement);
}

/** A stand-in ARN for what a `Ref` or `Fn::GetAtt` of a resource gives. */
function fakeArn(value: Json): string {
  const v = value as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
  const id = v.Ref ?? v['Fn::GetAtt']?.[0];
  if (!id) throw new Error(`not a Ref or Fn::GetAtt: ${JSON.stringify(value)}`);
  return `arn:test:${id}`;
}

let spot: Synthesized;
let fargate: Synthesized;
let custom: Synthesized;
let compiledAsl: Json;

beforeAll(async () => {
  spot = await synthesize();
  fargate = await synthesize({ fargate: true });
  custom = await synthesize({
    capacity: 'on-demand',
    maxVcpus: 16,
    resultsSecretArn: SECRET_ARN,
    expireDays: 30,
    logRetentionDays: 90,
    bucketName: 'strand-genomes-test',
    account: '123456789012',
    region: 'eu-west-1',
  });
  const out = mkdtempSync(join(tmpdir(), 'strand-compiled-'));
  const r = await strand('compile', FILE, '-o', out);
  expect(r.code, r.err).toBe(0);
  compiledAsl = JSON.parse(readFileSync(join(out, `${PIPELINE}.asl.json`), 'utf8')) as Json;
}, 180_000);

describe('the stack of microbe-genome', () => {
  it('has Spot and on-demand compute environments from 0 vCPU, Spot first on the queue', () => {
    const envs = ofType(spot, 'AWS::Batch::ComputeEnvironment');
    expect(
      envs.map(([, r]) => (r.Properties.ComputeResources as { Type: string }).Type).sort(),
    ).toEqual(['EC2', 'SPOT']);
    for (const [, r] of envs)
      expect(r.Properties.ComputeResources).toMatchObject({
        MinvCpus: 0,
        MaxvCpus: DEFAULTS.maxVcpus,
        InstanceTypes: ['optimal'],
      });
    const isSpot = ([, r]: [string, Resource]) => JSON.stringify(r).includes('"SPOT"');
    const spotId = envs.find(isSpot)![0];
    const onDemandId = envs.find((e) => !isSpot(e))![0];
    spot.template.resourceCountIs('AWS::Batch::JobQueue', 1);
    spot.template.hasResourceProperties('AWS::Batch::JobQueue', {
      JobQueueName: STACK,
      ComputeEnvironmentOrder: [
        { Order: 1, ComputeEnvironment: { 'Fn::GetAtt': [spotId, 'ComputeEnvironmentArn'] } },
        { Order: 2, ComputeEnvironment: { 'Fn::GetAtt': [onDemandId, 'ComputeEnvironmentArn'] } },
      ],
    });
  });

  it('has on-demand only when asked, and Fargate (Spot and on-demand) when asked', () => {
    const onDemand = ofType(custom, 'AWS::Batch::ComputeEnvironment');
    expect(onDemand).toHaveLength(1);
    expect(onDemand[0][1].Properties.ComputeResources).toMatchObject({
      Type: 'EC2',
      MinvCpus: 0,
      MaxvCpus: 16,
    });
    const types = ofType(fargate, 'AWS::Batch::ComputeEnvironment').map(
      ([, r]) => (r.Properties.ComputeResources as { Type: string }).Type,
    );
    expect(types.sort()).toEqual(['FARGATE', 'FARGATE_SPOT']);
    for (const [, r] of ofType(fargate, 'AWS::Batch::JobDefinition')) {
      expect(r.Properties.PlatformCapabilities).toEqual(['FARGATE']);
      const c = r.Properties.ContainerProperties as Record<string, Json>;
      expect(c.NetworkConfiguration).toEqual({ AssignPublicIp: 'ENABLED' });
      expect(c.ExecutionRoleArn).toBeDefined();
    }
    // qc asks for 2 vCPU and 2 GiB: Fargate's smallest 2-vCPU size has 4 GiB.
    const qc = ofType(fargate, 'AWS::Batch::JobDefinition').find(
      ([, r]) => r.Properties.JobDefinitionName === `${PIPELINE}-qc`,
    )![1];
    expect(
      (qc.Properties.ContainerProperties as Record<string, Json>).ResourceRequirements,
    ).toEqual([
      { Type: 'VCPU', Value: '2' },
      { Type: 'MEMORY', Value: '4096' },
    ]);
  });

  it('has one job definition per step and substep, as compiled, in its image with Strand added (an ECR asset)', () => {
    const compiled = spot.built.compiled.jobDefinitions;
    const defs = ofType(spot, 'AWS::Batch::JobDefinition');
    expect(defs.map(([, r]) => r.Properties.JobDefinitionName).sort()).toEqual(
      compiled.map((d) => d.jobDefinitionName).sort(),
    );
    expect(compiled.map((d) => d.jobDefinitionName)).toContain(`${PIPELINE}-annotate-genes`);
    const store = { 'Fn::Join': ['', ['s3://', { Ref: expect.stringMatching(/^Store/) }]] };
    for (const def of compiled) {
      const [, r] = defs.find(([, x]) => x.Properties.JobDefinitionName === def.jobDefinitionName)!;
      const c = r.Properties.ContainerProperties as Record<string, Json>;
      // The tool's command follows the image's entry point (Strand's stage program) unchanged.
      expect(c.Command).toEqual(def.containerProperties.command);
      // The step's environment as compiled, and what its staging needs beside it.
      const timeout = def.timeout?.attemptDurationSeconds;
      expect(c.Environment).toEqual(
        [
          ...def.containerProperties.environment!.map(({ name, value }) => ({
            Name: name,
            Value: value,
          })),
          { Name: 'STRAND_IMAGE', Value: def.containerProperties.image },
          ...(timeout === undefined
            ? []
            : [{ Name: 'STRAND_STAGE_TIMEOUT', Value: String(timeout) }]),
          { Name: 'STRAND_STORE', Value: store },
        ].sort((a, b) => a.Name.localeCompare(b.Name)),
      );
      // Batch's own timeout leaves the stage-out time to publish after the tool is stopped.
      if (timeout !== undefined)
        expect(r.Properties.Timeout).toEqual({ AttemptDurationSeconds: timeout + 1800 });
      expect(r.Properties.RetryStrategy).toEqual({ Attempts: 1 });
      expect(r.Properties.Tags).toEqual(def.tags);
      expect(c.JobRoleArn).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^JobRole/), 'Arn'] });
      expect(c.LogConfiguration).toMatchObject({ LogDriver: 'awslogs' });
      // Every image, built from a Dockerfile or provided (debian:bookworm-slim), is built again
      // with Strand's stage program added.
      const sub = (c.Image as { 'Fn::Sub': string })['Fn::Sub'];
      expect(sub).toMatch(
        /cdk-hnb659fds-container-assets-\$\{AWS::AccountId\}-\$\{AWS::Region\}:[0-9a-f]{64}$/,
      );
    }
  });

  it("builds each job image from the step's Dockerfile, Strand's runtime added, files beside the pipeline in it", async () => {
    const loaded = loadPipeline(FILE, {});
    const images = pipelineImages(loaded.spec);
    const files = pipelineFiles(Object.values(loaded.spec.params));
    const root = mkdtempSync(join(tmpdir(), 'strand-job-images-test-'));
    const contexts = await jobImageContexts(images, files, root);
    expect([...contexts.keys()].sort()).toEqual(images.map((i) => i.image).sort());
    const summary = readFileSync(join(dirname(FILE), 'summary.awk'));
    for (const dir of contexts.values()) {
      const dockerfile = readFileSync(join(dir, 'Dockerfile'), 'utf8');
      expect(dockerfile).toContain('FROM node:22-bookworm-slim AS strand-runtime');
      expect(dockerfile).toContain('COPY --from=strand-runtime /opt/strand /opt/strand');
      expect(dockerfile.trimEnd().split('\n').at(-1)).toBe(
        'ENTRYPOINT ["/opt/strand/lib/ld-linux-x86-64.so.2","--library-path","/opt/strand/lib","/opt/strand/bin/node","/opt/strand/stage.mjs","job","run","--"]',
      );
      expect(statSync(join(dir, '.strand', 'stage.mjs')).size).toBeGreaterThan(10_000);
      expect(statSync(join(dir, '.strand', 'strand-launcher')).mode & 0o111).not.toBe(0);
      const shas = readdirSync(join(dir, '.strand', 'files'));
      expect(shas).toHaveLength(1);
      expect(readFileSync(join(dir, '.strand', 'files', shas[0], 'summary.awk'))).toEqual(summary);
    }
    // A tool's own Dockerfile is kept whole, between Strand's runtime stage and its additions;
    // a provided image is the FROM of its job image.
    const own = readFileSync(join(dirname(FILE), 'images', 'fastp', 'Dockerfile'), 'utf8');
    const fastp = [...contexts].find(([image]) => image.includes('fastp'))![1];
    expect(readFileSync(join(fastp, 'Dockerfile'), 'utf8')).toContain(own.trimEnd());
    const provided = images.find((i) => !i.dockerfile)!;
    expect(readFileSync(join(contexts.get(provided.image)!, 'Dockerfile'), 'utf8')).toContain(
      `\nFROM ${provided.image}\n`,
    );
    // The execution input names the file where the images have it.
    const input = executionInput(loaded, 's3://b', 'e');
    expect(input.params.SUMMARY_AWK).toBe(files.get(loaded.spec.params.SUMMARY_AWK)!.inImage);
    expect(input.params.SUMMARY_AWK).toMatch(/^\/opt\/strand\/files\/[0-9a-f]{32}\/summary\.awk$/);
  });

  it('embeds exactly the ASL `strand compile` prints, ARNs substituted for the names', () => {
    const [[, machine]] = ofType(spot, 'AWS::StepFunctions::StateMachine');
    const subs = machine.Properties.DefinitionSubstitutions as Record<string, Json>;
    const values = Object.fromEntries(Object.entries(subs).map(([k, v]) => [k, fakeArn(v)]));
    const deployed = JSON.parse(
      (machine.Properties.DefinitionString as string).replace(
        /\$\{([A-Za-z0-9_]+)\}/g,
        (_m, k: string) => {
          expect(values[k], `placeholder ${k}`).toBeDefined();
          return values[k];
        },
      ),
    ) as Json;

    // The names the compiled ASL uses, mapped to the deployed resources independently of the
    // stack's own placeholders: by queue, by JobDefinitionName, by the function's STRAND_FUNCTION.
    const [[queueId]] = ofType(spot, 'AWS::Batch::JobQueue');
    const defArn = new Map(
      ofType(spot, 'AWS::Batch::JobDefinition').map(([id, r]) => [
        r.Properties.JobDefinitionName as string,
        `arn:test:${id}`,
      ]),
    );
    const fnArn = new Map(
      ofType(spot, 'AWS::Lambda::Function').map(([id, r]) => [
        (r.Properties.Environment as { Variables: Record<string, string> }).Variables
          .STRAND_FUNCTION,
        `arn:test:${id}`,
      ]),
    );
    let replaced = 0;
    const withArns = (node: Json): Json => {
      if (Array.isArray(node)) return node.map(withArns);
      if (node === null || typeof node !== 'object') return node;
      const out = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, withArns(v)]));
      const p = out.Parameters as Record<string, Json> | undefined;
      if (out.Type === 'Task' && p && typeof p.JobDefinition === 'string') {
        expect(p.JobQueue).toBe('default');
        out.Parameters = {
          ...p,
          JobQueue: `arn:test:${queueId}`,
          JobDefinition: defArn.get(p.JobDefinition)!,
        };
        replaced++;
      } else if (out.Type === 'Task' && p && typeof p.FunctionName === 'string') {
        out.Parameters = { ...p, FunctionName: fnArn.get(p.FunctionName)! };
        replaced++;
      }
      return out;
    };
    const expected = withArns(compiledAsl);
    expect(deployed).toEqual(expected);
    // 9 jobs, each with its Batch task, publish and sync-failure; preflight, the samples'
    // ledger opened and closed, a look before each of the two aggregate steps, and the collect.
    expect(replaced).toBe(9 * 3 + 6);
    spot.template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: STACK,
      StateMachineType: 'STANDARD',
      LoggingConfiguration: { Level: 'ERROR' },
    });
  });

  it("has Strand's four functions, bundled from its code, with the store and the results secret", () => {
    const fns = ofType(spot, 'AWS::Lambda::Function');
    expect(fns).toHaveLength(4);
    const byName = new Map(
      fns.map(([, r]) => [
        (r.Properties.Environment as { Variables: Record<string, Json> }).Variables.STRAND_FUNCTION,
        r,
      ]),
    );
    expect([...byName.keys()].sort()).toEqual(Object.values(FUNCTIONS).sort());
    const [[bucketId]] = ofType(spot, 'AWS::S3::Bucket');
    const [[secretId]] = ofType(spot, 'AWS::SecretsManager::Secret');
    const codeKeys = new Set<string>();
    for (const [fn, r] of byName) {
      expect(r.Properties).toMatchObject({
        Runtime: 'nodejs22.x',
        Handler: `index.${{ 'strand-preflight': 'preflight', 'strand-publish': 'publish', 'strand-sync-failure': 'syncFailure', 'strand-collect': 'collect' }[fn as string]}`,
        Environment: {
          Variables: {
            STRAND_STORE: { 'Fn::Join': ['', ['s3://', { Ref: bucketId }]] },
            STRAND_RESULTS_SECRET: { Ref: secretId },
          },
        },
      });
      expect(r.Properties.LoggingConfig).toEqual({ LogGroup: { Ref: expect.any(String) } });
      codeKeys.add(JSON.stringify((r.Properties.Code as { S3Key: Json }).S3Key));
    }
    // One bundle for the four.
    expect(codeKeys.size).toBe(1);
  });

  it('has the store bucket encrypted, closed to the public, TLS only, and expiring when asked', () => {
    spot.template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          { ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } },
        ],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
    });
    spot.template.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain' });
    const tls = statements(spot).find(({ st }) => st.Effect === 'Deny');
    expect(tls?.st.Condition).toEqual({ Bool: { 'aws:SecureTransport': 'false' } });
    custom.template.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: 'strand-genomes-test',
      LifecycleConfiguration: {
        Rules: [
          {
            Id: 'abort-incomplete-uploads',
            AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
            Status: 'Enabled',
          },
          { Id: 'expire-outputs', Prefix: `${PIPELINE}/`, ExpirationInDays: 30, Status: 'Enabled' },
        ],
      },
    });
  });

  it('reads the results connection from a secret: made to be filled, or the one given', () => {
    spot.template.resourceCountIs('AWS::SecretsManager::Secret', 1);
    const [[, secret]] = ofType(spot, 'AWS::SecretsManager::Secret');
    // No fixed name: a deleted secret's name stays taken for its recovery window.
    expect(secret.Properties.Name).toBeUndefined();
    expect(secret.Properties.Description).toContain(`Strand pipeline ${PIPELINE}`);
    custom.template.resourceCountIs('AWS::SecretsManager::Secret', 0);
    for (const [, r] of ofType(custom, 'AWS::Lambda::Function'))
      expect(
        (r.Properties.Environment as { Variables: Record<string, Json> }).Variables
          .STRAND_RESULTS_SECRET,
      ).toBe(SECRET_ARN);
    const reads = statements(custom).filter(({ st }) =>
      actions(st).includes('secretsmanager:GetSecretValue'),
    );
    expect(reads).toHaveLength(4);
    for (const { st } of reads) expect(st.Resource).toBe(SECRET_ARN);
  });

  it('keeps every log in a group with retention: jobs, each function, the state machine', () => {
    const groups = ofType(spot, 'AWS::Logs::LogGroup').map(([, r]) => r.Properties);
    expect(groups.map((g) => g.LogGroupName).sort()).toEqual(
      [
        `/aws/vendedlogs/states/${STACK}`,
        `/strand/${STACK}/jobs`,
        ...Object.values(FUNCTIONS).map((f) => `/strand/${STACK}/functions/${f}`),
      ].sort(),
    );
    for (const g of groups) expect(g.RetentionInDays).toBe(30);
    for (const [, r] of ofType(custom, 'AWS::Logs::LogGroup'))
      expect(r.Properties.RetentionInDays).toBe(90);
  });

  it('grants named actions only, and the jobs nothing of the bucket beyond the pipeline prefix', () => {
    for (const s of [spot, fargate, custom]) {
      const allows = statements(s).filter(({ st }) => st.Effect === 'Allow');
      expect(allows.length).toBeGreaterThan(10);
      for (const { at, st } of allows)
        for (const a of actions(st)) expect(a, `${at}: ${a}`).toMatch(/^[a-z0-9-]+:[A-Za-z]+$/);
      // "*" as a resource only where IAM takes nothing else for the action.
      const anyResource = new Set([
        'ecr:GetAuthorizationToken',
        'batch:DescribeJobs',
        'logs:CreateLogDelivery',
        'logs:GetLogDelivery',
        'logs:UpdateLogDelivery',
        'logs:DeleteLogDelivery',
        'logs:ListLogDeliveries',
        'logs:PutResourcePolicy',
        'logs:DescribeResourcePolicies',
        'logs:DescribeLogGroups',
      ]);
      for (const { at, st } of allows)
        if (JSON.stringify(st.Resource).includes('"*"'))
          for (const a of actions(st)) expect(anyResource.has(a), `${at}: ${a} on "*"`).toBe(true);
    }
    // The only wildcard action is the bucket policy's Deny of every request without TLS.
    const denies = statements(spot).filter(({ st }) => st.Effect !== 'Allow');
    expect(denies.map(({ st }) => st.Action)).toEqual(['s3:*']);

    const [[bucketId]] = ofType(spot, 'AWS::S3::Bucket');
    const [[jobRoleId]] = ofType(spot, 'AWS::IAM::Role').filter(([id]) => id.startsWith('JobRole'));
    const jobStatements = roleStatements(spot, jobRoleId);
    // The store's prefix, and its own record in AWS Batch (its tags name the execution).
    expect(jobStatements.length).toBe(3);
    expect(jobStatements.filter((st) => actions(st).includes('batch:DescribeJobs'))).toEqual([
      { Effect: 'Allow', Action: 'batch:DescribeJobs', Resource: '*' },
    ]);
    for (const st of jobStatements) {
      if (actions(st).includes('batch:DescribeJobs')) continue;
      for (const a of actions(st)) expect(a).toMatch(/^s3:/);
      if (actions(st).includes('s3:ListBucket')) {
        expect(st.Resource).toEqual({ 'Fn::GetAtt': [bucketId, 'Arn'] });
        expect(st.Condition).toEqual({
          StringLike: { 's3:prefix': [`${PIPELINE}/`, `${PIPELINE}/*`] },
        });
      } else {
        expect(st.Resource).toEqual({
          'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, `/${PIPELINE}/*`]],
        });
      }
    }
    // Nothing else in the stack names the bucket's objects outside the prefix.
    for (const { at, st } of statements(spot)) {
      if (st.Effect !== 'Allow') continue;
      const text = JSON.stringify(st.Resource);
      if (text.includes(bucketId) && text.includes('/'))
        expect(text, at).toContain(`/${PIPELINE}/*`);
    }
  });

  it('lets strand-publish and strand-sync-failure look finished jobs up in AWS Batch', () => {
    const roles = ofType(spot, 'AWS::IAM::Role').filter(([id]) => /FunctionRole/.test(id));
    expect(roles).toHaveLength(4);
    for (const [id] of roles)
      expect(
        roleStatements(spot, id).filter((st) => actions(st).includes('batch:DescribeJobs')),
        id,
      ).toEqual([{ Effect: 'Allow', Action: 'batch:DescribeJobs', Resource: '*' }]);
  });

  it('gives the state machine what its tasks call, by ARN', () => {
    const [[machineRoleId]] = ofType(spot, 'AWS::IAM::Role').filter(([id]) =>
      id.startsWith('StateMachineRole'),
    );
    const st = roleStatements(spot, machineRoleId);
    const submit = st.find((s) => actions(s).includes('batch:SubmitJob'))!;
    const resources = submit.Resource as Json[];
    expect(resources).toHaveLength(1 + 9);
    const invoke = st.find((s) => actions(s).includes('lambda:InvokeFunction'))!;
    expect(invoke.Resource).toHaveLength(4);
    // continue_on_failure: each sample is a child execution of the same machine (Distributed Map).
    expect(st.some((s) => actions(s).includes('states:StartExecution'))).toBe(true);
  });

  it(`fits CloudFormation's limits: over ${TEMPLATE_LIMITS.direct} bytes, so uploaded through S3 (at most ${TEMPLATE_LIMITS.s3})`, () => {
    for (const s of [spot, fargate, custom]) {
      expect(s.bytes).toBeLessThanOrEqual(TEMPLATE_LIMITS.s3);
      // Too large to pass in the request: `cdk deploy` uploads it to the bootstrap bucket.
      expect(s.bytes).toBeGreaterThan(TEMPLATE_LIMITS.direct);
    }
    // CloudFormation allows 500 resources a stack.
    expect(Object.keys(spot.resources).length).toBeLessThan(500);
  });
});

describe('strand deploy aws', () => {
  const dirs: string[] = [];
  const tmp = (prefix: string) => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
  afterAll(() => vi.unstubAllEnvs());

  /** An environment with no AWS credentials anywhere, and no docker or cdk on PATH. */
  function noAws(): string {
    const home = tmp('strand-home-');
    vi.stubEnv('HOME', home);
    vi.stubEnv('PATH', tmp('strand-path-'));
    for (const name of [
      'AWS_ACCESS_KEY_ID',
      'AWS_SECRET_ACCESS_KEY',
      'AWS_SESSION_TOKEN',
      'AWS_PROFILE',
      'AWS_REGION',
      'AWS_DEFAULT_REGION',
      'AWS_CONFIG_FILE',
      'AWS_SHARED_CREDENTIALS_FILE',
      'AWS_WEB_IDENTITY_TOKEN_FILE',
      'AWS_ROLE_ARN',
      'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
      'AWS_CONTAINER_CREDENTIALS_FULL_URI',
      'CDK_DOCKER',
    ])
      vi.stubEnv(name, '');
    return home;
  }

  it('--synth writes the cloud assembly offline: template, asset manifest, Dockerfile contexts, Lambda bundle', async () => {
    noAws();
    vi.stubEnv('CDK_DOCKER', '/nonexistent/docker');
    const out = join(tmp('strand-synth-'), 'cdk.out');
    const r = await strand('deploy', 'aws', FILE, '--synth', out);
    vi.unstubAllEnvs();
    expect(r.code, r.err).toBe(0);
    expect(r.out.split('\n')[0]).toBe(join(out, `${STACK}.template.json`));
    expect(r.out).toMatch(new RegExp(`stack ${STACK}: \\d+ resources, template \\d+ bytes`));
    expect(r.out).toMatch(/ 9 {2}AWS::Batch::JobDefinition/);
    expect(r.out).toMatch(/ 4 {2}AWS::Lambda::Function/);
    const template = JSON.parse(readFileSync(join(out, `${STACK}.template.json`), 'utf8')) as {
      Resources: Record<string, Resource>;
    };
    expect(
      Object.values(template.Resources).some((x) => x.Type === 'AWS::StepFunctions::StateMachine'),
    ).toBe(true);

    // Images are recorded, not built: each job image's context (its Dockerfile's folder, or
    // none for a provided image, with Strand's runtime) copied into the assembly.
    const assets = JSON.parse(readFileSync(join(out, `${STACK}.assets.json`), 'utf8')) as {
      dockerImages: Record<
        string,
        { displayName: string; source: { directory: string; platform: string } }
      >;
      files: Record<string, { source: { path: string; packaging: string } }>;
    };
    const built = pipelineImages(loadPipeline(FILE, {}).spec);
    expect(
      Object.values(assets.dockerImages)
        .map((d) => d.displayName)
        .sort(),
    ).toEqual(built.map((i) => i.image).sort());
    for (const img of built) {
      const [hash, entry] = Object.entries(assets.dockerImages).find(
        ([, d]) => d.displayName === img.image,
      )!;
      expect(entry.source.platform).toBe('linux/amd64');
      const dockerfile = readFileSync(join(out, entry.source.directory, 'Dockerfile'), 'utf8');
      expect(dockerfile).toContain(
        img.dockerfile ? readFileSync(img.dockerfile, 'utf8').trimEnd() : `FROM ${img.image}`,
      );
      expect(dockerfile).toContain('ENTRYPOINT ["/opt/strand/lib/ld-linux-x86-64.so.2"');
      expect(JSON.stringify(template)).toContain(`:${hash}`);
    }
    const zips = Object.values(assets.files).filter((f) => f.source.packaging === 'zip');
    expect(zips).toHaveLength(1);
    expect(readFileSync(join(out, zips[0].source.path, 'index.mjs'), 'utf8')).toContain(
      'strand-preflight',
    );

    const input = JSON.parse(readFileSync(join(out, `${STACK}.input.json`), 'utf8')) as {
      run: { pipeline: string; store: string };
      samples: { id: string }[];
    };
    expect(input.run).toMatchObject({ pipeline: PIPELINE, store: 's3://BUCKET' });
    expect(input.samples.length).toBeGreaterThan(0);
  });

  it('without --synth and without credentials: exit 2, naming where it looked', async () => {
    const home = noAws();
    const r = await strand('deploy', 'aws', FILE);
    vi.unstubAllEnvs();
    expect(r.code).toBe(2);
    expect(r.err).toContain('strand: no AWS credentials found; nothing was deployed');
    expect(r.err).toContain('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (unset)');
    expect(r.err).toContain(`${join(home, '.aws', 'credentials')} (no such file)`);
    expect(r.err).toContain(`strand deploy aws ${FILE} --synth cdk.out`);
  });

  it('without a region, or without the CDK command line: exit 2, saying so', async () => {
    noAws();
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDEXAMPLE');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'example');
    const noRegion = await strand('deploy', 'aws', FILE);
    const noCdk = await strand('deploy', 'aws', FILE, '--region', 'eu-west-1');
    vi.unstubAllEnvs();
    expect(noRegion.code).toBe(2);
    expect(noRegion.err).toContain('no AWS region given');
    expect(noCdk.code).toBe(2);
    expect(noCdk.err).toContain('needs the AWS CDK command line');
    expect(noCdk.err).toContain('npm install -g aws-cdk');
  });

  it('hands the assembly to `cdk deploy` and exits with how it went', async () => {
    noAws();
    const bin = tmp('strand-bin-');
    const calls = join(bin, 'calls');
    // Stand-ins for the CDK command line and Docker: they record how they were called.
    writeFileSync(
      join(bin, 'cdk'),
      `#!/bin/sh\nprintf '%s\\n' "$*" >> ${calls}\ntest -f "$3/manifest.json" && test -f "$3/$4.template.json" || exit 9\necho "deployed $4"\nexit \${FAKE_CDK_EXIT:-0}\n`,
    );
    writeFileSync(join(bin, 'docker'), '#!/bin/sh\nexit 0\n');
    for (const f of ['cdk', 'docker']) chmodSync(join(bin, f), 0o755);
    mkdirSync(join(bin, 'empty'), { recursive: true });
    vi.stubEnv('PATH', `${bin}:/usr/bin:/bin`);
    vi.stubEnv('AWS_PROFILE', 'lab');
    vi.stubEnv('AWS_CONFIG_FILE', join(bin, 'config'));
    writeFileSync(
      join(bin, 'config'),
      '[profile lab]\nsso_session = lab\nsso_account_id = 123456789012\nregion = eu-west-1\n',
    );
    const ok = await strand('deploy', 'aws', FILE, '--yes');
    vi.stubEnv('FAKE_CDK_EXIT', '1');
    const failed = await strand('deploy', 'aws', FILE);
    vi.unstubAllEnvs();
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toContain(`deployed ${STACK}`);
    expect(ok.err).toContain('to eu-west-1 (credentials: profile lab (sso_session)');
    const lines = readFileSync(calls, 'utf8').trim().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^deploy --app \\S+ ${STACK} --require-approval never$`));
    expect(lines[1]).toMatch(new RegExp(`^deploy --app \\S+ ${STACK}$`));
    expect(failed.code).toBe(1);
    expect(failed.err).toContain('cdk deploy exited 1');
  });

  it('refuses a bad pipeline and bad options with exit 2, before building anything', async () => {
    const dir = tmp('strand-bad-');
    writeFileSync(
      join(dir, 'pipeline.yaml'),
      'name: bad\nsteps:\n  a: { command: [true], vcpus: lots }\n',
    );
    const bad = await strand(
      'deploy',
      'aws',
      join(dir, 'pipeline.yaml'),
      '--synth',
      join(dir, 'out'),
    );
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/pipeline\.yaml: \d+ problems?; nothing was run/);
    for (const [args, message] of [
      [
        ['--log-retention-days', '10'],
        '--log-retention-days 10: CloudWatch Logs keeps events for one of 1, 3, 5',
      ],
      [['--spot', '--on-demand'], '--spot and --on-demand: give one of them'],
      [['--stack-name', '9lives'], '--stack-name 9lives: a stack name starts with a letter'],
      [
        ['--bucket-name', 'Upper_Case'],
        '--bucket-name Upper_Case: a bucket name is 3-63 lowercase',
      ],
      [['--max-vcpus', '0'], '--max-vcpus 0: give a whole number from 1'],
      [
        ['--results-secret', 'my-secret'],
        '--results-secret my-secret: give a Secrets Manager secret ARN',
      ],
    ] as const) {
      const r = await strand('deploy', 'aws', FILE, '--synth', join(dir, 'out'), ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toContain(message);
    }
  });

  it('refuses, with --fargate, a job no Fargate size holds', async () => {
    const dir = tmp('strand-fargate-');
    writeFileSync(
      join(dir, 'pipeline.yaml'),
      'name: big\nsamples: [{ id: S1 }]\nsteps:\n  huge:\n    image: debian:bookworm-slim\n    command: [true]\n    vcpus: 32\n',
    );
    const r = await strand(
      'deploy',
      'aws',
      join(dir, 'pipeline.yaml'),
      '--fargate',
      '--synth',
      join(dir, 'out'),
    );
    expect(r.code, r.out).toBe(2);
    expect(r.err).toMatch(/pipeline\.yaml:\d+:\d+ huge: 32 vCPU and 1024 MiB fit no Fargate size/);
  });

  it('refuses a pipeline whose jobs read secrets on this machine', async () => {
    const dir = tmp('strand-secret-');
    writeFileSync(
      join(dir, 'pipeline.yaml'),
      'name: withsecret\nsamples: [{ id: S1 }]\nsteps:\n  a:\n    image: debian:bookworm-slim\n    command: [true]\n    secrets: { TOKEN: env:MY_TOKEN }\n',
    );
    const r = await strand(
      'deploy',
      'aws',
      join(dir, 'pipeline.yaml'),
      '--synth',
      join(dir, 'out'),
    );
    expect(r.code, r.out).toBe(2);
    expect(r.err).toContain('1 problem for AWS; nothing was written');
    expect(r.err).toMatch(
      /pipeline\.yaml:\d+:\d+ a: secret TOKEN is read from env: on this machine/,
    );
  });
});
