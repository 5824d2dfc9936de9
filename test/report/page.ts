/** A `strand report` page parsed as a browser would (parse5), and what the tests look up in it. */
import { parse } from 'parse5';
import type { ReportData } from '../../src/report/html.js';

/** An element or text of the parsed page (the parse5 tree, as far as the tests read it). */
export interface PageNode {
  nodeName: string;
  tagName?: string;
  attrs?: { name: string; value: string }[];
  childNodes?: PageNode[];
  value?: string;
  content?: PageNode;
}

export function attr(node: PageNode, name: string): string | undefined {
  return node.attrs?.find((a) => a.name === name)?.value;
}

/** Every element below `node` (depth first) that `match` accepts. */
export function findAll(node: PageNode, match: (n: PageNode) => boolean): PageNode[] {
  const found: PageNode[] = [];
  const walk = (n: PageNode): void => {
    if (n.tagName !== undefined && match(n)) found.push(n);
    for (const c of n.childNodes ?? []) walk(c);
  };
  walk(node);
  return found;
}

export function byId(node: PageNode, id: string): PageNode {
  const [found] = findAll(node, (n) => attr(n, 'id') === id);
  if (!found) throw new Error(`no element #${id} in the page`);
  return found;
}

export const hasClass = (n: PageNode, cls: string): boolean =>
  (attr(n, 'class') ?? '').split(/\s+/).includes(cls);

/** The text of `node` and everything below it, as the page shows it (entities decoded). */
export function text(node: PageNode): string {
  if (node.nodeName === '#text') return node.value ?? '';
  return (node.childNodes ?? []).map(text).join('');
}

/** The page's tree, its data island, and what the tests count in it. */
export function parsePage(html: string): {
  doc: PageNode;
  data: ReportData;
  /** The timeline's bars (`g.bar`) of one grouping. */
  bars: (by: 'sample' | 'step') => PageNode[];
  /** The attempts table's rows: cells' text by column header. */
  attemptRows: () => Record<string, string>[];
  /** The per-step table's rows: cells' text by column header. */
  stepRows: () => Record<string, string>[];
} {
  const doc = parse(html) as unknown as PageNode;
  const island = byId(doc, 'strand-report-data');
  const data = JSON.parse(text(island)) as ReportData;
  const rows = (table: PageNode) => {
    const heads = findAll(byId(doc, attr(table, 'id')!), (n) => n.tagName === 'thead').flatMap(
      (h) => findAll(h, (n) => n.tagName === 'th').map(text),
    );
    const [body] = findAll(table, (n) => n.tagName === 'tbody');
    return findAll(body, (n) => n.tagName === 'tr').map((tr) => {
      const cells = (tr.childNodes ?? []).filter((c) => c.tagName === 'td' || c.tagName === 'th');
      return Object.fromEntries(cells.map((c, i) => [heads[i] ?? String(i), text(c)]));
    });
  };
  return {
    doc,
    data,
    bars: (by) => {
      const [box] = findAll(doc, (n) => hasClass(n, 'timeline') && hasClass(n, `by-${by}`));
      return findAll(box, (n) => n.tagName === 'g' && hasClass(n, 'bar'));
    },
    attemptRows: () => rows(byId(doc, 'attempt-table')),
    stepRows: () => rows(byId(doc, 'steps')),
  };
}

/** The tooltip of a timeline bar (its <title>). */
export function tooltip(bar: PageNode): string {
  const [title] = findAll(bar, (n) => n.tagName === 'title');
  return title ? text(title) : '';
}
