import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { JSX, TargetedKeyboardEvent } from 'preact';
import { cellText, isNumericType, valueKind } from './cells';
import type { ResultPages } from './result-pages';
import { formatCount } from '../ui/format';

/** Fixed row height: the grid computes which rows are visible instead of measuring them. */
export const ROW_HEIGHT = 26;
const HEADER_HEIGHT = 42;
/** Browsers cap an element's height (Chrome near 33.5 million px): beyond this the scroll is scaled. */
const MAX_SCROLL_HEIGHT = 10_000_000;
/** Rows read beyond the visible ones, so a page is usually in memory before it scrolls into view. */
const OVERSCAN_ROWS = 300;
const MIN_WIDTH = 56;
const MAX_INITIAL_WIDTH = 420;

export interface ActiveCell {
  row: number;
  col: number;
}

interface Props {
  pages: ResultPages;
  active: ActiveCell | null;
  onActive: (cell: ActiveCell | null) => void;
  /** Enter on a cell (show its whole value). */
  onExpand: () => void;
  onCopyCell: () => void;
  onCopyRow: () => void;
}

/**
 * The result grid: only the rows and columns in view are in the DOM (plus a few), positioned inside a
 * spacer as tall as the whole result, so a million rows scroll like a hundred. Rows come from
 * ResultPages, which reads pages on demand. ARIA grid semantics with aria-rowcount/aria-rowindex, so
 * assistive technology knows the real size; the keyboard moves the active cell (aria-activedescendant).
 */
