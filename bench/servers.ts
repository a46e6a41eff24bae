/**
 * One benchmark target per process, started by bench/run.ts and bench/sessions.ts (through bench/lib.ts)
 * with `node --import tsx bench/servers.ts <mode>`.
 *
 *   bare          Express 5 alone, answering GET /api/v1/auth/me with a fixed user JSON, and GET /api/v1/auth/verify
 *                 with `{ user }` and the four Remote-* headers, as Usher's forward auth answers.
 *   bare-dressed  The same with helmet and a JSON request log line, as every Usher response has.
 *   passport      What an app writes by hand instead: bare-dressed plus passport with passport-headerapikey,
 *                 each request's X-API-Key looked up by its SHA-256 in a SQLite table (knex, no cache), GET
 *                 /api/v1/auth/me answering the same JSON.
 *   usher         The standalone Usher app (buildApp) on a fresh SQLite data dir, sessions in SQL.
 *   usher-pg      The same on PostgreSQL (BENCH_PG_URL, BENCH_PG_SCHEMA).
 *   usher-proxy   The standalone app on SQLite with proxy auth on, trusting 127.0.0.1 (the bench's own address),
 *                 members of `bench-admins` admins: authenticated by Remote-User/Remote-Groups headers.
 *   usher-redis   The standalone app on SQLite with sessions and login counters in Redis (BENCH_REDIS_URL,
 *                 BENCH_REDIS_PREFIX).
 *   usher-library A host app embedding Usher (library mode) on SQLite with 10,000 users and 100 custom roles:
 *                 GET /api/certs guarded by the app's `cert.create` (usher.requirePermission), with helmet
 *                 and a JSON request log as bare-dressed has. The API key of a user whose custom role
 *                 inherits `cert.create` is sent to the parent with the port.
 *
 * Settings come from the environment: BENCH_DATA_DIR, BENCH_ADMIN_USERNAME, BENCH_ADMIN_PASSWORD, BENCH_API_KEY
 * (the bootstrap admin), BENCH_METRICS_TOKEN (Usher modes: /metrics on, behind this bearer token), and per
 * mode the ones above. The port is reported to the parent over IPC as
 * { type: 'ready', port }; the process exits when the parent disconnects or sends SIGTERM/SIGINT.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import express, { type Express } from 'express';
import knex from 'knex';
import passport from 'passport';
import { HeaderAPIKeyStrategy } from 'passport-headerapikey';
import helmet from 'helmet';
import { requestLog } from '../src/http/request-log.js';
import { createLogger } from '../src/logger.js';
import { buildApp } from '../src/app.js';
import { createUsher, type Usher } from '../src/index.js';

// Only types may be imported from this file: importing a value would start a server in the importer.
export type ServerMode = 'bare' | 'bare-dressed' | 'passport' | 'usher' | 'usher-pg' | 'usher-proxy' | 'usher-redis' | 'usher-library';
const MODES: readonly ServerMode[] = ['bare', 'bare-dressed', 'passport', 'usher', 'usher-pg', 'usher-proxy', 'usher-redis', 'usher-library'];

/** The guarded route of usher-library. */
const GUARDED_PATH = '/api/certs';
const LIBRARY_USERS = 10_000;
const LIBRARY_ROLES = 100;

/** What a server tells its parent over IPC. */
export type ServerMessage = { type: 'ready'; port: number; headers?: Record<string, string> } | { type: 'failed'; message: string };

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

/** The headers GET /verify answers for the bootstrap admin. */
const BARE_REMOTE = Object.freeze({ 'Remote-User': 'bench', 'Remote-Groups': 'admin,user', 'Remote-Email': '', 'Remote-Name': '' });

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function send(message: ServerMessage): void {
  if (process.send) process.send(message);
}

/**
 * 100 custom roles (chains of ten, each inheriting the one before; every seventh holds `cert.create`) and
 * 10,000 users spread over them, written straight into the tables and compiled once (making them through
 * the API compiles the policy at each role: minutes). Answers the key of a user whose role inherits
 * `cert.create` without holding it itself.
 */
async function seedPolicy(usher: Usher): Promise<string> {
  const now = Date.now();
  const db = usher.db;
  const usherPermissions = usher.authz.permissions.map((p) => p.name).filter((p) => !p.startsWith('self.') && p !== 'cert.create');
  const pair = (p: string) => ({ object: p.slice(0, p.indexOf('.')), action: p.slice(p.indexOf('.') + 1) });
  await db.transaction(async (trx) => {
    for (let i = 0; i < LIBRARY_ROLES; i++) {
      const role = `role-${i}`;
      await trx('roles').insert({ name: role, description: '', built_in: false, created_at: now, updated_at: now });
      await trx('role_inherits').insert({ role, inherits: i % 10 === 0 ? 'user' : `role-${i - 1}` });
      const own = [...usherPermissions.filter((_, j) => (i + j) % 3 === 0), ...(i % 7 === 0 ? ['cert.create'] : [])];
      if (own.length > 0) await trx('role_permissions').insert(own.map((p) => ({ role, ...pair(p) })));
    }
    const rows = Array.from({ length: LIBRARY_USERS }, (_, i) => ({ username: `u${i}`, username_key: `u${i}`, role: `role-${i % LIBRARY_ROLES}`, created_at: now, updated_at: now }));
    for (let i = 0; i < rows.length; i += 500) await trx('users').insert(rows.slice(i, i + 500));
    await trx('locks').where({ name: 'policy' }).increment('version', 1);
  });
  await usher.authz.refresh();
  // role-15 inherits role-14 (holds cert.create as 14 % 7 === 0) and does not hold it itself.
  const { apiKey } = await usher.users.create({ username: 'bench-certs', role: 'role-15' });
  if (!usher.authz.can({ id: -1, role: 'role-15' }, 'cert', 'create') || usher.authz.policy.roles.get('role-15')!.permissions.includes('cert.create')) {
    throw new Error('usher-library: role-15 should hold cert.create through role-14 alone');
  }
  return apiKey;
}

