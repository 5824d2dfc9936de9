/**
 * Colour follows the terminal and NO_COLOR: on a real pseudo-terminal (`script`) statuses and
 * the prefix of errors are coloured, without moving a column; with NO_COLOR set, or piped, the
 * output is plain text, byte for byte what a script reads.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { exampleWorkspace, strand } from './cli.js';

const ESC = String.fromCharCode(27);
const cli = `${process.execPath} --import tsx ${join(process.cwd(), 'test/pipeline/strand-cli.mts')}`;

/** The environment of a user who asked for nothing: no NO_COLOR, no FORCE_COLOR. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm', ...extra };
  if (!('NO_COLOR' in extra)) delete env.NO_COLOR;
  if (!('FORCE_COLOR' in extra)) delete env.FORCE_COLOR;
  return env;
}

/** What `strand args` shows on a terminal (stdout and stderr both go to it), lines ending \n. */
function onTerminal(args: string, extra: Record<string, string> = {}): string {
  const r = spawnSync('script', ['-qec', `${cli} ${args}`, '/dev/null'], {
    encoding: 'utf8',
    env: userEnv(extra),
  });
  return r.stdout.replace(/\r\n/g, '\n');
}

/** What `strand args` writes to a pipe. */
function piped(args: string[], extra: Record<string, string> = {}) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'test/pipeline/strand-cli.mts', ...args], {
    encoding: 'utf8',
    env: userEnv(extra),
  });
}

describe('colour', () => {
  const w = exampleWorkspace('word-count');
  let ls: string;
  beforeAll(async () => {
    // One run whose `empty` sample fails, and a state machine that succeeds.
    expect((await strand('run', w.file, '--home', w.home, '--name', 'wc')).code).toBe(1);
    const ok = join(w.dir, 'ok.asl.json');
    writeFileSync(ok, JSON.stringify({ StartAt: 'P', States: { P: { Type: 'Pass', End: true } } }));
    const started = await strand('start', ok, '--home', w.home, '--name', 'ok', '--quiet');
    expect(started.code).toBe(0);
    ls = `executions ls --home ${w.home}`;
  });

  it('on a terminal: statuses coloured, columns where they are without colour', () => {
    const coloured = onTerminal(ls);
    expect(coloured).toContain(`${ESC}[32mSUCCEEDED${ESC}[39m`);
    expect(coloured).toContain(`${ESC}[31mFAILED${ESC}[39m`);
    const plain = onTerminal(ls, { NO_COLOR: '1' });
    expect(plain).toMatch(/^NAME +STATUS +STARTED +SECONDS\n/);
    expect(stripVTControlCharacters(coloured)).toBe(plain);

    const results = `results --home ${w.home} --execution wc --step words --columns sample,status,exitCode`;
    const table = onTerminal(results);
    expect(table).toContain(`${ESC}[32mSUCCEEDED${ESC}[39m`);
    expect(table).toContain(`${ESC}[31mFAILED${ESC}[39m`);
    expect(stripVTControlCharacters(table)).toBe(onTerminal(results, { NO_COLOR: '1' }));
  });

  it('NO_COLOR on a terminal: not one escape sequence, even with FORCE_COLOR', () => {
    const cases: Record<string, string>[] = [
      { NO_COLOR: '1' },
      { NO_COLOR: '1', FORCE_COLOR: '1' },
    ];
    for (const extra of cases) {
      const out = onTerminal(`${ls}; ${cli} executions describe nope --home ${w.home}`, extra);
      expect(out).toContain('FAILED');
      expect(out).toContain('strand: no execution named "nope"');
      expect(out).not.toContain(ESC);
    }
  });

  it('an error on a terminal: its prefix in red', () => {
    const out = onTerminal(`executions describe nope --home ${w.home}`);
    expect(out).toContain(`${ESC}[31mstrand:${ESC}[39m no execution named "nope"`);
    expect(onTerminal('executions bogus')).toContain(`${ESC}[31merror:${ESC}[39m`);
  });

  it('piped: byte for byte the plain text; FORCE_COLOR colours it all the same', async () => {
    const args = ['executions', 'ls', '--home', w.home];
    const r = piped(args);
    expect(r.status).toBe(0);
    expect(r.stdout).not.toContain(ESC);
    expect(r.stdout).toBe((await strand(...args)).out);
    const forced = piped(args, { FORCE_COLOR: '1' });
    expect(forced.stdout).toContain(`${ESC}[31mFAILED${ESC}[39m`);
    expect(stripVTControlCharacters(forced.stdout)).toBe(r.stdout);
  });
});
