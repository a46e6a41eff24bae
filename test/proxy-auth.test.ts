import { cpSync, mkdtempSync, rmSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultPolicyDir } from '../src/authz/enforcer.js';
import { startServer, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode } from './helpers/http.js';
import { requestFrom, utf8Header } from './helpers/peer-http.js';
import { getFrom, memoryLogger, proxySettings, urlFor } from './helpers/proxy.js';

const UNTRUSTED_WARNING = 'proxy auth: identity headers from an address outside trustedProxies ignored';
const ROLE_KEPT_WARNING = 'role sync: role kept, the change would break a safety rail';

/** Identity headers as Authelia sends them; a group list of undefined leaves Remote-Groups out. */
function remote(user: string, groups?: string, extra: Record<string, string | string[]> = {}) {
  return { 'Remote-User': user, ...(groups === undefined ? {} : { 'Remote-Groups': groups }), ...extra };
}

describe.each(DB_KINDS)('proxy auth on %s', (kind) => {
  let server: TestServer;
  const log = memoryLogger();
  /** A local admin, so that demotions through groups are not blocked by the last-admin rail. */
  let rootKey: string;
  const as = (user: string, groups?: string, extra?: Record<string, string | string[]>, address = '127.0.0.1') =>
    getFrom(server, address, remote(user, groups, extra));
  const identities = async (subject: string) => server.usher.db('identities').where({ provider: 'proxy', subject });

  beforeAll(async () => {
    // Listening on '::', so IPv4 peers arrive as IPv4-mapped addresses (::ffff:127.0.0.1).
    // The cluster poll reads the database every second: an hour apart, a test counting queries counts only its requests'.
    server = await startServer(kind, { host: '::', settings: { ...proxySettings({ adminGroups: ['admins'] }), cluster: { pollInterval: '1h' } }, hooks: { logger: log.logger } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('provisions the first proxy user of an empty database as a normal user, never a bootstrap admin', async () => {
    const c = client(server.url);
    expect((await c.get('/api/v1/auth/status')).body).toEqual({ setupRequired: true });
    const res = await as('first', 'staff', { 'Remote-Email': 'first@example.com', 'Remote-Name': 'First User' });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ username: 'first', role: 'user', authSource: 'proxy', hasPassword: false, name: 'First User', email: 'first@example.com' });
    expect((await c.get('/api/v1/auth/status')).body).toEqual({ setupRequired: false });
    const setup = await c.post('/api/v1/auth/setup', { body: { username: 'grab', password: 'grab-password' } });
    expect(errorCode(setup)).toBe('setup.already_done');

    const root = await server.usher.users.create({ username: 'root', password: 'root-password', role: 'admin' });
    rootKey = root.apiKey;
  });

  describe('who is believed', () => {
    it.each([
      ['believes the user header from 127.0.0.1, in trustedProxies (seen as ::ffff:127.0.0.1)', '127.0.0.1', 200],
      ['ignores identity headers from 127.0.0.2, outside trustedProxies', '127.0.0.2', 401],
      ['ignores identity headers from ::1, outside trustedProxies', '::1', 401],
    ])('%s', async (_name, address, status) => {
      const user = `peer-${address.replace(/[.:]/g, '-')}`;
      const res = await as(user, 'admins', {}, address);
      expect(res.status, res.text).toBe(status);
      expect(await server.usher.users.findByUsername(user)).toEqual(status === 200 ? expect.objectContaining({ username: user }) : null);
    });

    it("lets an untrusted peer's API key authenticate it, its identity headers still ignored", async () => {
      const res = await getFrom(server, '127.0.0.2', { ...remote('first', 'admins'), 'X-Api-Key': rootKey });
      expect(res.status).toBe(200);
      expect(res.body.username).toBe('root');
    });

    it('warns about ignored identity headers at most once a minute, naming the peer and no header value', async () => {
      for (let i = 0; i < 3; i++) expect((await as('mallory', 'admins', {}, '127.0.0.2')).status).toBe(401);
      const warnings = log.withMessage(UNTRUSTED_WARNING);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ level: 40, peer: '127.0.0.2' });
      expect(JSON.stringify(log.lines)).not.toMatch(/mallory|peer-127-0-0-2/);
    });
  });

  describe('identity headers', () => {
    it.each([
      ['Remote-User', { 'Remote-User': ['alice', 'mallory'] }],
      ['Remote-Groups', remote('alice', undefined, { 'Remote-Groups': ['staff', 'admins'] })],
      ['Remote-Email', remote('alice', 'staff', { 'Remote-Email': ['a@example.com', 'b@example.com'] })],
      ['Remote-Name', remote('alice', 'staff', { 'Remote-Name': ['Alice', 'Mallory'] })],
    ])('refuses %s sent twice in one request (400)', async (header, headers) => {
      const res = await getFrom(server, '127.0.0.1', headers);
      expect(res.status).toBe(400);
      expect(errorCode(res)).toBe('request.invalid');
      expect(res.body.error.message).toBe(`${header}: send the header once`);
    });

    it('ignores a repeated user header from an untrusted address (anonymous, not 400)', async () => {
      expect((await getFrom(server, '127.0.0.2', { 'Remote-User': ['alice', 'mallory'] })).status).toBe(401);
    });

    it('treats an empty user header as no identity', async () => {
      expect((await as('', 'admins')).status).toBe(401);
    });

    it('reads header bytes as UTF-8, as proxies send them', async () => {
      const res = await as(utf8Header('José Müller'), 'staff', { 'Remote-Name': utf8Header('李小龙') });
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ username: 'José Müller', name: '李小龙' });
    });

    it('refuses a user header that is no valid username (400), and ignores an email that is no address', async () => {
      const long = await as('x'.repeat(65), 'staff');
      expect(long.status).toBe(400);
      expect(long.body.error.message).toMatch(/^username: must be 1 to 64 characters/);
      const res = await as('noemail', 'staff', { 'Remote-Email': 'not an address' });
      expect(res.status).toBe(200);
      expect(res.body.email).toBeNull();
    });

    it('answers a known user with unchanged headers without any database query', async () => {
      const headers = remote('cached', 'staff', { 'Remote-Email': 'cached@example.com' });
      for (let i = 0; i < 3; i++) expect((await getFrom(server, '127.0.0.1', headers)).status).toBe(200);
      // What the first requests started in the background is done before counting: their audit rows and the
      // lastActiveAt write (fire-and-forget, it may issue its query a moment later on a loaded machine).
      await server.usher.audit.flush();
      await expect.poll(async () => (await server.usher.users.findByUsername('cached'))?.lastActiveAt ?? null).not.toBeNull();
      let queries = 0;
      const seen: string[] = [];
      const count = (q: { sql: string }) => void (queries++, seen.push(q.sql));
      server.usher.db.on('query', count);
      try {
        for (let i = 0; i < 5; i++) expect((await getFrom(server, '127.0.0.1', headers)).status).toBe(200);
      } finally {
        server.usher.db.off('query', count);
      }
      expect(queries, seen.join('\n')).toBe(0);
    });
  });

  describe('provisioning', () => {
    it('links an existing account with the same username (any case) instead of creating a second one', async () => {
      const { user: carol } = await server.usher.users.create({ username: 'Carol', password: 'carol-password' });
      const res = await as('carol', 'staff');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: carol.id, username: 'Carol', authSource: 'local', hasPassword: true });
      expect(await identities('carol')).toHaveLength(1);
    });

    it('gives concurrent first requests of a new user one account, and all of them succeed', async () => {
      // Different names make each request its own provisioning (none shares another's lookup).
      const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => as('dora', 'staff', { 'Remote-Name': `Dora ${i}` })));
      expect(replies.map((r) => r.status)).toEqual(Array(12).fill(200));
      expect(new Set(replies.map((r) => r.body.id)).size).toBe(1);
      const [row] = await identities('dora');
      expect(row).toBeDefined();
      expect(await identities('dora')).toHaveLength(1);
      expect(Number(row.user_id)).toBe(replies[0]!.body.id);
    });

    it('gives each name of a burst of first requests, several per name, one account, its identity and one creation audit row', async () => {
      const names = Array.from({ length: 20 }, (_, i) => `burst-${i}`);
      // Three requests per name, interleaved, with and without an email: creations are written in batches.
      const replies = await Promise.all(
        [0, 1, 2].flatMap((round) => names.map((name) => as(name, 'staff', round === 1 ? {} : { 'Remote-Email': `${name}@example.com` }))),
      );
      expect(replies.map((r) => r.status)).toEqual(Array(60).fill(200));
      for (const name of names) {
        const ids = new Set(replies.filter((r) => r.body.username === name).map((r) => r.body.id));
        expect(ids.size, name).toBe(1);
        const [id] = [...ids];
        expect(await server.usher.db('users').where({ username_key: name }).select('id')).toEqual([{ id }]);
        expect((await identities(name)).map((row) => Number(row.user_id))).toEqual([id]);
        expect(Number((await server.usher.db('audit_log').where({ type: 'user.created', target_user_id: id }).count({ n: '*' }))[0]!.n)).toBe(1);
      }
      expect((await server.usher.users.findByUsername('burst-0'))?.email).toBe('burst-0@example.com');
    });

    it("creating accounts leaves other users' cached answers alone: theirs are still answered without a query", async () => {
      const headers = remote('steady', 'staff');
      for (let i = 0; i < 3; i++) expect((await getFrom(server, '127.0.0.1', headers)).status).toBe(200);
      await server.usher.audit.flush();
      await expect.poll(async () => (await server.usher.users.findByUsername('steady'))?.lastActiveAt ?? null).not.toBeNull();
      const made = await Promise.all(Array.from({ length: 5 }, (_, i) => as(`newcomer-${i}`, 'staff')));
      expect(made.map((r) => r.status)).toEqual(Array(5).fill(200));
      await server.usher.audit.flush();
      let queries = 0;
      const seen: string[] = [];
      const count = (q: { sql: string }) => void (queries++, seen.push(q.sql));
      server.usher.db.on('query', count);
      try {
        expect((await getFrom(server, '127.0.0.1', headers)).body.username).toBe('steady');
      } finally {
        server.usher.db.off('query', count);
      }
      expect(queries, seen.join('\n')).toBe(0);
    });

    it('refuses a disabled account (401)', async () => {
      const made = await as('frank', 'staff');
      await server.usher.users.setActive(made.body.id, false);
      const res = await as('frank', 'staff');
      expect(res.status).toBe(401);
      expect(errorCode(res)).toBe('auth.unauthenticated');
    });

    it("deleting an account deletes its identity: the person's next request makes a new account", async () => {
      const made = await as('gina', 'staff');
      const root = (await server.usher.users.findByUsername('root'))!;
      await server.usher.users.remove(made.body.id, { actor: { kind: 'user', userId: root.id, method: 'api-key' } });
      expect(await identities('gina')).toHaveLength(0);
      const again = await as('gina', 'staff');
      expect(again.status).toBe(200);
      expect(again.body.id).not.toBe(made.body.id);
    });
  });

  describe('roles from groups (USHER_PROXY_ADMIN_GROUPS=admins)', () => {
    // One person's successive requests: each changes (or keeps) the role on that very request.
    it.each([
      ['creates the account with role user when no group maps to a role', 'staff', 'user'],
      ['promotes on the request that carries the admin group', 'staff,admins', 'admin'],
      ['changes nothing when the groups header is absent ("unknown")', undefined, 'admin'],
      ['matches group names exactly, case included: "Admins" is not "admins"', 'Admins', 'user'],
      ['trims spaces around the separator', 'staff , admins', 'admin'],
      ['demotes on the request that drops the admin group', 'staff', 'user'],
      ['promotes again', 'admins', 'admin'],
      ['counts an empty groups header as "in no group" and demotes', '', 'user'],
    ])('%s', async (_name, groups, role) => {
      const res = await as('erin', groups);
      expect(res.status, res.text).toBe(200);
      expect(res.body.role).toBe(role);
      expect((await server.usher.users.findByUsername('erin'))!.role).toBe(role);
    });

    it('gives an admin through groups what admin inherits from user', async () => {
      const headers = remote('hal', 'admins');
      expect((await getFrom(server, '127.0.0.1', headers, '/api/v1/auth/users')).status).toBe(200);
      expect((await getFrom(server, '127.0.0.1', headers, '/api/v1/auth/me/api-key')).status).toBe(200);
      expect((await getFrom(server, '127.0.0.1', remote('ivy', 'staff'), '/api/v1/auth/users')).status).toBe(403);
    });

    it('replaces a role set by hand at the next request that carries groups (roleSync: always)', async () => {
      const c = client(server.url);
      const made = await as('jack', 'staff');
      const promoted = await c.put(`/api/v1/auth/users/${made.body.id}`, { key: rootKey, body: { role: 'admin' } });
      expect(promoted.status, promoted.text).toBe(200);
      // No groups header: nothing to sync, and the change shows at once (the cache was emptied).
      expect((await as('jack')).body.role).toBe('admin');
      expect((await as('jack', 'staff')).body.role).toBe('user');
    });
  });

  it('holds proxy-authenticated requests that change state to the CSRF rules: JSON and same-origin', async () => {
    const url = `${urlFor(server, '127.0.0.1')}/api/v1/auth/me`;
    const headers = remote('csrf-victim', 'staff');
    const form = await requestFrom('127.0.0.1', url, { method: 'PUT', headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form.status).toBe(415);
    const evil = await requestFrom('127.0.0.1', url, { method: 'PUT', headers: { ...headers, origin: 'https://evil.example' }, body: { name: 'x' } });
    expect(evil.status).toBe(403);
    expect(evil.body.error.code).toBe('auth.csrf');
    const ok = await requestFrom('127.0.0.1', url, { method: 'PUT', headers, body: { name: 'Victim' } });
    expect(ok.status).toBe(200);
    expect(ok.body.name).toBe('Victim');
  });
});

