import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { auditEntries } from './helpers/audit.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client } from './helpers/http.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';
const MINE = `${AUTH}/me/api-keys`;
const KEY = /^usa_[A-Za-z0-9_-]{43}$/;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

interface Made {
  id: number;
  name: string;
  prefix: string;
  permissions: string[];
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  key: string;
}

describe.each(DB_KINDS)('scoped API keys on %s', (kind) => {
  let server: TestServer;
  let c: Client;
  let adminKey: string;
  let n = 0;
  const ADMIN = { kind: 'user', userId: 1, method: 'api-key' };

  const someone = (body: Record<string, unknown> = {}) => createUser(server, c, adminKey, { username: `sk-user-${++n}`, ...body });
  const anAdmin = () => someone({ role: 'admin', password: 'admin-password-2' });

  async function make(key: string, permissions: string[], extra: Record<string, unknown> = {}): Promise<Made> {
    const res = await c.post(MINE, { key, body: { name: `key-${++n}`, permissions, ...extra } });
    expect(res.status, res.text).toBe(201);
    return res.body as Made;
  }

  const listOf = async (key: string) => {
    const res = await c.get(MINE, { key });
    expect(res.status, res.text).toBe(200);
    return res.body as Omit<Made, 'key'>[];
  };

  beforeAll(async () => {
    server = await startServer(kind);
    c = client(server.url);
    adminKey = await setupAdmin(c);
  });
  afterAll(async () => {
    await server?.close();
  });

  describe('making, listing and revoking your own keys', () => {
    it('answers the key once, lists it without the key, stores only its digest, and revoking stops it on the next request', async () => {
      const { user, key: ownKey } = await someone();
      const before = Date.now();
      const made = await make(ownKey, ['self.read', 'self:read']);
      expect(made.key).toMatch(KEY);
      expect(made).toMatchObject({ name: `key-${n}`, prefix: made.key.slice(0, 10), permissions: ['self.read'], lastUsedAt: null, expiresAt: null });
      expect(made.createdAt).toMatch(ISO);
      expect(Date.parse(made.createdAt)).toBeGreaterThanOrEqual(before - 1);

      const { key: _shownOnce, ...listed } = made;
      const list = await listOf(ownKey);
      expect(list).toEqual([listed]);
      expect(JSON.stringify(list)).not.toContain(made.key.slice(10));
      const rows = await server.usher.db('api_keys').where({ user_id: user.id });
      expect(rows).toHaveLength(1);
      expect(JSON.stringify(rows)).not.toContain(made.key.slice(10));

      // Both ways of sending a key.
      const me = await c.get(`${AUTH}/me`, { key: made.key });
      expect(me.status, me.text).toBe(200);
      expect(me.body).toMatchObject({ id: user.id, username: user.username });
      const bearer = await c.get(`${AUTH}/me`, { headers: { authorization: `Bearer ${made.key}` } });
      expect(bearer.status, bearer.text).toBe(200);

      const gone = await c.del(`${MINE}/${made.id}`, { key: ownKey });
      expect(gone.status, gone.text).toBe(204);
      const after = await c.get(`${AUTH}/me`, { key: made.key });
      expect(after.status).toBe(401);
      expect(errorCode(after)).toBe('auth.invalid_api_key');
      expect(await listOf(ownKey)).toEqual([]);

      const [created] = await auditEntries(server, c, adminKey, 'api_key.created', user.id);
      expect(created).toMatchObject({ actor: { kind: 'user', userId: user.id, method: 'api-key' }, targetUserId: user.id, detail: { keyId: made.id, name: made.name, permissions: 'self.read', expiresAt: null } });
      const [revoked] = await auditEntries(server, c, adminKey, 'api_key.revoked', user.id);
      expect(revoked).toMatchObject({ targetUserId: user.id, detail: { keyId: made.id, name: made.name } });
      expect(JSON.stringify([created, revoked])).not.toContain(made.key.slice(10));
    });

    it('refuses an unknown usa_ key as an invalid API key', async () => {
      const res = await c.get(`${AUTH}/me`, { key: `usa_${'A'.repeat(43)}` });
      expect(res.status).toBe(401);
      expect(errorCode(res)).toBe('auth.invalid_api_key');
    });

    it('records when a key was last used', async () => {
      const { key: ownKey } = await someone();
      const made = await make(ownKey, ['self.read']);
      const before = Date.now();
      expect((await c.get(`${AUTH}/me`, { key: made.key })).status).toBe(200);
      // Written off the request's path: wait for the row, not for a time.
      await vi.waitFor(async () => expect((await listOf(ownKey))[0]!.lastUsedAt).not.toBeNull());
      expect(Date.parse((await listOf(ownKey))[0]!.lastUsedAt!)).toBeGreaterThanOrEqual(before - 1);
    });

    it('gives an expiry expiresInDays from now, and refuses the key once it has passed', async () => {
      const { key: ownKey } = await someone();
      const made = await make(ownKey, ['self.read'], { expiresInDays: 30 });
      const expected = Date.parse(made.createdAt) + 30 * 86_400_000;
      expect(Date.parse(made.expiresAt!)).toBe(expected);
      expect((await c.get(`${AUTH}/me`, { key: made.key })).status).toBe(200);

      // A second key, moved into the past before its first use (nothing has cached it yet).
      const old = await make(ownKey, ['self.read'], { expiresInDays: 1 });
      await server.usher.db('api_keys').where({ id: old.id }).update({ expires_at: Date.now() - 1 });
      const res = await c.get(`${AUTH}/me`, { key: old.key });
      expect(res.status).toBe(401);
      expect(errorCode(res)).toBe('auth.invalid_api_key');
      expect((await listOf(ownKey)).find((k) => k.id === old.id)?.expiresAt).toMatch(ISO);
    });
  });

  describe('what a key may do: the intersection of its scope and its owner', () => {
    it('a key with only self.read gets 403 on users.list, even an admin’s', async () => {
      const made = await make(adminKey, ['self.read']);
      expect((await c.get(`${AUTH}/me`, { key: made.key })).status).toBe(200);
      const list = await c.get(`${AUTH}/users`, { key: made.key });
      expect(list.status).toBe(403);
      expect(errorCode(list)).toBe('auth.forbidden');
      expect((await c.get(`${AUTH}/users/1`, { key: made.key })).status).toBe(200);
      expect((await c.get(`${AUTH}/users/2`, { key: made.key })).status).toBe(403);
    });

    it('a key with only users.list lists users and cannot read its own account', async () => {
      const made = await make(adminKey, ['users.list']);
      expect((await c.get(`${AUTH}/users`, { key: made.key })).status).toBe(200);
      const me = await c.get(`${AUTH}/me`, { key: made.key });
      expect(me.status).toBe(403);
      expect(errorCode(me)).toBe('auth.forbidden');
    });

    it('an owner demoted loses, on the next request, what the key had through the role', async () => {
      const { user, key: ownKey } = await anAdmin();
      const made = await make(ownKey, ['users.list']);
      expect((await c.get(`${AUTH}/users`, { key: made.key })).status).toBe(200);
      const demoted = await c.put(`${AUTH}/users/${user.id}`, { key: adminKey, body: { role: 'user' } });
      expect(demoted.status, demoted.text).toBe(200);
      const after = await c.get(`${AUTH}/users`, { key: made.key });
      expect(after.status).toBe(403);
      expect(errorCode(after)).toBe('auth.forbidden');
    });

    it('reaches none of the account’s credentials or password without those permissions in its scope', async () => {
      const { user } = await someone({ password: 'first-password' });
      const record = await server.usher.users.get(user.id);
      const ownKey = server.usher.users.readApiKey(record!)!;
      const made = await make(ownKey, ['self.read']);
      const refused = [
        await c.get(`${AUTH}/me/api-key`, { key: made.key }),
        await c.post(`${AUTH}/me/api-key`, { key: made.key }),
        await c.post(`${AUTH}/me/recovery-code`, { key: made.key }),
        await c.put(`${AUTH}/me`, { key: made.key, body: { password: 'second-password', currentPassword: 'first-password' } }),
        await c.patch(`${AUTH}/me`, { key: made.key, body: { name: 'Renamed' } }),
        await c.get(`${AUTH}/me/sessions`, { key: made.key }),
        await c.get(MINE, { key: made.key }),
        await c.post(MINE, { key: made.key, body: { name: 'wider', permissions: ['self.read'] } }),
      ];
      expect(refused.map((r) => r.status)).toEqual(Array(refused.length).fill(403));
      expect(refused.map(errorCode)).toEqual(Array(refused.length).fill('auth.forbidden'));
      // The owner's own key is untouched.
      expect((await c.get(`${AUTH}/me/api-key`, { key: ownKey })).body).toEqual({ apiKey: ownKey });
    });

    it('a key may make keys only within its own scope, and only with self.api-keys in it', async () => {
      const { key: ownKey } = await someone();
      const manager = await make(ownKey, ['self.api-keys', 'self.read']);
      const narrower = await c.post(MINE, { key: manager.key, body: { name: 'narrower', permissions: ['self.read'] } });
      expect(narrower.status, narrower.text).toBe(201);
      const wider = await c.post(MINE, { key: manager.key, body: { name: 'wider', permissions: ['self.read', 'self.sessions'] } });
      expect(wider.status).toBe(403);
      expect(errorCode(wider)).toBe('authz.escalation');
      expect(wider.body.error.message).toContain('permissions.1');
      // It sees and revokes the owner's keys: self.api-keys is about all of them.
      expect((await c.get(MINE, { key: manager.key })).body).toHaveLength(2);
    });

    it('nobody makes a key with a permission they do not hold', async () => {
      const { key: ownKey } = await someone();
      const res = await c.post(MINE, { key: ownKey, body: { name: 'admin-ish', permissions: ['users.list'] } });
      expect(res.status).toBe(403);
      expect(errorCode(res)).toBe('authz.escalation');
    });

    it('forward auth: a scoped key proves who, and passes no role on', async () => {
      const made = await make(adminKey, ['self.read']);
      const res = await c.get(`${AUTH}/verify`, { key: made.key });
      expect(res.status, res.text).toBe(200);
      expect(res.headers.get('remote-user')).toBe('admin');
      expect(res.headers.get('remote-groups')).toBe('');
      const full = await c.get(`${AUTH}/verify`, { key: adminKey });
      expect(full.headers.get('remote-groups')).toBe('admin,user');
    });
  });

  describe('the owner’s state decides', () => {
    it('an owner disabled: the key is refused on the next request, and works again once enabled', async () => {
      const { user, key: ownKey } = await someone();
      const made = await make(ownKey, ['self.read']);
      expect((await c.get(`${AUTH}/me`, { key: made.key })).status).toBe(200);
      expect((await c.post(`${AUTH}/users/${user.id}/status`, { key: adminKey, body: { active: false } })).status).toBe(200);
      const refused = await c.get(`${AUTH}/me`, { key: made.key });
      expect(refused.status).toBe(401);
      expect(errorCode(refused)).toBe('auth.invalid_api_key');
      expect((await c.post(`${AUTH}/users/${user.id}/status`, { key: adminKey, body: { active: true } })).status).toBe(200);
      expect((await c.get(`${AUTH}/me`, { key: made.key })).status).toBe(200);
    });

    it('an owner deleted: the key goes with them', async () => {
      const { user, key: ownKey } = await someone();
      const made = await make(ownKey, ['self.read']);
      expect((await c.get(`${AUTH}/me`, { key: made.key })).status).toBe(200);
      expect((await c.del(`${AUTH}/users/${user.id}`, { key: adminKey })).status).toBe(200);
      expect((await c.get(`${AUTH}/me`, { key: made.key })).status).toBe(401);
      expect(await server.usher.db('api_keys').where({ user_id: user.id })).toEqual([]);
    });
  });

  describe('admins list and revoke anyone’s keys', () => {
    it('lists another user’s keys and revokes one, which stops on the next request', async () => {
      const { user, key: ownKey } = await someone();
      const made = await make(ownKey, ['self.read']);
      expect((await c.get(`${AUTH}/me`, { key: made.key })).status).toBe(200);
      const list = await c.get(`${AUTH}/users/${user.id}/api-keys`, { key: adminKey });
      expect(list.status, list.text).toBe(200);
      expect(list.body).toEqual([expect.objectContaining({ id: made.id, name: made.name, prefix: made.prefix })]);
      expect(JSON.stringify(list.body)).not.toContain(made.key.slice(10));

      const gone = await c.del(`${AUTH}/users/${user.id}/api-keys/${made.id}`, { key: adminKey });
      expect(gone.status, gone.text).toBe(204);
      expect((await c.get(`${AUTH}/me`, { key: made.key })).status).toBe(401);
      const [revoked] = await auditEntries(server, c, adminKey, 'api_key.revoked', user.id);
      expect(revoked).toMatchObject({ actor: ADMIN, targetUserId: user.id, detail: { keyId: made.id } });
    });

    it('a non-admin can do neither', async () => {
      const { user: owner, key: ownerKey } = await someone();
      const made = await make(ownerKey, ['self.read']);
      const { key: otherKey } = await someone();
      const list = await c.get(`${AUTH}/users/${owner.id}/api-keys`, { key: otherKey });
      const del = await c.del(`${AUTH}/users/${owner.id}/api-keys/${made.id}`, { key: otherKey });
      expect([list.status, del.status]).toEqual([403, 403]);
      expect([errorCode(list), errorCode(del)]).toEqual(['auth.forbidden', 'auth.forbidden']);
      // Nor through their own routes: another user's key id is not theirs.
      const mine = await c.del(`${MINE}/${made.id}`, { key: otherKey });
      expect(mine.status).toBe(404);
      expect(errorCode(mine)).toBe('api_key.not_found');
      expect((await c.get(`${AUTH}/me`, { key: made.key })).status).toBe(200);
    });

    it('answers 404 for a user or key that is not there', async () => {
      const { user: owner, key: ownerKey } = await someone();
      const { user: other } = await someone();
      const made = await make(ownerKey, ['self.read']);
      const cases = [
        [await c.get(`${AUTH}/users/999999/api-keys`, { key: adminKey }), 'user.not_found'],
        [await c.del(`${AUTH}/users/999999/api-keys/${made.id}`, { key: adminKey }), 'user.not_found'],
        [await c.del(`${AUTH}/users/${other.id}/api-keys/${made.id}`, { key: adminKey }), 'api_key.not_found'],
        [await c.del(`${AUTH}/users/${owner.id}/api-keys/999999`, { key: adminKey }), 'api_key.not_found'],
        [await c.del(`${MINE}/999999`, { key: ownerKey }), 'api_key.not_found'],
      ] as const;
      expect(cases.map(([r]) => r.status)).toEqual([404, 404, 404, 404, 404]);
      expect(cases.map(([r]) => errorCode(r))).toEqual(cases.map(([, code]) => code));
    });
  });

  describe('refusals', () => {
    it.each([
      ['no name', { permissions: ['self.read'] }, 'name'],
      ['an empty name', { name: '  ', permissions: ['self.read'] }, 'name'],
      ['a name too long', { name: 'x'.repeat(101), permissions: ['self.read'] }, 'name'],
      ['no permissions', { name: 'k' }, 'permissions'],
      ['an empty scope', { name: 'k', permissions: [] }, 'permissions'],
      ['an undeclared permission', { name: 'k', permissions: ['self.read', 'library.read'] }, 'permissions.1'],
      ['a name that is no permission', { name: 'k', permissions: ['everything'] }, 'permissions.0'],
      ['expiresInDays 0', { name: 'k', permissions: ['self.read'], expiresInDays: 0 }, 'expiresInDays'],
      ['expiresInDays not a whole number', { name: 'k', permissions: ['self.read'], expiresInDays: 1.5 }, 'expiresInDays'],
      ['an unknown field', { name: 'k', permissions: ['self.read'], key: 'usa_mine' }, 'key'],
    ])('400 for %s, naming the field', async (_label, body, field) => {
      const { key: ownKey } = await someone();
      const res = await c.post(MINE, { key: ownKey, body });
      expect(res.status, res.text).toBe(400);
      expect(errorCode(res)).toBe('request.invalid');
      expect(res.body.error.message).toContain(field);
      expect(await listOf(ownKey)).toEqual([]);
    });

    it('400 for a key id that is no id', async () => {
      const res = await c.del(`${MINE}/abc`, { key: adminKey });
      expect(res.status).toBe(400);
      expect(errorCode(res)).toBe('request.invalid');
    });

    it('409 for a name the user has already; another user may use it', async () => {
      const { key: ownKey } = await someone();
      const { key: otherKey } = await someone();
      expect((await c.post(MINE, { key: ownKey, body: { name: 'Music player', permissions: ['self.read'] } })).status).toBe(201);
      const again = await c.post(MINE, { key: ownKey, body: { name: ' Music player ', permissions: ['self.read'] } });
      expect(again.status).toBe(409);
      expect(errorCode(again)).toBe('api_key.name_taken');
      expect((await c.post(MINE, { key: otherKey, body: { name: 'Music player', permissions: ['self.read'] } })).status).toBe(201);
    });

    it('409 past 100 keys, until one is revoked', async () => {
      const { user, key: ownKey } = await someone();
      const owner = { id: user.id, role: 'user' };
      const origin = { actor: { kind: 'system' } } as const;
      for (let i = 0; i < 99; i++) await server.usher.apiKeys.create(owner, { name: `bulk-${i}`, permissions: ['self.read'] }, origin);
      const last = await make(ownKey, ['self.read']);
      const over = await c.post(MINE, { key: ownKey, body: { name: 'one too many', permissions: ['self.read'] } });
      expect(over.status).toBe(409);
      expect(errorCode(over)).toBe('api_key.limit');
      expect((await c.del(`${MINE}/${last.id}`, { key: ownKey })).status).toBe(204);
      expect((await c.post(MINE, { key: ownKey, body: { name: 'one too many', permissions: ['self.read'] } })).status).toBe(201);
    });

    it('concurrent keys of one name: exactly one is made', async () => {
      const { key: ownKey } = await someone();
      const results = await Promise.all(Array.from({ length: 5 }, () => c.post(MINE, { key: ownKey, body: { name: 'raced', permissions: ['self.read'] } })));
      expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409]);
      expect(await listOf(ownKey)).toHaveLength(1);
    });
  });
});
