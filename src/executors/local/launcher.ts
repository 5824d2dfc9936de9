/**
 * A small helper process that starts attempts for the local executor. Forking is the costly
 * part of starting a job from Node (the kernel copies the parent's page tables, so its cost grows
 * with the engine's heap and SQLite cache), and it blocks the thread that does it. The launcher
 * is a bare Node process, so its forks are cheap, and they happen on another core while the
 * engine goes on with its transactions. It also makes the attempt's directory and log file
 * (synchronously, just before the spawn: made ahead, through the thread pool, they cost the
 * launcher more than they saved, measured on tmpfs and on ext4).
 *
 * Nothing durable depends on it: jobs run detached in their own session, and the wrapper's pid
 * file (pid, limits, exit code) stays the source of truth, so if the launcher dies the executor
 * starts a new one and running jobs are still found by polling.
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** What the executor asks the launcher to do for one attempt. */
export interface LaunchRequest {
  /** The attempt's pid file: if it exists, the attempt has been started. */
  pidPath: string;
  /** A file whose existence tells the wrapper not to start the command. */
  stopPath: string;
  workDir: string;
  logPath: string;
  /** Written to the log before the command's output, unless the log already exists. */
  note?: string;
  /** The limits the wrapper records for a re-attaching engine ("memoryMiB:timeoutSeconds"). */
  limits: string;
  command: string[];
  env: Record<string, string>;
}

export type LaunchResult = { pid: number } | { existing: true };

type Reply = { id: number; pid?: number; existing?: boolean; error?: string; exit?: boolean };

/**
 * The launcher's own code (CommonJS for `node -e`); it has no dependencies. Its argument is the
 * wrapper's argv prefix as JSON (see Launcher's constructor).
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
  fs.mkdirSync(m.workDir, { recursive: true });
  if (m.note) try { fs.writeFileSync(m.logPath, m.note, { flag: 'wx' }); } catch {}
  // Output directories a pipeline declared (relative, inside the working directory only).
  for (const d of (m.env.STRAND_OUTPUT_DIRS || '').split(':')) {
    if (d && !d.startsWith('/') && !d.split('/').includes('..'))
      fs.mkdirSync(m.workDir + '/' + d, { recursive: true });
  }
  const log = fs.openSync(m.logPath, 'a');
  let out;
  try {
    // A pipeline step may send standard output to a file of its directory (STRAND_STDOUT).
    out = m.env.STRAND_STDOUT && !m.env.STRAND_STDOUT.startsWith('/') && !m.env.STRAND_STDOUT.split('/').includes('..')
      ? fs.openSync(m.workDir + '/' + m.env.STRAND_STDOUT, 'w')
      : undefined;
    const child = spawn(program, [...prefix, m.pidPath, m.stopPath, m.limits, ...m.command], {
      cwd: m.workDir, env: m.env, detached: true, stdio: ['ignore', out === undefined ? log : out, log],
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
export class Launcher {
  /**
   * `wrapper`: the program and first arguments each attempt runs under; after them come the pid
   * file, the stop file, the limits and the command.
   */
  constructor(private readonly wrapper: string[]) {}

  private child: ChildProcess | undefined;
  private nextId = 1;
  /** Launches not answered yet: while there are some, the channel keeps the process alive. */
  private unanswered = 0;
  private readonly pending = new Map<
    number,
    { resolve: (r: LaunchResult) => void; reject: (e: Error) => void; onExit: () => void }
  >();

  /** Starts the attempt; `onExit` is called when its wrapper ends (if the launcher lives). */
  launch(request: LaunchRequest, onExit: () => void): Promise<LaunchResult> {
    const child = this.ensure();
    const id = this.nextId++;
    if (this.unanswered++ === 0) child.channel?.ref();
    const answered = () => {
      if (--this.unanswered === 0) this.child?.channel?.unref();
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
      child.send({ id, ...request });
    });
  }

  /** The helper's pid while it runs (for diagnostics and tests). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Lets the launcher go; running jobs are unaffected. */
  close(): void {
    const child = this.child;
    this.child = undefined;
    if (child?.connected) child.disconnect();
  }

  private ensure(): ChildProcess {
    if (this.child) return this.child;
    const env = { ...process.env };
    delete env.NODE_OPTIONS; // no loaders or flags of the parent: the launcher is plain CommonJS
    this.unanswered = 0;
    const child = spawn(process.execPath, ['-e', SOURCE, JSON.stringify(this.wrapper)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env,
    });
    child.on('message', (m: Reply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      if (m.exit) {
        this.pending.delete(m.id);
        p.onExit();
      } else if (m.error !== undefined) {
        this.pending.delete(m.id);
        p.reject(new Error(m.error));
      } else if (m.existing) {
        this.pending.delete(m.id);
        p.resolve({ existing: true });
      } else {
        p.resolve({ pid: m.pid! });
        // Keep only the exit callback: settling twice must not count as two answers.
        p.resolve = p.reject = () => {};
      }
    });
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
    child.channel?.unref();
    this.child = child;
    return child;
  }
}
