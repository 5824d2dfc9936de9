// The process that runs one job attempt for the local executor. It is started detached (its
// own process group) so the job keeps running if the engine dies. It:
//   - claims the attempt with an exclusive lock file, so an attempt never runs twice;
//   - records its pid and start time, runs the command as argv (no shell) with the job's
//     environment in the scratch directory, stdout/stderr to the attempt's log;
//   - enforces the memory limit (sum of RSS of the job's processes; over it: SIGKILL, exit 137,
//     reason OutOfMemoryError as AWS Batch reports) and the timeout (SIGTERM, then SIGKILL after
//     a grace period);
//   - writes the exit record last, atomically (write then rename).
// Plain JavaScript with Node built-ins only: it runs without the rest of Strand.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const dir = spec.attemptDir;

function writeAtomic(name, value) {
  const tmp = join(dir, `.${name}.tmp`);
  writeFileSync(tmp, JSON.stringify(value));
  renameSync(tmp, join(dir, name));
}

function startTimeOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

try {
  closeSync(openSync(join(dir, 'lock'), 'wx'));
} catch {
  process.exit(0); // Another wrapper owns this attempt: never run it twice.
}
writeAtomic('wrapper.json', { pid: process.pid, startTime: startTimeOf(process.pid) });

function terminateReason() {
  try {
    return readFileSync(join(dir, 'terminate-reason'), 'utf8') || 'Terminated';
  } catch {
    return undefined;
  }
}
const early = terminateReason();
if (early !== undefined) {
  // Terminated before the command started: it never runs.
  writeAtomic('exit.json', {
    exitCode: 143,
    reason: early,
    startedAt: Date.now(),
    stoppedAt: Date.now(),
  });
  process.exit(0);
}

const log = openSync(spec.logPath, 'a');
const startedAt = Date.now();
let reason;
let forcedExit;
let child;
try {
  child = spawn(spec.command[0], spec.command.slice(1), {
    cwd: spec.workDir,
    env: spec.environment,
    stdio: ['ignore', log, log],
  });
} catch (err) {
  finish(127, `CannotStartContainerError: ${err.message}`);
}

const pageSize = 4096;
function groupRssBytes() {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== process.pid) continue; // process group id
      total += Number(fields[21]) * pageSize; // rss in pages
    } catch {
      // the process ended while we looked
    }
  }
  return total;
}

function killGroup(signal) {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === process.pid) process.kill(Number(entry), signal);
    } catch {
      // gone already
    }
  }
}

const limitBytes = spec.memoryMiB ? spec.memoryMiB * 1024 * 1024 : 0;
const monitor = setInterval(() => {
  if (limitBytes && groupRssBytes() > limitBytes) {
    reason = 'OutOfMemoryError: Container killed due to memory usage';
    forcedExit = 137;
    killGroup('SIGKILL');
  }
}, 100);

let graceTimer;
function stop(why) {
  if (reason === undefined) reason = why;
  killGroup('SIGTERM');
  graceTimer ??= setTimeout(() => killGroup('SIGKILL'), (spec.graceSeconds ?? 10) * 1000);
}
if (spec.timeoutSeconds) {
  setTimeout(
    () => stop('Job attempt duration exceeded timeout'),
    spec.timeoutSeconds * 1000,
  ).unref();
}
process.on('SIGTERM', () => stop(terminateReason() ?? 'Terminated'));

function finish(exitCode, why) {
  clearInterval(monitor);
  if (graceTimer) clearTimeout(graceTimer);
  const record = { exitCode, startedAt, stoppedAt: Date.now() };
  if (why) record.reason = why;
  writeAtomic('exit.json', record);
  process.exit(0);
}

child?.on('error', (err) => finish(127, `CannotStartContainerError: ${err.message}`));
child?.on('exit', (code, signal) => {
  const signals = { SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGSEGV: 11, SIGABRT: 6 };
  const exitCode = forcedExit ?? code ?? 128 + (signals[signal] ?? 0);
  finish(exitCode, reason);
});
