/**
 * GET /api/v1/auth/users at 10k, 100k and 1M users (issue 14), on SQLite and PostgreSQL, through a running
 * Usher (bench/servers.ts) and its admin's API key: the p50 and p95 of the first page, a page reached by a
 * cursor (at 90% of the table), deep `offset` pages (50% and 90%), `?q=` searches, the first page sorted by
 * each column in both orders, and `/readyz` while deep pages run beside it; each beside its target. Users are
 * written straight into the table by INSERT … SELECT over a generated series, 100k a statement (the triggers
 * keeping the counters and the search index run, as for any insert), growing the same database. Then, on
 * PostgreSQL, concurrent single-user inserts with the counters, with one hot counter row, and without.
 *
 *   BENCH_LIST_SIZES=10000,100000   the sizes (default 10000,100000,1000000)
 *   BENCH_LIST_DBS=sqlite           sqlite, postgres or both (default sqlite,postgres)
 *   BENCH_LIST_REQUESTS=200         requests per figure (default 200; 20 more warm up first)
 *
 * The machine is shared: compare rows of one run; absolute numbers move with the load of others.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { join } from 'node:path';
import knex from 'knex';
import { seed } from './list-seed.js';
import {
  ADMIN_USERNAME,
  BenchFailure,
  log,
  onCleanup,
  request,
  runBench,
  startServers,
  table,
  usherEnv,
  withTimeout,
  type Target,
} from './lib.js';

const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const PATH = '/api/v1/auth/users';

function listEnv<T extends string>(name: string, fallback: string, allowed?: readonly T[]): T[] {
  const raw = (process.env[name] ?? fallback).split(',').map((s) => s.trim()).filter(Boolean);
  for (const value of raw) {
    if (allowed ? !allowed.includes(value as T) : !/^\d+$/.test(value) || Number(value) < 100 || Number(value) > 5_000_000) {
      throw new BenchFailure(`${name}: ${JSON.stringify(value)} is not ${allowed ? `one of ${allowed.join(', ')}` : 'a size 100-5000000'}`);
    }
  }
  return raw as T[];
}

// ---- the throwaway PostgreSQL schema ----

let pgSchema: string | undefined;
onCleanup({
  now() {
    if (pgSchema) log(`bench: PostgreSQL schema ${pgSchema} was left behind; drop it with DROP SCHEMA ${pgSchema} CASCADE`);
  },
  async later() {
    if (!pgSchema) return;
    const db = knex({ client: 'pg', connection: PG_URL, pool: { min: 0, max: 1 } });
    try {
      await withTimeout(db.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [pgSchema]), 60_000, `dropping ${pgSchema}`);
      pgSchema = undefined;
    } finally {
      await db.destroy();
    }
  },
});

// ---- measuring ----

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

/** The p50 and p95 of the samples: on a shared machine the median shows the query, the p95 the neighbours too. */
function percentiles(samples: number[]): { p50: number; ms: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)]!;
  return { p50: at(0.5), ms: at(0.95) };
}

async function timed(url: string, headers: Record<string, string>, n: number, check?: (reply: { status: number; headers: http.IncomingHttpHeaders }) => void) {
  const samples: number[] = [];
  for (let i = 0; i < n + 20; i++) {
    const t0 = performance.now();
    const reply = await request(url, { headers, agent, timeoutMs: 30_000 });
    const ms = performance.now() - t0;
    if (reply.status !== 200) throw new BenchFailure(`GET ${url}: ${reply.status} ${reply.text.slice(0, 200)}`);
    check?.(reply);
    if (i >= 20) samples.push(ms);
  }
  return percentiles(samples);
}

const nextOf = (headers: http.IncomingHttpHeaders): string | undefined => /<([^>]+)>; rel="next"/.exec(String(headers.link ?? ''))?.[1];

interface Row {
  what: string;
  /** The p95 (users/s for the insert rows). */
  ms: number;
  p50?: number;
  target: number | null;
}

