import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalAccount } from '../src/users/service.js';
import { startServer, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';

const ORIGIN = { actor: { kind: 'idp', provider: 'oidc:corp' } } as const;

/** A new OIDC account, as provisioning asks for it; `over` changes what differs. */
function account(over: Partial<ExternalAccount>): ExternalAccount {
  return {
    provider: 'oidc:https://issuer.example',
    subject: 'sub',
    username: 'name',
    name: null,
    email: null,
    role: 'user',
    authSource: 'oidc',
    usernameTaken: 'suffix',
    linkEmail: false,
    create: true,
    ...over,
  };
}

// New external accounts are written in batches without the users lock (UserService.createFree); these are the
// races that path must lose to the locked one, never creating a second account or a half-made one.
describe.each(DB_KINDS)('first external logins at once on %s', (kind) => {
  let server: TestServer;
  const users = () => server.usher.users;
  const count = async (table: string, where: Record<string, unknown>) => Number(((await server.usher.db(table).where(where).count({ n: '*' })) as { n: number | string }[])[0]!.n);

  beforeAll(async () => {
    server = await startServer(kind, { settings: { resources: [{ type: 'library', actions: ['read', 'write'], defaultForNewUsers: ['1'] }] } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('gives one identity one account when it comes under several names at once, leaving no account under the others', async () => {
    const names = ['ray', 'ray-m', 'raymond', 'ray.m'];
    const results = await Promise.all(names.map((username) => users().provisionExternal(account({ subject: 'ray-sub', username }), ORIGIN)));
    const ids = new Set(results.map((r) => r!.user.id));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => r!.created)).toHaveLength(1);
    const [id] = [...ids];
    expect(await count('identities', { subject: 'ray-sub' })).toBe(1);
    const made = (await server.usher.db('users').whereIn('username_key', names).select('id')) as { id: number }[];
    expect(made.map((r) => Number(r.id))).toEqual([id]);
  });

  it('answers a name taken meanwhile with the next free one (suffix), and an email taken meanwhile is left out', async () => {
    const results = await Promise.all(
      ['a', 'b', 'c'].map((s) => users().provisionExternal(account({ subject: `sam-${s}`, username: 'sam', email: 'sam@example.com' }), ORIGIN)),
    );
    expect(results.map((r) => r!.user.username).sort()).toEqual(['sam', 'sam-2', 'sam-3']);
    expect(results.filter((r) => r!.user.email === 'sam@example.com')).toHaveLength(1);
    expect(results.every((r) => r!.created)).toBe(true);
  });

  it('gives every account of a batch its default grants, with their audit rows, read in before it answers', async () => {
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => users().provisionExternal(account({ subject: `reader-${i}`, username: `reader-${i}` }), ORIGIN)));
    for (const r of results) {
      expect(r!.created).toBe(true);
      expect(server.usher.grants.grantsOf(r!.user.id)).toEqual([expect.objectContaining({ type: 'library', resourceId: '1', actions: ['read'], source: 'default' })]);
      expect(await count('audit_log', { type: 'grant.created', target_user_id: r!.user.id })).toBe(1);
      expect(await count('audit_log', { type: 'user.created', target_user_id: r!.user.id })).toBe(1);
    }
  });

  it('answers identity lookups made at once, of several providers, each with its own user or null', async () => {
    const a = (await users().provisionExternal(account({ subject: 'look-a', username: 'look-a' }), ORIGIN))!.user;
    const b = (await users().provisionExternal(account({ provider: 'proxy', subject: 'look-a', username: 'look-b' }), ORIGIN))!.user;
    const asked = [
      ['oidc:https://issuer.example', 'look-a'],
      ['proxy', 'look-a'],
      ['proxy', 'nobody'],
      ['oidc:https://issuer.example', 'look-a'],
      ['oidc:other', 'look-a'],
    ] as const;
    const found = await Promise.all(asked.map(([provider, subject]) => users().findByIdentity(provider, subject)));
    expect(found.map((u) => u?.id ?? null)).toEqual([a.id, b.id, null, a.id, null]);
  });

  it('fails only the account at fault when a batch cannot be written', async () => {
    // A subject longer than its column: PostgreSQL refuses the row; SQLite does not check lengths, so there it is made.
    const long = 'x'.repeat(600);
    const results = await Promise.allSettled([
      users().provisionExternal(account({ subject: long, username: 'longsub' }), ORIGIN),
      ...Array.from({ length: 5 }, (_, i) => users().provisionExternal(account({ subject: `fine-${i}`, username: `fine-${i}` }), ORIGIN)),
    ]);
    expect(results.slice(1).map((r) => r.status)).toEqual(Array(5).fill('fulfilled'));
    expect(results[0]!.status).toBe(kind === 'postgres' ? 'rejected' : 'fulfilled');
    expect(await count('users', { username_key: 'longsub' })).toBe(kind === 'postgres' ? 0 : 1);
  });
});

// A full batch records an event per account and per default grant: on SQLite one multi-row INSERT holds at
// most 500 rows (a compound SELECT of 500 terms), which 100 accounts of 6 default grants (700 audit rows) pass.
describe.each(DB_KINDS)('a full batch of first logins with many default grants on %s', (kind) => {
  let server: TestServer;
  const GRANTS = ['1', '2', '3', '4', '5', '6'];

  beforeAll(async () => {
    server = await startServer(kind, { settings: { resources: [{ type: 'library', actions: ['read', 'write'], defaultForNewUsers: GRANTS }] } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('creates every account with its grants and audit rows', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 100 }, (_, i) => server.usher.users.provisionExternal(account({ subject: `many-${i}`, username: `many-${i}` }), ORIGIN)),
    );
    expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason).slice(0, 120))).toEqual([]);
    const ids = results.map((r) => (r as PromiseFulfilledResult<{ user: { id: number } } | null>).value!.user.id);
    const audited = (await server.usher.db('audit_log').where({ type: 'grant.created' }).whereIn('target_user_id', ids).count({ n: '*' })) as { n: number | string }[];
    expect(Number(audited[0]!.n)).toBe(100 * GRANTS.length);
  });
});
