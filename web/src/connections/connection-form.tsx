import { useState } from 'preact/hooks';
import { ApiError, explain, type Api } from '../api/client';
import {
  SECRET_PLACEHOLDER,
  type ConfigField,
  type ConfigValue,
  type Connection,
  type ConnectionType,
} from '../api/types';

interface Props {
  api: Api;
  types: ConnectionType[];
  /** The connection being edited; undefined for a new one. */
  editing?: Connection;
  onSaved: (connection: Connection) => void;
  onCancel: () => void;
}

type Values = Record<string, string | boolean>;

/**
 * Create or edit a connection, with one input per field that GET /api/connection_types lists for the type.
 * Secrets are password inputs; a stored secret (sent back as "********") shows as "unchanged" and is sent
 * back as the placeholder when left empty, which keeps it while the destination stays the same.
 */
export function ConnectionForm({ api, types, editing, onSaved, onCancel }: Props) {
  const [typeId, setTypeId] = useState(editing?.type.id ?? types[0]?.id ?? '');
  const type = types.find((t) => t.id === typeId);
  const [name, setName] = useState(editing?.name ?? '');
  const [values, setValues] = useState<Values>(() => initialValues(type, editing));
  const [busy, setBusy] = useState<'save' | 'test' | null>(null);
  const [result, setResult] = useState<{ ok: boolean; text: string; field?: string } | null>(null);
  const idPrefix = editing ? `edit-${editing.id}` : 'new';

  const changeType = (id: string) => {
    setTypeId(id);
    setValues(
      initialValues(
        types.find((t) => t.id === id),
        undefined,
      ),
    );
    setResult(null);
  };

  const configuration = (): Record<string, ConfigValue> => {
    const out: Record<string, ConfigValue> = {};
    for (const f of type?.fields ?? []) {
      const v = values[f.name];
      if (f.type === 'boolean') {
        out[f.name] = v === true;
      } else if (f.secret && editing && v === '' && isStoredSecret(editing, f)) {
        out[f.name] = SECRET_PLACEHOLDER;
      } else if (typeof v === 'string' && v !== '') {
        out[f.name] = f.type === 'integer' || f.type === 'number' ? Number(v) : v;
      }
    }
    return out;
  };

  const keepsStoredSecret = () =>
    editing !== undefined &&
    (type?.fields ?? []).some((f) => f.secret && values[f.name] === '' && isStoredSecret(editing, f));

  const fail = (err: unknown, action: string) => {
    const field =
      err instanceof ApiError && typeof err.metadata?.field === 'string' ? err.metadata.field : undefined;
    setResult({ ok: false, text: explain(err, action), field });
  };

  const save = async (e: Event) => {
    e.preventDefault();
    setBusy('save');
    setResult(null);
    try {
      const saved = editing
        ? await api.updateConnection(editing.id, { name, configuration: configuration() })
        : await api.createConnection({ name, type: typeId, configuration: configuration() });
      onSaved(saved);
    } catch (err) {
      fail(err, editing ? 'change connections' : 'create connections');
    } finally {
      setBusy(null);
    }
  };

  const test = async () => {
    if (keepsStoredSecret()) {
      setResult({
        ok: false,
        text: 'Type the password to test this configuration here; the stored password is used only when you save (saving tests the connection first).',
      });
      return;
    }
    setBusy('test');
    setResult(null);
    try {
      const r = await api.testConfiguration(typeId, configuration());
      setResult({ ok: true, text: `The connection works (${r.status}).` });
    } catch (err) {
      fail(err, 'test connections');
    } finally {
      setBusy(null);
    }
  };

  const invalid = (fieldName: string) =>
    result?.field === fieldName || result?.field === `configuration.${fieldName}` ? 'true' : undefined;

  return (
    <form
      class="connection-form"
      onSubmit={(event) => void save(event)}
      aria-label={editing ? `Edit ${editing.name}` : 'New connection'}
    >
      <h2>{editing ? `Edit ${editing.name}` : 'New connection'}</h2>
      <div class="form-grid">
        <label for={`${idPrefix}-name`}>Name</label>
        <input
          id={`${idPrefix}-name`}
          value={name}
          required
          maxLength={255}
          aria-invalid={invalid('name')}
          onInput={(e) => setName(e.currentTarget.value)}
        />
        <label for={`${idPrefix}-type`}>Type</label>
        <select
          id={`${idPrefix}-type`}
          value={typeId}
          disabled={editing !== undefined}
          onChange={(e) => changeType(e.currentTarget.value)}
        >
          {types.map((t) => (
            <option value={t.id} key={t.id}>
              {t.name}
            </option>
          ))}
        </select>
        {type?.fields.map((f) => (
          <FieldInput
            key={`${typeId}-${f.name}`}
            id={`${idPrefix}-${f.name}`}
            field={f}
            value={values[f.name] ?? ''}
            stored={editing !== undefined && isStoredSecret(editing, f)}
            invalid={invalid(f.name)}
            onChange={(v) => setValues((cur) => ({ ...cur, [f.name]: v }))}
          />
        ))}
      </div>
      {result && (
        <p class={result.ok ? 'ok-box' : 'error-box'} role={result.ok ? 'status' : 'alert'}>
          {result.text}
        </p>
      )}
      <div class="form-actions">
        <button type="submit" class="primary" disabled={busy !== null}>
          {busy === 'save' ? 'Saving…' : 'Save'}
        </button>
        <button type="button" onClick={() => void test()} disabled={busy !== null}>
          {busy === 'test' ? 'Testing…' : 'Test'}
        </button>
        <button type="button" onClick={onCancel} disabled={busy === 'save'}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function FieldInput(props: {
  id: string;
  field: ConfigField;
  value: string | boolean;
  stored: boolean;
  invalid: 'true' | undefined;
  onChange: (value: string | boolean) => void;
}) {
  const { id, field, value, stored, invalid, onChange } = props;
  const hintId = `${id}-hint`;
  const label = `${humanize(field.name)}${field.required ? '' : ' (optional)'}`;
  if (field.type === 'boolean') {
    return (
      <>
        <span />
        <label class="check">
          <input
            id={id}
            type="checkbox"
            checked={value === true}
            aria-describedby={hintId}
            onChange={(e) => onChange(e.currentTarget.checked)}
          />
          {label}
          <small id={hintId} class="hint">
            {field.description}
          </small>
        </label>
      </>
    );
  }
  const numeric = field.type === 'integer' || field.type === 'number';
  return (
    <>
      <label for={id}>{label}</label>
      <span class="field">
        <input
          id={id}
          name={field.name}
          type={(field.secret ? 'password' : numeric ? 'number' : 'text') as 'text'}
          inputMode={numeric ? 'numeric' : undefined}
          autoComplete={field.secret ? 'new-password' : 'off'}
          spellcheck={false}
          value={String(value)}
          required={field.required && !stored}
          placeholder={stored ? 'unchanged' : field.default !== undefined ? String(field.default) : undefined}
          aria-describedby={hintId}
          aria-invalid={invalid}
          onInput={(e) => onChange(e.currentTarget.value)}
        />
        <small id={hintId} class="hint">
          {stored
            ? 'Stored and not shown. Leave empty to keep it (only while the host, port, database and user stay the same).'
            : field.description}
        </small>
      </span>
    </>
  );
}

function initialValues(type: ConnectionType | undefined, editing: Connection | undefined): Values {
  const out: Values = {};
  for (const f of type?.fields ?? []) {
    const stored = editing?.configuration[f.name];
    if (f.type === 'boolean') {
      out[f.name] = typeof stored === 'boolean' ? stored : f.default === true;
    } else if (f.secret && stored === SECRET_PLACEHOLDER) {
      out[f.name] = '';
    } else if (stored !== undefined && stored !== null) {
      out[f.name] = String(stored);
    } else {
      out[f.name] = !editing && f.default !== undefined ? String(f.default) : '';
    }
  }
  return out;
}

function isStoredSecret(connection: Connection, field: ConfigField): boolean {
  return field.secret && connection.configuration[field.name] === SECRET_PLACEHOLDER;
}

const WORDS: Record<string, string> = { ssl: 'SSL', dbname: 'Database', passwd: 'Password' };

/** "read_only" → "Read only", "ssl" → "SSL". */
export function humanize(name: string): string {
  if (WORDS[name]) return WORDS[name]!;
  const text = name.replace(/_/g, ' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}
