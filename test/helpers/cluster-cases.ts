import { SYSTEM_ORIGIN } from '../../src/events/stream.js';
import type { Usher } from '../../src/index.js';
import { client, type Reply } from './http.js';

/**
 * The changes one instance must tell the others about (issue 14, part 3), shared by test/cluster.test.ts
 * (which shows B agrees) and bench/cluster.ts (which times how long B takes). No vitest here.
 */

const AUTH = '/api/v1/auth';
const USERS = `${AUTH}/users`;

export interface Instance {
  readonly url: string;
  readonly usher: Usher;
}

export interface Cluster {
  readonly a: Instance;
  readonly b: Instance;
  /** An admin's API key. */
  readonly admin: string;
}

export interface Prepared {
  /** A request to B, answered the old way before the change (and now: it warms B's caches), the new way once B agrees. */
  probe(): Promise<Reply>;
  /** The change, made through A; answers A's reply (2xx). */
  change(): Promise<Reply>;
  /** Whether B's reply is the old answer. */
  before(reply: Reply): boolean;
  /** Whether B's reply shows the change. */
  agreed(reply: Reply): boolean;
}

export interface Case {
  readonly name: string;
  /** The probe reads a session from the session store itself (Redis: read on every request, no cache). */
  readonly sessionStore?: boolean;
  prepare(cluster: Cluster, n: number): Promise<Prepared>;
}

const status = (code: number) => (reply: Reply) => reply.status === code;

function fail(what: string, reply: Reply): never {
  throw new Error(`${what}: ${reply.status} ${reply.text.slice(0, 300)}`);
}

/** A user made through A, with their key (read as its owner would) and, with a password, a session cookie. */
async function person(cluster: Cluster, name: string, body: Record<string, unknown> = {}, login = true): Promise<{ id: number; key: string; cookie?: string }> {
  const ca = client(cluster.a.url);
  const made = await ca.post(USERS, { key: cluster.admin, body: { username: name, ...body } });
  if (made.status !== 201) fail(`creating ${name}`, made);
  const id = made.body.id as number;
  const key = cluster.a.usher.users.readApiKey((await cluster.a.usher.users.get(id))!)!;
  if (typeof body.password !== 'string' || !login) return { id, key };
  const jar: { cookie?: string } = {};
  const signedIn = await client(cluster.a.url, jar).post(`${AUTH}/login`, { body: { username: name, password: body.password } });
  if (signedIn.status !== 200 || !jar.cookie) fail(`logging ${name} in`, signedIn);
  return { id, key, cookie: jar.cookie };
}

const withCookie = (cookie: string) => ({ headers: { cookie } });

