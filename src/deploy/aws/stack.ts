/**
 * The CloudFormation stack of one pipeline on AWS (aws-cdk-lib): what Strand emulates on one
 * machine, made real —
 *
 * - AWS Batch: compute environments that scale to zero (EC2 Spot with on-demand behind it, or
 *   on-demand only; Fargate when asked), one job queue, and one job definition per step and
 *   substep, as `strand compile` writes it, in the step's image with Strand's stage program
 *   added (job-image.ts, an ECR asset), which stages the job's inputs in from the store and its
 *   outputs out to `<pipeline>/<sample>/<step>/` where it runs;
 * - Step Functions: the state machine of exactly the compiled ASL, resource names replaced by
 *   the deployed ARNs through definition substitutions (definition.ts);
 * - Lambda: Strand's four pipeline functions, bundled from Strand's own code (bundle.ts);
 * - S3: the store (encrypted, public access blocked, TLS only), outputs under `<pipeline>/`;
 * - Secrets Manager: the results database's connection;
 * - CloudWatch Logs: a log group with retention for the jobs, the functions and the state machine;
 * - IAM: one role per kind of caller, each allowed named actions on named resources only; the
 *   jobs and functions reach the bucket's `<pipeline>/` prefix and nothing else of it.
 */
import {
  ArnFormat,
  CfnOutput,
  Duration,
  RemovalPolicy,
  Stack,
  Tags,
  type StackProps,
  aws_batch as batch,
  aws_ec2 as ec2,
  aws_ecr_assets as ecrAssets,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_logs as logs,
  aws_s3 as s3,
  aws_secretsmanager as secretsmanager,
  aws_stepfunctions as sfn,
} from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { CompiledPipeline } from '../../pipeline/compile.js';
import { FUNCTIONS, TAG } from '../../pipeline/contract.js';
import type { PipelineSpec } from '../../pipeline/model.js';
import type { PipelineImage } from '../../images/images.js';
import type { RegisterJobDefinitionRequest } from '../../batch/types.js';
import { HANDLERS } from './bundle.js';
import { withPlaceholders } from './definition.js';
import { deployedContainer, type PipelineFile } from './job-image.js';
import type { AwsStackOptions } from './options.js';
import { STAGE_ALLOWANCE_SECONDS } from '../../executors/aws-batch/job-definition.js';

export interface StrandStackProps extends StackProps {
  spec: PipelineSpec;
  compiled: CompiledPipeline;
  /** The job queue name the compiled definition submits to. */
  jobQueue: string;
  /** The images the jobs use (each becomes a job image: job-image.ts). */
  images: PipelineImage[];
  /** The build context of each image's job image, by image reference (jobImageContexts). */
  jobImages: Map<string, string>;
  /** Files of this machine the jobs read, by the path the pipeline names, and their place in the images. */
  files: Map<string, PipelineFile>;
  /** A directory holding the bundled Lambda code (bundle.ts). */
  lambdaCode: string;
  options: AwsStackOptions;
}

/** Each Fargate vCPU size and the memory sizes (MiB) it takes, as AWS Batch lists them. */
const FARGATE_SIZES: [number, number[]][] = [
  [0.25, [512, 1024, 2048]],
  [0.5, [1024, 2048, 3072, 4096]],
  [1, range(2048, 8192, 1024)],
  [2, range(4096, 16384, 1024)],
  [4, range(8192, 30720, 1024)],
  [8, range(16384, 61440, 4096)],
  [16, range(32768, 122880, 8192)],
];

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let n = from; n <= to; n += step) out.push(n);
  return out;
}

/**
 * The smallest Fargate size holding `vcpus` and `memoryMiB`: Fargate runs only its listed
 * combinations, so a job gets at least what it asked for, rounded up to one of them.
 */
