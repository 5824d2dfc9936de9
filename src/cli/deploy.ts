/**
 * `strand deploy aws`: a pipeline's CloudFormation stack (src/deploy/aws). aws-cdk-lib is loaded
 * only when this command runs, so every other command starts without it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import {
  DEFAULTS,
  DeployOptionError,
  LOG_RETENTION_DAYS,
  checkStackOptions,
  defaultStackName,
  wholeNumber,
  type AwsStackOptions,
} from '../deploy/aws/options.js';
import { EXIT_FAILED, EXIT_OK, InputError } from './errors.js';
import type { Io } from './io.js';
import { loadOrExplain, parseParams } from './pipeline.js';

interface DeployAwsFlags {
  synth?: string;
  stackName?: string;
  region?: string;
  account?: string;
  fargate?: boolean;
  spot?: boolean;
  onDemand?: boolean;
  maxVcpus?: string;
  bucketName?: string;
  logRetentionDays?: string;
  expireDays?: string;
  resultsSecret?: string;
  samples?: string;
  param: string[];
  yes?: boolean;
}

const HELP = `
What the stack holds:
  AWS Batch        compute environments scaling from 0 vCPU (EC2 Spot with
                   on-demand behind it; --on-demand for on-demand only;
                   --fargate for Fargate), one job queue, one job definition per
                   step and substep, its image built from images/<name>/Dockerfile
                   beside the pipeline (an ECR asset)
  Step Functions   the state machine of exactly the ASL \`strand compile\` prints,
                   resource names replaced by ARNs (definition substitutions)
  Lambda           strand-preflight, strand-publish, strand-sync-failure and
                   strand-collect, bundled from Strand's own code
  S3               the store: encrypted, public access blocked, TLS only;
                   outputs under s3://BUCKET/<pipeline>/<sample>/<step>/
  Secrets Manager  the results database's URL (--results-secret, or a secret
                   the stack makes for you to fill)
  CloudWatch Logs  a log group with retention for the jobs, each function and
                   the state machine
  IAM              named actions on named resources; jobs and functions reach
                   only the bucket's <pipeline>/ prefix

--synth DIR writes the cloud assembly (template, asset manifest, Lambda bundle,
Dockerfile contexts) without credentials, network or Docker. Without --synth the
assembly is deployed with \`cdk deploy\` (npm install -g aws-cdk; cdk bootstrap
once per account and region): that needs AWS credentials, a region, and Docker
to build the images. See docs/aws.md.

Examples:
  strand deploy aws examples/microbe-genome/pipeline.yaml --synth cdk.out
  strand deploy aws examples/microbe-genome/pipeline.yaml --region eu-west-1`;

/** The stack options from the flags; a bad value is bad input (exit 2). */
function stackOptions(pipeline: string, flags: DeployAwsFlags): AwsStackOptions {
  if (flags.spot && flags.onDemand)
    throw new InputError('--spot and --on-demand: give one of them (Spot is the default)');
  try {
    return checkStackOptions({
      stackName: flags.stackName ?? defaultStackName(pipeline),
      ...(flags.account === undefined ? {} : { account: flags.account }),
      ...(flags.region === undefined ? {} : { region: flags.region }),
      fargate: Boolean(flags.fargate),
      capacity: flags.onDemand ? 'on-demand' : 'spot',
      maxVcpus:
        flags.maxVcpus === undefined
          ? DEFAULTS.maxVcpus
          : wholeNumber('--max-vcpus', flags.maxVcpus, 1, 100_000),
      ...(flags.bucketName === undefined ? {} : { bucketName: flags.bucketName }),
      logRetentionDays:
        flags.logRetentionDays === undefined
          ? DEFAULTS.logRetentionDays
          : wholeNumber('--log-retention-days', flags.logRetentionDays, 1, 3653),
      ...(flags.expireDays === undefined
        ? {}
        : { expireDays: wholeNumber('--expire-days', flags.expireDays, 1, 36_500) }),
      ...(flags.resultsSecret === undefined ? {} : { resultsSecretArn: flags.resultsSecret }),
    });
  } catch (err) {
    if (err instanceof DeployOptionError) throw new InputError(err.message);
    throw err;
  }
}

