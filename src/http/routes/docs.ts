import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

/**
 * A self-contained API reference page: it reads /api/openapi.json in the browser and lists every
 * operation with its parameters and responses. No CDN, so it works on a closed network.
 */
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>qrun API</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }
  h1 { margin-bottom: 0; } .intro { color: #555; }
  section { border-top: 1px solid #ddd; padding: .6rem 0; }
  .method { display: inline-block; min-width: 4.5rem; font-weight: 600; font-family: ui-monospace, monospace; }
  .path { font-family: ui-monospace, monospace; } .summary { color: #555; margin-left: .5rem; }
  details pre { background: #f6f6f6; padding: .6rem; overflow: auto; font-size: 13px; }
  .GET { color: #1a7f37; } .POST { color: #0969da; } .PUT { color: #9a6700; } .DELETE { color: #cf222e; }
</style>
</head>
<body>
<h1>qrun API</h1>
<p class="intro" id="intro">Loading <a href="/api/openapi.json">/api/openapi.json</a>…</p>
<div id="ops"></div>
<script>
fetch('/api/openapi.json').then(r => r.json()).then(doc => {
  document.getElementById('intro').textContent = doc.info.description + ' (version ' + doc.info.version + ')';
  const ops = document.getElementById('ops');
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const s = document.createElement('section');
      const head = document.createElement('div');
      const m = document.createElement('span'); m.className = 'method ' + method.toUpperCase(); m.textContent = method.toUpperCase();
      const p = document.createElement('span'); p.className = 'path'; p.textContent = path;
      const sum = document.createElement('span'); sum.className = 'summary'; sum.textContent = op.summary || '';
      head.append(m, p, sum);
      const d = document.createElement('details');
      const ds = document.createElement('summary'); ds.textContent = 'parameters, body and responses';
      const pre = document.createElement('pre');
      pre.textContent = JSON.stringify({ parameters: op.parameters, requestBody: op.requestBody, responses: op.responses }, null, 2);
      d.append(ds, pre);
      s.append(head, d);
      ops.append(s);
    }
  }
}).catch(err => { document.getElementById('intro').textContent = 'Could not load the OpenAPI document: ' + err; });
</script>
</body>
</html>
`;

export const docsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/api/docs', { config: { public: true }, schema: { hide: true } }, async (_req, reply) =>
    reply.type('text/html; charset=utf-8').send(PAGE),
  );
};
