import {
  autocompletion,
  closeBrackets,
  closeBracketsKeymap,
  closeCompletion,
  completionKeymap,
} from '@codemirror/autocomplete';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { MySQL, PostgreSQL, SQLite, StandardSQL, sql, type SQLDialect } from '@codemirror/lang-sql';
import { bracketMatching, HighlightStyle, indentOnInput, syntaxHighlighting } from '@codemirror/language';
import { Compartment, EditorState, Prec, StateEffect, StateField } from '@codemirror/state';
import {
  Decoration,
  type DecorationSet,
  drawSelection,
  EditorView,
  highlightActiveLine,
  highlightActiveLineGutter,
  keymap,
  lineNumbers,
  placeholder,
} from '@codemirror/view';
import { tags as t } from '@lezer/highlight';

/** The SQL dialect for a connection type: DuckDB's grammar is close to PostgreSQL's. */
export function dialectFor(connectionType: string | undefined): SQLDialect {
  switch (connectionType) {
    case 'postgresql':
    case 'duckdb':
      return PostgreSQL;
    case 'mysql':
      return MySQL;
    case 'sqlite':
      return SQLite;
    default:
      return StandardSQL;
  }
}

/** Token colours come from CSS variables, so the light and dark themes (styles.css) both apply. */
const highlight = HighlightStyle.define([
  { tag: t.keyword, color: 'var(--syn-keyword)', fontWeight: '600' },
  { tag: [t.string, t.special(t.string)], color: 'var(--syn-string)' },
  { tag: [t.number, t.bool, t.null], color: 'var(--syn-number)' },
  { tag: [t.lineComment, t.blockComment], color: 'var(--syn-comment)', fontStyle: 'italic' },
  { tag: [t.typeName, t.standard(t.name)], color: 'var(--syn-type)' },
  { tag: [t.operator, t.punctuation, t.bracket], color: 'var(--syn-punct)' },
  { tag: [t.special(t.name), t.special(t.variableName)], color: 'var(--syn-name)' },
]);

const theme = EditorView.theme({
  '&': { height: '100%', fontSize: '14px', backgroundColor: 'var(--bg-input)', color: 'var(--fg)' },
  '&.cm-focused': { outline: '2px solid var(--focus)', outlineOffset: '-2px' },
  '.cm-scroller': { fontFamily: 'var(--mono)', lineHeight: '1.5' },
  '.cm-content': { caretColor: 'var(--fg)' },
  '.cm-gutters': { backgroundColor: 'var(--bg-subtle)', color: 'var(--fg-muted)', border: 'none' },
  '.cm-activeLine': { backgroundColor: 'var(--bg-active-line)' },
  '.cm-activeLineGutter': { backgroundColor: 'var(--bg-active-line)' },
  '&.cm-focused .cm-selectionBackground, .cm-selectionBackground': { backgroundColor: 'var(--selection)' },
  '.cm-sql-error': { textDecoration: 'underline wavy var(--danger)', backgroundColor: 'var(--danger-bg)' },
  '.cm-sql-error-line': { backgroundColor: 'var(--danger-bg)' },
  '.cm-tooltip': { backgroundColor: 'var(--bg)', color: 'var(--fg)', border: '1px solid var(--border)' },
});

/** The database's error position, marked until the text changes. */
const setError = StateEffect.define<{ from: number; to: number } | null>();
const errorMark = StateField.define<DecorationSet>({
  create: () => Decoration.none,
  update(marks, tr) {
    for (const e of tr.effects) {
      if (e.is(setError)) {
        if (!e.value) return Decoration.none;
        const line = tr.state.doc.lineAt(e.value.from);
        return Decoration.set([
          Decoration.line({ class: 'cm-sql-error-line' }).range(line.from),
          Decoration.mark({ class: 'cm-sql-error', attributes: { 'data-testid': 'sql-error-mark' } }).range(
            e.value.from,
            e.value.to,
          ),
        ]);
      }
    }
    return tr.docChanged ? Decoration.none : marks;
  },
  provide: (f) => EditorView.decorations.from(f),
});

export interface SqlEditor {
  view: EditorView;
  /** The SQL to run: the selection when there is one, else everything; `offset` is where it starts. */
  runnable(): { sql: string; offset: number };
  setDialect(connectionType: string | undefined): void;
  setText(text: string): void;
  /** Marks the character at `offset` (0-based, in the document) and the word it starts; null clears. */
  markError(offset: number | null): void;
  destroy(): void;
}

export function createSqlEditor(
  parent: HTMLElement,
  options: { text: string; onRun: () => void; onChange: (text: string) => void },
): SqlEditor {
  const language = new Compartment();
  // In a shadow root, CodeMirror styles itself with a constructed style sheet (adoptedStyleSheets); in the
  // document it would add <style> elements, which the console's Content-Security-Policy refuses.
  const root = parent.shadowRoot ?? parent.attachShadow({ mode: 'open' });
  const view = new EditorView({
    parent: root,
    root,
    state: EditorState.create({
      doc: options.text,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        history(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        closeBrackets(),
        autocompletion(),
        highlightActiveLine(),
        placeholder('select … from …'),
        // Above the default keymap, which binds Mod-Enter to "insert blank line".
        Prec.highest(
          keymap.of([
            {
              key: 'Mod-Enter',
              preventDefault: true,
              run: () => {
                options.onRun();
                return true;
              },
            },
          ]),
        ),
        // No Tab binding: Tab keeps moving focus out of the editor (keyboard users are not trapped).
        keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...historyKeymap, ...completionKeymap]),
        language.of(sql({ dialect: StandardSQL, upperCaseKeywords: false })),
        syntaxHighlighting(highlight),
        errorMark,
        theme,
        // tabindex: already in the tab order as contenteditable; explicit so checkers see it as focusable.
        EditorView.contentAttributes.of({
          'aria-label': 'SQL editor',
          'aria-multiline': 'true',
          tabindex: '0',
        }),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) options.onChange(u.state.doc.toString());
        }),
      ],
    }),
  });

  return {
    view,
    runnable() {
      closeCompletion(view);
      const sel = view.state.selection.main;
      if (!sel.empty) return { sql: view.state.sliceDoc(sel.from, sel.to), offset: sel.from };
      return { sql: view.state.doc.toString(), offset: 0 };
    },
    setDialect(connectionType) {
      view.dispatch({ effects: language.reconfigure(sql({ dialect: dialectFor(connectionType) })) });
    },
    setText(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    },
    markError(offset) {
      if (offset === null || offset < 0 || offset > view.state.doc.length) {
        view.dispatch({ effects: setError.of(null) });
        return;
      }
      const doc = view.state.doc;
      const from = Math.min(offset, Math.max(0, doc.length - 1));
      let to = from;
      const text = doc.sliceString(from, Math.min(doc.length, from + 200));
      const word = /^[\w$."]+/.exec(text);
      to = from + Math.max(1, word ? word[0].length : 1);
      view.dispatch({
        effects: [setError.of({ from, to: Math.min(to, doc.length) }), EditorView.scrollIntoView(from)],
      });
    },
    destroy() {
      view.destroy();
    },
  };
}
