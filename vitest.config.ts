import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Installs and starts what the tests need, or stops the run naming what is missing.
    globalSetup: ['test/global-setup.ts'],
    // Every answer the tests receive is checked against openapi.json (test/helpers/openapi-check.ts).
    setupFiles: ['test/setup.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests are I/O bound; two cores, a few files at once.
    maxWorkers: 3,
    // expect.poll waits for what a page shows after a request: on a loaded machine that takes more than the
    // default second, and polling ends as soon as it holds.
    expect: { poll: { timeout: 10_000 } },
  },
});
