/**
 * Problems found while loading a pipeline, each tied to the file, line and column it concerns,
 * and the one error type the loader throws.
 */
import { isAbsolute, relative } from 'node:path';

/** One thing wrong with a pipeline, its sample sheet or the options it was loaded with. */
export interface PipelineProblem {
  /** The file as shown to the user; '' for a command-line option. */
  file: string;
  /** 1-based; 0 when there is no position (a command-line option, an unreadable file). */
  line: number;
  column: number;
  /** Where in the document: `steps.assemble.memory`, `samples[2].id`, `--param`. */
  path: string;
  message: string;
  /** What to write instead, shown in parentheses after the message. */
  hint?: string;
}

/**
 * Formats a problem as one line:
 * `pipeline.yaml:14:9 steps.assemble.memory: "4 GB" is not a size (use 4GiB or 4096MiB)`.
 */
export function formatPipelineProblem(p: PipelineProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.column}` : p.file;
  const what = p.hint === undefined ? p.message : `${p.message} (${p.hint})`;
  const head = [where, p.path].filter((s) => s !== '').join(' ');
  return head === '' ? what : `${head}: ${what}`;
}

/** A pipeline that cannot be loaded; `problems` lists every reason, in file and line order. */
export class PipelineError extends Error {
  readonly code = 'PIPELINE_INVALID';
  constructor(readonly problems: PipelineProblem[]) {
    // The first line is the headline the CLI shows; the rest are the other problems.
    super(problems.map(formatPipelineProblem).join('\n'));
    this.name = 'PipelineError';
  }
}

/**
 * Sorts problems for reading: command-line options first, then the pipeline file, then other
 * files (sample sheets), each by line and column.
 */
export function sortProblems(problems: PipelineProblem[], mainFile: string): PipelineProblem[] {
  const rank = (p: PipelineProblem): number => (p.file === '' ? 0 : p.file === mainFile ? 1 : 2);
  return [...problems].sort(
    (a, b) =>
      rank(a) - rank(b) || a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column,
  );
}

/** A path as people want to read it: relative to the working directory when inside it. */
export function shownPath(absolute: string): string {
  const rel = relative(process.cwd(), absolute);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? absolute : rel;
}
