/**
 * Vitest's global setup: gets this machine ready for the tests, or stops the run before any test.
 *
 * The tests use real services and never skip: Debian's nginx, chromium and caddy, PostgreSQL and
 * Redis. Run as root, this installs the missing packages with apt-get and starts a stopped local
 * PostgreSQL or Redis, then waits until they answer. Not root, or when that fails, it prints one
 * line per missing thing with the command that fixes it and exits 1. When everything is there it
 * stats three files and asks each service once (no apt-get).
 *
 * A global setup rather than a script before `vitest run`: it also covers `npx vitest run test/x.test.ts`.
 * Vitest 3.2 awaits a global setup with no time limit (hookTimeout is for hooks inside test files),
 * so a first install of Chromium, which takes minutes, is not cut short; apt-get's own output,
 * written straight to the terminal, is the progress.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { createClient } from 'redis';

export interface MachineOptions {
  /** Environment: PATH finds the commands; USHER_TEST_* name other binaries and services. */
  env?: NodeJS.ProcessEnv;
  /** Only root installs packages or starts services. */
  root?: boolean;
  /** Where Debian keeps PostgreSQL's clusters, one folder per version. */
  pgConfigDir?: string;
  /** How long a started service may take to answer. */
  waitMs?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

interface Package {
  name: string;
  path: string;
}

/** The same defaults and overrides as test/helpers/nginx.ts and test/helpers/browser.ts. */
function packages(env: NodeJS.ProcessEnv): Package[] {
  return [
    { name: 'nginx', path: env.USHER_TEST_NGINX ?? '/usr/sbin/nginx' },
    { name: 'chromium', path: env.USHER_TEST_CHROMIUM ?? '/usr/bin/chromium' },
    { name: 'caddy', path: env.USHER_TEST_CADDY ?? '/usr/bin/caddy' },
  ];
}

/** Why a service does not serve the tests. `down`: nothing answers yet, so starting it may help. */
interface Problem {
  down: boolean;
  detail: string;
}

interface Service {
  name: string;
  /** host:port, as the problem lines show it. */
  address: string;
  ask(): Promise<Problem | null>;
  /** The command that starts it on this machine; a string when it cannot be started here (why not). */
  start: string[] | string;
  install: string;
}

const DOWN_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOENT', 'ETIMEDOUT', 'EPIPE', '57P03']);

function problemOf(err: unknown): Problem {
  const e = err as Error & { code?: string };
  // Redis answers LOADING while it reads its data; PostgreSQL 57P03 while it starts.
  const down = DOWN_CODES.has(e.code ?? '') || e.name === 'ConnectionTimeoutError' || /timeout|terminated|^LOADING/i.test(e.message);
  return { down, detail: e.message };
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

function onPath(command: string, env: NodeJS.ProcessEnv): boolean {
  return (env.PATH ?? '').split(':').some((dir) => {
    if (!dir) return false;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return statSync(join(dir, command)).isFile();
    } catch {
      return false;
    }
  });
}

function postgres(env: NodeJS.ProcessEnv, pgConfigDir: string): Service {
  const url = env.USHER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const u = new URL(url);
  const address = `${u.hostname}:${u.port || 5432}`;
  const versions = existsSync(pgConfigDir) ? readdirSync(pgConfigDir).filter((v) => existsSync(join(pgConfigDir, v, 'main'))) : [];
  const version = versions.sort((a, b) => Number(b) - Number(a))[0];
  let start: Service['start'] = ['pg_ctlcluster', '--skip-systemctl-redirect', version ?? '', 'main', 'start'];
  if (!LOOPBACK.has(u.hostname)) start = 'not on this machine (USHER_TEST_PG_URL)';
  else if (!onPath('pg_ctlcluster', env)) start = 'not installed (no pg_ctlcluster)';
  else if (!version) start = `not installed (no cluster in ${pgConfigDir})`;
  const database = decodeURIComponent(u.pathname.slice(1));
  return {
    name: 'PostgreSQL',
    address,
    start,
    install: 'apt-get install -y postgresql (trust auth on 127.0.0.1, database test)',
    async ask() {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
      client.on('error', () => {});
      try {
        await client.connect();
        return null;
      } catch (err) {
        const problem = problemOf(err);
        if ((err as { code?: string }).code === '3D000') {
          problem.detail += `; create it: createdb -h ${u.hostname} -p ${u.port || 5432} -U ${decodeURIComponent(u.username) || 'postgres'} ${database}`;
        }
        return problem;
      } finally {
        await client.end().catch(() => {});
      }
    },
  };
}

