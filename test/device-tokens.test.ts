import { createHash, randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_ORIGIN } from '../src/events/stream.js';
import { startServer, type TestServer } from './helpers/app.js';
import { auditEntries } from './helpers/audit.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client, type Jar } from './helpers/http.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';
const DAY = 86_400_000;
const METRICS_TOKEN = 'metrics-token-'.padEnd(40, 'x');

describe.each(DB_KINDS)('device tokens on %s', (kind) => {
  let server: TestServer;
  let c: Client;
  let adminKey: string;
  let n = 0;
  /** The server's clock for device tokens: tests move it instead of waiting. */
  let now = Date.now();
  /** Every log line the server wrote, at every level. */
  const logged: string[] = [];
  /** Every token issued, to look for anywhere it must not be. */
  const issued: string[] = [];

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logged.push(chunk.toString());
        done();
      },
    });
    server = await startServer(kind, {
      settings: { metrics: { enabled: true, token: METRICS_TOKEN } },
      hooks: { clock: () => now, logger: pino({ level: 'trace' }, sink) },
    });
    c = client(server.url);
    adminKey = await setupAdmin(c);
  });
  afterAll(() => server?.close());

  /** A new user with a password, their API key, and a cookie client signed in as them. */
  async function person() {
    const username = `d${++n}`;
    const made = await createUser(server, c, adminKey, { username, password: 'device-password' });
    const jar: Jar = {};
    const browser = client(server.url, jar);
    expect((await browser.post(`${AUTH}/login`, { body: { username, password: 'device-password' } })).status).toBe(200);
    return { id: made.user.id as number, username, key: made.key, browser };
  }

  /** Signs a device in as the redeem flow will, through the service. */
  async function connect(userId: number, name = 'Pixel 8') {
    const made = await server.usher.devices.issue(userId, { name }, SYSTEM_ORIGIN);
    issued.push(made.token);
    return made;
  }

  const asApp = (token: string, headers: Record<string, string> = {}) => {
    const app = client(server.url);
    const opts = (extra: { body?: unknown } = {}) => ({ ...extra, headers: { authorization: `Bearer ${token}`, ...headers } });
    return {
      get: (path: string) => app.get(path, opts()),
      put: (path: string, body: unknown) => app.put(path, opts({ body })),
      post: (path: string) => app.post(path, opts()),
      del: (path: string) => app.del(path, opts()),
    };
  };

  async function expectRefused(token: string, code = 'auth.invalid_device_token') {
    const res = await asApp(token).get(`${AUTH}/me`);
    expect(res.status, res.text).toBe(401);
    expect(errorCode(res)).toBe(code);
  }

  const rows = async (userId: number) => server.usher.db('device_tokens').where({ user_id: userId });

  const audit = (type: string, userId: number) => auditEntries(server, c, adminKey, type, userId);

  describe('authentication', () => {
    it('authenticates an app as its user with Authorization: Bearer usd_...', async () => {
      const me = await person();
      const { token, id } = await connect(me.id);
      expect(token).toMatch(/^usd_[A-Za-z0-9_-]{43}$/);
      expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      const res = await asApp(token).get(`${AUTH}/me`);
      expect(res.status, res.text).toBe(200);
      expect(res.body.id).toBe(me.id);
      // The method that proved the request is what the audit log names as the actor's.
      expect((await asApp(token).put(`${AUTH}/me`, { name: 'From the TV' })).status).toBe(200);
      const [updated] = await audit('user.updated', me.id);
      expect(updated!.actor).toEqual({ kind: 'user', userId: me.id, method: 'device' });
    });

    it('never reads or mints an API key, nor credentials for others, even for an admin', async () => {
      const me = await person();
      const { token } = await connect(me.id);
      const app = client(server.url);
      const bearer = { authorization: `Bearer ${token}` };
      const refused = [
        await app.get(`${AUTH}/me/api-key`, { headers: bearer }),
        await app.post(`${AUTH}/me/api-key`, { headers: bearer }),
        await app.post(`${AUTH}/me/api-keys`, { headers: bearer, body: { name: 'from the phone', permissions: ['self.read'] } }),
      ];
      for (const res of refused) expect([res.status, errorCode(res)], res.text).toEqual([403, 'auth.forbidden']);
      // The same account with its own key may; the app mints the listener's own recovery code (seed 004).
      expect((await c.get(`${AUTH}/me/api-key`, { key: me.key })).status).toBe(200);
      expect((await app.post(`${AUTH}/me/recovery-code`, { headers: bearer })).status).toBe(201);
      // An admin's device does not make invites, reset passwords or rotate keys of others either.
      const admin = await connect(1, 'Admin phone');
      const asAdminApp = { authorization: `Bearer ${admin.token}` };
      for (const res of [
        await app.post(`${AUTH}/users/${me.id}/invites`, { headers: asAdminApp, body: {} }),
        await app.post(`${AUTH}/users/${me.id}/reset-password`, { headers: asAdminApp, body: { password: 'another-password-1' } }),
        await app.post(`${AUTH}/users/${me.id}/api-key`, { headers: asAdminApp }),
      ])
        expect([res.status, errorCode(res)], res.text).toEqual([403, 'auth.forbidden']);
      // What is not a credential stays the user's to do: the admin's app still lists users.
      expect((await app.get(`${AUTH}/users`, { headers: asAdminApp })).status).toBe(200);
    });

    it('answers 401 auth.invalid_device_token for an unknown, altered or oversized token, on public routes too', async () => {
      const me = await person();
      const { token } = await connect(me.id);
      await expectRefused(`usd_${randomBytes(32).toString('base64url')}`);
      await expectRefused(token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A'));
      await expectRefused('usd_');
      await expectRefused(`usd_${'a'.repeat(600)}`);
      const status = await asApp(`usd_${randomBytes(32).toString('base64url')}`).get(`${AUTH}/status`);
      expect(status.status).toBe(401);
      expect(errorCode(status)).toBe('auth.invalid_device_token');
      expect((await asApp(token).get(`${AUTH}/me`)).status).toBe(200);
    });

    it('refuses a device token in X-Api-Key, and never takes an API key for a device token', async () => {
      const me = await person();
      const { token } = await connect(me.id);
      const inKeyHeader = await c.get(`${AUTH}/me`, { key: token });
      expect(inKeyHeader.status).toBe(401);
      expect(errorCode(inKeyHeader)).toBe('auth.invalid_api_key');
      expect(inKeyHeader.body.error.message).toMatch(/device token is not an API key/);
      const keyAsBearer = await asApp(me.key).get(`${AUTH}/me`);
      expect(keyAsBearer.status).toBe(200);
      expect(keyAsBearer.body.id).toBe(me.id);
      // The prefix is the device method's only as spelled: `USD_...` is an (unknown) API key.
      const upper = await asApp(token.replace('usd_', 'USD_')).get(`${AUTH}/me`);
      expect(upper.status).toBe(401);
      expect(errorCode(upper)).toBe('auth.invalid_api_key');
    });

    it('serves a device token beside credentials of the same user and refuses those of another', async () => {
      const me = await person();
      const other = await person();
      const { token } = await connect(me.id);
      expect((await asApp(token, { 'x-api-key': me.key }).get(`${AUTH}/me`)).status).toBe(200);
      const mixedKey = await asApp(token, { 'x-api-key': other.key }).get(`${AUTH}/me`);
      expect(mixedKey.status).toBe(400);
      expect(errorCode(mixedKey)).toBe('auth.conflicting_credentials');
      const cookie = await other.browser.get(`${AUTH}/me`, { headers: { authorization: `Bearer ${token}` } });
      expect(cookie.status).toBe(400);
      expect(errorCode(cookie)).toBe('auth.conflicting_credentials');
      const sameCookie = await me.browser.get(`${AUTH}/me`, { headers: { authorization: `Bearer ${token}` } });
      expect(sameCookie.status).toBe(200);
      // A valid key does not carry a wrong device token through.
      const badToken = await asApp(`usd_${randomBytes(32).toString('base64url')}`, { 'x-api-key': me.key }).get(`${AUTH}/me`);
      expect(badToken.status).toBe(401);
      expect(errorCode(badToken)).toBe('auth.invalid_device_token');
    });

    it('refuses a device token in the URL', async () => {
      const me = await person();
      const { token } = await connect(me.id);
      for (const url of [`${AUTH}/me?t=${token}`, `${AUTH}/me/${token}`]) {
        const res = await c.get(url, { key: me.key });
        expect(res.status, url).toBe(400);
        expect(errorCode(res)).toBe('auth.key_in_url');
      }
    });

    it('needs no CSRF proof: no browser sends the token by itself', async () => {
      const me = await person();
      const { token } = await connect(me.id);
      const res = await asApp(token, { origin: 'https://elsewhere.example' }).put(`${AUTH}/me`, { name: 'Cross-origin app' });
      expect(res.status, res.text).toBe(200);
    });

    it('refuses a device name that is empty, too long or holds control characters', async () => {
      const me = await person();
      for (const name of ['  ', 'x'.repeat(129), 'TV\u0007', 'TV\u202eVT']) {
        await expect(server.usher.devices.issue(me.id, { name }, SYSTEM_ORIGIN)).rejects.toMatchObject({ status: 400, code: 'request.invalid' });
      }
      await expect(server.usher.devices.issue(999_999, { name: 'TV' }, SYSTEM_ORIGIN)).rejects.toMatchObject({ status: 404, code: 'user.not_found' });
      expect(await rows(me.id)).toHaveLength(0);
    });
  });

  describe('GET /me/sessions', () => {
    it('lists apps beside browser sessions, oldest first, with their name, kind and last use', async () => {
      const me = await person();
      // Browser sessions count in real time: the devices come after.
      now = Math.max(now, Date.now()) + 1000;
      const tv = await connect(me.id, ' Living-room TV ');
      now += 1000;
      const phone = await connect(me.id, 'Pixel 8');
      const fromPhone = await asApp(phone.token).get(`${AUTH}/me/sessions`);
      expect(fromPhone.status, fromPhone.text).toBe(200);
      expect(fromPhone.body.map((s: any) => [s.kind, s.name, s.current])).toEqual([
        ['browser', null, false],
        ['app', 'Living-room TV', false],
        ['app', 'Pixel 8', true],
      ]);
      const tvView = fromPhone.body[1];
      expect(tvView.id).toBe(tv.id);
      expect(tvView.createdAt).toBe(new Date(now - 1000).toISOString());
      expect(tvView.lastSeenAt).toBe(tvView.createdAt);
      const fromBrowser = await me.browser.get(`${AUTH}/me/sessions`);
      expect(fromBrowser.body.map((s: any) => s.current)).toEqual([true, false, false]);
      // Someone else's list holds none of these.
      const other = await person();
      await connect(other.id);
      const theirs = await other.browser.get(`${AUTH}/me/sessions`);
      expect(theirs.body.map((s: any) => s.id)).not.toContain(tv.id);
      expect(theirs.body).toHaveLength(2);
    });

    it('writes the last use back at most once a minute', async () => {
      const me = await person();
      const { token } = await connect(me.id);
      const lastUse = async () => {
        await server.usher.devices.prune(); // waits for last-use writes under way
        return Number((await rows(me.id))[0].last_used_at);
      };
      const created = await lastUse();
      now += 2 * 60_000;
      expect((await asApp(token).get(`${AUTH}/me`)).status).toBe(200);
      expect(await lastUse()).toBe(now);
      const written = now;
      now += 30_000;
      expect((await asApp(token).get(`${AUTH}/me`)).status).toBe(200);
      expect(await lastUse()).toBe(written);
      now += 31_000;
      const listed = await asApp(token).get(`${AUTH}/me/sessions`);
      expect(await lastUse()).toBe(now);
      expect(created).toBeLessThan(written);
      expect(listed.body.find((s: any) => s.current).lastSeenAt).toBe(new Date(now).toISOString());
    });
  });

  describe('ending a device', () => {
    it('ends one with DELETE /me/sessions/{id}, from a browser or from the app itself', async () => {
      const me = await person();
      const tv = await connect(me.id, 'TV');
      const phone = await connect(me.id, 'Phone');
      expect((await me.browser.del(`${AUTH}/me/sessions/${tv.id}`)).status).toBe(204);
      await expectRefused(tv.token);
      expect((await asApp(phone.token).get(`${AUTH}/me`)).status).toBe(200);
      const again = await me.browser.del(`${AUTH}/me/sessions/${tv.id}`);
      expect(again.status).toBe(404);
      expect(errorCode(again)).toBe('session.not_found');
      expect((await asApp(phone.token).del(`${AUTH}/me/sessions/${phone.id}`)).status).toBe(204);
      await expectRefused(phone.token);
      expect(await rows(me.id)).toHaveLength(0);
      const [ended] = await audit('session.ended', me.id);
      expect(ended!.detail).toEqual({ reason: 'revoked', kind: 'device', id: phone.id });
      expect(ended!.actor).toEqual({ kind: 'user', userId: me.id, method: 'device' });
    });

    it("answers 404 for another user's device and leaves it working", async () => {
      const me = await person();
      const other = await person();
      const theirs = await connect(other.id);
      const res = await me.browser.del(`${AUTH}/me/sessions/${theirs.id}`);
      expect(res.status).toBe(404);
      expect(errorCode(res)).toBe('session.not_found');
      expect((await asApp(theirs.token).get(`${AUTH}/me`)).status).toBe(200);
    });

    it('ends the token with POST /logout sent with it', async () => {
      const me = await person();
      const tv = await connect(me.id);
      const phone = await connect(me.id);
      expect((await asApp(tv.token).post(`${AUTH}/logout`)).status).toBe(204);
      await expectRefused(tv.token);
      expect((await asApp(phone.token).get(`${AUTH}/me`)).status).toBe(200);
      expect((await me.browser.get(`${AUTH}/me`)).status).toBe(200);
      const [ended] = await audit('session.ended', me.id);
      expect(ended!.detail).toEqual({ reason: 'logout', kind: 'device', id: tv.id });
    });

    it("ends every device with the admin's DELETE /users/{id}/sessions", async () => {
      const me = await person();
      const tv = await connect(me.id);
      const phone = await connect(me.id);
      const other = await person();
      const theirs = await connect(other.id);
      // Used first, so that they are in the cache the end must empty.
      for (const t of [tv, phone, theirs]) expect((await asApp(t.token).get(`${AUTH}/me`)).status).toBe(200);
      expect((await c.del(`${AUTH}/users/${me.id}/sessions`, { key: adminKey })).status).toBe(204);
      await expectRefused(tv.token);
      await expectRefused(phone.token);
      expect((await me.browser.get(`${AUTH}/me`)).status).toBe(401);
      expect(await rows(me.id)).toHaveLength(0);
      expect((await asApp(theirs.token).get(`${AUTH}/me`)).status).toBe(200);
    });

    it('ends every device when the user is disabled, and enabling does not bring them back', async () => {
      const me = await person();
      const { token } = await connect(me.id);
      expect((await asApp(token).get(`${AUTH}/me`)).status).toBe(200);
      expect((await c.post(`${AUTH}/users/${me.id}/status`, { key: adminKey, body: { active: false } })).status).toBe(200);
      await expectRefused(token);
      expect(await rows(me.id)).toHaveLength(0);
      expect((await c.post(`${AUTH}/users/${me.id}/status`, { key: adminKey, body: { active: true } })).status).toBe(200);
      await expectRefused(token);
    });

    it('refuses the token of a disabled account whose token survived', async () => {
      const me = await person();
      const { token } = await connect(me.id);
      // As if the account were disabled without its epoch moving on (the redeem flow refuses a disabled
      // account; this is the backstop). A change through the service empties the caches.
      await server.usher.db('users').where({ id: me.id }).update({ active: false });
      await server.usher.users.update(me.id, { name: 'Disabled behind our back' });
      const res = await asApp(token).get(`${AUTH}/me`);
      expect(res.status).toBe(401);
      expect(errorCode(res)).toBe('auth.invalid_device_token');
      expect(res.body.error.message).toBe('This account is disabled.');
    });

    it('refuses a token made before the session epoch moved on, even while its row is still there, and prunes it', async () => {
      const me = await person();
      const { token } = await connect(me.id);
      expect((await asApp(token).get(`${AUTH}/me`)).status).toBe(200);
      // A token issued while a disable or reset was under way is stored with the old epoch, after the
      // change's listener deleted the others: as here, where the epoch moves on and nothing is deleted.
      await server.usher.db('users').where({ id: me.id }).increment('session_epoch', 1);
      await server.usher.users.update(me.id, { name: 'Epoch moved on' });
      await expectRefused(token);
      expect(await rows(me.id)).toHaveLength(1);
      const listed = await c.get(`${AUTH}/me/sessions`, { key: me.key });
      expect(listed.status).toBe(200);
      expect(listed.body.filter((s: any) => s.kind === 'app')).toEqual([]);
      await server.usher.devices.prune();
      expect(await rows(me.id)).toHaveLength(0);
    });

    it('deletes every device with the user', async () => {
      const me = await person();
      const { token } = await connect(me.id);
      expect((await c.del(`${AUTH}/users/${me.id}`, { key: adminKey })).status).toBe(200);
      await expectRefused(token);
      expect(await rows(me.id)).toHaveLength(0);
    });

    it('ends every device at a password reset by an admin', async () => {
      for (const reset of [
        (id: number) => c.post(`${AUTH}/users/${id}/reset-password`, { key: adminKey, body: { password: 'a-new-password' } }),
        (id: number) => c.put(`${AUTH}/users/${id}`, { key: adminKey, body: { password: 'another-password' } }),
      ]) {
        const me = await person();
        const { token } = await connect(me.id);
        const res = await reset(me.id);
        expect(res.status, res.text).toBeLessThan(300);
        await expectRefused(token);
        expect(await rows(me.id)).toHaveLength(0);
      }
    });

    it('keeps the device that changed its own password and ends the others', async () => {
      const me = await person();
      const tv = await connect(me.id, 'TV');
      const phone = await connect(me.id, 'Phone');
      const res = await asApp(phone.token).put(`${AUTH}/me`, { password: 'a-better-password', currentPassword: 'device-password' });
      expect(res.status, res.text).toBe(200);
      await expectRefused(tv.token);
      expect((await me.browser.get(`${AUTH}/me`)).status).toBe(401);
      expect((await asApp(phone.token).get(`${AUTH}/me`)).status).toBe(200);
      expect((await rows(me.id)).map((r: any) => r.public_id)).toEqual([phone.id]);
      // A change made from a browser ends every device.
      const jar: Jar = {};
      const browser = client(server.url, jar);
      expect((await browser.post(`${AUTH}/login`, { body: { username: me.username, password: 'a-better-password' } })).status).toBe(200);
      expect((await browser.put(`${AUTH}/me`, { body: { password: 'the-best-password', currentPassword: 'a-better-password' } })).status).toBe(200);
      await expectRefused(phone.token);
      expect((await browser.get(`${AUTH}/me`)).status).toBe(200);
    });
  });

  describe('session.deviceIdleTimeout', () => {
    it('ends a device unused for 180 days, counting from its last use', async () => {
      const me = await person();
      const { token, id } = await connect(me.id);
      now += 179 * DAY;
      expect((await asApp(token).get(`${AUTH}/me`)).status).toBe(200);
      now += 179 * DAY;
      expect((await asApp(token).get(`${AUTH}/me`)).status).toBe(200);
      now += 180 * DAY + 60_000;
      const listed = await me.browser.get(`${AUTH}/me/sessions`);
      expect(listed.body.map((s: any) => s.id)).not.toContain(id);
      await expectRefused(token);
      // Deleted when presented (in the background: pruning waits for nothing else to finish).
      await expect.poll(async () => (await rows(me.id)).length).toBe(0);
    });

    it('prunes expired tokens in the background, and leaves the live ones', async () => {
      const me = await person();
      const old = await connect(me.id, 'Old tablet');
      now += 100 * DAY;
      const fresh = await connect(me.id, 'New phone');
      now += 81 * DAY;
      expect(await server.usher.devices.prune()).toBeGreaterThanOrEqual(1);
      expect((await rows(me.id)).map((r: any) => r.public_id)).toEqual([fresh.id]);
      await expectRefused(old.token);
      expect((await asApp(fresh.token).get(`${AUTH}/me`)).status).toBe(200);
    });

    it('is a duration option, 180 days by default', async () => {
      expect(server.usher.config.session.deviceIdleTimeoutMs).toBe(180 * DAY);
      const { resolveConfig } = await import('../src/config/load.js');
      expect(resolveConfig({ file: { session: { deviceIdleTimeout: '30d' } } }).session.deviceIdleTimeoutMs).toBe(30 * DAY);
      expect(resolveConfig({ env: { USHER_SESSION_DEVICE_IDLE_TIMEOUT: '12h' } }).session.deviceIdleTimeoutMs).toBe(12 * 3_600_000);
      expect(() => resolveConfig({ file: { session: { deviceIdleTimeout: 'forever' } } })).toThrow(/session\.deviceIdleTimeout/);
    });
  });

  describe('secrecy', () => {
    it('announces a new device as session.created with kind device, never the token', async () => {
      const me = await person();
      const { id } = await connect(me.id, 'Kitchen speaker');
      const [created] = await audit('session.created', me.id);
      expect(created!.actor).toEqual({ kind: 'system' });
      expect(created!.detail).toEqual({ kind: 'device', id, name: 'Kitchen speaker' });
    });

    it('keeps no token in the database, the audit log, the logs or the metrics', async () => {
      const me = await person();
      const { token } = await connect(me.id);
      expect((await asApp(token).get(`${AUTH}/me`)).status).toBe(200);
      await server.usher.audit.flush();
      const [row] = await rows(me.id);
      // A keyed fingerprint: not the token, not its plain hash.
      expect(row.fingerprint).toMatch(/^[0-9a-f]{64}$/);
      expect(row.fingerprint).not.toBe(createHash('sha256').update(token).digest('hex'));
      const scrape = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      expect(scrape.status).toBe(200);
      const metrics = await scrape.text();
      expect(metrics).toMatch(/usher_auth_total\{method="device",result="success"\}/);
      const tables = kind === 'sqlite'
        ? (await server.usher.db.raw("select name from sqlite_master where type = 'table'")).map((t: any) => t.name as string)
        : (await server.usher.db.raw('select table_name as name from information_schema.tables where table_schema = current_schema()')).rows.map((t: any) => t.name as string);
      expect(tables).toContain('device_tokens');
      let everything = '';
      for (const table of tables) everything += JSON.stringify(await server.usher.db(table).select('*'));
      everything += metrics + logged.join('');
      expect(issued.length).toBeGreaterThan(10);
      for (const t of issued) {
        const secret = t.slice('usd_'.length);
        for (const form of [secret, Buffer.from(secret, 'base64url').toString('hex'), Buffer.from(secret, 'base64url').toString('base64')]) {
          expect(everything).not.toContain(form);
        }
      }
    });
  });
});
