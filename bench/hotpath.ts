/**
 * Part of `npm run bench` (`tsx bench/hotpath.ts`): the request path against its floor. GET /api/v1/auth/me
 * and GET /api/v1/auth/verify (forward auth) with an API key, a session cookie and a trusted proxy's headers,
 * beside Express 5 + helmet + a JSON request log line serving the same JSON (the floor: every Usher response
 * carries those headers and that line), and bare Express.
 *
 * Five servers (bench/servers.ts), each in its own process: bare, bare-dressed (the floor), passport (the floor
 * plus passport's API-key strategy and one SQLite lookup per request: what an app writes by hand), usher (SQLite:
 * API-key and session rows) and usher-proxy (SQLite, proxy auth on, 127.0.0.1 trusted: the proxy rows).
 * Both Usher servers have /metrics on (behind a token), as a deployment that is watched runs. The proxy row
 * of /verify is what nginx's auth_request sends for every request of a protected app: the client's session
 * cookie with X-Original-URL, from the trusted proxy (/verify never believes Remote-User itself).
 *
 * Rows are measured one after the other, in alternating order over two rounds, each after a short warm-up;
 * the best round of each is kept. The machine may be shared: absolute figures are noisy, the ratios to the
 * floor measured in the same run are what counts.
 *
 * Environment: BENCH_DURATION (seconds per measurement, default 10); BENCH_ROUNDS (default 2);
 * BENCH_ONLY=bracketed (one best-of round only); BENCH_ROWS (a regular expression: only the Usher rows it
 * matches); BENCH_BASE_DIR, another checkout of Usher (with this bench/servers.ts and node_modules): its two
 * Usher servers are measured too, as `base ...` rows, for a before/after comparison within one run.
 * Exit 1 when a server fails to start or a row answers anything but 200; exit 0 otherwise, target met or not.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import {
  ADMIN_USERNAME,
  BenchFailure,
  CONNECTIONS,
  PATH,
  ROUNDS,
  START_TIMEOUT_MS,
  WARMUP_SECONDS,
  durationSeconds,
  log,
  measure,
  parsed,
  ratio,
  request,
  round,
  runBench,
  showRatio,
  startServers,
  table,
  usherEnv,
  withoutUsherEnv,
  type Figures,
  type Target,
} from './lib.js';

/** Each Usher row must serve at least this share of the floor's requests/s. */
const TARGET_RATIO = 0.92;
const VERIFY = '/api/v1/auth/verify';
const FLOOR = 'express+helmet+log';

/** Linux's USER_HZ, the unit of /proc/<pid>/stat's CPU times. */
const CLOCK_TICKS = 100;

type Measured = Figures & { cpuUs: number };

const keysOf = (body: unknown) => (body && typeof body === 'object' ? Object.keys(body).sort().join(',') : '(not an object)');

/** A row on a server already started: the same process, another route or credential. */
function row(server: Target, name: string, path: string, headers: Record<string, string>, username?: string): Target {
  return { name, mode: server.mode, key: name, env: {}, headers, path, child: server.child, url: server.url, ...(username ? { username } : {}) };
}

/** Logs in as the bootstrap admin; answers the `usher.sid=...` cookie pair. */
async function sessionCookie(server: Target, password: string): Promise<string> {
  const reply = await request(`${server.url}/api/v1/auth/login`, { method: 'POST', json: { username: ADMIN_USERNAME, password }, timeoutMs: 30_000 });
  if (reply.status !== 200) throw new BenchFailure(`${server.name}: POST /login answered ${reply.status}: ${reply.text}`);
  const pair = (reply.headers['set-cookie'] ?? []).map((line) => line.split(';', 1)[0]!.trim()).find((p) => p.startsWith('usher.sid='));
  if (!pair) throw new BenchFailure(`${server.name}: POST /login set no usher.sid cookie`);
  return pair;
}

