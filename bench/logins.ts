/**
 * `npm run bench` (first logins): 1,000 first proxy logins of distinct users, 100 in flight at a time
 * (one keep-alive connection each), on SQLite and on PostgreSQL (postgres://postgres@127.0.0.1:5432/test,
 * a throwaway schema per server). Each login is GET /api/v1/auth/me with Remote-User, Remote-Groups and
 * Remote-Email: the request that creates the account. Target: at least 400 logins/s on each database.
 *
 * Then it checks, on each server: exactly one account and one proxy identity per name; and that a user
 * signed in before the burst kept their proxy cache entry: once background work is done (audit rows
 * written, no statement for 300 ms), their next request runs no SQL statement at all (knex's 'query' events,
 * counted in the server). The cache TTL is a minute there, so only an eviction can make it query. For
 * reference, the same users then sign in twice more: found (not cached yet) and from the cache.
 *
 *   BENCH_LOGINS_BASE=<dir>  also measure another checkout's code (e.g. `git worktree add --detach /tmp/base main`,
 *                            with its node_modules linked), alternated with this one's in the same run.
 *   BENCH_LOGINS_ROUNDS=n    rounds (default 2); the best round of each row is kept.
 *   BENCH_PROF=<dir>         write each server's CPU profile of the burst there.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import knex from 'knex';
import { BenchFailure, log, parsed, request, runBench, table, tempDir, withTimeout, withoutUsherEnv } from './lib.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const SERVER = join(HERE, 'logins-server.ts');
const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
const PATH = '/api/v1/auth/me';
const LOGINS = 1000;
const IN_FLIGHT = 100;
const TARGET = 400;
const PREFIX = 'bl-';
const WARM = 'warm-user';

interface Row {
  db: 'sqlite' | 'postgres';
  code: string;
  root: string;
}

interface Outcome {
  perSecond: number;
  /** The same 1,000 requests again, twice: the second pass answered from the cache (the HTTP path's ceiling here and now). */
  againPerSecond: number;
  cachedPerSecond: number;
  accounts: number;
  names: number;
  identities: number;
  warmQueries: number;
}

const schemas = new Set<string>();
const servers = new Set<ChildProcess>();

async function dropSchema(schema: string): Promise<void> {
  const db = knex({ client: 'pg', connection: PG_URL, pool: { min: 0, max: 1 } });
  try {
    await withTimeout(db.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]), 10_000, `dropping schema ${schema}`);
    schemas.delete(schema);
  } finally {
    await db.destroy().catch(() => undefined);
  }
}