function redis(env: NodeJS.ProcessEnv): Service {
  const url = env.USHER_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const u = new URL(url);
  const port = u.port || '6379';
  let start: Service['start'] = ['redis-server', '--daemonize', 'yes', '--bind', '127.0.0.1', '--port', port, '--save', '', '--appendonly', 'no'];
  if (!LOOPBACK.has(u.hostname)) start = 'not on this machine (USHER_TEST_REDIS_URL)';
  else if (!onPath('redis-server', env)) start = 'not installed (no redis-server)';
  return {
    name: 'Redis',
    address: `${u.hostname}:${port}`,
    start,
    install: 'apt-get install -y redis-server',
    async ask() {
      const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 2_000 } });
      client.on('error', () => {});
      try {
        await client.connect();
        await client.ping();
        return null;
      } catch (err) {
        return problemOf(err);
      } finally {
        if (client.isOpen) client.destroy();
      }
    },
  };
}

const shown = (command: string[]) => command.map((a) => (a === '' ? '""' : a)).join(' ');

/** Runs a command found on env's PATH, output to the terminal; resolves with its exit code (127: not found). */
function run(command: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command[0]!, command.slice(1), { env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', () => resolve(127));
    // 'exit', not 'close': a daemon it forks may keep the inherited output open.
    child.once('exit', (code) => resolve(code ?? 1));
  });
}

async function waitUntilUp(service: Service, ms: number): Promise<Problem | null> {
  const deadline = Date.now() + ms;
  for (;;) {
    const problem = await service.ask();
    if (!problem?.down || Date.now() >= deadline) return problem;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Makes the machine ready for the tests as far as it may (see the top of this file) and returns
 * what is still missing, one line each with the command that fixes it; empty when all is there.
 */
export async function prepareMachine(options: MachineOptions = {}): Promise<string[]> {
  const env = options.env ?? process.env;
  const root = options.root ?? process.getuid?.() === 0;
  const waitMs = options.waitMs ?? 30_000;
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const services = [postgres(env, options.pgConfigDir ?? '/etc/postgresql'), redis(env)];

  let missing = packages(env).filter((p) => !existsSync(p.path));
  const problems = await Promise.all(services.map((s) => s.ask()));
  if (missing.length === 0 && problems.every((p) => p === null)) return [];

  const lines: string[] = [];
  const asRoot = root ? '' : ' as root';

  if (missing.length > 0) {
    let after = '';
    if (root && !onPath('apt-get', env)) after = ' (no apt-get on PATH)';
    else if (root) {
      const names = missing.map((p) => p.name);
      log(`test setup: installing ${names.join(' ')} with apt-get (the first time only; Chromium takes minutes)`);
      const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
      const lock = ['-o', 'DPkg::Lock::Timeout=600'];
      await run(['apt-get', ...lock, 'update', '-qq'], aptEnv);
      const code = await run(['apt-get', ...lock, 'install', '-y', '-qq', ...names], aptEnv);
      after = ` after apt-get install (exit code ${code})`;
      missing = missing.filter((p) => !existsSync(p.path));
    }
    for (const p of missing) lines.push(`test setup: ${p.name} is missing (${p.path})${after}; install it${asRoot}: apt-get install -y ${p.name}`);
  }

  for (const [i, service] of services.entries()) {
    let problem: Problem | null = problems[i]!;
    if (problem === null) continue;
    const where = `test setup: ${service.name} at ${service.address}`;
    if (!problem.down) {
      lines.push(`${where}: ${problem.detail}`);
      continue;
    }
    const start = service.start;
    if (typeof start === 'string') {
      const fix = start.startsWith('not installed') ? `; install it${asRoot}: ${service.install}` : `: ${problem.detail}`;
      lines.push(`${where} does not answer and is ${start}${fix}`);
      continue;
    }
    let after = '';
    if (root) {
      log(`test setup: starting ${service.name}: ${shown(start)}`);
      const code = await run(start, env);
      // Non-zero may mean another run started it a moment ago: ask once more, without waiting.
      problem = code === 0 ? await waitUntilUp(service, waitMs) : await service.ask();
      if (problem === null) continue;
      after = code === 0 ? ` ${waitMs / 1000} s after ${start[0]} started it (${problem.detail})` : ` after ${start[0]} exited with ${code}`;
      if (!problem.down) {
        lines.push(`${where}: ${problem.detail}`);
        continue;
      }
    }
    lines.push(`${where} does not answer${after}; start it${asRoot}: ${shown(start)}`);
  }
  return lines;
}

/** Builds console/ into dist/console, as `npm run build:console` does. */
export async function buildConsole(): Promise<void> {
  const vite = await import('vite');
  await vite.build({ configFile: join(import.meta.dirname, '..', 'console', 'vite.config.ts') });
}

/** Vitest's hook: prints what is missing and exits 1, so that no test runs without what it needs. */
export async function setup(): Promise<void> {
  const lines = await prepareMachine();
  if (lines.length === 0) {
    // The console the tests drive is the one in console/ now, never a stale build (under a second with Vite).
    await buildConsole();
    return;
  }
  // Straight to the file descriptor: Vitest's reporter buffers process.stderr, and we exit now.
  writeSync(2, lines.map((line) => `${line}\n`).join(''));
  process.exit(1);
}
