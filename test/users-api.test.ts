import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyPassword } from '../src/crypto/passwords.js';
import { eventOf, SYSTEM_ORIGIN } from '../src/events/stream.js';
import { startServer, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client } from './helpers/http.js';
import { createUser, setupAdmin } from './helpers/users.js';

const USERS = '/api/v1/auth/users';
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe.each(DB_KINDS)('users API on %s', (kind) => {
  let server: TestServer;
  let c: Client;
  let adminKey: string;

  beforeAll(async () => {
    server = await startServer(kind);
    c = client(server.url);
    adminKey = await setupAdmin(c);
  });
  afterAll(async () => {
    await server?.close();
  });

  describe('creating users', () => {
    it("accepts the seed's example verbatim and never returns a secret", async () => {
      const res = await c.post(USERS, { key: adminKey, body: { username: 'alice', password: 'correct-horse-battery', role: 'user' } });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ id: 2, username: 'alice', role: 'user', active: true, hasPassword: true });
      expect(res.body.createdAt).toMatch(ISO);
      expect(res.body.updatedAt).toMatch(ISO);
      expect(res.body.lastActiveAt).toBeNull();
      expect(res.text).not.toMatch(/"password"|passwordHash|password_hash|apiKey|api_key|usk_/);
    });

    it('defaults the role to user and accepts name and email', async () => {
      const res = await c.post(USERS, { key: adminKey, body: { username: 'dora', password: 'dora-password', name: 'Dora', email: 'Dora@Example.com' } });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ role: 'user', name: 'Dora', email: 'Dora@Example.com' });
    });

    it('creates a password-less account, but never a password-less admin', async () => {
      const listener = await c.post(USERS, { key: adminKey, body: { username: 'listener' } });
      expect(listener.status).toBe(201);
      expect(listener.body.hasPassword).toBe(false);
      const admin = await c.post(USERS, { key: adminKey, body: { username: 'nopass-admin', role: 'admin' } });
      expect(admin.status).toBe(409);
      expect(errorCode(admin)).toBe('user.admin_needs_password');
    });

    it('normalises usernames (trim, NFKC) and keeps them unique regardless of case', async () => {
      const made = await c.post(USERS, { key: adminKey, body: { username: '  Ｃarol  ', password: 'carol-password' } });
      expect(made.status).toBe(201);
      expect(made.body.username).toBe('Carol');
      for (const username of ['carol', 'CAROL', ' Carol']) {
        const dup = await c.post(USERS, { key: adminKey, body: { username, password: 'carol-password' } });
        expect(dup.status).toBe(409);
        expect(errorCode(dup)).toBe('user.username_taken');
      }
    });

    it('lets exactly one of two concurrent creates of the same name (different case) win', async () => {
      const [a, b] = await Promise.all([
        c.post(USERS, { key: adminKey, body: { username: 'race', password: 'race-password' } }),
        c.post(USERS, { key: adminKey, body: { username: 'RACE', password: 'race-password' } }),
      ]);
      expect([a.status, b.status].sort()).toEqual([201, 409]);
      expect(errorCode(a.status === 409 ? a : b)).toBe('user.username_taken');
      const list = await c.get(`${USERS}?q=race`, { key: adminKey });
      expect(list.headers.get('x-total-count')).toBe('1');
    });

    it('keeps emails unique regardless of case', async () => {
      const dup = await c.post(USERS, { key: adminKey, body: { username: 'dora2', password: 'dora-password', email: 'dora@EXAMPLE.com' } });
      expect(dup.status).toBe(409);
      expect(errorCode(dup)).toBe('user.email_taken');
    });

    it.each([
      ['an empty username', { username: '', password: 'long-enough' }, 'username'],
      ['a blank username', { username: '   ', password: 'long-enough' }, 'username'],
      ['a 65-character username', { username: 'x'.repeat(65), password: 'long-enough' }, 'username'],
      ['a zero-width character', { username: 'ev\u200bil', password: 'long-enough' }, 'username'],
      ['a control character', { username: 'bell\u0007', password: 'long-enough' }, 'username'],
      ['a right-to-left override', { username: 'abc\u202edef', password: 'long-enough' }, 'username'],
      ['a username object', { username: { a: 1 }, password: 'long-enough' }, 'username'],
      ['a numeric username', { username: 42, password: 'long-enough' }, 'username'],
      ['a missing username', { password: 'long-enough' }, 'username'],
      ['a short password', { username: 'shorty', password: 'seven77' }, 'password'],
      ['an over-long password', { username: 'longy', password: 'p'.repeat(1025) }, 'password'],
      ['a password array', { username: 'arr', password: ['a', 'b'] }, 'password'],
      ['an invalid email', { username: 'mail', password: 'long-enough', email: 'not-an-email' }, 'email'],
      ['an unknown role', { username: 'rolly', password: 'long-enough', role: 'superuser' }, 'role'],
      ['an unknown field', { username: 'extra', password: 'long-enough', isAdmin: true }, 'isAdmin'],
    ])('answers 400 naming the field for %s', async (_name, body, field) => {
      const res = await c.post(USERS, { key: adminKey, body });
      expect(res.status).toBe(400);
      expect(errorCode(res)).toBe('request.invalid');
      expect(res.body.error.message.startsWith(`${field}:`)).toBe(true);
    });

    it('refuses a non-admin with 403 and an anonymous caller with 401', async () => {
      const { key } = await createUser(server, c, adminKey, { username: 'plain', password: 'plain-password' });
      const res = await c.post(USERS, { key, body: { username: 'sneaky', password: 'sneaky-password' } });
      expect(res.status).toBe(403);
      expect(errorCode(res)).toBe('auth.forbidden');
      const anon = await c.post(USERS, { body: { username: 'sneaky', password: 'sneaky-password' } });
      expect(anon.status).toBe(401);
      expect(errorCode(anon)).toBe('auth.unauthenticated');
    });
  });

  describe('malformed requests', () => {
    it.each([
      ['malformed JSON', { raw: '{"username": ' }, 400, 'request.malformed_json'],
      ['a JSON array', { raw: '[1,2]' }, 400, 'request.invalid'],
      ['a bare JSON string', { raw: '"alice"' }, 400, 'request.malformed_json'],
      ['a non-JSON content type', { raw: 'username=alice', contentType: 'application/x-www-form-urlencoded' }, 415, 'request.unsupported_media_type'],
      ['text/plain JSON', { raw: '{"username":"x"}', contentType: 'text/plain' }, 415, 'request.unsupported_media_type'],
      ['a body over 100 KB', { body: { username: 'big', password: 'big-password', name: 'n'.repeat(110_000) } }, 413, 'request.too_large'],
      ['no body at all', {}, 400, 'request.invalid'],
    ])('answers %s with the right 4xx and a JSON error', async (_name, opts, status, code) => {
      const res = await c.post(USERS, { key: adminKey, ...opts });
      expect(res.status).toBe(status);
      expect(errorCode(res)).toBe(code);
      expect(res.text).not.toMatch(/at .*\.(ts|js):\d+/);
    });

    it('answers an unknown path with a JSON 404 and a wrong method with a JSON 405', async () => {
      const missing = await c.get('/api/v1/auth/nope', { key: adminKey });
      expect(missing.status).toBe(404);
      expect(errorCode(missing)).toBe('not_found');
      const wrong = await c.get(`${USERS}/1/status`, { key: adminKey });
      expect(wrong.status).toBe(405);
      expect(errorCode(wrong)).toBe('request.method_not_allowed');
      expect(wrong.headers.get('allow')).toBe('POST');
      expect((await c.del(USERS, { key: adminKey })).headers.get('allow')).toBe('GET, POST, HEAD');
      const anonymous = await c.get('/api/v1/auth/nope');
      expect(anonymous.status).toBe(404);
    });

    it.each(['abc', '0', '-1', '1.5', '99999999999999999999'])('answers a malformed id %s with 400', async (id) => {
      const res = await c.get(`${USERS}/${id}`, { key: adminKey });
      expect(res.status).toBe(400);
      expect(errorCode(res)).toBe('request.invalid');
    });
  });

  describe('listing users', () => {
    let total: number;
    beforeAll(async () => {
      for (const [username, role, email] of [
        ['list-zed', 'user', 'zed@list.test'],
        ['list-amy', 'admin', 'amy@list.test'],
        ['list-bob', 'user', null],
        ['list_mo', 'user', null],
      ] as const) {
        await c.post(USERS, { key: adminKey, body: { username, role, email, password: 'list-password' } });
      }
      const bob = await c.get(`${USERS}?q=list-bob`, { key: adminKey });
      await c.post(`${USERS}/${bob.body[0].id}/status`, { key: adminKey, body: { active: false } });
      total = Number((await c.get(USERS, { key: adminKey })).headers.get('x-total-count'));
    });

    it('pages by offset and limit with X-Total-Count', async () => {
      const first = await c.get(`${USERS}?offset=0&limit=2`, { key: adminKey });
      expect(first.status).toBe(200);
      expect(first.body).toHaveLength(2);
      expect(Number(first.headers.get('x-total-count'))).toBe(total);
      const second = await c.get(`${USERS}?offset=2&limit=2`, { key: adminKey });
      expect(second.body[0].id).toBeGreaterThan(first.body[1].id);
      const all = await c.get(`${USERS}?limit=500`, { key: adminKey });
      expect(all.body).toHaveLength(total);
    });

    it("accepts Navidrome's _start/_end/_sort/_order", async () => {
      const res = await c.get(`${USERS}?_start=1&_end=3&_sort=userName&_order=DESC`, { key: adminKey });
      expect(res.status).toBe(200);
      expect(res.body).toHaveLength(2);
      const names = (await c.get(`${USERS}?sort=username&order=desc&limit=500`, { key: adminKey })).body.map((u: { username: string }) => u.username);
      expect(res.body.map((u: { username: string }) => u.username)).toEqual(names.slice(1, 3));
    });

    it('sorts by an allowed field in either order', async () => {
      const asc = await c.get(`${USERS}?sort=username&order=asc&q=list`, { key: adminKey });
      const names: string[] = asc.body.map((u: { username: string }) => u.username);
      expect(names).toEqual(expect.arrayContaining(['list_mo', 'list-amy', 'list-bob', 'list-zed']));
      expect(names).toEqual([...names].sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : 1)));
      const desc = await c.get(`${USERS}?sort=username&order=desc&q=list`, { key: adminKey });
      expect(desc.body.map((u: { id: number }) => u.id)).toEqual([...asc.body].reverse().map((u: { id: number }) => u.id));
    });

    it('filters by q (username, name or email, wildcards literal), role and active', async () => {
      const q = await c.get(`${USERS}?q=ZED@LIST`, { key: adminKey });
      expect(q.body.map((u: { username: string }) => u.username)).toEqual(['list-zed']);
      expect(q.headers.get('x-total-count')).toBe('1');
      const literal = await c.get(`${USERS}?q=list_`, { key: adminKey });
      expect(literal.body.map((u: { username: string }) => u.username)).toEqual(['list_mo']);
      const admins = await c.get(`${USERS}?role=admin&q=list`, { key: adminKey });
      expect(admins.body.map((u: { username: string }) => u.username)).toEqual(['list-amy']);
      const inactive = await c.get(`${USERS}?active=false`, { key: adminKey });
      expect(inactive.body.map((u: { username: string }) => u.username)).toEqual(['list-bob']);
      expect(inactive.headers.get('x-total-count')).toBe('1');
    });

    it.each([
      'sort=password_hash',
      'sort=id;drop',
      'order=sideways',
      'limit=0',
      'limit=1001',
      '_start=0&_end=1001',
      'limit=ten',
      'offset=-1',
      'offset=abc',
      'limit=1&limit=2',
      'sort=id&sort=username',
      'active=maybe',
      '_start=5&_end=2',
    ])('answers 400 for %s', async (query) => {
      const res = await c.get(`${USERS}?${query}`, { key: adminKey });
      expect(res.status).toBe(400);
      expect(errorCode(res)).toBe('request.invalid');
    });

    it('is for admins only', async () => {
      const { key } = await createUser(server, c, adminKey, { username: 'lister', password: 'lister-password' });
      expect((await c.get(USERS, { key })).status).toBe(403);
      expect((await c.get(USERS)).status).toBe(401);
    });
  });

  describe('reading and updating', () => {
    let user: { user: { id: number }; key: string };
    let other: { user: { id: number }; key: string };
    beforeAll(async () => {
      user = await createUser(server, c, adminKey, { username: 'reader', password: 'reader-password', email: 'reader@x.test' });
      other = await createUser(server, c, adminKey, { username: 'other', password: 'other-password' });
    });

    it('lets an admin read anyone and a user only themselves', async () => {
      expect((await c.get(`${USERS}/${user.user.id}`, { key: adminKey })).status).toBe(200);
      const self = await c.get(`${USERS}/${user.user.id}`, { key: user.key });
      expect(self.status).toBe(200);
      expect(self.body.username).toBe('reader');
      const foreign = await c.get(`${USERS}/${other.user.id}`, { key: user.key });
      expect(foreign.status).toBe(403);
      expect((await c.get(`${USERS}/999999`, { key: user.key })).status).toBe(403);
      const missing = await c.get(`${USERS}/999999`, { key: adminKey });
      expect(missing.status).toBe(404);
      expect(errorCode(missing)).toBe('user.not_found');
    });

    it('serves GET /me and records lastActiveAt', async () => {
      const me = await c.get('/api/v1/auth/me', { key: user.key });
      expect(me.status).toBe(200);
      expect(me.body.id).toBe(user.user.id);
      expect(me.body.lastActiveAt).toMatch(ISO);
      const stored = await server.usher.users.get(user.user.id);
      expect(stored!.lastActiveAt).not.toBeNull();
    });

    it('promotes and demotes with PUT {"role"} as in the seed', async () => {
      const up = await c.put(`${USERS}/${other.user.id}`, { key: adminKey, body: { role: 'admin' } });
      expect(up.status).toBe(200);
      expect(up.body.role).toBe('admin');
      const down = await c.put(`${USERS}/${other.user.id}`, { key: adminKey, body: { role: 'user' } });
      expect(down.body.role).toBe('user');
    });

    it('treats PUT and PATCH as partial updates', async () => {
      const put = await c.put(`${USERS}/${user.user.id}`, { key: adminKey, body: { name: 'Reader One' } });
      expect(put.body).toMatchObject({ name: 'Reader One', email: 'reader@x.test', role: 'user' });
      const patch = await c.patch(`${USERS}/${user.user.id}`, { key: adminKey, body: { email: 'reader1@x.test' } });
      expect(patch.body).toMatchObject({ name: 'Reader One', email: 'reader1@x.test' });
    });

    it('lets a user change only their own name, email and password', async () => {
      const own = await c.put('/api/v1/auth/me', { key: user.key, body: { name: 'Me Myself', email: 'me@x.test' } });
      expect(own.status).toBe(200);
      expect(own.body).toMatchObject({ name: 'Me Myself', email: 'me@x.test' });
      const viaId = await c.patch(`${USERS}/${user.user.id}`, { key: user.key, body: { name: 'Via Id' } });
      expect(viaId.status).toBe(200);
      for (const body of [{ role: 'admin' }, { active: false }, { name: 'x', role: 'admin' }, { username: 'renamed' }]) {
        const res = await c.put('/api/v1/auth/me', { key: user.key, body });
        expect(res.status).toBe(403);
      }
      const foreign = await c.put(`${USERS}/${other.user.id}`, { key: user.key, body: { name: 'Hijack' } });
      expect(foreign.status).toBe(403);
      expect((await c.get(`${USERS}/${user.user.id}`, { key: adminKey })).body.role).toBe('user');
    });

    it('needs the current password for your own password change', async () => {
      const missing = await c.put('/api/v1/auth/me', { key: user.key, body: { password: 'new-reader-password' } });
      expect(missing.status).toBe(400);
      expect(missing.body.error.message).toMatch(/^currentPassword:/);
      const wrong = await c.put('/api/v1/auth/me', { key: user.key, body: { password: 'new-reader-password', currentPassword: 'nope-nope' } });
      expect(wrong.status).toBe(403);
      expect(errorCode(wrong)).toBe('user.wrong_current_password');
      const right = await c.put('/api/v1/auth/me', { key: user.key, body: { password: 'new-reader-password', currentPassword: 'reader-password' } });
      expect(right.status).toBe(200);
      const stored = await server.usher.users.get(user.user.id);
      expect(await verifyPassword(stored!.passwordHash!, 'new-reader-password')).toBe(true);
      expect(stored!.passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    });

    it('lets an admin set or clear a password, but never an admin\'s', async () => {
      const set = await c.put(`${USERS}/${other.user.id}`, { key: adminKey, body: { password: 'set-by-admin' } });
      expect(set.status).toBe(200);
      const cleared = await c.put(`${USERS}/${other.user.id}`, { key: adminKey, body: { password: null } });
      expect(cleared.body.hasPassword).toBe(false);
      const promote = await c.put(`${USERS}/${other.user.id}`, { key: adminKey, body: { role: 'admin' } });
      expect(promote.status).toBe(409);
      expect(errorCode(promote)).toBe('user.admin_needs_password');
      const both = await c.put(`${USERS}/${other.user.id}`, { key: adminKey, body: { role: 'admin', password: 'now-has-one' } });
      expect(both.status).toBe(200);
      const clearAdmin = await c.put(`${USERS}/${other.user.id}`, { key: adminKey, body: { password: null } });
      expect(clearAdmin.status).toBe(409);
      expect(errorCode(clearAdmin)).toBe('user.admin_needs_password');
      await c.put(`${USERS}/${other.user.id}`, { key: adminKey, body: { role: 'user' } });
    });

    it('resets a password with 204', async () => {
      const res = await c.post(`${USERS}/${other.user.id}/reset-password`, { key: adminKey, body: { password: 'reset-password-1' } });
      expect(res.status).toBe(204);
      const stored = await server.usher.users.get(other.user.id);
      expect(await verifyPassword(stored!.passwordHash!, 'reset-password-1')).toBe(true);
      expect((await c.post(`${USERS}/${other.user.id}/reset-password`, { key: user.key, body: { password: 'reset-password-2' } })).status).toBe(403);
      expect((await c.post(`${USERS}/${other.user.id}/reset-password`, { key: adminKey, body: { password: 'short' } })).status).toBe(400);
      expect((await c.post(`${USERS}/999999/reset-password`, { key: adminKey, body: { password: 'reset-password-3' } })).status).toBe(404);
    });
  });

  describe('API keys', () => {
    it('accepts X-Api-Key and Authorization: Bearer, refuses a key in the URL', async () => {
      const { key } = await createUser(server, c, adminKey, { username: 'keyholder', password: 'keyholder-pw' });
      expect((await c.get('/api/v1/auth/me', { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
      for (const query of [`api_key=${key}`, `apiKey=${key}`, `x-api-key=${key}`, `token=${key}`]) {
        const res = await c.get(`/api/v1/auth/me?${query}`);
        expect(res.status).toBe(400);
        expect(errorCode(res)).toBe('auth.key_in_url');
      }
      const conflicting = await c.get('/api/v1/auth/me', { key, headers: { authorization: `Bearer ${adminKey}` } });
      expect(conflicting.status).toBe(400);
      // fetch folds repeated headers into one line; node:http sends two.
      const twice = await new Promise<number>((resolve, reject) => {
        http.get(`${server.url}/api/v1/auth/me`, { headers: { 'x-api-key': [key, key] } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        }).on('error', reject);
      });
      expect(twice).toBe(400);
      expect((await c.get(`${USERS}?q=usk_lookalike`, { key: adminKey })).status).toBe(200);
      const bogus = await c.get('/api/v1/auth/me', { key: 'usk_not-a-real-key' });
      expect(bogus.status).toBe(401);
      expect(errorCode(bogus)).toBe('auth.invalid_api_key');
    });

    it('shows the owner their key, rotates it, and kills the old one at once', async () => {
      const { user, key } = await createUser(server, c, adminKey, { username: 'rotator', password: 'rotator-pw' });
      const shown = await c.get('/api/v1/auth/me/api-key', { key });
      expect(shown.status).toBe(200);
      expect(shown.body.apiKey).toBe(key);
      expect(key).toMatch(/^usk_[A-Za-z0-9_-]{43}$/);
      const rotated = await c.post('/api/v1/auth/me/api-key', { key });
      expect(rotated.status).toBe(200);
      expect(rotated.body.apiKey).not.toBe(key);
      expect((await c.get('/api/v1/auth/me', { key })).status).toBe(401);
      expect((await c.get('/api/v1/auth/me', { key: rotated.body.apiKey })).body.id).toBe(user.id);

      const byAdmin = await c.post(`${USERS}/${user.id}/api-key`, { key: adminKey });
      expect(byAdmin.status).toBe(204);
      expect(byAdmin.text).toBe('');
      expect((await c.get('/api/v1/auth/me', { key: rotated.body.apiKey })).status).toBe(401);
      const fresh = server.usher.users.readApiKey((await server.usher.users.get(user.id))!);
      expect((await c.get('/api/v1/auth/me', { key: fresh! })).status).toBe(200);
    });

    it('never stores a usable key', async () => {
      const { user, key } = await createUser(server, c, adminKey, { username: 'vault', password: 'vault-password' });
      const row = await server.usher.db('users').where({ id: user.id }).first();
      const stored = JSON.stringify(row);
      expect(stored).not.toContain(key);
      expect(stored).not.toContain(key.slice(4));
      expect(row.api_key_digest).toMatch(/^[0-9a-f]{64}$/);
    });
  });

  describe('disable, enable and delete', () => {
    it("refuses a disabled user's key on the next request and restores it on enable", async () => {
      const { user, key } = await createUser(server, c, adminKey, { username: 'sleeper', password: 'sleeper-pw' });
      expect((await c.get('/api/v1/auth/me', { key })).status).toBe(200);
      const off = await c.post(`${USERS}/${user.id}/status`, { key: adminKey, body: { active: false } });
      expect(off.status).toBe(200);
      expect(off.body.active).toBe(false);
      expect((await c.get('/api/v1/auth/me', { key })).status).toBe(401);
      const on = await c.post(`${USERS}/${user.id}/status`, { key: adminKey, body: { active: true } });
      expect(on.body.active).toBe(true);
      const back = await c.get('/api/v1/auth/me', { key });
      expect(back.status).toBe(200);
      expect(back.body).toMatchObject({ username: 'sleeper', role: 'user', hasPassword: true });
      expect((await c.post(`${USERS}/${user.id}/status`, { key: adminKey, body: { active: 'no' } })).status).toBe(400);
      expect((await c.post(`${USERS}/${user.id}/status`, { key, body: { active: false } })).status).toBe(403);
    });

    it("deletes with 200 {id} and the user's key dies on the next request", async () => {
      const { user, key } = await createUser(server, c, adminKey, { username: 'goner', password: 'goner-password' });
      expect((await c.get('/api/v1/auth/me', { key })).status).toBe(200);
      const res = await c.del(`${USERS}/${user.id}`, { key: adminKey });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ id: user.id });
      expect((await c.get('/api/v1/auth/me', { key })).status).toBe(401);
      expect((await c.get(`${USERS}/${user.id}`, { key: adminKey })).status).toBe(404);
      expect((await c.del(`${USERS}/${user.id}`, { key: adminKey })).status).toBe(404);
    });

    it('refuses to delete yourself', async () => {
      const me = await c.get('/api/v1/auth/me', { key: adminKey });
      const res = await c.del(`${USERS}/${me.body.id}`, { key: adminKey });
      expect(res.status).toBe(409);
      expect(errorCode(res)).toBe('user.cannot_delete_self');
    });
  });
});

describe.each(DB_KINDS)('setup and safety rails on %s', (kind) => {
  let server: TestServer;
  let c: Client;
  beforeAll(async () => {
    server = await startServer(kind);
    c = client(server.url);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('lets exactly one of several concurrent setups create the first admin', async () => {
    expect((await c.get('/api/v1/auth/status')).body).toEqual({ setupRequired: true });
    const replies = await Promise.all(
      Array.from({ length: 6 }, (_, i) => c.post('/api/v1/auth/setup', { body: { username: `first${i}`, password: 'first-password' } })),
    );
    const statuses = replies.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 409, 409, 409, 409, 409]);
    const winner = replies.find((r) => r.status === 201)!;
    expect(winner.body.user.role).toBe('admin');
    expect(winner.body.apiKey).toMatch(/^usk_/);
    for (const r of replies.filter((x) => x.status === 409)) expect(errorCode(r)).toBe('setup.already_done');
    expect((await c.get('/api/v1/auth/status')).body).toEqual({ setupRequired: false });
    expect((await c.get(USERS, { key: winner.body.apiKey })).headers.get('x-total-count')).toBe('1');
  });

  it('never demotes, disables or deletes the last enabled admin', async () => {
    const key = server.usher.users.readApiKey((await server.usher.users.get(1))!)!;
    const me = (await c.get('/api/v1/auth/me', { key })).body;
    for (const [method, path, body] of [
      ['PUT', `${USERS}/${me.id}`, { role: 'user' }],
      ['PATCH', '/api/v1/auth/me', { role: 'user' }],
      ['POST', `${USERS}/${me.id}/status`, { active: false }],
    ] as const) {
      const res = await c.call(method, path, { key, body });
      expect(res.status).toBe(409);
      expect(errorCode(res)).toBe('user.last_admin');
    }
    expect((await c.get('/api/v1/auth/me', { key })).body).toMatchObject({ role: 'admin', active: true });
  });

  it.each([
    ['demote', (id: number) => ({ method: 'PUT', path: `${USERS}/${id}`, body: { role: 'user' } })],
    ['disable', (id: number) => ({ method: 'POST', path: `${USERS}/${id}/status`, body: { active: false } })],
    ['delete', (id: number) => ({ method: 'DELETE', path: `${USERS}/${id}`, body: undefined })],
  ])('leaves one enabled admin when two admins %s each other at the same moment', async (_name, action) => {
    const rootKey = server.usher.users.readApiKey((await server.usher.users.get(1))!)!;
    for (let round = 0; round < 3; round++) {
      const a = await createUser(server, c, rootKey, { username: `a-${_name}-${round}`, password: 'admin-pass-a', role: 'admin' });
      const b = await createUser(server, c, rootKey, { username: `b-${_name}-${round}`, password: 'admin-pass-b', role: 'admin' });
      // Only these two stay admins: the root admin steps down (allowed, others remain).
      expect((await c.put(`${USERS}/1`, { key: rootKey, body: { role: 'user' } })).status).toBe(200);
      const [x, y] = [action(b.user.id), action(a.user.id)];
      const replies = await Promise.all([
        c.call(x.method, x.path, { key: a.key, body: x.body }),
        c.call(y.method, y.path, { key: b.key, body: y.body }),
      ]);
      const ok = replies.filter((r) => r.status < 300).length;
      expect(ok).toBe(1);
      const admins = await server.usher.db('users').where({ role: 'admin', active: true });
      expect(admins).toHaveLength(1);
      // Restore the root admin for the next round, using whichever admin survived.
      const survivor = admins[0].id === a.user.id ? a : b;
      expect((await c.put(`${USERS}/1`, { key: survivor.key, body: { role: 'admin' } })).status).toBe(200);
      await server.usher.db('users').whereIn('id', [a.user.id, b.user.id]).delete();
      // Rows removed behind the service's back: tell its listeners (caches) as a change would.
      await server.usher.users.events.publish([a, b].map((u) => eventOf(SYSTEM_ORIGIN, 'user.deleted', u.user.id)));
    }
  });
});

describe('caching', () => {
  it('marks every API answer no-store and sends no ETag', async () => {
    const server = await startServer('sqlite');
    try {
      const c = client(server.url);
      const key = await setupAdmin(c);
      for (const res of [await c.get('/api/v1/auth/status'), await c.get('/api/v1/auth/me', { key }), await c.get('/api/v1/auth/nope')]) {
        expect(res.headers.get('cache-control')).toBe('no-store');
        expect(res.headers.get('etag')).toBeNull();
      }
    } finally {
      await server.close();
    }
  });
});
