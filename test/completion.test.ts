/**
 * `strand completion bash|zsh`, sourced into a real bash: subcommands, nested subcommands and
 * options complete; a word that is not a command leaves files to bash.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { strand } from './pipeline/cli.js';

/** What bash completes for the words typed so far (the last one is completed). */
function complete(script: string, typed: string[]): string[] {
  const file = join(mkdtempSync(join(tmpdir(), 'strand-completion-')), 'strand.bash');
  writeFileSync(file, script);
  const words = ['strand', ...typed].map((w) => `'${w}'`).join(' ');
  const out = execFileSync(
    'bash',
    [
      '-c',
      `source "$0"; COMP_WORDS=(${words}); COMP_CWORD=${typed.length}; _strand; printf '%s\\n' "\${COMPREPLY[@]}"`,
      file,
    ],
    { encoding: 'utf8' },
  );
  return out.split('\n').filter(Boolean).sort();
}

describe('strand completion', () => {
  it('bash: commands, nested commands and options complete', async () => {
    const r = await strand('completion', 'bash');
    expect(r.code).toBe(0);
    expect(complete(r.out, ['ba'])).toEqual(['batch']);
    expect(complete(r.out, ['batch', 'l'])).toEqual(['logs', 'ls']);
    expect(complete(r.out, ['run', 'pipeline.yaml', '--sk'])).toEqual(['--skip-missing']);
    expect(complete(r.out, ['images', 'build', '--fo'])).toEqual(['--force']);
    expect(complete(r.out, ['re'])).toEqual(['redrive', 'report', 'results', 'resume']);
  });

  it('zsh loads the same script through bashcompinit; another shell is exit 2', async () => {
    const zsh = await strand('completion', 'zsh');
    expect(zsh.out).toMatch(
      /^# strand completion for zsh\nautoload -U \+X bashcompinit && bashcompinit\n/,
    );
    expect(zsh.out).toContain('complete -o default -o bashdefault -F _strand strand');
    const fish = await strand('completion', 'fish');
    expect(fish.code).toBe(2);
    expect(fish.err).toContain('completion fish: give bash or zsh');
  });
});
