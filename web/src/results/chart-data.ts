import { toNumber } from '../api/exact-json';
import type { ColumnSchema, Row } from '../api/types';
import { isNumericType, isTemporalType } from './cells';

/** The chart reads at most this many rows (from the start of the result). */
export const CHART_ROW_LIMIT = 100_000;
/** Text columns kept as possible category axes. */
const MAX_TEXT_COLUMNS = 4;

export type ColumnRole = 'time' | 'number' | 'text';

export interface ChartColumn {
  name: string;
  type: string;
  role: ColumnRole;
  /** time: seconds since the epoch; number: the value; NaN where NULL or not a number. */
  numbers?: Float64Array;
  /** text columns: the values as strings (null for NULL). */
  texts?: (string | null)[];
}

export interface ChartData {
  columns: ChartColumn[];
  rows: number;
}

export function columnRole(type: string): ColumnRole {
  if (isTemporalType(type)) return 'time';
  if (isNumericType(type)) return 'number';
  return 'text';
}

/** Collects the chartable columns of up to `capacity` rows, page by page. */
export class ChartCollector {
  readonly columns: ChartColumn[];
  rows = 0;

  constructor(
    schema: ColumnSchema[],
    private readonly capacity: number,
  ) {
    let texts = 0;
    this.columns = [];
    for (const col of schema) {
      const role = columnRole(col.type);
      if (role === 'text') {
        if (texts++ >= MAX_TEXT_COLUMNS) continue;
        this.columns.push({ name: col.name, type: col.type, role, texts: [] });
      } else {
        this.columns.push({ name: col.name, type: col.type, role, numbers: new Float64Array(capacity) });
      }
    }
  }

  add(rows: Row[]): void {
    for (const row of rows) {
      if (this.rows >= this.capacity) return;
      const i = this.rows++;
      for (const col of this.columns) {
        const value = row[col.name];
        if (col.texts) col.texts.push(value === null || value === undefined ? null : textOf(value));
        else if (col.numbers) col.numbers[i] = col.role === 'time' ? toSeconds(value) : numberOf(value);
      }
    }
  }

  data(): ChartData {
    return {
      rows: this.rows,
      columns: this.columns.map((c) => (c.numbers ? { ...c, numbers: c.numbers.subarray(0, this.rows) } : c)),
    };
  }
}

function numberOf(value: unknown): number {
  if (value === null || value === undefined) return NaN;
  return toNumber(value);
}

function textOf(value: unknown): string {
  return typeof value === 'string' ? value : String(toNumber(value));
}

/** Dates and time stamps as qrun sends them ("2026-11-30", "2026-11-30T16:56:16.3Z", …) to seconds. */
function toSeconds(value: unknown): number {
  if (typeof value !== 'string') return NaN;
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00` : value.replace(' ', 'T'));
  return Number.isNaN(ms) ? NaN : ms / 1000;
}

/**
 * Default axes: a time column as x with the numeric columns as y; without one, the first numeric column
 * as x when there are other numeric columns, else the first text column (as categories). Up to four y.
 */
export function defaultAxes(columns: ChartColumn[]): { x: number; ys: number[] } {
  const numeric = columns.map((c, i) => (c.role === 'number' ? i : -1)).filter((i) => i >= 0);
  let x = columns.findIndex((c) => c.role === 'time');
  if (x < 0 && numeric.length >= 2) x = numeric[0]!;
  if (x < 0) x = columns.findIndex((c) => c.role === 'text');
  if (x < 0) x = 0;
  return { x, ys: numeric.filter((i) => i !== x).slice(0, 4) };
}

/** uPlot's aligned data: x ascending (rows with no x dropped), one array per y column, null for gaps. */
export function alignedData(
  data: ChartData,
  x: number,
  ys: number[],
): { xs: number[]; series: (number | null)[][]; labels: string[] | null } {
  const xCol = data.columns[x]!;
  const n = data.rows;
  let xs: number[];
  let labels: string[] | null = null;
  let order: number[];
  if (xCol.texts) {
    labels = xCol.texts.map((t) => t ?? 'NULL');
    xs = labels.map((_, i) => i);
    order = xs.slice();
  } else {
    const values = xCol.numbers!;
    order = [];
    for (let i = 0; i < n; i++) if (!Number.isNaN(values[i]!)) order.push(i);
    let sorted = true;
    for (let k = 1; k < order.length; k++) {
      if (values[order[k]!]! < values[order[k - 1]!]!) {
        sorted = false;
        break;
      }
    }
    if (!sorted) order.sort((a, b) => values[a]! - values[b]!);
    xs = order.map((i) => values[i]!);
  }
  const series = ys.map((y) => {
    const col = data.columns[y]!;
    return order.map((i) => {
      const v = col.numbers ? col.numbers[i]! : NaN;
      return Number.isNaN(v) ? null : v;
    });
  });
  return { xs, series, labels };
}