export function fargateSize(
  vcpus: number,
  memoryMiB: number,
): { vcpus: number; memoryMiB: number } {
  for (const [cpu, memories] of FARGATE_SIZES) {
    if (cpu < vcpus) continue;
    const memory = memories.find((m) => m >= memoryMiB);
    if (memory !== undefined) return { vcpus: cpu, memoryMiB: memory };
  }
  throw new Error(
    `${vcpus} vCPU and ${memoryMiB} MiB fit no Fargate size (at most 16 vCPU and 120 GiB); deploy without --fargate`,
  );
}

/** What a job definition's resources say (VCPU and MEMORY). */
function resourcesOf(def: RegisterJobDefinitionRequest): { vcpus: number; memoryMiB: number } {
  const get = (type: string) =>
    Number(def.containerProperties.resourceRequirements?.find((r) => r.type === type)?.value);
  return { vcpus: get('VCPU'), memoryMiB: get('MEMORY') };
}

/** A logical id part from a name (`annotate.genes` → `AnnotateGenes`). */
function idOf(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter((w) => w !== '')
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');
}

/** The stack of one pipeline; see the module comment. */
export class StrandPipelineStack extends Stack {
  readonly stateMachine: sfn.CfnStateMachine;
  readonly bucket: s3.Bucket;
  readonly jobQueue: batch.JobQueue;
  readonly jobRole: iam.Role;

