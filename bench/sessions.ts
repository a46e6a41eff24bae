/**
 * Second half of `npm run bench` (`tsx bench/sessions.ts`): GET /api/v1/auth/me with a session cookie,
 * SQL and Redis session stores, against a bare Express 5 app; then a login-burst check.
 *
 * 1. Throughput. Each server runs in its own child process (bench/servers.ts) so autocannon, here
 *    in the parent, does not share its event loop: bare Express, Usher with sessions in SQLite, Usher with
 *    sessions in Redis. The parent logs in once per Usher server and loads GET /me with the `usher.sid`
 *    cookie. Servers are measured one after the other, in alternating order over two rounds, each after a
 *    short warm-up; the best round of each is kept. Usher logs at info to a stdout that goes to /dev/null.
 *    Target: each session row serves at least TARGET_RATIO of bare Express's requests/s.
 *
 * 2. Login burst, on the SQLite server: the p99 latency of API-key GET /me at a fixed, non-saturating rate
 *    (an open-loop paced load from a process of its own, bench/probe.ts), alone, then while LOGIN_WORKERS
 *    clients log in back to back; BURST_PAIRS times, alternately. argon2id runs off the event loop; this
 *    shows whether logins stall the requests around them.
 *    Target: p99 of every sample during the burst at most BURST_TARGET × p99 of every sample alone.
 *    After each phase the server's own event-loop delay p99 is read from its /metrics
 *    (usher_event_loop_delay_p99_seconds, over its last 5-10 s: inside the phase just measured).
 *    Target: at most LOOP_DELAY_TARGET_MS during the burst.
 *
 * 3. Failed logins and the audit log, on the SQLite server: the paced API-key load alone, then while 1,000
 *    wrong-password logins are sent; every one must be in the audit log (`login.failed`) afterwards.
 *
 * Environment:
 *   BENCH_DURATION   seconds per measurement (default 10)
 *   BENCH_ONLY=burst only the login burst (2)
 *
 * Needs Redis at 127.0.0.1:6379 (fails at once if it does not answer); its keys go under a random prefix,
 * deleted at the end. Exit 1 when a server fails to start, a request fails or answers anything but 200;
 * exit 0 otherwise, targets met or not.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createClient } from 'redis';
import type { Paced } from './probe.js';
import {
  ADMIN_USERNAME,
  BenchFailure,
  CONNECTIONS,
  PATH,
  ROUNDS,
  START_TIMEOUT_MS,
  WARMUP_SECONDS,
  alive,
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
  sleep,
  startProbe,
  startServers,
  summary,
  table,
  usherEnv,
  withTimeout,
  withoutUsherEnv,
  writeThroughput,
  type Figures,
  type Reply,
  type RequestOptions,
  type Target,
} from './lib.js';

const API = '/api/v1/auth';
const SESSION_COOKIE = 'usher.sid';
const REDIS_URL = 'redis://127.0.0.1:6379';

/** A session row's requests/s must be at least this share of bare Express's. */
const TARGET_RATIO = 0.6;

/** API-key GET /me during the login burst: requests/s and sockets of the paced load. */
const PROBE_RATE = 300;
const PROBE_CONNECTIONS = 10;
const LOGIN_WORKERS = 20;
/** Accounts the workers log in to (worker w uses account w % LOGIN_ACCOUNTS). */
const LOGIN_ACCOUNTS = 10;
/** Alone and during phases measured, alternately; the target compares the p99 of all samples of each kind. */
const BURST_PAIRS = 3;
/** Logins run this long before the measurement starts. */
const BURST_RAMP_MS = 1_000;
/** p99 during the burst must be at most this multiple of p99 alone. */
const BURST_TARGET = 2;

/** The server's event-loop delay p99 during the burst must be at most this. */
const LOOP_DELAY_TARGET_MS = 10;
const METRICS_TOKEN = randomBytes(32).toString('base64url');

