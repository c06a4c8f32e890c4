import { useEffect, useState } from 'preact/hooks';
import { explain, sleep, type Api } from '../api/client';
import type { Connection, ConnectionType } from '../api/types';
import { formatDuration } from '../ui/format';
import { ConnectionForm } from './connection-form';

interface Props {
  api: Api;
  connections: Connection[] | null;
  canManage: boolean;
  roleName: string;
  /** Reload the list (after a change). */
  onChanged: () => void;
  /** Open the editor on this connection. */
  onQuery: (connection: Connection) => void;
}

/**
 * The organization's connections: list, test, and for admins and the organization key, create, edit and
 * delete. A role that may not change connections does not see those controls (and a 403 that happens
 * anyway is explained).
 */
export function ConnectionsPage({ api, connections, canManage, roleName, onChanged, onQuery }: Props) {
  const [types, setTypes] = useState<ConnectionType[] | null>(null);
  const [form, setForm] = useState<{ editing?: Connection } | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api
      .connectionTypes()
      .then(setTypes)
      .catch((err: unknown) => setError(explain(err, 'list connection types')));
  }, [api]);

  return (
    <section class="connections-page" aria-labelledby="connections-title">
      <div class="page-head">
        <h1 id="connections-title">Connections</h1>
        {canManage && !form && (
          <button type="button" class="primary" onClick={() => setForm({})} disabled={!types}>
            New connection
          </button>
        )}
      </div>
      {!canManage && (
        <p class="notice">
          Your role ({roleName}) can use and test the organization's connections. Creating, changing and
          deleting them needs an organization admin or the organization key.
        </p>
      )}
      {error && (
        <p class="error-box" role="alert">
          {error}
        </p>
      )}
      {form && types && (
        <ConnectionForm
          api={api}
          types={types}
          editing={form.editing}
          onCancel={() => setForm(null)}
          onSaved={() => {
            setForm(null);
            onChanged();
          }}
        />
      )}
      {connections === null ? (
        <p class="muted" role="status">
          Loading connections…
        </p>
      ) : connections.length === 0 ? (
        <p class="muted">No connections yet.</p>
      ) : (
        <ul class="connection-list" aria-label="Connections">
          {connections.map((c) => (
            <ConnectionCard
              key={c.id}
              api={api}
              connection={c}
              canManage={canManage}
              onEdit={() => setForm({ editing: c })}
              onDeleted={onChanged}
              onQuery={() => onQuery(c)}
            />
          ))}
        </ul>
      )}
    </section>
  );
}

function ConnectionCard(props: {
  api: Api;
  connection: Connection;
  canManage: boolean;
  onEdit: () => void;
  onDeleted: () => void;
  onQuery: () => void;
}) {
  const { api, connection: c, canManage, onEdit, onDeleted, onQuery } = props;
  const [confirming, setConfirming] = useState(false);
  const [result, setResult] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const headingId = `conn-${c.id}`;

  // A stored connection is tested with its stored secret by running `select 1` on it (any role may).
  const test = async () => {
    setBusy(true);
    setResult(null);
    const started = performance.now();
    try {
      const { id } = await api.submit(c.id, 'select 1');
      for (;;) {
        const r = await api.query(`/api/queries/${id}?wait=10`);
        if (r.data.status === 'done') {
          setResult({ ok: true, text: `Works: answered in ${formatDuration(performance.now() - started)}.` });
          return;
        }
        if (r.data.status === 'failed') {
          setResult({ ok: false, text: r.data.error ?? 'The test query failed.' });
          return;
        }
        await sleep(200);
      }
    } catch (err) {
      setResult({ ok: false, text: explain(err, 'use this connection') });
    } finally {
      setBusy(false);
    }
  };

  const remove = async () => {
    setBusy(true);
    try {
      await api.deleteConnection(c.id);
      onDeleted();
    } catch (err) {
      setResult({ ok: false, text: explain(err, 'delete connections') });
      setConfirming(false);
    } finally {
      setBusy(false);
    }
  };

  return (
    <li class="connection-card" aria-labelledby={headingId}>
      <div class="connection-head">
        <h2 id={headingId}>{c.name}</h2>
        <span class={`badge status-${c.status}`}>{c.status}</span>
      </div>
      <p class="muted">
        {c.type.name} · {summary(c)}
      </p>
      {c.status_error && <p class="error-text">{c.status_error}</p>}
      <div class="card-actions">
        <button type="button" onClick={onQuery}>
          Query
        </button>
        <button type="button" onClick={() => void test()} disabled={busy} aria-label={`Test ${c.name}`}>
          {busy && !confirming ? 'Testing…' : 'Test'}
        </button>
        {canManage && (
          <>
            <button type="button" onClick={onEdit} aria-label={`Edit ${c.name}`}>
              Edit
            </button>
            <button
              type="button"
              class="danger"
              onClick={() => setConfirming(true)}
              aria-label={`Delete ${c.name}`}
            >
              Delete
            </button>
          </>
        )}
      </div>
      {confirming && (
        <div class="confirm" role="group" aria-label={`Confirm deleting ${c.name}`}>
          <span>Delete {c.name}? Queries already run keep their results.</span>
          <button type="button" class="danger" onClick={() => void remove()} disabled={busy}>
            Delete
          </button>
          <button type="button" onClick={() => setConfirming(false)}>
            Keep it
          </button>
        </div>
      )}
      {result && (
        <p class={result.ok ? 'ok-text' : 'error-text'} role={result.ok ? 'status' : 'alert'}>
          {result.text}
        </p>
      )}
    </li>
  );
}

/** host:port/database, or the file path: what the connection points at (never a secret). */
function summary(c: Connection): string {
  const cfg = c.configuration;
  if (typeof cfg.path === 'string') return cfg.path;
  const host = cfg.hostname ?? '';
  const port = cfg.port !== undefined ? `:${String(cfg.port)}` : '';
  const db = cfg.database ?? cfg.dbname;
  const user = cfg.username ?? cfg.account;
  const parts = [`${String(host)}${port}${db !== undefined ? `/${String(db)}` : ''}`];
  if (user !== undefined) parts.push(`user ${String(user)}`);
  return parts.join(' · ');
}
