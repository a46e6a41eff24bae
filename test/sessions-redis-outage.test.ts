import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import type { Socket } from 'node:net';
import { pino } from 'pino';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { client, errorCode, sidOf, type Client, type Jar, type Reply } from './helpers/http.js';
import { IdpJar, signInAtIdp, startIdp, type TestIdp } from './helpers/oidc-provider.js';
import { freePort } from './helpers/process.js';
import { PrivateRedis, freshPrefix } from './helpers/redis.js';
import { RedisTap } from './helpers/redis-tap.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';
const SECRET = 'client-secret-for-tests-0123456789';

/** The one answer a lost session store gets: 503 session.store_unavailable, as JSON, with no stack in it. */
function expectStoreUnavailable(res: Reply, what: string) {
  expect(res.status, `${what}: ${res.text}`).toBe(503);
  expect(res.headers.get('content-type'), what).toMatch(/^application\/json/);
  expect(errorCode(res), what).toBe('session.store_unavailable');
  expect(res.text, what).not.toMatch(/\bat .*\.(ts|js):\d+/);
}

/** A GET over a given agent, answering the status and the connection it used. */
function get(agent: http.Agent, url: string, headers: Record<string, string>): Promise<{ status: number; socket: Socket }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent, headers }, (res) => {
        // Taken now: once the answer has been read, the agent takes the connection back.
        const socket = res.socket;
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, socket }));
      })
      .on('error', reject);
  });
}

