/**
 * The prefix lock of a file store: a directory of numbered lock files, one per hand-over. The
 * highest number is the lock's state (held by the process it names, or free); taking the lock
 * means creating the next number with O_EXCL, so of any number of writers that find the lock
 * free, or its holder gone, exactly one wins, on any file system where O_EXCL is exclusive
 * (local ones, NFSv3 and later). The highest file is never deleted, so a writer that judged an
 * old state and creates a number below it sees the higher one and backs off.
 *
 * A holder renews its file's mtime every quarter of the TTL. A waiter takes over when the
 * holder's process is gone (same machine) or when the file did not change for a whole TTL
 * while it watched: its own clock, so clocks of different machines need not agree.
 */
import { randomUUID } from 'node:crypto';
import { link, mkdir, readdir, readFile, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { StorageError } from './errors.js';
import type { StoreLockHandle } from './store.js';
import { TEMP_PREFIX, tempName, tempWriter } from './keys.js';
import { holderText, lockLost, thisWriter, writerState, type WriterInfo } from './writer.js';

/** A lock not renewed for this long is taken over. */
export const DEFAULT_LOCK_TTL_MS = 30_000;
const DEFAULT_WAIT_MS = 10 * 60_000;

interface LockContent extends Partial<WriterInfo> {
  prefix?: string;
  since?: string;
  token?: string;
  free?: boolean;
}

export interface FileLockOptions {
  waitMs?: number;
  ttlMs?: number;
  /** The lock's name in messages: `"p/S1/qc" in file:///…`. */
  what: string;
}

/** Takes the lock kept in `dir` for `prefix`, waiting while a live holder has it. */
export async function acquireFileLock(
  dir: string,
  prefix: string,
  options: FileLockOptions,
): Promise<StoreLockHandle> {
  const ttl = options.ttlMs ?? DEFAULT_LOCK_TTL_MS;
  const deadline = Date.now() + (options.waitMs ?? DEFAULT_WAIT_MS);
  // What this waiter saw of each holder's file, and since when (its own monotonic clock).
  const watched = new Map<number, { signature: string; since: number }>();
  let pause = 5;
  await mkdir(dir, { recursive: true });
  await sweepPending(dir);
  for (;;) {
    await mkdir(dir, { recursive: true });
    const top = Math.max(0, ...(await generations(dir)));
    let holder: LockContent | undefined;
    let takeable = top === 0;
    if (!takeable) {
      const seen = await readState(join(dir, String(top)));
      // Gone: a newer number was written and the old one cleaned up; look again.
      if (seen === undefined) continue;
      holder = seen.content;
      const watch = watched.get(top);
      if (!watch || watch.signature !== seen.signature)
        watched.set(top, { signature: seen.signature, since: performance.now() });
      takeable =
        holder?.free === true ||
        (holder !== undefined && writerState(holder) === 'dead') ||
        performance.now() - watched.get(top)!.since >= ttl;
    }
    if (takeable) {
      const handle = await tryTake(dir, top + 1, prefix, ttl, options.what);
      if (handle) return handle;
      pause = 5;
      continue;
    }
    if (Date.now() >= deadline) {
      const who = holderText(holder);
      throw new StorageError(
        'LOCK_TIMEOUT',
        `cannot lock ${options.what}: held by ${who}; gave up after ${Math.round((options.waitMs ?? DEFAULT_WAIT_MS) / 1000)} s (lock files in ${dir})`,
      );
    }
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, 250, Math.max(5, ttl / 4));
  }
}

/** Creates lock number `gen`; undefined when another writer got there first. */
async function tryTake(
  dir: string,
  gen: number,
  prefix: string,
  ttl: number,
  what: string,
): Promise<FileLockHandle | undefined> {
  const path = join(dir, String(gen));
  const me = thisWriter();
  const content: LockContent = {
    prefix,
    ...me,
    since: new Date().toISOString(),
    token: randomUUID(),
  };
  if (!(await createWhole(path, JSON.stringify(content) + '\n'))) return undefined;
  const all = await generations(dir);
  if (all.some((g) => g > gen)) {
    // This writer judged a state that had already moved on; the lock is someone else's.
    await unlink(path).catch(() => undefined);
    return undefined;
  }
  for (const old of all.filter((g) => g < gen)) {
    await unlink(join(dir, String(old))).catch(() => undefined);
  }
  return new FileLockHandle(prefix, dir, gen, ttl, what);
}

export class FileLockHandle implements StoreLockHandle {
  private lost = false;
  private released = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly prefix: string,
    private readonly dir: string,
    private readonly gen: number,
    ttl: number,
    private readonly what: string,
  ) {
    this.timer = setInterval(() => void this.renew(), Math.max(1, ttl / 4));
    // A holder's renewals must not keep a finished process alive.
    this.timer.unref();
  }

  private get own(): string {
    return join(this.dir, String(this.gen));
  }

  private get next(): string {
    return join(this.dir, String(this.gen + 1));
  }

  private async renew(): Promise<void> {
    if (this.lost || this.released) return;
    if (await exists(this.next)) {
      this.lose();
      return;
    }
    const now = new Date();
    await utimes(this.own, now, now).catch(() => this.lose());
  }

  /** Stops renewing without releasing, as a holder whose machine hung would (tests take it over). */
  abandon(): void {
    clearInterval(this.timer);
  }

  private lose(): void {
    this.lost = true;
    clearInterval(this.timer);
  }

  async check(): Promise<void> {
    if (this.released) throw lockLost(this.what, true);
    if (!this.lost && ((await exists(this.next)) || !(await exists(this.own)))) this.lose();
    if (this.lost) throw lockLost(this.what, false);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    if (this.lost) return;
    const free = { prefix: this.prefix, free: true, since: new Date().toISOString() };
    // Taken over meanwhile: the lock is not ours to free.
    if (!(await createWhole(this.next, JSON.stringify(free) + '\n'))) return;
    await unlink(this.own).catch(() => undefined);
  }
}

/**
 * Creates `path` holding `text`, or returns false when it exists: written under a name of its
 * own, then linked into place, so a lock file is never seen empty or half written. (Written in
 * place, a writer killed between the create and the write would leave a file naming no holder,
 * which others could take over only after the TTL.)
 */
async function createWhole(path: string, text: string): Promise<boolean> {
  const tmp = join(dirname(path), tempName());
  await writeFile(tmp, text, { flag: 'wx' });
  try {
    await link(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** Removes the half-made lock files of writers that are gone. */
async function sweepPending(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const writer = name.startsWith(TEMP_PREFIX) ? tempWriter(name) : undefined;
    if (writer && writerState(writer) === 'dead')
      await unlink(join(dir, name)).catch(() => undefined);
  }
}

async function generations(dir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return names.filter((n) => /^[1-9][0-9]*$/.test(n)).map(Number);
}

/** A lock file's content (undefined while it is being written) and what identifies its state. */
async function readState(
  path: string,
): Promise<{ signature: string; content?: LockContent } | undefined> {
  try {
    const st = await stat(path);
    const text = await readFile(path, 'utf8');
    let content: LockContent | undefined;
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === 'object' && parsed !== null) content = parsed as LockContent;
    } catch {
      // Being written: its holder is not known yet.
    }
    return { signature: `${st.ino}:${st.size}:${st.mtimeMs}`, content };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
