import path from 'node:path';
import { PG } from './databases.js';
import { request } from './http.js';
import { ROOT, freePortPair, startChild, waitForHttp, type Child } from './util.js';

const SERVER = path.join(ROOT, 'node_modules/@supabase/postgres-meta/dist/server/server.js');

/**
 * @supabase/postgres-meta (a devDependency), run as its own Fastify service: POST /query {query}
 * runs the SQL on the database named by its PG_META_DB_* settings and answers with every row as
 * one JSON array. Its admin app takes the next port.
 */
export class PostgresMeta {
  private constructor(
    private readonly child: Child,
    readonly base: string,
  ) {}

  static async start(database: string): Promise<PostgresMeta> {
    const port = await freePortPair();
    const child = startChild(process.execPath, [SERVER], {
      cwd: path.dirname(SERVER),
      env: {
        ...process.env,
        PG_META_HOST: '127.0.0.1',
        PG_META_PORT: String(port),
        PG_META_DB_HOST: PG.host,
        PG_META_DB_PORT: String(PG.port),
        PG_META_DB_NAME: database,
        PG_META_DB_USER: PG.user,
        // No query timeout of its own (default 55 s) can end a slow run early.
        PG_QUERY_TIMEOUT_SECS: '600',
      },
    });
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitForHttp(`${base}/health`, child, 120_000);
    } catch (err) {
      await child.stop();
      throw err;
    }
    return new PostgresMeta(child, base);
  }

  /** The whole JSON answer to `sql`, as bytes. */
  async query(sql: string): Promise<Buffer> {
    const { status, body } = await request(`${this.base}/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: sql }),
    });
    if (status !== 200)
      throw new Error(`postgres-meta POST /query: ${status} ${body.toString().slice(0, 500)}`);
    return body;
  }

  stop(): Promise<void> {
    return this.child.stop();
  }
}
