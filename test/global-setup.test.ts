/**
 * The test command's machine setup (test/global-setup.ts), run against fake packages and fake
 * commands in a temp folder: PATH holds only that folder, so nothing is installed or started on
 * the machine except the private redis-server of the last test.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { prepareMachine } from './global-setup.js';
import { PG_URL } from './helpers/db.js';
import { freePort } from './helpers/process.js';
import { pingRedis, REDIS_URL } from './helpers/redis.js';

let dir: string;
let bin: string;
let pgConfigDir: string;
const logFile = () => join(dir, 'commands.log');
/** The commands that ran, one line each with their arguments. */
const ran = () => (existsSync(logFile()) ? readFileSync(logFile(), 'utf8').trim().split('\n') : []);

/** A command on the fake PATH that logs how it was called, then runs `body` (sh). */
function fake(name: string, body = 'exit 0') {
  writeFileSync(join(bin, name), `#!/bin/sh\necho "${name} $*" >> "${logFile()}"\n${body}\n`, { mode: 0o755 });
}

/** An environment whose packages are files under the temp folder, present when listed in `have`. */
function machine(have: string[], services: { pg?: string; redis?: string } = {}): NodeJS.ProcessEnv {
  for (const name of have) writeFileSync(join(dir, name), '');
  return {
    PATH: bin,
    USHER_TEST_NGINX: join(dir, 'nginx'),
    USHER_TEST_CHROMIUM: join(dir, 'chromium'),
    USHER_TEST_CADDY: join(dir, 'caddy'),
    USHER_TEST_PG_URL: services.pg ?? PG_URL,
    USHER_TEST_REDIS_URL: services.redis ?? REDIS_URL,
  };
}

/** Ports where nothing listens: a stopped PostgreSQL and Redis. */
async function stopped() {
  const [pg, redis] = [await freePort(), await freePort()];
  return { pgPort: pg, redisPort: redis, pg: `postgres://postgres@127.0.0.1:${pg}/test`, redis: `redis://127.0.0.1:${redis}` };
}