describe.each(DB_KINDS)('proxy auth settings on %s', (kind) => {
  const servers: TestServer[] = [];
  const start = async (proxy: Record<string, unknown>, opts: { trusted?: string[]; policyDir?: string; logger?: ReturnType<typeof memoryLogger> } = {}) => {
    const server = await startServer(kind, {
      host: '::',
      settings: proxySettings(proxy, opts.trusted),
      hooks: { policyDir: opts.policyDir, ...(opts.logger ? { logger: opts.logger.logger } : {}) },
    });
    servers.push(server);
    return server;
  };
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it.each([
    ['127.0.0.1 only', ['127.0.0.1'], ['127.0.0.1'], ['127.0.0.2', '::1']],
    ['127.0.0.2 only', ['127.0.0.2'], ['127.0.0.2'], ['127.0.0.1', '::1']],
    ['::1 only', ['::1'], ['::1'], ['127.0.0.1', '127.0.0.2']],
    ['127.0.0.2 written IPv4-mapped (::ffff:127.0.0.2)', ['::ffff:127.0.0.2'], ['127.0.0.2'], ['127.0.0.1', '::1']],
    ['the range 127.0.0.0/8', ['127.0.0.0/8'], ['127.0.0.1', '127.0.0.2'], ['::1']],
  ])('trusting %s: believes only those peers', async (_name, trusted, believed, ignored) => {
    const server = await start({}, { trusted });
    for (const address of [...believed, ...ignored]) {
      const res = await getFrom(server, address, remote('kim', 'staff'));
      expect(res.status, `${address}: ${res.text}`).toBe(believed.includes(address) ? 200 : 401);
    }
  });

  it.each([
    [
      'Authelia (the default): Remote-*, groups separated by ","',
      {},
      { 'Remote-User': 'lee', 'Remote-Groups': 'staff,admins', 'Remote-Email': 'lee@example.com', 'Remote-Name': 'Lee' },
      { username: 'lee', role: 'admin', email: 'lee@example.com', name: 'Lee' },
    ],
    [
      'Authentik: X-authentik-*, groups separated by "|"',
      { preset: 'authentik' },
      { 'X-authentik-username': 'lee', 'X-authentik-groups': 'staff|admins', 'X-authentik-email': 'lee@example.com', 'X-authentik-name': 'Lee' },
      { username: 'lee', role: 'admin', email: 'lee@example.com', name: 'Lee' },
    ],
    [
      'Authentik: a group name holding a comma is one group',
      { preset: 'authentik', adminGroups: ['Ops, Admins'] },
      { 'X-authentik-username': 'lee', 'X-authentik-groups': 'staff|Ops, Admins' },
      { username: 'lee', role: 'admin' },
    ],
    [
      'oauth2-proxy: X-Forwarded-Preferred-Username first',
      { preset: 'oauth2-proxy' },
      { 'X-Forwarded-Preferred-Username': 'lee', 'X-Forwarded-User': 'u-123', 'X-Forwarded-Groups': 'admins', 'X-Forwarded-Email': 'lee@example.com' },
      { username: 'lee', role: 'admin', email: 'lee@example.com', name: null },
    ],
    [
      'oauth2-proxy: falls back to X-Forwarded-User',
      { preset: 'oauth2-proxy' },
      { 'X-Forwarded-User': 'lee', 'X-Forwarded-Groups': 'staff' },
      { username: 'lee', role: 'user' },
    ],
    [
      'oauth2-proxy: reads no name header, so none can slip through',
      { preset: 'oauth2-proxy' },
      { 'X-Forwarded-User': 'lee', 'Remote-Name': 'Mallory', 'X-Forwarded-Name': 'Mallory' },
      { username: 'lee', name: null },
    ],
    [
      'custom headers and separator ";"',
      { userHeader: 'X-User', groupsHeader: 'X-Groups', groupsSeparator: ';' },
      { 'X-User': 'lee', 'X-Groups': 'staff;admins' },
      { username: 'lee', role: 'admin' },
    ],
  ])('preset %s', async (_name, proxy, headers, expected) => {
    const server = await start({ adminGroups: ['admins'], ...proxy });
    const res = await getFrom(server, '127.0.0.1', headers);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject(expected);
  });

  it("ignores headers that are not the preset's: Remote-User under the Authentik preset is no one", async () => {
    const server = await start({ preset: 'authentik' });
    expect((await getFrom(server, '127.0.0.1', remote('lee', 'admins'))).status).toBe(401);
  });

  it('with autoProvision off: 403 auth.not_provisioned and no account for an unknown user; an existing account signs in', async () => {
    const server = await start({ autoProvision: false });
    const res = await getFrom(server, '127.0.0.1', remote('newbie', 'staff'));
    expect(res.status).toBe(403);
    expect(errorCode(res)).toBe('auth.not_provisioned');
    expect(await server.usher.users.count()).toBe(0);
    await server.usher.users.create({ username: 'known', password: 'known-password' });
    const known = await getFrom(server, '127.0.0.1', remote('known', 'staff'));
    expect(known.status).toBe(200);
    expect(known.body.username).toBe('known');
  });

  it('with roleSync on-create: groups set the role of a new account only; a role set by hand survives', async () => {
    const server = await start({ adminGroups: ['admins'], roleSync: 'on-create' });
    await server.usher.users.create({ username: 'root', password: 'root-password', role: 'admin' });
    const made = await getFrom(server, '127.0.0.1', remote('max', 'admins'));
    expect(made.body.role).toBe('admin');
    expect((await getFrom(server, '127.0.0.1', remote('max', 'staff'))).body.role).toBe('admin');
    await server.usher.users.update(made.body.id, { role: 'user' });
    expect((await getFrom(server, '127.0.0.1', remote('max', 'admins'))).body.role).toBe('user');
  });

  it('with no group mapped to a role, groups never change a role: roles are set by hand', async () => {
    const server = await start({});
    await server.usher.users.create({ username: 'root', password: 'root-password', role: 'admin' });
    const made = await getFrom(server, '127.0.0.1', remote('ned', 'admins'));
    expect(made.body.role).toBe('user');
    await server.usher.users.update(made.body.id, { role: 'admin' });
    expect((await getFrom(server, '127.0.0.1', remote('ned', 'staff'))).body.role).toBe('admin');
  });

  it('never demotes the last enabled admin through groups: keeps the role and logs a warning', async () => {
    const log = memoryLogger();
    const server = await start({ adminGroups: ['admins'] }, { logger: log });
    const boss = await getFrom(server, '127.0.0.1', remote('boss', 'admins'));
    expect(boss.body.role).toBe('admin');
    const kept = await getFrom(server, '127.0.0.1', remote('boss', 'staff'));
    expect(kept.status).toBe(200);
    expect(kept.body.role).toBe('admin');
    expect(log.withMessage(ROLE_KEPT_WARNING)).toEqual([expect.objectContaining({ userId: boss.body.id, role: 'admin', groupsRole: 'user', rail: 'user.last_admin' })]);
    // With a second admin the same request demotes.
    await server.usher.users.create({ username: 'deputy', password: 'deputy-password', role: 'admin' });
    expect((await getFrom(server, '127.0.0.1', remote('boss', 'staff'))).body.role).toBe('user');
  });

  it('maps groups through g2 rules in policy.csv too: "*" for every provider, the strongest role winning', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'usher-policy-'));
    try {
      cpSync(defaultPolicyDir(), dir, { recursive: true });
      appendFileSync(join(dir, 'policy.csv'), 'g2, family, user, *\ng2, parents, admin, proxy\ng2, parents, admin, oidc:other\n');
      const server = await start({}, { policyDir: dir });
      await server.usher.users.create({ username: 'root', password: 'root-password', role: 'admin' });
      expect((await getFrom(server, '127.0.0.1', remote('olga', 'family,parents'))).body.role).toBe('admin');
      expect((await getFrom(server, '127.0.0.1', remote('olga', 'family'))).body.role).toBe('user');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