/** The server's event-loop delay p99 over its recent window, in ms, from its /metrics. */
async function loopDelayP99(url: string): Promise<number> {
  const reply = await request(`${url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  const value = /^usher_event_loop_delay_p99_seconds (\S+)$/m.exec(reply.text)?.[1];
  if (reply.status !== 200 || value === undefined) throw new BenchFailure(`GET /metrics answered ${reply.status} without usher_event_loop_delay_p99_seconds`);
  return Number(value) * 1000;
}

/** A login may wait behind many argon2 hashes: its own, longer bound. */
const LOGIN_TIMEOUT_MS = 30_000;

type RedisClient = ReturnType<typeof createClient>;

// ---- what must be cleaned up, whatever happens (besides the servers and temp dirs) ----

const agents: http.Agent[] = [];
const redisState: { client?: RedisClient; prefix?: string } = {};

/** Deletes every key under the prefix (SCAN + DEL); returns how many. */
async function deleteRedisKeys(client: RedisClient, prefix: string): Promise<number> {
  let deleted = 0;
  for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
    if (keys.length > 0) deleted += await client.del(keys);
  }
  return deleted;
}

onCleanup({
  now() {
    for (const agent of agents.splice(0)) agent.destroy();
    if (redisState.prefix) log(`bench: Redis keys ${redisState.prefix}* were left behind; delete them with: redis-cli --scan --pattern '${redisState.prefix}*' | xargs -r redis-cli del`);
  },
  async later() {
    for (const agent of agents.splice(0)) agent.destroy();
    const { client, prefix } = redisState;
    if (client && prefix) {
      try {
        const deleted = await withTimeout(deleteRedisKeys(client, prefix), 15_000, `deleting Redis keys ${prefix}*`);
        log(`bench: deleted ${deleted} Redis keys ${prefix}*`);
        redisState.prefix = undefined;
      } catch (err) {
        log(`bench: could not delete Redis keys ${prefix}*: ${(err as Error).message}`);
      }
    }
    if (client) {
      redisState.client = undefined;
      await withTimeout(client.close(), 5_000, 'closing the Redis connection').catch(() => client.destroy());
    }
    if (redisState.prefix) log(`bench: Redis keys ${redisState.prefix}* may be left behind; delete them with: redis-cli --scan --pattern '${redisState.prefix}*' | xargs -r redis-cli del`);
  },
});

// ---- helpers ----

/** Connects to the bench's Redis or fails: the Redis row cannot be measured without it. */
async function connectRedis(): Promise<RedisClient> {
  const client = createClient({ url: REDIS_URL, socket: { connectTimeout: 3_000, reconnectStrategy: false } });
  client.on('error', () => {
    // connect() and each command report their own failure
  });
  try {
    await withTimeout(
      client.connect().then(() => client.ping()),
      5_000,
      'connecting',
    );
  } catch (err) {
    try {
      client.destroy();
    } catch {
      // never connected: nothing to close
    }
    throw new BenchFailure(`Redis at ${REDIS_URL} is not reachable (the Redis session row needs it): ${(err as Error).message}`);
  }
  return client;
}

const errorText = (err: unknown) => (err instanceof Error ? `${err.message}${(err as NodeJS.ErrnoException).code ? ` (${(err as NodeJS.ErrnoException).code})` : ''}` : String(err));

/** The `usher.sid=...` pair of a login answer's Set-Cookie, or undefined. */
function sessionCookieOf(reply: Reply): string | undefined {
  for (const line of reply.headers['set-cookie'] ?? []) {
    const pair = line.split(';', 1)[0]!.trim();
    if (pair.startsWith(`${SESSION_COOKIE}=`)) return pair;
  }
  return undefined;
}

function login(url: string, username: string, password: string, opts: Pick<RequestOptions, 'agent' | 'localAddress'> = {}): Promise<Reply> {
  return request(`${url}${API}/login`, { method: 'POST', json: { username, password }, timeoutMs: LOGIN_TIMEOUT_MS, ...opts });
}

/**
 * Logs in as the bootstrap admin and loads with its cookie from then on; checks the session works, is
 * needed, and answers the shape bare Express does.
 */
async function openSession(target: Target, password: string, bare: unknown): Promise<void> {
  const reply = await login(target.url!, ADMIN_USERNAME, password);
  if (reply.status !== 200) throw new BenchFailure(`${target.name}: POST ${API}/login answered ${reply.status}: ${reply.text}`);
  const cookie = sessionCookieOf(reply);
  if (!cookie) throw new BenchFailure(`${target.name}: POST ${API}/login set no ${SESSION_COOKIE} cookie (Set-Cookie: ${JSON.stringify(reply.headers['set-cookie'] ?? null)})`);
  target.headers = { cookie };
  const me = await checkMe(target, bare, 'the session cookie', 'the cookie');
  if (me.headers['set-cookie']) log(`bench: warning: ${target.name} sets a cookie on a plain GET ${PATH}: ${JSON.stringify(me.headers['set-cookie'])}`);
}

/** Milliseconds since the epoch, sub-millisecond: comparable with the probe process's times. */
const wallClock = () => performance.timeOrigin + performance.now();

/** Nearest-rank percentile of ascending values. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const ms = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');

// ---- login burst ----

interface Account {
  username: string;
  password: string;
}

interface LoginRecord {
  start: number;
  end: number;
}

interface Workers {
  stop(): Promise<void>;
  records: LoginRecord[];
  failures: string[];
}

/** LOGIN_WORKERS loops of POST /login with the right password, back to back, each from its own 127.0.0.x. */
function startLoginWorkers(url: string, accounts: Account[]): Workers {
  const state = { stopped: false };
  const records: LoginRecord[] = [];
  const failures: string[] = [];
  const worker = async (w: number) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    const account = accounts[w % accounts.length]!;
    const localAddress = workerAddress(w);
    while (!state.stopped && failures.length === 0) {
      const start = wallClock();
      try {
        const reply = await login(url, account.username, account.password, { agent, localAddress });
        if (reply.status !== 200) {
          failures.push(`worker ${w} (${account.username} from ${localAddress}): POST ${API}/login answered ${reply.status}: ${reply.text}`);
          break;
        }
        records.push({ start, end: wallClock() });
      } catch (err) {
        failures.push(`worker ${w} (${account.username} from ${localAddress}): POST ${API}/login failed: ${errorText(err)}`);
        break;
      }
    }
    agent.destroy();
  };
  const running = Promise.all(Array.from({ length: LOGIN_WORKERS }, (_, w) => worker(w)));
  return {
    records,
    failures,
    async stop() {
      state.stopped = true;
      await withTimeout(running, LOGIN_TIMEOUT_MS + 5_000, 'stopping the login workers');
    },
  };
}

/** 127.0.0.11, .12...: the per-client login limiter counts attempts in flight, so one address per worker. */
const workerAddress = (w: number) => `127.0.0.${11 + w}`;

interface BurstReport {
  alone: Paced[];
  during: Paced[];
  /** The server's loop-delay p99 (ms) at the end of each phase. */
  loopAlone: number[];
  loopDuring: number[];
  logins: number;
  loginsPerSecond: number;
  loginP50: number;
  loginP99: number;
}

async function loginBurst(target: Target, apiKey: string, duration: number): Promise<BurstReport> {
  const url = target.url!;
  const headers = { 'x-api-key': apiKey };
  const me = await request(`${url}${PATH}`, { headers });
  if (me.status !== 200 || (parsed(me) as { username?: unknown }).username !== ADMIN_USERNAME) {
    throw new BenchFailure(`${target.name}: GET ${PATH} with the bootstrap API key answered ${me.status}: ${me.text}`);
  }

  const run = randomBytes(3).toString('hex');
  const accounts: Account[] = Array.from({ length: LOGIN_ACCOUNTS }, (_, i) => ({
    username: `bench-login-${run}-${i}`,
    password: randomBytes(18).toString('base64url'),
  }));
  for (const account of accounts) {
    const created = await request(`${url}${API}/users`, { method: 'POST', headers, json: { ...account, role: 'user' }, timeoutMs: LOGIN_TIMEOUT_MS });
    if (created.status !== 201) throw new BenchFailure(`${target.name}: POST ${API}/users (${account.username}) answered ${created.status}: ${created.text}`);
  }
  // Each worker's address and account work, one login at a time (this also warms up argon2).
  for (let w = 0; w < LOGIN_WORKERS; w++) {
    const account = accounts[w % accounts.length]!;
    let reply: Reply;
    try {
      reply = await login(url, account.username, account.password, { localAddress: workerAddress(w) });
    } catch (err) {
      throw new BenchFailure(`${target.name}: login from ${workerAddress(w)} failed: ${errorText(err)}`);
    }
    if (reply.status !== 200) throw new BenchFailure(`${target.name}: login of ${account.username} from ${workerAddress(w)} answered ${reply.status}: ${reply.text}`);
  }

  const probe = startProbe();
  const load = { url: `${url}${PATH}`, headers, rate: PROBE_RATE, connections: PROBE_CONNECTIONS };
  await probe.run({ ...load, seconds: WARMUP_SECONDS }, `${target.name} (API key, warm-up)`);
  const alone: Paced[] = [];
  const during: Paced[] = [];
  const records: LoginRecord[] = [];
  const loopAlone: number[] = [];
  const loopDuring: number[] = [];
  // Alone and during alternate, so that drift (a busier machine, a warmer cache) falls on both sides.
  for (let pair = 1; pair <= BURST_PAIRS; pair++) {
    const quiet = await probe.run({ ...load, seconds: duration }, `${target.name} (API key alone)`);
    alone.push(quiet);
    loopAlone.push(await loopDelayP99(url));
    log(`bench: login burst ${pair}/${BURST_PAIRS}: API key alone: p50 ${ms(percentile(quiet.latencies, 50))} ms, p99 ${ms(percentile(quiet.latencies, 99))} ms; loop delay p99 ${ms(loopAlone.at(-1)!)} ms`);
    const workers = startLoginWorkers(url, accounts);
    let busy: Paced;
    try {
      await sleep(BURST_RAMP_MS);
      if (workers.failures.length > 0) throw new BenchFailure(`${target.name} (login burst): ${workers.failures[0]}`);
      busy = await probe.run({ ...load, seconds: duration }, `${target.name} (API key during the login burst)`);
      // Read while the logins still run: the window ends now.
      loopDuring.push(await loopDelayP99(url));
    } finally {
      await workers.stop();
    }
    if (workers.failures.length > 0) {
      throw new BenchFailure(`${target.name} (login burst): ${workers.failures.length} worker(s) failed; first: ${workers.failures[0]}`);
    }
    if (!alive(target.child!)) throw new BenchFailure(`${target.name} (login burst): the server process died`);
    during.push(busy);
    const inWindow = workers.records.filter((r) => r.end >= busy.from && r.end <= busy.to);
    records.push(...inWindow);
    log(
      `bench: login burst ${pair}/${BURST_PAIRS}: API key during logins: p50 ${ms(percentile(busy.latencies, 50))} ms, p99 ${ms(percentile(busy.latencies, 99))} ms; ` +
        `${(inWindow.length / busy.seconds).toFixed(1)} logins/s; loop delay p99 ${ms(loopDuring.at(-1)!)} ms`,
    );
  }

  const loginLatencies = records.map((r) => r.end - r.start).sort((a, b) => a - b);
  const seconds = during.reduce((sum, p) => sum + p.seconds, 0);
  return {
    alone,
    during,
    loopAlone,
    loopDuring,
    logins: records.length,
    loginsPerSecond: records.length / seconds,
    loginP50: percentile(loginLatencies, 50),
    loginP99: percentile(loginLatencies, 99),
  };
}

// ---- failed logins and their audit rows ----

/** Failed logins sent in the audit phase: from FAILED_ADDRESSES addresses, each below its daily limit of 100. */
const FAILED_LOGINS = 1_000;
const FAILED_ADDRESSES = 20;
const FAILED_WORKERS = 20;

interface AuditReport {
  alone: Paced;
  during: Paced;
  sent: number;
  seconds: number;
  rows: number;
}

/**
 * API-key GET /me at the probe's rate alone, then while FAILED_LOGINS wrong-password logins (each a distinct,
 * unknown name, so each one is checked and written to the audit log) are sent; then the audit log must hold
 * a `login.failed` row for every one of them.
 */
async function failedLoginAudit(target: Target, apiKey: string, duration: number): Promise<AuditReport> {
  const url = target.url!;
  const headers = { 'x-api-key': apiKey };
  const probe = startProbe();
  const load = { url: `${url}${PATH}`, headers, rate: PROBE_RATE, connections: PROBE_CONNECTIONS };
  const alone = await probe.run({ ...load, seconds: duration }, `${target.name} (API key before the failed logins)`);
  const countRows = async () => {
    const res = await request(`${url}${API}/audit?type=login.failed&limit=1`, { headers });
    if (res.status !== 200) throw new BenchFailure(`${target.name}: GET ${API}/audit answered ${res.status}: ${res.text}`);
    return Number(res.headers['x-total-count']);
  };
  const before = await countRows();
  const run = randomBytes(3).toString('hex');
  let next = 0;
  const started = wallClock();
  const sending = Promise.all(
    Array.from({ length: FAILED_WORKERS }, async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      agents.push(agent);
      while (next < FAILED_LOGINS) {
        const i = next++;
        const reply = await login(url, `nobody-${run}-${i}`, 'wrong', { agent, localAddress: `127.0.2.${1 + (i % FAILED_ADDRESSES)}` });
        if (reply.status !== 401) throw new BenchFailure(`${target.name}: failed login ${i} answered ${reply.status}: ${reply.text}`);
      }
      agent.destroy();
    }),
  );
  sending.catch(() => undefined); // awaited below; this only keeps an early failure from being unhandled
  const during = await probe.run({ ...load, seconds: duration }, `${target.name} (API key during the failed logins)`);
  await withTimeout(sending, 120_000, 'the failed logins');
  const seconds = (wallClock() - started) / 1000;
  // Written in batches within a second or so: wait for them, up to 10 s.
  let rows = (await countRows()) - before;
  for (let waited = 0; rows < FAILED_LOGINS && waited < 10_000; waited += 200) {
    await sleep(200);
    rows = (await countRows()) - before;
  }
  return { alone, during, sent: FAILED_LOGINS, seconds, rows };
}

/** The phases of one kind as one: every latency, ascending, over their total time. */
function pooled(phases: Paced[]): Paced {
  const latencies = phases.flatMap((p) => p.latencies).sort((a, b) => a - b);
  return {
    sent: phases.reduce((n, p) => n + p.sent, 0),
    ok: phases.reduce((n, p) => n + p.ok, 0),
    seconds: phases.reduce((n, p) => n + p.seconds, 0),
    latencies,
    from: Math.min(...phases.map((p) => p.from)),
    to: Math.max(...phases.map((p) => p.to)),
  };
}

// ---- main ----

async function main(): Promise<number> {
  const duration = durationSeconds();
  redisState.client = await connectRedis();

  const apiKey = `usk_${randomBytes(32).toString('base64url')}`;
  const adminPassword = randomBytes(18).toString('base64url');
  const env = () => ({ ...usherEnv('usher-bench-sessions-', adminPassword, apiKey), BENCH_METRICS_TOKEN: METRICS_TOKEN });
  const prefix = `usher-bench-${randomBytes(6).toString('hex')}:`;
  redisState.prefix = prefix;
  const targets: Target[] = [
    { name: 'bare express', mode: 'bare', env: {}, headers: {} },
    { name: 'usher session (sqlite)', mode: 'usher', key: 'usher-sql', env: env(), headers: {}, username: ADMIN_USERNAME },
    {
      name: 'usher session (redis)',
      mode: 'usher-redis',
      env: { ...env(), BENCH_REDIS_URL: REDIS_URL, BENCH_REDIS_PREFIX: prefix },
      headers: {},
      username: ADMIN_USERNAME,
    },
  ];
  const [bare, sql, redis] = targets as [Target, Target, Target];

  log(
    `bench: GET ${PATH} with the ${SESSION_COOKIE} cookie, ${CONNECTIONS} connections, ${duration} s per run, ` +
      `${WARMUP_SECONDS} s warm-up, best of ${ROUNDS} rounds; node ${process.version}, ${cpus().length} CPUs`,
  );
  await startServers(targets, (target) => withoutUsherEnv(target.env));

  const bareMe = await bareBody(bare);
  for (const target of [sql, redis]) await openSession(target, adminPassword, bareMe);
  // The Redis row must really keep its sessions in Redis.
  let redisSessions = 0;
  for await (const keys of redisState.client.scanIterator({ MATCH: `${prefix}sess:*`, COUNT: 1000 })) redisSessions += keys.length;
  if (redisSessions === 0) throw new BenchFailure(`${redis.name}: no session key ${prefix}sess:* in Redis after login`);

  const burstOnly = process.env.BENCH_ONLY === 'burst';
  if (process.env.BENCH_ONLY !== undefined && !burstOnly) throw new BenchFailure(`BENCH_ONLY must be burst, got ${JSON.stringify(process.env.BENCH_ONLY)}`);
  const best = burstOnly ? undefined : await bestOfRounds(targets, duration, '200');

  log(`bench: login burst on ${sql.name}: API-key GET ${PATH} at ${PROBE_RATE} req/s over ${PROBE_CONNECTIONS} connections, ${LOGIN_WORKERS} login workers`);
  const burst = await loginBurst(sql, apiKey, duration);
  if (burstOnly) return report(targets, best, burst, duration);
  log(`bench: ${FAILED_LOGINS} failed logins on ${sql.name}, with their audit rows, beside API-key GET ${PATH} at ${PROBE_RATE} req/s`);
  const audit = await failedLoginAudit(sql, apiKey, duration);
  const status = report(targets, best, burst, duration);
  const p99 = (p: Paced) => percentile(p.latencies, 99);
  process.stdout.write(
    `\nFailed logins and the audit log on ${sql.name}: ${audit.sent} wrong-password logins in ${audit.seconds.toFixed(1)} s, ` +
      `${audit.rows} login.failed rows written\n` +
      `API key alone:             ${(audit.alone.ok / audit.alone.seconds).toFixed(0)} req/s, p50 ${ms(percentile(audit.alone.latencies, 50))} ms, p99 ${ms(p99(audit.alone))} ms\n` +
      `API key during the logins: ${(audit.during.ok / audit.during.seconds).toFixed(0)} req/s, p50 ${ms(percentile(audit.during.latencies, 50))} ms, p99 ${ms(p99(audit.during))} ms ` +
      `(p99 ratio ${(ratio(p99(audit.during), p99(audit.alone)) ?? NaN).toFixed(2)}; each failed login also runs argon2 against a dummy hash)\n`,
  );
  if (audit.rows < audit.sent) process.stdout.write(`*** only ${audit.rows} of ${audit.sent} failed logins reached the audit log ***\n`);
  return status;
}

function report(targets: Target[], best: Map<string, Figures> | undefined, burst: BurstReport, duration: number): number {
  const throughput = best ? writeThroughput(`${SESSION_COOKIE} cookie`, targets, best, duration, TARGET_RATIO) : { results: {}, missed: false };

  const alone = pooled(burst.alone);
  const during = pooled(burst.during);
  const aloneP99 = percentile(alone.latencies, 99);
  const duringP99 = percentile(during.latencies, 99);
  const burstRatio = ratio(duringP99, aloneP99);
  const burstMet = burstRatio !== null && burstRatio <= BURST_TARGET;
  const loopAloneMax = Math.max(...burst.loopAlone);
  const loopDuringMax = Math.max(...burst.loopDuring);
  const loopMet = loopDuringMax <= LOOP_DELAY_TARGET_MS;
  const phase = (name: string, p: Paced, logins: string, loop: number) => [
    name,
    (p.ok / p.seconds).toFixed(0),
    ms(percentile(p.latencies, 50)),
    ms(percentile(p.latencies, 99)),
    ms(p.latencies[p.latencies.length - 1] ?? NaN),
    logins,
    ms(loop),
  ];
  const burstRows = [
    ['phase', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'logins/s', 'server loop delay p99 ms'],
    ...burst.alone.flatMap((quiet, i) => [
      phase(`${i + 1}. API key alone`, quiet, '-', burst.loopAlone[i]!),
      phase(`${i + 1}. API key during logins`, burst.during[i]!, '', burst.loopDuring[i]!),
    ]),
    phase('all: API key alone', alone, '-', loopAloneMax),
    phase('all: API key during logins', during, burst.loginsPerSecond.toFixed(1), loopDuringMax),
  ];

  const out = process.stdout;
  out.write(
    `\nLogin burst on ${targets[1]!.name}: API-key GET ${PATH} at ${PROBE_RATE} req/s (open loop, ${PROBE_CONNECTIONS} connections), ` +
      `${BURST_PAIRS} times ${duration} s alone, then ${duration} s while ${LOGIN_WORKERS} clients log in back to back (${LOGIN_ACCOUNTS} accounts); ` +
      `the probe runs in a process of its own\n\n`,
  );
  out.write(`${table(burstRows)}\n\n`);
  out.write(`logins during the measurement: ${burst.logins} (login latency p50 ${ms(burst.loginP50)} ms, p99 ${ms(burst.loginP99)} ms)\n`);
  out.write(`target: p99 during logins <= ${BURST_TARGET} × p99 alone: ${showRatio(burstRatio)} (${burstMet ? 'meets target' : 'BELOW TARGET'})\n`);
  out.write(
    `target: the server's event-loop delay p99 (its /metrics, usher_event_loop_delay_p99_seconds; the worst phase) during logins <= ${LOOP_DELAY_TARGET_MS} ms: ` +
      `${ms(loopDuringMax)} ms (${loopMet ? 'meets target' : 'BELOW TARGET'}); alone ${ms(loopAloneMax)} ms\n`,
  );
  if (throughput.missed) out.write(`\n*** below target: a session row serves less than ${TARGET_RATIO * 100}% of bare Express's requests/s ***\n`);
  if (!burstMet) out.write(`\n*** below target: logins more than ${BURST_TARGET}× the p99 latency of the requests around them ***\n`);
  if (!loopMet) out.write(`\n*** below target: the event loop's delay p99 passed ${LOOP_DELAY_TARGET_MS} ms during the logins ***\n`);
  out.write(
    `${JSON.stringify({
      ...summary('GET /api/v1/auth/me session cookie; login burst', duration, TARGET_RATIO, throughput),
      loginBurst: {
        probeRate: PROBE_RATE,
        probeConnections: PROBE_CONNECTIONS,
        loginWorkers: LOGIN_WORKERS,
        loginAccounts: LOGIN_ACCOUNTS,
        pairs: BURST_PAIRS,
        aloneP50Ms: round(percentile(alone.latencies, 50), 3),
        aloneP99Ms: round(aloneP99, 3),
        duringP50Ms: round(percentile(during.latencies, 50), 3),
        duringP99Ms: round(duringP99, 3),
        p99Ratio: round(burstRatio, 3),
        loginsPerSecond: round(burst.loginsPerSecond, 1),
        loginP50Ms: round(burst.loginP50, 1),
        loginP99Ms: round(burst.loginP99, 1),
        target: BURST_TARGET,
        meetsTarget: burstMet,
        loopDelayP99AloneMs: burst.loopAlone.map((v) => round(v, 3)),
        loopDelayP99DuringMs: burst.loopDuring.map((v) => round(v, 3)),
        loopDelayTargetMs: LOOP_DELAY_TARGET_MS,
        loopDelayMeetsTarget: loopMet,
      },
    })}\n`,
  );
  return 0;
}

// Bound the whole run: start-up, every warm-up and measurement with slack, the burst, and cleanup.
runBench(main, (duration) => {
  const throughput = ROUNDS * 3 * (WARMUP_SECONDS + duration + 20) * 1000;
  const burst = 60_000 + (WARMUP_SECONDS + BURST_PAIRS * (2 * duration + 2 * 10)) * 1000 + BURST_PAIRS * (BURST_RAMP_MS + LOGIN_TIMEOUT_MS);
  return START_TIMEOUT_MS * 3 + throughput + burst + 60_000;
});
