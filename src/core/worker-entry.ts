import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/**
 * Where a worker's entry module lives (next to the module that starts it), and the Node flags the
 * worker needs to run it; usable for worker threads and forked processes alike.
 *
 * Compiled (`node dist/...`) the sibling is a `.js` file and plain Node runs it. Under vitest or tsx
 * the caller is itself a `.ts` source, so the sibling is `.ts` too and the worker must load tsx
 * (workers do not inherit vitest's transform). tsx is resolved from here rather than by bare name,
 * because `--import tsx` would be resolved against the current directory.
 *
 * `execArgv` is always explicit, so a worker never inherits flags such as `--inspect` from the parent.
 */
export function workerEntry(importMetaUrl: string, baseName: string): { url: URL; execArgv: string[] } {
  if (importMetaUrl.endsWith('.ts')) {
    const tsx = pathToFileURL(createRequire(importMetaUrl).resolve('tsx')).href;
    return { url: new URL(`./${baseName}.ts`, importMetaUrl), execArgv: ['--import', tsx] };
  }
  return { url: new URL(`./${baseName}.js`, importMetaUrl), execArgv: [] };
}
