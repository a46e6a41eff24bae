import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // Imports follow the layers (STYLE.md): errors and names at the bottom, then config, then the areas'
  // rules, then HTTP (src/http and every *routes.ts), then the composition root (index, app, server, cli).
  {
    files: ['src/errors.ts', 'src/names.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['./*', '../*'], message: 'errors and names import nothing of Usher.' }] }] },
  },
  {
    files: ['src/config/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['../*', '!../errors.js', '!../names.js'], message: 'config/ imports nothing above it.' }] }],
    },
  },
  {
    files: ['src/crypto/**/*.ts', 'src/db/**/*.ts', 'src/events/**/*.ts', 'src/users/**/*.ts', 'src/sessions/**/*.ts', 'src/authz/**/*.ts', 'src/authn/**/*.ts', 'src/invites/**/*.ts', 'src/api-keys/**/*.ts', 'src/cluster/**/*.ts'],
    ignores: ['**/*routes.ts', 'src/authn/chain.ts', 'src/authn/hooks.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/http/*', '**/*routes.js', '**/index.js', '**/app.js'], message: 'Services never import from the HTTP layer or the composition root.' }] },
      ],
    },
  },
  {
    files: ['src/users/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/sessions/*', '**/authn/*', '**/index.js', '**/app.js'], message: 'users/ knows nothing of sessions or authentication.' }] },
      ],
    },
  },
  {
    // The browser console: browser globals; it speaks to Usher only through the typed API client.
    files: ['console/**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser } },
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['../src/*', '../../src/*'], message: 'The console talks to Usher only through its HTTP API.' }] }] },
  },
  {
    // Tests read untyped JSON replies.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
