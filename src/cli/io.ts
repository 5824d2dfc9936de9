/** Where the CLI writes: injectable so tests capture it. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  isTTY: boolean;
  /**
   * Whether what goes to `out` and to `err` may be coloured (see colorWanted); without it,
   * neither is: tests and scripts get plain text.
   */
  color?: { out: boolean; err: boolean };
  /**
   * On a terminal: shows `text` in place of what it showed last (a live table), and the
   * terminal's size then. Without it a live table is drawn through `err`.
   */
  live?: {
    render: (text: string) => void;
    /** Leaves what was rendered last on the screen; what follows goes below it. */
    done: () => void;
    columns: () => number;
    rows: () => number;
  };
}
