/**
 * Helper processes that start attempts for the local executor. Forking is the costly part of
 * starting a job from Node (the kernel copies the parent's page tables, so its cost grows with
 * the engine's heap and SQLite cache), and it blocks the thread that does it. A launcher is a
 * small process of its own, so its forks are cheap, and they happen on another core while the
 * engine goes on with its transactions. It also makes the attempt's directories and log file,
 * just before the start (made ahead, through a thread pool, they cost more than they saved,
 * measured on tmpfs and on ext4).
 *
 * Two kinds, with the same requests and answers: the native launcher (launcher.c, a static
 * program built by `npm run build` into dist/strand-launcher), whose forked children are the
 * attempts' wrappers; and, where it was not built, a bare Node process that spawns the `sh`
 * wrapper.
 *
 * Nothing durable depends on a launcher: jobs run detached in their own session, and the
 * wrapper's pid file (pid, limits, exit code) stays the source of truth, so if a launcher dies
 * the executor starts a new one and running jobs are still found by polling. The native wrapper
 * also contains and supervises its attempt by itself (launcher.c); the `sh` wrapper leaves that
 * to the executor.
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** What the executor asks the launcher to do for one attempt. */
export interface LaunchRequest {
  /** The attempt's pid file: if it exists, the attempt has been started. */
  pidPath: string;
  /** A file whose existence tells the wrapper not to start the command. */
  stopPath: string;
  /** Directories to make, the attempt's working directory first. */
  dirs: string[];
  logPath: string;
  /** Where the command's standard output goes, if not to the log. */
  stdoutPath?: string;
  /** Written to the log before the command's output, unless the log already exists. */
  note?: string;
  /**
   * The limits the wrapper records for a re-attaching engine, and the native wrapper enforces
   * ("memoryMiB:timeoutSeconds:graceSeconds", the timeout empty when there is none).
   */
  limits: string;
  command: string[];
  env: Record<string, string>;
  /**
   * Absolute paths the native wrapper mounts read-only for the command where it may mount (the
   * Node launcher's `sh` wrapper cannot: it ignores them).
   */
  readOnly: string[];
}

export type LaunchResult = { pid: number } | { existing: true };

type Reply = { id: number; pid?: number; existing?: boolean; error?: string; exit?: boolean };

/**
 * The launcher's own code (CommonJS for `node -e`); it has no dependencies. Its argument is the
 * wrapper's argv prefix as JSON (see NodeLauncher's constructor).
 */
const SOURCE = `
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const [program, ...prefix] = JSON.parse(process.argv[1]);
// With a callback, a channel that closed under a send (the engine died) is not an 'error' event
// that would end the launcher.
const send = (m) => { if (process.connected) process.send(m, () => {}); };
// The files an attempt needs before it starts are a few small metadata operations: done
// synchronously they cost tens of microseconds each, less than a trip through libuv's thread pool.
function launch(m) {
  if (fs.existsSync(m.pidPath)) {
    send({ id: m.id, existing: true });
    return;
  }
  for (const d of m.dirs) fs.mkdirSync(d, { recursive: true });
  if (m.note) try { fs.writeFileSync(m.logPath, m.note, { flag: 'wx' }); } catch {}
  const log = fs.openSync(m.logPath, 'a');
  let out;
  try {
    out = m.stdoutPath === undefined ? undefined : fs.openSync(m.stdoutPath, 'w');
    const child = spawn(program, [...prefix, m.pidPath, m.stopPath, m.limits, ...m.command], {
      cwd: m.dirs[0], env: m.env, detached: true, stdio: ['ignore', out === undefined ? log : out, log],
    });
    // A pid means the process exists; a failure to start comes as 'error' instead.
    if (child.pid !== undefined) send({ id: m.id, pid: child.pid });
    child.once('error', (e) => send({ id: m.id, error: e.message }));
    child.once('exit', () => send({ id: m.id, exit: true }));
    child.unref();
  } finally {
    fs.closeSync(log);
    if (out !== undefined) fs.closeSync(out);
  }
}
process.on('message', (m) => {
  try {
    launch(m);
  } catch (e) {
    send({ id: m.id, error: e.message });
  }
});
process.on('disconnect', () => process.exit(0));
`;

/** Starts attempts through a helper process; restarts it if it dies. */
export abstract class Launcher {
  protected child: ChildProcess | undefined;
  private nextId = 1;
  /** Launches not answered yet: while there are some, the pipe keeps the engine alive. */
  private unanswered = 0;
  private readonly pending = new Map<
    number,
    { resolve: (r: LaunchResult) => void; reject: (e: Error) => void; onExit: () => void }
  >();

  /** Starts the launcher process. */
  protected abstract start(): ChildProcess;
  /** Sends it one request. */
  protected abstract send(child: ChildProcess, id: number, request: LaunchRequest): void;
  /** Keeps the engine alive while the launcher runs (`true`), or lets it exit (`false`). */
  protected abstract hold(child: ChildProcess, hold: boolean): void;

  /** Starts the attempt; `onExit` is called when its wrapper ends (if the launcher lives). */
  launch(request: LaunchRequest, onExit: () => void): Promise<LaunchResult> {
    const child = this.ensure();
    const id = this.nextId++;
    if (this.unanswered++ === 0) this.hold(child, true);
    const answered = () => {
      if (--this.unanswered === 0 && this.child) this.hold(this.child, false);
    };
    return new Promise<LaunchResult>((resolve, reject) => {
      this.pending.set(id, {
        resolve: (r) => {
          answered();
          resolve(r);
        },
        reject: (e) => {
          answered();
          reject(e);
        },
        onExit,
      });
      this.send(child, id, request);
    });
  }

