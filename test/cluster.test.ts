import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChangeLog } from '../src/cluster/changes.js';
import { EventStream, SYSTEM_ORIGIN, eventOf } from '../src/events/stream.js';
import { startInstances, type TestServer } from './helpers/app.js';
import { CASES, type Case, type Cluster } from './helpers/cluster-cases.js';
import { DB_KINDS } from './helpers/db.js';
import { client } from './helpers/http.js';
import { PrivateRedis, REDIS_URL, deletePrefix, freshPrefix, pingRedis } from './helpers/redis.js';
import { setupAdmin } from './helpers/users.js';

/**
 * Issue 14, part 3: a change made through instance A reaches instance B's caches. B's cache TTL and its poll
 * of the database are an hour, so that only the path under test can explain B agreeing: Redis pub/sub in the
 * first block, the database's change log (a short cluster.pollInterval, no Redis) in the second. bench/cluster.ts
 * times the same cases.
 */
const HOUR = '1h';
const RESOURCES = [{ type: 'library' }];

/** For each case: B answers the old way (its caches warm), A makes the change, B comes to answer the new way. */
async function showAgreement(cluster: Cluster, c: Case, n: number, opts: { immediate?: boolean } = {}) {
  const p = await c.prepare(cluster, n);
  const warm = await p.probe();
  expect(p.before(warm), `${c.name}: B before the change: ${warm.status} ${warm.text}`).toBe(true);
  // Twice: the second answer comes from B's caches.
  expect(p.before(await p.probe())).toBe(true);
  const changed = await p.change();
  expect(changed.status, `${c.name}: the change on A: ${changed.text}`).toBeLessThan(300);
  if (opts.immediate) {
    const now = await p.probe();
    expect(p.agreed(now), `${c.name}: B right after: ${now.status} ${now.text}`).toBe(true);
    return;
  }
  await expect.poll(async () => p.agreed(await p.probe()), { timeout: 10_000, interval: 20, message: `${c.name}: B never agreed` }).toBe(true);
}

describe.each(DB_KINDS)('two instances on %s and Redis: a change on A reaches B over pub/sub', (kind) => {
  let a: TestServer;
  let b: TestServer;
  let cluster: Cluster;
  const prefix = freshPrefix();

  beforeAll(async () => {
    await pingRedis();
    [a, b] = await startInstances(kind, 2, {
      settings: { redis: { url: REDIS_URL, keyPrefix: prefix }, auth: { apiKeyCacheTtl: HOUR }, cluster: { pollInterval: HOUR }, resources: RESOURCES },
    });
    cluster = { a: a!, b: b!, admin: await setupAdmin(client(a!.url)) };
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await deletePrefix(prefix);
  });

  CASES.forEach((c, i) => {
    it(c.name, () => showAgreement(cluster, c, i));
  });

  // Sessions live in Redis, read on every request (no cache): B refuses an ended one at once, message or not.
  CASES.filter((c) => c.sessionStore).forEach((c, i) => {
    it(`${c.name}: the session store is shared, so B refuses at once`, () => showAgreement(cluster, c, 100 + i, { immediate: true }));
  });

  it('ignores a malformed message on the channel, and goes on hearing the others', async () => {
    const { createClient } = await import('redis');
    const raw = createClient({ url: REDIS_URL });
    await raw.connect();
    try {
      await raw.publish(`${prefix}cluster`, 'not json');
      await raw.publish(`${prefix}cluster`, JSON.stringify({ from: 'x', type: 'user.disabled', user: 'everyone' }));
    } finally {
      raw.destroy();
    }
    await showAgreement(cluster, CASES[0]!, 200);
  });
});

