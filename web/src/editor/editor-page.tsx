import { useEffect, useRef, useState } from 'preact/hooks';
import { explain, type Api } from '../api/client';
import type { Connection } from '../api/types';
import { rememberSql } from '../history/sql-memory';
import { ResultsPanel } from '../results/results-panel';
import { formatBytes, formatCount, formatDuration, plural } from '../ui/format';
import { QueryRun, type RunState } from './query-run';
import { createSqlEditor, type SqlEditor } from './sql-editor';

/** Something another page asks the editor to do (history: reopen, edit or run a query again). */
export interface EditorRequest {
  nonce: number;
  sql?: string;
  connectionId?: string;
  /** Run the SQL at once. */
  run?: boolean;
}

interface Props {
  api: Api;
  connections: Connection[] | null;
  canManage: boolean;
  /** A query to show, from the URL (#/queries/<id>). */
  queryId: string | null;
  /** Changes on every navigation (following the same #/queries/<id> link again reopens it). */
  routeNonce: number;
  request: EditorRequest | null;
}

const SQL_ITEM = 'qrun.editorSql';
const CONNECTION_ITEM = 'qrun.connection';
const isMac = /Mac|iPhone|iPad/.test(navigator.platform);

/** The SQL editor, its run and cancel controls and status, the database's error, and the result. */
export function EditorPage({ api, connections, canManage, queryId, routeNonce, request }: Props) {
  const host = useRef<HTMLDivElement>(null);
  const editor = useRef<SqlEditor | null>(null);
  const run = useRef<QueryRun | null>(null);
  const [state, setState] = useState<RunState | null>(null);
  const [connectionId, setConnectionId] = useState(() => sessionStorage.getItem(CONNECTION_ITEM) ?? '');
  const [message, setMessage] = useState<string | null>(null);
  const runLatest = useRef<() => void>(() => undefined);

  const connection = connections?.find((c) => c.id === connectionId);
  const busy = state?.phase === 'submitting' || state?.phase === 'waiting';

  useEffect(() => {
    if (!host.current) return;
    editor.current = createSqlEditor(host.current, {
      text: sessionStorage.getItem(SQL_ITEM) ?? 'select 1;',
      onRun: () => runLatest.current(),
      onChange: (text) => sessionStorage.setItem(SQL_ITEM, text),
    });
    return () => {
      editor.current?.destroy();
      run.current?.dispose();
    };
  }, []);

  // The first connection, when none (or one that no longer exists) is chosen.
  useEffect(() => {
    if (!connections || connections.length === 0) return;
    if (!connections.some((c) => c.id === connectionId)) setConnectionId(connections[0]!.id);
  }, [connections, connectionId]);

  useEffect(() => {
    if (connectionId) sessionStorage.setItem(CONNECTION_ITEM, connectionId);
    editor.current?.setDialect(connection?.type.id);
  }, [connectionId, connection?.type.id]);

  const follow = (next: QueryRun) => {
    run.current?.dispose();
    run.current = next;
    setState(next.state);
  };

  const start = (sql: string, offset: number, onConnection: string) => {
    editor.current?.markError(null);
    setMessage(null);
    follow(
      QueryRun.submit(api, onConnection, sql, offset, setState, (id) => {
        rememberSql(id, sql);
        // The URL names the query, so a reload shows it again.
        history.replaceState(null, '', `#/queries/${id}`);
      }),
    );
  };

  runLatest.current = () => {
    if (busy) return;
    const ed = editor.current;
    if (!ed) return;
    const { sql, offset } = ed.runnable();
    if (sql.trim() === '') return setMessage('Write some SQL first.');
    if (!connectionId || !connection) return setMessage('Choose a connection first.');
    start(sql, offset, connectionId);
  };

  // Reopen a query named in the URL (history's "Open", or a reload).
  useEffect(() => {
    if (queryId && run.current?.id !== queryId) follow(QueryRun.open(api, queryId, setState));
  }, [queryId, routeNonce]);

  // Requests from the history page.
  useEffect(() => {
    if (!request) return;
    if (request.connectionId) setConnectionId(request.connectionId);
    if (request.sql !== undefined) editor.current?.setText(request.sql);
    if (request.run && request.sql !== undefined && request.connectionId) {
      start(request.sql, 0, request.connectionId);
    }
    editor.current?.view.focus();
  }, [request?.nonce]);

  // The database's error position (1-based, in the SQL that was sent), marked in the editor.
  useEffect(() => {
    if (state?.phase !== 'failed') return;
    const position = Number(state.details?.position);
    if (Number.isInteger(position) && position > 0) editor.current?.markError(state.offset + position - 1);
  }, [state]);

  const cancel = () => {
    run.current?.cancel().catch((err: unknown) => setMessage(explain(err, 'cancel this query')));
  };

  return (
    <section class="editor-page" aria-labelledby="editor-title">
      <h1 id="editor-title" class="sr-only">
        Editor
      </h1>
      <div class="toolbar">
        <label class="field-inline">
          Connection
          <select
            value={connectionId}
            onChange={(e) => setConnectionId(e.currentTarget.value)}
            disabled={!connections || connections.length === 0}
            data-testid="connection-select"
          >
            {connections && connections.length === 0 && <option value="">no connections</option>}
            {connections?.map((c) => (
              <option value={c.id} key={c.id}>
                {c.name} ({c.type.name})
              </option>
            ))}
          </select>
        </label>
        <button
          type="button"
          class="primary"
          onClick={() => runLatest.current()}
          disabled={busy || !connection}
          aria-keyshortcuts={isMac ? 'Meta+Enter' : 'Control+Enter'}
        >
          Run
        </button>
        {busy && (
          <button
            type="button"
            class="danger"
            onClick={cancel}
            disabled={state?.phase !== 'waiting' || state.canceling}
          >
            Cancel
          </button>
        )}
        <span class="muted hint">
          <kbd>{isMac ? '⌘' : 'Ctrl'}</kbd>+<kbd>Enter</kbd> runs the selection, or everything
        </span>
      </div>
      {connections && connections.length === 0 && (
        <p class="notice">
          No connections yet.{' '}
          {canManage ? <a href="#/connections">Create one</a> : 'Ask an organization admin to create one.'}
        </p>
      )}
      <div class="editor-box" ref={host} />
      <RunStatus state={state} />
      {message && (
        <p class="notice" role="alert">
          {message}
        </p>
      )}
      {state?.phase === 'failed' && !state.canceled && <QueryError state={state} text={editor.current} />}
      {state?.phase === 'done' && <ResultsPanel key={state.result.serial} api={api} pages={state.result} />}
    </section>
  );
}

