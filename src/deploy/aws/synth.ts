/**
 * `cdk synth` for one pipeline: the pipeline compiled as `strand compile` compiles it, the
 * Lambda code bundled, the stack built (stack.ts) and written as a cloud assembly — the
 * CloudFormation template, the asset manifest (the Lambda bundle and each Dockerfile's build
 * context, recorded, not built) and the assets themselves. Needs no credentials, network or
 * Docker: images are built and pushed by `cdk deploy`, from the manifest.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { compilePipeline, type CompiledPipeline } from '../../pipeline/compile.js';
import type { RunSettings } from '../../pipeline/contract.js';
import type { LoadedPipeline } from '../../pipeline/load.js';
import { pipelineImages } from '../../images/images.js';
import { bundleLambda } from './bundle.js';
import { inImage, jobImageContexts, pipelineFiles, type PipelineFile } from './job-image.js';
import { StrandPipelineStack, fargateSize } from './stack.js';
import { checkStackOptions, type AwsStackOptions } from './options.js';

/** The queue name `strand compile` submits to unless told otherwise. */
export const COMPILED_QUEUE = 'default';

/** Something in the pipeline AWS cannot run as written; the message names the step. */
export class DeployInputError extends Error {
  readonly code = 'DEPLOY_INPUT';
  constructor(
    message: string,
    readonly details: string[] = [],
  ) {
    super(message);
    this.name = 'DeployInputError';
  }
}

/** The pipeline compiled exactly as `strand compile PIPELINE` compiles it. */
export function compileForAws(loaded: LoadedPipeline): CompiledPipeline {
  return compilePipeline(loaded.spec, {
    jobQueue: COMPILED_QUEUE,
    columns: Object.keys(loaded.samples[0]?.values ?? {}),
  });
}

/**
 * What on AWS cannot be as the pipeline says: jobs without an image, secrets read locally, sizes
 * Fargate does not run.
 */
function awsProblems(loaded: LoadedPipeline, options: AwsStackOptions): string[] {
  const problems: string[] = [];
  for (const step of loaded.spec.steps)
    for (const job of step.jobs) {
      const at = `${job.at.file}:${job.at.line}:${job.at.column}`;
      if (job.image.trim() === '')
        problems.push(`${at} ${job.name}: no image; an AWS Batch job runs in one`);
      if (options.fargate)
        try {
          fargateSize(job.vcpus, job.memoryMiB);
        } catch (err) {
          problems.push(`${at} ${job.name}: ${(err as Error).message}`);
        }
      for (const s of job.secrets)
        if (!s.valueFrom.startsWith('arn:'))
          problems.push(
            `${s.at.file}:${s.at.line}:${s.at.column} ${job.name}: secret ${s.name} is read from ${s.valueFrom.split(':')[0]}: on this machine; on AWS give a Secrets Manager or SSM Parameter Store ARN`,
          );
    }
  return problems;
}

export interface BuiltStack {
  app: App;
  stack: StrandPipelineStack;
  compiled: CompiledPipeline;
  lambdaBytes: number;
  /** Removes the temporary Lambda bundle (once the assembly holds its copy, or for a test). */
  cleanup: () => void;
}

/** Builds the app and the stack of a loaded pipeline (not yet synthesized). */
export async function buildStack(
  loaded: LoadedPipeline,
  options: AwsStackOptions,
  outdir?: string,
): Promise<BuiltStack> {
  checkStackOptions(options);
  const problems = awsProblems(loaded, options);
  if (problems.length > 0)
    throw new DeployInputError(
      `${loaded.spec.file}: ${problems.length} problem${problems.length === 1 ? '' : 's'} for AWS; nothing was written`,
      problems,
    );
  const compiled = compileForAws(loaded);
  const files = filesOf(loaded, compiled);
  const bundle = await bundleLambda();
  const contexts = mkdtempSync(join(tmpdir(), 'strand-job-images-'));
  const cleanup = () => {
    rmSync(bundle.dir, { recursive: true, force: true });
    rmSync(contexts, { recursive: true, force: true });
  };
  try {
    const images = pipelineImages(loaded.spec);
    const jobImages = await jobImageContexts(images, files, contexts);
    const app = new App({ ...(outdir ? { outdir } : {}) });
    const stack = new StrandPipelineStack(app, options.stackName, {
      stackName: options.stackName,
      description: `Strand pipeline ${loaded.spec.name}: Step Functions, AWS Batch, Lambda, S3`,
      ...(options.account || options.region
        ? { env: { account: options.account, region: options.region } }
        : {}),
      spec: loaded.spec,
      compiled,
      jobQueue: COMPILED_QUEUE,
      images,
      jobImages,
      files,
      lambdaCode: bundle.dir,
      options,
    });
    return { app, stack, compiled, lambdaBytes: bundle.bytes, cleanup };
  } catch (err) {
    cleanup();
    throw err;
  }
}

