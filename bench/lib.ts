/**
 * What bench/run.ts and bench/sessions.ts share: forking the target servers (bench/servers.ts) and waiting
 * for their port over IPC, plain HTTP requests, autocannon runs and their checks, the best-of-rounds loop,
 * the throughput table with its ratios and targets, cleanup whatever happens, and the watchdog.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import type { ServerMessage, ServerMode } from './servers.js';
import type { Paced, ProbeMessage, ProbeRequest } from './probe.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const SERVER_SCRIPT = join(HERE, 'servers.ts');
const PROBE_SCRIPT = join(HERE, 'probe.ts');

export const PATH = '/api/v1/auth/me';
/** The bootstrap admin of every Usher server, and the user bare Express answers. */
export const ADMIN_USERNAME = 'bench';
export const CONNECTIONS = 50;
export const PIPELINING = 1;
export const WARMUP_SECONDS = 2;
export const ROUNDS = 2;
export const START_TIMEOUT_MS = 60_000;
export const REQUEST_TIMEOUT_MS = 5_000;

export class BenchFailure extends Error {
  override name = 'BenchFailure';
}

export function durationSeconds(): number {
  const raw = process.env.BENCH_DURATION;
  if (raw === undefined || raw.trim() === '') return 10;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1 || Number(raw) > 600) {
    throw new BenchFailure(`BENCH_DURATION must be a whole number of seconds 1-600, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

export interface Target {
  name: string;
  mode: ServerMode;
  /** The key of this row in the JSON results (default: mode). */
  key?: string;
  env: Record<string, string>;
  /** What each request of the load carries: an API key, proxy identity headers or a session cookie. */
  headers: Record<string, string>;
  /** The route loaded (default PATH, GET /me). */
  path?: string;
  /** The username GET /me must answer (Usher targets). */
  username?: string;
  /** The server script (default bench/servers.ts): another checkout's, for an A/B run. */
  script?: string;
  child?: ChildProcess;
  url?: string;
}

export interface Figures {
  rps: number;
  p50: number;
  p99: number;
  latencyMean: number;
  requests: number;
}

export const log = (line: string) => process.stderr.write(`${line}\n`);
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BenchFailure(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---- what must be cleaned up, whatever happens ----

/** A bench's own leftovers (a database schema, Redis keys, HTTP agents), after the servers and temp dirs. */
export interface Leftover {
  /** Last resort (watchdog, Ctrl-C): no waiting; say what is left behind. */
  now(): void;
  later(): Promise<void>;
}

const children: ChildProcess[] = [];
const tempDirs: string[] = [];
const leftovers: Leftover[] = [];

export const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

export function onCleanup(leftover: Leftover): void {
  leftovers.push(leftover);
}

/** A fresh directory under the system's temp dir, removed at the end. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch (err) {
      log(`bench: could not remove ${dir}: ${(err as Error).message}`);
    }
  }
}

function cleanupNow(): void {
  for (const child of children) if (alive(child)) child.kill('SIGKILL');
  removeTempDirs();
  for (const leftover of leftovers) leftover.now();
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

async function cleanup(): Promise<void> {
  // Servers first, so that nothing writes to a database or Redis while it is cleaned.
  for (const child of children) if (alive(child)) child.kill('SIGTERM');
  for (const child of children) {
    if (!(await waitExit(child, 5_000))) {
      child.kill('SIGKILL');
      await waitExit(child, 2_000);
    }
  }
  removeTempDirs();
  for (const leftover of leftovers) await leftover.later();
}

// ---- servers ----

/** The parent's own environment without USHER_* settings, which would override a child's config. */
export function withoutUsherEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('USHER_')) env[name] = value;
  return { ...env, ...extra };
}

/** The settings of an Usher server (bench/servers.ts): a fresh data dir and its bootstrap admin. */
export function usherEnv(dirPrefix: string, adminPassword: string, apiKey: string): Record<string, string> {
  return { BENCH_DATA_DIR: tempDir(dirPrefix), BENCH_ADMIN_USERNAME: ADMIN_USERNAME, BENCH_ADMIN_PASSWORD: adminPassword, BENCH_API_KEY: apiKey };
}

/** Forks one server and waits for the port it reports. */
function startServer(target: Target, env: NodeJS.ProcessEnv): Promise<string> {
  const child = fork(target.script ?? SERVER_SCRIPT, [target.mode], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    env,
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
      if (message?.type === 'ready') {
        // A credential the server made itself (a user it seeded) joins the target's headers.
        Object.assign(target.headers, message.headers ?? {});
        done(null, `http://127.0.0.1:${message.port}`);
      }
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

/** Starts the servers one after the other; `env` gives each child's whole environment. */
export async function startServers(targets: Target[], env: (target: Target) => NodeJS.ProcessEnv): Promise<void> {
  for (const target of targets) {
    target.url = await startServer(target, env(target));
    log(`bench: ${target.name} listening on ${target.url} (pid ${target.child?.pid})`);
  }
}

// ---- plain requests ----

/** A paced load generator in its own process (bench/probe.ts): one measurement at a time. */
export interface Probe {
  run(request: ProbeRequest, what: string): Promise<Paced>;
}

export function startProbe(): Probe {
  const child = fork(PROBE_SCRIPT, [], { cwd: ROOT, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  return {
    run(request, what) {
      return new Promise((resolve, reject) => {
        const onMessage = (raw: unknown) => {
          const message = raw as ProbeMessage;
          child.off('exit', onExit);
          if (message.type === 'done') resolve(message.paced);
          else reject(new BenchFailure(`${what}: ${message.message}`));
        };
        const onExit = (code: number | null) => {
          child.off('message', onMessage);
          reject(new BenchFailure(`${what}: the probe process exited (${code})`));
        };
        child.once('message', onMessage);
        child.once('exit', onExit);
        child.send(request);
      });
    },
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  json?: unknown;
  agent?: http.Agent;
  /** Source address of the connection (127.0.0.x): each login worker is its own client for the limiter. */
  localAddress?: string;
  timeoutMs?: number;
}

/** One HTTP request with node:http (fetch cannot choose the source address), bounded in time as a whole. */
export function request(url: string, opts: RequestOptions = {}): Promise<Reply> {
  const method = opts.method ?? 'GET';
  const body = opts.json === undefined ? undefined : JSON.stringify(opts.json);
  const headers: Record<string, string> = { ...opts.headers };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(body));
  }
  const timeoutMs = opts.timeoutMs ?? REQUEST_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: opts.agent, localAddress: opts.localAddress }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const timer = setTimeout(() => req.destroy(new BenchFailure(`${method} ${url}: no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

export function parsed(reply: Reply): unknown {
  try {
    return JSON.parse(reply.text) as unknown;
  } catch {
    return reply.text;
  }
}

const keysOf = (body: unknown) => (body && typeof body === 'object' ? Object.keys(body).sort().join(',') : '(not an object)');

/** GET /me of the bare baseline: must answer 200; its body is the shape the others are compared with. */
export async function bareBody(bare: Target): Promise<unknown> {
  const reply = await request(`${bare.url}${PATH}`, { headers: bare.headers });
  if (reply.status !== 200) throw new BenchFailure(`${bare.name}: GET ${PATH} answered ${reply.status}`);
  return parsed(reply);
}

/**
 * GET /me on an Usher target: with its headers it answers its user in the shape bare Express does (a warning
 * otherwise), without them 401. `credential` and `missing` name what the headers carry in the messages.
 */
export async function checkMe(target: Target, bare: unknown, credential: string, missing: string): Promise<Reply> {
  const me = await request(`${target.url}${PATH}`, { headers: target.headers });
  if (me.status !== 200) throw new BenchFailure(`${target.name}: GET ${PATH} with ${credential} answered ${me.status}: ${me.text}`);
  const body = parsed(me);
  if ((body as { username?: unknown }).username !== target.username) {
    throw new BenchFailure(`${target.name}: GET ${PATH} did not answer ${target.username}: ${me.text}`);
  }
  if (keysOf(body) !== keysOf(bare)) log(`bench: warning: ${target.name} answers fields ${keysOf(body)}, bare Express ${keysOf(bare)}`);
  const anonymous = await request(`${target.url}${PATH}`);
  if (anonymous.status !== 401) throw new BenchFailure(`${target.name}: GET ${PATH} without ${missing} answered ${anonymous.status}, not 401`);
  return me;
}

// ---- throughput ----

/** One autocannon run, stopped by force if it overruns. */
function load(target: Target, seconds: number): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      { url: `${target.url}${target.path ?? PATH}`, method: 'GET', headers: target.headers, connections: CONNECTIONS, pipelining: PIPELINING, duration: seconds },
      (err: unknown, result: autocannon.Result) => {
        clearTimeout(timer);
        if (err) reject(err instanceof Error ? err : new BenchFailure(String(err)));
        else resolve(result);
      },
    );
    const timer = setTimeout(() => instance.stop(), (seconds + 15) * 1000);
  });
}

/**
 * What a load must answer: any 2xx, or exactly 200 (with sessions: a lost session answers 401 quickly, it
 * would look fast). Anything else, an error or a dead server fails the bench.
 */
export type Accept = '2xx' | '200';

function checkResult(target: Target, phase: string, r: autocannon.Result, accept: Accept): void {
  const problems: string[] = [];
  const counts = (entries: [string, { count?: number }][]) => entries.map(([code, s]) => `${code}×${s.count ?? 0}`).join(' ');
  if (accept === '200') {
    const others = Object.entries(r.statusCodeStats ?? {}).filter(([code]) => code !== '200');
    if (others.length > 0) problems.push(`answers other than 200: ${counts(others)}`);
    else if (r.non2xx > 0) problems.push(`${r.non2xx} non-2xx responses`);
  } else if (r.non2xx > 0) {
    const codes = counts(Object.entries(r.statusCodeStats ?? {}).filter(([code]) => !code.startsWith('2')));
    problems.push(`${r.non2xx} non-2xx responses${codes ? ` (${codes})` : ''}`);
  }
  if (r.errors > 0) problems.push(`${r.errors} errors (${r.timeouts} timeouts)`);
  if (r['2xx'] === 0) problems.push('no 2xx response at all');
  if (problems.length > 0) throw new BenchFailure(`${target.name} (${phase}): ${problems.join(', ')}`);
  if (target.child && !alive(target.child)) throw new BenchFailure(`${target.name} (${phase}): the server process died`);
}

/** One checked run. */
export async function measure(target: Target, seconds: number, phase: string, accept: Accept): Promise<Figures> {
  const r = await load(target, seconds);
  checkResult(target, phase, r, accept);
  return { rps: r.requests.mean, p50: r.latency.p50, p99: r.latency.p99, latencyMean: r.latency.mean, requests: r['2xx'] };
}

/**
 * The servers measured one after the other, in alternating order over ROUNDS rounds, each after a short
 * warm-up; the best round of each (by requests/s) is kept, by target name.
 */
export async function bestOfRounds(targets: Target[], duration: number, accept: Accept): Promise<Map<string, Figures>> {
  const best = new Map<string, Figures>();
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? targets : [...targets].reverse();
    for (const target of order) {
      await measure(target, WARMUP_SECONDS, 'warm-up', accept);
      const measured = await measure(target, duration, `round ${r + 1}`, accept);
      log(`bench: round ${r + 1}/${ROUNDS} ${target.name}: ${measured.rps.toFixed(0)} req/s, p50 ${measured.p50} ms, p99 ${measured.p99} ms`);
      const previous = best.get(target.name);
      if (!previous || measured.rps > previous.rps) best.set(target.name, measured);
    }
  }
  return best;
}

// ---- figures ----

export const ratio = (a: number, b: number): number | null => (b > 0 && Number.isFinite(a) ? a / b : null);
export const round = (n: number | null, digits: number): number | null => (n === null || !Number.isFinite(n) ? null : Number(n.toFixed(digits)));
export const showRatio = (n: number | null) => (n === null ? 'n/a' : n.toFixed(2));

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')).join('\n');
}

/**
 * Prints the throughput table of `best` against the first target (bare Express) and a verdict line for
 * each Usher row: its requests/s must be at least `targetRatio` of bare Express's (a dressed baseline is a
 * reference that shows what helmet and logging cost alone, with no target). Returns the JSON results, by
 * row key, and whether any Usher row missed the target.
 */
export function writeThroughput(
  what: string,
  targets: Target[],
  best: Map<string, Figures>,
  duration: number,
  targetRatio: number,
): { results: Record<string, unknown>; missed: boolean } {
  const bare = best.get(targets[0]!.name)!;
  const rows: string[][] = [['server', 'req/s', 'p50 ms', 'p99 ms', 'mean ms', 'req/s ratio', 'p50 ratio', 'p99 ratio']];
  const results: Record<string, unknown> = {};
  const verdicts: string[] = [];
  let missed = false;
  for (const target of targets) {
    const f = best.get(target.name)!;
    const isBare = target === targets[0];
    const ratios = { rps: ratio(f.rps, bare.rps), p50: ratio(f.p50, bare.p50), p99: ratio(f.p99, bare.p99) };
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
    results[target.key ?? target.mode] = {
      rps: round(f.rps, 1),
      p50Ms: f.p50,
      p99Ms: f.p99,
      meanMs: round(f.latencyMean, 3),
      ...(isBare ? {} : { rpsRatio: round(ratios.rps, 3), p50Ratio: round(ratios.p50, 3), p99Ratio: round(ratios.p99, 3) }),
    };
    if (!isBare && target.mode.startsWith('usher')) {
      const met = ratios.rps !== null && ratios.rps >= targetRatio;
      if (!met) missed = true;
      verdicts.push(`target: ${target.name} req/s >= ${targetRatio} × bare express: ${showRatio(ratios.rps)} (${met ? 'meets target' : 'BELOW TARGET'})`);
    }
  }

  const out = process.stdout;
  out.write(`\nGET ${PATH} (${what}), ${CONNECTIONS} connections, best of ${ROUNDS} × ${duration} s\n\n`);
  out.write(`${table(rows)}\n\n`);
  out.write('ratios are Usher / bare Express from this run: req/s higher is better, latency lower is better.\n');
  for (const line of verdicts) out.write(`${line}\n`);
  return { results, missed };
}

/**
 * The head of a bench's closing JSON line: where and how it ran, the throughput target and results.
 * `pipelining` is left out where a bench does not report it.
 */
export function summary(
  bench: string,
  duration: number,
  targetRatio: number,
  throughput: { results: Record<string, unknown>; missed: boolean },
  opts: { pipelining?: number } = {},
): Record<string, unknown> {
  return {
    bench,
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    connections: CONNECTIONS,
    ...(opts.pipelining === undefined ? {} : { pipelining: opts.pipelining }),
    durationS: duration,
    rounds: ROUNDS,
    target: targetRatio,
    meetsTarget: !throughput.missed,
    results: throughput.results,
  };
}

// ---- the run as a whole ----

/**
 * Runs `main` once, cleans up whatever happens, and exits with its code (1 when it throws). A watchdog
 * gives up after `budgetMs(duration)`; Ctrl-C exits 130. Both clean up without waiting.
 */
export function runBench(main: () => Promise<number>, budgetMs: (duration: number) => number): void {
  let finished = false;
  const run = async (): Promise<number> => {
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
  };

  let duration = 10;
  try {
    duration = durationSeconds();
  } catch {
    // main() reports it
  }
  const budget = budgetMs(duration);
  const watchdog = setTimeout(() => {
    if (finished) return;
    log(`bench: FAILED: still running after ${Math.round(budget / 1000)} s; giving up`);
    cleanupNow();
    process.exit(1);
  }, budget);

  void run().then((code) => {
    clearTimeout(watchdog);
    process.exit(code);
  });
}