/** The `passport` mode: a hand-written API-key check of the kind Usher replaces, one SQL lookup per request. */
async function passportApp(): Promise<{ app: Express }> {
  const db = knex({ client: 'sqlite3', connection: { filename: join(required('BENCH_DATA_DIR'), 'passport.db') }, useNullAsDefault: true, pool: { min: 1, max: 1 } });
  await db.schema.createTable('users', (t) => {
    t.increments('id');
    t.string('key_hash').notNullable().unique();
    t.text('profile').notNullable();
  });
  const digest = (key: string) => createHash('sha256').update(key).digest('hex');
  await db('users').insert({ key_hash: digest(required('BENCH_API_KEY')), profile: JSON.stringify(BARE_USER) });
  passport.use(
    new HeaderAPIKeyStrategy({ header: 'X-API-Key', prefix: '' }, false, (key, done) => {
      db('users')
        .where({ key_hash: digest(key) })
        .first()
        .then(
          (row: { profile: string } | undefined) => done(null, row ? (JSON.parse(row.profile) as object) : false),
          (err: Error) => done(err),
        );
    }),
  );
  const app = express();
  app.disable('x-powered-by');
  app.use(helmet(), requestLog(createLogger('info')), passport.initialize());
  app.get('/api/v1/auth/me', passport.authenticate('headerapikey', { session: false }), (req, res) => {
    res.json(req.user);
  });
  return { app };
}

async function build(mode: ServerMode): Promise<{ app: Express; usher?: Usher; headers?: Record<string, string> }> {
  if (mode === 'usher-library') {
    const usher = await createUsher({
      config: {
        dataDir: required('BENCH_DATA_DIR'),
        log: { level: 'info' },
        bootstrap: { adminUsername: required('BENCH_ADMIN_USERNAME'), adminPassword: required('BENCH_ADMIN_PASSWORD'), adminApiKey: required('BENCH_API_KEY') },
        permissions: [{ name: 'cert.create', description: 'Issue a certificate.' }],
      },
    });
    const apiKey = await seedPolicy(usher);
    const app = express();
    app.disable('x-powered-by');
    app.use(helmet(), requestLog(createLogger('info')));
    // The host's route ahead of Usher's router: mounted first, each host request walks the router's layers
    // (every endpoint), about 10% of this route's requests/s on a 2-CPU machine, which is not the check's.
    app.get(GUARDED_PATH, usher.authenticate, usher.requirePermission('cert', 'create'), (_req, res) => {
      res.json(BARE_USER);
    });
    app.use(usher.router);
    return { app, usher, headers: { 'x-api-key': apiKey } };
  }
  if (mode === 'passport') return passportApp();
  if (mode === 'bare' || mode === 'bare-dressed') {
    const app = express();
    app.disable('x-powered-by');
    // The reference with what every Usher response also carries: helmet's headers and a JSON log line.
    if (mode === 'bare-dressed') app.use(helmet(), requestLog(createLogger('info')));
    app.get('/api/v1/auth/me', (_req, res) => {
      res.json(BARE_USER);
    });
    app.get('/api/v1/auth/verify', (_req, res) => {
      res.set(BARE_REMOTE).json({ user: BARE_USER });
    });
    return { app };
  }
  const database =
    mode === 'usher-pg' ? { url: required('BENCH_PG_URL'), schema: required('BENCH_PG_SCHEMA') } : undefined;
  const redis = mode === 'usher-redis' ? { url: required('BENCH_REDIS_URL'), keyPrefix: required('BENCH_REDIS_PREFIX') } : undefined;
  const metricsToken = process.env.BENCH_METRICS_TOKEN;
  const usher = await createUsher({
    config: {
      dataDir: required('BENCH_DATA_DIR'),
      ...(database ? { database } : {}),
      log: { level: 'info' },
      bootstrap: { adminUsername: required('BENCH_ADMIN_USERNAME'), adminPassword: required('BENCH_ADMIN_PASSWORD'), adminApiKey: required('BENCH_API_KEY') },
      ...(redis ? { redis } : {}),
      ...(metricsToken ? { metrics: { enabled: true, token: metricsToken } } : {}),
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
    send({ type: 'ready', port: (server.address() as AddressInfo).port, ...(built.headers ? { headers: built.headers } : {}) });
  });
  state.server = server;
}

main().catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`bench server ${process.argv[2] ?? '?'}: ${message}\n`);
  send({ type: 'failed', message });
  process.exit(1);
});
