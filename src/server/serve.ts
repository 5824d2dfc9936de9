/**
 * `strand server` put together: the home's credentials, the server's database, the engine's
 * hold on the home, and the HTTP app, served by Node's HTTP (or HTTPS) server. Loopback by
 * default; any other address only over TLS, since requests carry execution inputs, outputs and
 * task tokens in the clear, and a signed request can be replayed for 15 minutes.
 */
import { createAdaptorServer } from '@hono/node-server';
import { createServer as createHttpsServer } from 'node:https';
import { isIP } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { Strand } from '../app/index.js';
import type { StateMachineDefinition } from '../asl/types.js';
import { serverApp } from './app.js';
import { loadOrCreateCredentials, type ServerCredentials } from './credentials.js';
import { ServerHome } from './home.js';
import { Registry } from './registry.js';
import { Dashboard } from './ui/dashboard.js';

/** The port `strand server` listens on when none is given. */
export const DEFAULT_PORT = 8459;

/** Bad options for the server (an address it may not bind in the clear, say): exit 2. */
export class ServerOptionsError extends Error {
  readonly code = 'STRAND_SERVER_OPTIONS';
  constructor(message: string) {
    super(message);
    this.name = 'ServerOptionsError';
  }
}

/** Whether `host` is this machine's loopback (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  return mapped !== null && mapped[1].startsWith('127.');
}

export interface StrandServerOptions {
  home: string;
  /** Opens the home's scheduling engine (see app/index.ts openStrand). */
  open: () => Strand | Promise<Strand>;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default DEFAULT_PORT; 0 for any free one. */
  port?: number;
  /** Certificate and key (PEM): serve HTTPS. Required for an address other than loopback. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Where the server tells what happens to the home and its own faults. */
  log?: (line: string) => void;
  /** Epoch ms, for tests. */
  now?: () => number;
  /** Pipeline files the dashboard can start besides those the home has run (absolute). */
  pipelines?: string[];
  /** The built front end the dashboard serves (default dist/ui of this checkout). */
  uiDir?: string;
}

export interface StrandServerHandle {
  /** `http://127.0.0.1:8459`, what `--endpoint-url` takes. */
  endpoint: string;
  port: number;
  credentials: ServerCredentials;
  home: ServerHome;
  close(): Promise<void>;
}

/**
 * Starts the server: credentials made on first start, the home taken (or followed while another
 * engine owns it), then listening. What the home or the address refuses is thrown before anything
 * listens.
 */
export async function startStrandServer(options: StrandServerOptions): Promise<StrandServerHandle> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopback(host) && !options.tls)
    throw new ServerOptionsError(
      `--host ${host} is not a loopback address: serving it needs TLS (--tls-cert FILE --tls-key FILE), as requests carry inputs, outputs and task tokens`,
    );
  if (options.tls)
    try {
      createSecureContext({ cert: options.tls.cert, key: options.tls.key });
    } catch (err) {
      throw new ServerOptionsError(
        `--tls-cert/--tls-key: not a certificate and its private key in PEM (${(err as Error).message})`,
      );
    }
  const credentials = loadOrCreateCredentials(options.home);
  const registry = Registry.open(options.home);
  const home = new ServerHome({
    home: options.home,
    open: options.open,
    log: options.log,
    stateMachines: (name) => {
      const r = registry.get(name);
      return r && { name, definition: JSON.parse(r.definition) as StateMachineDefinition };
    },
  });
  try {
    await home.start();
  } catch (err) {
    registry.close();
    throw err;
  }
  const dashboard = new Dashboard({
    home,
    credentials,
    secure: options.tls !== undefined,
    uiDir: options.uiDir,
    pipelines: options.pipelines,
    now: options.now,
    log: options.log,
  });
  const app = serverApp({
    home,
    registry,
    credentials,
    log: options.log,
    now: options.now,
    dashboard,
  });
  const server = createAdaptorServer({
    fetch: app.fetch,
    // Node's own Request and Response stay as they are for the rest of the process.
    overrideGlobalObjects: false,
    ...(options.tls
      ? {
          createServer: createHttpsServer,
          serverOptions: { cert: options.tls.cert, key: options.tls.key },
        }
      : {}),
  });
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? DEFAULT_PORT, bare, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await dashboard.close();
    home.close();
    registry.close();
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE')
      throw new ServerOptionsError(
        `port ${options.port ?? DEFAULT_PORT} on ${host} is in use (another strand server?); choose another with --port`,
      );
    if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND')
      throw new ServerOptionsError(`--host ${host} is not an address of this machine`);
    throw err;
  }
  // A server that failed later (rare) is told, not thrown into nowhere.
  server.on('error', (err) => options.log?.(`the HTTP server failed: ${err.message}`));
  const port = (server.address() as AddressInfo).port;
  const shown = isIP(bare) === 6 ? `[${bare}]` : bare;
  let closed: Promise<void> | undefined;
  return {
    endpoint: `${options.tls ? 'https' : 'http'}://${shown}:${port}`,
    port,
    credentials,
    home,
    close: () =>
      (closed ??= dashboard
        .close()
        .then(
          () =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              (server as { closeAllConnections?: () => void }).closeAllConnections?.();
            }),
        )
        .finally(() => {
          home.close();
          registry.close();
        })),
  };
}