export function ResultGrid({ pages, active, onActive, onExpand, onCopyCell, onCopyRow }: Props) {
  const scroller = useRef<HTMLDivElement>(null);
  const [, setVersion] = useState(0);
  const [scroll, setScroll] = useState({ top: 0, left: 0 });
  const [size, setSize] = useState({ width: 800, height: 400 });
  const [widths, setWidths] = useState<number[]>(() => initialWidths(pages));
  const painted = useRef(false);

  // Re-render as pages arrive. (A new result mounts a new grid: see `key` in results-panel.tsx.)
  useEffect(() => pages.subscribe(() => setVersion((v) => v + 1)), [pages]);

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const measure = () => setSize({ width: el.clientWidth, height: el.clientHeight });
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  const total = pages.total;
  const rowNumWidth = Math.max(48, String(total).length * 8 + 24);
  const offsets = useMemo(() => {
    const out = [0];
    for (const w of widths) out.push(out[out.length - 1]! + w);
    return out;
  }, [widths]);
  const totalWidth = rowNumWidth + offsets[offsets.length - 1]!;

  const geometry = rowGeometry(total, size.height);
  const firstFloat = geometry.firstRowAt(scroll.top);
  const first = Math.max(0, Math.floor(firstFloat));
  const visibleRows = Math.ceil(geometry.bodyHeight / ROW_HEIGHT) + 1;
  const last = Math.min(total, first + visibleRows);

  const [colStart, colEnd] = visibleColumns(offsets, scroll.left, size.width - rowNumWidth);

  useEffect(() => {
    pages.request(Math.max(0, first - OVERSCAN_ROWS / 3), last + OVERSCAN_ROWS);
  }, [pages, first, last]);

  // "First rows painted": the first frame that shows rows of this result (see bench/console-first-rows.ts).
  const firstRowsShown = total === 0 || pages.rowAt(first) !== undefined;
  useEffect(() => {
    if (painted.current || !firstRowsShown) return;
    painted.current = true;
    requestAnimationFrame(() =>
      setTimeout(() => {
        performance.clearMarks('qrun:first-rows');
        performance.mark('qrun:first-rows', { detail: { id: pages.id } });
      }, 0),
    );
  });

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    const next = { top: el.scrollTop, left: el.scrollLeft };
    requestAnimationFrame(() => setScroll(next));
  };

  const scrollToCell = (cell: ActiveCell) => {
    const el = scroller.current;
    if (!el) return;
    const visibleFirst = geometry.firstRowAt(el.scrollTop);
    const rowsInView = geometry.bodyHeight / ROW_HEIGHT;
    if (cell.row < visibleFirst) el.scrollTop = geometry.scrollTopFor(cell.row);
    else if (cell.row + 1 > visibleFirst + rowsInView)
      el.scrollTop = geometry.scrollTopFor(cell.row + 1 - rowsInView);
    const left = offsets[cell.col]!;
    const right = offsets[cell.col + 1]!;
    const viewWidth = el.clientWidth - rowNumWidth;
    if (left < el.scrollLeft) el.scrollLeft = left;
    else if (right > el.scrollLeft + viewWidth) el.scrollLeft = right - viewWidth;
  };

  const move = (cell: ActiveCell) => {
    const next = {
      row: clamp(cell.row, 0, Math.max(0, total - 1)),
      col: clamp(cell.col, 0, Math.max(0, pages.fields.length - 1)),
    };
    onActive(next);
    scrollToCell(next);
  };

  const onKeyDown = (e: TargetedKeyboardEvent<HTMLDivElement>) => {
    if (total === 0 || pages.fields.length === 0) return;
    const cur = active ?? { row: first, col: colStart };
    const pageRows = Math.max(1, Math.floor(geometry.bodyHeight / ROW_HEIGHT) - 1);
    const mod = e.ctrlKey || e.metaKey;
    let next: ActiveCell | null = null;
    switch (e.key) {
      case 'ArrowDown':
        next = { ...cur, row: active ? cur.row + 1 : cur.row };
        break;
      case 'ArrowUp':
        next = { ...cur, row: cur.row - 1 };
        break;
      case 'ArrowRight':
        next = { ...cur, col: active ? cur.col + 1 : cur.col };
        break;
      case 'ArrowLeft':
        next = { ...cur, col: cur.col - 1 };
        break;
      case 'PageDown':
        next = { ...cur, row: cur.row + pageRows };
        break;
      case 'PageUp':
        next = { ...cur, row: cur.row - pageRows };
        break;
      case 'Home':
        next = mod ? { ...cur, row: 0 } : { ...cur, col: 0 };
        break;
      case 'End':
        next = mod ? { ...cur, row: total - 1 } : { ...cur, col: pages.fields.length - 1 };
        break;
      case 'Enter':
      case ' ':
        if (active) onExpand();
        else next = cur;
        break;
      case 'c':
      case 'C':
        if (!mod || !active) return;
        if (e.shiftKey) onCopyRow();
        else onCopyCell();
        break;
      case 'Escape':
        onActive(null);
        break;
      default:
        return;
    }
    e.preventDefault();
    if (next) move(next);
  };

  const resize = (col: number, width: number) =>
    setWidths((ws) => ws.map((w, i) => (i === col ? Math.max(MIN_WIDTH, Math.round(width)) : w)));

  const bodyTop = HEADER_HEIGHT + scroll.top + (first - firstFloat) * ROW_HEIGHT;
  const leftPad = offsets[colStart]!;
  const rows: JSX.Element[] = [];
  for (let i = first; i < last; i++) {
    const row = pages.rowAt(i);
    rows.push(
      <div
        class={`grid-row${i % 2 ? ' odd' : ''}`}
        role="row"
        aria-rowindex={i + 2}
        aria-busy={row ? undefined : 'true'}
        key={i}
      >
        <div class="grid-rownum" role="rowheader" aria-colindex={1} style={{ width: `${rowNumWidth}px` }}>
          {formatCount(i + 1)}
        </div>
        <div class="grid-pad" aria-hidden="true" style={{ width: `${leftPad}px` }} />
        {pages.fields.slice(colStart, colEnd).map((field, k) => {
          const c = colStart + k;
          const isActive = active !== null && active.row === i && active.col === c;
          const style = { width: `${widths[c]}px` };
          if (!row) {
            return <div class="cell cell-loading" role="gridcell" aria-colindex={c + 2} style={style} />;
          }
          const value = row[field];
          const kind = valueKind(value);
          return (
            <div
              id={`cell-${i}-${c}`}
              class={`cell cell-${kind}${isActive ? ' active' : ''}${alignRight(pages, c) ? ' num' : ''}`}
              role="gridcell"
              aria-colindex={c + 2}
              aria-selected={isActive ? 'true' : 'false'}
              aria-label={kind === 'null' ? 'NULL (no value)' : undefined}
              data-null={kind === 'null' ? 'true' : undefined}
              style={style}
              onMouseDown={() => onActive({ row: i, col: c })}
              onDblClick={onExpand}
            >
              {cellText(value)}
            </div>
          );
        })}
      </div>,
    );
  }

  const loading = last > first && pages.rowAt(first) === undefined;
  // Points only at a cell that is in the DOM (a missing id is an ARIA error).
  const activeShown =
    active !== null &&
    active.row >= first &&
    active.row < last &&
    active.col >= colStart &&
    active.col < colEnd &&
    pages.rowAt(active.row) !== undefined;
  return (
    <div class="grid-wrap">
      <div
        ref={scroller}
        class="grid"
        role="grid"
        aria-label={`Query result, ${formatCount(total)} rows`}
        aria-rowcount={total + 1}
        aria-colcount={pages.fields.length + 1}
        aria-activedescendant={activeShown ? `cell-${active.row}-${active.col}` : undefined}
        aria-busy={loading ? 'true' : 'false'}
        tabIndex={0}
        onScroll={onScroll}
        onKeyDown={onKeyDown}
      >
        <div
          class="grid-canvas"
          style={{ height: `${HEADER_HEIGHT + geometry.height}px`, width: `${totalWidth}px` }}
        >
          <div class="grid-header" role="row" aria-rowindex={1} style={{ height: `${HEADER_HEIGHT}px` }}>
            <div
              class="grid-rownum"
              role="columnheader"
              aria-colindex={1}
              style={{ width: `${rowNumWidth}px` }}
            >
              #
            </div>
            <div class="grid-pad" aria-hidden="true" style={{ width: `${leftPad}px` }} />
            {pages.fields.slice(colStart, colEnd).map((field, k) => {
              const c = colStart + k;
              const type = pages.schema[c]?.type ?? '';
              return (
                <div
                  class={`col-header${alignRight(pages, c) ? ' num' : ''}`}
                  role="columnheader"
                  aria-colindex={c + 2}
                  style={{ width: `${widths[c]}px` }}
                  key={c}
                >
                  <span class="col-name" title={field}>
                    {field}
                  </span>
                  <span class="col-type">{type}</span>
                  <ResizeHandle name={field} width={widths[c]!} onResize={(w) => resize(c, w)} />
                </div>
              );
            })}
          </div>
          <div class="grid-body" style={{ top: `${bodyTop}px`, width: `${totalWidth}px` }}>
            {rows}
          </div>
        </div>
      </div>
      {(loading || pages.error) && (
        <div class={`grid-overlay${pages.error ? ' error' : ''}`} role="status">
          {pages.error ??
            `Loading rows ${formatCount(first + 1)}–${formatCount(last)}… (pages are read in order; reading page ${formatCount((pages.reading ?? 0) + 1)})`}
        </div>
      )}
    </div>
  );
}

