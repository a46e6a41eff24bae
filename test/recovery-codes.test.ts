import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprintCode, generateCode } from '../src/crypto/codes.js';
import { deriveKeys } from '../src/crypto/secret.js';
import { SYSTEM_ORIGIN } from '../src/events/stream.js';
import { startServer, type TestServer } from './helpers/app.js';
import { auditEntries } from './helpers/audit.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client, type Jar } from './helpers/http.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';
const USERS = `${AUTH}/users`;
const MINE = `${AUTH}/me/recovery-code`;
const CODE = /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){4}$/;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const plain = (code: string) => code.replaceAll('-', '');

describe.each(DB_KINDS)('recovery codes on %s', (kind) => {
  let server: TestServer;
  let c: Client;
  let adminKey: string;
  let n = 0;
  const ADMIN = { kind: 'user', userId: 1, method: 'api-key' };

  /** A fresh listener and their API key. */
  const listener = (body: Record<string, unknown> = {}) => createUser(server, c, adminKey, { username: `rc-listener-${++n}`, ...body });

  async function mint(key: string) {
    const res = await c.post(MINE, { key });
    expect(res.status, res.text).toBe(201);
    return res.body as { code: string; createdAt: string };
  }

  const stateOf = async (key: string) => {
    const res = await c.get(MINE, { key });
    expect(res.status, res.text).toBe(200);
    return res.body as { set: boolean; createdAt: string | null };
  };

  /** What the admin sees on the user object. */
  const adminSees = async (id: number) => {
    const res = await c.get(`${USERS}/${id}`, { key: adminKey });
    expect(res.status, res.text).toBe(200);
    return res.body.recoveryCode as string;
  };

  const lookup = (code: string) => server.usher.users.findByRecoveryCode(code);

  const auditOf = (type: string, userId: number) => auditEntries(server, c, adminKey, type, userId);

  beforeAll(async () => {
    server = await startServer(kind);
    c = client(server.url);
    adminKey = await setupAdmin(c);
  });
  afterAll(async () => {
    await server?.close();
  });

  describe('the listener mints, reads the state of and removes their code', () => {
    it('"a code they mint for themselves": 201 with the code, this once, and when; the state says set', async () => {
      const { user, key } = await listener();
      expect(await stateOf(key)).toEqual({ set: false, createdAt: null });
      const before = Date.now();
      const made = await mint(key);
      expect(made.code).toMatch(CODE);
      expect(made.createdAt).toMatch(ISO);
      expect(Date.parse(made.createdAt)).toBeGreaterThanOrEqual(before - 1);
      expect(Date.parse(made.createdAt)).toBeLessThanOrEqual(Date.now());
      expect(await stateOf(key)).toEqual({ set: true, createdAt: made.createdAt });
      expect(await lookup(made.code)).toMatchObject({ kind: 'found', user: { id: user.id } });
    });

    it('"minting again replaces it": a new code, and the old one stops at once', async () => {
      const { user, key } = await listener();
      const first = await mint(key);
      const second = await mint(key);
      expect(second.code).not.toBe(first.code);
      expect(await lookup(first.code)).toEqual({ kind: 'invalid' });
      expect(await lookup(second.code)).toMatchObject({ kind: 'found', user: { id: user.id } });
      expect((await stateOf(key)).createdAt).toBe(second.createdAt);
    });

    it('"never expires and has no use limit": nothing about it counts down or runs out', async () => {
      const { user, key } = await listener();
      const made = await mint(key);
      const rows = await server.usher.db('users').where({ id: user.id }).select('*');
      const columns = Object.keys(rows[0] as object).filter((k) => k.startsWith('recovery_code'));
      expect(columns.sort()).toEqual(['recovery_code_created_at', 'recovery_code_fingerprint']);
      for (let i = 0; i < 5; i++) expect(await lookup(made.code)).toMatchObject({ kind: 'found', user: { id: user.id } });
    });

    it('DELETE /me/recovery-code removes it at once; again is a 204 too, and only the removal is recorded', async () => {
      const { user, key } = await listener();
      const made = await mint(key);
      const del = await c.del(MINE, { key });
      expect(del.status, del.text).toBe(204);
      expect(del.text).toBe('');
      expect(await stateOf(key)).toEqual({ set: false, createdAt: null });
      expect(await lookup(made.code)).toEqual({ kind: 'invalid' });
      expect((await c.del(MINE, { key })).status).toBe(204);
      const revoked = await auditOf('recovery_code.revoked', user.id);
      expect(revoked).toEqual([expect.objectContaining({ actor: { kind: 'user', userId: user.id, method: 'api-key' }, targetUserId: user.id, detail: { reason: 'revoked' } })]);
    });

    it('works signed in with a session cookie as with a key', async () => {
      const { user } = await listener({ password: 'session-password' });
      const jar: Jar = {};
      const browser = client(server.url, jar);
      expect((await browser.post(`${AUTH}/login`, { body: { username: user.username, password: 'session-password' } })).status).toBe(200);
      const res = await browser.post(MINE);
      expect(res.status, res.text).toBe(201);
      expect((await browser.get(MINE)).body).toEqual({ set: true, createdAt: res.body.createdAt });
      expect((await auditOf('recovery_code.created', user.id))[0]!.actor).toEqual({ kind: 'user', userId: user.id, method: 'session' });
      expect((await browser.del(MINE)).status).toBe(204);
    });

    it('needs a signed-in caller; other methods are 405', async () => {
      const anonymous = await c.post(MINE);
      expect(anonymous.status).toBe(401);
      expect(errorCode(anonymous)).toBe('auth.unauthenticated');
      expect(errorCode(await c.get(MINE))).toBe('auth.unauthenticated');
      const { key } = await listener();
      const put = await c.put(MINE, { key, body: {} });
      expect(put.status).toBe(405);
      expect(errorCode(put)).toBe('request.method_not_allowed');
      const get = await c.get(`${USERS}/1/recovery-code`, { key: adminKey });
      expect(get.status).toBe(405);
    });
  });

  describe('the admin sees only set or none, and revokes', () => {
    it('"the Recovery code row only tells you whether one is set or none"', async () => {
      const { user, key } = await listener();
      expect(await adminSees(user.id)).toBe('none');
      const made = await mint(key);
      expect(await adminSees(user.id)).toBe('set');
      const listed = await c.get(`${USERS}?id=${user.id}`, { key: adminKey });
      expect(listed.body).toMatchObject([{ id: user.id, recoveryCode: 'set' }]);
      const one = await c.get(`${USERS}/${user.id}`, { key: adminKey });
      for (const res of [listed, one]) {
        expect(res.text).not.toContain(plain(made.code).slice(0, 8));
        const record = (Array.isArray(res.body) ? res.body[0] : res.body) as Record<string, unknown>;
        expect(Object.keys(record).filter((k) => /recovery|code/i.test(k))).toEqual(['recoveryCode']);
      }
    });

    it('"As the admin you can Revoke a recovery code": 204, it stops at once, recorded with the admin as the actor', async () => {
      const { user, key } = await listener();
      const made = await mint(key);
      const res = await c.del(`${USERS}/${user.id}/recovery-code`, { key: adminKey });
      expect(res.status, res.text).toBe(204);
      expect(await adminSees(user.id)).toBe('none');
      expect(await stateOf(key)).toEqual({ set: false, createdAt: null });
      expect(await lookup(made.code)).toEqual({ kind: 'invalid' });
      expect(await auditOf('recovery_code.revoked', user.id)).toEqual([
        expect.objectContaining({ actor: ADMIN, targetUserId: user.id, detail: { reason: 'revoked' } }),
      ]);
      // Revoking when none is set changes nothing and records nothing.
      expect((await c.del(`${USERS}/${user.id}/recovery-code`, { key: adminKey })).status).toBe(204);
      expect(await auditOf('recovery_code.revoked', user.id)).toHaveLength(1);
    });

    it('needs users:revoke-recovery-code, even for your own id; an unknown user is 404', async () => {
      const { user, key } = await listener();
      const other = await listener();
      const made = await mint(other.key);
      for (const id of [other.user.id, user.id]) {
        const res = await c.del(`${USERS}/${id}/recovery-code`, { key });
        expect(res.status).toBe(403);
        expect(errorCode(res)).toBe('auth.forbidden');
      }
      expect(await lookup(made.code)).toMatchObject({ kind: 'found', user: { id: other.user.id } });
      const missing = await c.del(`${USERS}/999999/recovery-code`, { key: adminKey });
      expect(missing.status).toBe(404);
      expect(errorCode(missing)).toBe('user.not_found');
      const bad = await c.del(`${USERS}/abc/recovery-code`, { key: adminKey });
      expect(bad.status).toBe(400);
      expect(bad.body.error.message).toMatch(/^id:/);
    });

    it('"you can never view it": no answer but the mint holds the code, and no two answers hold the same one', async () => {
      const { user, key } = await listener();
      const made = await mint(key);
      await c.post(`${USERS}/${user.id}/invites`, { key: adminKey, body: {} });
      await server.usher.audit.flush();
      const reads = await Promise.all([
        c.get(MINE, { key }),
        c.get(`${AUTH}/me`, { key }),
        c.get(`${USERS}/${user.id}`, { key }),
        c.get(`${USERS}/${user.id}`, { key: adminKey }),
        c.get(`${USERS}?limit=1000`, { key: adminKey }),
        c.get(`${USERS}/${user.id}/invites`, { key: adminKey }),
        c.get(`${AUTH}/audit?limit=1000`, { key: adminKey }),
        c.get(`${AUTH}/me/sessions`, { key }),
      ]);
      for (const res of reads) {
        expect(res.status, res.text).toBe(200);
        expect(res.text).not.toContain(made.code);
        expect(res.text).not.toContain(plain(made.code));
        expect(res.text).not.toContain(plain(made.code).slice(0, 8));
        expect(res.text).not.toMatch(/fingerprint/i);
      }
      // Minting again answers a new code, never the one set.
      expect((await mint(key)).code).not.toBe(made.code);
    });

    it('a form read before the user minted or removed their code still saves (react-admin sends the record back)', async () => {
      const { user, key } = await listener();
      const read = (await c.get(`${USERS}/${user.id}`, { key: adminKey })).body as Record<string, unknown>;
      expect(read.recoveryCode).toBe('none');
      await mint(key);
      const saved = await c.put(`${USERS}/${user.id}`, { key: adminKey, body: { ...read, name: 'Sam' } });
      expect(saved.status, saved.text).toBe(200);
      expect(saved.body).toMatchObject({ name: 'Sam', recoveryCode: 'set' });
      const own = await c.put(`${AUTH}/me`, { key, body: { ...saved.body, recoveryCode: 'none', name: 'Sam S' } });
      expect(own.status, own.text).toBe(200);
      expect(own.body.recoveryCode).toBe('set');
      const bogus = await c.put(`${USERS}/${user.id}`, { key: adminKey, body: { ...read, recoveryCode: 'shown' } });
      expect(bogus.status).toBe(400);
      expect(bogus.body.error.message).toMatch(/^recoveryCode: is read-only/);
    });

    it('GET /me reflects a change at once, though the key lookup is cached', async () => {
      const { key } = await listener();
      expect((await c.get(`${AUTH}/me`, { key })).body.recoveryCode).toBe('none');
      await mint(key);
      expect((await c.get(`${AUTH}/me`, { key })).body.recoveryCode).toBe('set');
      await c.del(MINE, { key });
      expect((await c.get(`${AUTH}/me`, { key })).body.recoveryCode).toBe('none');
    });
  });

  describe('looking a typed code up (for the redeem flow)', () => {
    it('tells a typo from a wrong code, and finds the user whatever the case and separators', async () => {
      const { user, key } = await listener();
      const { code } = await mint(key);
      const symbols = [...plain(code)];
      symbols[7] = symbols[7] === 'A' ? 'B' : 'A';
      expect(await lookup(symbols.join(''))).toEqual({ kind: 'typo' });
      expect(await lookup('not a code')).toEqual({ kind: 'typo' });
      expect(await lookup(generateCode())).toEqual({ kind: 'invalid' });
      const found = await lookup(code.toLowerCase().replaceAll('-', ' '));
      expect(found).toMatchObject({ kind: 'found', user: { id: user.id, active: true } });
    });

    it("an invite's code is not a recovery code, nor the other way round", async () => {
      const { user, key } = await listener();
      const recovery = await mint(key);
      const invite = await c.post(`${USERS}/${user.id}/invites`, { key: adminKey, body: {} });
      expect(invite.status).toBe(201);
      expect(await lookup(invite.body.code)).toEqual({ kind: 'invalid' });
      expect(await server.usher.invites.findByCode(recovery.code)).toEqual({ kind: 'invalid' });
    });

    it('"A disabled account can\'t sign in": its code is kept but found inactive (the redeem flow refuses it); enabling restores it', async () => {
      const { user, key } = await listener();
      const { code } = await mint(key);
      expect((await c.post(`${USERS}/${user.id}/status`, { key: adminKey, body: { active: false } })).status).toBe(200);
      expect(await adminSees(user.id)).toBe('set');
      expect(await lookup(code)).toMatchObject({ kind: 'found', user: { id: user.id, active: false } });
      expect((await c.post(`${USERS}/${user.id}/status`, { key: adminKey, body: { active: true } })).status).toBe(200);
      expect(await lookup(code)).toMatchObject({ kind: 'found', user: { id: user.id, active: true } });
    });

    it('parallel mints leave exactly one code that works, one of those answered', async () => {
      const { user, key } = await listener();
      const replies = await Promise.all(Array.from({ length: 8 }, () => c.post(MINE, { key })));
      expect(replies.map((r) => r.status)).toEqual(Array(8).fill(201));
      const working = [];
      for (const r of replies) if ((await lookup(r.body.code)).kind === 'found') working.push(r.body.code);
      expect(working).toHaveLength(1);
      expect(await auditOf('recovery_code.created', user.id)).toHaveLength(8);
    });

    it('the database itself refuses one fingerprint on two users', async () => {
      const a = await listener();
      const b = await listener();
      await server.usher.db('users').where({ id: a.user.id }).update({ recovery_code_fingerprint: 'e'.repeat(64), recovery_code_created_at: Date.now() });
      const second = server.usher.db('users').where({ id: b.user.id }).update({ recovery_code_fingerprint: 'e'.repeat(64), recovery_code_created_at: Date.now() });
      await expect(second).rejects.toThrow(/unique|UNIQUE/);
      await server.usher.db('users').where({ id: a.user.id }).update({ recovery_code_fingerprint: null, recovery_code_created_at: null });
    });
  });

  describe('external accounts', () => {
    async function external(name: string) {
      const made = await server.usher.users.provisionExternal(
        { provider: 'proxy', subject: name, username: name, name: null, email: null, role: 'user', authSource: 'proxy', usernameTaken: 'suffix', linkEmail: false, create: true },
        SYSTEM_ORIGIN,
      );
      const key = server.usher.users.readApiKey(made!.user);
      return { id: made!.user.id, key: key! };
    }

    it('may have one only while password login is on; turning it off removes it, recorded with the admin as the actor', async () => {
      const { id, key } = await external('rc-external');
      const refused = await c.post(MINE, { key });
      expect(refused.status).toBe(403);
      expect(errorCode(refused)).toBe('user.password_login_off');
      expect(await adminSees(id)).toBe('none');
      expect((await c.put(`${USERS}/${id}`, { key: adminKey, body: { passwordLogin: true } })).status).toBe(200);
      const { code } = await mint(key);
      expect(await lookup(code)).toMatchObject({ kind: 'found', user: { id } });
      const off = await c.put(`${USERS}/${id}`, { key: adminKey, body: { passwordLogin: false } });
      expect(off.status, off.text).toBe(200);
      expect(off.body.recoveryCode).toBe('none');
      expect(await lookup(code)).toEqual({ kind: 'invalid' });
      expect(await auditOf('recovery_code.revoked', id)).toEqual([
        expect.objectContaining({ actor: ADMIN, targetUserId: id, detail: { reason: 'password_login_off' } }),
      ]);
    });
  });

  describe('what is stored', () => {
    /** Every row of every table, as text. */
    async function everything(): Promise<string> {
      const db = server.usher.db;
      const tables: string[] =
        kind === 'sqlite'
          ? ((await db.raw("select name from sqlite_master where type = 'table'")) as { name: string }[]).map((r) => r.name)
          : ((await db.raw('select table_name from information_schema.tables where table_schema = current_schema()')) as { rows: { table_name: string }[] }).rows.map((r) => r.table_name);
      expect(tables).toEqual(expect.arrayContaining(['users', 'audit_log']));
      const dump: unknown[] = [];
      for (const table of tables) dump.push(table, await db(table).select('*'));
      return JSON.stringify(dump);
    }

    it('"the server stores only a fingerprint": no table holds a code in any recoverable form', async () => {
      const { user, key } = await listener();
      const replaced = await mint(key);
      const current = await mint(key);
      const other = await listener();
      const removed = await mint(other.key);
      await c.del(MINE, { key: other.key });
      await server.usher.audit.flush();
      const dump = (await everything()).toUpperCase();
      for (const { code } of [replaced, current, removed]) {
        const normalized = plain(code);
        expect(dump).not.toContain(code);
        expect(dump).not.toContain(normalized);
        expect(dump).not.toContain(normalized.slice(0, 12));
        for (const digest of ['sha256', 'sha1', 'md5']) {
          expect(dump).not.toContain(createHash(digest).update(normalized).digest('hex').toUpperCase());
          expect(dump).not.toContain(createHash(digest).update(code).digest('hex').toUpperCase());
        }
      }
      // What is there: the keyed fingerprint of the live code, on the user's row, and nothing for the others.
      const keys = deriveKeys(readFileSync(join(server.dataDir, 'secret'), 'utf8').trim());
      const rows = (await server.usher.db('users').whereIn('id', [user.id, other.user.id]).orderBy('id')) as { recovery_code_fingerprint: string | null }[];
      expect(rows.map((r) => r.recovery_code_fingerprint)).toEqual([fingerprintCode(keys, plain(current.code)), null]);
      expect(dump).not.toContain(fingerprintCode(keys, plain(replaced.code)).toUpperCase());
    });

    it('deleting the user removes it', async () => {
      const { user, key } = await listener();
      const { code } = await mint(key);
      expect((await c.del(`${USERS}/${user.id}`, { key: adminKey })).status).toBe(200);
      expect(await lookup(code)).toEqual({ kind: 'invalid' });
    });
  });

  describe('events and the audit log', () => {
    it('records recovery_code.created with the listener as the actor, and whether it replaced one', async () => {
      const { user, key } = await listener();
      await mint(key);
      await mint(key);
      const self = { kind: 'user', userId: user.id, method: 'api-key' };
      expect(await auditOf('recovery_code.created', user.id)).toEqual([
        expect.objectContaining({ actor: self, targetUserId: user.id, detail: { replaced: true } }),
        expect.objectContaining({ actor: self, targetUserId: user.id, detail: { replaced: false } }),
      ]);
    });

    it('a refused mint leaves no entry', async () => {
      const made = await server.usher.users.provisionExternal(
        { provider: 'proxy', subject: 'rc-refused', username: 'rc-refused', name: null, email: null, role: 'user', authSource: 'proxy', usernameTaken: 'suffix', linkEmail: false, create: true },
        SYSTEM_ORIGIN,
      );
      const key = server.usher.users.readApiKey(made!.user)!;
      expect((await c.post(MINE, { key })).status).toBe(403);
      expect(await auditOf('recovery_code.created', made!.user.id)).toEqual([]);
    });

    it('publishes them on the event stream after the change is committed', async () => {
      const { user, key } = await listener();
      const heard: { type: string; committed: boolean }[] = [];
      server.usher.events.on(
        async (e) => {
          if (e.targetUserId !== user.id) return;
          const rows = await server.usher.db('audit_log').where({ type: e.type, target_user_id: user.id });
          heard.push({ type: e.type, committed: rows.length === 1 });
        },
        { types: ['recovery_code.created', 'recovery_code.revoked'], awaited: true },
      );
      await mint(key);
      await c.del(`${USERS}/${user.id}/recovery-code`, { key: adminKey });
      expect(heard).toEqual([
        { type: 'recovery_code.created', committed: true },
        { type: 'recovery_code.revoked', committed: true },
      ]);
    });
  });
});
