/**
 * `npm run bench`: GET /api/v1/auth/me with an API key, and with a trusted proxy's identity headers
 * (Remote-User and Remote-Groups of a known user), Usher against a bare Express 5 app.
 *
 * Each server runs in its own child process (bench/servers.ts) so autocannon, here in the parent,
 * does not share its event loop. Servers are measured one after the other, in alternating order over
 * two rounds, each after a short warm-up; the best round of each is kept. Usher logs at info (one JSON
 * line per request is part of its cost) to a stdout that goes to /dev/null.
 *
 * Environment:
 *   BENCH_DURATION   seconds per measurement (default 10)
 *   USHER_BENCH_PG=1 also measure Usher on PostgreSQL (postgres://postgres@127.0.0.1:5432/test, throwaway schema)
 *
 * Exit 1 when a server fails to start or answers anything but 2xx; exit 0 otherwise, target met or not.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import knex from 'knex';
import type { ServerMessage, ServerMode } from './servers.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const SERVER_SCRIPT = join(HERE, 'servers.ts');

const PATH = '/api/v1/auth/me';
const CONNECTIONS = 50;
const PIPELINING = 1;
const WARMUP_SECONDS = 2;
const ROUNDS = 2;
/** Usher's requests/s must be at least this share of bare Express's. */
const TARGET_RATIO = 0.9;
const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
const START_TIMEOUT_MS = 60_000;
const REQUEST_TIMEOUT_MS = 5_000;

class BenchFailure extends Error {
  override name = 'BenchFailure';
}

function durationSeconds(): number {
  const raw = process.env.BENCH_DURATION;
  if (raw === undefined || raw.trim() === '') return 10;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1 || Number(raw) > 600) {
    throw new BenchFailure(`BENCH_DURATION must be a whole number of seconds 1-600, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

interface Target {
  name: string;
  mode: ServerMode;
  env: Record<string, string>;
  /** What each request carries: the API key, or the proxy's identity headers. */
  headers: Record<string, string>;
  /** The username GET /me must answer (Usher targets). */
  username?: string;
  child?: ChildProcess;
  url?: string;
}

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  latencyMean: number;
  requests: number;
}

// ---- what must be cleaned up, whatever happens ----

const children: ChildProcess[] = [];
const tempDirs: string[] = [];
let pgSchema: string | undefined;

const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch (err) {
      process.stderr.write(`bench: could not remove ${dir}: ${(err as Error).message}\n`);
    }
  }
}

/** Last resort (watchdog, Ctrl-C): no waiting. */
function cleanupNow(): void {
  for (const child of children) if (alive(child)) child.kill('SIGKILL');
  removeTempDirs();
  if (pgSchema) process.stderr.write(`bench: PostgreSQL schema ${pgSchema} was left behind; drop it with DROP SCHEMA ${pgSchema} CASCADE\n`);
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (!alive(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function dropPgSchema(schema: string): Promise<void> {
  const db = knex({ client: 'pg', connection: PG_URL, pool: { min: 0, max: 1 }, acquireConnectionTimeout: 5_000 });
  try {
    await withTimeout(db.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]), 10_000, `dropping schema ${schema}`);
  } finally {
    await withTimeout(db.destroy(), 5_000, 'closing the PostgreSQL pool').catch(() => undefined);
  }
}

async function cleanup(): Promise<void> {
  for (const child of children) if (alive(child)) child.kill('SIGTERM');
  for (const child of children) {
    if (!(await waitExit(child, 5_000))) {
      child.kill('SIGKILL');
      await waitExit(child, 2_000);
    }
  }
  removeTempDirs();
  if (pgSchema) {
    const schema = pgSchema;
    try {
      await dropPgSchema(schema);
      pgSchema = undefined;
    } catch (err) {
      process.stderr.write(`bench: could not drop schema ${schema}: ${(err as Error).message}\n`);
    }
  }
}

// ---- helpers ----

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BenchFailure(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const log = (line: string) => process.stderr.write(`${line}\n`);

/** Forks one server and waits for the port it reports. */
function startServer(target: Target): Promise<string> {
  const child = fork(SERVER_SCRIPT, [target.mode], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...target.env },
    // Usher logs one JSON line per request on stdout: discard it; keep stderr for start-up failures.
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  children.push(child);
  target.child = child;
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, url?: string) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      child.off('error', onError);
      if (err) reject(err);
      else resolve(url!);
    };
    const timer = setTimeout(() => done(new BenchFailure(`${target.name}: did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    const onMessage = (raw: unknown) => {
      const message = raw as ServerMessage;
      if (message?.type === 'ready') done(null, `http://127.0.0.1:${message.port}`);
      else if (message?.type === 'failed') done(new BenchFailure(`${target.name}: failed to start: ${message.message}`));
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      done(new BenchFailure(`${target.name}: exited during start-up (${signal ?? `code ${code}`})`));
    const onError = (err: Error) => done(new BenchFailure(`${target.name}: cannot start: ${err.message}`));
    child.on('message', onMessage);
    child.on('exit', onExit);
    child.on('error', onError);
  });
}