async function measure(base: string, headers: Record<string, string>, size: number, n: number): Promise<Row[]> {
  const users = size + 1; // and the bootstrap admin
  const rows: Row[] = [];
  const add = (what: string, { ms, p50 }: { ms: number; p50: number }, target: number | null) => rows.push({ what, ms, p50, target });
  const exactTotal = (reply: { headers: http.IncomingHttpHeaders }) => {
    if (reply.headers['x-total-count'] !== String(users)) throw new BenchFailure(`X-Total-Count ${String(reply.headers['x-total-count'])}, expected ${users}`);
  };

  add('first page', await timed(`${base}${PATH}?limit=50`, headers, n, exactTotal), 15);
  const deep = Math.floor(size * 0.9);
  const deepReply = await request(`${base}${PATH}?limit=50&offset=${deep}`, { headers, agent, timeoutMs: 30_000 });
  const cursor = nextOf(deepReply.headers);
  if (!cursor) throw new BenchFailure('no Link header on a deep page');
  add('cursor page at 90% (after=)', await timed(`${base}${cursor}`, headers, n), 15);
  add('offset page at 90% (offset=)', await timed(`${base}${PATH}?limit=50&offset=${deep}`, headers, n, exactTotal), 150);
  add('offset page at 50% (the worst: as far from both ends)', await timed(`${base}${PATH}?limit=50&offset=${Math.floor(size / 2)}`, headers, Math.min(n, 50)), 150);
  add('offset page at 90%, sort=lastActiveAt desc', await timed(`${base}${PATH}?limit=50&offset=${deep}&sort=lastActiveAt&order=desc`, headers, n), 150);
  const lastActive = nextOf((await request(`${base}${PATH}?limit=50&offset=${deep}&sort=lastActiveAt&order=desc`, { headers, agent, timeoutMs: 30_000 })).headers);
  if (lastActive) add('cursor page at 90%, sort=lastActiveAt desc', await timed(`${base}${lastActive}`, headers, n), 15);
  // A few matches: one member's number (their username, email, and the odd name holding the digits).
  const needle = String(Math.floor(size * 0.654321));
  log(`bench: ${size}: q=${needle}`);
  add('q=<a member number> (a few matches)', await timed(`${base}${PATH}?limit=50&q=${needle}`, headers, n), 50);
  add('q=mail42. (1% match: count grows with matches)', await timed(`${base}${PATH}?limit=50&q=mail42.`, headers, Math.min(n, 50)), null);
  add('q=me (2 chars, username prefix: all match)', await timed(`${base}${PATH}?limit=50&q=me`, headers, Math.min(n, 50)), null);
  for (const sort of ['username', 'name', 'email', 'role', 'createdAt', 'lastActiveAt']) {
    for (const order of ['asc', 'desc']) add(`sort=${sort} ${order}`, await timed(`${base}${PATH}?limit=50&sort=${sort}&order=${order}`, headers, Math.min(n, 100)), 15);
  }

  // /readyz while two clients read deep pages sorted by name: a slow read must not queue it.
  let running = true;
  const load = async () => {
    while (running) await request(`${base}${PATH}?limit=50&offset=${deep}&sort=name&order=desc`, { headers, timeoutMs: 30_000 });
  };
  const loaders = [load(), load()];
  try {
    add('/readyz during deep list pages', await timed(`${base}/readyz`, {}, Math.min(n, 100)), null);
  } finally {
    running = false;
    await Promise.all(loaders);
  }
  return rows;
}

// ---- concurrent inserts and the counters (PostgreSQL) ----

const INSERTS = 2000;
const WRITERS = 10;

/**
 * Users/s of INSERTS single-user transactions from WRITERS connections, each transaction holding on for
 * four more round trips after its insert (as a first login's provisioning does): with the counters as
 * migrated (a slot per connection), with one hot counter row for every connection, and with no counters.
 */
async function insertThroughput(schema: string): Promise<Row[]> {
  const db = knex({ client: 'pg', connection: PG_URL, searchPath: [schema], pool: { min: WRITERS, max: WRITERS } });
  const rows: Row[] = [];
  const fn = await db.raw("SELECT pg_get_functiondef('users_count_insert'::regproc) AS def");
  const slotted = (fn.rows[0] as { def: string }).def;
  try {
    // Two rounds of the three, the best of each kept: the machine's neighbours come and go.
    for (const variant of ['counters, a free slot per transaction', 'counters, one hot row', 'no counters', 'counters, a free slot per transaction', 'counters, one hot row', 'no counters']) {
      await db.raw(variant === 'counters, one hot row' ? slotted.replace('user_counts_slot()', '0') : slotted);
      await db.raw(`ALTER TABLE users ${variant === 'no counters' ? 'DISABLE' : 'ENABLE'} TRIGGER users_count_insert`);
      const tag = randomBytes(3).toString('hex');
      let next = 0;
      const t0 = performance.now();
      const writer = async () => {
        while (next < INSERTS) {
          const i = next++;
          await db.transaction(async (trx) => {
            await trx('users').insert({ username: `w${tag}-${i}`, username_key: `w${tag}-${i}`, role: 'user', active: true, created_at: 1, updated_at: 1 });
            for (let k = 0; k < 4; k++) await trx.raw('SELECT 1');
          });
        }
      };
      await Promise.all(Array.from({ length: WRITERS }, writer));
      const what = `inserts/s, ${WRITERS} writers: ${variant}`;
      const rate = INSERTS / ((performance.now() - t0) / 1000);
      const seen = rows.find((r) => r.what === what);
      if (seen) seen.ms = Math.max(seen.ms, rate);
      else rows.push({ what, ms: rate, target: null });
    }
  } finally {
    await db.raw(slotted).catch(() => undefined);
    await db.raw('ALTER TABLE users ENABLE TRIGGER users_count_insert').catch(() => undefined);
    await db.destroy();
  }
  return rows;
}

