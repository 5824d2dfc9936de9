/** How `$NAME` and `${NAME}` are read in command items and env values. */

/** A piece of a command item or env value: literal text, or a reference to a variable. */
export type TemplatePart = { text: string } | { var: string };

const LOOSE_NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/**
 * Splits a command item or env value into literal text and variable references: `$NAME` and
 * `${NAME}` refer to variables, `$$` is a literal `$`, and a `$` that cannot start a
 * reference (`$1`, `$(`) is kept as written. Nothing else is interpreted.
 */
export function templateParts(text: string): {
  parts: TemplatePart[];
  problem?: { message: string; hint: string };
} {
  const parts: TemplatePart[] = [];
  let literal = '';
  const flush = (): void => {
    if (literal !== '') parts.push({ text: literal });
    literal = '';
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch !== '$') {
      literal += ch;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      literal += '$';
      i++;
    } else if (next === '{') {
      const close = text.indexOf('}', i + 2);
      const name = close < 0 ? '' : text.slice(i + 2, close);
      if (close < 0 || !new RegExp(`${LOOSE_NAME.source}$`).test(name)) {
        const what = close < 0 ? '"${" is not closed' : `"\${${name}}" is not a variable reference`;
        return { parts, problem: { message: what, hint: 'write ${NAME}, or $$ for a literal $' } };
      }
      flush();
      parts.push({ var: name });
      i = close;
    } else {
      const m = LOOSE_NAME.exec(text.slice(i + 1));
      if (m) {
        flush();
        parts.push({ var: m[0] });
        i += m[0].length;
      } else {
        literal += '$';
      }
    }
  }
  flush();
  return { parts };
}
