/**
 * `npm run bench` (cluster part): how long a change made through instance A takes to reach instance B
 * (issue 14, part 3: within 100 ms with Redis). Two instances of Usher on one PostgreSQL schema, in this
 * process (each its own HTTP server on 127.0.0.1), for each case of test/helpers/cluster-cases.ts: B answers
 * a request the old way (its caches warm), A makes the change, and B is asked again and again (one request at
 * a time) until it answers the new way. The figure is the time from A's answer to B's first new answer.
 *
 * Two runs, each with B's cache TTL at an hour so that only the path measured explains B agreeing:
 *   pub/sub   Redis configured (cluster.pollInterval an hour): the message over `<prefix>cluster`;
 *   poll      no Redis, cluster.pollInterval 1 s (the default): the database's change log.
 * Before this work B agreed when its cache expired: up to auth.apiKeyCacheTtl (5 s by default).
 *
 * Prints one JSON line per run: per case the median and the maximum of ROUNDS tries, in ms. Both instances and
 * the client share one event loop on a shared 2-core machine: compare the runs with each other, not with
 * another machine. Needs PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { buildApp } from '../src/app.js';
import { createUsher, type Usher } from '../src/index.js';
import { CASES, type Cluster, type Instance } from '../test/helpers/cluster-cases.js';
import { PG_URL, dropSchema, freshSchema } from '../test/helpers/db.js';
import { client } from '../test/helpers/http.js';
import { REDIS_URL, deletePrefix, freshPrefix, pingRedis } from '../test/helpers/redis.js';

const ROUNDS = Number(process.env.BENCH_CLUSTER_ROUNDS ?? 5);
/** Past this, a case counts as never agreeing (the bench fails). */
const GIVE_UP_MS = 10_000;

interface Running extends Instance {
  close(): Promise<void>;
}

async function start(settings: Record<string, unknown>): Promise<Running> {
  const usher: Usher = await createUsher({ config: settings, logger: pino({ level: 'silent' }) });
  const server: Server = await new Promise((resolve) => {
    const s = buildApp(usher).listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    usher,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await usher.close();
    },
  };
}

async function run(label: string, extra: Record<string, unknown>): Promise<Record<string, { medianMs: number; maxMs: number }>> {
  const dataDir = mkdtempSync(join(tmpdir(), 'usher-bench-cluster-'));
  const schema = freshSchema();
  const settings = {
    dataDir,
    log: { level: 'silent' },
    database: { url: PG_URL, schema },
    auth: { apiKeyCacheTtl: '1h' },
    resources: [{ type: 'library' }],
    ...extra,
  };
  // One after the other: the first creates the tables and the secret.
  const a = await start(settings);
  const b = await start(settings);
  try {
    const setup = await client(a.url).post('/api/v1/auth/setup', { body: { username: 'admin', password: 'admin-password' } });
    if (setup.status !== 201) throw new Error(`setup: ${setup.status} ${setup.text}`);
    const cluster: Cluster = { a, b, admin: setup.body.apiKey as string };
    const figures: Record<string, { medianMs: number; maxMs: number }> = {};
    let n = 0;
    for (const c of CASES) {
      const times: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const p = await c.prepare(cluster, ++n);
        const warm = await p.probe();
        if (!p.before(warm)) throw new Error(`${label} ${c.name}: B before the change: ${warm.status} ${warm.text}`);
        const changed = await p.change();
        if (changed.status >= 300) throw new Error(`${label} ${c.name}: the change: ${changed.status} ${changed.text}`);
        const start = performance.now();
        for (;;) {
          const reply = await p.probe();
          const elapsed = performance.now() - start;
          if (p.agreed(reply)) {
            times.push(elapsed);
            break;
          }
          if (elapsed > GIVE_UP_MS) throw new Error(`${label} ${c.name}: B did not agree within ${GIVE_UP_MS} ms`);
        }
      }
      times.sort((x, y) => x - y);
      figures[c.name] = { medianMs: round1(times[Math.floor(times.length / 2)]!), maxMs: round1(times[times.length - 1]!) };
    }
    return figures;
  } finally {
    await b.close();
    await a.close();
    await dropSchema(schema);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const round1 = (ms: number) => Math.round(ms * 10) / 10;

async function main(): Promise<void> {
  await pingRedis();
  const prefix = freshPrefix();
  try {
    const pubsub = await run('pub/sub', { redis: { url: REDIS_URL, keyPrefix: prefix }, cluster: { pollInterval: '1h' } });
    console.log(JSON.stringify({ bench: 'cluster', path: 'redis pub/sub', target: 'each max <= 100 ms', rounds: ROUNDS, cases: pubsub }));
    const poll = await run('poll', { cluster: { pollInterval: '1s' } });
    console.log(JSON.stringify({ bench: 'cluster', path: 'database poll (cluster.pollInterval 1s)', target: 'each max <= ~1 s', rounds: ROUNDS, cases: poll }));
  } finally {
    await deletePrefix(prefix);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