/** Retries `check` until it holds: Usher reconnects to Redis in the background, with a backoff of its own. */
async function eventually(check: () => Promise<boolean>, what: string) {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.each(['sqlite', 'postgres'] as const)('Redis lost on %s: every route answers 503 session.store_unavailable', (kind) => {
  let redis: PrivateRedis;
  let tap: RedisTap;
  let idp: TestIdp;
  let server: TestServer;
  let usherUrl: string;
  let c: Client;
  let adminKey: string;
  const prefix = freshPrefix();
  /** The server's log lines (warnings and up), as events. */
  const logLines = new EventEmitter();
  const logged = (msg: string) =>
    new Promise<void>((resolve) => {
      const on = (line: { msg?: string }) => {
        if (line.msg !== msg) return;
        logLines.off('line', on);
        resolve();
      };
      logLines.on('line', on);
    });

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    // Usher talks to Redis through the tap, which can catch a command on its way (see the in-flight cases).
    tap = await RedisTap.start(redis.port);
    const port = await freePort();
    usherUrl = `http://127.0.0.1:${port}`;
    idp = await startIdp({
      clients: [
        {
          client_id: 'usher-main',
          client_secret: SECRET,
          token_endpoint_auth_method: 'client_secret_basic',
          redirect_uris: [`${usherUrl}${AUTH}/oidc/main/callback`],
          backchannel_logout_uri: `${usherUrl}${AUTH}/oidc/main/backchannel-logout`,
          backchannel_logout_session_required: true,
        },
      ],
    });
    server = await startServer(kind, {
      port,
      hooks: { logger: pino({ level: 'warn' }, { write: (line: string) => void logLines.emit('line', JSON.parse(line)) }) },
      settings: {
        server: { publicUrl: usherUrl },
        redis: { url: tap.url, keyPrefix: prefix },
        oidc: { startsPerMinute: 10_000, providers: [{ id: 'main', name: 'Main', issuer: idp.issuer, client_id: 'usher-main', client_secret: SECRET }] },
      },
    });
    c = client(usherUrl);
    adminKey = await setupAdmin(c);
  });
  afterAll(async () => {
    await server?.close();
    await tap?.close();
    await redis?.stop();
    await idp?.close();
  });

  let n = 0;
  /** A fresh user with a password and a key, signed in with a session cookie. */
  async function signedIn(role = 'user') {
    const username = `u${++n}`;
    const { user, key } = await createUser(server, c, adminKey, { username, password: 'a-long-password', role });
    const jar: Jar = {};
    const login = await client(usherUrl, jar).post(`${AUTH}/login`, { body: { username, password: 'a-long-password' } });
    expect(login.status, login.text).toBe(200);
    const sessions = await client(usherUrl, jar).get(`${AUTH}/me/sessions`);
    expect(sessions.status).toBe(200);
    return { id: user.id as number, username, key, jar, browser: client(usherUrl, jar), sessionId: sessions.body[0].id as string };
  }

  /** An OIDC login at the point where the browser comes back to Usher's callback. */
  async function oidcCallbackPending() {
    const jar: Jar = {};
    const start = await client(usherUrl, jar).get(`${AUTH}/oidc/main/login`);
    expect(start.status, start.text).toBe(302);
    const callback = await signInAtIdp(start.headers.get('location')!, 'alice', 'password', new IdpJar());
    return () => client(usherUrl, jar).get(callback.slice(usherUrl.length));
  }

  async function backchannelLogout(sub: string, token?: string) {
    token ??= await idp.logoutToken('usher-main', { sub });
    const res = await fetch(`${usherUrl}${AUTH}/oidc/main/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: token }),
    });
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: res.status, headers: res.headers, body, text } as Reply;
  }

  let redisDown = false;
  async function stopRedis() {
    await redis.stop();
    redisDown = true;
  }
  /** Redis back (when it was stopped), and Usher reconnected to it (sessions listed again). */
  async function redisBack() {
    if (redisDown) await redis.start();
    redisDown = false;
    await eventually(async () => (await c.get(`${AUTH}/me/sessions`, { key: adminKey })).status === 200, 'Usher reconnects to Redis');
  }

  describe('while a request waits on Redis, Redis dies', () => {
    // Each case: what to set up while Redis is up, the command to catch, and the request that sends it.
    const cases: [string, string, () => Promise<() => Promise<Reply>>][] = [
      [
        'GET /me reading its session',
        '\r\nGET\r\n',
        async () => {
          const u = await signedIn();
          return () => u.browser.get(`${AUTH}/me`);
        },
      ],
      [
        'POST /login counting the attempt',
        '\r\nEVAL\r\n',
        async () => {
          const u = await signedIn();
          return () => client(usherUrl, {}).post(`${AUTH}/login`, { body: { username: u.username, password: 'a-long-password' } });
        },
      ],
      [
        'POST /login saving the new session',
        '\r\nSET\r\n',
        async () => {
          const u = await signedIn();
          return () => client(usherUrl, {}).post(`${AUTH}/login`, { body: { username: u.username, password: 'a-long-password' } });
        },
      ],
      [
        'GET /me/sessions listing the index',
        '\r\nSMEMBERS\r\n',
        async () => {
          const u = await signedIn();
          return () => c.get(`${AUTH}/me/sessions`, { key: u.key });
        },
      ],
      [
        'DELETE /me/sessions/{id} finding the session',
        '\r\nSMEMBERS\r\n',
        async () => {
          const u = await signedIn();
          return () => c.del(`${AUTH}/me/sessions/${u.sessionId}`, { key: u.key });
        },
      ],
      [
        'DELETE /users/{id}/sessions ending them',
        '\r\nDEL\r\n',
        async () => {
          const u = await signedIn();
          return () => c.del(`${AUTH}/users/${u.id}/sessions`, { key: adminKey });
        },
      ],
      [
        'POST /users/{id}/status disabling a user',
        '\r\nSMEMBERS\r\n',
        async () => {
          const u = await signedIn();
          return () => c.post(`${AUTH}/users/${u.id}/status`, { key: adminKey, body: { active: false } });
        },
      ],
      [
        'PUT /me changing the password from a session, saving that session at the new epoch',
        '\r\nSET\r\n',
        async () => {
          const u = await signedIn();
          expect((await client(usherUrl, {}).post(`${AUTH}/login`, { body: { username: u.username, password: 'a-long-password' } })).status).toBe(200);
          return () => u.browser.put(`${AUTH}/me`, { body: { password: 'another-long-password', currentPassword: 'a-long-password' } });
        },
      ],
      [
        'POST /oidc/{id}/backchannel-logout',
        'session-tag:',
        async () => {
          await (await oidcCallbackPending())();
          return () => backchannelLogout('alice');
        },
      ],
    ];

    // Closed: the client sees the socket end (SocketClosedUnexpectedlyError). Reset: ECONNRESET.
    const table = cases.flatMap(([what, command, setup]) => (['closed', 'reset'] as const).map((how) => [what, how, command, setup] as const));
    it.each(table)('%s (connection %s)', async (what, how, command, setup) => {
      const send = await setup();
      const held = tap.hold(command, { reset: how === 'reset' });
      const answer = send();
      await held;
      await stopRedis();
      try {
        expectStoreUnavailable(await answer, what);
      } finally {
        await redisBack();
      }
    });

    it('keeps the answer and the connection of a request whose only failed write came after its answer', async () => {
      const u = await signedIn();
      // Seen two minutes ago: this request loads the session into express-session, which saves lastSeenAt
      // at its end, after the answer has been written.
      const direct = createClient({ url: redis.url });
      await direct.connect();
      try {
        const key = `${prefix}sess:${sidOf(u.jar.cookie)}`;
        const data = JSON.parse((await direct.get(key))!);
        await direct.set(key, JSON.stringify({ ...data, lastSeenAt: Date.now() - 120_000 }), { KEEPTTL: true });
      } finally {
        direct.destroy();
      }
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const held = tap.hold('\r\nSET\r\n');
        const handled = logged('failed after the response was sent');
        const first = get(agent, `${usherUrl}${AUTH}/me`, { cookie: u.jar.cookie! });
        await held;
        await stopRedis();
        const { status, socket } = await first;
        expect(status).toBe(200);
        // The server is done with the late failure when it has logged it, unless it cut the connection instead.
        await Promise.race([handled, once(socket, 'close').then(() => expect.fail('the connection was cut after the answer'))]);
        // The same keep-alive connection serves the next request.
        const second = await get(agent, `${usherUrl}${AUTH}/me`, { 'x-api-key': u.key });
        expect(second.status).toBe(200);
        expect(second.socket).toBe(socket);
      } finally {
        agent.destroy();
        await redisBack();
      }
    });
  });

  describe('with Redis already down', () => {
    let bob: Awaited<ReturnType<typeof signedIn>>;
    let targets: Record<'ended' | 'disabled' | 'deleted' | 'demoted' | 'reset', Awaited<ReturnType<typeof signedIn>>>;
    let callback: () => Promise<Reply>;
    let logoutToken: string;

    beforeAll(async () => {
      bob = await signedIn();
      targets = {
        ended: await signedIn(),
        disabled: await signedIn(),
        deleted: await signedIn(),
        demoted: await signedIn('admin'),
        reset: await signedIn(),
      };
      callback = await oidcCallbackPending();
      logoutToken = await idp.logoutToken('usher-main', { sub: 'alice' });
      await stopRedis();
    });

    const routes: [string, () => Promise<Reply>][] = [
      ['GET /me with a session cookie', () => bob.browser.get(`${AUTH}/me`)],
      ['GET /verify with a session cookie', () => bob.browser.get(`${AUTH}/verify`)],
      ['POST /login', () => client(usherUrl, {}).post(`${AUTH}/login`, { body: { username: bob.username, password: 'a-long-password' } })],
      ['POST /logout', () => bob.browser.post(`${AUTH}/logout`)],
      ['GET /me/sessions (API key)', () => c.get(`${AUTH}/me/sessions`, { key: bob.key })],
      ['DELETE /me/sessions/{id} (API key)', () => c.del(`${AUTH}/me/sessions/${bob.sessionId}`, { key: bob.key })],
      ['DELETE /users/{id}/sessions', () => c.del(`${AUTH}/users/${targets.ended.id}/sessions`, { key: adminKey })],
      ['POST /users/{id}/status (disable)', () => c.post(`${AUTH}/users/${targets.disabled.id}/status`, { key: adminKey, body: { active: false } })],
      ['DELETE /users/{id}', () => c.del(`${AUTH}/users/${targets.deleted.id}`, { key: adminKey })],
      ['PATCH /users/{id} (demote)', () => c.patch(`${AUTH}/users/${targets.demoted.id}`, { key: adminKey, body: { role: 'user' } })],
      ['POST /users/{id}/reset-password', () => c.post(`${AUTH}/users/${targets.reset.id}/reset-password`, { key: adminKey, body: { password: 'another-long-password' } })],
      ['PUT /me changing the password (API key)', () => c.put(`${AUTH}/me`, { key: bob.key, body: { password: 'another-long-password', currentPassword: 'a-long-password' } })],
      ['GET /oidc/{id}/login', () => client(usherUrl, {}).get(`${AUTH}/oidc/main/login`)],
      ['GET /oidc/{id}/callback', () => callback()],
      ['POST /oidc/{id}/backchannel-logout', () => backchannelLogout('alice', logoutToken)],
    ];

    it.each(routes)('%s', async (what, send) => {
      expectStoreUnavailable(await send(), what);
    });

    it('keeps API keys working for everything that needs no session', async () => {
      expect((await c.get(`${AUTH}/me`, { key: bob.key })).status).toBe(200);
      expect((await c.get(`${AUTH}/users`, { key: adminKey })).status).toBe(200);
    });

    it('has made a user change answered 503, and makes it again with success once Redis is back', async () => {
      // The change is made (its transaction committed, the session epoch moved on: those sessions are refused
      // wherever they are read); the 503 says they could not be removed from the store.
      expect((await c.get(`${AUTH}/users/${targets.disabled.id}`, { key: adminKey })).body.active).toBe(false);
      expect((await c.get(`${AUTH}/users/${targets.deleted.id}`, { key: adminKey })).status).toBe(404);
      expect((await c.get(`${AUTH}/users/${targets.demoted.id}`, { key: adminKey })).body.role).toBe('user');

      await redisBack();
      const again = await c.post(`${AUTH}/users/${targets.disabled.id}/status`, { key: adminKey, body: { active: false } });
      expect(again.status, again.text).toBe(200);
      expect((await c.del(`${AUTH}/users/${targets.ended.id}/sessions`, { key: adminKey })).status).toBe(204);
    });

    it('recovers once Redis is back, with no restart', async () => {
      await redisBack();
      const jar: Jar = {};
      const login = await client(usherUrl, jar).post(`${AUTH}/login`, { body: { username: bob.username, password: 'a-long-password' } });
      expect(login.status, login.text).toBe(200);
      const mine = await client(usherUrl, jar).get(`${AUTH}/me/sessions`);
      expect(mine.status).toBe(200);
      expect(mine.body).toHaveLength(1);
      expect((await client(usherUrl, jar).del(`${AUTH}/me/sessions/${mine.body[0].id}`)).status).toBe(204);
      expect((await client(usherUrl, jar).get(`${AUTH}/me`)).status).toBe(401);
      // The logout token refused with 503 was not spent: the provider may send it again.
      expect((await backchannelLogout('alice', logoutToken)).status).toBe(200);
      expect((await backchannelLogout('alice', logoutToken)).status).toBe(400);
      expect((await client(usherUrl, {}).get(`${AUTH}/oidc/main/login`)).status).toBe(302);
    });
  });
});