/** Status with elapsed time, queue position and progress (when the server reports them). */
function RunStatus({ state }: { state: RunState | null }) {
  const [, tick] = useState(0);
  const live = state?.phase === 'submitting' || state?.phase === 'waiting';
  useEffect(() => {
    if (!live) return;
    const timer = setInterval(() => tick((n) => n + 1), 200);
    return () => clearInterval(timer);
  }, [live]);

  if (!state) return <p class="status muted" role="status" data-testid="run-status" />;
  const elapsed = (end: number) => (state.startedAt === null ? null : formatDuration(end - state.startedAt));
  let text: string;
  let cls = '';
  switch (state.phase) {
    case 'submitting':
      text = `Submitting… ${elapsed(performance.now())}`;
      break;
    case 'waiting': {
      const parts: string[] = [
        state.canceling ? 'Canceling…' : state.status === 'created' ? 'Queued' : 'Running',
      ];
      // queue_position: how many of the organization's queries wait before this one.
      if (state.status === 'created' && state.queuePosition !== null)
        parts.push(
          state.queuePosition === 0
            ? 'next in the queue'
            : `${plural(state.queuePosition, 'query', 'queries')} ahead in the queue`,
        );
      const time =
        elapsed(performance.now()) ??
        (state.progress?.elapsed_ms !== undefined ? formatDuration(state.progress.elapsed_ms) : null);
      if (time) parts.push(time);
      const p = state.progress;
      if (p?.rows !== undefined) parts.push(plural(p.rows, 'row'));
      if (p?.pages !== undefined) parts.push(plural(p.pages, 'page'));
      if (p?.bytes !== undefined) parts.push(formatBytes(p.bytes));
      text = parts.join(' · ');
      cls = 'running';
      break;
    }
    case 'done': {
      const time = elapsed(state.finishedAt);
      text = `Done · ${plural(state.result.total, 'row')}${time ? ` · ${time}` : ''}`;
      cls = 'ok';
      break;
    }
    case 'failed': {
      const time = elapsed(state.finishedAt);
      text = `${state.canceled ? 'Canceled' : 'Failed'}${time ? ` after ${time}` : ''}`;
      cls = state.canceled ? 'muted' : 'bad';
      break;
    }
  }
  return (
    <p class={`status ${cls}`} role="status" data-testid="run-status" data-phase={state.phase}>
      {state.phase === 'waiting' && <span class="spinner" aria-hidden="true" />}
      {text}
    </p>
  );
}

function QueryError({
  state,
  text,
}: {
  state: Extract<RunState, { phase: 'failed' }>;
  text: SqlEditor | null;
}) {
  const d = state.details;
  const position = Number(d?.position);
  let where: string | null = null;
  if (text && Number.isInteger(position) && position > 0) {
    const doc = text.view.state.doc;
    const at = Math.min(doc.length, state.offset + position - 1);
    const line = doc.lineAt(at);
    where = `line ${formatCount(line.number)}, column ${formatCount(at - line.from + 1)}`;
  }
  const facts = [
    d?.sqlstate ? `SQLSTATE ${d.sqlstate}` : null,
    d?.code && d.code !== d.sqlstate ? `code ${d.code}` : null,
    where ? `at ${where}` : null,
    d?.retryable ? 'may succeed if run again' : null,
  ].filter((f): f is string => f !== null);
  return (
    <div class="error-box" role="alert" data-testid="query-error">
      <strong>The query failed</strong>
      <pre class="error-message">{state.message}</pre>
      {facts.length > 0 && <p class="muted">{facts.join(' · ')}</p>}
    </div>
  );
}