export const CASES: readonly Case[] = [
  {
    name: 'disable',
    async prepare(cluster, n) {
      const u = await person(cluster, `disabled${n}`);
      return {
        probe: () => client(cluster.b.url).get(`${AUTH}/me`, { key: u.key }),
        change: () => client(cluster.a.url).post(`${USERS}/${u.id}/status`, { key: cluster.admin, body: { active: false } }),
        before: status(200),
        agreed: (r) => r.status === 401 || r.status === 403,
      };
    },
  },
  {
    name: 'delete',
    async prepare(cluster, n) {
      const u = await person(cluster, `deleted${n}`);
      return {
        probe: () => client(cluster.b.url).get(`${AUTH}/me`, { key: u.key }),
        change: () => client(cluster.a.url).del(`${USERS}/${u.id}`, { key: cluster.admin }),
        before: status(200),
        agreed: status(401),
      };
    },
  },
  {
    name: 'role change (admin demoted)',
    async prepare(cluster, n) {
      const u = await person(cluster, `demoted${n}`, { role: 'admin', password: `demoted-password-${n}` }, false);
      return {
        probe: () => client(cluster.b.url).get(USERS, { key: u.key }),
        change: () => client(cluster.a.url).patch(`${USERS}/${u.id}`, { key: cluster.admin, body: { role: 'user' } }),
        before: status(200),
        agreed: status(403),
      };
    },
  },
  {
    name: 'key rotation (the old key refused)',
    async prepare(cluster, n) {
      const u = await person(cluster, `rotated${n}`);
      return {
        probe: () => client(cluster.b.url).get(`${AUTH}/me`, { key: u.key }),
        change: () => client(cluster.a.url).post(`${USERS}/${u.id}/api-key`, { key: cluster.admin }),
        before: status(200),
        agreed: status(401),
      };
    },
  },
  {
    name: 'password reset (sessions end)',
    sessionStore: true,
    async prepare(cluster, n) {
      const u = await person(cluster, `reset${n}`, { password: `reset-password-${n}` });
      return {
        probe: () => client(cluster.b.url).get(`${AUTH}/me`, withCookie(u.cookie!)),
        change: () => client(cluster.a.url).post(`${USERS}/${u.id}/reset-password`, { key: cluster.admin, body: { password: `another-password-${n}` } }),
        before: status(200),
        agreed: status(401),
      };
    },
  },
  {
    name: 'logout',
    sessionStore: true,
    async prepare(cluster, n) {
      const u = await person(cluster, `logout${n}`, { password: `logout-password-${n}` });
      return {
        probe: () => client(cluster.b.url).get(`${AUTH}/me`, withCookie(u.cookie!)),
        change: () => client(cluster.a.url).post(`${AUTH}/logout`, { ...withCookie(u.cookie!), body: {} }),
        before: status(200),
        agreed: status(401),
      };
    },
  },
  {
    name: 'session ended by an admin',
    sessionStore: true,
    async prepare(cluster, n) {
      const u = await person(cluster, `ended${n}`, { password: `ended-password-${n}` });
      const listed = await client(cluster.a.url).get(`${USERS}/${u.id}/sessions`, { key: cluster.admin });
      const session = (listed.body as { id: string; kind?: string }[] | undefined)?.[0];
      if (listed.status !== 200 || !session) fail('listing sessions', listed);
      return {
        probe: () => client(cluster.b.url).get(`${AUTH}/me`, withCookie(u.cookie!)),
        change: () => client(cluster.a.url).del(`${USERS}/${u.id}/sessions/${encodeURIComponent(session.id)}`, { key: cluster.admin }),
        before: status(200),
        agreed: status(401),
      };
    },
  },
  {
    name: 'device token ended by an admin',
    async prepare(cluster, n) {
      const u = await person(cluster, `device${n}`);
      const device = await cluster.a.usher.devices.issue(u.id, { name: `Phone ${n}` }, SYSTEM_ORIGIN);
      return {
        probe: () => client(cluster.b.url).get(`${AUTH}/me`, { headers: { authorization: `Bearer ${device.token}` } }),
        change: () => client(cluster.a.url).del(`${USERS}/${u.id}/sessions/${encodeURIComponent(device.id)}`, { key: cluster.admin }),
        before: status(200),
        agreed: status(401),
      };
    },
  },
  {
    name: 'policy change (custom role edited)',
    async prepare(cluster, n) {
      const role = `lister${n}`;
      const made = await client(cluster.a.url).post(`${AUTH}/roles`, { key: cluster.admin, body: { name: role, permissions: ['users.list'] } });
      if (made.status !== 201) fail('creating a role', made);
      // B installs the new role before it is given (else B refuses the unknown name): no cache of B's is warm yet.
      await cluster.b.usher.authz.authorizer.sync();
      const u = await person(cluster, `lister${n}`, { role });
      return {
        probe: () => client(cluster.b.url).get(USERS, { key: u.key }),
        change: () => client(cluster.a.url).put(`${AUTH}/roles/${role}`, { key: cluster.admin, body: { permissions: ['users.read'] } }),
        before: status(200),
        agreed: status(403),
      };
    },
  },
  {
    name: 'permission change (PATCH /users/{id}/permissions)',
    async prepare(cluster, n) {
      const u = await person(cluster, `auditor${n}`);
      return {
        probe: () => client(cluster.b.url).get(`${AUTH}/audit`, { key: u.key }),
        change: () => client(cluster.a.url).patch(`${USERS}/${u.id}/permissions`, { key: cluster.admin, body: { grant: ['audit.read'] } }),
        before: status(403),
        agreed: status(200),
      };
    },
  },
  {
    name: 'grant change',
    async prepare(cluster, n) {
      const u = await person(cluster, `granted${n}`);
      const ids = (r: Reply) => (r.status === 200 ? ((r.body as { ids?: string[] }).ids ?? []) : undefined);
      return {
        probe: () => client(cluster.b.url).get(`${AUTH}/authz/resources?type=library&action=read`, { key: u.key }),
        change: () => client(cluster.a.url).post(`${USERS}/${u.id}/grants`, { key: cluster.admin, body: { type: 'library', id: '3' } }),
        before: (r) => ids(r)?.length === 0,
        agreed: (r) => ids(r)?.includes('3') === true,
      };
    },
  },
  {
    name: 'organisation change',
    async prepare(cluster, n) {
      const org = await client(cluster.a.url).post(`${AUTH}/orgs`, { key: cluster.admin, body: { name: `Org ${n}` } });
      if (org.status !== 201) fail('creating an organisation', org);
      const u = await person(cluster, `member${n}`);
      return {
        probe: () => client(cluster.b.url).get(`${AUTH}/me`, { key: u.key }),
        change: () => client(cluster.a.url).patch(`${USERS}/${u.id}`, { key: cluster.admin, body: { organizationId: org.body.id } }),
        before: (r) => r.status === 200 && r.body.organizationId === null,
        agreed: (r) => r.status === 200 && r.body.organizationId === org.body.id,
      };
    },
  },
];