describe.each(DB_KINDS)('two instances on %s without Redis: a change on A reaches B at its next poll', (kind) => {
  let a: TestServer;
  let b: TestServer;
  let cluster: Cluster;

  beforeAll(async () => {
    // A long cache TTL: only the poll of the change log (every 100 ms) can make B forget.
    [a, b] = await startInstances(kind, 2, { settings: { auth: { apiKeyCacheTtl: HOUR }, cluster: { pollInterval: '100ms' }, resources: RESOURCES } });
    cluster = { a: a!, b: b!, admin: await setupAdmin(client(a!.url)) };
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  CASES.forEach((c, i) => {
    it(c.name, () => showAgreement(cluster, c, i));
  });
});

describe.each(DB_KINDS)('two instances on %s without Redis, changed before B first polls', (kind) => {
  let a: TestServer;
  let b: TestServer;
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it("B starts reading the change log where it stood at B's start, not at its first poll", async () => {
    // The change is made well within B's first 5 s: B's first poll must still see it.
    [a, b] = await startInstances(kind, 2, { settings: { auth: { apiKeyCacheTtl: HOUR }, cluster: { pollInterval: '5s' }, resources: RESOURCES } });
    await showAgreement({ a: a!, b: b!, admin: await setupAdmin(client(a!.url)) }, CASES[0]!, 1);
  });
});

describe.each(DB_KINDS)('two instances on %s whose Redis goes away', (kind) => {
  let redis: PrivateRedis;
  let a: TestServer;
  let b: TestServer;
  let cluster: Cluster;
  const lines: { msg: string }[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as { msg: string });
        done();
      },
    }),
  );
  const logged = (text: string) => lines.filter((l) => l.msg.includes(text)).length;
  const prefix = freshPrefix();

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    // The poll every 100 ms: what keeps B in step while Redis is away.
    [a, b] = await startInstances(kind, 2, {
      settings: { redis: { url: redis.url, keyPrefix: prefix }, auth: { apiKeyCacheTtl: HOUR }, cluster: { pollInterval: '100ms' }, resources: RESOURCES },
      hooks: { logger },
    });
    cluster = { a: a!, b: b!, admin: await setupAdmin(client(a!.url)) };
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await redis?.stop();
  });

  it('logs the loss once per instance, keeps B in step through the database meanwhile, and logs the return', async () => {
    expect(logged('lost the Redis subscription')).toBe(0);
    await redis.stop();
    await expect.poll(() => logged('lost the Redis subscription'), { timeout: 10_000 }).toBe(2);
    // While Redis is away: a key rotated on A is refused on B at B's next poll (an hour's TTL otherwise).
    const rotation = CASES.find((c) => c.name.startsWith('key rotation'))!;
    await showAgreement(cluster, rotation, 1);
    // (A change that ends sessions would be A's 503 now: its sessions are in Redis.)
    const moved = CASES.find((c) => c.name.startsWith('organisation change'))!;
    await showAgreement(cluster, moved, 2);
    // Reconnection kept failing all along: still one line per instance.
    expect(logged('lost the Redis subscription')).toBe(2);
    await redis.start();
    await expect.poll(() => logged('Redis subscription restored'), { timeout: 15_000 }).toBe(2);
    expect(logged('lost the Redis subscription')).toBe(2);
    // Subscribed again: a message (which the database's log does not hold) reaches B's caches.
    const told: (number | null)[] = [];
    b.usher.events.onChangedElsewhere((id) => told.push(id));
    const { createClient } = await import('redis');
    const raw = createClient({ url: redis.url });
    await raw.connect();
    try {
      await raw.publish(`${prefix}cluster`, JSON.stringify({ from: 'elsewhere', type: 'user.updated', user: 424242 }));
    } finally {
      raw.destroy();
    }
    await expect.poll(() => told.includes(424242)).toBe(true);
  });
});

