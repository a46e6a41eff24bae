import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { auditEntries } from './helpers/audit.js';
import { DB_KINDS } from './helpers/db.js';
import { client, type Client } from './helpers/http.js';
import { getFrom, memoryLogger, proxySettings } from './helpers/proxy.js';
import { setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';

/** Identity headers as Authelia sends them; undefined groups leave Remote-Groups out (the claim is absent). */
const as = (server: TestServer, user: string, groups?: string, path?: string) =>
  getFrom(server, '127.0.0.1', { 'Remote-User': user, ...(groups === undefined ? {} : { 'Remote-Groups': groups }) }, path);

describe.each(DB_KINDS)('IdP groups to organisation roles (orgGroups) on %s', (kind) => {
  let server: TestServer;
  let c: Client;
  let admin: string;
  let acme: number;
  const log = memoryLogger();

  beforeAll(async () => {
    server = await startServer(kind, {
      settings: {
        ...proxySettings(),
        orgGroups: [
          { group: 'acme-admins', org: 'acme', role: 'admin', provider: 'proxy' },
          { group: 'acme-staff', org: 'Acme', role: 'user' },
          { group: 'ghost-admins', org: 'ghost', role: 'admin' },
        ],
      },
      hooks: { logger: log.logger },
    });
    c = client(server.url);
    admin = await setupAdmin(c);
    acme = (await c.post(`${AUTH}/orgs`, { key: admin, body: { name: 'Acme' } })).body.id;
  });
  afterAll(() => server?.close());

  it('gives a new account the organisation and role its groups give, the strongest role winning', async () => {
    const me = await as(server, 'olga', 'staff,acme-staff,acme-admins');
    expect(me.status, me.text).toBe(200);
    expect(me.body).toMatchObject({ role: 'user', organizationId: acme, orgRole: 'admin' });
    // An org admin at once: their organisation's users, nobody else's.
    const list = await as(server, 'olga', 'acme-admins', `${AUTH}/users`);
    expect(list.status, list.text).toBe(200);
    expect(list.body.map((u: { username: string }) => u.username)).toEqual(['olga']);
  });

  it('changes nothing when the groups header is absent, and syncs at each login when present', async () => {
    expect((await as(server, 'pavel', 'acme-staff')).body).toMatchObject({ organizationId: acme, orgRole: 'user' });
    expect((await as(server, 'pavel')).body).toMatchObject({ organizationId: acme, orgRole: 'user' });
    const promoted = await as(server, 'pavel', 'acme-admins');
    expect(promoted.body).toMatchObject({ organizationId: acme, orgRole: 'admin' });
    const pavel = promoted.body.id as number;
    expect((await auditEntries(server, c, admin, 'idp.org_role_synced', pavel))[0]).toMatchObject({
      actor: { kind: 'idp', provider: 'proxy' },
      detail: { from: acme, to: acme, orgRoleFrom: 'user', orgRoleTo: 'admin' },
    });
    // Groups known, none matching: the organisation role goes, the membership stays.
    expect((await as(server, 'pavel', 'staff')).body).toMatchObject({ organizationId: acme, orgRole: null });
    expect((await as(server, 'pavel')).body).toMatchObject({ organizationId: acme, orgRole: null });
  });

  it('skips, with a warning, a rule naming an organisation that does not exist', async () => {
    const me = await as(server, 'quinn', 'ghost-admins');
    expect(me.status, me.text).toBe(200);
    expect(me.body).toMatchObject({ organizationId: null, orgRole: null });
    expect(log.withMessage('organisation role sync: no organisation of that name; left unchanged').length).toBeGreaterThan(0);
  });

  it('refuses a rule naming a role that does not exist at start', async () => {
    await expect(startServer(kind, { settings: { orgGroups: [{ group: 'g', org: 'acme', role: 'nope' }] } })).rejects.toThrow(/orgGroups\[0\]\.role/);
  });
});
