import { useState } from 'preact/hooks';
import { Api, explain } from './api/client';
import { keyKind } from './api/session';
import type { Me } from './api/types';

/** Sign in with an API key: checked with GET /api/me before it is kept (in this tab's sessionStorage). */
export function SignIn({
  onSignedIn,
  reason,
}: {
  onSignedIn: (key: string, me: Me) => void;
  reason: string | null;
}) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(reason);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    const trimmed = key.trim();
    if (!keyKind(trimmed)) {
      setError(
        'That is not a qrun API key: keys start with qrun_u_ (user), qrun_o_ (organization) or qrun_p_ (partner).',
      );
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const me = await new Api({ key: trimmed, onUnauthorized: () => undefined }).me();
      onSignedIn(trimmed, me);
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="sign-in">
      <form onSubmit={(event) => void submit(event)} aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">qrun</h1>
        <p class="muted">
          Sign in with an API key. The first start saved the admin key in <code>data/admin-key</code>.
        </p>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autoComplete="off"
          spellcheck={false}
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
          placeholder="qrun_u_…"
          aria-describedby="api-key-hint"
          required
        />
        <small id="api-key-hint" class="hint">
          Kept in this browser tab only (sessionStorage) until you sign out or close the tab.
        </small>
        {error && (
          <p class="error-box" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
