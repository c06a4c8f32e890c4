import { defineConfig } from 'vite';

/** The console: web/ → dist/web/ (index.html and fingerprinted files in assets/), served by qrun at `/`. */
const root = decodeURIComponent(new URL('.', import.meta.url).pathname);

export default defineConfig({
  root,
  base: '/',
  publicDir: false,
  // Preact's JSX runtime, without a framework plugin.
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: '../dist/web',
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2022',
    // Everything ships with the bundle: no CDN, nothing inlined into index.html (the CSP forbids it).
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1500,
    reportCompressedSize: false,
  },
});