  constructor(scope: Construct, id: string, props: StrandStackProps) {
    super(scope, id, { ...props, analyticsReporting: false });
    const { spec, compiled, options } = props;
    const pipelinePrefix = `${spec.name}/`;
    const name = options.stackName;
    Tags.of(this).add(TAG.pipeline, spec.name);

    // ---- the store ----
    this.bucket = new s3.Bucket(this, 'Store', {
      ...(options.bucketName ? { bucketName: options.bucketName } : {}),
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      // Outputs are the pipeline's results: deleting the stack leaves them.
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
        ...(options.expireDays === undefined
          ? []
          : [
              {
                id: 'expire-outputs',
                prefix: pipelinePrefix,
                expiration: Duration.days(options.expireDays),
              },
            ]),
      ],
    });
    const storeUrl = `s3://${this.bucket.bucketName}`;
    const prefixObjects = this.bucket.arnForObjects(`${pipelinePrefix}*`);
    /** Read and write under the pipeline's prefix only (sweeping half-written outputs deletes). */
    const prefixAccess = (): iam.PolicyStatement[] => [
      new iam.PolicyStatement({
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
        resources: [prefixObjects],
      }),
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [pipelinePrefix, `${pipelinePrefix}*`] } },
      }),
    ];

    // ---- the results database's connection ----
    const resultsSecret = options.resultsSecretArn
      ? secretsmanager.Secret.fromSecretAttributes(this, 'ResultsSecret', {
          // A complete ARN ends in the six characters Secrets Manager adds to the name.
          ...(/-[A-Za-z0-9]{6}$/.test(options.resultsSecretArn)
            ? { secretCompleteArn: options.resultsSecretArn }
            : { secretPartialArn: options.resultsSecretArn }),
        })
      : // No fixed name: a deleted secret's name stays taken for its recovery window, which
        // would stop the stack from being made again.
        new secretsmanager.Secret(this, 'ResultsSecret', {
          description: `The results database of Strand pipeline ${spec.name}: a postgres:// URL or an RDS-style JSON secret. Put it with aws secretsmanager put-secret-value.`,
        });

    // ---- logs ----
    const retention = options.logRetentionDays as logs.RetentionDays;
    const logGroup = (id: string, logGroupName: string) =>
      new logs.LogGroup(this, id, {
        logGroupName,
        retention,
        // Named groups left behind would stop the same stack from being made again.
        removalPolicy: RemovalPolicy.DESTROY,
      });
    const jobLogs = logGroup('JobLogs', `/strand/${name}/jobs`);
    const machineLogs = logGroup('StateMachineLogs', `/aws/vendedlogs/states/${name}`);

    // ---- Batch: network, compute environments, queue ----
    // Public subnets and no NAT gateway: instances reach ECR and S3 directly, and an idle stack
    // costs nothing; the S3 gateway endpoint keeps store traffic inside AWS's network.
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC }],
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
      restrictDefaultSecurityGroup: false,
    });
    const subnets = { subnetType: ec2.SubnetType.PUBLIC };
    const spot = options.capacity === 'spot';
    const environments: batch.IManagedComputeEnvironment[] = [];
    if (options.fargate) {
      if (spot)
        environments.push(
          new batch.FargateComputeEnvironment(this, 'FargateSpotCompute', {
            vpc,
            vpcSubnets: subnets,
            spot: true,
            maxvCpus: options.maxVcpus,
          }),
        );
      environments.push(
        new batch.FargateComputeEnvironment(this, 'FargateCompute', {
          vpc,
          vpcSubnets: subnets,
          maxvCpus: options.maxVcpus,
        }),
      );
    } else {
      const instanceRole = new iam.Role(this, 'InstanceRole', {
        assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
        managedPolicies: [
          // AWS's policy for the ECS agent on Batch instances (register, poll, pull, logs).
          iam.ManagedPolicy.fromAwsManagedPolicyName(
            'service-role/AmazonEC2ContainerServiceforEC2Role',
          ),
        ],
      });
      const ec2Compute = (id: string, isSpot: boolean) =>
        new batch.ManagedEc2EcsComputeEnvironment(this, id, {
          vpc,
          vpcSubnets: subnets,
          spot: isSpot,
          minvCpus: 0,
          maxvCpus: options.maxVcpus,
          instanceRole,
          useOptimalInstanceClasses: true,
          ...(isSpot
            ? { allocationStrategy: batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED }
            : {}),
        });
      if (spot) environments.push(ec2Compute('SpotCompute', true));
      environments.push(ec2Compute('OnDemandCompute', false));
    }
    this.jobQueue = new batch.JobQueue(this, 'JobQueue', {
      jobQueueName: name,
      // Spot first; a job goes to on-demand when the Spot environment is at its maximum.
      computeEnvironments: environments.map((computeEnvironment, i) => ({
        computeEnvironment,
        order: i + 1,
      })),
    });

    // ---- job roles and definitions ----
    this.jobRole = new iam.Role(this, 'JobRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: `Strand ${spec.name} jobs: the store's ${pipelinePrefix} prefix only`,
    });
    for (const s of prefixAccess()) this.jobRole.addToPolicy(s);
    const executionRole = new iam.Role(this, 'JobExecutionRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: `Strand ${spec.name}: pull the job images, write the job logs, read the job secrets`,
    });
    jobLogs.grantWrite(executionRole);

    // A job's own staging reads its tags (the execution, the store) from its AWS Batch record.
    this.jobRole.addToPolicy(
      new iam.PolicyStatement({ actions: ['batch:DescribeJobs'], resources: ['*'] }),
    );

    const imageUri = new Map<string, string>();
    for (const img of props.images) {
      const directory = props.jobImages.get(img.image);
      if (directory === undefined) continue;
      const asset = new ecrAssets.DockerImageAsset(this, `Image${idOf(img.image)}`, {
        directory,
        platform: ecrAssets.Platform.LINUX_AMD64,
        displayName: img.image,
      });
      asset.repository.grantPull(executionRole);
      imageUri.set(img.image, asset.imageUri);
    }

    const secretArns = new Set(
      compiled.jobDefinitions.flatMap((d) =>
        (d.containerProperties.secrets ?? []).map((s) => s.valueFrom),
      ),
    );
    const secretsManagerArns = [...secretArns].filter((a) => a.includes(':secretsmanager:'));
    const ssmArns = [...secretArns].filter((a) => a.includes(':ssm:'));
    if (secretsManagerArns.length > 0)
      executionRole.addToPolicy(
        new iam.PolicyStatement({
          actions: ['secretsmanager:GetSecretValue'],
          resources: secretsManagerArns,
        }),
      );
    if (ssmArns.length > 0)
      executionRole.addToPolicy(
        new iam.PolicyStatement({ actions: ['ssm:GetParameters'], resources: ssmArns }),
      );

    const jobDefinitions = new Map<string, batch.CfnJobDefinition>();
    for (const def of compiled.jobDefinitions) {
      const c = def.containerProperties;
      const image = c.image ?? '';
      const asked = resourcesOf(def);
      const size = options.fargate ? fargateSize(asked.vcpus, asked.memoryMiB) : undefined;
      const resourceRequirements = size
        ? [
            { type: 'VCPU', value: String(size.vcpus) },
            { type: 'MEMORY', value: String(size.memoryMiB) },
          ]
        : c.resourceRequirements;
      const deployed = deployedContainer(def, storeUrl, props.files);
      const timeout = deployed.timeout;
      const resource = new batch.CfnJobDefinition(
        this,
        `JobDefinition${idOf(def.jobDefinitionName.slice(spec.name.length))}`,
        {
          jobDefinitionName: def.jobDefinitionName,
          type: def.type,
          platformCapabilities: [options.fargate ? 'FARGATE' : 'EC2'],
          propagateTags: true,
          ...(def.parameters ? { parameters: def.parameters } : {}),
          ...(def.retryStrategy ? { retryStrategy: def.retryStrategy } : {}),
          ...(timeout === undefined
            ? {}
            : { timeout: { attemptDurationSeconds: timeout + STAGE_ALLOWANCE_SECONDS } }),
          ...(def.tags ? { tags: def.tags } : {}),
          containerProperties: {
            image: imageUri.get(image) ?? image,
            // The image's entry point is Strand's stage program; this is the tool's command.
            command: deployed.command,
            environment: deployed.environment,
            ...(c.secrets ? { secrets: c.secrets } : {}),
            resourceRequirements,
            jobRoleArn: this.jobRole.roleArn,
            executionRoleArn: executionRole.roleArn,
            logConfiguration: {
              logDriver: 'awslogs',
              options: { 'awslogs-group': jobLogs.logGroupName, 'awslogs-stream-prefix': 'job' },
            },
            ...(options.fargate
              ? {
                  // Public subnets without NAT: the task needs its own address to pull its image.
                  networkConfiguration: { assignPublicIp: 'ENABLED' },
                  fargatePlatformConfiguration: { platformVersion: 'LATEST' },
                }
              : {}),
          },
        },
      );
      jobDefinitions.set(def.jobDefinitionName, resource);
    }

    // ---- Strand's functions ----
    const code = lambda.Code.fromAsset(props.lambdaCode);
    const functions = new Map<string, lambda.Function>();
    for (const fn of Object.values(FUNCTIONS)) {
      const id = idOf(fn.replace(/^strand-/, ''));
      const group = logGroup(`${id}FunctionLogs`, `/strand/${name}/functions/${fn}`);
      const role = new iam.Role(this, `${id}FunctionRole`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `Strand ${spec.name} ${fn}: its log group, the store's ${pipelinePrefix} prefix, the results secret`,
      });
      group.grantWrite(role);
      for (const s of prefixAccess()) role.addToPolicy(s);
      resultsSecret.grantRead(role);
      // strand-publish and strand-sync-failure look the finished job up; DescribeJobs names no
      // resource type, so IAM takes only "*".
      role.addToPolicy(
        new iam.PolicyStatement({ actions: ['batch:DescribeJobs'], resources: ['*'] }),
      );
      const f = new lambda.Function(this, `${id}Function`, {
        description: `Strand ${fn} for pipeline ${spec.name}`,
        runtime: lambda.Runtime.NODEJS_22_X,
        architecture: lambda.Architecture.X86_64,
        code,
        handler: HANDLERS[fn],
        role,
        memorySize: 512,
        timeout: Duration.minutes(5),
        logGroup: group,
        environment: {
          STRAND_FUNCTION: fn,
          STRAND_STORE: storeUrl,
          STRAND_RESULTS_SECRET: resultsSecret.secretArn,
        },
      });
      functions.set(fn, f);
    }

    // ---- the state machine ----
    const placeholders = withPlaceholders(compiled.definition, props.jobQueue, [
      ...jobDefinitions.keys(),
    ]);
    const substitutions: Record<string, string> = {
      [placeholders.jobQueue]: this.jobQueue.jobQueueArn,
    };
    for (const [jobDefinition, key] of placeholders.jobDefinitions)
      substitutions[key] = jobDefinitions.get(jobDefinition)!.ref;
    for (const [fn, key] of placeholders.functions)
      substitutions[key] = functions.get(fn)!.functionArn;

    const machineRole = new iam.Role(this, 'StateMachineRole', {
      assumedBy: new iam.ServicePrincipal('states.amazonaws.com'),
      description: `Strand ${spec.name}: submit its jobs, invoke its functions, write its log`,
    });
    machineRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['batch:SubmitJob'],
        resources: [this.jobQueue.jobQueueArn, ...[...jobDefinitions.values()].map((d) => d.ref)],
      }),
    );
    // Jobs are submitted with tags (strand:step, strand:sample…), which needs TagResource on them.
    const jobs = this.formatArn({ service: 'batch', resource: 'job', resourceName: '*' });
    machineRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['batch:TagResource', 'batch:TerminateJob'],
        resources: [jobs],
      }),
    );
    // DescribeJobs names no resource type: IAM takes only "*" as its resource.
    machineRole.addToPolicy(
      new iam.PolicyStatement({ actions: ['batch:DescribeJobs'], resources: ['*'] }),
    );
    // The `.sync` integration waits for a job through this EventBridge rule of Step Functions.
    machineRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
        resources: [
          this.formatArn({
            service: 'events',
            resource: 'rule',
            resourceName: 'StepFunctionsGetEventsForBatchJobsRule',
          }),
        ],
      }),
    );
    machineRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['lambda:InvokeFunction'],
        resources: [...functions.values()].map((f) => f.functionArn),
      }),
    );
    if (spec.continueOnFailure) {
      // A Distributed Map runs each sample as a child execution of this same state machine.
      const machineArn = this.formatArn({
        service: 'states',
        resource: 'stateMachine',
        resourceName: name,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      });
      const executions = this.formatArn({
        service: 'states',
        resource: 'execution',
        resourceName: `${name}/*`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      });
      machineRole.addToPolicy(
        new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: [machineArn] }),
      );
      machineRole.addToPolicy(
        new iam.PolicyStatement({
          actions: ['states:DescribeExecution', 'states:StopExecution'],
          resources: [executions],
        }),
      );
    }
    // Step Functions delivers its log through CloudWatch Logs' vended-log API, which names no resource.
    machineRole.addToPolicy(
      new iam.PolicyStatement({
        actions: [
          'logs:CreateLogDelivery',
          'logs:GetLogDelivery',
          'logs:UpdateLogDelivery',
          'logs:DeleteLogDelivery',
          'logs:ListLogDeliveries',
          'logs:PutResourcePolicy',
          'logs:DescribeResourcePolicies',
          'logs:DescribeLogGroups',
        ],
        resources: ['*'],
      }),
    );

    this.stateMachine = new sfn.CfnStateMachine(this, 'StateMachine', {
      stateMachineName: name,
      stateMachineType: 'STANDARD',
      roleArn: machineRole.roleArn,
      definitionString: placeholders.text,
      definitionSubstitutions: substitutions,
      loggingConfiguration: {
        level: 'ERROR',
        includeExecutionData: false,
        destinations: [{ cloudWatchLogsLogGroup: { logGroupArn: machineLogs.logGroupArn } }],
      },
    });
    // The role's policy must exist before the machine is made: Step Functions checks it then.
    this.stateMachine.node.addDependency(machineRole);

    new CfnOutput(this, 'StateMachineArn', { value: this.stateMachine.attrArn });
    new CfnOutput(this, 'StoreUrl', { value: storeUrl });
    new CfnOutput(this, 'JobQueueArn', { value: this.jobQueue.jobQueueArn });
    new CfnOutput(this, 'ResultsSecretArn', { value: resultsSecret.secretArn });
    new CfnOutput(this, 'JobLogGroup', { value: jobLogs.logGroupName });
  }
}