async function getJson(url: string, headers: Record<string, string>): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: res.status, body };
}

const keysOf = (body: unknown) => (body && typeof body === 'object' ? Object.keys(body).sort().join(',') : '(not an object)');

/**
 * One request each before loading: the credential works (a proxy user is created by this first request,
 * so the load measures a known user), the route needs it, and all servers answer the same shape.
 */
async function sanityCheck(targets: Target[]): Promise<void> {
  const bare = await getJson(`${targets[0]!.url}${PATH}`, targets[0]!.headers);
  if (bare.status !== 200) throw new BenchFailure(`${targets[0]!.name}: GET ${PATH} answered ${bare.status}`);
  for (const target of targets.filter((t) => t.mode.startsWith('usher'))) {
    const withKey = await getJson(`${target.url}${PATH}`, target.headers);
    if (withKey.status !== 200) {
      throw new BenchFailure(`${target.name}: GET ${PATH} with its credential answered ${withKey.status}: ${JSON.stringify(withKey.body)}`);
    }
    if ((withKey.body as { username?: unknown }).username !== target.username) {
      throw new BenchFailure(`${target.name}: GET ${PATH} did not answer ${target.username}: ${JSON.stringify(withKey.body)}`);
    }
    if (keysOf(withKey.body) !== keysOf(bare.body)) {
      log(`bench: warning: ${target.name} answers fields ${keysOf(withKey.body)}, bare Express ${keysOf(bare.body)}`);
    }
    const anonymous = await getJson(`${target.url}${PATH}`, {});
    if (anonymous.status !== 401) throw new BenchFailure(`${target.name}: GET ${PATH} without a key answered ${anonymous.status}, not 401`);
  }
}

/** One autocannon run, stopped by force if it overruns. */
function load(target: Target, seconds: number): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      { url: `${target.url}${PATH}`, method: 'GET', headers: target.headers, connections: CONNECTIONS, pipelining: PIPELINING, duration: seconds },
      (err: unknown, result: autocannon.Result) => {
        clearTimeout(timer);
        if (err) reject(err instanceof Error ? err : new BenchFailure(String(err)));
        else resolve(result);
      },
    );
    const timer = setTimeout(() => instance.stop(), (seconds + 15) * 1000);
  });
}

function checkResult(target: Target, phase: string, r: autocannon.Result): void {
  const problems: string[] = [];
  if (r.non2xx > 0) {
    const codes = Object.entries(r.statusCodeStats ?? {})
      .filter(([code]) => !code.startsWith('2'))
      .map(([code, s]) => `${code}×${s.count ?? 0}`)
      .join(' ');
    problems.push(`${r.non2xx} non-2xx responses${codes ? ` (${codes})` : ''}`);
  }
  if (r.errors > 0) problems.push(`${r.errors} errors (${r.timeouts} timeouts)`);
  if (r['2xx'] === 0) problems.push('no 2xx response at all');
  if (problems.length > 0) throw new BenchFailure(`${target.name} (${phase}): ${problems.join(', ')}`);
  if (target.child && !alive(target.child)) throw new BenchFailure(`${target.name} (${phase}): the server process died`);
}

