import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as prettier from 'prettier';
import { Value } from 'typebox/value';
import { describe, expect, it } from 'vitest';
import {
  OPERATIONS_MD,
  TABLE_END,
  TABLE_START,
  settingsRows,
  settingsTable,
  withSettingsTable,
} from '../../src/config/docs.js';
import { settingEntries } from '../../src/config/settings.js';

const SRC = path.resolve(import.meta.dirname, '../../src');

describe('the settings table of docs/OPERATIONS.md', () => {
  it('is what `npm run docs:config` writes from src/config/settings.ts', () => {
    const doc = readFileSync(OPERATIONS_MD, 'utf8');
    expect(doc, 'the settings table is stale: run npm run docs:config').toBe(withSettingsTable(doc));
  });

  it('is laid out as Prettier lays it out, so `npm run format` and the generator agree', async () => {
    const text = `${TABLE_START}\n\n${settingsTable()}\n\n${TABLE_END}\n`;
    const options = await prettier.resolveConfig(OPERATIONS_MD);
    expect(await prettier.format(text, { ...options, parser: 'markdown' })).toBe(text);
  });

  // The client commands (src/cli/client) read QRUN_URL and QRUN_API_KEY, which docs/CLI.md documents: they
  // are the client's, not the server's settings.
  it('has a row for every QRUN_ variable that src/ names, outside the client commands', () => {
    const documented = new Set(
      settingsRows().flatMap(([variable]) => variable.match(/QRUN_[A-Z0-9_]+/g) ?? []),
    );
    const secrets = settingEntries()
      .filter(([, s]) => s.secret === true)
      .map(([, s]) => `${s.env}_FILE`);
    const named = new Set<string>();
    for (const file of readdirSync(SRC, { recursive: true, encoding: 'utf8' })) {
      if (!file.endsWith('.ts') || file.startsWith(path.join('cli', 'client'))) continue;
      for (const name of readFileSync(path.join(SRC, file), 'utf8').match(/QRUN_[A-Z0-9_]+/g) ?? []) {
        // `QRUN_DUCKDB_*` and the like name a family, not a variable.
        if (!name.endsWith('_') && !secrets.includes(name)) named.add(name);
      }
    }
    expect([...named].filter((name) => !documented.has(name))).toEqual([]);
  });
});

describe('ConfigSchema', () => {
  it.each(settingEntries().filter(([, s]) => s.default !== undefined && s.docDefault === undefined))(
    '%s: its default passes its own checks',
    (_, setting) => {
      expect(Value.Check(setting, setting.default)).toBe(true);
    },
  );

  it('gives every setting a description and every computed default a docDefault', () => {
    for (const [field, setting] of settingEntries()) {
      expect(setting.description, field).not.toBe('');
      if (setting.defaultFrom !== undefined) expect(setting.docDefault, field).toBeDefined();
    }
  });
});
