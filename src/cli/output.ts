/** What the CLI writes: data on stdout (a table for people, JSON for scripts), messages on stderr. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** stdout / stderr are terminals. */
  outTty: boolean;
  errTty: boolean;
  /** Colour is used only on a terminal, and never with NO_COLOR set. */
  color: boolean;
  /** Terminal width of stderr, for the progress bar. */
  columns: number;
}

export function processIo(): Io {
  const color = !process.env.NO_COLOR && process.env.TERM !== 'dumb';
  return {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    outTty: !!process.stdout.isTTY,
    errTty: !!process.stderr.isTTY,
    color,
    columns: process.stderr.columns || 80,
  };
}

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, dim: 2, bold: 1 } as const;
export type Style = keyof typeof CODES;

export function paint(enabled: boolean, style: Style, text: string): string {
  return enabled ? `\x1b[${CODES[style]}m${text}\x1b[0m` : text;
}

export const statusStyle = (status: string): Style =>
  status === 'success'
    ? 'green'
    : status === 'failed'
      ? 'red'
      : status === 'cancelled'
        ? 'yellow'
        : status === 'running'
          ? 'blue'
          : 'dim';

/** Without ANSI escapes, for measuring width. */
// eslint-disable-next-line no-control-regex -- matching the escapes is the point
export const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

/** Control characters in data are shown escaped: a title must not move the cursor or colour the terminal. */
export function safe(value: unknown): string {
  if (value === null || value === undefined) return '';
  const s = typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return s.replace(/[\x00-\x1f\x7f]/g, (c) =>
    c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

export function truncate(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, Math.max(0, max - 1)) + '…';
}

/** Columns padded to their widest cell; the last column is not padded. Cells are already made safe. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => plain(r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i]! - plain(c).length)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export const json = (value: unknown) => JSON.stringify(value, null, 2) + '\n';

/** "2026-12-02T19:51:54.123Z" -> "2026-12-02 19:51:54Z"; empty for null. */
export function shortTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? iso
    : d
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');
}
