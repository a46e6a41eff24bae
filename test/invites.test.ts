import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALPHABET, CODE_LENGTH, displayCode, fingerprintCode, generateCode, parseCode } from '../src/crypto/codes.js';
import { deriveKeys } from '../src/crypto/secret.js';
import { SYSTEM_ORIGIN } from '../src/events/stream.js';
import type { PublicInvite } from '../src/invites/model.js';
import { startServer, type TestServer } from './helpers/app.js';
import { auditEntries } from './helpers/audit.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client } from './helpers/http.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';
const USERS = `${AUTH}/users`;
const DAY = 86_400_000;
const CODE = /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){4}$/;
const plain = (code: string) => code.replaceAll('-', '');

describe('invite codes (crypto/codes.ts)', () => {
  const codes = Array.from({ length: 200 }, generateCode);

  it('are Crockford base32 in five groups of four: 19 random symbols (95 bits, at least 80) and a check symbol', () => {
    for (const code of codes) expect(code).toMatch(CODE);
    expect(CODE_LENGTH).toBe(20);
    expect(ALPHABET).toBe('0123456789ABCDEFGHJKMNPQRSTVWXYZ');
    expect(new Set(codes).size).toBe(codes.length);
    // Every symbol turns up in every random position: none is fixed or biased away.
    for (let pos = 0; pos < 19; pos++) {
      const seen = new Set(Array.from({ length: 2000 }, () => plain(generateCode())[pos]));
      expect(seen.size, `position ${pos}`).toBe(32);
    }
  });

  it('read back whatever the case, with or without hyphens and spaces, O as 0 and I, L as 1', () => {
    for (const code of codes.slice(0, 20)) {
      const normalized = plain(code);
      expect(parseCode(code)).toEqual({ ok: true, normalized });
      expect(parseCode(code.toLowerCase())).toEqual({ ok: true, normalized });
      expect(parseCode(` ${normalized.slice(0, 10)} ${normalized.slice(10)} `)).toEqual({ ok: true, normalized });
      const misread = normalized.replaceAll('0', 'o').replaceAll('1', 'l');
      expect(parseCode(misread)).toEqual({ ok: true, normalized });
      expect(parseCode(normalized.replaceAll('1', 'I'))).toEqual({ ok: true, normalized });
      expect(displayCode(normalized)).toBe(code);
    }
  });

  it('catch every single mistyped symbol as a typo', () => {
    for (const code of codes.slice(0, 20)) {
      const symbols = [...plain(code)];
      for (let pos = 0; pos < symbols.length; pos++) {
        for (const other of ALPHABET) {
          if (other === symbols[pos]) continue;
          const typed = symbols.map((s, i) => (i === pos ? other : s)).join('');
          expect(parseCode(typed), `${code}: ${other} at ${pos}`).toEqual({ ok: false });
        }
      }
    }
  });

  it('catch every swap of neighbours, and of symbols two apart, as a typo', () => {
    for (const code of codes) {
      const symbols = [...plain(code)];
      for (const gap of [1, 2]) {
        for (let pos = 0; pos + gap < symbols.length; pos++) {
          if (symbols[pos] === symbols[pos + gap]) continue;
          const swapped = [...symbols];
          [swapped[pos], swapped[pos + gap]] = [swapped[pos + gap]!, swapped[pos]!];
          expect(parseCode(swapped.join('')), `${code}: ${pos}<->${pos + gap}`).toEqual({ ok: false });
        }
      }
    }
  });

  it('catch a missing or extra symbol and a symbol outside the alphabet (U, punctuation) as a typo', () => {
    const code = plain(codes[0]!);
    for (const typed of [code.slice(1), code + '0', `${code.slice(0, 5)}U${code.slice(6)}`, `${code.slice(0, 5)}*${code.slice(6)}`, '', 'hello']) {
      expect(parseCode(typed), typed).toEqual({ ok: false });
    }
  });

  it('are fingerprinted with an HMAC under a key derived from the server secret, not a plain hash', () => {
    const code = plain(codes[0]!);
    const a = fingerprintCode(deriveKeys('a'.repeat(48)), code);
    const b = fingerprintCode(deriveKeys('b'.repeat(48)), code);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(a).not.toBe(b);
    expect(a).not.toBe(createHash('sha256').update(code).digest('hex'));
    expect(fingerprintCode(deriveKeys('a'.repeat(48)), code)).toBe(a);
  });
});

