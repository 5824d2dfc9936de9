/** `strand server`: the Step Functions and Batch APIs of a Strand home, for AWS's CLI and SDKs. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { openStrand, type Strand } from '../app/index.js';
import { EXIT_OK, InputError } from '../cli/errors.js';
import { refusedHome, strandHome } from '../cli/home.js';
import type { Io } from '../cli/io.js';
import { CredentialsError, PROFILE } from './credentials.js';
import { RegistryError } from './registry.js';
import { DEFAULT_PORT, ServerOptionsError, startStrandServer } from './serve.js';
import { checkPipelineFlags } from './ui/runs.js';

interface ServerCommandOptions {
  port?: string;
  host?: string;
  tlsCert?: string;
  tlsKey?: string;
  home?: string;
  pipeline: string[];
}

function readPem(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new InputError(
      `${flag} ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
}

function port(value: string | undefined): number {
  if (value === undefined) return DEFAULT_PORT;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65_535)
    throw new InputError(`--port ${value}: give a port number from 0 to 65535 (0: any free port)`);
  return n;
}

/** Opens the home's engine with its backends, ready to run (a results server reached). */
async function openForServer(home: string): Promise<Strand> {
  const strand = openStrand({ home });
  try {
    await strand.services.ready();
  } catch (err) {
    strand.engine.close();
    throw err;
  }
  return strand;
}

/** Resolves on the first SIGINT or SIGTERM. */
function untilStopped(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** Registers `strand server`. */
export function registerServerCommand(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
): void {
  program
    .command('server')
    .description(
      'serve the Step Functions and Batch APIs of the Strand home over HTTP, for the AWS CLI and SDKs\n' +
        `(--endpoint-url). Requests are signed (SigV4) with the key pair in <home>/credentials, profile\n` +
        `"${PROFILE}", made on first start. Listens on 127.0.0.1; another address needs TLS. Runs until\n` +
        'interrupted; executions and jobs it started carry on with `strand resume`. See docs/server.md.',
    )
    .option('--port <n>', `the port (default ${DEFAULT_PORT}; 0: any free port)`)
    .option(
      '--host <addr>',
      'the address to listen on (default 127.0.0.1); one other than loopback needs --tls-cert and --tls-key',
    )
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'the private key (PEM) of --tls-cert')
    .option('--home <dir>', 'the Strand home directory')
    .option(
      '--pipeline <file>',
      'a pipeline the dashboard can start, besides those the home has run (repeatable)',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .action(async (opts: ServerCommandOptions) => {
      const home = strandHome(opts.home);
      const pipelines = checkPipelineFlags(opts.pipeline);
      if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined))
        throw new InputError(
          `${opts.tlsCert === undefined ? '--tls-key' : '--tls-cert'} given alone: HTTPS needs both --tls-cert FILE and --tls-key FILE`,
        );
      const tls =
        opts.tlsCert !== undefined && opts.tlsKey !== undefined
          ? { cert: readPem('--tls-cert', opts.tlsCert), key: readPem('--tls-key', opts.tlsKey) }
          : undefined;
      let server: Awaited<ReturnType<typeof startStrandServer>>;
      try {
        server = await startStrandServer({
          home,
          open: () => openForServer(home),
          host: opts.host,
          port: port(opts.port),
          tls,
          pipelines,
          log: (line) => io.err(`${new Date().toISOString()} ${line}\n`),
        });
      } catch (err) {
        if (
          err instanceof ServerOptionsError ||
          err instanceof CredentialsError ||
          err instanceof RegistryError
        )
          throw new InputError(err.message);
        throw refusedHome(err);
      }
      io.out(`endpoint: ${server.endpoint}\n`);
      io.out(`dashboard: ${server.endpoint}/ui/ (sign in with the key pair below)\n`);
      const c = server.credentials;
      io.err(
        `credentials: ${c.path} (profile ${PROFILE}${c.created ? ', made now' : ''})\n` +
          `try: AWS_SHARED_CREDENTIALS_FILE=${c.path} AWS_PROFILE=${PROFILE} aws --region local --endpoint-url ${server.endpoint} stepfunctions list-state-machines\n`,
      );
      const signal = await untilStopped();
      await server.close();
      io.err(
        `stopped (${signal}); unfinished executions and jobs carry on with \`strand resume\` or the next \`strand server\`\n`,
      );
      setExit(EXIT_OK);
    });
}