const figures = (r: autocannon.Result): Figures => ({
  rps: r.requests.mean,
  p50: r.latency.p50,
  p99: r.latency.p99,
  latencyMean: r.latency.mean,
  requests: r['2xx'],
});

const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);
const round = (n: number | null, digits: number): number | null => (n === null ? null : Number(n.toFixed(digits)));
const showRatio = (n: number | null) => (n === null ? 'n/a' : n.toFixed(2));

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')).join('\n');
}

// ---- main ----

async function main(): Promise<number> {
  const duration = durationSeconds();
  const withPg = process.env.USHER_BENCH_PG === '1';
  const apiKey = `usk_${randomBytes(32).toString('base64url')}`;

  const dataDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'usher-bench-'));
    tempDirs.push(dir);
    return dir;
  };
  const withKey = { 'x-api-key': apiKey };
  const targets: Target[] = [
    { name: 'bare express', mode: 'bare', env: {}, headers: withKey },
    { name: 'express+helmet+log', mode: 'bare-dressed', env: {}, headers: withKey },
    { name: 'usher (sqlite)', mode: 'usher', env: { BENCH_DATA_DIR: dataDir(), BENCH_API_KEY: apiKey }, headers: withKey, username: 'bench' },
    {
      name: 'usher proxy headers',
      mode: 'usher-proxy',
      env: { BENCH_DATA_DIR: dataDir(), BENCH_API_KEY: apiKey },
      headers: { 'remote-user': 'bench-proxy', 'remote-groups': 'staff,bench-admins', 'remote-email': 'bench-proxy@example.com', 'remote-name': 'Bench Proxy' },
      username: 'bench-proxy',
    },
  ];
  if (withPg) {
    pgSchema = `bench_${randomBytes(6).toString('hex')}`;
    targets.push({
      name: 'usher (postgres)',
      mode: 'usher-pg',
      env: { BENCH_DATA_DIR: dataDir(), BENCH_API_KEY: apiKey, BENCH_PG_URL: PG_URL, BENCH_PG_SCHEMA: pgSchema },
      headers: withKey,
      username: 'bench',
    });
  }

  log(`bench: GET ${PATH} with X-Api-Key or proxy headers, ${CONNECTIONS} connections, pipelining ${PIPELINING}, ${duration} s per run, ` +
    `${WARMUP_SECONDS} s warm-up, best of ${ROUNDS} rounds; node ${process.version}, ${cpus().length} CPUs`);
  for (const target of targets) {
    target.url = await startServer(target);
    log(`bench: ${target.name} listening on ${target.url} (pid ${target.child?.pid})`);
  }
  await sanityCheck(targets);

  const best = new Map<string, Figures>();
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? targets : [...targets].reverse();
    for (const target of order) {
      await measure(target, WARMUP_SECONDS, 'warm-up');
      const measured = await measure(target, duration, `round ${r + 1}`);
      log(`bench: round ${r + 1}/${ROUNDS} ${target.name}: ${measured.rps.toFixed(0)} req/s, p50 ${measured.p50} ms, p99 ${measured.p99} ms`);
      const previous = best.get(target.name);
      if (!previous || measured.rps > previous.rps) best.set(target.name, measured);
    }
  }
  return report(targets, best, duration);
}

/** One checked run: anything but 2xx, or a dead server, fails the bench. */
async function measure(target: Target, seconds: number, phase: string): Promise<Figures> {
  const result = await load(target, seconds);
  checkResult(target, phase, result);
  return figures(result);
}

