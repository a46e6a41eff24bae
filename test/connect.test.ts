import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCode } from '../src/crypto/codes.js';
import { startBehindLoopbackProxy, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client, type Jar } from './helpers/http.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';
const USERS = `${AUTH}/users`;

/** The check symbol that makes `payload` (19 symbols) a valid code. */
function checkFor(payload: string): string {
  for (const symbol of '0123456789ABCDEFGHJKMNPQRSTVWXYZ') if (parseCode(payload + symbol).ok) return symbol;
  throw new Error('no check symbol');
}
/** A well-formed code nobody was given. */
const UNKNOWN = `7ZZZZZZZZZZZZZZZZZZ${checkFor('7ZZZZZZZZZZZZZZZZZZ')}`;

/** The same code with one symbol changed: a typo its check symbol catches. */
function typo(code: string): string {
  const plain = code.replaceAll('-', '');
  const swapped = plain[0] === '2' ? `3${plain.slice(1)}` : `2${plain.slice(1)}`;
  expect(parseCode(swapped).ok).toBe(false);
  return swapped;
}

describe.each(DB_KINDS)('POST /connect on %s', (kind) => {
  let server: TestServer;
  let c: Client;
  let adminKey: string;
  let address = 0;
  /** Each test from its own client address (X-Forwarded-For from the trusted loopback proxy), so the limits of one do not reach another. */
  const from = (n = address) => ({ 'X-Forwarded-For': `203.0.113.${n}` });

  beforeAll(async () => {
    server = await startBehindLoopbackProxy(kind);
    c = client(server.url);
    adminKey = await setupAdmin(c);
  });
  afterAll(() => server?.close());

  let listenerSeq = 0;
  async function listener() {
    const { user } = await createUser(server, c, adminKey, { username: `listener${++listenerSeq}` });
    return user.id as number;
  }
  async function invite(userId: number, body: Record<string, unknown> = {}) {
    const res = await c.post(`${USERS}/${userId}/invites`, { key: adminKey, body });
    expect(res.status, res.text).toBe(201);
    return { id: res.body.invite.id as number, code: res.body.code as string };
  }
  const connect = (body: Record<string, unknown>, jar?: Jar, n = address) => client(server.url, jar).post(`${AUTH}/connect`, { body, headers: from(n) });
  async function state(userId: number, inviteId: number) {
    const res = await c.get(`${USERS}/${userId}/invites`, { key: adminKey });
    return [res.body.active, ...res.body.history].find((i) => i?.id === inviteId);
  }

  it('signs a browser in with a session cookie, spending one use and noting the device', async () => {
    address = 1;
    const id = await listener();
    const { id: inviteId, code } = await invite(id, { uses: 2 });
    const jar: Jar = {};
    const res = await connect({ code: code.toLowerCase(), device: { name: 'Living-room TV' } }, jar);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ user: { id, username: `listener${listenerSeq}`, hasPassword: false }, via: 'invite' });
    expect(res.body.token).toBeUndefined();
    expect(jar.cookie).toMatch(/^usher\.sid=/);
    const me = await client(server.url, jar).get(`${AUTH}/me`);
    expect(me.body.id).toBe(id);
    const sessions = await client(server.url, jar).get(`${AUTH}/me/sessions`);
    expect(sessions.body).toEqual([expect.objectContaining({ kind: 'browser', name: 'Living-room TV', current: true })]);
    expect(await state(id, inviteId)).toMatchObject({ state: 'pending', usesLeft: 1, redemptions: { count: 1, devices: ['Living-room TV'] } });
    expect(me.body.lastLoginAt).not.toBeNull();
  });

  it('gives an app a device token instead, which then authenticates it', async () => {
    address = 2;
    const id = await listener();
    const { code } = await invite(id, { uses: 1 });
    const res = await connect({ code, device: { name: 'Pixel 8', kind: 'app' } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.token).toMatch(/^usd_/);
    expect(res.headers.getSetCookie()).toEqual([]);
    const me = await c.get(`${AUTH}/me`, { headers: { Authorization: `Bearer ${res.body.token}` } });
    expect(me.status).toBe(200);
    expect(me.body.id).toBe(id);
    const sessions = await c.get(`${AUTH}/me/sessions`, { headers: { Authorization: `Bearer ${res.body.token}` } });
    expect(sessions.body).toEqual([expect.objectContaining({ kind: 'app', name: 'Pixel 8', current: true })]);
  });

  it.each([
    ['a typo', (code: string) => typo(code), 400, 'invite.typo'],
    ['an unknown code', () => UNKNOWN, 401, 'invite.invalid'],
  ])('answers %s without spending a use', async (_what, make, status, code) => {
    address = 3;
    const id = await listener();
    const made = await invite(id, { uses: 1 });
    const res = await connect({ code: make(made.code) });
    expect(res.status, res.text).toBe(status);
    expect(errorCode(res)).toBe(code);
    expect(await state(id, made.id)).toMatchObject({ state: 'pending', usesLeft: 1 });
  });

  it('answers used_up, revoked, replaced and expired codes by their state', async () => {
    address = 4;
    const id = await listener();
    const once = await invite(id, { uses: 1 });
    expect((await connect({ code: once.code })).status).toBe(200);
    expect(errorCode(await connect({ code: once.code }))).toBe('invite.used_up');

    const revoked = await invite(id);
    expect((await c.del(`${USERS}/${id}/invites/${revoked.id}`, { key: adminKey })).status).toBe(200);
    expect(errorCode(await connect({ code: revoked.code }))).toBe('invite.revoked');

    const old = await invite(id);
    await invite(id);
    expect(errorCode(await connect({ code: old.code }))).toBe('invite.replaced');

    const expiring = await invite(id, { expiresInDays: 1 });
    await server.usher.db('invites').where({ id: expiring.id }).update({ expires_at: Date.now() - 1 });
    const res = await connect({ code: expiring.code });
    expect(res.status).toBe(410);
    expect(errorCode(res)).toBe('invite.expired');
  });

  it('refuses a disabled account without spending a use, and redeems again once it is enabled', async () => {
    address = 5;
    const id = await listener();
    const made = await invite(id, { uses: 1 });
    expect((await c.post(`${USERS}/${id}/status`, { key: adminKey, body: { active: false } })).status).toBe(200);
    const refused = await connect({ code: made.code });
    expect(refused.status).toBe(403);
    expect(errorCode(refused)).toBe('auth.account_disabled');
    expect(await state(id, made.id)).toMatchObject({ state: 'pending', usesLeft: 1 });
    expect((await c.post(`${USERS}/${id}/status`, { key: adminKey, body: { active: true } })).status).toBe(200);
    expect((await connect({ code: made.code })).status).toBe(200);
  });

  it.each([
    [1, 1],
    [5, 5],
  ])('gives exactly %i successes to 20 parallel redemptions of a %i-use invite', async (uses, successes) => {
    address = 6;
    const id = await listener();
    const made = await invite(id, { uses });
    // From 20 addresses: one address's attempts in flight count against its limits before they are checked.
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => connect({ code: made.code, device: { name: `tv ${i}`, kind: 'app' } }, undefined, 100 + i)));
    const ok = replies.filter((r) => r.status === 200);
    expect(ok).toHaveLength(successes);
    for (const r of replies.filter((r) => r.status !== 200)) expect(errorCode(r)).toBe('invite.used_up');
    expect(await state(id, made.id)).toMatchObject({ state: 'used_up', usesLeft: 0, redemptions: { count: successes } });
    const tokens = Number((await server.usher.db('device_tokens').where({ user_id: id }).count({ n: '*' }).first())!.n);
    expect(tokens).toBe(successes);
  });

  it('never lets the old code win once a resend has answered, nor a redemption after a revoke', async () => {
    address = 7;
    const id = await listener();
    const made = await invite(id, { uses: 100 });
    // Racing: every redemption either wins before the resend commits or is refused after.
    const racing = Array.from({ length: 10 }, (_, i) => connect({ code: made.code }, undefined, 130 + i));
    const resent = await c.post(`${USERS}/${id}/invites/${made.id}/resend`, { key: adminKey });
    expect(resent.status).toBe(200);
    await Promise.all(racing);
    // After the resend answered, the old code is unknown; the new one works.
    const late = await connect({ code: made.code });
    expect(errorCode(late)).toBe('invite.invalid');
    expect((await connect({ code: resent.body.code })).status).toBe(200);

    const racingRevoke = Array.from({ length: 10 }, (_, i) => connect({ code: resent.body.code }, undefined, 150 + i));
    expect((await c.del(`${USERS}/${id}/invites/${made.id}`, { key: adminKey })).status).toBe(200);
    const before = (await state(id, made.id)).redemptions.count;
    await Promise.all(racingRevoke);
    expect(errorCode(await connect({ code: resent.body.code }))).toBe('invite.revoked');
    expect((await state(id, made.id)).redemptions.count).toBe(before);
  });

  it('limits failed attempts per client address, and typos do not count', async () => {
    address = 8;
    const id = await listener();
    const made = await invite(id);
    for (let i = 0; i < 15; i++) expect(errorCode(await connect({ code: typo(made.code) }))).toBe('invite.typo');
    for (let i = 0; i < 10; i++) expect(errorCode(await connect({ code: UNKNOWN }))).toBe('invite.invalid');
    const limited = await connect({ code: made.code });
    expect(limited.status).toBe(429);
    expect(errorCode(limited)).toBe('auth.too_many_attempts');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another address is not held back.
    expect((await connect({ code: made.code }, undefined, 9)).status).toBe(200);
  });

  it('records the redemption by the system, and failures, in the audit log', async () => {
    address = 10;
    const id = await listener();
    const made = await invite(id);
    expect((await connect({ code: made.code, device: { name: 'Kitchen speaker' } })).status).toBe(200);
    expect(errorCode(await connect({ code: UNKNOWN }))).toBe('invite.invalid');
    await server.usher.audit.flush();
    const redeemed = await c.get(`${AUTH}/audit?type=invite.redeemed&user=${id}`, { key: adminKey });
    expect(redeemed.body).toEqual([expect.objectContaining({ actor: { kind: 'system' }, targetUserId: id, detail: expect.objectContaining({ inviteId: made.id, device: 'Kitchen speaker' }) })]);
    const failed = await c.get(`${AUTH}/audit?type=invite.redeem_failed`, { key: adminKey });
    expect(failed.body[0]).toMatchObject({ actor: { kind: 'anonymous' }, ip: '203.0.113.10', detail: { reason: 'invalid' } });
    expect(JSON.stringify(failed.body)).not.toContain(UNKNOWN.slice(0, 8));
  });

  describe('with a recovery code', () => {
    /** A listener signed in on one device (an app), who mints their recovery code there. */
    async function listenerWithCode() {
      const id = await listener();
      const made = await invite(id);
      const app = await connect({ code: made.code, device: { name: 'Phone', kind: 'app' } });
      const bearer = { Authorization: `Bearer ${app.body.token}` };
      const minted = await c.post(`${AUTH}/me/recovery-code`, { headers: bearer });
      expect(minted.status, minted.text).toBe(201);
      return { id, bearer, code: minted.body.code as string };
    }

    it('signs a new device in, any number of times, and the answer says it was the recovery code', async () => {
      address = 20;
      const { id, code } = await listenerWithCode();
      for (const name of ['New phone', 'Tablet']) {
        const res = await connect({ code, device: { name, kind: 'app' } });
        expect(res.status, res.text).toBe(200);
        expect(res.body).toMatchObject({ user: { id, recoveryCode: 'set' }, via: 'recovery_code' });
        expect((await c.get(`${AUTH}/me`, { headers: { Authorization: `Bearer ${res.body.token}` } })).body.id).toBe(id);
      }
      const jar: Jar = {};
      expect((await connect({ code, device: { name: 'Laptop' } }, jar)).status).toBe(200);
      expect((await client(server.url, jar).get(`${AUTH}/me`)).body.id).toBe(id);
      const audit = await c.get(`${AUTH}/audit?type=recovery_code.redeemed&user=${id}`, { key: adminKey });
      expect(audit.body).toHaveLength(3);
      expect(audit.body[0]).toMatchObject({ actor: { kind: 'system' }, detail: { device: 'Laptop', kind: 'browser' } });
    });

    it('stops at once when replaced or revoked, and is refused while the account is disabled', async () => {
      address = 21;
      const { id, bearer, code } = await listenerWithCode();
      const again = await c.post(`${AUTH}/me/recovery-code`, { headers: bearer });
      expect(errorCode(await connect({ code }))).toBe('invite.invalid');
      expect((await c.post(`${USERS}/${id}/status`, { key: adminKey, body: { active: false } })).status).toBe(200);
      expect(errorCode(await connect({ code: again.body.code }))).toBe('auth.account_disabled');
      expect((await c.post(`${USERS}/${id}/status`, { key: adminKey, body: { active: true } })).status).toBe(200);
      expect((await connect({ code: again.body.code })).status).toBe(200);
      expect((await c.del(`${USERS}/${id}/recovery-code`, { key: adminKey })).status).toBe(204);
      expect(errorCode(await connect({ code: again.body.code }))).toBe('invite.invalid');
    });

    it('never wins against a revoke that answered first, even racing', async () => {
      address = 22;
      const { id, code } = await listenerWithCode();
      const racing = Array.from({ length: 10 }, (_, i) => connect({ code, device: { kind: 'app' } }, undefined, 170 + i));
      expect((await c.del(`${USERS}/${id}/recovery-code`, { key: adminKey })).status).toBe(204);
      const results = await Promise.all(racing);
      const won = results.filter((r) => r.status === 200).length;
      expect(errorCode(await connect({ code }))).toBe('invite.invalid');
      // Every winner was signed in before the revoke: its device is listed, and nothing after it is.
      const devices = Number((await server.usher.db('device_tokens').where({ user_id: id }).count({ n: '*' }).first())!.n);
      expect(devices).toBe(won + 1);
    });
  });

  it('refuses a cross-site redemption like a cross-site login', async () => {
    address = 11;
    const id = await listener();
    const made = await invite(id);
    const res = await client(server.url).post(`${AUTH}/connect`, { body: { code: made.code }, headers: { ...from(11), Origin: 'https://evil.example' } });
    expect(res.status).toBe(403);
    expect(errorCode(res)).toBe('auth.csrf');
  });

  it('answers a malformed body with a 400 naming the field', async () => {
    address = 12;
    for (const [body, message] of [
      [{}, 'code: Invalid input: expected string, received undefined'],
      [{ code: 'x', device: { kind: 'tv' } }, 'device.kind'],
      [{ code: 'x', device: { name: 'a\u202eb' } }, 'device.name'],
      [{ code: 'x'.repeat(65) }, 'code: must be at most 64 characters'],
    ] as const) {
      const res = await connect(body as Record<string, unknown>);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.message).toContain(message);
    }
  });
});