  /** The helper's pid while it runs (for diagnostics and tests). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Lets the launcher go; running jobs are unaffected. */
  abstract close(): void;

  /** An answer from the launcher process. */
  protected answer(id: number, reply: LaunchResult | { error: string } | { exit: true }): void {
    const p = this.pending.get(id);
    if (!p) return;
    if ('exit' in reply) {
      this.pending.delete(id);
      p.onExit();
    } else if ('error' in reply) {
      this.pending.delete(id);
      p.reject(new Error(reply.error));
    } else if ('existing' in reply) {
      this.pending.delete(id);
      p.resolve(reply);
    } else {
      p.resolve(reply);
      // Keep only the exit callback: settling twice must not count as two answers.
      p.resolve = p.reject = () => {};
    }
  }

  private ensure(): ChildProcess {
    if (this.child) return this.child;
    this.unanswered = 0;
    const child = this.start();
    child.on('exit', () => {
      if (this.child === child) this.child = undefined;
      // Attempts it started are found by polling; requests it never answered fail.
      for (const [id, p] of this.pending) {
        this.pending.delete(id);
        p.reject(new Error('the job launcher exited'));
        p.onExit();
      }
    });
    // An idle launcher must not keep the engine alive.
    child.unref();
    this.hold(child, false);
    this.child = child;
    return child;
  }
}

/** The Node launcher: a bare Node process, over an IPC channel, spawning the `sh` wrapper. */
export class NodeLauncher extends Launcher {
  /**
   * `wrapper`: the program and first arguments each attempt runs under; after them come the pid
   * file, the stop file, the limits and the command.
   */
  constructor(private readonly wrapper: string[]) {
    super();
  }

  protected start(): ChildProcess {
    const env = { ...process.env };
    delete env.NODE_OPTIONS; // no loaders or flags of the parent: the launcher is plain CommonJS
    const child = spawn(process.execPath, ['-e', SOURCE, JSON.stringify(this.wrapper)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env,
    });
    child.on('message', (m: Reply) =>
      this.answer(
        m.id,
        m.exit
          ? { exit: true }
          : m.error !== undefined
            ? { error: m.error }
            : m.existing
              ? { existing: true }
              : { pid: m.pid! },
      ),
    );
    return child;
  }

  protected send(child: ChildProcess, id: number, request: LaunchRequest): void {
    child.send({ id, ...request });
  }

  protected hold(child: ChildProcess, hold: boolean): void {
    if (hold) child.channel?.ref();
    else child.channel?.unref();
  }

  close(): void {
    const child = this.child;
    this.child = undefined;
    if (child?.connected) child.disconnect();
  }
}

/**
 * A request as the native launcher reads it (launcher.c: NUL-terminated fields), on its standard
 * input or from a file (`strand-launcher run FILE`); undefined when a value holds a NUL byte,
 * which no path, argument or variable can (as with Node's own spawn).
 */
export function nativeRequest(id: string, r: LaunchRequest): string | undefined {
  const env = Object.entries(r.env).map(([k, v]) => `${k}=${v}`);
  const fields = [
    id,
    r.pidPath,
    r.stopPath,
    r.logPath,
    r.note ?? '',
    r.limits,
    r.stdoutPath ?? '',
    String(r.dirs.length),
    ...r.dirs,
    String(r.command.length),
    ...r.command,
    String(env.length),
    ...env,
    String(r.readOnly.length),
    ...r.readOnly,
  ];
  if (fields.some((f) => f.includes('\0'))) return undefined;
  return fields.join('\0') + '\0';
}

/** The native launcher (launcher.c), over its standard input and output. */
export class NativeLauncher extends Launcher {
  constructor(private readonly program: string) {
    super();
  }

  protected start(): ChildProcess {
    const child = spawn(this.program, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    // A launcher that died under a write: its 'exit' fails what it had not answered.
    child.stdin!.on('error', () => {});
    let rest = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        const [kind, id, ...more] = line.split(' ');
        const n = Number(id);
        if (kind === 'P') this.answer(n, { pid: Number(more[0]) });
        else if (kind === 'X') this.answer(n, { exit: true });
        else if (kind === 'E') this.answer(n, { existing: true });
        else if (kind === 'F') this.answer(n, { error: more.join(' ') });
      }
    });
    return child;
  }

  protected send(child: ChildProcess, id: number, r: LaunchRequest): void {
    const request = nativeRequest(String(id), r);
    if (request === undefined) {
      queueMicrotask(() =>
        this.answer(id, { error: 'a path, argument or variable holds a NUL byte' }),
      );
      return;
    }
    child.stdin!.write(request);
  }

  protected hold(child: ChildProcess, hold: boolean): void {
    for (const stream of [child.stdin, child.stdout] as const) {
      const socket = stream as unknown as { ref?: () => void; unref?: () => void } | null;
      if (hold) socket?.ref?.();
      else socket?.unref?.();
    }
  }

  close(): void {
    const child = this.child;
    this.child = undefined;
    child?.stdin?.end();
  }
}
