/**
 * The lint rules that guard the module structure really fire: import-x resolves the `./x.js`
 * specifiers of TypeScript sources to their `.ts` files, so a dependency cycle fails the lint
 * (without the TypeScript resolver, no-cycle passed every cycle, such as one the CLI had).
 */
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

describe('lint', () => {
  it('import-x/no-cycle fails on a deliberate cycle (test/fixtures/lint/cycle-*.ts)', async () => {
    const eslint = new ESLint({ ignore: false });
    const results = await eslint.lintFiles(['test/fixtures/lint/cycle-a.ts']);
    const rules = results.flatMap((r) => r.messages.map((m) => m.ruleId));
    expect(rules).toContain('import-x/no-cycle');
  }, 60_000);
});
