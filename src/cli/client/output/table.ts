import pc from 'picocolors';
import stringWidth from 'string-width';
import { isNumericColumn, valueText, type Column, type Row } from './values.js';

export interface TableOptions {
  /** Fit the table into this many terminal columns (cells cut with …); undefined: never cut. */
  maxWidth?: number;
  /** Colour (dimmed NULL, bold header): picocolors decides from NO_COLOR / FORCE_COLOR / the terminal. */
  color?: boolean;
}

interface Cell {
  text: string;
  isNull: boolean;
}

const NULL_TEXT = 'NULL';
const MIN_WIDTH = 4;
const segmenter = new Intl.Segmenter();

/** Control characters would break the layout: newlines and tabs are shown escaped. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  return text.replace(/[\r\n\t\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

/** Cuts `text` to at most `width` terminal columns, ending with … when cut. */
export function truncate(text: string, width: number): string {
  if (stringWidth(text) <= width) return text;
  let out = '';
  let used = 0;
  for (const { segment } of segmenter.segment(text)) {
    const w = stringWidth(segment);
    if (used + w > width - 1) break;
    out += segment;
    used += w;
  }
  return `${out}…`;
}

/** Shrinks the widest columns until the whole line fits in maxWidth (or every column is at MIN_WIDTH). */
function fit(widths: number[], maxWidth: number): number[] {
  const fitted = [...widths];
  // Every column takes its width plus " | " (3) between columns and one space at each end.
  const total = () => fitted.reduce((a, b) => a + b, 0) + 3 * (fitted.length - 1) + 2;
  while (total() > maxWidth) {
    let widest = 0;
    for (let i = 1; i < fitted.length; i++) if (fitted[i]! > fitted[widest]!) widest = i;
    if (fitted[widest]! <= MIN_WIDTH) break;
    fitted[widest] = Math.max(MIN_WIDTH, fitted[widest]! - Math.max(1, total() - maxWidth));
  }
  return fitted;
}

function pad(text: string, width: number, right: boolean): string {
  const gap = ' '.repeat(Math.max(0, width - stringWidth(text)));
  return right ? gap + text : text + gap;
}

/**
 * An aligned table in the style of psql: a header, a rule, one line per row; numbers right-aligned,
 * NULL shown as a dimmed `NULL` (plain `NULL` without colour). No trailing spaces.
 */
export function renderTable(
  columns: readonly Column[],
  rows: readonly Row[],
  options: TableOptions = {},
): string {
  const color = options.color ?? false;
  const numeric = columns.map((c) => isNumericColumn(c, rows));
  const headers = columns.map((c) => printable(c.name));
  const cells: Cell[][] = rows.map((row) =>
    columns.map((c) => {
      const text = valueText(row[c.name]);
      return text === null ? { text: NULL_TEXT, isNull: true } : { text: printable(text), isNull: false };
    }),
  );
  let widths = headers.map((h, i) =>
    cells.reduce((w, line) => Math.max(w, stringWidth(line[i]!.text)), stringWidth(h)),
  );
  if (options.maxWidth !== undefined && columns.length > 0) widths = fit(widths, options.maxWidth);

  const last = columns.length - 1;
  // The last column is not padded on the right, so no line ends in spaces (even inside colour codes).
  const place = (text: string, i: number, right: boolean) =>
    right || i < last ? pad(text, widths[i]!, right) : text;
  const lines: string[] = [];
  const join = (parts: string[]) => ` ${parts.join(' | ')}`.trimEnd();
  lines.push(
    join(
      headers.map((h, i) => {
        const text = place(truncate(h, widths[i]!), i, false);
        return color ? pc.bold(text) : text;
      }),
    ),
  );
  lines.push(widths.map((w) => '-'.repeat(w + 2)).join('+'));
  for (const line of cells) {
    lines.push(
      join(
        line.map((cell, i) => {
          const text = place(truncate(cell.text, widths[i]!), i, numeric[i]!);
          return cell.isNull && color ? pc.dim(text) : text;
        }),
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}
