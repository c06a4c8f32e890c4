/**
 * Scenario 4's reference: a plain Fastify route that answers GET /pages/<n> with the stored bytes of
 * qrun's response for page n, held in memory. Same Fastify major, same host and content type as
 * qrun, but no authentication, no metadata lookup and no file read.
 * Run: node --import tsx bench/servers/plain-pages.ts <port> <dir with 0.json, 1.json, …> <count>
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Fastify from 'fastify';

const [port, dir, count] = process.argv.slice(2);
if (port === undefined || dir === undefined || count === undefined) {
  throw new Error('usage: plain-pages.ts <port> <dir> <count>');
}
const pages: Buffer[] = [];
for (let i = 0; i < Number(count); i++) pages.push(readFileSync(path.join(dir, `${i}.json`)));

const app = Fastify({ logger: false });
app.get<{ Params: { n: string } }>('/pages/:n', async (req, reply) => {
  const page = pages[Number(req.params.n)];
  if (page === undefined) return reply.code(404).send();
  return reply.type('application/json; charset=utf-8').send(page);
});
app.get('/healthz', async () => ({ ok: true }));

await app.listen({ host: '127.0.0.1', port: Number(port) });
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void app.close().then(() => process.exit(0)));
}