/** A server of bench/logins-server.ts, and its IPC questions. */
async function startServer(row: Row): Promise<{ url: string; ask: (type: string) => Promise<unknown>; stop: () => Promise<void>; schema?: string }> {
  const schema = row.db === 'postgres' ? `bench_logins_${randomBytes(5).toString('hex')}` : undefined;
  if (schema) schemas.add(schema);
  const env = withoutUsherEnv({
    BENCH_ROOT: row.root,
    BENCH_DATA_DIR: tempDir('usher-bench-logins-'),
    BENCH_PREFIX: PREFIX,
    ...(process.env.BENCH_PROF ? { BENCH_PROF: resolve(process.env.BENCH_PROF) } : {}),
    ...(schema ? { BENCH_PG_URL: PG_URL, BENCH_PG_SCHEMA: schema } : {}),
  });
  const child = fork(SERVER, [], { cwd: row.root, execArgv: ['--import', 'tsx'], env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  servers.add(child);
  let next = 0;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const url = await withTimeout(
    new Promise<string>((done, fail) => {
      child.on('message', (raw: { type?: string; port?: number; message?: string; id?: number; value?: unknown; error?: string }) => {
        if (raw.type === 'ready') done(`http://127.0.0.1:${raw.port}`);
        else if (raw.type === 'failed') fail(new BenchFailure(`${row.db} ${row.code}: ${raw.message}`));
        else if (raw.id !== undefined) {
          const w = waiting.get(raw.id);
          waiting.delete(raw.id);
          if (raw.error) w?.reject(new BenchFailure(raw.error));
          else w?.resolve(raw.value);
        }
      });
      child.once('exit', (code) => fail(new BenchFailure(`${row.db} ${row.code}: the server exited (${code})`)));
    }),
    60_000,
    `${row.db} ${row.code}: start`,
  );
  const ask = (type: string) =>
    withTimeout(
      new Promise<unknown>((resolve, reject) => {
        const id = next++;
        waiting.set(id, { resolve, reject });
        child.send({ id, type });
      }),
      30_000,
      `${row.db} ${row.code}: ${type}`,
    );
  const stop = async () => {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
    servers.delete(child);
    if (schema) await dropSchema(schema);
  };
  return { url, ask, stop, schema };
}

const headersOf = (name: string) => ({ 'remote-user': name, 'remote-groups': 'staff', 'remote-email': `${name}@example.com` });

async function me(url: string, name: string, agent?: http.Agent): Promise<void> {
  const reply = await request(`${url}${PATH}`, { headers: headersOf(name), agent, timeoutMs: 60_000 });
  const body = parsed(reply) as { username?: string };
  if (reply.status !== 200 || body.username !== name) throw new BenchFailure(`GET ${PATH} as ${name} answered ${reply.status}: ${reply.text.slice(0, 200)}`);
}

/** Statements the warm user's request runs, once the server is quiet. */
async function warmQueries(url: string, ask: (type: string) => Promise<unknown>): Promise<number> {
  await ask('settle');
  const before = (await ask('queries')) as number;
  await me(url, WARM);
  return ((await ask('queries')) as number) - before;
}

async function measure(row: Row, round: number): Promise<Outcome> {
  const server = await startServer(row);
  try {
    // The warm user: created, then cached (its own creation's request is never cached).
    for (let i = 0; i < 3; i++) await me(server.url, WARM);
    const cached = await warmQueries(server.url, server.ask);
    if (cached !== 0) throw new BenchFailure(`${row.db} ${row.code}: the warm user is not answered from the cache before the burst (${cached} statements)`);

    const names = Array.from({ length: LOGINS }, (_, i) => `${PREFIX}${round}-${String(i).padStart(4, '0')}`);
    const agent = new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
    const pass = async () => {
      let at = 0;
      const worker = async () => {
        while (at < names.length) await me(server.url, names[at++]!, agent);
      };
      const start = performance.now();
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
      return LOGINS / ((performance.now() - start) / 1000);
    };
    const profiling = process.env.BENCH_PROF !== undefined;
    if (profiling) await server.ask('profile');
    const perSecond = await pass();
    if (profiling) log(`bench: profile ${String(await server.ask('profile'))}`);

    const warm = await warmQueries(server.url, server.ask);
    const counts = (await server.ask('count')) as { accounts: number; names: number; identities: number; users: number };
    // References: the same users signing in again (found, then cached), with the same connections.
    const againPerSecond = await pass();
    const cachedPerSecond = await pass();
    agent.destroy();
    return { perSecond, againPerSecond, cachedPerSecond, ...counts, warmQueries: warm };
  } finally {
    await server.stop();
  }
}

async function main(): Promise<number> {
  const base = process.env.BENCH_LOGINS_BASE;
  const rounds = Number(process.env.BENCH_LOGINS_ROUNDS ?? 2);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 10) throw new BenchFailure('BENCH_LOGINS_ROUNDS must be 1-10');
  const codes = [...(base ? [{ code: 'base', root: resolve(base) }] : []), { code: 'this', root: ROOT }];
  const rows: Row[] = (['sqlite', 'postgres'] as const).flatMap((db) => codes.map((c) => ({ db, ...c })));
  log(`bench: ${LOGINS} first proxy logins of distinct users, ${IN_FLIGHT} in flight; ${rounds} rounds; node ${process.version}, ${cpus().length} CPUs`);
  const best = new Map<Row, Outcome>();
  let failed = false;
  for (let r = 0; r < rounds; r++) {
    for (const row of r % 2 === 0 ? rows : [...rows].reverse()) {
      const o = await measure(row, r);
      log(`bench: round ${r + 1} ${row.db} ${row.code}: ${o.perSecond.toFixed(0)} first logins/s (again ${o.againPerSecond.toFixed(0)}, cached ${o.cachedPerSecond.toFixed(0)}), ${o.accounts} accounts, warm user ${o.warmQueries} statements after`);
      if (o.accounts !== LOGINS || o.names !== LOGINS || o.identities !== LOGINS) {
        failed = true;
        log(`bench: ${row.db} ${row.code}: ${o.accounts} accounts, ${o.names} names, ${o.identities} identities for ${LOGINS} names`);
      }
      const had = best.get(row);
      best.set(row, !had || o.perSecond > had.perSecond ? { ...o, warmQueries: Math.max(o.warmQueries, had?.warmQueries ?? 0) } : { ...had, warmQueries: Math.max(o.warmQueries, had.warmQueries) });
    }
  }
  const lines = [['database', 'code', 'first logins/s', `vs ${TARGET}`, 'again/s', 'cached/s', 'first/cached', 'accounts', 'warm entry']];
  const verdicts: string[] = [];
  for (const row of rows) {
    const o = best.get(row)!;
    const kept = o.warmQueries === 0;
    lines.push([
      row.db,
      row.code,
      o.perSecond.toFixed(0),
      (o.perSecond / TARGET).toFixed(2),
      o.againPerSecond.toFixed(0),
      o.cachedPerSecond.toFixed(0),
      (o.perSecond / o.cachedPerSecond).toFixed(2),
      `${o.accounts}/${LOGINS}`,
      kept ? 'kept' : `lost (${o.warmQueries} statements)`,
    ]);
    if (row.code === 'this') {
      const met = o.perSecond >= TARGET && kept && o.accounts === LOGINS;
      if (!met) failed = true;
      verdicts.push(`target: ${row.db} >= ${TARGET} first logins/s, one account per name, other users' cache entries kept: ${met ? 'meets target' : 'BELOW TARGET'}`);
    }
  }
  process.stdout.write(
    `\nfirst proxy logins: ${LOGINS} distinct users, ${IN_FLIGHT} in flight, best of ${rounds} rounds (shared machine: compare rows of one run)\n` +
      `again/s: the same users once more (found, not cached); cached/s: a third time, from the cache (the HTTP path alone)\n\n${table(lines)}\n\n`,
  );
  for (const v of verdicts) process.stdout.write(`${v}\n`);
  process.stdout.write(
    `${JSON.stringify({
      bench: 'logins',
      date: new Date().toISOString(),
      cpus: cpus().length,
      logins: LOGINS,
      inFlight: IN_FLIGHT,
      rounds,
      target: TARGET,
      results: rows.map((row) => {
        const o = best.get(row)!;
        return { db: row.db, code: row.code, perSecond: Math.round(o.perSecond), againPerSecond: Math.round(o.againPerSecond), cachedPerSecond: Math.round(o.cachedPerSecond), accounts: o.accounts, warmEntryKept: o.warmQueries === 0 };
      }),
    })}\n`,
  );
  return failed ? 1 : 0;
}

process.on('exit', () => {
  for (const child of servers) child.kill('SIGKILL');
  for (const schema of schemas) log(`bench: PostgreSQL schema ${schema} was left behind; drop it with DROP SCHEMA ${schema} CASCADE`);
});

runBench(main, () => 15 * 60_000);