/** `strand deploy aws`. */
export function registerDeployCommands(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
): void {
  const deploy = program
    .command('deploy')
    .description('deploy a pipeline to a cloud (aws: a CloudFormation stack)');
  deploy
    .command('aws')
    .summary('write (--synth) or deploy the CloudFormation stack of a pipeline on AWS')
    .description(
      'write (--synth) or deploy the CloudFormation stack that runs a pipeline on AWS: Step ' +
        'Functions, AWS Batch, Lambda, S3, Secrets Manager, CloudWatch Logs. Exit 0 when written or ' +
        'deployed, 1 when the deploy failed, 2 for bad input or a missing prerequisite ' +
        '(credentials, region, the CDK command line, Docker).',
    )
    .argument('<pipeline>', 'the pipeline file (pipeline.yaml)')
    .option(
      '--synth <dir>',
      'only write the cloud assembly (template and assets) to this directory',
    )
    .option(
      '--stack-name <name>',
      'the stack name, also the state machine and job queue name (default strand-<pipeline>)',
    )
    .option(
      '--region <region>',
      'the AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile)',
    )
    .option(
      '--account <id>',
      "the AWS account (default: the credentials'; an account-agnostic template with --synth)",
    )
    .option(
      '--fargate',
      "Fargate compute environments instead of EC2 (sizes rounded up to Fargate's)",
    )
    .option('--spot', 'Spot capacity first, on-demand behind it (the default)')
    .option('--on-demand', 'on-demand capacity only')
    .option(
      '--max-vcpus <n>',
      `the most vCPUs each compute environment runs at once (default ${DEFAULTS.maxVcpus})`,
    )
    .option(
      '--bucket-name <name>',
      'a name for the store bucket (default: chosen by CloudFormation)',
    )
    .option(
      '--log-retention-days <n>',
      `days the log groups keep events (default ${DEFAULTS.logRetentionDays}; one of ${LOG_RETENTION_DAYS.join(', ')})`,
    )
    .option(
      '--expire-days <n>',
      "delete the pipeline's outputs this many days after they are written (default: keep)",
    )
    .option(
      '--results-secret <arn>',
      'a Secrets Manager secret holding the results database URL (default: a new secret to fill)',
    )
    .option(
      '--samples <sheet|ids>',
      'the samples sheet, as for strand compile (its columns become environment variables)',
    )
    .option(
      '--param <name=value>',
      'set a parameter, as for strand compile (repeatable)',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option('-y, --yes', "don't ask before IAM changes (cdk deploy --require-approval never)")
    .addHelpText('after', HELP)
    .action(async (file: string, flags: DeployAwsFlags) => {
      const loaded = loadOrExplain(file, {
        samples: flags.samples,
        params: parseParams(flags.param),
      });
      const options = stackOptions(loaded.spec.name, flags);
      const synth = async (dir: string) => {
        // Loaded here, not at the top: aws-cdk-lib takes a while to load.
        const { synthAws, DeployInputError } = await import('../deploy/aws/synth.js');
        try {
          return await synthAws(loaded, options, dir);
        } catch (err) {
          if (err instanceof DeployInputError) throw new InputError(err.message, err.details);
          throw err;
        }
      };

      if (flags.synth !== undefined) {
        const dir = resolve(flags.synth);
        const info = await synth(dir);
        const shown = (p: string) => {
          const rel = relative(process.cwd(), p);
          return rel === '' ? '.' : rel.startsWith('..') ? p : rel;
        };
        const counts = Object.entries(info.resources).sort(([a], [b]) => a.localeCompare(b));
        const total = counts.reduce((n, [, c]) => n + c, 0);
        io.out(
          `${shown(info.templatePath)}\n` +
            `stack ${info.stackName}: ${total} resources, template ${info.templateBytes} bytes, synthesized in ${(info.milliseconds / 1000).toFixed(1)} s\n` +
            counts.map(([type, n]) => `  ${String(n).padStart(3)}  ${type}\n`).join('') +
            `images built from Dockerfiles (ECR assets, built by cdk deploy): ${info.images.built.join(', ') || 'none'}\n` +
            (info.images.provided.length > 0
              ? `images used as they are: ${info.images.provided.join(', ')}\n`
              : '') +
            `Lambda bundle: ${info.lambdaBytes} bytes\n` +
            `execution input to start from: ${shown(info.inputPath)}\n` +
            `deploy it: cdk deploy --app ${shown(dir)} ${info.stackName}  (or strand deploy aws ${file})\n`,
        );
        setExit(EXIT_OK);
        return;
      }

      const { DeployPrerequisiteError, planDeploy, runDeploy } =
        await import('../deploy/aws/deploy.js');
      const { pipelineImages } = await import('../images/images.js');
      const assembly = mkdtempSync(join(tmpdir(), 'strand-cdk-'));
      try {
        let plan: ReturnType<typeof planDeploy>;
        try {
          plan = planDeploy({
            env: process.env,
            pipeline: file,
            region: options.region,
            stackName: options.stackName,
            assembly,
            buildsImages: pipelineImages(loaded.spec).some((i) => i.dockerfile),
            yes: Boolean(flags.yes),
          });
        } catch (err) {
          if (err instanceof DeployPrerequisiteError)
            throw new InputError(err.message, err.details);
          throw err;
        }
        await synth(assembly);
        io.err(
          `deploying stack ${options.stackName} to ${plan.region} (credentials: ${plan.credentials})\n`,
        );
        const code = await runDeploy(plan, process.env, io);
        if (code !== 0) {
          io.err(`strand: cdk deploy exited ${code}; the stack is as CloudFormation left it\n`);
          setExit(EXIT_FAILED);
          return;
        }
        setExit(EXIT_OK);
      } finally {
        rmSync(assembly, { recursive: true, force: true });
      }
    });
}