type Invite = PublicInvite;

describe.each(DB_KINDS)('invites and password-less accounts on %s', (kind) => {
  const PUBLIC_URL = 'https://media.example.com/listen';
  let server: TestServer;
  let c: Client;
  let adminKey: string;
  let n = 0;

  /** A fresh invite-only listener. */
  async function listener(body: Record<string, unknown> = {}) {
    return createUser(server, c, adminKey, { username: `listener-${++n}`, ...body });
  }

  const invitesOf = async (userId: number) => {
    const res = await c.get(`${USERS}/${userId}/invites`, { key: adminKey });
    expect(res.status, res.text).toBe(200);
    return res.body as { active: Invite | null; history: Invite[] };
  };

  async function mint(userId: number, body: Record<string, unknown> = {}) {
    const res = await c.post(`${USERS}/${userId}/invites`, { key: adminKey, body });
    expect(res.status, res.text).toBe(201);
    return res.body as { invite: Invite; code: string; link: string };
  }

  /** What the connect flow will do (a later step): use one use and record the device, in one transaction. */
  async function redeemDirectly(inviteId: number, device: string) {
    await server.usher.db.transaction(async (trx) => {
      const updated = await trx('invites').where({ id: inviteId }).whereNull('ended').whereNotNull('current_for').increment('used', 1);
      expect(updated).toBe(1);
      await trx('invite_redemptions').insert({ invite_id: inviteId, at: Date.now(), device_name: device, device_kind: 'app' });
    });
  }

  const lookup = (code: string) => server.usher.invites.findByCode(code);

  const auditOf = (type: string, userId: number) => auditEntries(server, c, adminKey, type, userId);

  beforeAll(async () => {
    server = await startServer(kind, { settings: { server: { publicUrl: PUBLIC_URL } } });
    c = client(server.url);
    adminKey = await setupAdmin(c);
  });
  afterAll(async () => {
    await server?.close();
  });

  describe('password-less accounts (seed: "Listeners don\'t need passwords")', () => {
    it('"Password - optional for listeners": a user created without one is invite-only (hasPassword false)', async () => {
      const { user } = await listener();
      expect(user.hasPassword).toBe(false);
      const listed = await c.get(`${USERS}?q=${user.username}`, { key: adminKey });
      expect(listed.body).toMatchObject([{ id: user.id, hasPassword: false }]);
    });

    it('"Required for admins": an admin is never created without one', async () => {
      const res = await c.post(USERS, { key: adminKey, body: { username: 'pwless-admin', role: 'admin' } });
      expect(res.status).toBe(409);
      expect(errorCode(res)).toBe('user.admin_needs_password');
    });

    it('"they can set one themselves later": an invite-only user sets a first password without a current one, then the usual rule applies', async () => {
      const { user, key } = await listener();
      const first = await c.put(`${AUTH}/me`, { key, body: { password: 'first-own-password' } });
      expect(first.status, first.text).toBe(200);
      expect(first.body.hasPassword).toBe(true);
      const again = await c.put(`${AUTH}/me`, { key, body: { password: 'second-own-password' } });
      expect(again.status).toBe(400);
      expect(again.body.error.message).toMatch(/^currentPassword:/);
      const wrong = await c.put(`${AUTH}/me`, { key, body: { password: 'second-own-password', currentPassword: 'not-the-password' } });
      expect(errorCode(wrong)).toBe('user.wrong_current_password');
      const right = await c.put(`${AUTH}/me`, { key, body: { password: 'second-own-password', currentPassword: 'first-own-password' } });
      expect(right.status).toBe(200);
      const login = await c.post(`${AUTH}/login`, { body: { username: user.username, password: 'second-own-password' } });
      expect(login.status).toBe(200);
    });

    it('two first passwords sent at once: exactly one is set, the other needs the current password', async () => {
      const { user, key } = await listener();
      const replies = await Promise.all(
        ['racing-password-a', 'racing-password-b'].map((password) => c.put(`${AUTH}/me`, { key, body: { password } })),
      );
      expect(replies.map((r) => r.status).sort()).toEqual([200, 400]);
      const lost = replies.find((r) => r.status === 400)!;
      expect(lost.body.error.message).toMatch(/^currentPassword:/);
      const won = replies.indexOf(replies.find((r) => r.status === 200)!);
      const login = await c.post(`${AUTH}/login`, { body: { username: user.username, password: won === 0 ? 'racing-password-a' : 'racing-password-b' } });
      expect(login.status).toBe(200);
    });

    it('a listener cannot clear their own password; "saving an empty password clears it" is the admin\'s `password: null`', async () => {
      const { user, key } = await listener({ password: 'has-a-password' });
      const own = await c.put(`${AUTH}/me`, { key, body: { password: null } });
      expect(own.status).toBe(403);
      const cleared = await c.put(`${USERS}/${user.id}`, { key: adminKey, body: { password: null } });
      expect(cleared.status).toBe(200);
      expect(cleared.body.hasPassword).toBe(false);
      const login = await c.post(`${AUTH}/login`, { body: { username: user.username, password: 'has-a-password' } });
      expect(errorCode(login)).toBe('auth.invalid_credentials');
    });

    it('"Admins must keep a password": clearing an admin\'s is refused', async () => {
      const { user } = await createUser(server, c, adminKey, { username: 'keeps-password', password: 'admin-password-2', role: 'admin' });
      const res = await c.put(`${USERS}/${user.id}`, { key: adminKey, body: { password: null } });
      expect(res.status).toBe(409);
      expect(errorCode(res)).toBe('user.admin_needs_password');
      expect((await c.get(`${USERS}/${user.id}`, { key: adminKey })).body.hasPassword).toBe(true);
    });

    it('"Promoting an account to admin requires it to have a password first"', async () => {
      const { user, key } = await listener();
      const promote = await c.put(`${USERS}/${user.id}`, { key: adminKey, body: { role: 'admin' } });
      expect(promote.status).toBe(409);
      expect(errorCode(promote)).toBe('user.admin_needs_password');
      expect((await c.put(`${AUTH}/me`, { key, body: { password: 'now-i-have-one' } })).status).toBe(200);
      const again = await c.put(`${USERS}/${user.id}`, { key: adminKey, body: { role: 'admin' } });
      expect(again.status, again.text).toBe(200);
      expect(again.body.role).toBe('admin');
    });
  });

  describe('creating an invite', () => {
    it('answers 201 with the invite, the code and the link to the connect page with the code after #, shown this once', async () => {
      const { user } = await listener();
      const made = await mint(user.id, {});
      expect(made.code).toMatch(CODE);
      expect(made.link).toBe(`${PUBLIC_URL}/connect#code=${made.code}`);
      expect(made.invite).toMatchObject({ userId: user.id, state: 'pending', uses: 5, usesLeft: 5, expiresInDays: 1, createdBy: 1, resentAt: null, endedAt: null });
      expect(made.invite.redemptions).toEqual({ count: 0, lastAt: null, devices: [] });
      // Defaults: 5 uses, 1 day.
      expect(Date.parse(made.invite.expiresAt!) - Date.parse(made.invite.createdAt)).toBe(DAY);
      const listed = await c.get(`${USERS}/${user.id}/invites`, { key: adminKey });
      expect(listed.body.active).toEqual(made.invite);
      expect(listed.text).not.toContain(made.code);
      expect(listed.text).not.toContain(plain(made.code));
      expect(listed.text).not.toMatch(/"code"|"link"|fingerprint/);
    });

    it.each([
      ['1 use, 7 days', { uses: 1, expiresInDays: 7 }, 1, 7],
      ['unlimited uses, never expires', { uses: null, expiresInDays: null }, null, null],
      ['a custom number of uses and days', { uses: 1000, expiresInDays: 365 }, 1000, 365],
      ['30 days with the default uses', { expiresInDays: 30 }, 5, 30],
    ])('takes %s', async (_what, body, uses, days) => {
      const { user } = await listener();
      const { invite } = await mint(user.id, body);
      expect(invite).toMatchObject({ uses, usesLeft: uses, expiresInDays: days });
      if (days === null) expect(invite.expiresAt).toBeNull();
      else expect(Date.parse(invite.expiresAt!) - Date.parse(invite.createdAt)).toBe(days * DAY);
    });

    it.each([
      [{ uses: 0 }, 'uses'],
      [{ uses: 1001 }, 'uses'],
      [{ uses: 2.5 }, 'uses'],
      [{ uses: '5' }, 'uses'],
      [{ expiresInDays: 0 }, 'expiresInDays'],
      [{ expiresInDays: 366 }, 'expiresInDays'],
      [{ expiresInDays: true }, 'expiresInDays'],
      [{ code: 'ABCD' }, 'code'],
    ])('refuses %j with 400 naming the field', async (body, field) => {
      const { user } = await listener();
      const res = await c.post(`${USERS}/${user.id}/invites`, { key: adminKey, body });
      expect(res.status).toBe(400);
      expect(errorCode(res)).toBe('request.invalid');
      expect(res.body.error.message.startsWith(`${field}:`)).toBe(true);
      expect((await invitesOf(user.id)).history).toEqual([]);
    });

    it('is for admins only, and for users that exist', async () => {
      const { user, key } = await listener();
      for (const [method, path] of [
        ['POST', `${USERS}/${user.id}/invites`],
        ['GET', `${USERS}/${user.id}/invites`],
      ] as const) {
        const res = await c.call(method, path, { key, body: method === 'POST' ? {} : undefined });
        expect(res.status).toBe(403);
        expect(errorCode(res)).toBe('auth.forbidden');
      }
      const missing = await c.post(`${USERS}/999999/invites`, { key: adminKey, body: {} });
      expect(missing.status).toBe(404);
      expect(errorCode(missing)).toBe('user.not_found');
      expect(errorCode(await c.get(`${USERS}/999999/invites`, { key: adminKey }))).toBe('user.not_found');
    });

    it('is refused for an external account that may not sign in with a local password (it would go around its provider)', async () => {
      const made = await server.usher.users.provisionExternal(
        { provider: 'proxy', subject: 'ext-listener', username: 'ext-listener', name: null, email: null, role: 'user', authSource: 'proxy', usernameTaken: 'suffix', linkEmail: false, create: true },
        SYSTEM_ORIGIN,
      );
      const id = made!.user.id;
      const refused = await c.post(`${USERS}/${id}/invites`, { key: adminKey, body: {} });
      expect(refused.status).toBe(403);
      expect(errorCode(refused)).toBe('user.password_login_off');
      expect((await c.put(`${USERS}/${id}`, { key: adminKey, body: { passwordLogin: true } })).status).toBe(200);
      await mint(id);
    });
  });

  describe('one active invite per user', () => {
    it('"Creating a new one automatically retires any older invite that could still be redeemed" (replaced); its code stops', async () => {
      const { user } = await listener();
      const first = await mint(user.id, { uses: 3, expiresInDays: 7 });
      const second = await mint(user.id);
      const { active, history } = await invitesOf(user.id);
      expect(active!.id).toBe(second.invite.id);
      expect(history).toMatchObject([{ id: first.invite.id, state: 'replaced', uses: 3, usesLeft: 3 }]);
      expect(history[0]!.endedAt).not.toBeNull();
      expect(await lookup(first.code)).toMatchObject({ kind: 'found', invite: { id: first.invite.id, ended: 'replaced', current: false } });
      expect(await lookup(second.code)).toMatchObject({ kind: 'found', invite: { id: second.invite.id, ended: null, current: true } });
    });

    it('"Spent and expired invites aren\'t deleted - they collapse into the History list"; a new one does not mark them replaced', async () => {
      const { user } = await listener();
      const spent = await mint(user.id, { uses: 2 });
      await redeemDirectly(spent.invite.id, 'Pixel 8');
      await redeemDirectly(spent.invite.id, 'Living-room TV');
      let seen = await invitesOf(user.id);
      expect(seen.active).toBeNull();
      expect(seen.history).toMatchObject([{ id: spent.invite.id, state: 'used_up', usesLeft: 0, redemptions: { count: 2, devices: ['Living-room TV', 'Pixel 8'] } }]);
      expect(seen.history[0]!.redemptions.lastAt).not.toBeNull();

      const expiring = await mint(user.id, { expiresInDays: 7 });
      await server.usher.db('invites').where({ id: expiring.invite.id }).update({ expires_at: Date.now() - 1 });
      seen = await invitesOf(user.id);
      expect(seen.active).toBeNull();
      expect(seen.history.map((i) => [i.id, i.state])).toEqual([
        [expiring.invite.id, 'expired'],
        [spent.invite.id, 'used_up'],
      ]);

      const fresh = await mint(user.id);
      seen = await invitesOf(user.id);
      expect(seen.active!.id).toBe(fresh.invite.id);
      expect(seen.history.map((i) => [i.id, i.state])).toEqual([
        [expiring.invite.id, 'expired'],
        [spent.invite.id, 'used_up'],
      ]);
      expect((await auditOf('invite.created', user.id))[0]!.detail).toMatchObject({ inviteId: fresh.invite.id, replaced: null });
    });

    it('parallel creates leave exactly one active invite, the others replaced', async () => {
      const { user } = await listener();
      const made = await Promise.all(Array.from({ length: 10 }, () => c.post(`${USERS}/${user.id}/invites`, { key: adminKey, body: {} })));
      expect(made.map((r) => r.status)).toEqual(Array(10).fill(201));
      const { active, history } = await invitesOf(user.id);
      expect(active).not.toBeNull();
      expect(history).toHaveLength(9);
      expect(history.every((i) => i.state === 'replaced')).toBe(true);
      const rows = await server.usher.db('invites').where({ user_id: user.id }).whereNotNull('current_for');
      expect(rows).toHaveLength(1);
      const pending = [];
      for (const r of made) {
        const found = await lookup(r.body.code);
        if (found.kind === 'found' && found.invite.ended === null) pending.push(found.invite.id);
      }
      expect(pending).toEqual([active!.id]);
    });

    it('the database itself refuses a second current invite for a user', async () => {
      const { user } = await listener();
      await mint(user.id);
      const second = server.usher.db('invites').insert({
        user_id: user.id,
        code_fingerprint: 'f'.repeat(64),
        current_for: user.id,
        uses: 1,
        used: 0,
        created_at: Date.now(),
      });
      await expect(second).rejects.toThrow(/unique|UNIQUE/);
    });
  });

  describe('resending', () => {
    it('"regenerates the secret in place": the old code stops at once, the new one is answered once, uses and the window are kept', async () => {
      const { user } = await listener();
      const made = await mint(user.id, { uses: 4, expiresInDays: 7 });
      await redeemDirectly(made.invite.id, 'Phone');
      // Pretend it was made three days ago: the resend must give 7 days again from now, not the rest.
      await server.usher.db('invites').where({ id: made.invite.id }).update({ expires_at: Date.parse(made.invite.expiresAt!) - 3 * DAY });
      const res = await c.post(`${USERS}/${user.id}/invites/${made.invite.id}/resend`, { key: adminKey });
      expect(res.status, res.text).toBe(200);
      const resent = res.body as { invite: Invite; code: string; link: string };
      expect(resent.code).toMatch(CODE);
      expect(resent.code).not.toBe(made.code);
      expect(resent.link).toBe(`${PUBLIC_URL}/connect#code=${resent.code}`);
      expect(resent.invite).toMatchObject({ id: made.invite.id, state: 'pending', uses: 4, usesLeft: 3, expiresInDays: 7, redemptions: { count: 1 } });
      expect(Date.parse(resent.invite.expiresAt!) - Date.parse(resent.invite.resentAt!)).toBe(7 * DAY);
      expect(await lookup(made.code)).toEqual({ kind: 'invalid' });
      expect(await lookup(resent.code)).toMatchObject({ kind: 'found', invite: { id: made.invite.id } });
      expect((await invitesOf(user.id)).active).toEqual(resent.invite);
    });

    it('"a never-expiring one stays so"', async () => {
      const { user } = await listener();
      const made = await mint(user.id, { uses: null, expiresInDays: null });
      const res = await c.post(`${USERS}/${user.id}/invites/${made.invite.id}/resend`, { key: adminKey });
      expect(res.body.invite).toMatchObject({ uses: null, usesLeft: null, expiresInDays: null, expiresAt: null, state: 'pending' });
    });

    it('only a pending invite, of that user', async () => {
      const { user } = await listener();
      const other = await listener();
      const made = await mint(user.id, { uses: 1 });
      const foreign = await c.post(`${USERS}/${other.user.id}/invites/${made.invite.id}/resend`, { key: adminKey });
      expect(foreign.status).toBe(404);
      expect(errorCode(foreign)).toBe('invite.not_found');
      const unknown = await c.post(`${USERS}/${user.id}/invites/999999/resend`, { key: adminKey });
      expect(errorCode(unknown)).toBe('invite.not_found');
      await redeemDirectly(made.invite.id, 'Tablet');
      const spent = await c.post(`${USERS}/${user.id}/invites/${made.invite.id}/resend`, { key: adminKey });
      expect(spent.status).toBe(409);
      expect(errorCode(spent)).toBe('invite.not_active');
      expect(spent.body.error.message).toMatch(/used up/);
      const bad = await c.post(`${USERS}/${user.id}/invites/abc/resend`, { key: adminKey });
      expect(bad.status).toBe(400);
      expect(bad.body.error.message).toMatch(/^inviteId:/);
    });
  });

  describe('revoking', () => {
    it('"To kill an invite outright, click Revoke": its code stops and it stays in the history', async () => {
      const { user } = await listener();
      const made = await mint(user.id);
      const res = await c.del(`${USERS}/${user.id}/invites/${made.invite.id}`, { key: adminKey });
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ id: made.invite.id, state: 'revoked' });
      expect(res.body.endedAt).not.toBeNull();
      const { active, history } = await invitesOf(user.id);
      expect(active).toBeNull();
      expect(history).toEqual([res.body]);
      expect(await lookup(made.code)).toMatchObject({ kind: 'found', invite: { ended: 'revoked', current: false } });
      const twice = await c.del(`${USERS}/${user.id}/invites/${made.invite.id}`, { key: adminKey });
      expect(twice.status).toBe(409);
      expect(errorCode(twice)).toBe('invite.not_active');
      const resend = await c.post(`${USERS}/${user.id}/invites/${made.invite.id}/resend`, { key: adminKey });
      expect(errorCode(resend)).toBe('invite.not_active');
    });

    it('needs invites:revoke', async () => {
      const { user, key } = await listener();
      const made = await mint(user.id);
      const res = await c.del(`${USERS}/${user.id}/invites/${made.invite.id}`, { key });
      expect(res.status).toBe(403);
      expect((await invitesOf(user.id)).active!.id).toBe(made.invite.id);
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
      expect(tables).toEqual(expect.arrayContaining(['invites', 'invite_redemptions', 'audit_log', 'users']));
      const dump: unknown[] = [];
      for (const table of tables) dump.push(table, await db(table).select('*'));
      return JSON.stringify(dump);
    }

    it('"the server keeps only a fingerprint": no table holds a code in any recoverable form', async () => {
      const { user } = await listener();
      const first = await mint(user.id);
      const resent = (await c.post(`${USERS}/${user.id}/invites/${first.invite.id}/resend`, { key: adminKey })).body as { code: string };
      const second = await mint(user.id, { uses: null });
      await server.usher.audit.flush();
      const dump = (await everything()).toUpperCase();
      const keys = deriveKeys(readFileSync(join(server.dataDir, 'secret'), 'utf8').trim());
      for (const code of [first.code, resent.code, second.code]) {
        const normalized = plain(code);
        expect(dump).not.toContain(code);
        expect(dump).not.toContain(normalized);
        expect(dump).not.toContain(normalized.slice(0, 12));
        for (const digest of ['sha256', 'sha1', 'md5']) {
          expect(dump).not.toContain(createHash(digest).update(normalized).digest('hex').toUpperCase());
          expect(dump).not.toContain(createHash(digest).update(code).digest('hex').toUpperCase());
        }
      }
      // What is there: the keyed fingerprint of the live codes only.
      const rows = await server.usher.db('invites').where({ user_id: user.id }).orderBy('id');
      expect(rows.map((r: { code_fingerprint: string }) => r.code_fingerprint)).toEqual([fingerprintCode(keys, plain(resent.code)), fingerprintCode(keys, plain(second.code))]);
    });
  });

  describe('events and the audit log', () => {
    it('records invite.created, invite.resent and invite.revoked with the admin as the actor, the user as the target', async () => {
      const { user } = await listener();
      const first = await mint(user.id, { uses: 2, expiresInDays: 7 });
      const second = await mint(user.id, { uses: null, expiresInDays: null });
      await c.post(`${USERS}/${user.id}/invites/${second.invite.id}/resend`, { key: adminKey });
      await c.del(`${USERS}/${user.id}/invites/${second.invite.id}`, { key: adminKey });
      // A refused change leaves no entry.
      expect((await c.del(`${USERS}/${user.id}/invites/${second.invite.id}`, { key: adminKey })).status).toBe(409);
      const admin = { kind: 'user', userId: 1, method: 'api-key' };
      expect(await auditOf('invite.created', user.id)).toMatchObject([
        { actor: admin, targetUserId: user.id, detail: { inviteId: second.invite.id, uses: null, expiresInDays: null, replaced: first.invite.id } },
        { actor: admin, targetUserId: user.id, detail: { inviteId: first.invite.id, uses: 2, expiresInDays: 7, replaced: null } },
      ]);
      expect(await auditOf('invite.resent', user.id)).toMatchObject([{ actor: admin, detail: { inviteId: second.invite.id } }]);
      expect(await auditOf('invite.revoked', user.id)).toMatchObject([{ actor: admin, detail: { inviteId: second.invite.id } }]);
    });

    it('publishes them on the event stream after the change is committed', async () => {
      const { user } = await listener();
      const heard: { type: string; committed: boolean }[] = [];
      server.usher.events.on(
        async (e) => {
          if (e.targetUserId !== user.id) return;
          const rows = await server.usher.db('audit_log').where({ type: e.type, target_user_id: user.id });
          heard.push({ type: e.type, committed: rows.length === 1 });
        },
        { types: ['invite.created'], awaited: true },
      );
      await mint(user.id);
      expect(heard).toEqual([{ type: 'invite.created', committed: true }]);
    });
  });

  it('deleting a user removes their invites and redemptions', async () => {
    const { user } = await listener();
    const made = await mint(user.id);
    await redeemDirectly(made.invite.id, 'Phone');
    expect((await c.del(`${USERS}/${user.id}`, { key: adminKey })).status).toBe(200);
    expect(await server.usher.db('invites').where({ user_id: user.id })).toEqual([]);
    expect(await server.usher.db('invite_redemptions').where({ invite_id: made.invite.id })).toEqual([]);
    expect(await lookup(made.code)).toEqual({ kind: 'invalid' });
  });

  it('a typed code with a typo is told apart from a wrong one', async () => {
    const { user } = await listener();
    const { code } = await mint(user.id);
    const symbols = [...plain(code)];
    symbols[3] = symbols[3] === 'A' ? 'B' : 'A';
    expect(await lookup(symbols.join(''))).toEqual({ kind: 'typo' });
    expect(await lookup(generateCode())).toEqual({ kind: 'invalid' });
    expect(await lookup(code.toLowerCase().replaceAll('-', ' '))).toMatchObject({ kind: 'found' });
  });
});

describe('the invite link without server.publicUrl', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer('sqlite');
  });
  afterAll(() => server.close());

  it("is on the request's own scheme and host", async () => {
    const c = client(server.url);
    const adminKey = await setupAdmin(c);
    const { user } = await createUser(server, c, adminKey, { username: 'nourl' });
    const res = await c.post(`${USERS}/${user.id}/invites`, { key: adminKey, body: {} });
    expect(res.body.link).toBe(`${server.url}/connect#code=${res.body.code}`);
  });
});