function report(targets: Target[], best: Map<string, Figures>, duration: number): number {
  const bare = best.get(targets[0]!.name)!;
  const rows: string[][] = [['server', 'req/s', 'p50 ms', 'p99 ms', 'mean ms', 'req/s ratio', 'p50 ratio', 'p99 ratio']];
  const json: Record<string, unknown> = {};
  let missed = false;
  for (const target of targets) {
    const f = best.get(target.name)!;
    const isBare = target === targets[0];
    const ratios = { rps: ratio(f.rps, bare.rps), p50: ratio(f.p50, bare.p50), p99: ratio(f.p99, bare.p99) };
    // The dressed baseline is a reference that shows what helmet and logging cost alone.
    if (target.mode.startsWith('usher') && (ratios.rps === null || ratios.rps < TARGET_RATIO)) missed = true;
    rows.push([
      target.name,
      f.rps.toFixed(0),
      String(f.p50),
      String(f.p99),
      f.latencyMean.toFixed(2),
      isBare ? '-' : showRatio(ratios.rps),
      isBare ? '-' : showRatio(ratios.p50),
      isBare ? '-' : showRatio(ratios.p99),
    ]);
    json[target.mode] = {
      rps: round(f.rps, 1),
      p50Ms: f.p50,
      p99Ms: f.p99,
      meanMs: round(f.latencyMean, 3),
      ...(isBare ? {} : { rpsRatio: round(ratios.rps, 3), p50Ratio: round(ratios.p50, 3), p99Ratio: round(ratios.p99, 3) }),
    };
  }

  const out = process.stdout;
  out.write(`\nGET ${PATH} (X-Api-Key; proxy headers for the proxy row), ${CONNECTIONS} connections, best of ${ROUNDS} × ${duration} s\n\n`);
  out.write(`${table(rows)}\n\n`);
  out.write('ratios are Usher / bare Express from this run: req/s higher is better, latency lower is better.\n');
  for (const target of targets.filter((t) => t.mode.startsWith('usher'))) {
    const r = ratio(best.get(target.name)!.rps, bare.rps);
    const verdict = r !== null && r >= TARGET_RATIO ? 'meets target' : 'BELOW TARGET';
    out.write(`target: ${target.name} req/s >= ${TARGET_RATIO} × bare express: ${showRatio(r)} (${verdict})\n`);
  }
  if (missed) out.write(`\n*** below target: Usher serves less than ${TARGET_RATIO * 100}% of bare Express's requests/s ***\n`);
  out.write(
    `${JSON.stringify({
      bench: 'GET /api/v1/auth/me api-key and proxy headers',
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      connections: CONNECTIONS,
      pipelining: PIPELINING,
      durationS: duration,
      rounds: ROUNDS,
      target: TARGET_RATIO,
      meetsTarget: !missed,
      results: json,
    })}\n`,
  );
  return 0;
}

let finished = false;
async function run(): Promise<number> {
  process.on('SIGINT', () => {
    log('bench: interrupted');
    cleanupNow();
    process.exit(130);
  });
  let code = 1;
  try {
    code = await main();
  } catch (err) {
    log(`bench: FAILED: ${err instanceof BenchFailure ? err.message : ((err as Error)?.stack ?? String(err))}`);
    code = 1;
  } finally {
    await cleanup().catch((err: unknown) => log(`bench: cleanup failed: ${(err as Error).message}`));
  }
  finished = true;
  return code;
}

// Bound the whole run: start-up, every warm-up and measurement with slack, and cleanup.
const budgetMs = (() => {
  let duration = 10;
  try {
    duration = durationSeconds();
  } catch {
    // main() reports it
  }
  // Targets: bare, bare-dressed, usher, usher-proxy (and usher-pg).
  const runs = ROUNDS * (process.env.USHER_BENCH_PG === '1' ? 5 : 4);
  return START_TIMEOUT_MS * 2 + runs * (WARMUP_SECONDS + duration + 20) * 1000 + 30_000;
})();
const watchdog = setTimeout(() => {
  if (finished) return;
  log(`bench: FAILED: still running after ${Math.round(budgetMs / 1000)} s; giving up`);
  cleanupNow();
  process.exit(1);
}, budgetMs);

run().then((code) => {
  clearTimeout(watchdog);
  process.exit(code);
});
