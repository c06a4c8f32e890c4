import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DOCUMENTED_ONLY, settingEntries, type Setting } from './settings.js';
import { formatBytes } from '../core/bytes.js';

/**
 * The settings table of docs/OPERATIONS.md, written from ConfigSchema (settings.ts) between two marker
 * lines; the prose around it is the file's own. `npm run docs:config` rewrites it, and
 * test/unit/config-docs.test.ts fails while the file holds anything else.
 */
export const TABLE_START =
  '<!-- settings:start (generated from src/config/settings.ts by `npm run docs:config`: edit there) -->';
export const TABLE_END = '<!-- settings:end -->';
export const OPERATIONS_MD = fileURLToPath(new URL('../../docs/OPERATIONS.md', import.meta.url));

type Row = [variable: string, shownDefault: string, meaning: string];

/** One row per setting (and one per older alias), plus the rows of variables qrun only documents. */
export function settingsRows(): Row[] {
  const rows: Row[] = [];
  for (const [, setting] of settingEntries()) {
    const variable = `\`${setting.env}\`${setting.secret === true ? ' / `_FILE`' : ''}`;
    rows.push([variable, shownDefault(setting), setting.description]);
    if (setting.alias !== undefined) {
      rows.push([
        `\`${setting.alias}\``,
        '(unset)',
        `older name of \`${setting.env}\`, still read: its entries are added to that list`,
      ]);
    }
    for (const extra of DOCUMENTED_ONLY.filter((row) => row.after === setting.env)) {
      rows.push([extra.variable, extra.docDefault, extra.description]);
    }
  }
  return rows;
}

/** The default as a reader wants it: `docDefault` when given, sizes in KiB/MiB/GiB, text in backticks. */
function shownDefault(setting: Setting): string {
  if (setting.docDefault !== undefined) return setting.docDefault;
  if (setting.defaultFrom !== undefined) {
    throw new Error(`${setting.env}: a computed default needs a docDefault for the docs table`);
  }
  const value = setting.default;
  if (value === undefined) return '(unset)';
  if (Array.isArray(value) && value.length === 0) return '(none)';
  if (typeof value === 'number') return setting.env.endsWith('_BYTES') ? formatBytes(value) : String(value);
  return `\`${String(value)}\``;
}

/** The table as Markdown, its columns padded the way Prettier pads them (so `npm run format` leaves it be). */
export function settingsTable(): string {
  const rows: Row[] = [['variable', 'default', 'meaning'], ...settingsRows()].map(
    (row) => row.map((cell) => cell.replaceAll('|', '\\|')) as Row,
  );
  const widths = [0, 1, 2].map((i) => Math.max(3, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
  const [header, ...body] = rows;
  return [line(header!), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** `doc` with the text between the markers replaced by the current table. */
export function withSettingsTable(doc: string): string {
  const start = doc.indexOf(TABLE_START);
  const end = doc.indexOf(TABLE_END);
  if (start === -1 || end < start) {
    throw new Error(
      `docs/OPERATIONS.md: put the lines ${TABLE_START} and ${TABLE_END} where the table belongs`,
    );
  }
  return `${doc.slice(0, start)}${TABLE_START}\n\n${settingsTable()}\n\n${doc.slice(end)}`;
}

// `tsx src/config/docs.ts` (npm run docs:config): rewrite the table in place.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const before = readFileSync(OPERATIONS_MD, 'utf8');
  const after = withSettingsTable(before);
  if (after !== before) writeFileSync(OPERATIONS_MD, after);
  process.stdout.write(
    `${OPERATIONS_MD}: settings table ${after === before ? 'already current' : 'rewritten'}\n`,
  );
}
