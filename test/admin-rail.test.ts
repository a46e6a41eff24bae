import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode } from './helpers/http.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';
const ROLES = `${AUTH}/roles`;
const USERS = `${AUTH}/users`;
const TRIALS = 200;
/** Independent databases the trials are shared across, run at once: the rail holds per database. */
const ARENAS = 2;

/**
 * Issue 12's rail: two global admins demote each other at once, 200 trials, while the role they demote to
 * is edited and other roles are deleted with their holders moved. Exactly one demotion wins each time and
 * one enabled admin always remains. Only a user's role can lower the admin count: `admin` is a built-in
 * (not edited, renamed or deleted: role.built_in) and cannot be inherited, so no custom role edit gives or
 * takes admin's power; deleting a custom role with moveTo moves holders of that custom role only, never
 * admins (and moving them to `admin` raises the count). Those paths run here beside the demotions because
 * they take the same lock.
 */
describe.each(DB_KINDS)('the last-admin rail under concurrency on %s', (kind) => {
  let servers: TestServer[] = [];
  beforeAll(async () => {
    servers = await Promise.all(Array.from({ length: ARENAS }, () => startServer(kind)));
  });
  afterAll(() => Promise.all(servers.map((s) => s.close())));

  async function arena(server: TestServer, trials: number): Promise<Map<string, number>> {
    const c = client(server.url);
    const first = await setupAdmin(c);
    const firstId = (await c.get(`${AUTH}/me`, { key: first })).body.id as number;
    expect((await c.post(ROLES, { key: first, body: { name: 'staff', permissions: ['users.list'] } })).status).toBe(201);
    const other = await createUser(server, c, first, { username: 'second', password: 'a-long-password', role: 'admin' });
    const holder = await createUser(server, c, first, { username: 'holder', role: 'user' });
    const admins = [
      { id: firstId, key: first },
      { id: other.user.id as number, key: other.key },
    ];
    const losers = new Map<string, number>();
    for (let trial = 0; trial < trials; trial++) {
      const [a, b] = trial % 2 ? [admins[1]!, admins[0]!] : [admins[0]!, admins[1]!];
      // Every 5th trial edits the role at once, every 20th deletes another: each compiles the policy, the
      // costly part (all of them would take a minute on PostgreSQL).
      const deleting = trial % 20 === 0 ? `passing${trial}` : undefined;
      if (deleting) {
        expect((await c.post(ROLES, { key: first, body: { name: deleting, permissions: ['users.read'] } })).status).toBe(201);
        expect((await c.patch(`${USERS}/${holder.user.id}`, { key: first, body: { role: deleting } })).status).toBe(200);
      }
      const results = await Promise.all([
        c.patch(`${USERS}/${b.id}`, { key: a.key, body: { role: 'staff' } }),
        c.patch(`${USERS}/${a.id}`, { key: b.key, body: { role: 'staff' } }),
        ...(trial % 5 === 0 ? [c.put(`${ROLES}/staff`, { key: a.key, body: { permissions: trial % 2 ? ['users.list'] : ['users.list', 'users.read'] } })] : []),
        ...(deleting ? [c.del(`${ROLES}/${deleting}?moveTo=staff`, { key: b.key })] : []),
      ]);
      const demotions = results.slice(0, 2);
      expect(demotions.filter((r) => r.status === 200).length, JSON.stringify(demotions.map((r) => r.text))).toBe(1);
      const code = errorCode(demotions.find((r) => r.status !== 200)!);
      losers.set(code, (losers.get(code) ?? 0) + 1);
      const { users } = await server.usher.users.list({ offset: 0, limit: 100, sort: 'id', order: 'asc', role: 'admin' });
      const enabled = users.filter((u) => u.role === 'admin' && u.active);
      expect(enabled).toHaveLength(1);
      const remaining = admins.find((x) => x.id === enabled[0]!.id)!;
      const demoted = admins.find((x) => x !== remaining)!;
      expect((await c.patch(`${USERS}/${demoted.id}`, { key: remaining.key, body: { role: 'admin' } })).status).toBe(200);
      // Refused when its admin was demoted first (no roles.manage then): deleted by the remaining one.
      if (deleting && server.usher.authz.roles.has(deleting)) expect((await c.del(`${ROLES}/${deleting}?moveTo=staff`, { key: remaining.key })).status).toBe(204);
    }
    expect((await server.usher.users.get(holder.user.id))!.role).toBe('staff');
    await server.usher.audit.flush();
    const [last] = (await c.get(`${AUTH}/audit?type=policy.changed`, { key: first })).body;
    expect(last.detail.digest).toBe(server.usher.authz.digest);
    return losers;
  }

  it(`lets exactly one of two admins demoting each other win, ${TRIALS} trials, while roles are edited and deleted`, { timeout: 60_000 }, async () => {
    const tallies = await Promise.all(servers.map((s) => arena(s, TRIALS / ARENAS)));
    const losers = new Map<string, number>();
    for (const t of tallies) for (const [code, n] of t) losers.set(code, (losers.get(code) ?? 0) + n);
    expect([...losers.values()].reduce((x, y) => x + y, 0)).toBe(TRIALS);
    // The loser is refused inside its transaction: its actor, read again there, is no longer an admin (the
    // guard answers before the last-admin rail is reached), or the rail itself refuses.
    expect([...losers.keys()].filter((code) => !['user.last_admin', 'auth.forbidden', 'authz.escalation', 'authz.target_holds_more'].includes(code)), JSON.stringify([...losers])).toEqual([]);
  });
});
