/**
 * `strand completion bash|zsh`: a completion script made from the commands and options this
 * build has (so it never falls behind them). zsh loads the bash one through bashcompinit.
 */
import type { Command } from 'commander';
import { EXIT_OK, InputError } from './errors.js';
import type { Io } from './io.js';

/** Every command path (`''`, `batch`, `batch ls`) with its subcommands and options. */
function table(root: Command): { path: string; subs: string[]; options: string[] }[] {
  const rows: { path: string; subs: string[]; options: string[] }[] = [];
  const walk = (command: Command, path: string): void => {
    const subs = command.commands.map((c) => c.name()).filter((n) => n !== 'help');
    const options = command.options.flatMap((o) => (o.long ? [o.long] : []));
    rows.push({ path, subs, options: [...options, '--help'] });
    for (const c of command.commands) walk(c, path ? `${path} ${c.name()}` : c.name());
  };
  walk(root, '');
  return rows;
}

/** A bash word list, quoted for a `case` arm (names and options never hold quotes). */
const words = (list: string[]): string => `'${list.join(' ')}'`;

export function bashCompletion(root: Command): string {
  const rows = table(root);
  const arms = (pick: (r: (typeof rows)[number]) => string[]) =>
    rows.map((r) => `    ${JSON.stringify(r.path)}) echo ${words(pick(r))} ;;`).join('\n');
  return `# strand completion for bash (and zsh through bashcompinit): strand completion bash
_strand_subs() {
  case "$1" in
${arms((r) => r.subs)}
  esac
}
_strand_opts() {
  case "$1" in
${arms((r) => r.options)}
  esac
}
_strand() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" i w
  # The command path so far: each word that is a subcommand of the path before it.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if [[ " $(_strand_subs "$path") " == *" $w "* ]]; then path="\${path:+$path }$w"; fi
  done
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(_strand_opts "$path")" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(_strand_subs "$path")" -- "$cur"))
  fi
}
complete -o default -o bashdefault -F _strand strand
`;
}

export function registerCompletion(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
): void {
  program
    .command('completion')
    .description(
      'print a shell completion script for commands and options:\n' +
        '  bash: source <(strand completion bash)     (or save it under /etc/bash_completion.d/)\n' +
        '  zsh:  source <(strand completion zsh)      (in ~/.zshrc)',
    )
    .argument('<shell>', 'bash or zsh')
    .action((shell: string) => {
      if (shell !== 'bash' && shell !== 'zsh')
        throw new InputError(`completion ${shell}: give bash or zsh`);
      const script = bashCompletion(program);
      io.out(
        shell === 'zsh'
          ? `# strand completion for zsh\nautoload -U +X bashcompinit && bashcompinit\n${script}`
          : script,
      );
      setExit(EXIT_OK);
    });
}
