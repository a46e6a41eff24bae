#!/usr/bin/env node
/**
 * Builds the browser console (console/ → dist/console) with Vite.
 *   --if-missing   only when dist/console/index.html is not there (npm start)
 *   --if-possible  skip quietly when the sources or Vite are absent (npm ci's prepare: in the Docker
 *                  build stage the sources are copied after npm ci; a production install has no Vite)
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const built = join(root, 'dist', 'console', 'index.html');

if (args.has('--if-missing') && existsSync(built)) process.exit(0);
if (!existsSync(join(root, 'console', 'index.html'))) {
  if (args.has('--if-possible')) process.exit(0);
  console.error('build-console: console/ is missing');
  process.exit(1);
}
let vite;
try {
  vite = await import('vite');
} catch {
  if (args.has('--if-possible') || args.has('--if-missing')) {
    console.error('build-console: Vite is not installed (npm install without --omit=dev builds the console); the console will answer 503');
    process.exit(0);
  }
  throw new Error('build-console: Vite is not installed: run npm install');
}
await vite.build({ configFile: join(root, 'console', 'vite.config.ts') });
console.log('build-console: built dist/console');