const quiet = () => {};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'usher-setup-'));
  bin = join(dir, 'bin');
  pgConfigDir = join(dir, 'etc-postgresql');
  mkdirSync(bin);
  mkdirSync(join(pgConfigDir, '15', 'main'), { recursive: true });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('test setup', () => {
  it('runs nothing when every package is there and both services answer', async () => {
    for (const name of ['apt-get', 'pg_ctlcluster', 'redis-server']) fake(name);
    const lines = await prepareMachine({ env: machine(['nginx', 'chromium', 'caddy']), root: true, pgConfigDir, log: quiet });
    expect(lines).toEqual([]);
    expect(ran()).toEqual([]);
  });

  it('not root: names each missing thing with the command that fixes it, and runs nothing', async () => {
    for (const name of ['apt-get', 'pg_ctlcluster', 'redis-server']) fake(name);
    const s = await stopped();
    const lines = await prepareMachine({ env: machine(['chromium'], s), root: false, pgConfigDir, log: quiet });
    expect(lines).toEqual([
      `test setup: nginx is missing (${dir}/nginx); install it as root: apt-get install -y nginx`,
      `test setup: caddy is missing (${dir}/caddy); install it as root: apt-get install -y caddy`,
      `test setup: PostgreSQL at 127.0.0.1:${s.pgPort} does not answer; start it as root: pg_ctlcluster --skip-systemctl-redirect 15 main start`,
      `test setup: Redis at 127.0.0.1:${s.redisPort} does not answer; start it as root: redis-server --daemonize yes --bind 127.0.0.1 --port ${s.redisPort} --save "" --appendonly no`,
    ]);
    expect(ran()).toEqual([]);
  });

  it('not installed services are named with the package that brings them', async () => {
    const s = await stopped();
    const lines = await prepareMachine({ env: machine(['nginx', 'chromium', 'caddy'], s), root: true, pgConfigDir, log: quiet });
    expect(lines).toEqual([
      `test setup: PostgreSQL at 127.0.0.1:${s.pgPort} does not answer and is not installed (no pg_ctlcluster); install it: apt-get install -y postgresql (trust auth on 127.0.0.1, database test)`,
      `test setup: Redis at 127.0.0.1:${s.redisPort} does not answer and is not installed (no redis-server); install it: apt-get install -y redis-server`,
    ]);
  });

  it('root: installs only the missing packages with apt-get, non-interactively, then goes on', async () => {
    fake(
      'apt-get',
      `echo "DEBIAN_FRONTEND=$DEBIAN_FRONTEND" >> "${logFile()}"
for a in "$@"; do case $a in nginx|chromium|caddy) : > "${dir}/$a";; esac; done`,
    );
    const lines = await prepareMachine({ env: machine(['nginx']), root: true, pgConfigDir, log: quiet });
    expect(lines).toEqual([]);
    expect(ran()).toEqual([
      'apt-get -o DPkg::Lock::Timeout=600 update -qq',
      'DEBIAN_FRONTEND=noninteractive',
      'apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium caddy',
      'DEBIAN_FRONTEND=noninteractive',
    ]);
  });

  it('root: when apt-get fails, one line per package still missing', async () => {
    fake('apt-get', 'exit 100');
    const lines = await prepareMachine({ env: machine(['caddy']), root: true, pgConfigDir, log: quiet });
    expect(lines).toEqual([
      `test setup: nginx is missing (${dir}/nginx) after apt-get install (exit code 100); install it: apt-get install -y nginx`,
      `test setup: chromium is missing (${dir}/chromium) after apt-get install (exit code 100); install it: apt-get install -y chromium`,
    ]);
    expect(ran()).toEqual(['apt-get -o DPkg::Lock::Timeout=600 update -qq', 'apt-get -o DPkg::Lock::Timeout=600 install -y -qq nginx chromium']);
  });

  it('root: starts a stopped PostgreSQL cluster and says so when it does not come up', async () => {
    fake('pg_ctlcluster', 'exit 1');
    const s = await stopped();
    const lines = await prepareMachine({ env: machine(['nginx', 'chromium', 'caddy'], { pg: s.pg }), root: true, pgConfigDir, log: quiet });
    expect(ran()).toEqual(['pg_ctlcluster --skip-systemctl-redirect 15 main start']);
    expect(lines).toEqual([`test setup: PostgreSQL at 127.0.0.1:${s.pgPort} does not answer after pg_ctlcluster exited with 1; start it: pg_ctlcluster --skip-systemctl-redirect 15 main start`]);
  });

  it('names a missing database with the command that creates it', async () => {
    const url = new URL(PG_URL);
    url.pathname = '/usher_no_such_db';
    const lines = await prepareMachine({ env: machine(['nginx', 'chromium', 'caddy'], { pg: url.href }), root: true, pgConfigDir, log: quiet });
    expect(lines).toEqual([
      `test setup: PostgreSQL at ${url.hostname}:${url.port}: database "usher_no_such_db" does not exist; create it: createdb -h ${url.hostname} -p ${url.port} -U ${url.username} usher_no_such_db`,
    ]);
  });

  it('root: starts a stopped Redis and returns once it answers', async () => {
    // The real redis-server, with its pid file here rather than the default /var/run/redis.pid.
    const real = (process.env.PATH ?? '').split(':').map((d) => join(d, 'redis-server')).find((p) => existsSync(p));
    expect(real, 'redis-server on PATH').toBeDefined();
    symlinkSync(real!, join(dir, 'real-redis-server'));
    fake('redis-server', `exec "${dir}/real-redis-server" "$@" --pidfile "${dir}/redis.pid"`);
    const s = await stopped();
    await expect(pingRedis(s.redis)).rejects.toThrow();
    try {
      const lines = await prepareMachine({ env: machine(['nginx', 'chromium', 'caddy'], { redis: s.redis }), root: true, pgConfigDir, log: quiet });
      expect(lines).toEqual([]);
      expect(ran()).toEqual([`redis-server --daemonize yes --bind 127.0.0.1 --port ${s.redisPort} --save  --appendonly no`]);
      await pingRedis(s.redis);
    } finally {
      const pid = existsSync(join(dir, 'redis.pid')) ? Number(readFileSync(join(dir, 'redis.pid'), 'utf8')) : 0;
      if (pid > 0) process.kill(pid, 'SIGKILL');
    }
  });
});