// ---- main ----

async function main(): Promise<number> {
  const sizes = listEnv('BENCH_LIST_SIZES', '10000,100000,1000000').map(Number).sort((a, b) => a - b);
  const dbs = listEnv('BENCH_LIST_DBS', 'sqlite,postgres', ['sqlite', 'postgres'] as const);
  const n = Number(process.env.BENCH_LIST_REQUESTS ?? 200);
  if (!Number.isInteger(n) || n < 20 || n > 10_000) throw new BenchFailure('BENCH_LIST_REQUESTS must be 20-10000');
  const apiKey = `usk_${randomBytes(32).toString('base64url')}`;
  const headers = { 'x-api-key': apiKey };
  const results = new Map<string, Map<number, Row[]>>();
  let missed = 0;
  let inserts: Row[] = [];

  for (const kind of dbs) {
    const pg = kind === 'postgres';
    const env = usherEnv('usher-lists-', 'bench-password-1', apiKey);
    if (pg) pgSchema = `bench_lists_${randomBytes(6).toString('hex')}`;
    const target: Target = {
      name: `usher (${kind})`,
      mode: pg ? 'usher-pg' : 'usher',
      env: pg ? { ...env, BENCH_PG_URL: PG_URL, BENCH_PG_SCHEMA: pgSchema! } : env,
      headers,
      username: ADMIN_USERNAME,
    };
    await startServers([target], (t) => ({ ...process.env, ...t.env }));
    const db = pg
      ? knex({ client: 'pg', connection: PG_URL, searchPath: [pgSchema!], pool: { min: 0, max: 1 } })
      : knex({ client: 'sqlite3', connection: { filename: join(env.BENCH_DATA_DIR!, 'usher.db') }, useNullAsDefault: true, pool: { min: 1, max: 1, afterCreate: (c: { run(s: string, cb: (e: Error | null) => void): void }, done: (e: Error | null) => void) => c.run('PRAGMA busy_timeout = 30000', done) } });
    const perSize = new Map<number, Row[]>();
    results.set(kind, perSize);
    try {
      let have = 0;
      for (const size of sizes) {
        const t0 = performance.now();
        await seed(db, pg, have, size);
        log(`bench: ${kind}: seeded ${have} -> ${size} users in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        have = size;
        const rows = await measure(target.url!, headers, size, n);
        perSize.set(size, rows);
        for (const r of rows) log(`bench: ${kind} ${size}: ${r.what}: p50 ${r.p50?.toFixed(1)} ms, p95 ${r.ms.toFixed(1)} ms${r.target === null ? '' : ` (target ${r.target})`}`);
      }
      if (pg) inserts = await insertThroughput(pgSchema!);
    } finally {
      await db.destroy();
      target.child?.kill('SIGTERM');
    }
  }

  for (const [kind, perSize] of results) {
    const header = ['GET /users, p50 / p95 ms', ...sizes.map((s) => `${s.toLocaleString('en')} users`), 'target'];
    const whats = [...(perSize.get(sizes[0]!) ?? [])].map((r) => r.what);
    const body = whats.map((what) => {
      const cells = sizes.map((s) => perSize.get(s)?.find((r) => r.what === what));
      const target = cells.find((c) => c)?.target ?? null;
      const last = cells.at(-1);
      if (target !== null && last && last.ms > target) missed++;
      return [what, ...cells.map((c) => (c ? `${c.p50!.toFixed(1)} / ${c.ms.toFixed(1)}` : '-')), target === null ? '-' : `p95 <= ${target}`];
    });
    process.stdout.write(`\n${kind}\n${table([header, ...body])}\n`);
  }
  if (inserts.length > 0) {
    process.stdout.write(`\npostgres: concurrent user inserts (each holding its transaction 4 round trips more)\n${table([['variant', 'users/s'], ...inserts.map((r) => [r.what, r.ms.toFixed(0)])])}\n`);
  }
  process.stdout.write(`\n${missed === 0 ? 'all list targets met at the largest size' : `${missed} list figure(s) over target at the largest size`} (shared 2-core machine: noisy)\n`);
  return 0;
}

runBench(main, () => 3 * 60 * 60 * 1000);