/** Drag, or focus and press ←/→ (Shift: larger steps), to change a column's width. */
function ResizeHandle({
  name,
  width,
  onResize,
}: {
  name: string;
  width: number;
  onResize: (w: number) => void;
}) {
  const start = useRef<{ x: number; width: number } | null>(null);
  return (
    <div
      class="col-resize"
      role="separator"
      aria-orientation="vertical"
      aria-label={`Resize column ${name}`}
      aria-valuenow={width}
      aria-valuemin={MIN_WIDTH}
      aria-valuemax={4000}
      tabIndex={0}
      onPointerDown={(e) => {
        e.preventDefault();
        e.stopPropagation();
        start.current = { x: e.clientX, width };
        e.currentTarget.setPointerCapture(e.pointerId);
      }}
      onPointerMove={(e) => {
        if (start.current) onResize(start.current.width + e.clientX - start.current.x);
      }}
      onPointerUp={(e) => {
        start.current = null;
        e.currentTarget.releasePointerCapture(e.pointerId);
      }}
      onKeyDown={(e) => {
        const step = e.shiftKey ? 50 : 10;
        if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
          e.preventDefault();
          e.stopPropagation();
          onResize(width + (e.key === 'ArrowLeft' ? -step : step));
        }
      }}
    />
  );
}

function alignRight(pages: ResultPages, col: number): boolean {
  return isNumericType(pages.schema[col]?.type ?? '');
}

/**
 * Maps scroll offsets to rows. Up to MAX_SCROLL_HEIGHT the spacer is total × ROW_HEIGHT; beyond it the
 * scroll range is compressed and a scroll offset maps proportionally to a (fractional) first row.
 */
function rowGeometry(total: number, viewportHeight: number) {
  const bodyHeight = Math.max(ROW_HEIGHT, viewportHeight - HEADER_HEIGHT);
  const natural = total * ROW_HEIGHT;
  const height = Math.min(natural, MAX_SCROLL_HEIGHT);
  const scaled = natural > MAX_SCROLL_HEIGHT;
  const maxFirst = Math.max(0, total - bodyHeight / ROW_HEIGHT);
  const maxScroll = Math.max(1, height - bodyHeight);
  return {
    height,
    bodyHeight,
    firstRowAt: (scrollTop: number) =>
      scaled ? (Math.min(scrollTop, maxScroll) / maxScroll) * maxFirst : scrollTop / ROW_HEIGHT,
    scrollTopFor: (firstRow: number) =>
      scaled ? (clamp(firstRow, 0, maxFirst) / Math.max(1, maxFirst)) * maxScroll : firstRow * ROW_HEIGHT,
  };
}

function visibleColumns(offsets: number[], scrollLeft: number, width: number): [number, number] {
  const n = offsets.length - 1;
  let start = 0;
  while (start < n - 1 && offsets[start + 1]! <= scrollLeft) start++;
  let end = start;
  while (end < n && offsets[end]! < scrollLeft + width) end++;
  return [start, Math.min(n, end + 1)];
}

/** Widths from the header and the first rows' values, within sensible bounds. */
function initialWidths(pages: ResultPages): number[] {
  return pages.fields.map((field, c) => {
    const type = pages.schema[c]?.type ?? '';
    let chars = Math.max(field.length, type.length + 2);
    for (let i = 0; i < Math.min(100, pages.total); i++) {
      const row = pages.rowAt(i);
      if (!row) break;
      chars = Math.max(chars, Math.min(60, cellText(row[field]).length));
    }
    return clamp(chars * 8 + 24, 80, MAX_INITIAL_WIDTH);
  });
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, n));
}
