/**
 * `strand deploy aws PIPELINE` without `--synth`: what must be on this machine before anything
 * is built — credentials and a region (credentials.ts), the AWS CDK command line, a container
 * builder for the job images — then the cloud assembly synth.ts writes, handed to `cdk deploy`,
 * which builds and pushes the images, uploads the Lambda bundle and the template to the
 * bootstrap bucket and deploys the stack through CloudFormation.
 *
 * Untested against AWS: no account is reachable where Strand is built. The checks before the
 * deploy are tested; the deploy itself is `cdk deploy`'s (docs/aws.md).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { findCredentials } from './credentials.js';

type Env = Record<string, string | undefined>;

/** Something this machine lacks for a deploy; `details` say what was looked at and how to mend it. */
export class DeployPrerequisiteError extends Error {
  readonly code = 'DEPLOY_PREREQUISITE';
  constructor(
    message: string,
    readonly details: string[] = [],
  ) {
    super(message);
    this.name = 'DeployPrerequisiteError';
  }
}

/** The first executable called `name` on `PATH`. */
export function onPath(name: string, env: Env): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** How to run the AWS CDK command line: the `aws-cdk` package beside Strand, else `cdk` on PATH. */
export function findCdk(env: Env): string[] | undefined {
  try {
    const pkg = createRequire(import.meta.url).resolve('aws-cdk/package.json');
    const bin = join(dirname(pkg), 'bin', 'cdk');
    if (existsSync(bin)) return [process.execPath, bin];
  } catch {
    // not installed beside Strand
  }
  const cdk = onPath('cdk', env);
  return cdk ? [cdk] : undefined;
}

export interface DeployPlan {
  /** The command that deploys the assembly, program first. */
  command: string[];
  region: string;
  credentials: string;
}

/**
 * What the deploy will run, once everything it needs is here; throws DeployPrerequisiteError
 * naming the first thing missing (credentials, region, the CDK command line, a container builder).
 */
export function planDeploy(options: {
  env: Env;
  /** The pipeline file, for hints. */
  pipeline: string;
  region?: string;
  stackName: string;
  assembly: string;
  /** Whether images have to be built (a step with a Dockerfile). */
  buildsImages: boolean;
  /** Skip the CDK's question before IAM changes (`--require-approval never`). */
  yes: boolean;
}): DeployPlan {
  const { env } = options;
  const creds = findCredentials(env, options.region);
  const synthHint = `to write the template without deploying: strand deploy aws ${options.pipeline} --synth cdk.out`;
  if (!creds.found)
    throw new DeployPrerequisiteError('no AWS credentials found; nothing was deployed', [
      ...creds.looked.map((l) => `looked at ${l}`),
      'give some with `aws configure`, `aws sso login --profile NAME` and AWS_PROFILE=NAME, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
      synthHint,
    ]);
  if (!creds.region)
    throw new DeployPrerequisiteError('no AWS region given; nothing was deployed', [
      `credentials: ${creds.source}`,
      'give one with --region, AWS_REGION, or region = … in the profile',
    ]);
  const cdk = findCdk(env);
  if (!cdk)
    throw new DeployPrerequisiteError(
      'deploying needs the AWS CDK command line, which is not installed; nothing was deployed',
      [
        'install it with: npm install -g aws-cdk',
        'then once per account and region: cdk bootstrap aws://ACCOUNT/REGION',
        synthHint,
      ],
    );
  const builder = env.CDK_DOCKER && env.CDK_DOCKER !== '' ? env.CDK_DOCKER : 'docker';
  if (options.buildsImages && !onPath(builder, env))
    throw new DeployPrerequisiteError(
      `building the job images needs ${builder}, which is not on PATH; nothing was deployed`,
      [
        'install Docker, or set CDK_DOCKER to another builder the CDK supports (podman, finch)',
        synthHint,
      ],
    );
  return {
    command: [
      ...cdk,
      'deploy',
      '--app',
      options.assembly,
      options.stackName,
      ...(options.yes ? ['--require-approval', 'never'] : []),
    ],
    region: creds.region,
    credentials: creds.source,
  };
}

/** Runs the deploy; resolves to its exit code. Standard input stays the terminal's, for the CDK's questions. */
export function runDeploy(
  plan: DeployPlan,
  env: Env,
  io: { out: (t: string) => void; err: (t: string) => void },
): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(plan.command[0], plan.command.slice(1), {
      stdio: ['inherit', 'pipe', 'pipe'],
      env: { ...env, AWS_REGION: plan.region },
    });
    child.stdout.on('data', (d: Buffer) => io.out(d.toString()));
    child.stderr.on('data', (d: Buffer) => io.err(d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
