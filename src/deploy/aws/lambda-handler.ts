/**
 * The entry of the Lambda functions `strand deploy aws` makes: Strand's four pipeline functions
 * (src/functions/pipeline-functions.ts), one export each, built the way the local engine builds
 * them — stores by URL through `openStore`, the results sink through `openResults` — from the
 * function's environment:
 *
 * - `STRAND_STORE`: the stack's store (`s3://bucket`); a payload naming another store is refused,
 *   because the function's role reaches only this bucket's pipeline prefix;
 * - finished jobs are looked up in AWS Batch (DescribeJobs: attempts, exit code, log stream),
 *   throttled calls retried, at the endpoint the SDK is given (AWS_ENDPOINT_URL_BATCH…);
 * - `STRAND_RESULTS_SECRET`: the Secrets Manager secret holding the results sink's URL, as
 *   `--results` takes it (`postgres://…`), or an RDS-style JSON secret (`engine`, `host`, `port`,
 *   `username`, `password`, `dbname`) a `postgres://` URL is made from. Read once per container,
 *   never logged; the sink is opened on the first call that records something.
 *
 * esbuild bundles this file with everything it imports (see bundle.ts).
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { openResults, openStore } from '../../app/index.js';
import type { Json } from '../../asl/types.js';
import { awsJobLookup } from '../../executors/aws-batch/job-lookup.js';
import type { LambdaFunction } from '../../engine/integrations.js';
import { pipelineFunctions } from '../../functions/pipeline-functions.js';
import { FUNCTIONS } from '../../pipeline/contract.js';
import type { ResultsSink } from '../../results/sink.js';
import type { ObjectStore } from '../../storage/store.js';

/** The only place a Lambda function may write. */
const HOME = '/tmp/strand';

/** The function's configuration is wrong: no run can succeed until it is mended. */
export class LambdaConfigError extends Error {
  readonly code = 'STRAND_LAMBDA_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'Strand.LambdaConfig';
  }
}

interface RdsSecret {
  engine?: string;
  host?: string;
  port?: number | string;
  username?: string;
  password?: string;
  dbname?: string;
}

/**
 * The results URL a secret's text holds: the URL itself, or a `postgres://` one made from an
 * RDS-style JSON secret. `secret` names the secret in errors; its value never appears in one.
 */
export function resultsUrlOf(text: string, secret: string): string {
  const trimmed = text.trim();
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(trimmed)) return trimmed;
  let parsed: RdsSecret | undefined;
  try {
    parsed = JSON.parse(trimmed) as RdsSecret;
  } catch {
    parsed = undefined;
  }
  if (parsed && typeof parsed === 'object' && parsed.host && parsed.username) {
    const engine = parsed.engine ?? 'postgres';
    if (!/^postgres/.test(engine))
      throw new LambdaConfigError(
        `secret ${secret}: engine "${engine}" is not a results database Strand writes to (postgres)`,
      );
    const auth = `${encodeURIComponent(parsed.username)}${parsed.password === undefined ? '' : `:${encodeURIComponent(parsed.password)}`}`;
    const port = parsed.port === undefined ? '' : `:${parsed.port}`;
    const db = parsed.dbname === undefined ? '' : `/${encodeURIComponent(parsed.dbname)}`;
    return `postgres://${auth}@${parsed.host}${port}${db}`;
  }
  throw new LambdaConfigError(
    `secret ${secret} holds neither a results URL (postgres://…) nor an RDS-style JSON secret (host, port, username, password, dbname); put one with: aws secretsmanager put-secret-value --secret-id ${secret} --secret-string 'postgres://USER:PASSWORD@HOST:5432/DB'`,
  );
}

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '')
    throw new LambdaConfigError(`the function's environment has no ${name}; redeploy the stack`);
  return value;
}

async function readSecret(arn: string): Promise<string> {
  const client = new SecretsManagerClient({});
  const out = await client.send(new GetSecretValueCommand({ SecretId: arn }));
  if (out.SecretString === undefined)
    throw new LambdaConfigError(`secret ${arn} has no text value (SecretString)`);
  return out.SecretString;
}

/** The functions over the environment's store and results sink (built on a container's first call). */
async function build(): Promise<Record<string, LambdaFunction>> {
  const storeUrl = required('STRAND_STORE').replace(/\/+$/, '');
  const secret = required('STRAND_RESULTS_SECRET');
  const url = resultsUrlOf(await readSecret(secret), secret);
  let sink: ResultsSink | undefined;
  const open = (): ResultsSink => (sink ??= openResults(url, { home: HOME }));
  // strand-preflight records nothing: it works while the results database is still being set up.
  const results: ResultsSink = {
    upsertStep: (row) => open().upsertStep(row),
    putMetrics: (key, table) => open().putMetrics(key, table),
    listSteps: (filter) => open().listSteps(filter),
    listMetrics: (pipeline, step, filter) => open().listMetrics(pipeline, step, filter),
    stepHistory: (pipeline, step, limit) => open().stepHistory(pipeline, step, limit),
    close: async () => {
      await sink?.close();
      sink = undefined;
    },
  };
  const stores = new Map<string, ObjectStore>();
  return pipelineFunctions({
    store: (url) => {
      if (url !== storeUrl && !url.startsWith(`${storeUrl}/`))
        throw new LambdaConfigError(
          `the execution's store is ${url}, but this stack's functions work on ${storeUrl} only; start the execution with "store": "${storeUrl}"`,
        );
      let s = stores.get(url);
      if (!s) stores.set(url, (s = openStore(url, { home: HOME })));
      return s;
    },
    results,
    // No local Batch here: the job cache is the engine's, and finished jobs are AWS Batch's.
    batch: () => undefined,
    jobs: awsJobLookup(),
  });
}

let built: Promise<Record<string, LambdaFunction>> | undefined;

function handlerOf(name: string): (event: Json) => Promise<Json> {
  return async (event) => {
    // A failed build is not kept: the next call tries again (a secret just filled in, say).
    const functions = await (built ??= build().catch((err: unknown) => {
      built = undefined;
      throw err;
    }));
    return functions[name](event, { functionName: name });
  };
}

export const preflight = handlerOf(FUNCTIONS.preflight);
export const publish = handlerOf(FUNCTIONS.publish);
export const syncFailure = handlerOf(FUNCTIONS.syncFailure);
export const collect = handlerOf(FUNCTIONS.collect);
