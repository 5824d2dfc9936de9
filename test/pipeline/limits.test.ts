/**
 * Values a job could never be started with, and inputs Strand could never read, are refused by
 * `strand validate` and by `strand run` before anything is submitted, each at the place it was
 * written (a sheet's cell, a parameter, `--param`), naming the sample and the limit:
 *
 * - one argument or environment string over Linux's MAX_ARG_STRLEN (the boundary is the
 *   kernel's own: the longest accepted value runs, one byte more would not exec);
 * - a command and environment together over Strand's ARG_MAX budget;
 * - a sample id too long for a file name (NAME_MAX), or a store path too long (PATH_MAX), with
 *   `--store` checked by `run`;
 * - devices, FIFOs, sockets and paths under /proc, /sys or /dev as inputs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inlinePipeline, strand } from './cli.js';

/** `strand run` refused the pipeline: exit 2, and not even the engine's database was made. */
async function refusedByRun(file: string, home: string, ...args: string[]): Promise<string> {
  const r = await strand('run', file, '--home', home, ...args);
  expect(r.code, r.err).toBe(2);
  expect(r.err).toMatch(/problems?; nothing was run/);
  expect(existsSync(join(home, 'strand.db'))).toBe(false);
  return r.err;
}

/** The kernel's answer to starting a process with `env`. */
function execs(env: Record<string, string>): boolean {
  const r = spawnSync('/bin/true', [], { env });
  return r.error === undefined && r.status === 0;
}

const COUNT = [
  'steps:',
  '  count:',
  '    image: debian:bookworm-slim',
  `    command: [sh, -c, 'printf %s "$$READS" | wc -c > n.txt']`,
  '    outputs: { N: n.txt }',
];

describe('one value too long for Linux', () => {
  // "READS=" + value + its NUL: the longest value the kernel takes is 131072 - 7 bytes.
  const longest = 131_072 - 'READS='.length - 1;

  it('the boundary is the kernel’s own', () => {
    expect(execs({ READS: 'x'.repeat(longest) })).toBe(true);
    expect(execs({ READS: 'x'.repeat(longest + 1) })).toBe(false);
  });

  it('a sheet value one byte over: validate and run exit 2 at its cell, naming sample and limit', async () => {
    const { dir, file, home } = inlinePipeline(['name: long', 'samples: samples.csv', ...COUNT], {
      'samples.csv': `id,reads\nok,short\nbig,${'x'.repeat(longest + 1)}\n`,
    });
    const sheet = join(dir, 'samples.csv');
    const v = await strand('validate', file);
    expect(v.code).toBe(2);
    expect(v.err).toContain(
      `${sheet}:3:5 samples[1].reads: sample "big": READS is ${longest + 1} bytes; as READS=… in a job's environment it would be 131073 bytes with its end, and Linux passes at most 131072 per string (MAX_ARG_STRLEN) (put a long value in a file and pass its path)`,
    );
    const err = await refusedByRun(file, home);
    expect(err).toContain(`${sheet}:3:5 samples[1].reads: sample "big"`);
  });

  it('the longest value the kernel takes runs', async () => {
    const { file, home } = inlinePipeline(['name: long', 'samples: samples.csv', ...COUNT], {
      'samples.csv': `id,reads\nbig,${'x'.repeat(longest)}\n`,
    });
    const r = await strand('run', file, '--home', home);
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(join(home, 'store/long/big/count/n.txt'), 'utf8').trim()).toBe(
      String(longest),
    );
  });

  it('an argument made of two values that fit alone: refused at the larger value, naming the step', async () => {
    const { file, home } = inlinePipeline([
      'name: joined',
      'samples: [ { id: s1 } ]',
      'params:',
      `  A: ${'a'.repeat(60_000)}`,
      `  B: ${'b'.repeat(80_000)}`,
      'steps:',
      '  both:',
      '    image: debian:bookworm-slim',
      '    command: [echo, $A$B]',
    ]);
    const v = await strand('validate', file);
    expect(v.code).toBe(2);
    expect(v.err).toContain(
      `${file}:5:6 params.B: sample "s1", step both: argument 1 of the command would be 140001 bytes with its end; Linux passes at most 131072 per string (MAX_ARG_STRLEN)`,
    );
    await refusedByRun(file, home);
  });

  it('a --param value: refused naming the option', async () => {
    const { file, home } = inlinePipeline([
      'name: param',
      'params: { TEXT: ~ }',
      'steps:',
      '  show: { image: x, command: [echo, $TEXT], aggregate: true }',
    ]);
    const err = await refusedByRun(file, home, '--param', `TEXT=${'t'.repeat(140_000)}`);
    expect(err).toMatch(
      /\n {2}--param TEXT: is 140000 bytes; as TEXT=… in a job's environment it would be 140006 bytes/,
    );
  });
});