/** A row answers 200 with the same fields as the floor's route, for the right user, and sets no cookie. */
async function check(target: Target, floorBody: unknown): Promise<void> {
  const reply = await request(`${target.url}${target.path}`, { headers: target.headers });
  if (reply.status !== 200) throw new BenchFailure(`${target.name}: GET ${target.path} answered ${reply.status}: ${reply.text}`);
  const body = parsed(reply) as { username?: unknown; user?: { username?: unknown } };
  const username = target.path === VERIFY ? body.user?.username : body.username;
  if (target.username && username !== target.username) throw new BenchFailure(`${target.name}: answered ${reply.text}, not ${target.username}`);
  const shape = (b: unknown) => (target.path === VERIFY ? keysOf((b as { user?: unknown }).user) : keysOf(b));
  if (shape(body) !== shape(floorBody)) log(`bench: warning: ${target.name} answers fields ${shape(body)}, the floor ${shape(floorBody)}`);
  if (reply.headers['set-cookie']) log(`bench: warning: ${target.name} sets a cookie: ${JSON.stringify(reply.headers['set-cookie'])}`);
  if (target.path === VERIFY && reply.headers['remote-user'] !== target.username) throw new BenchFailure(`${target.name}: Remote-User is ${String(reply.headers['remote-user'])}`);
}

async function main(): Promise<number> {
  const duration = durationSeconds();
  const apiKey = `usk_${randomBytes(32).toString('base64url')}`;
  const password = randomBytes(18).toString('base64url');
  const metricsToken = randomBytes(32).toString('base64url');
  const env = () => ({ ...usherEnv('usher-bench-hotpath-', password, apiKey), BENCH_METRICS_TOKEN: metricsToken });
  const bare: Target = { name: 'bare express', mode: 'bare', env: {}, headers: {} };
  const floor: Target = { name: FLOOR, mode: 'bare-dressed', env: {}, headers: {} };
  const passportRef: Target = { name: 'passport', mode: 'passport', env: env(), headers: {} };
  const usher: Target = { name: 'usher', mode: 'usher', env: env(), headers: {} };
  const proxy: Target = { name: 'usher proxy', mode: 'usher-proxy', env: env(), headers: {} };
  const baseDir = process.env.BENCH_BASE_DIR;
  const script = baseDir ? join(baseDir, 'bench', 'servers.ts') : undefined;
  const baseUsher: Target = { name: 'base usher', mode: 'usher', env: env(), headers: {}, script };
  const baseProxy: Target = { name: 'base usher proxy', mode: 'usher-proxy', env: env(), headers: {}, script };
  log(`bench: GET /me and /verify against ${FLOOR}, ${CONNECTIONS} connections, ${duration} s per run, best of ${ROUNDS}; node ${process.version}, ${cpus().length} CPUs`);
  await startServers([bare, floor, passportRef, usher, proxy, ...(baseDir ? [baseUsher, baseProxy] : [])], (t) => withoutUsherEnv(t.env));

  const key = { 'x-api-key': apiKey };
  const proxyHeaders = { 'remote-user': 'bench-proxy', 'remote-groups': 'staff,bench-admins', 'remote-email': 'bench-proxy@example.com', 'remote-name': 'Bench Proxy' };
  const usherRows = async (prefix: string, u: Target, p: Target): Promise<Target[]> => {
    const cookie = await sessionCookie(u, password);
    const original = { cookie: await sessionCookie(p, password), 'x-original-url': 'https://app.example.com/library/albums?page=2' };
    return [
      row(u, `${prefix}usher /me api key`, PATH, key, ADMIN_USERNAME),
      row(p, `${prefix}usher /me proxy headers`, PATH, proxyHeaders, 'bench-proxy'),
      row(u, `${prefix}usher /me session`, PATH, { cookie }, ADMIN_USERNAME),
      row(u, `${prefix}usher /verify api key`, VERIFY, key, ADMIN_USERNAME),
      row(p, `${prefix}usher /verify proxy (X-Original-URL + cookie)`, VERIFY, original, ADMIN_USERNAME),
      row(u, `${prefix}usher /verify session`, VERIFY, { cookie }, ADMIN_USERNAME),
    ];
  };
  const rows: Target[] = [
    row(bare, 'bare express /me', PATH, {}),
    row(floor, `${FLOOR} /me`, PATH, {}),
    row(passportRef, 'passport + SQL lookup /me api key', PATH, key),
    row(bare, 'bare express /verify', VERIFY, {}),
    row(floor, `${FLOOR} /verify`, VERIFY, {}),
    ...(await usherRows('', usher, proxy)),
    ...(baseDir ? await usherRows('base ', baseUsher, baseProxy) : []),
  ];
  // BENCH_ROWS=<regular expression>: only the Usher rows whose names match (the floors always run).
  const only = process.env.BENCH_ROWS === undefined ? undefined : new RegExp(process.env.BENCH_ROWS, 'i');
  if (only) rows.splice(0, rows.length, ...rows.filter((t) => !t.mode.startsWith('usher') || only.test(t.name)));
  const floorMe = parsed(await request(`${floor.url}${PATH}`));
  const floorVerify = parsed(await request(`${floor.url}${VERIFY}`));
  for (const r of rows.filter((t) => t.mode.startsWith('usher'))) await check(r, r.path === VERIFY ? floorVerify : floorMe);
  // The proxy user exists now (made by the check's first request): the load measures a known user.

  // BENCH_ONLY=bracketed: only the bracketed measurement (the best-rounds columns then hold one run of each row).
  const best = await rounds(rows, duration, process.env.BENCH_ONLY === 'bracketed' ? 1 : Number(process.env.BENCH_ROUNDS ?? ROUNDS));
  const brackets = await bracketed(rows, duration);
  return report(rows, best, brackets, duration);
}

