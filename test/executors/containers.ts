/**
 * What the container tests share: whether podman can run them here (and whether it must: with
 * STRAND_REQUIRE_CONTAINERS=1, as CI sets, a missing podman fails them instead of skipping), an
 * image with this machine's Node in it (the conformance suite's commands are `node -e`
 * programs), and the host pids of a container's processes.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  detectRuntime,
  hasImage,
  type ContainerRuntime,
} from '../../src/executors/container/runtime.js';
import type { JobHandle } from '../../src/executors/executor.js';

export const BASE_IMAGE = 'debian:bookworm-slim';

/** podman with the base image, or why not. */
function probe(): { runtime?: ContainerRuntime; why?: string } {
  try {
    const runtime = detectRuntime('podman');
    if (!hasImage(runtime, BASE_IMAGE))
      return { why: `no ${BASE_IMAGE} image (run: strand images base)` };
    return { runtime };
  } catch (err) {
    return { why: (err as Error).message };
  }
}

const found = probe();
export const required = process.env.STRAND_REQUIRE_CONTAINERS === '1';
if (required && !found.runtime)
  throw new Error(`STRAND_REQUIRE_CONTAINERS=1 but podman cannot run containers: ${found.why}`);
/** Whether the container tests run here. */
export const podmanReady = found.runtime !== undefined;
export const podman = found.runtime;

/**
 * An image with this machine's Node (`/usr/bin/node`-style path as process.execPath), built once
 * per Node version from the base image: the conformance commands run in it as they do on the
 * host.
 */
export function nodeImage(runtime: ContainerRuntime): string {
  const tag = `localhost/strand-test-node:${process.versions.node}`;
  if (hasImage(runtime, tag)) return tag;
  const context = mkdtempSync(join(tmpdir(), 'strand-node-image-'));
  try {
    copyFileSync(process.execPath, join(context, 'node'));
    writeFileSync(
      join(context, 'Dockerfile'),
      `FROM ${BASE_IMAGE}\nCOPY node ${process.execPath}\n`,
    );
    execFileSync(
      runtime.program,
      ['build', '--pull=never', ...runtime.runOptions, '-t', tag, context],
      { stdio: 'ignore' },
    );
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
  return tag;
}

/** The id of the container running an attempt (found by its label). */
export function containerOf(runtime: ContainerRuntime, handle: JobHandle): string | undefined {
  const r = spawnSync(
    runtime.program,
    ['ps', '--all', '--quiet', '--no-trunc', '--filter', `label=strand.ref=${handle.ref}`],
    { encoding: 'utf8' },
  );
  return r.stdout.trim().split('\n')[0] || undefined;
}

/**
 * The host pids of the processes a running container reported as its own pids: the processes
 * in the container's cgroup whose innermost pid (NSpid) is one of them. Every one must be found.
 */
export function hostPidsOf(runtime: ContainerRuntime) {
  return async (handle: JobHandle, pids: number[]): Promise<number[]> => {
    const id = containerOf(runtime, handle);
    if (!id) throw new Error(`no container for ${handle.ref}`);
    const wanted = new Set(pids);
    const out: number[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (!readFileSync(`/proc/${entry}/cgroup`, 'utf8').includes(id)) continue;
        const ns = /^NSpid:\s+(.+)$/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'));
        const inner = Number(ns?.[1].trim().split(/\s+/).at(-1));
        if (wanted.has(inner)) out.push(Number(entry));
      } catch {
        // ended meanwhile
      }
    }
    if (out.length === pids.length) return out;
    // Some had ended already: then the container must have ended whole (its first process
    // gone, the kernel ends the rest of its pid namespace), leaving no process in its cgroup.
    const left = readdirSync('/proc').filter((entry) => {
      try {
        return /^\d+$/.test(entry) && readFileSync(`/proc/${entry}/cgroup`, 'utf8').includes(id);
      } catch {
        return false;
      }
    });
    if (left.length > 0)
      throw new Error(
        `found ${out.length} of ${pids.length} reported processes of container ${id}, and ${left.length} others in it`,
      );
    return out;
  };
}
