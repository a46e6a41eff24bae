import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBehindLoopbackProxy, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client, type Jar } from './helpers/http.js';
import { setupAdmin } from './helpers/users.js';

/**
 * Seed 004 ("Users and invites"), sentence by sentence, over HTTP: each test is named after what the guide
 * says. The access-grant sentences belong to the permissions issue; the console's own wording (drawers,
 * buttons, the connect page) to the console issue.
 */
const AUTH = '/api/v1/auth';
const USERS = `${AUTH}/users`;

describe.each(DB_KINDS)('seed 004 on %s', (kind) => {
  let server: TestServer;
  let c: Client;
  let key: string;
  let n = 0;
  const ip = () => ({ 'X-Forwarded-For': `198.18.0.${++n}` });

  beforeAll(async () => {
    server = await startBehindLoopbackProxy(kind);
    c = client(server.url);
    key = await setupAdmin(c);
  });
  afterAll(() => server?.close());

  async function listener(name: string) {
    const res = await c.post(USERS, { key, body: { username: name } });
    expect(res.status, res.text).toBe(201);
    return res.body as { id: number; hasPassword: boolean; lastActiveAt: string | null };
  }
  async function invite(id: number, body: Record<string, unknown> = {}) {
    const res = await c.post(`${USERS}/${id}/invites`, { key, body });
    expect(res.status, res.text).toBe(201);
    return res.body as { invite: { id: number; uses: number | null; expiresAt: string | null; createdAt: string }; code: string; link: string };
  }
  const connect = (code: string, device: Record<string, unknown> = {}, jar?: Jar) => client(server.url, jar).post(`${AUTH}/connect`, { body: { code, device }, headers: ip() });
  const user = async (id: number) => (await c.get(`${USERS}/${id}`, { key })).body;

  // The rails first, while the setup admin is the only one.
  it('"The last enabled admin can\'t be demoted, disabled or deleted"', async () => {
    for (const res of [
      await c.put(`${USERS}/1`, { key, body: { role: 'user' } }),
      await c.post(`${USERS}/1/status`, { key, body: { active: false } }),
    ]) {
      expect(res.status).toBe(409);
      expect(errorCode(res)).toBe('user.last_admin');
    }
  });

  it('"You can\'t clear an admin\'s password"', async () => {
    const res = await c.put(`${USERS}/1`, { key, body: { password: null } });
    expect(res.status).toBe(409);
    expect(errorCode(res)).toBe('user.admin_needs_password');
  });

  it('"You can\'t delete your own account"', async () => {
    const res = await c.del(`${USERS}/1`, { key });
    expect(res.status).toBe(409);
    expect(errorCode(res)).toBe('user.cannot_delete_self');
  });

  it('"Password - optional for listeners": a player-only account without one shows as invite-only', async () => {
    const made = await listener('optional');
    expect(made.hasPassword).toBe(false);
  });

  it('"Required for admins": an admin is not created without a password', async () => {
    const res = await c.post(USERS, { key, body: { username: 'nopass-admin', role: 'admin' } });
    expect(res.status).toBe(409);
    expect(errorCode(res)).toBe('user.admin_needs_password');
  });

  it('"Passwords must be at least 8 characters"', async () => {
    const res = await c.post(USERS, { key, body: { username: 'shortpass', password: '1234567' } });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toBe('password: must be at least 8 characters');
  });

  it('"They join by redeeming an invite code, which signs their device in directly" and "can set one themselves later"', async () => {
    const { id } = await listener('joiner');
    const { code } = await invite(id);
    const jar: Jar = {};
    expect((await connect(code, { name: 'Phone' }, jar)).status).toBe(200);
    const set = await client(server.url, jar).put(`${AUTH}/me`, { body: { password: 'my-own-password' } });
    expect(set.status, set.text).toBe(200);
    expect(set.body.hasPassword).toBe(true);
  });

  it('"Promoting an account to admin requires it to have a password first"', async () => {
    const { id } = await listener('promote-me');
    const res = await c.put(`${USERS}/${id}`, { key, body: { role: 'admin' } });
    expect(res.status).toBe(409);
    expect(errorCode(res)).toBe('user.admin_needs_password');
    expect((await c.put(`${USERS}/${id}`, { key, body: { password: 'now-has-one', role: 'admin' } })).status).toBe(200);
  });

  it('"Uses: 1 use, 5 uses (the default), Unlimited, or a custom number"; "Expires: 1 day (the default), 7 days, 30 days, Never, or a custom number of days"', async () => {
    const { id } = await listener('choices');
    const defaults = await invite(id);
    expect(defaults.invite.uses).toBe(5);
    expect(Date.parse(defaults.invite.expiresAt!) - Date.parse(defaults.invite.createdAt)).toBe(86_400_000);
    for (const [uses, expiresInDays] of [
      [1, 7],
      [null, 30],
      [12, null],
      [5, 3],
    ]) {
      const made = await invite(id, { uses, expiresInDays });
      expect(made.invite.uses).toBe(uses);
      expect(made.invite.expiresAt === null).toBe(expiresInDays === null);
    }
  });

  it('"Each redemption signs in one device": five uses connect five devices and no sixth', async () => {
    const { id } = await listener('five');
    const { code } = await invite(id);
    for (const name of ['phone', 'tablet', 'browser', 'tv', 'car']) expect((await connect(code, { name, kind: 'app' })).status).toBe(200);
    expect(errorCode(await connect(code))).toBe('invite.used_up');
  });

  it('"Invite link - a URL to the server\'s connect page with the code already embedded", after a # so it never reaches a log', async () => {
    const { id } = await listener('linked');
    const { code, link } = await invite(id);
    expect(link).toMatch(new RegExp(`/connect#code=${code}$`));
    expect(new URL(link).search).toBe('');
  });

  it('"The server keeps only a fingerprint, so it can verify codes but never display them again"', async () => {
    const { id } = await listener('fingerprinted');
    const { code } = await invite(id);
    const rows = JSON.stringify(await server.usher.db('invites').where({ user_id: id }));
    expect(rows).not.toContain(code);
    expect(rows).not.toContain(code.replaceAll('-', ''));
    expect(JSON.stringify((await c.get(`${USERS}/${id}/invites`, { key })).body)).not.toContain(code.replaceAll('-', '').slice(0, 8));
  });

  it('"Each user has at most one active invite. Creating a new one automatically retires any older invite"; "Spent and expired invites ... collapse into the History list"', async () => {
    const { id } = await listener('one-active');
    const first = await invite(id, { uses: 1 });
    expect((await connect(first.code)).status).toBe(200);
    const second = await invite(id);
    const third = await invite(id);
    const list = (await c.get(`${USERS}/${id}/invites`, { key })).body;
    expect(list.active.id).toBe(third.invite.id);
    expect(list.history.map((i: { id: number; state: string }) => [i.id, i.state])).toEqual([
      [second.invite.id, 'replaced'],
      [first.invite.id, 'used_up'],
    ]);
    expect(errorCode(await connect(second.code))).toBe('invite.replaced');
  });

  it('"Resend ... regenerates the secret in place: the old link and code stop working immediately"; "keeps its uses limit, and its expiry clock restarts for the same window"', async () => {
    const { id } = await listener('resend');
    const made = await invite(id, { uses: 3, expiresInDays: 7 });
    expect((await connect(made.code)).status).toBe(200);
    const resent = await c.post(`${USERS}/${id}/invites/${made.invite.id}/resend`, { key });
    expect(resent.status).toBe(200);
    expect(resent.body.invite).toMatchObject({ id: made.invite.id, uses: 3, usesLeft: 2 });
    expect(Date.parse(resent.body.invite.expiresAt) - Date.parse(resent.body.invite.resentAt)).toBe(7 * 86_400_000);
    expect(errorCode(await connect(made.code))).toBe('invite.invalid');
    expect((await connect(resent.body.code)).status).toBe(200);
  });

  it('"To kill an invite outright, click Revoke"', async () => {
    const { id } = await listener('revoke');
    const made = await invite(id);
    expect((await c.del(`${USERS}/${id}/invites/${made.invite.id}`, { key })).status).toBe(200);
    expect(errorCode(await connect(made.code))).toBe('invite.revoked');
  });

  it('"A recovery code ... never expires and has no use limit"; someone with no password can "lose their phone - and reconnect without needing you"', async () => {
    const { id } = await listener('recovering');
    const { code } = await invite(id, { uses: 1 });
    const phone = await connect(code, { name: 'Old phone', kind: 'app' });
    const minted = await c.post(`${AUTH}/me/recovery-code`, { headers: { Authorization: `Bearer ${phone.body.token}` } });
    expect(minted.status).toBe(201);
    // The phone is lost: the admin ends its session; the listener reconnects on their own, twice over.
    expect((await c.del(`${USERS}/${id}/sessions`, { key })).status).toBe(204);
    for (const name of ['New phone', 'Tablet']) expect((await connect(minted.body.code, { name, kind: 'app' })).body.via).toBe('recovery_code');
  });

  it('"The Recovery code row only tells you whether one is set or none"; "you can Revoke a recovery code ... but you can never view it"', async () => {
    const { id } = await listener('recovery-admin');
    expect((await user(id)).recoveryCode).toBe('none');
    const { code } = await invite(id);
    const jar: Jar = {};
    await connect(code, {}, jar);
    const minted = await client(server.url, jar).post(`${AUTH}/me/recovery-code`);
    expect(minted.status).toBe(201);
    const seen = await user(id);
    expect(seen.recoveryCode).toBe('set');
    expect(JSON.stringify(seen)).not.toContain(minted.body.code.slice(0, 9));
    expect((await c.del(`${USERS}/${id}/recovery-code`, { key })).status).toBe(204);
    expect((await user(id)).recoveryCode).toBe('none');
    expect(errorCode(await connect(minted.body.code))).toBe('invite.invalid');
  });

  it('"For a listener, saving an empty password clears it, returning the account to invite-only pairing"', async () => {
    const res = await c.post(USERS, { key, body: { username: 'clearable', password: 'a-password-1' } });
    const cleared = await c.put(`${USERS}/${res.body.id}`, { key, body: { password: null } });
    expect(cleared.status).toBe(200);
    expect(cleared.body.hasPassword).toBe(false);
  });

  it('"Last active ... reads never for an account that has been created but has not connected yet", and any signed-in device counts', async () => {
    const { id, lastActiveAt } = await listener('active');
    expect(lastActiveAt).toBeNull();
    const { code } = await invite(id);
    const app = await connect(code, { kind: 'app' });
    expect((await c.get(`${AUTH}/me`, { headers: { Authorization: `Bearer ${app.body.token}` } })).status).toBe(200);
    // Written off the request path: wait for it to land.
    await expect.poll(async () => (await user(id)).lastActiveAt).not.toBeNull();
  });

  it('"A disabled account can\'t sign in, and its invite codes stop redeeming (without burning a use)"; "Enable restores everything exactly as it was"', async () => {
    const res = await c.post(USERS, { key, body: { username: 'disabled', password: 'disabled-password' } });
    const id = res.body.id as number;
    const made = await invite(id, { uses: 1 });
    expect((await c.post(`${USERS}/${id}/status`, { key, body: { active: false } })).status).toBe(200);
    expect(errorCode(await c.post(`${AUTH}/login`, { body: { username: 'disabled', password: 'disabled-password' }, headers: ip() }))).toBe('auth.invalid_credentials');
    expect(errorCode(await connect(made.code))).toBe('auth.account_disabled');
    expect((await c.post(`${USERS}/${id}/status`, { key, body: { active: true } })).status).toBe(200);
    expect((await connect(made.code)).status).toBe(200);
    expect((await c.post(`${AUTH}/login`, { body: { username: 'disabled', password: 'disabled-password' }, headers: ip() })).status).toBe(200);
  });

  it('"Delete user ... is permanent": the account, its invites and their history, its recovery code and devices go', async () => {
    const { id } = await listener('deleted');
    const { code } = await invite(id);
    const app = await connect(code, { kind: 'app' });
    await c.post(`${AUTH}/me/recovery-code`, { headers: { Authorization: `Bearer ${app.body.token}` } });
    expect((await c.del(`${USERS}/${id}`, { key })).status).toBe(200);
    expect((await c.get(`${USERS}/${id}`, { key })).status).toBe(404);
    for (const table of ['invites', 'device_tokens']) expect(await server.usher.db(table).where({ user_id: id })).toEqual([]);
    expect((await c.get(`${AUTH}/me`, { headers: { Authorization: `Bearer ${app.body.token}` } })).status).toBe(401);
  });

});
