import { useEffect, useState } from 'preact/hooks';
import { explain, type Api } from '../api/client';
import { copyText } from '../ui/clipboard';
import { formatCount, plural } from '../ui/format';
import { cellCopyText, cellDetail, isBinaryType, isJsonValue, rowJson, valueKind } from './cells';
import { ChartView } from './chart-view';
import { ResultGrid, type ActiveCell } from './result-grid';
import type { ResultPages } from './result-pages';

type Tab = 'grid' | 'chart';

/** A finished result: the grid or the chart, the selected cell's whole value, and downloads. */
export function ResultsPanel({ api, pages }: { api: Api; pages: ResultPages }) {
  const [tab, setTab] = useState<Tab>('grid');
  const [active, setActive] = useState<ActiveCell | null>(null);
  const [expanded, setExpanded] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [, setVersion] = useState(0);

  // Mounted once per result (keyed by pages.serial in editor-page.tsx), so state starts fresh.
  useEffect(() => pages.subscribe(() => setVersion((v) => v + 1)), [pages]);

  const row = active ? pages.rowAt(active.row) : undefined;
  const field = active ? pages.fields[active.col] : undefined;
  const value = row && field !== undefined ? row[field] : undefined;

  const copy = async (what: 'cell' | 'row') => {
    if (!row || field === undefined) return;
    try {
      await copyText(what === 'cell' ? cellCopyText(value) : rowJson(pages.fields, row));
      setNotice(what === 'cell' ? 'Value copied.' : 'Row copied as JSON.');
    } catch (err) {
      setNotice(explain(err));
    }
  };

  const selectTab = (next: Tab) => setTab(next);
  const onTabKey = (e: KeyboardEvent) => {
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      e.preventDefault();
      const next = tab === 'grid' ? 'chart' : 'grid';
      setTab(next);
      document.getElementById(`tab-${next}`)?.focus();
    }
  };

  return (
    <section class="results" aria-label="Result">
      <div class="results-bar">
        <div role="tablist" aria-label="Result view" class="tabs" onKeyDown={onTabKey}>
          {(['grid', 'chart'] as const).map((t) => (
            <button
              key={t}
              id={`tab-${t}`}
              role="tab"
              type="button"
              aria-selected={tab === t}
              aria-controls={`panel-${t}`}
              tabIndex={tab === t ? 0 : -1}
              onClick={() => selectTab(t)}
            >
              {t === 'grid' ? 'Grid' : 'Chart'}
            </button>
          ))}
        </div>
        <span class="muted result-summary" data-testid="result-summary">
          {plural(pages.total, 'row')}
          {pages.truncated ? ' (cut at max_rows)' : ''} · {plural(pages.fields.length, 'column')}
        </span>
        {pages.exportLink && <Downloads api={api} pages={pages} link={pages.exportLink} />}
      </div>
      <div
        id="panel-grid"
        role="tabpanel"
        aria-labelledby="tab-grid"
        hidden={tab !== 'grid'}
        class="panel-grid"
      >
        {pages.fields.length === 0 ? (
          <p class="muted">The statement returned no columns.</p>
        ) : (
          <ResultGrid
            pages={pages}
            active={active}
            onActive={(cell) => {
              setActive(cell);
              setExpanded(false);
              setNotice(null);
            }}
            onExpand={() => setExpanded((e) => !e)}
            onCopyCell={() => void copy('cell')}
            onCopyRow={() => void copy('row')}
          />
        )}
        <div class="cell-detail" aria-live="polite">
          {active && field !== undefined ? (
            <>
              <div class="cell-detail-head">
                <span>
                  Row {formatCount(active.row + 1)} · <strong>{field}</strong>{' '}
                  <span class="muted">
                    {pages.schema[active.col]?.type}
                    {isBinaryType(pages.schema[active.col]?.type ?? '') ? ' (base64)' : ''}
                  </span>
                </span>
                <span class="actions">
                  <button type="button" onClick={() => setExpanded((e) => !e)} disabled={!row}>
                    {expanded ? 'Collapse' : 'Expand'}
                  </button>
                  <button type="button" onClick={() => void copy('cell')} disabled={!row}>
                    Copy value
                  </button>
                  <button type="button" onClick={() => void copy('row')} disabled={!row}>
                    Copy row
                  </button>
                </span>
              </div>
              {row &&
                (expanded ? (
                  <pre
                    class={`cell-full${valueKind(value) === 'null' ? ' cell-null' : ''}`}
                    data-testid="cell-full"
                  >
                    {cellDetail(value)}
                  </pre>
                ) : (
                  <div class="cell-preview">
                    {valueKind(value) === 'null' ? (
                      <span class="cell-null">NULL</span>
                    ) : (
                      cellDetail(value).slice(0, 300)
                    )}
                    {isJsonValue(value) && <span class="muted"> (JSON: Expand to read it formatted)</span>}
                  </div>
                ))}
              {notice && (
                <p class="muted" role="status">
                  {notice}
                </p>
              )}
            </>
          ) : (
            <span class="muted">
              Select a cell (click, or focus the grid and use the arrow keys) to see its whole value. Enter
              expands it; Ctrl+C copies it, Ctrl+Shift+C copies its row.
            </span>
          )}
        </div>
      </div>
      <div id="panel-chart" role="tabpanel" aria-labelledby="tab-chart" hidden={tab !== 'chart'}>
        {tab === 'chart' && <ChartView pages={pages} />}
      </div>
    </section>
  );
}

/** CSV and Parquet downloads through the export endpoint (shown only when the result links to it). */
function Downloads({ api, pages, link }: { api: Api; pages: ResultPages; link: string }) {
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const download = async (format: 'csv' | 'parquet') => {
    setBusy(format);
    setError(null);
    try {
      const url = new URL(link, location.origin);
      url.searchParams.set('format', format);
      const blob = await api.download(url.pathname + url.search);
      const href = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = href;
      a.download = `${pages.id}.${format}`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(href), 10_000);
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(null);
    }
  };
  return (
    <span class="downloads">
      <button type="button" onClick={() => void download('csv')} disabled={busy !== null}>
        {busy === 'csv' ? 'Downloading…' : 'Download CSV'}
      </button>
      <button type="button" onClick={() => void download('parquet')} disabled={busy !== null}>
        {busy === 'parquet' ? 'Downloading…' : 'Download Parquet'}
      </button>
      {error && (
        <span class="error-text" role="alert">
          {error}
        </span>
      )}
    </span>
  );
}
