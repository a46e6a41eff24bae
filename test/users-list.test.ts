import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client, type Reply } from './helpers/http.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';
const USERS = `${AUTH}/users`;
const SORTS = ['id', 'username', 'name', 'email', 'role', 'createdAt', 'lastActiveAt'] as const;

const nextOf = (reply: Reply): string | undefined => /^<([^>]+)>; rel="next"$/.exec(reply.headers.get('link') ?? '')?.[1];

describe.each(DB_KINDS)('users list paging, counting and search on %s', (kind) => {
  let server: TestServer;
  let c: Client;
  let admin: string;
  let acme: number;

  /** Every page of a walk by the Link header, from `first`; `between` runs after each page. */
  async function walk(first: string, between?: (page: number) => Promise<void>): Promise<number[]> {
    const seen: number[] = [];
    let url: string | undefined = first;
    for (let page = 0; url !== undefined; page++) {
      const res = await c.get(url, { key: admin });
      expect(res.status, res.text).toBe(200);
      seen.push(...(res.body as { id: number }[]).map((u) => u.id));
      url = nextOf(res);
      if (url && between) await between(page);
      expect(page).toBeLessThan(200);
    }
    return seen;
  }

  /** Every user by offset pages of `limit`, as react-admin pages. */
  async function byOffset(query: string, limit: number): Promise<number[]> {
    const seen: number[] = [];
    for (let offset = 0; ; offset += limit) {
      const res = await c.get(`${USERS}?${query}&offset=${offset}&limit=${limit}`, { key: admin });
      expect(res.status, res.text).toBe(200);
      seen.push(...(res.body as { id: number }[]).map((u) => u.id));
      if (offset + limit >= Number(res.headers.get('x-total-count'))) return seen;
    }
  }

  const dbCount = async (where: Record<string, unknown> = {}) => Number(((await server.usher.db('users').where(where).count({ n: '*' }).first()) as { n: string | number }).n);

  beforeAll(async () => {
    server = await startServer(kind);
    c = client(server.url);
    admin = await setupAdmin(c);
    acme = (await c.post(`${AUTH}/orgs`, { key: admin, body: { name: 'Acme' } })).body.id;
    // Names, emails and last activity missing on some (NULLs come last in both orders), and repeated (ties by id).
    for (let i = 0; i < 23; i++) {
      await createUser(server, c, admin, {
        username: `walker-${String(i).padStart(2, '0')}`,
        ...(i % 3 === 0 ? {} : { name: i % 4 === 0 ? 'Same Name' : `Walker ${(i * 7) % 23}` }),
        ...(i % 5 === 0 ? {} : { email: `walker${i}@mail${i % 3}.example` }),
        ...(i % 6 === 0 ? { role: 'admin', password: 'walker-password-1' } : {}),
        ...(i % 4 === 1 ? { organizationId: acme } : {}),
      });
    }
    // Last activity as the once-a-minute writer leaves it: some equal, some none.
    const ids = ((await server.usher.db('users').select('id').orderBy('id')) as { id: number }[]).map((r) => Number(r.id));
    for (const [i, id] of ids.entries()) if (i % 3 !== 0) await server.usher.db('users').where({ id }).update({ last_active_at: 1_800_000_000_000 + (i % 4) * 1000 });
  });
  afterAll(() => server?.close());

  it('walks every user exactly once by the Link header, in the order offset pages give, for every sort and order', async () => {
    const all = await dbCount();
    for (const sort of SORTS) {
      for (const order of ['asc', 'desc']) {
        const query = `sort=${sort}&order=${order}`;
        const walked = await walk(`${USERS}?${query}&limit=4`);
        expect(walked, query).toHaveLength(all);
        expect(new Set(walked).size, query).toBe(all);
        // Offset pages of another size split the NULL range elsewhere: same order.
        expect(await byOffset(query, 5), query).toEqual(walked);
      }
    }
  });

  it('puts NULLs last in both orders', async () => {
    for (const order of ['asc', 'desc']) {
      const res = await c.get(`${USERS}?sort=name&order=${order}&limit=1000`, { key: admin });
      const names = (res.body as { name: string | null }[]).map((u) => u.name);
      const firstNull = names.indexOf(null);
      expect(firstNull).toBeGreaterThan(0);
      expect(names.slice(firstNull).every((n) => n === null)).toBe(true);
      const named = names.slice(0, firstNull) as string[];
      expect(named).toEqual([...named].sort((a, b) => (order === 'asc' ? (a < b ? -1 : a > b ? 1 : 0) : a < b ? 1 : a > b ? -1 : 0)));
    }
  });

  it('returns every user that stays exactly once while users are created and deleted during the walk', async () => {
    const before = ((await c.get(`${USERS}?limit=1000`, { key: admin })).body as { id: number; username: string }[]).filter((u) => u.username.startsWith('walker-'));
    const doomed = before.filter((_, i) => i % 4 === 2).map((u) => u.id);
    const made: number[] = [];
    const walked = await walk(`${USERS}?sort=name&order=desc&limit=3`, async (page) => {
      const gone = doomed[page];
      if (gone !== undefined) expect((await c.del(`${USERS}/${gone}`, { key: admin })).status).toBe(200);
      const res = await c.post(USERS, { key: admin, body: { username: `during-${page}`, name: page % 2 ? null : `Walker ${page}` } });
      expect(res.status, res.text).toBe(201);
      made.push(res.body.id);
    });
    expect(new Set(walked).size).toBe(walked.length);
    const stayed = before.map((u) => u.id).filter((id) => !doomed.includes(id));
    for (const id of stayed) expect(walked).toContain(id);
    // Clean up for the other tests: the counts below compare with the table anyway.
    for (const id of made) await c.del(`${USERS}/${id}`, { key: admin });
  });

  it('sends Link on every page that has a next one, keeping the filters', async () => {
    const first = await c.get(`${USERS}?role=admin&_start=0&_end=2&_sort=username&_order=DESC`, { key: admin });
    expect(first.status).toBe(200);
    const next = nextOf(first)!;
    const url = new URL(next, server.url);
    expect(url.pathname).toBe(USERS);
    expect(url.searchParams.get('role')).toBe('admin');
    expect(url.searchParams.get('limit')).toBe('2');
    expect(url.searchParams.has('_start')).toBe(false);
    const last = await c.get(`${USERS}?limit=1000`, { key: admin });
    expect(last.headers.get('link')).toBeNull();
    const exact = await c.get(`${USERS}?limit=${await dbCount()}`, { key: admin });
    expect(exact.headers.get('link')).toBeNull();
  });

  it('refuses a cursor it did not make, one for another sort, and one with an offset: 400 naming after', async () => {
    const next = nextOf(await c.get(`${USERS}?sort=name&limit=2`, { key: admin }))!;
    const after = new URL(next, server.url).searchParams.get('after')!;
    const bad = [
      `after=${after}&sort=email`,
      `after=${after}&sort=name&order=desc`,
      `after=${after}&sort=name&offset=2`,
      'after=not-a-cursor!',
      `after=${Buffer.from('[1,2').toString('base64url')}`,
      `after=${Buffer.from('["id","asc",null,0]').toString('base64url')}`,
      `after=${Buffer.from('["createdAt","asc","soon",3]').toString('base64url')}`,
      `after=${Buffer.from('["username","asc",null,3]').toString('base64url')}`,
      'after=a&after=b',
    ];
    for (const query of bad) {
      const res = await c.get(`${USERS}?${query}`, { key: admin });
      expect(res.status, query).toBe(400);
      expect(errorCode(res)).toBe('request.invalid');
      expect(res.body.error.message, query).toMatch(/after/);
    }
    expect((await c.get(`${USERS}?after=${after}&sort=name&offset=0`, { key: admin })).status).toBe(200);
  });

  it('keeps X-Total-Count exact through creation, role, disabling, organisation moves and deletion', async () => {
    const total = async (query = '') => Number((await c.get(`${USERS}?limit=1&${query}`, { key: admin })).headers.get('x-total-count'));
    const check = async () => {
      expect(await total()).toBe(await dbCount());
      expect(await total('role=admin')).toBe(await dbCount({ role: 'admin' }));
      expect(await total('active=false')).toBe(await dbCount({ active: false }));
      expect(await total('role=user&active=true')).toBe(await dbCount({ role: 'user', active: true }));
    };
    await check();
    // Concurrent creations on several connections (PostgreSQL: several counter slots), then their deletion.
    const many = await Promise.all(Array.from({ length: 12 }, (_, i) => c.post(USERS, { key: admin, body: { username: `burst-${i}`, ...(i % 3 ? {} : { role: 'admin', password: 'burst-password-1' }) } })));
    for (const res of many) expect(res.status, res.text).toBe(201);
    await check();
    await Promise.all(many.map((res) => c.del(`${USERS}/${res.body.id}`, { key: admin })));
    await check();
    const made = await c.post(USERS, { key: admin, body: { username: 'counted', password: 'counted-password-1' } });
    await check();
    expect((await c.patch(`${USERS}/${made.body.id}`, { key: admin, body: { role: 'admin' } })).status).toBe(200);
    await check();
    const disabled = await c.post(`${USERS}/${made.body.id}/status`, { key: admin, body: { active: false } });
    expect(disabled.status, disabled.text).toBe(200);
    await check();
    expect((await c.patch(`${USERS}/${made.body.id}`, { key: admin, body: { organizationId: acme } })).status).toBe(200);
    expect(await server.usher.users.list({ offset: 0, limit: 1, sort: 'id', order: 'asc', orgId: acme }).then((p) => p.total)).toBe(await dbCount({ org_id: acme }));
    expect((await c.del(`${USERS}/${made.body.id}`, { key: admin })).status).toBe(200);
    await check();
    expect(await server.usher.users.list({ offset: 0, limit: 1, sort: 'id', order: 'asc', orgId: acme }).then((p) => p.total)).toBe(await dbCount({ org_id: acme }));
  });

  it('searches substrings of username, name and email from 3 characters, a username prefix below', async () => {
    const found = async (q: string) => {
      const res = await c.get(`${USERS}?limit=1000&q=${encodeURIComponent(q)}`, { key: admin });
      expect(res.status, res.text).toBe(200);
      const names = (res.body as { username: string }[]).map((u) => u.username).sort();
      expect(Number(res.headers.get('x-total-count'))).toBe(names.length);
      return names;
    };
    await createUser(server, c, admin, { username: 'zed_100%', name: 'Zoë Ünder', email: 'zed@Strange-Domain.example' });
    // Some walkers were deleted by the walk above: those left.
    const left = ((await server.usher.db('users').select('username')) as { username: string }[]).map((u) => u.username).filter((u) => u.includes('ker-1')).sort();
    expect(left.length).toBeGreaterThan(3);
    expect(await found('ker-1')).toEqual(left);
    expect(await found('ZOË ÜN')).toEqual(['zed_100%']);
    expect(await found('strange-dom')).toEqual(['zed_100%']);
    expect(await found('d_1')).toEqual(['zed_100%']);
    expect(await found('00%')).toEqual(['zed_100%']);
    expect(await found('er_')).toEqual([]);
    expect(await found('"x"')).toEqual([]);
    expect(await found('ze')).toEqual(['zed_100%']);
    expect(await found('z%')).toEqual([]);
    expect((await found('wa')).length).toBe(await server.usher.db('users').where('username_key', 'like', 'wa%').count({ n: '*' }).first().then((r) => Number((r as { n: number | string }).n)));
    expect((await found('wa')).length).toBeGreaterThan(10);
    // The search index follows renames and deletions.
    const zed = (await c.get(`${USERS}?q=zed_`, { key: admin })).body[0].id as number;
    expect((await c.patch(`${USERS}/${zed}`, { key: admin, body: { name: 'Plain' } })).status).toBe(200);
    expect(await found('Zoë')).toEqual([]);
    expect(await found('plai')).toEqual(['zed_100%']);
    expect((await c.del(`${USERS}/${zed}`, { key: admin })).status).toBe(200);
    expect(await found('plai')).toEqual([]);
  });

  it('reads lists on read-only connections of their own on SQLite, on the one pool on PostgreSQL', async () => {
    const { db, reads } = server.usher;
    if (kind === 'postgres') expect(reads).toBe(db);
    else {
      expect(reads).not.toBe(db);
      await expect(reads('users').where({ id: -1 }).update({ name: 'x' })).rejects.toThrow(/readonly|read-only|query_only/i);
    }
  });

  it('serves /readyz, a login and a write while a read transaction is held open', async () => {
    const password = 'reader-password-1';
    await createUser(server, c, admin, { username: 'reader', password });
    const held = await server.usher.reads.transaction({ isolationLevel: 'repeatable read' });
    try {
      const seenBefore = Number(((await held('users').count({ n: '*' }).first()) as { n: string | number }).n);
      expect((await c.get('/readyz')).status).toBe(200);
      expect((await client(server.url, {}).post(`${AUTH}/login`, { body: { username: 'reader', password } })).status).toBe(200);
      const made = await c.post(USERS, { key: admin, body: { username: 'written-meanwhile' } });
      expect(made.status, made.text).toBe(201);
      // The list reads on other connections: it sees the write at once.
      expect((await c.get(`${USERS}?q=written-meanwhile`, { key: admin })).body).toHaveLength(1);
      // Still open: its snapshot has not moved.
      expect(Number(((await held('users').count({ n: '*' }).first()) as { n: string | number }).n)).toBe(seenBefore);
    } finally {
      await held.rollback();
    }
  });
});
