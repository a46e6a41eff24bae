/**
 * `npm run bench`: GET /api/v1/auth/me with an API key, and with a trusted proxy's identity headers
 * (Remote-User and Remote-Groups of a known user), Usher against a bare Express 5 app.
 *
 * Each server runs in its own child process (bench/servers.ts) so autocannon, here in the parent,
 * does not share its event loop. Servers are measured one after the other, in alternating order over
 * two rounds, each after a short warm-up; the best round of each is kept. Usher logs at info (one JSON
 * line per request is part of its cost) to a stdout that goes to /dev/null.
 *
 * One more row loads a host app's route in library mode, GET /api/certs guarded by the app's `cert.create`
 * (usher.requirePermission) with 10,000 users and 100 custom roles, authenticated by an API key: the
 * permission check on the request path, beside the floors. Its ratio to express+helmet+log (the same
 * dressing) is printed too.
 *
 * Environment:
 *   BENCH_DURATION   seconds per measurement (default 10)
 *   USHER_BENCH_PG=1 also measure Usher on PostgreSQL (postgres://postgres@127.0.0.1:5432/test, throwaway schema)
 *   BENCH_ONLY=library  only the two floors, Usher's API-key row and the library-mode permission row
 *
 * Exit 1 when a server fails to start or answers anything but 2xx; exit 0 otherwise, target met or not.
 */
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import knex from 'knex';
import {
  ADMIN_USERNAME,
  CONNECTIONS,
  PATH,
  PIPELINING,
  ROUNDS,
  START_TIMEOUT_MS,
  WARMUP_SECONDS,
  BenchFailure,
  bareBody,
  bestOfRounds,
  checkMe,
  durationSeconds,
  log,
  onCleanup,
  parsed,
  ratio,
  request,
  round,
  runBench,
  showRatio,
  startServers,
  summary,
  usherEnv,
  withTimeout,
  writeThroughput,
  type Figures,
  type Target,
} from './lib.js';

/** Usher's requests/s must be at least this share of bare Express's. */
const TARGET_RATIO = 0.9;
const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
/** usher-library's guarded route (bench/servers.ts). */
const GUARDED_PATH = '/api/certs';
const LIBRARY_ROW = 'usher library cert.create';

// ---- the throwaway PostgreSQL schema, dropped at the end ----

let pgSchema: string | undefined;

async function dropPgSchema(schema: string): Promise<void> {
  const db = knex({ client: 'pg', connection: PG_URL, pool: { min: 0, max: 1 }, acquireConnectionTimeout: 5_000 });
  try {
    await withTimeout(db.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]), 10_000, `dropping schema ${schema}`);
  } finally {
    await withTimeout(db.destroy(), 5_000, 'closing the PostgreSQL pool').catch(() => undefined);
  }
}

onCleanup({
  now() {
    if (pgSchema) log(`bench: PostgreSQL schema ${pgSchema} was left behind; drop it with DROP SCHEMA ${pgSchema} CASCADE`);
  },
  async later() {
    if (!pgSchema) return;
    const schema = pgSchema;
    try {
      await dropPgSchema(schema);
      pgSchema = undefined;
    } catch (err) {
      log(`bench: could not drop schema ${schema}: ${(err as Error).message}`);
    }
  },
});

// ---- main ----