/** CPU time (user + system) the process has used, in ms, from /proc (Linux); NaN elsewhere. */
function cpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/**
 * ROUNDS rounds (BENCH_ROUNDS to change), alternating order, each row after a warm-up: the best requests/s of
 * each row, and the server's CPU time per request (median over rounds). Requests/s moves with whatever else
 * the machine runs; CPU per request much less, so its ratio is the steadier comparison on a shared machine.
 */
async function rounds(rows: Target[], duration: number, count: number): Promise<Map<string, Measured>> {
  const best = new Map<string, Measured>();
  const cpu = new Map<string, number[]>();
  for (let r = 0; r < count; r++) {
    for (const target of r % 2 === 0 ? rows : [...rows].reverse()) {
      await measure(target, WARMUP_SECONDS, 'warm-up', '200');
      const before = cpuMs(target.child?.pid);
      const f = await measure(target, duration, `round ${r + 1}`, '200');
      const perRequest = (1000 * (cpuMs(target.child?.pid) - before)) / f.requests;
      cpu.set(target.name, [...(cpu.get(target.name) ?? []), perRequest]);
      log(`bench: round ${r + 1}/${count} ${target.name}: ${f.rps.toFixed(0)} req/s, p99 ${f.p99} ms, ${perRequest.toFixed(1)} µs CPU/request`);
      if ((best.get(target.name)?.rps ?? -1) < f.rps) best.set(target.name, { ...f, cpuUs: NaN });
    }
  }
  for (const [name, m] of best) {
    const sorted = cpu.get(name)!.sort((a, b) => a - b);
    m.cpuUs = sorted[Math.floor((sorted.length - 1) / 2)]!;
  }
  return best;
}

const floorOf = (rows: Target[], r: Target) => rows.find((t) => t.name === `${FLOOR} ${r.path === VERIFY ? '/verify' : '/me'}`)!;

/**
 * Each Usher row measured between two runs of its floor, ROUNDS times (BENCH_ROUNDS): its requests/s over the
 * mean of the two floor runs around it, and the floor's CPU time per request over the row's. The medians are
 * kept. Bracketed this closely, a machine whose load changes over minutes (others' work) moves both sides.
 */
async function bracketed(rows: Target[], duration: number): Promise<Map<string, { rps: number; cpu: number }>> {
  const out = new Map<string, { rps: number; cpu: number }>();
  const count = Number(process.env.BENCH_ROUNDS ?? ROUNDS);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  const run = async (t: Target) => {
    const before = cpuMs(t.child?.pid);
    const f = await measure(t, duration, 'bracketed', '200');
    return { rps: f.rps, cpu: (cpuMs(t.child?.pid) - before) / f.requests };
  };
  const seen = new Map<string, { rps: number[]; cpu: number[] }>();
  for (let i = 0; i < count; i++) {
    for (const r of rows.filter((t) => t.mode.startsWith('usher'))) {
      const floor = floorOf(rows, r);
      const a = await run(floor);
      const u = await run(r);
      const b = await run(floor);
      const s = seen.get(r.name) ?? { rps: [], cpu: [] };
      s.rps.push(u.rps / ((a.rps + b.rps) / 2));
      s.cpu.push((a.cpu + b.cpu) / 2 / u.cpu);
      seen.set(r.name, s);
      log(`bench: bracketed ${i + 1}/${count} ${r.name}: req/s ratio ${s.rps.at(-1)!.toFixed(2)}, CPU ratio ${s.cpu.at(-1)!.toFixed(2)}`);
    }
  }
  for (const [name, s] of seen) out.set(name, { rps: median(s.rps), cpu: median(s.cpu) });
  return out;
}

