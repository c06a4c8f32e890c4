import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createQrun } from '../src/app/qrun.js';
import { loadConfig } from '../src/config/config.js';
import { buildHttpApp } from '../src/http/app.js';

/**
 * Writes the OpenAPI document that `GET /api/openapi.json` serves to the file named by the first argument,
 * from a throw-away embedded qrun (temporary data directory, nothing listens), so `npm run lint:openapi` can
 * check it with `redocly lint` without a running server.
 */
async function main(): Promise<void> {
  const out = process.argv[2];
  if (out === undefined) throw new Error('usage: tsx scripts/openapi-document.ts <output.json>');
  const dir = mkdtempSync(path.join(tmpdir(), 'qrun-openapi-'));
  try {
    const config = loadConfig({
      QRUN_DATA_DIR: path.join(dir, 'data'),
      QRUN_FILE_ROOT: path.join(dir, 'files'),
      QRUN_LOG_LEVEL: 'silent',
    });
    const qrun = await createQrun(config, 'start');
    try {
      const app = await buildHttpApp(qrun);
      await app.ready();
      mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
      writeFileSync(out, `${JSON.stringify(app.swagger(), null, 2)}\n`);
      await app.close();
    } finally {
      await qrun.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
