import { useEffect, useState } from 'preact/hooks';
import { explain, type Api } from '../api/client';
import type { Connection, QuerySummary } from '../api/types';
import { formatTime, plural } from '../ui/format';
import { fullSql, isCut } from './sql-memory';

interface Props {
  api: Api;
  connections: Connection[] | null;
  /** Show this query's result in the editor. */
  onOpen: (q: QuerySummary, sql: string | null) => void;
  /** Put the SQL in the editor, and run it when `run`. */
  onEdit: (q: QuerySummary, sql: string, run: boolean) => void;
}

/** Your own queries, newest first (GET /api/queries, followed page by page through links.next). */
export function HistoryPage({ api, connections, onOpen, onEdit }: Props) {
  const [items, setItems] = useState<QuerySummary[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);

  const load = async (path?: string) => {
    setLoading(true);
    setError(null);
    try {
      const page = await api.history(path);
      setItems((cur) => (path && cur ? [...cur, ...page.data] : page.data));
      setNext(page.links.next);
    } catch (err) {
      setError(explain(err, 'list queries'));
    } finally {
      setLoading(false);
    }
  };

  useEffect(() => {
    void load();
  }, [api]);

  const connectionName = (id: string) => connections?.find((c) => c.id === id)?.name;

  return (
    <section class="history-page" aria-labelledby="history-title">
      <div class="page-head">
        <h1 id="history-title">History</h1>
        <button type="button" onClick={() => void load()} disabled={loading}>
          Refresh
        </button>
      </div>
      {error && (
        <p class="error-box" role="alert">
          {error}
        </p>
      )}
      {items === null ? (
        <p class="muted" role="status">
          Loading…
        </p>
      ) : items.length === 0 ? (
        <p class="muted">No queries yet.</p>
      ) : (
        <ul class="history-list" aria-label="Your queries, newest first">
          {items.map((q) => {
            const sql = fullSql(q.id, q.query);
            const name = connectionName(q.connection_id);
            return (
              <li class="history-item" key={q.id} data-query-id={q.id}>
                <div class="history-meta">
                  <span class={`badge status-${q.status}`}>{q.status}</span>
                  {q.count !== null && <span>{plural(q.count, 'row')}</span>}
                  <span class="muted">{name ?? 'deleted connection'}</span>
                  <time class="muted" dateTime={q.created_at}>
                    {formatTime(q.created_at)}
                  </time>
                </div>
                <code class="history-sql" title={q.query}>
                  {q.query}
                </code>
                {q.error && <p class="error-text">{q.error}</p>}
                {sql === null && isCut(q.query) && (
                  <p class="muted">
                    Only the first 1,000 characters of this SQL are listed, so it cannot run again from here.
                  </p>
                )}
                <div class="card-actions">
                  <button
                    type="button"
                    onClick={() => onOpen(q, sql)}
                    aria-label={`Open result of query from ${formatTime(q.created_at)}`}
                  >
                    {q.status === 'done' ? 'Open result' : 'Open'}
                  </button>
                  <button
                    type="button"
                    onClick={() => onEdit(q, sql ?? q.query, false)}
                    aria-label={`Edit SQL of query from ${formatTime(q.created_at)}`}
                  >
                    Edit SQL
                  </button>
                  <button
                    type="button"
                    onClick={() => sql !== null && onEdit(q, sql, true)}
                    disabled={sql === null || !name}
                    aria-label={`Run again query from ${formatTime(q.created_at)}`}
                  >
                    Run again
                  </button>
                </div>
              </li>
            );
          })}
        </ul>
      )}
      {next && (
        <button type="button" onClick={() => void load(next)} disabled={loading}>
          {loading ? 'Loading…' : 'Load more'}
        </button>
      )}
    </section>
  );
}
