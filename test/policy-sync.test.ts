import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Authorizer } from '../src/authz/enforcer.js';
import { pollPolicy } from '../src/authz/policy-sync.js';
import { openDatabase } from '../src/db/connect.js';
import { startInstances, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client } from './helpers/http.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';
const ROLES = `${AUTH}/roles`;
const USERS = `${AUTH}/users`;

/**
 * Two instances on one database. Each case changes the policy through A and checks B's decisions over
 * HTTP: refused before B installs the change, allowed after. The key cache is off so that a user's role
 * (a user row, not the policy) is read fresh on both.
 */
describe.each(DB_KINDS)('the policy across two instances on %s', (kind) => {
  describe('installed by sync() (the poll function)', () => {
    let a: TestServer;
    let b: TestServer;
    let ca: Client;
    let cb: Client;
    let admin: string;

    beforeAll(async () => {
      // An hour between polls: within a test only sync() installs anything on B.
      [a, b] = await startInstances(kind, 2, { settings: { auth: { apiKeyCacheTtl: 0 }, cluster: { pollInterval: '1h' }, resources: [{ type: 'library' }] } });
      ca = client(a!.url);
      cb = client(b!.url);
      admin = await setupAdmin(ca);
    });
    afterAll(async () => {
      await a?.close();
      await b?.close();
    });

    let made = 0;
    const person = async (role = 'user') => createUser(a, ca, admin, { username: `member${++made}`, role });

    it('applies on B a role created on A (and given to a user) once B has synced', async () => {
      const created = await ca.post(ROLES, { key: admin, body: { name: 'auditor', permissions: ['users.list'] } });
      expect(created.status, created.text).toBe(201);
      // B knows no such role yet: its role list is the one it compiled.
      expect((await cb.get(`${ROLES}/auditor`, { key: admin })).status).toBe(404);
      // B's request schema takes the roles it knows: it refuses the name until it has synced.
      const { user, key } = await person();
      expect(errorCode(await cb.patch(`${USERS}/${user.id}`, { key: admin, body: { role: 'auditor' } }))).toBe('request.invalid');
      expect((await ca.patch(`${USERS}/${user.id}`, { key: admin, body: { role: 'auditor' } })).status).toBe(200);
      expect(errorCode(await cb.get(USERS, { key }))).toBe('auth.forbidden');
      expect(await b.usher.authz.authorizer.sync()).toBe(true);
      expect(b.usher.authz.authorizer.version).toBe(a.usher.authz.authorizer.version);
      expect((await cb.get(USERS, { key })).status).toBe(200);
      expect((await cb.get(`${ROLES}/auditor`, { key: admin })).body).toMatchObject({ name: 'auditor', permissions: ['users.list'] });
      // Nothing moved since: a second sync installs nothing and keeps the same compiled policy.
      const installed = b.usher.authz.policy;
      expect(await b.usher.authz.authorizer.sync()).toBe(false);
      expect(b.usher.authz.policy).toBe(installed);
    });

    it("applies on B a permission granted to a user on A, and its revocation", async () => {
      const { user, key } = await person();
      expect(errorCode(await cb.get(`${AUTH}/audit`, { key }))).toBe('auth.forbidden');
      expect((await ca.patch(`${USERS}/${user.id}/permissions`, { key: admin, body: { grant: ['audit.read'] } })).status).toBe(200);
      expect(errorCode(await cb.get(`${AUTH}/audit`, { key }))).toBe('auth.forbidden');
      await b.usher.authz.authorizer.sync();
      expect((await cb.get(`${AUTH}/audit`, { key })).status).toBe(200);
      expect((await ca.patch(`${USERS}/${user.id}/permissions`, { key: admin, body: { revoke: ['audit.read'] } })).status).toBe(200);
      expect((await cb.get(`${AUTH}/audit`, { key })).status).toBe(200);
      await b.usher.authz.authorizer.sync();
      expect(errorCode(await cb.get(`${AUTH}/audit`, { key }))).toBe('auth.forbidden');
    });

    it('applies on B a grant given and revoked on A once B has synced its grants', async () => {
      const { user, key } = await person();
      const libraries = (c: Client) => c.get(`${AUTH}/authz/resources?type=library&action=read`, { key });
      const given = await ca.post(`${USERS}/${user.id}/grants`, { key: admin, body: { type: 'library', id: '3' } });
      expect(given.status, given.text).toBe(201);
      expect((await libraries(ca)).body).toEqual({ ids: ['3'] });
      expect((await libraries(cb)).body).toEqual({ ids: [] });
      expect(await b.usher.authz.grants.sync()).toBe(true);
      expect((await libraries(cb)).body).toEqual({ ids: ['3'] });
      // Nothing changed since: nothing is read again.
      expect(await b.usher.authz.grants.sync()).toBe(false);
      expect((await ca.del(`${USERS}/${user.id}/grants/${given.body.id}`, { key: admin })).status).toBe(204);
      expect((await libraries(cb)).body).toEqual({ ids: ['3'] });
      expect(await b.usher.authz.grants.sync()).toBe(true);
      expect((await libraries(cb)).body).toEqual({ ids: [] });
    });

    it("applies on B a change of a role's permissions and inheritance made on A", async () => {
      expect((await ca.post(ROLES, { key: admin, body: { name: 'reader', permissions: ['users.read'] } })).status).toBe(201);
      expect((await ca.post(ROLES, { key: admin, body: { name: 'clerk', permissions: [] } })).status).toBe(201);
      await b.usher.authz.authorizer.sync();
      const { user, key } = await person('clerk');
      expect(errorCode(await cb.get(USERS, { key }))).toBe('auth.forbidden');
      expect((await ca.put(`${ROLES}/clerk`, { key: admin, body: { permissions: ['users.list'], inherits: ['reader'] } })).status).toBe(200);
      expect(errorCode(await cb.get(USERS, { key }))).toBe('auth.forbidden');
      await b.usher.authz.authorizer.sync();
      expect((await cb.get(USERS, { key })).status).toBe(200);
      expect((await cb.get(`${USERS}/${user.id}/permissions`, { key: admin })).body).toMatchObject({ role: 'clerk', inherited: ['users.list', 'users.read'] });
      // And back: B drops what A took away.
      expect((await ca.put(`${ROLES}/clerk`, { key: admin, body: { permissions: [], inherits: [] } })).status).toBe(200);
      await b.usher.authz.authorizer.sync();
      expect(errorCode(await cb.get(USERS, { key }))).toBe('auth.forbidden');
      expect(b.usher.authz.digest).toBe(a.usher.authz.digest);
    });

    it('ignores a policy older than the installed one', async () => {
      const older = b.usher.authz.policy;
      const olderVersion = b.usher.authz.authorizer.version;
      expect((await ca.post(ROLES, { key: admin, body: { name: 'newer', permissions: ['users.list'] } })).status).toBe(201);
      await b.usher.authz.authorizer.sync();
      const newer = b.usher.authz.policy;
      expect(newer.roles.has('newer')).toBe(true);
      // A refresh that compiled before the change and finishes after the sync: refused, the newer one stays.
      expect(b.usher.authz.authorizer.install(older, olderVersion)).toBe(false);
      expect(b.usher.authz.policy).toBe(newer);
      expect((await cb.get(`${ROLES}/newer`, { key: admin })).status).toBe(200);
    });
  });

  describe('installed by the poll', () => {
    let a: TestServer;
    let b: TestServer;
    let ca: Client;
    let cb: Client;

    beforeAll(async () => {
      [a, b] = await startInstances(kind, 2, { settings: { auth: { apiKeyCacheTtl: 0 }, cluster: { pollInterval: '100ms' } } });
      ca = client(a!.url);
      cb = client(b!.url);
    });
    afterAll(async () => {
      await a?.close();
      await b?.close();
    });

    it("installs A's change on B without any call, by B's own poll", async () => {
      const admin = await setupAdmin(ca);
      const { user, key } = await createUser(a, ca, admin, { username: 'polled', role: 'user' });
      expect((await ca.post(ROLES, { key: admin, body: { name: 'lister', permissions: ['users.list'] } })).status).toBe(201);
      expect((await ca.patch(`${USERS}/${user.id}`, { key: admin, body: { role: 'lister' } })).status).toBe(200);
      // Waits for the version A's change wrote to be installed on B.
      await b.usher.authz.authorizer.installed(a.usher.authz.authorizer.version);
      expect(b.usher.authz.policy.roles.has('lister')).toBe(true);
      expect((await cb.get(USERS, { key })).status).toBe(200);
    });

    it('logs once per outage and keeps deciding with the installed policy while the database is unreachable', async () => {
      // An Authorizer of its own on the same database, on a connection this test closes under it.
      const db = openDatabase(a.usher.config);
      const authz = await Authorizer.open(db);
      const lines: { level: number; msg: string }[] = [];
      const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
      // Counts the polls: the third failed one is awaited before looking at the log.
      const sync = authz.sync.bind(authz);
      let polls = 0;
      let thirdFailed!: () => void;
      const third = new Promise<void>((resolve) => (thirdFailed = resolve));
      authz.sync = () => {
        const n = ++polls;
        const done = sync();
        if (n === 3) done.catch(() => thirdFailed());
        return done;
      };
      const before = authz.policy;
      await db.destroy();
      const poll = pollPolicy(authz, 100, log);
      await third;
      await poll.stop();
      const warnings = lines.filter((l) => l.level === 40);
      // Logged once per outage, however many polls failed.
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.msg).toMatch(/could not read the policy version/);
      expect(authz.policy).toBe(before);
      expect(authz.can('admin', 'users', 'list')).toBe(true);
    });

    it('polls every interval, never two at once, and not after stop()', async () => {
      // An Authorizer of its own (the instances' polls call theirs): the policy files alone.
      const authz = await Authorizer.load();
      let polls = 0;
      let release!: () => void;
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
      try {
        // The first poll hangs until released: the ticks meanwhile start none.
        authz.sync = () => {
          polls++;
          return polls === 1 ? new Promise<boolean>((resolve) => (release = () => resolve(false))) : Promise.resolve(false);
        };
        const poll = pollPolicy(authz, 100, pino({ level: 'silent' }));
        await vi.advanceTimersByTimeAsync(350);
        expect(polls).toBe(1);
        release();
        await vi.advanceTimersByTimeAsync(200);
        expect(polls).toBe(3);
        await poll.stop();
        await vi.advanceTimersByTimeAsync(1_000);
        expect(polls).toBe(3);
      } finally {
        vi.useRealTimers();
      }
    });
  });
});
