import { hash, Algorithm } from '@node-rs/argon2';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeGet } from '../src/sessions/backend.js';
import { startBehindLoopbackProxy, type TestServer } from './helpers/app.js';
import type { DbKind } from './helpers/db.js';
import { client, errorCode, sidOf, type Client, type Jar } from './helpers/http.js';
import { auditEntries } from './helpers/audit.js';
import { REDIS_URL, deletePrefix, freshPrefix } from './helpers/redis.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';

const BACKENDS: { name: string; db: DbKind; redis: boolean }[] = [
  { name: 'the SQL store on SQLite', db: 'sqlite', redis: false },
  { name: 'the SQL store on PostgreSQL', db: 'postgres', redis: false },
  { name: 'the Redis store', db: 'sqlite', redis: true },
];

describe.each(BACKENDS)('sessions with $name', ({ db, redis }) => {
  let server: TestServer;
  let c: Client;
  let adminKey: string;
  let n = 0;

  /** A new user with a password, and a cookie client signed in as them. */
  async function signedIn(extra: Record<string, unknown> = {}) {
    const username = `s${++n}`;
    const made = await createUser(server, c, adminKey, { username, password: 'session-password', ...extra });
    const jar: Jar = {};
    const browser = client(server.url, jar);
    const res = await browser.post(`${AUTH}/login`, { body: { username, password: 'session-password' } });
    expect(res.status, res.text).toBe(200);
    return { ...made, username, jar, browser };
  }

  const prefix = freshPrefix();
  beforeAll(async () => {
    server = await startBehindLoopbackProxy(db, redis ? prefix : undefined);
    c = client(server.url);
    adminKey = await setupAdmin(c);
  });
  afterAll(async () => {
    await server?.close();
    if (redis) await deletePrefix(prefix);
  });

  describe('login and logout', () => {
    it('signs in with a rotating, HttpOnly, SameSite=Lax cookie and records lastLoginAt', async () => {
      const { user, jar, browser } = await signedIn();
      expect(jar.cookie).toMatch(/^usher\.sid=s%3A/);
      const me = await browser.get(`${AUTH}/me`);
      expect(me.status).toBe(200);
      expect(me.body.id).toBe(user.id);
      expect(me.body.lastLoginAt).not.toBeNull();
      const raw = await fetch(`${server.url}${AUTH}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: user.username, password: 'session-password' }),
      });
      const setCookie = raw.headers.getSetCookie().join('\n');
      expect(setCookie).toMatch(/HttpOnly/);
      expect(setCookie).toMatch(/SameSite=Lax/);
      expect(setCookie).not.toMatch(/Domain=/i);
      expect(setCookie).not.toMatch(/Secure/);
      expect((await raw.json()).user.username).toBe(user.username);
    });

    it('marks the cookie Secure when a trusted proxy says the request came over HTTPS', async () => {
      const { username } = await signedIn();
      const res = await fetch(`${server.url}${AUTH}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https', 'x-forwarded-host': new URL(server.url).host },
        body: JSON.stringify({ username, password: 'session-password' }),
      });
      expect(res.status).toBe(200);
      expect(res.headers.getSetCookie().join('\n')).toMatch(/; Secure/);
    });

    it('changes the session id at login (no fixation)', async () => {
      const { username, jar, browser } = await signedIn();
      const before = jar.cookie;
      const again = await browser.post(`${AUTH}/login`, { body: { username, password: 'session-password' } });
      expect(again.status).toBe(200);
      expect(sidOf(jar.cookie)).not.toBe(sidOf(before));
      const stale = await client(server.url, { cookie: before }).get(`${AUTH}/me`);
      expect(stale.status).toBe(401);
    });

    it('writes a new session to the store once, and drops nothing when the browser brought none', async () => {
      const { username } = await signedIn();
      const store = server.usher.sessions.backend.store;
      const calls: string[] = [];
      const { set, destroy } = store;
      store.set = function (...args: Parameters<typeof set>) {
        calls.push('set');
        return set.apply(this, args);
      };
      store.destroy = function (...args: Parameters<typeof destroy>) {
        calls.push('destroy');
        return destroy.apply(this, args);
      };
      try {
        const jar: Jar = {};
        expect((await client(server.url, jar).post(`${AUTH}/login`, { body: { username, password: 'session-password' } })).status).toBe(200);
        expect(calls).toEqual(['set']);
        expect(await storeGet(store, sidOf(jar.cookie))).toMatchObject({ userId: expect.any(Number) });
        expect(await storeGet(store, sidOf(jar.cookie))).not.toHaveProperty('fresh');
      } finally {
        delete (store as Partial<typeof store>).set;
        delete (store as Partial<typeof store>).destroy;
      }
      expect(store.set).toBe(set);
    });

    it('never signs in under an id the browser brought, even a correctly signed one of an ended session', async () => {
      const { username, jar, browser } = await signedIn();
      const ended = jar.cookie!;
      expect((await browser.post(`${AUTH}/logout`)).status).toBe(204);
      const replayJar: Jar = { cookie: ended };
      const again = await client(server.url, replayJar).post(`${AUTH}/login`, { body: { username, password: 'session-password' } });
      expect(again.status).toBe(200);
      expect(sidOf(replayJar.cookie)).not.toBe(sidOf(ended));
      expect((await client(server.url, { cookie: ended }).get(`${AUTH}/me`)).status).toBe(401);
      expect((await client(server.url, replayJar).get(`${AUTH}/me`)).status).toBe(200);
    });

    it('writes a session back at most once a minute, then sliding its idle expiry and the cookie\'s', async () => {
      const { jar, browser } = await signedIn();
      const store = server.usher.sessions.backend.store;
      const sid = sidOf(jar.cookie);
      const atLogin = (await storeGet(store, sid))!;
      const quiet = await browser.get(`${AUTH}/me`);
      expect(quiet.status).toBe(200);
      expect(quiet.headers.getSetCookie()).toEqual([]);
      expect((await storeGet(store, sid))!.lastSeenAt).toBe(atLogin.lastSeenAt);

      const earlier = Date.now() - 120_000;
      await new Promise<void>((resolve, reject) => store.set(sid, { ...atLogin, lastSeenAt: earlier }, (err) => (err ? reject(err) : resolve())));
      const due = await browser.get(`${AUTH}/me`);
      expect(due.status).toBe(200);
      const [line] = due.headers.getSetCookie();
      expect(line).toMatch(/^usher\.sid=s%3A.*; Expires=.*HttpOnly/);
      const expires = Date.parse(/Expires=([^;]+)/.exec(line!)![1]!);
      expect(expires).toBeGreaterThan(Date.now() + 29 * 86_400_000);
      expect(sidOf(jar.cookie)).toBe(sid);
      const after = (await storeGet(store, sid))!;
      expect(after.lastSeenAt).toBeGreaterThan(earlier + 60_000);
      expect(after.userId).toBe(atLogin.userId);
    });

    it('believes only a cookie signed by this server, the first one of the name, as express-session does', async () => {
      const { jar } = await signedIn();
      const sid = sidOf(jar.cookie);
      const forged = `usher.sid=${encodeURIComponent(`s:${sid}.${'A'.repeat(43)}`)}`;
      const unsigned = `usher.sid=${sid}`;
      for (const cookie of [forged, unsigned, `${forged}; ${jar.cookie}`, `usher.sid=; ${jar.cookie}`]) {
        const res = await client(server.url, { cookie }).get(`${AUTH}/me`);
        expect(res.status, cookie).toBe(401);
      }
      expect((await client(server.url, { cookie: `theme=dark; ${jar.cookie}; ${forged}` }).get(`${AUTH}/me`)).status).toBe(200);
    });

    it('answers every kind of bad login with the same 401, after hashing work', async () => {
      await createUser(server, c, adminKey, { username: 'passwordless' });
      const { user: off } = await createUser(server, c, adminKey, { username: 'switched-off', password: 'switched-off-pw' });
      await c.post(`${AUTH}/users/${off.id}/status`, { key: adminKey, body: { active: false } });
      const { username } = await signedIn();
      for (const body of [
        { username: 'nobody-at-all', password: 'whatever-password' },
        { username, password: 'wrong-password' },
        { username: 'passwordless', password: 'whatever-password' },
        { username: 'switched-off', password: 'switched-off-pw' },
      ]) {
        const started = performance.now();
        const res = await client(server.url).post(`${AUTH}/login`, { body });
        const took = performance.now() - started;
        expect(res.status).toBe(401);
        expect(res.body).toEqual({ error: { code: 'auth.invalid_credentials', message: 'The username or password is wrong.' } });
        // argon2id at 19 MiB takes milliseconds: an unknown user is checked against a dummy hash too.
        expect(took).toBeGreaterThan(3);
      }
    });

    it.each([
      [{ username: 'x' }, 400],
      [{ username: { a: 1 }, password: 'x' }, 400],
      [{ username: 'x', password: 'y', extra: 1 }, 400],
    ])('answers a malformed login %o with %i', async (body, status) => {
      expect((await c.post(`${AUTH}/login`, { body })).status).toBe(status);
    });

    it('logs out with 204, deletes the session, and refuses GET', async () => {
      const { jar, browser } = await signedIn();
      const cookie = jar.cookie;
      const sid = sidOf(cookie);
      expect((await browser.get(`${AUTH}/logout`)).status).toBe(405);
      const out = await browser.post(`${AUTH}/logout`);
      expect(out.status).toBe(204);
      expect(jar.cookie).toBeUndefined();
      expect(await storeGet(server.usher.sessions.backend.store, sid)).toBeNull();
      expect((await client(server.url, { cookie }).get(`${AUTH}/me`)).status).toBe(401);
    });

    it('rehashes a password hash made with weaker parameters at the next login', async () => {
      const { user } = await createUser(server, c, adminKey, { username: 'oldhash', password: 'old-hash-password' });
      const weak = await hash('old-hash-password', { algorithm: Algorithm.Argon2id, memoryCost: 4096, timeCost: 1, parallelism: 1 });
      await server.usher.db('users').where({ id: user.id }).update({ password_hash: weak });
      const res = await client(server.url, {}).post(`${AUTH}/login`, { body: { username: 'oldhash', password: 'old-hash-password' } });
      expect(res.status).toBe(200);
      const row = await server.usher.db('users').where({ id: user.id }).first();
      expect(row.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    });
  });

  describe('the same rules as API keys', () => {
    it('serves every core route with a session exactly as with a key', async () => {
      const { user, browser } = await signedIn();
      expect((await browser.get(`${AUTH}/users/${user.id}`)).status).toBe(200);
      expect((await browser.get(`${AUTH}/users`)).status).toBe(403);
      expect((await browser.put(`${AUTH}/me`, { body: { name: 'Cookie Person' } })).body.name).toBe('Cookie Person');
      expect((await browser.put(`${AUTH}/me`, { body: { role: 'admin' } })).status).toBe(403);
      const key = await browser.get(`${AUTH}/me/api-key`);
      expect(key.body.apiKey).toMatch(/^usk_/);
    });

    it('refuses an API key and a session cookie of two different users with 400', async () => {
      const a = await signedIn();
      const b = await signedIn();
      const mixed = await a.browser.get(`${AUTH}/me`, { key: b.key });
      expect(mixed.status).toBe(400);
      expect(errorCode(mixed)).toBe('auth.conflicting_credentials');
      expect((await a.browser.get(`${AUTH}/me`, { key: a.key })).status).toBe(200);
    });
  });

  describe('ending sessions', () => {
    it.each([
      ['disabled', (id: number) => c.post(`${AUTH}/users/${id}/status`, { key: adminKey, body: { active: false } })],
      ['deleted', (id: number) => c.del(`${AUTH}/users/${id}`, { key: adminKey })],
      ['given a new password by an admin', (id: number) => c.post(`${AUTH}/users/${id}/reset-password`, { key: adminKey, body: { password: 'admin-chose-this' } })],
      ['ended by an admin', (id: number) => c.del(`${AUTH}/users/${id}/sessions`, { key: adminKey })],
    ])('ends all of a user\'s sessions when the user is %s', async (_what, act) => {
      const first = await signedIn();
      const secondJar: Jar = {};
      const second = client(server.url, secondJar);
      await second.post(`${AUTH}/login`, { body: { username: first.username, password: 'session-password' } });
      const sids = [sidOf(first.jar.cookie), sidOf(secondJar.cookie)];
      expect(new Set(sids).size).toBe(2);
      for (const sid of sids) expect(await storeGet(server.usher.sessions.backend.store, sid)).not.toBeNull();
      expect((await act(first.user.id)).status).toBeLessThan(300);
      expect((await first.browser.get(`${AUTH}/me`)).status).toBe(401);
      expect((await second.get(`${AUTH}/me`)).status).toBe(401);
      for (const sid of sids) expect(await storeGet(server.usher.sessions.backend.store, sid)).toBeNull();
    });

    it('ends an admin\'s sessions when they are demoted', async () => {
      const admin = await signedIn({ role: 'admin' });
      expect((await admin.browser.get(`${AUTH}/users`)).status).toBe(200);
      expect((await c.put(`${AUTH}/users/${admin.user.id}`, { key: adminKey, body: { role: 'user' } })).status).toBe(200);
      expect((await admin.browser.get(`${AUTH}/me`)).status).toBe(401);
    });

    it('ends every session, the current one too, when an admin demotes themselves', async () => {
      const admin = await signedIn({ role: 'admin' });
      const res = await admin.browser.put(`${AUTH}/me`, { body: { role: 'user' } });
      expect(res.status).toBe(200);
      expect((await admin.browser.get(`${AUTH}/me`)).status).toBe(401);
    });

    it('never lets a request that was in flight bring an ended session back', async () => {
      const me = await signedIn();
      const store = server.usher.sessions.backend.store;
      const sid = sidOf(me.jar.cookie);
      const data = (await storeGet(store, sid))!;
      // Make the session due for its once-a-minute save, so the slow request below writes it back.
      await new Promise<void>((resolve, reject) => store.set(sid, { ...data, lastSeenAt: Date.now() - 120_000 }, (err) => (err ? reject(err) : resolve())));
      const slow = me.browser.put(`${AUTH}/me`, { body: { password: 'another-password', currentPassword: 'not-the-password' } });
      await new Promise((r) => setTimeout(r, 5));
      expect((await c.del(`${AUTH}/users/${me.user.id}/sessions`, { key: adminKey })).status).toBe(204);
      expect((await slow).status).toBe(403);
      expect((await me.browser.get(`${AUTH}/me`)).status).toBe(401);
      // At the store itself: an update of an ended session is dropped.
      await new Promise<void>((resolve, reject) => store.set(sid, data, (err) => (err ? reject(err) : resolve())));
      expect(await storeGet(store, sid)).toBeNull();
    });

    it('keeps a session ended here ended, even when a late write puts it back in the store', async () => {
      const me = await signedIn();
      const cookie = me.jar.cookie!;
      const sid = sidOf(cookie);
      const store = server.usher.sessions.backend.store;
      // What a read or write that began before the logout, and finished after it, would leave behind.
      let putBack: () => Promise<void>;
      if (redis) {
        const r = createClient({ url: REDIS_URL });
        await r.connect();
        const key = `${prefix}sess:${sid}`;
        const value = (await r.get(key))!;
        expect(value).toContain('userId');
        putBack = async () => {
          await r.set(key, value, { PX: 60_000 });
          r.destroy();
        };
      } else {
        const row = await server.usher.db('sessions').where({ sid }).first();
        expect(row).toBeDefined();
        putBack = async () => void (await server.usher.db('sessions').insert(row));
      }
      expect((await me.browser.post(`${AUTH}/logout`)).status).toBe(204);
      await putBack();
      expect((await client(server.url, { cookie }).get(`${AUTH}/me`)).status).toBe(401);
      expect(await storeGet(store, sid)).toBeNull();
    });

    it('keeps the session that changed its own password and ends the others', async () => {
      const me = await signedIn();
      const otherJar: Jar = {};
      const other = client(server.url, otherJar);
      await other.post(`${AUTH}/login`, { body: { username: me.username, password: 'session-password' } });
      const changed = await me.browser.put(`${AUTH}/me`, { body: { password: 'a-new-password', currentPassword: 'session-password' } });
      expect(changed.status).toBe(200);
      expect((await me.browser.get(`${AUTH}/me`)).status).toBe(200);
      expect((await other.get(`${AUTH}/me`)).status).toBe(401);
    });

    it('lists the caller\'s sessions and ends one by id', async () => {
      const me = await signedIn();
      const phoneJar: Jar = {};
      const phone = client(server.url, phoneJar);
      await phone.post(`${AUTH}/login`, { body: { username: me.username, password: 'session-password' }, headers: { 'user-agent': 'PhoneApp/1.0' } });
      const list = await me.browser.get(`${AUTH}/me/sessions`);
      expect(list.status).toBe(200);
      expect(list.body).toHaveLength(2);
      const current = list.body.find((s: { current: boolean }) => s.current);
      const phoneSession = list.body.find((s: { userAgent: string }) => s.userAgent === 'PhoneApp/1.0');
      expect(current).toMatchObject({ ip: '127.0.0.1' });
      expect(current.createdAt).toMatch(/Z$/);
      expect(current.lastSeenAt).toMatch(/Z$/);
      expect(JSON.stringify(list.body)).not.toContain(sidOf(me.jar.cookie));
      expect((await me.browser.del(`${AUTH}/me/sessions/${phoneSession.id}`)).status).toBe(204);
      expect((await phone.get(`${AUTH}/me`)).status).toBe(401);
      expect((await me.browser.get(`${AUTH}/me`)).status).toBe(200);
      expect((await me.browser.del(`${AUTH}/me/sessions/${phoneSession.id}`)).status).toBe(404);
      expect((await me.browser.del(`${AUTH}/me/sessions/not-a-session`)).status).toBe(404);
      const someoneElse = await signedIn();
      expect((await someoneElse.browser.del(`${AUTH}/me/sessions/${current.id}`)).status).toBe(404);
      expect((await me.browser.get(`${AUTH}/me`)).status).toBe(200);
    });

    it("lists a user's sessions for an admin, and ends one of them by id", async () => {
      const me = await signedIn();
      const phone = client(server.url, {});
      await phone.post(`${AUTH}/login`, { body: { username: me.username, password: 'session-password' }, headers: { 'user-agent': 'PhoneApp/2.0' } });
      const list = await c.get(`${AUTH}/users/${me.user.id}/sessions`, { key: adminKey });
      expect(list.status).toBe(200);
      expect(list.body).toHaveLength(2);
      // The admin's request is neither of them.
      expect(list.body.map((s: { current: boolean }) => s.current)).toEqual([false, false]);
      expect(list.body.map((s: { kind: string; method: string }) => [s.kind, s.method])).toEqual([['browser', 'password'], ['browser', 'password']]);
      expect(JSON.stringify(list.body)).not.toContain(sidOf(me.jar.cookie));
      const phoneSession = list.body.find((s: { userAgent: string }) => s.userAgent === 'PhoneApp/2.0');
      expect(phoneSession).toBeDefined();

      // A user may not list or end someone else's sessions.
      const other = await signedIn();
      expect((await other.browser.get(`${AUTH}/users/${me.user.id}/sessions`)).status).toBe(403);
      expect((await other.browser.del(`${AUTH}/users/${me.user.id}/sessions/${phoneSession.id}`)).status).toBe(403);
      // The id must be this user's: under another user it is not found.
      expect(errorCode(await c.del(`${AUTH}/users/${other.user.id}/sessions/${phoneSession.id}`, { key: adminKey }))).toBe('session.not_found');

      expect((await c.del(`${AUTH}/users/${me.user.id}/sessions/${phoneSession.id}`, { key: adminKey })).status).toBe(204);
      expect((await phone.get(`${AUTH}/me`)).status).toBe(401);
      expect((await me.browser.get(`${AUTH}/me`)).status).toBe(200);
      const after = await c.get(`${AUTH}/users/${me.user.id}/sessions`, { key: adminKey });
      expect(after.body).toHaveLength(1);
      expect(after.body[0].id).not.toBe(phoneSession.id);
      expect(errorCode(await c.del(`${AUTH}/users/${me.user.id}/sessions/${phoneSession.id}`, { key: adminKey }))).toBe('session.not_found');
      expect(errorCode(await c.del(`${AUTH}/users/${me.user.id}/sessions/not-a-session`, { key: adminKey }))).toBe('session.not_found');
      expect(errorCode(await c.get(`${AUTH}/users/999999/sessions`, { key: adminKey }))).toBe('user.not_found');
      const ended = await auditEntries(server, c, adminKey, 'session.ended', me.user.id);
      expect(ended[0].detail).toMatchObject({ reason: 'ended_by_admin' });
      expect(ended[0].actor.kind).toBe('user');
    });

    it('enforces the idle timeout and the absolute lifetime on the server', async () => {
      const store = server.usher.sessions.backend.store;
      const day = 86_400_000;
      for (const stale of [{ lastSeenAt: Date.now() - 31 * day }, { createdAt: Date.now() - 91 * day, lastSeenAt: Date.now() }]) {
        const me = await signedIn();
        const sid = sidOf(me.jar.cookie);
        const data = (await storeGet(store, sid))!;
        await new Promise<void>((resolve, reject) => store.set(sid, { ...data, ...stale }, (err) => (err ? reject(err) : resolve())));
        expect((await me.browser.get(`${AUTH}/me`)).status).toBe(401);
        expect(await storeGet(store, sid)).toBeNull();
      }
    });
  });

  describe('CSRF', () => {
    it('refuses a cookie request that changes state unless it is JSON and same-origin', async () => {
      const { browser } = await signedIn();
      const form = await browser.put(`${AUTH}/me`, { raw: 'name=x', contentType: 'application/x-www-form-urlencoded' });
      expect(form.status).toBe(415);
      const bare = await browser.post(`${AUTH}/me/api-key`, { bare: true });
      expect(bare.status).toBe(415);
      const evil = await browser.put(`${AUTH}/me`, { body: { name: 'x' }, headers: { origin: 'https://evil.example' } });
      expect(evil.status).toBe(403);
      expect(errorCode(evil)).toBe('auth.csrf');
      const own = await browser.put(`${AUTH}/me`, { body: { name: 'ok' }, headers: { origin: server.url } });
      expect(own.status).toBe(200);
      expect(own.headers.get('access-control-allow-origin')).toBeNull();
      const loginFromElsewhere = await client(server.url, {}).post(`${AUTH}/login`, {
        body: { username: 'admin', password: 'admin-password' },
        headers: { origin: 'https://evil.example' },
      });
      expect(loginFromElsewhere.status).toBe(403);
    });

    it('does not apply to API-key requests', async () => {
      const res = await c.post(`${AUTH}/me/api-key`, { key: adminKey, headers: { origin: 'https://elsewhere.example' } });
      expect(res.status).toBe(200);
      adminKey = res.body.apiKey;
    });
  });
});
