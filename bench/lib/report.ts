/**
 * One line of the results table: a qrun figure (median over repetitions), optionally a reference's
 * figure and their ratio, and the target it is held to.
 */
export interface ResultRow {
  scenario: string;
  measure: string;
  unit: 's' | 'ms' | 'req/s' | 'queries/s' | 'MB';
  qrun: number;
  reference?: { name: string; value: number };
  /** qrun ÷ reference. */
  ratio?: number;
  /** Human form of the target, e.g. "≤ 1.5×". */
  target?: string;
  /** undefined when the row has no target. */
  met?: boolean;
  /** Every repetition's figure, for the spread. */
  samples: { qrun: number[]; reference?: number[] };
}

export interface Target {
  text: string;
  check: (row: ResultRow) => boolean;
}

export const ratioAtMost = (limit: number): Target => ({
  text: `ratio ≤ ${limit}`,
  check: (row) => row.ratio !== undefined && row.ratio <= limit,
});

export const ratioAtLeast = (limit: number): Target => ({
  text: `ratio ≥ ${limit}`,
  check: (row) => row.ratio !== undefined && row.ratio >= limit,
});

export const valueAtMost = (limit: number, unit: string): Target => ({
  text: `≤ ${limit} ${unit}`,
  check: (row) => row.qrun <= limit,
});

export function makeRow(
  fields: Omit<ResultRow, 'ratio' | 'met' | 'target'> & { target?: Target },
): ResultRow {
  const { target, ...rest } = fields;
  const row: ResultRow = { ...rest };
  if (rest.reference) row.ratio = rest.qrun / rest.reference.value;
  if (target) {
    row.target = target.text;
    row.met = target.check(row);
  }
  return row;
}

function formatValue(value: number, unit: ResultRow['unit']): string {
  switch (unit) {
    case 's':
      return `${value.toFixed(value < 10 ? 3 : 2)} s`;
    case 'ms':
      return `${value.toFixed(value < 10 ? 2 : 1)} ms`;
    case 'req/s':
      return `${Math.round(value).toLocaleString('en-US')} req/s`;
    case 'queries/s':
      return `${value.toFixed(1)} queries/s`;
    case 'MB':
      return `${value.toFixed(1)} MB`;
  }
}

/** The results as a Markdown table (it goes into docs/PERFORMANCE.md as printed). */
export function markdownTable(rows: readonly ResultRow[]): string {
  const lines = [
    '| scenario | measure | qrun (median) | qrun runs, min–max | reference | reference figure | ratio | target | met |',
    '| --- | --- | --: | --: | --- | --: | --: | --- | :-: |',
  ];
  for (const row of rows) {
    const runs = row.samples.qrun;
    lines.push(
      `| ${[
        row.scenario,
        row.measure,
        formatValue(row.qrun, row.unit),
        // `3.10–3.40 s`: the unit once, after the upper bound.
        `${formatValue(Math.min(...runs), row.unit).replace(/ \S+$/, '')}–${formatValue(Math.max(...runs), row.unit)}`,
        row.reference?.name ?? '',
        row.reference ? formatValue(row.reference.value, row.unit) : '',
        row.ratio === undefined ? '' : `${row.ratio.toFixed(2)}×`,
        row.target ?? '',
        row.met === undefined ? '' : row.met ? 'yes' : '**no**',
      ].join(' | ')} |`,
    );
  }
  return lines.join('\n');
}
