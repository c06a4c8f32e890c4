import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { explain } from '../api/client';
import { formatCount } from '../ui/format';
import { alignedData, CHART_ROW_LIMIT, ChartCollector, defaultAxes, type ChartData } from './chart-data';
import type { ResultPages } from './result-pages';

type Kind = 'line' | 'bar' | 'scatter';

/**
 * A chart of the result's first 100,000 rows, drawn with uPlot (canvas): line, bar or scatter; one x
 * column and one or more y columns, defaulting to a time column against the numeric ones.
 */
export function ChartView({ pages }: { pages: ResultPages }) {
  const [data, setData] = useState<ChartData | null>(null);
  const [read, setRead] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const [kind, setKind] = useState<Kind>('line');
  const [x, setX] = useState(0);
  const [ys, setYs] = useState<number[]>([]);
  const limit = Math.min(pages.total, CHART_ROW_LIMIT);

  useEffect(() => {
    const controller = new AbortController();
    const collector = new ChartCollector(pages.schema, limit);
    setData(null);
    setError(null);
    setRead(0);
    pages
      .scan(
        limit,
        (rows) => {
          collector.add(rows);
          setRead(collector.rows);
        },
        controller.signal,
      )
      .then(() => {
        const d = collector.data();
        const axes = defaultAxes(d.columns);
        setX(axes.x);
        setYs(axes.ys);
        setData(d);
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setError(explain(err));
      });
    return () => controller.abort();
  }, [pages, limit]);

  if (error)
    return (
      <p class="error-box" role="alert">
        {error}
      </p>
    );
  if (!data) {
    return (
      <p class="muted" role="status">
        Reading rows for the chart… {formatCount(read)} of {formatCount(limit)}
      </p>
    );
  }
  if (data.columns.length === 0) return <p class="muted">This result has no columns to chart.</p>;

  const toggleY = (i: number, on: boolean) =>
    setYs((cur) =>
      on ? [...cur.filter((c) => c !== i), i].sort((a, b) => a - b) : cur.filter((c) => c !== i),
    );

  return (
    <div class="chart-view">
      <div class="chart-controls">
        <label>
          Chart type
          <select value={kind} onChange={(e) => setKind(e.currentTarget.value as Kind)}>
            <option value="line">Line</option>
            <option value="bar">Bar</option>
            <option value="scatter">Scatter</option>
          </select>
        </label>
        <label>
          X axis
          <select value={String(x)} onChange={(e) => setX(Number(e.currentTarget.value))}>
            {data.columns.map((c, i) => (
              <option value={String(i)} key={c.name}>
                {c.name} ({c.type || c.role})
              </option>
            ))}
          </select>
        </label>
        <fieldset class="y-columns">
          <legend>Y axis</legend>
          {data.columns.map((c, i) =>
            c.role === 'number' && i !== x ? (
              <label key={c.name} class="check">
                <input
                  type="checkbox"
                  checked={ys.includes(i)}
                  onChange={(e) => toggleY(i, e.currentTarget.checked)}
                />
                {c.name}
              </label>
            ) : null,
          )}
          {!data.columns.some((c, i) => c.role === 'number' && i !== x) && (
            <span class="muted">no numeric column besides the x axis</span>
          )}
        </fieldset>
      </div>
      {pages.total > data.rows && (
        <p class="muted" data-testid="chart-limit">
          The chart shows the first {formatCount(data.rows)} of {formatCount(pages.total)} rows.
        </p>
      )}
      {ys.length === 0 ? (
        <p class="muted">Pick one or more y columns.</p>
      ) : (
        <Plot data={data} kind={kind} x={x} ys={ys} />
      )}
    </div>
  );
}

function Plot({ data, kind, x, ys }: { data: ChartData; kind: Kind; x: number; ys: number[] }) {
  const box = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(0);
  const [dark, setDark] = useState(() => matchMedia('(prefers-color-scheme: dark)').matches);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const observer = new ResizeObserver(() => setWidth(el.clientWidth));
    observer.observe(el);
    setWidth(el.clientWidth);
    const media = matchMedia('(prefers-color-scheme: dark)');
    const onTheme = () => setDark(media.matches);
    media.addEventListener('change', onTheme);
    return () => {
      observer.disconnect();
      media.removeEventListener('change', onTheme);
    };
  }, []);

  const { xs, series, labels } = alignedData(data, x, ys);
  const xCol = data.columns[x]!;

  useEffect(() => {
    const el = box.current;
    if (!el || width === 0) return;
    const css = getComputedStyle(el);
    const color = (name: string) => css.getPropertyValue(name).trim() || '#888';
    const palette = [1, 2, 3, 4, 5, 6].map((i) => color(`--chart-${i}`));
    const axis = {
      stroke: color('--fg-muted'),
      grid: { stroke: color('--border'), width: 1 },
      ticks: { show: false },
    };
    const paths =
      kind === 'bar'
        ? uPlot.paths.bars!({ size: [0.7, 60], align: 0 })
        : kind === 'scatter'
          ? () => null
          : undefined;
    const plot = new uPlot(
      {
        width,
        height: width < 600 ? 260 : 360,
        scales: { x: { time: xCol.role === 'time' } },
        axes: [
          labels ? { ...axis, values: (_u, ticks) => ticks.map((t) => labels[t] ?? '') } : { ...axis },
          { ...axis },
        ],
        legend: { show: true },
        cursor: { drag: { x: true, y: false } },
        series: [
          { label: xCol.name },
          ...ys.map((y, k) => ({
            label: data.columns[y]!.name,
            stroke: palette[k % palette.length],
            fill: kind === 'bar' ? `${palette[k % palette.length]}99` : undefined,
            width: kind === 'scatter' ? 0 : 1.5,
            paths,
            points:
              kind === 'scatter'
                ? { show: true, size: 4, fill: palette[k % palette.length] }
                : { show: false },
          })),
        ],
      },
      [xs, ...series] as uPlot.AlignedData,
      el,
    );
    el.dataset.points = String(xs.length);
    el.dataset.series = String(ys.length);
    return () => plot.destroy();
  }, [data, kind, x, ys, width, dark]);

  const names = ys.map((y) => data.columns[y]!.name).join(', ');
  return (
    <div
      ref={box}
      class="chart"
      role="img"
      aria-label={`${kind} chart of ${names} by ${xCol.name}, ${formatCount(xs.length)} points`}
      data-testid="chart"
    />
  );
}
