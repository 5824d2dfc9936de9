/**
 * The shape of pipeline.yaml as a zod schema: which keys exist and what type each holds. Rules
 * that need more than the shape (units, names, variables, order of steps) are checked by the
 * loader, which can word them better; their patterns are only attached here as metadata so the
 * JSON Schema given to editors flags the same mistakes.
 */
import { z } from 'zod';

export const STEP_NAME = /^[a-z][a-z0-9_-]*$/;
export const VAR_NAME = /^[A-Z_][A-Z0-9_]*$/;
export const PIPELINE_NAME = /^[a-z0-9][a-z0-9_-]*$/;

const SIZE = '[0-9]+(\\.[0-9]+)?(MiB|GiB|TiB|Mi|Gi|Ti|M|G|T)?';
const SIZE_PATTERN = `^${SIZE}(-${SIZE})?$`;
const DURATION_PATTERN = '^(none|[0-9]+|([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?)$';

const scalar = z.union([z.string(), z.number(), z.boolean()], {
  error: 'expected a string, a number or true/false',
});

const size = z
  .union([z.number(), z.string()], { error: 'expected a size such as 512MiB or 4GiB' })
  .meta({
    description:
      'Memory: a plain integer is MiB (at least 128); or 512MiB, 1.5GiB, 4G, 1TiB; or a range 2GiB-8GiB (in proportion to the vCPUs a job gets).',
    pattern: SIZE_PATTERN,
  });

const duration = z
  .union([z.number(), z.string()], { error: 'expected a duration such as 30m or 2h' })
  .meta({
    description: 'Attempt timeout: seconds, or 30s, 10m, 2h, 1h30m, 1d; `none` for no timeout.',
    pattern: DURATION_PATTERN,
  });

const resources = {
  vcpus: z
    .union([
      z.number().meta({ exclusiveMinimum: 0 }),
      z.string().meta({ pattern: '^[0-9]+(\\.[0-9]+)?-[0-9]+(\\.[0-9]+)?$' }),
    ])
    .meta({
      description:
        'vCPUs: a positive multiple of 0.25 (default 1), or a range 1-4: each job gets the size expected to finish the queue soonest ($STRAND_VCPUS).',
    })
    .optional(),
  memory: size.optional(),
  retry: z
    .number()
    .meta({
      description: 'Extra attempts after the first, 0..9 (default 0).',
      minimum: 0,
      maximum: 9,
    })
    .optional(),
  timeout: duration.optional(),
};

const varName = z.string().meta({ pattern: VAR_NAME.source });

/** Where a secret's value comes from (checked by the loader, which words it better). */
export const SECRET_SOURCE =
  /^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+|arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+|arn:aws[a-z-]*:ssm:[a-z0-9-]+:[0-9]{12}:parameter\/.+)$/;

const secrets = z
  .record(
    z.string().meta({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }),
    z.string().meta({ pattern: SECRET_SOURCE.source }),
  )
  .meta({
    description:
      'Environment variable → where its value is taken from when the job starts: env:NAME, file:/path, or an arn:aws:secretsmanager:… / arn:aws:ssm:… ARN (AWS Batch `secrets`). The value is never recorded.',
  })
  .optional();

const job = {
  image: z.string().meta({ description: 'Container image (ignored by the local executor).' }),
  command: z.array(scalar).meta({
    description:
      'argv, never run through a shell. $NAME and ${NAME} refer to declared variables; $$ is a literal $.',
  }),
  env: z
    .record(z.string().meta({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), scalar)
    .meta({ description: 'Extra environment; values may refer to variables.' })
    .optional(),
  stdout: z
    .string()
    .meta({
      description:
        'File (relative to the job directory) that receives the tool’s standard output, for tools that only print their results.',
    })
    .optional(),
  outputs: z
    .record(varName, z.string())
    .meta({
      description:
        'Variable name → path relative to the job directory; later steps see the published file.',
    })
    .optional(),
  secrets,
};

const substepSchema = z.strictObject({ ...job, ...resources });

const stepSchema = z
  .strictObject({
    image: job.image.optional(),
    command: job.command.optional(),
    env: job.env,
    stdout: job.stdout,
    outputs: job.outputs,
    secrets,
    ...resources,
    aggregate: z
      .boolean()
      .meta({ description: 'Run once after every sample instead of once per sample.' })
      .optional(),
    parallel: z
      .boolean()
      .meta({ description: 'Run the substeps side by side instead of in order.' })
      .optional(),
    after: z
      .union([
        z.string().meta({ pattern: STEP_NAME.source }),
        z.array(z.string().meta({ pattern: STEP_NAME.source })),
      ])
      .meta({
        description:
          'Steps this one waits for although it reads none of their outputs (order without data).',
      })
      .optional(),
    substeps: z
      .record(z.string().meta({ pattern: STEP_NAME.source }), substepSchema)
      .meta({
        description:
          'Jobs of this step, each with its own image and resources; the step’s resources are their defaults.',
      })
      .optional(),
  })
  .meta({ description: 'Either image + command, or substeps.' });

const resultSchema = z.strictObject({
  from: z.string().meta({ description: 'File the step wrote, relative to its job directory.' }),
  format: z.enum(['tsv', 'csv', 'json']).optional(),
  columns: z.record(z.string(), z.enum(['integer', 'real', 'text'])).optional(),
  header: z
    .array(z.string())
    .meta({ description: 'Column names of a file without a header line.' })
    .optional(),
});

const samplesSchema = z.union(
  [
    z.string().meta({ description: 'Path of a CSV or TSV sheet, relative to this file.' }),
    z.strictObject({ sheet: z.string() }),
    z.array(z.record(z.string(), scalar)).meta({ description: 'Samples written out: { id, … }.' }),
  ],
  { error: 'expected a sheet path or a list of samples' },
);

/** The top level of pipeline.yaml. */
export const pipelineSchema = z
  .strictObject({
    name: z
      .string()
      .meta({ description: 'Used in store paths and AWS names.', pattern: PIPELINE_NAME.source }),
    description: z.string().optional(),
    samples: samplesSchema.optional(),
    params: z
      .record(varName, z.union([scalar, z.null()], { error: 'expected a value' }))
      .meta({ description: 'Defaults, overridden with --param NAME=value; ~ for no default.' })
      .optional(),
    defaults: z.strictObject({ ...resources, secrets }).optional(),
    max_concurrency: z
      .int()
      .min(0)
      .meta({ description: 'Samples running at once; 0 = no limit.' })
      .optional(),
    continue_on_failure: z
      .boolean()
      .meta({ description: 'Let the other samples finish when one fails (default true).' })
      .optional(),
    executor: z
      .enum(['local', 'podman', 'docker'])
      .meta({
        description:
          'What jobs run on when `strand run` is not told (--executor, a profile): local processes (default) or containers of each step image.',
      })
      .optional(),
    steps: z.record(z.string().meta({ pattern: STEP_NAME.source }), stepSchema),
    results: z.record(z.string(), resultSchema).optional(),
  })
  .meta({ title: 'Strand pipeline', description: 'pipeline.yaml of Strand.' });

/** JSON Schema (draft 2020-12) of pipeline.yaml, for editors (`strand schema` prints it). */
export function pipelineJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(pipelineSchema, { target: 'draft-2020-12' }) as Record<string, unknown>;
}