function report(rows: Target[], best: Map<string, Measured>, brackets: Map<string, { rps: number; cpu: number }>, duration: number): number {
  const lines: string[][] = [['row', 'req/s', 'p50 ms', 'p99 ms', `/ ${FLOOR}`, '/ bare', 'CPU µs/req', 'floor CPU / row CPU', 'bracketed req/s', 'bracketed CPU']];
  const results: Record<string, unknown> = {};
  const verdicts: string[] = [];
  let missed = false;
  for (const r of rows) {
    const f = best.get(r.name)!;
    const floorFigures = best.get(floorOf(rows, r).name)!;
    const bareOf = best.get(`bare express ${r.path === VERIFY ? '/verify' : '/me'}`)!;
    const toFloor = ratio(f.rps, floorFigures.rps);
    const toBare = ratio(f.rps, bareOf.rps);
    const cpuToFloor = ratio(floorFigures.cpuUs, f.cpuUs);
    const bracket = brackets.get(r.name);
    const pair = bracket?.rps ?? null;
    lines.push([r.name, f.rps.toFixed(0), String(f.p50), String(f.p99), showRatio(toFloor), showRatio(toBare), f.cpuUs.toFixed(1), showRatio(cpuToFloor), showRatio(pair), showRatio(bracket?.cpu ?? null)]);
    results[r.name] = { rps: round(f.rps, 1), p50Ms: f.p50, p99Ms: f.p99, ratioToFloor: round(toFloor, 3), ratioToBare: round(toBare, 3), cpuUsPerRequest: round(f.cpuUs, 1), cpuRatioToFloor: round(cpuToFloor, 3), bracketedRatioToFloor: round(pair, 3), bracketedCpuRatioToFloor: round(bracket?.cpu ?? null, 3) };
    if (r.mode.startsWith('usher')) {
      // Judged on the bracketed ratio: on a shared machine, rows measured minutes apart see different loads.
      const met = pair !== null && pair >= TARGET_RATIO;
      if (!met) missed = true;
      verdicts.push(`target: ${r.name} req/s >= ${TARGET_RATIO} × ${FLOOR}, bracketed: ${showRatio(pair)}; best rounds: ${showRatio(toFloor)}; CPU: ${showRatio(bracket?.cpu ?? null)} (${met ? 'meets target' : 'BELOW TARGET'})`);
    }
  }
  const pass = best.get('passport + SQL lookup /me api key');
  const usherKey = best.get('usher /me api key');
  if (pass && usherKey) verdicts.push(`usher /me api key serves ${showRatio(ratio(usherKey.rps, pass.rps))} the requests/s of passport + SQL lookup`);
  const out = process.stdout;
  out.write(
    `\nGET /me and /verify, ${CONNECTIONS} connections, best of ${process.env.BENCH_ROUNDS ?? ROUNDS} × ${duration} s (ratios from this run; absolute req/s depend on the machine's load). ` +
      `CPU µs/req: the server process's CPU time per request (median of the rounds); its ratio is the floor's over the row's. ` +
      `bracketed: the row measured between two runs of its floor, req/s and CPU ratios (medians of the rounds). Both steadier than req/s on a shared machine.\n\n`,
  );
  out.write(`${table(lines)}\n\n${verdicts.join('\n')}\n`);
  if (missed) out.write(`\n*** below target: an Usher row serves less than ${TARGET_RATIO * 100}% of ${FLOOR}'s requests/s ***\n`);
  out.write(
    `${JSON.stringify({ bench: 'GET /me and /verify against express+helmet+log', date: new Date().toISOString(), node: process.version, cpus: cpus().length, connections: CONNECTIONS, durationS: duration, rounds: ROUNDS, target: TARGET_RATIO, meetsTarget: !missed, results })}\n`,
  );
  return 0;
}

runBench(main, (duration) => START_TIMEOUT_MS * 6 + Number(process.env.BENCH_ROUNDS ?? ROUNDS) * 52 * (WARMUP_SECONDS + duration + 20) * 1000 + 30_000);