describe.each(DB_KINDS)('POST /connect against a change made meanwhile, on %s', (kind) => {
  let server: TestServer;
  let c: Client;
  let adminKey: string;
  beforeAll(async () => {
    server = await startBehindLoopbackProxy(kind);
    c = client(server.url);
    adminKey = await setupAdmin(c);
  });
  afterAll(() => server?.close());

  it('leaves no working device token from apps connecting while the account is disabled', async () => {
    for (let round = 0; round < 3; round++) {
      const { user } = await createUser(server, c, adminKey, { username: `racer${round}` });
      const made = await c.post(`${USERS}/${user.id}/invites`, { key: adminKey, body: { uses: null } });
      const racing = Array.from({ length: 15 }, (_, i) =>
        client(server.url).post(`${AUTH}/connect`, { body: { code: made.body.code, device: { kind: 'app' } }, headers: { 'X-Forwarded-For': `192.0.2.${i + 1}` } }),
      );
      expect((await c.post(`${USERS}/${user.id}/status`, { key: adminKey, body: { active: false } })).status).toBe(200);
      const replies = await Promise.all(racing);
      expect((await c.post(`${USERS}/${user.id}/status`, { key: adminKey, body: { active: true } })).status).toBe(200);
      for (const r of replies.filter((r) => r.status === 200)) {
        expect((await c.get(`${AUTH}/me`, { headers: { Authorization: `Bearer ${r.body.token}` } })).status).toBe(401);
      }
    }
  });

  it('refuses an invite of an external account once its password login is turned off', async () => {
    const { user } = await createUser(server, c, adminKey, { username: 'external' });
    await server.usher.db('users').where({ id: user.id }).update({ auth_source: 'oidc:kc', password_login: true });
    const made = await c.post(`${USERS}/${user.id}/invites`, { key: adminKey, body: {} });
    expect(made.status, made.text).toBe(201);
    expect((await c.put(`${USERS}/${user.id}`, { key: adminKey, body: { passwordLogin: false } })).status).toBe(200);
    const res = await client(server.url).post(`${AUTH}/connect`, { body: { code: made.body.code }, headers: { 'X-Forwarded-For': '192.0.2.99' } });
    expect(res.status).toBe(403);
    expect(errorCode(res)).toBe('user.password_login_off');
  });
});
