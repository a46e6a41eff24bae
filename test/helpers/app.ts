import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { buildApp } from '../../src/app.js';
import { createUsher, type Usher, type UsherOptions } from '../../src/index.js';
import { openApiDocument } from '../../src/http/openapi.js';
import { DOCUMENT_INFO } from '../../src/http/document-route.js';
import { checkAgainstDocument, stopChecking } from './openapi-check.js';
import { PG_URL, dropSchema, freshSchema, type DbKind } from './db.js';
import { REDIS_URL, pingRedis } from './redis.js';

export interface TestServer {
  url: string;
  usher: Usher;
  dataDir: string;
  close(): Promise<void>;
}

/** Settings in the config file's shape for a fresh database of the given kind. */
export function testSettings(kind: DbKind, extra: Record<string, unknown> = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'usher-test-'));
  const schema = kind === 'postgres' ? freshSchema() : undefined;
  const settings: Record<string, unknown> = {
    dataDir,
    log: { level: 'silent' },
    ...(schema ? { database: { url: PG_URL, schema } } : {}),
    ...extra,
  };
  const cleanup = async () => {
    if (schema) await dropSchema(schema);
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { settings, dataDir, cleanup };
}

/**
 * Starts the standalone app on a fresh database, listening on a free port of 127.0.0.1, or of `host`
 * ('::' takes IPv4 too, as IPv4-mapped addresses). `url` is always on 127.0.0.1.
 */
export async function startServer(
  kind: DbKind,
  opts: { settings?: Record<string, unknown>; hooks?: Omit<UsherOptions, 'config'>; host?: string; port?: number } = {},
): Promise<TestServer> {
  const { settings, dataDir, cleanup } = testSettings(kind, opts.settings);
  const usher = await createUsher({ config: settings, logger: pino({ level: 'silent' }), ...opts.hooks });
  const server: Server = await new Promise((resolve) => {
    const s = buildApp(usher).listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  // The document the server serves at /api/v1/auth/openapi.json, made here so that no test sees the request.
  checkAgainstDocument(url, openApiDocument(usher.endpoints.mounted, DOCUMENT_INFO));
  return {
    url,
    usher,
    dataDir,
    async close() {
      stopChecking(url);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await usher.close();
      await cleanup();
    },
  };
}

/**
 * A server that trusts 127.0.0.1 as its proxy (so tests can set the client address with X-Forwarded-For),
 * with sessions and counters in the real Redis under `redisPrefix` when given (checked first: never skipped).
 */
export async function startBehindLoopbackProxy(kind: DbKind, redisPrefix?: string): Promise<TestServer> {
  if (redisPrefix !== undefined) await pingRedis();
  return startServer(kind, {
    settings: {
      server: { trustedProxies: ['127.0.0.1'] },
      ...(redisPrefix !== undefined ? { redis: { url: REDIS_URL, keyPrefix: redisPrefix } } : {}),
    },
  });
}

/**
 * Several instances of the standalone app on ONE fresh database (one PostgreSQL schema, or one SQLite file
 * in one data dir, with one secret), as a cluster behind a load balancer runs. Closing the last one drops
 * the database.
 */
export async function startInstances(
  kind: DbKind,
  count: number,
  opts: { settings?: Record<string, unknown>; hooks?: Omit<UsherOptions, 'config'> } = {},
): Promise<TestServer[]> {
  const { settings, dataDir, cleanup } = testSettings(kind, opts.settings);
  let open = count;
  const servers: TestServer[] = [];
  // One after another: the first creates the tables and the secret the others then read.
  for (let i = 0; i < count; i++) {
    const usher = await createUsher({ config: settings, logger: pino({ level: 'silent' }), ...opts.hooks });
    const server: Server = await new Promise((resolve) => {
      const s = buildApp(usher).listen(0, '127.0.0.1', () => resolve(s));
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    checkAgainstDocument(url, openApiDocument(usher.endpoints.mounted, DOCUMENT_INFO));
    servers.push({
      url,
      usher,
      dataDir,
      async close() {
        stopChecking(url);
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await usher.close();
        if (--open === 0) await cleanup();
      },
    });
  }
  return servers;
}
