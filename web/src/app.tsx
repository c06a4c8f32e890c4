import { useEffect, useMemo, useState } from 'preact/hooks';
import { Api, ApiError, explain } from './api/client';
import { canManageConnections, canUseConnections, roleLabel, whoLabel } from './api/roles';
import { clearSession, loadKey, saveKey } from './api/session';
import type { Connection, Me } from './api/types';
import { ConnectionsPage } from './connections/connections-page';
import { EditorPage, type EditorRequest } from './editor/editor-page';
import { HistoryPage } from './history/history-page';
import { SignIn } from './sign-in';

type Page = 'editor' | 'connections' | 'history';

interface Route {
  page: Page;
  /** #/queries/<id>: the editor showing that query. */
  queryId: string | null;
  /** Changes on every navigation, so following the same link again is noticed. */
  nonce: number;
}

/** Routes live in the URL fragment, so the server serves one page and every API path stays as it is. */
function parseRoute(hash: string): Route {
  const path = hash.replace(/^#\/?/, '');
  const query = /^queries\/([0-9a-f-]{36})$/i.exec(path);
  const nonce = performance.now();
  if (query) return { page: 'editor', queryId: query[1]!, nonce };
  if (path === 'connections' || path === 'history') return { page: path, queryId: null, nonce };
  return { page: 'editor', queryId: null, nonce };
}

const PAGES: { page: Page; label: string }[] = [
  { page: 'editor', label: 'Editor' },
  { page: 'connections', label: 'Connections' },
  { page: 'history', label: 'History' },
];

export function App() {
  const [key, setKey] = useState<string | null>(loadKey);
  const [me, setMe] = useState<Me | null>(null);
  const [reason, setReason] = useState<string | null>(null);
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  const [connections, setConnections] = useState<Connection[] | null>(null);
  const [connectionsError, setConnectionsError] = useState<string | null>(null);
  const [waiting, setWaiting] = useState<string | null>(null);
  const [request, setRequest] = useState<EditorRequest | null>(null);

  const signOut = (why: string | null) => {
    clearSession();
    setKey(null);
    setMe(null);
    setConnections(null);
    setReason(why);
    history.replaceState(null, '', location.pathname);
    setRoute(parseRoute(''));
  };

  const api = useMemo(
    () =>
      key
        ? new Api({
            key,
            onUnauthorized: () => signOut('The API key was not accepted (wrong or revoked). Sign in again.'),
            onWaiting: setWaiting,
          })
        : null,
    [key],
  );

  useEffect(() => {
    const onHash = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  // A key kept from before a reload: check it again.
  useEffect(() => {
    if (!api || me) return;
    api
      .me()
      .then(setMe)
      .catch((err: unknown) => {
        if (!(err instanceof ApiError && err.status === 401)) signOut(explain(err));
      });
  }, [api]);

  const loadConnections = () => {
    if (!api) return;
    api
      .connections()
      .then((list) => {
        setConnections(list);
        setConnectionsError(null);
      })
      .catch((err: unknown) => setConnectionsError(explain(err, 'list connections')));
  };

  useEffect(() => {
    if (api && me && canUseConnections(me)) loadConnections();
  }, [api, me]);

  if (!key || !api) {
    return (
      <SignIn
        reason={reason}
        onSignedIn={(k, m) => {
          saveKey(k);
          setReason(null);
          setMe(m);
          setKey(k);
        }}
      />
    );
  }
  if (!me) {
    return (
      <p class="muted center" role="status">
        Signing in…
      </p>
    );
  }

  const go = (hash: string) => {
    location.hash = hash;
  };

  return (
    <div class="app">
      <header class="top">
        <span class="brand">qrun</span>
        <nav aria-label="Console">
          {PAGES.map((p) => (
            <a
              key={p.page}
              href={`#/${p.page}`}
              aria-current={route.page === p.page ? 'page' : undefined}
              class={route.page === p.page ? 'current' : undefined}
            >
              {p.label}
            </a>
          ))}
        </nav>
        <div class="who">
          <span data-testid="whoami">{whoLabel(me)}</span>
          <span class="badge role" data-testid="role">
            {roleLabel(me)}
          </span>
          <button type="button" onClick={() => signOut(null)}>
            Sign out
          </button>
        </div>
      </header>
      {waiting && (
        <div class="banner" role="status">
          {waiting}
        </div>
      )}
      <main id="main">
        {!canUseConnections(me) ? (
          <p class="notice">
            This is the partner key: it manages organizations, their users and keys (see /api/docs).
            Connections and queries belong to organizations; sign in with a user or organization key to use
            them.
          </p>
        ) : (
          <>
            {connectionsError && (
              <p class="error-box" role="alert">
                {connectionsError}
              </p>
            )}
            <div hidden={route.page !== 'editor'}>
              <EditorPage
                api={api}
                connections={connections}
                canManage={canManageConnections(me)}
                queryId={route.queryId}
                routeNonce={route.nonce}
                request={request}
              />
            </div>
            {route.page === 'connections' && (
              <ConnectionsPage
                api={api}
                connections={connections}
                canManage={canManageConnections(me)}
                roleName={roleLabel(me)}
                onChanged={loadConnections}
                onQuery={(c) => {
                  setRequest({ nonce: Date.now(), connectionId: c.id });
                  go('#/editor');
                }}
              />
            )}
            {route.page === 'history' && (
              <HistoryPage
                api={api}
                connections={connections}
                onOpen={(q, sql) => {
                  setRequest({ nonce: Date.now(), connectionId: q.connection_id, sql: sql ?? q.query });
                  go(`#/queries/${q.id}`);
                }}
                onEdit={(q, sql, run) => {
                  setRequest({ nonce: Date.now(), connectionId: q.connection_id, sql, run });
                  go('#/editor');
                }}
              />
            )}
          </>
        )}
      </main>
    </div>
  );
}