/**
 * The files of this machine a deployed job reads: named by a parameter, or by a literal value of
 * a job definition (an environment value, a command item). Each goes into the job images.
 */
function filesOf(loaded: LoadedPipeline, compiled: CompiledPipeline): Map<string, PipelineFile> {
  return pipelineFiles([
    ...Object.values(loaded.spec.params),
    ...compiled.jobDefinitions.flatMap((d) => [
      ...(d.containerProperties.environment ?? []).map((kv) => kv.value),
      ...(d.containerProperties.command ?? []),
    ]),
  ]);
}

/** What a synth wrote. */
export interface SynthInfo {
  stackName: string;
  /** The cloud assembly directory. */
  dir: string;
  templatePath: string;
  templateBytes: number;
  /** Resources by CloudFormation type. */
  resources: Record<string, number>;
  /** Images built from a Dockerfile (ECR assets), and images used as they are. */
  images: { built: string[]; provided: string[] };
  lambdaBytes: number;
  /** An execution input to start from (see executionInput). */
  inputPath: string;
  milliseconds: number;
}

/** CloudFormation's limits on a template's size. */
export const TEMPLATE_LIMITS = {
  /** Given in the request itself (TemplateBody). */
  direct: 51_200,
  /** Uploaded to S3 first and named by URL (TemplateURL), as `cdk deploy` does past the first. */
  s3: 1_048_576,
} as const;

/**
 * The input of an execution of the deployed state machine, as `strand run` gives it: the
 * samples sheet's rows, the parameters, the run's settings. `store` and `execution` are to be
 * filled in (the bucket's name is known once the stack exists; the execution's name must be
 * the name it is started with).
 */
export function executionInput(
  loaded: LoadedPipeline,
  store: string,
  execution: string,
): {
  run: RunSettings;
  samples: { id: string; values: Record<string, string> }[];
  params: Record<string, string>;
} {
  const files = pipelineFiles(Object.values(loaded.spec.params));
  return {
    run: {
      pipeline: loaded.spec.name,
      execution,
      store,
      from: '',
      to: '',
      skip: {},
      cache: 'false',
    },
    samples: loaded.samples.map((s) => ({ id: s.id, values: s.values })),
    // A parameter naming a file beside the pipeline names its copy in the job images.
    params: Object.fromEntries(
      Object.entries(loaded.spec.params).map(([k, v]) => [k, inImage(v, files)]),
    ),
  };
}

/** Synthesizes the stack of a loaded pipeline into `dir` (a cloud assembly, as `cdk synth -o`). */
export async function synthAws(
  loaded: LoadedPipeline,
  options: AwsStackOptions,
  dir: string,
): Promise<SynthInfo> {
  const started = Date.now();
  const built = await buildStack(loaded, options, dir);
  let templatePath: string;
  try {
    const assembly = built.app.synth();
    templatePath = assembly.getStackByName(options.stackName).templateFullPath;
  } finally {
    built.cleanup();
  }
  const template = JSON.parse(readFileSync(templatePath, 'utf8')) as {
    Resources: Record<string, { Type: string }>;
  };
  const resources: Record<string, number> = {};
  for (const r of Object.values(template.Resources))
    resources[r.Type] = (resources[r.Type] ?? 0) + 1;
  const images = pipelineImages(loaded.spec);
  const inputPath = join(dir, `${options.stackName}.input.json`);
  const store = options.bucketName ? `s3://${options.bucketName}` : 's3://BUCKET';
  writeFileSync(
    inputPath,
    JSON.stringify(executionInput(loaded, store, 'EXECUTION'), null, 2) + '\n',
  );
  return {
    stackName: options.stackName,
    dir,
    templatePath,
    templateBytes: statSync(templatePath).size,
    resources,
    images: {
      built: images.filter((i) => i.dockerfile).map((i) => i.image),
      provided: images.filter((i) => !i.dockerfile).map((i) => i.image),
    },
    lambdaBytes: built.lambdaBytes,
    inputPath,
    milliseconds: Date.now() - started,
  };
}
