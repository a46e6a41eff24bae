/**
 * One benchmark target per process, started by bench/run.ts and bench/sessions.ts (through bench/lib.ts)
 * with `node --import tsx bench/servers.ts <mode>`.
 *
 *   bare          Express 5 alone, answering GET /api/v1/auth/me with a fixed user JSON.
 *   bare-dressed  The same with helmet and a JSON request log line, as every Usher response has.
 *   usher         The standalone Usher app (buildApp) on a fresh SQLite data dir, sessions in SQL.
 *   usher-pg      The same on PostgreSQL (BENCH_PG_URL, BENCH_PG_SCHEMA).
 *   usher-proxy   The standalone app on SQLite with proxy auth on, trusting 127.0.0.1 (the bench's own address),
 *                 members of `bench-admins` admins: authenticated by Remote-User/Remote-Groups headers.
 *   usher-redis   The standalone app on SQLite with sessions and login counters in Redis (BENCH_REDIS_URL,
 *                 BENCH_REDIS_PREFIX).
 *
 * Settings come from the environment: BENCH_DATA_DIR, BENCH_ADMIN_USERNAME, BENCH_ADMIN_PASSWORD, BENCH_API_KEY
 * (the bootstrap admin), and per mode the ones above. The port is reported to the parent over IPC as
 * { type: 'ready', port }; the process exits when the parent disconnects or sends SIGTERM/SIGINT.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express } from 'express';
import helmet from 'helmet';
import { requestLog } from '../src/http/request-log.js';
import { createLogger } from '../src/logger.js';
import { buildApp } from '../src/app.js';
import { createUsher, type Usher } from '../src/index.js';

// Only types may be imported from this file: importing a value would start a server in the importer.
export type ServerMode = 'bare' | 'bare-dressed' | 'usher' | 'usher-pg' | 'usher-proxy' | 'usher-redis';
const MODES: readonly ServerMode[] = ['bare', 'bare-dressed', 'usher', 'usher-pg', 'usher-proxy', 'usher-redis'];

/** What a server tells its parent over IPC. */
export type ServerMessage = { type: 'ready'; port: number } | { type: 'failed'; message: string };

/** What GET /me answers for the bootstrap admin, in the shape toPublicUser() gives. */
const BARE_USER = Object.freeze({
  id: 1,
  username: 'bench',
  name: null,
  email: null,
  role: 'admin',
  active: true,
  hasPassword: true,
  authSource: 'local',
  passwordLogin: true,
  createdAt: '2026-01-15T09:30:12.345Z',
  updatedAt: '2026-01-15T09:30:12.345Z',
  lastActiveAt: '2026-01-15T09:31:02.118Z',
  lastLoginAt: null,
  recoveryCode: 'none',
});

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function send(message: ServerMessage): void {
  if (process.send) process.send(message);
}

async function build(mode: ServerMode): Promise<{ app: Express; usher?: Usher }> {
  if (mode === 'bare' || mode === 'bare-dressed') {
    const app = express();
    app.disable('x-powered-by');
    // The reference with what every Usher response also carries: helmet's headers and a JSON log line.
    if (mode === 'bare-dressed') app.use(helmet(), requestLog(createLogger('info')));
    app.get('/api/v1/auth/me', (_req, res) => {
      res.json(BARE_USER);
    });
    return { app };
  }
  const database =
    mode === 'usher-pg' ? { url: required('BENCH_PG_URL'), schema: required('BENCH_PG_SCHEMA') } : undefined;
  const redis = mode === 'usher-redis' ? { url: required('BENCH_REDIS_URL'), keyPrefix: required('BENCH_REDIS_PREFIX') } : undefined;
  const usher = await createUsher({
    config: {
      dataDir: required('BENCH_DATA_DIR'),
      ...(database ? { database } : {}),
      log: { level: 'info' },
      bootstrap: { adminUsername: required('BENCH_ADMIN_USERNAME'), adminPassword: required('BENCH_ADMIN_PASSWORD'), adminApiKey: required('BENCH_API_KEY') },
      ...(redis ? { redis } : {}),
      ...(mode === 'usher-proxy'
        ? { server: { trustedProxies: ['127.0.0.1'] }, auth: { proxy: { enabled: true, adminGroups: ['bench-admins'] } } }
        : {}),
    },
  });
  return { app: buildApp(usher), usher };
}

async function main(): Promise<void> {
  const mode = process.argv[2] as ServerMode | undefined;
  if (mode === undefined || !MODES.includes(mode)) throw new Error(`unknown mode ${JSON.stringify(mode)} (${MODES.join(' | ')})`);

  // Filled in as start-up proceeds; stop() may run at any point of it.
  const state: { server?: Server; usher?: Usher; stopping: boolean } = { stopping: false };
  const stop = () => {
    if (state.stopping) return;
    state.stopping = true;
    setTimeout(() => process.exit(0), 3_000).unref();
    const closeAll = () => void (state.usher ? state.usher.close() : Promise.resolve()).finally(() => process.exit(0));
    if (!state.server) return closeAll();
    state.server.closeAllConnections();
    state.server.close(closeAll);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The parent went away (finished or crashed): never outlive it.
  process.on('disconnect', stop);

  const built = await build(mode);
  state.usher = built.usher;
  if (state.stopping || (process.send && !process.connected)) return stop();
  // Express 5 calls this back once: with an error if listening failed, else when listening.
  const server = built.app.listen(0, '127.0.0.1', (err?: Error) => {
    if (err) {
      send({ type: 'failed', message: `cannot listen: ${err.message}` });
      process.exit(1);
    }
    send({ type: 'ready', port: (server.address() as AddressInfo).port });
  });
  state.server = server;
}

main().catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`bench server ${process.argv[2] ?? '?'}: ${message}\n`);
  send({ type: 'failed', message });
  process.exit(1);
});