describe('a command and environment too long together', () => {
  it('is refused at the largest value, naming the sample, the step and the budget', async () => {
    const columns = Array.from({ length: 9 }, (_, i) => `c${i}`);
    const { dir, file, home } = inlinePipeline(['name: wide', 'samples: samples.csv', ...COUNT], {
      'samples.csv':
        `id,reads,${columns.join(',')}\n` +
        `big,r,${columns.map((_, i) => String(i % 10).repeat(i === 4 ? 125_000 : 120_000)).join(',')}\n`,
    });
    const v = await strand('validate', file);
    expect(v.code).toBe(2);
    // Column c4 (the largest) starts after "big,r," and four values of 120000 bytes and commas.
    const column = 'big,r,'.length + 4 * 120_001 + 1;
    expect(v.err).toContain(
      `${join(dir, 'samples.csv')}:2:${column} samples[0].c4: sample "big", step count: the command and environment would come to`,
    );
    expect(v.err).toMatch(/Strand keeps them within 1024 KiB, half of Linux's usual ARG_MAX/);
    await refusedByRun(file, home);
  });
});

describe('paths too long', () => {
  it('a sample id longer than NAME_MAX', async () => {
    const id = `s${'x'.repeat(255)}`;
    const { file, home } = inlinePipeline([
      'name: ids',
      `samples: [ { id: ${id} } ]`,
      'steps: { a: { image: x, command: [true] } }',
    ]);
    const v = await strand('validate', file);
    expect(v.code).toBe(2);
    expect(v.err).toContain(
      `${file}:2:18 samples[0].id: sample id "${id.slice(0, 40)}…" is 256 bytes; it names a directory of the store, and a file or directory name has at most 255 (NAME_MAX) (use a shorter sample id)`,
    );
    await refusedByRun(file, home);
  });

  it('a store given with --store that makes a path too long is refused by run; validate’s default store is fine', async () => {
    const id = `s${'x'.repeat(199)}`;
    const { dir, file, home } = inlinePipeline([
      'name: paths',
      'samples: samples.csv',
      'steps: { a: { image: x, command: [true], outputs: { OUT: out/result.txt } } }',
    ]);
    writeFileSync(join(dir, 'samples.csv'), `id\nshort\n${id}\n`);
    expect((await strand('validate', file)).code).toBe(0);
    const store = join(dir, ...Array.from({ length: 19 }, () => 'd'.repeat(200)));
    const err = await refusedByRun(file, home, '--store', store);
    expect(err).toContain(
      `${join(dir, 'samples.csv')}:3:1 samples[1].id: sample "${id}": the store path of step a's output out/result.txt would be`,
    );
    expect(err).toMatch(
      /Linux paths have at most 4096 \(PATH_MAX\) \(use a shorter sample id, or a store with a shorter path\)/,
    );
    expect(err).not.toContain('sample "short"');
  });
});

describe('inputs that are not files of data', () => {
  it('devices, FIFOs, sockets, /proc and symlinks into /dev in a sheet, at each cell', async () => {
    const { dir, file, home } = inlinePipeline(['name: special', 'samples: samples.csv', ...COUNT]);
    execFileSync('mkfifo', [join(dir, 'reads.fifo')]);
    symlinkSync('/dev/zero', join(dir, 'zero.fq'));
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(join(dir, 'reads.sock'), resolve));
    try {
      writeFileSync(
        join(dir, 'samples.csv'),
        'id,reads\nzero,/dev/zero\nfifo,reads.fifo\nlink,zero.fq\nproc,/proc/self/status\nsock,reads.sock\nsys,/sys/kernel\n',
      );
      const v = await strand('validate', file);
      expect(v.code).toBe(2);
      const sheet = join(dir, 'samples.csv');
      for (const line of [
        `${sheet}:2:6 samples[0].reads: sample "zero": "/dev/zero" is under /dev, not a file of data (inputs are regular files or directories; Strand reads each whole to fingerprint it)`,
        `${sheet}:3:6 samples[1].reads: sample "fifo": "reads.fifo" is a FIFO (named pipe), not a file of data`,
        `${sheet}:4:6 samples[2].reads: sample "link": "zero.fq" is a character device, not a file of data`,
        `${sheet}:5:6 samples[3].reads: sample "proc": "/proc/self/status" is under /proc, not a file of data`,
        `${sheet}:6:6 samples[4].reads: sample "sock": "reads.sock" is a socket, not a file of data`,
        `${sheet}:7:5 samples[5].reads: sample "sys": "/sys/kernel" is under /sys, not a file of data`,
      ])
        expect(v.err).toContain(line);
      await refusedByRun(file, home);
    } finally {
      server.close();
    }
  });

  it('a parameter default and a --param value, at the parameter and at the option', async () => {
    const { dir, file, home } = inlinePipeline([
      'name: special-params',
      'params:',
      '  REF: /dev/urandom',
      '  IN: ~',
      'steps: { a: { image: x, command: [cat, $REF, $IN], aggregate: true } }',
    ]);
    execFileSync('mkfifo', [join(dir, 'in.fifo')]);
    const err = await refusedByRun(file, home, '--param', `IN=${join(dir, 'in.fifo')}`);
    expect(err).toContain(
      `${file}:3:8 params.REF: "/dev/urandom" is under /dev, not a file of data (inputs are regular files or directories; Strand reads each whole to fingerprint it)`,
    );
    expect(err).toContain(
      `  --param IN: "${join(dir, 'in.fifo')}" is a FIFO (named pipe), not a file of data`,
    );
    const v = await strand('validate', file, '--param', 'IN=/proc/cpuinfo');
    expect(v.code).toBe(2);
    expect(v.err).toContain('--param IN: "/proc/cpuinfo" is under /proc, not a file of data');
    // Nothing else was made beside the pipeline.
    expect(readdirSync(dir).sort()).toEqual(['in.fifo', 'pipeline.yaml']);
  });
});
