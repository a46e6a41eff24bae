import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

/**
 * The console's build: dist/console, hashed names under assets/ (served with a year's cache). Asset URLs
 * are relative (./assets/...); the server rewrites them in index.html to wherever the console is mounted.
 * No plugin: esbuild/oxc compile the TSX with Preact's automatic runtime.
 */
export default defineConfig({
  root,
  base: './',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    // The polyfill would be inline-free anyway, but every browser the console supports has modulepreload.
    modulePreload: { polyfill: false },
    target: 'es2022',
    reportCompressedSize: false,
  },
});