describe('the change log on postgres (SQLite has one writer: numbers are taken in commit order there)', () => {
  let server: TestServer;
  beforeAll(async () => {
    [server] = await startInstances('postgres', 1);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('tells of a change whose number is lower than one already seen but committed after it, once', async () => {
    const db = server.usher.db;
    const quiet = pino({ level: 'silent' });
    // A: the instance making the changes. B: one reading them, told through its own event stream.
    const onA = new EventStream(quiet);
    new ChangeLog(db, onA, 'instance-a', quiet);
    const onB = new EventStream(quiet);
    const b = new ChangeLog(db, onB, 'instance-b', quiet);
    const told: (number | null)[] = [];
    onB.onChangedElsewhere((id) => told.push(id));
    await b.start();

    const change = (user: number) => eventOf(SYSTEM_ORIGIN, 'user.disabled', user);
    // The slow change takes its number first and stays open.
    let commitSlow!: () => void;
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    const slow = db.transaction(async (trx) => {
      await onA.record(trx, [change(1001)]);
      opened();
      await new Promise<void>((resolve) => (commitSlow = resolve));
    });
    await open;
    await db.transaction((trx) => onA.record(trx, [change(1002)]));
    await b.sync();
    expect(told).toEqual([1002]);
    commitSlow();
    await slow;
    await b.sync();
    expect(told).toEqual([1002, 1001]);
    // Read once: nothing more on the next polls.
    await b.sync();
    expect(told).toEqual([1002, 1001]);
    // Its own changes an instance never reads back.
    await db.transaction((trx) => onB.record(trx, [change(1003)]));
    await b.sync();
    expect(told).toEqual([1002, 1001]);
  });

  it('tells an instance that starts while a change is still open of that change once it commits', async () => {
    const db = server.usher.db;
    const quiet = pino({ level: 'silent' });
    const onA = new EventStream(quiet);
    new ChangeLog(db, onA, 'instance-a', quiet);
    const change = (user: number) => eventOf(SYSTEM_ORIGIN, 'user.disabled', user);
    await db.transaction((trx) => onA.record(trx, [change(2000)]));
    let commitSlow!: () => void;
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    const slow = db.transaction(async (trx) => {
      await onA.record(trx, [change(2001)]);
      opened();
      await new Promise<void>((resolve) => (commitSlow = resolve));
    });
    await open;
    await db.transaction((trx) => onA.record(trx, [change(2002)]));
    // B starts now: the top number it sees is 2002's, and 2001's is still open.
    const onB = new EventStream(quiet);
    const b = new ChangeLog(db, onB, 'instance-b', quiet);
    const told: (number | null)[] = [];
    onB.onChangedElsewhere((id) => told.push(id));
    await b.start();
    await b.sync();
    expect(told).toEqual([]);
    commitSlow();
    await slow;
    await b.sync();
    expect(told).toEqual([2001]);
    await b.sync();
    expect(told).toEqual([2001]);
  });
});

describe.each(DB_KINDS)('two instances on %s and Redis: a new admin on A releases what B held back', (kind) => {
  let a: TestServer;
  let b: TestServer;
  const prefix = freshPrefix();

  beforeAll(async () => {
    await pingRedis();
    [a, b] = await startInstances(kind, 2, {
      settings: {
        redis: { url: REDIS_URL, keyPrefix: prefix },
        server: { trustedProxies: ['127.0.0.1'] },
        auth: { apiKeyCacheTtl: HOUR, proxy: { enabled: true, adminGroups: ['admins'] } },
        cluster: { pollInterval: HOUR },
      },
    });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await deletePrefix(prefix);
  });

  it("drops B's answer kept admin by the last-admin rail once A makes another admin", async () => {
    const me = (server: TestServer, user: string, groups: string) =>
      client(server.url).get('/api/v1/auth/me', { headers: { 'remote-user': user, 'remote-groups': groups } });
    expect((await me(a, 'pat', 'admins')).body.role).toBe('admin');
    // pat, the only admin, comes to B without the admin group: the rail holds the demotion back, twice (cached).
    expect((await me(b, 'pat', 'staff')).body.role).toBe('admin');
    expect((await me(b, 'pat', 'staff')).body.role).toBe('admin');
    expect((await me(a, 'quinn', 'admins')).body.role).toBe('admin');
    await expect.poll(async () => (await me(b, 'pat', 'staff')).body.role, { timeout: 10_000, interval: 20 }).toBe('user');
  });
});