async function main(): Promise<number> {
  const duration = durationSeconds();
  const withPg = process.env.USHER_BENCH_PG === '1';
  const apiKey = `usk_${randomBytes(32).toString('base64url')}`;
  const env = () => usherEnv('usher-bench-', 'bench-password-1', apiKey);

  const withKey = { 'x-api-key': apiKey };
  const only = process.env.BENCH_ONLY;
  if (only !== undefined && only !== 'library') throw new BenchFailure(`BENCH_ONLY must be library, got ${JSON.stringify(only)}`);
  const library: Target = { name: LIBRARY_ROW, key: 'usher-library', mode: 'usher-library', env: env(), headers: {}, path: GUARDED_PATH };
  const all: Target[] = [
    { name: 'bare express', mode: 'bare', env: {}, headers: withKey },
    { name: 'express+helmet+log', mode: 'bare-dressed', env: {}, headers: withKey },
    { name: 'usher (sqlite)', mode: 'usher', env: env(), headers: withKey, username: ADMIN_USERNAME },
    {
      name: 'usher proxy headers',
      mode: 'usher-proxy',
      env: env(),
      headers: { 'remote-user': 'bench-proxy', 'remote-groups': 'staff,bench-admins', 'remote-email': 'bench-proxy@example.com', 'remote-name': 'Bench Proxy' },
      username: 'bench-proxy',
    },
    library,
  ];
  const targets = only === 'library' ? all.filter((t) => t.mode.startsWith('bare') || t.mode === 'usher' || t === library) : all;
  if (withPg && only === undefined) {
    pgSchema = `bench_${randomBytes(6).toString('hex')}`;
    targets.push({
      name: 'usher (postgres)',
      mode: 'usher-pg',
      env: { ...env(), BENCH_PG_URL: PG_URL, BENCH_PG_SCHEMA: pgSchema },
      headers: withKey,
      username: ADMIN_USERNAME,
    });
  }

  log(`bench: GET ${PATH} with X-Api-Key or proxy headers, ${CONNECTIONS} connections, pipelining ${PIPELINING}, ${duration} s per run, ` +
    `${WARMUP_SECONDS} s warm-up, best of ${ROUNDS} rounds; node ${process.version}, ${cpus().length} CPUs`);
  await startServers(targets, (target) => ({ ...process.env, ...target.env }));

  // One request each before loading: the credential works (a proxy user is created by this first request,
  // so the load measures a known user), the route needs it, and all servers answer the same shape.
  const bare = await bareBody(targets[0]!);
  for (const target of targets.filter((t) => t.mode.startsWith('usher') && t !== library)) await checkMe(target, bare, 'its credential', 'a key');
  if (targets.includes(library)) await checkGuarded(library, bare, apiKey);

  const best = await bestOfRounds(targets, duration, '2xx');
  return report(targets, best, duration);
}

/** The guarded route answers the seeded user as bare Express answers /me, and refuses anonymous requests and a user without cert.create. */
async function checkGuarded(target: Target, bare: unknown, adminKey: string): Promise<void> {
  const url = `${target.url}${GUARDED_PATH}`;
  const ok = await request(url, { headers: target.headers });
  if (ok.status !== 200 || JSON.stringify(parsed(ok)) !== JSON.stringify(bare)) throw new BenchFailure(`${target.name}: GET ${GUARDED_PATH} answered ${ok.status}: ${ok.text}`);
  const anonymous = await request(url);
  if (anonymous.status !== 401) throw new BenchFailure(`${target.name}: GET ${GUARDED_PATH} without a key answered ${anonymous.status}, not 401`);
  // The bootstrap admin holds cert.create (admin holds every permission): 200 too.
  const admin = await request(url, { headers: { 'x-api-key': adminKey } });
  if (admin.status !== 200) throw new BenchFailure(`${target.name}: GET ${GUARDED_PATH} as admin answered ${admin.status}`);
}

function report(targets: Target[], best: Map<string, Figures>, duration: number): number {
  const throughput = writeThroughput('X-Api-Key; proxy headers for the proxy row; GET /api/certs for the library row', targets, best, duration, TARGET_RATIO);
  const out = process.stdout;
  const floor = best.get('express+helmet+log');
  const lib = best.get(LIBRARY_ROW);
  if (floor && lib) {
    const vsFloor = round(ratio(lib.rps, floor.rps), 3);
    out.write(`${LIBRARY_ROW} (10,000 users, 100 custom roles) req/s / express+helmet+log: ${showRatio(vsFloor)}\n`);
    (throughput.results['usher-library'] as Record<string, unknown>).rpsRatioToDressed = vsFloor;
  }
  if (throughput.missed) out.write(`\n*** below target: Usher serves less than ${TARGET_RATIO * 100}% of bare Express's requests/s ***\n`);
  const bench = 'GET /api/v1/auth/me api-key and proxy headers';
  out.write(`${JSON.stringify(summary(bench, duration, TARGET_RATIO, throughput, { pipelining: PIPELINING }))}\n`);
  return 0;
}

// Bound the whole run: start-up, every warm-up and measurement with slack, and cleanup.
runBench(main, (duration) => {
  // Targets: bare, bare-dressed, usher, usher-proxy, usher-library (and usher-pg); or bare, bare-dressed, usher, usher-library.
  const runs = ROUNDS * (process.env.BENCH_ONLY === 'library' ? 4 : process.env.USHER_BENCH_PG === '1' ? 6 : 5);
  return START_TIMEOUT_MS * 2 + runs * (WARMUP_SECONDS + duration + 20) * 1000 + 30_000;
});
