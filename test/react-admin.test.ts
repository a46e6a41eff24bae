import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client } from './helpers/http.js';
import { HttpError, jsonServerProvider, type DataProvider } from './helpers/ra-data-json-server.js';
import { createUser, setupAdmin } from './helpers/users.js';

const API = '/api/v1/auth';

/** The call's rejection, which must be an HttpError. */
async function refusal(call: Promise<unknown>): Promise<HttpError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof HttpError)) throw new Error(`expected an HttpError, got ${String(err)}`);
  return err;
}

/** The error message of a refusal, which must be a JSON error of this code. */
function message(err: HttpError, code: string): string {
  const body = err.body as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  return body.error.message;
}

describe.each(DB_KINDS)("react-admin's ra-data-json-server on resource users, on %s", (kind) => {
  let server: TestServer;
  let c: Client;
  let adminKey: string;
  let ra: DataProvider;
  /** Users made for the lists, beyond the first page of 50. */
  const USERS = 70;

  beforeAll(async () => {
    server = await startServer(kind);
    c = client(server.url);
    adminKey = await setupAdmin(c);
    ra = jsonServerProvider(`${server.url}${API}`, adminKey);
    for (let i = 2; i <= USERS; i++) {
      const made = await c.post(`${API}/users`, { key: adminKey, body: { username: `ra-${String(i).padStart(3, '0')}` } });
      expect(made.body.id).toBe(i);
    }
  });
  afterAll(async () => {
    await server?.close();
  });

  describe('getList', () => {
    it('accepts the 1000 rows the prev/next buttons and the export ask for', async () => {
      const { data, total } = await ra.getList('users', { pagination: { page: 1, perPage: 1000 }, sort: { field: 'id', order: 'ASC' } });
      expect(total).toBe(USERS);
      expect(data.map((u) => u.id)).toEqual(Array.from({ length: USERS }, (_, i) => i + 1));
    });

    it('pages and sorts as the list view asks', async () => {
      const { data, total } = await ra.getList('users', { pagination: { page: 2, perPage: 25 }, sort: { field: 'id', order: 'DESC' } });
      expect(total).toBe(USERS);
      expect(data.map((u) => u.id)).toEqual(Array.from({ length: 25 }, (_, i) => USERS - 25 - i));
    });

    it('takes limit=1000 and refuses more than 1000 rows with a 400 naming the parameter', async () => {
      const limit = await c.get(`${API}/users?limit=1000`, { key: adminKey });
      expect(limit.status).toBe(200);
      expect(limit.body).toHaveLength(USERS);
      for (const [query, field] of [
        ['limit=1001', 'limit'],
        ['_start=0&_end=1001', '_end'],
      ]) {
        const res = await c.get(`${API}/users?${query}`, { key: adminKey });
        expect(res.status).toBe(400);
        expect(res.body.error.message.startsWith(`${field}:`)).toBe(true);
      }
    });
  });

  describe('getMany', () => {
    it('returns exactly the users asked for (GET /users?id=9&id=61)', async () => {
      const { data } = await ra.getMany('users', { ids: [9, 61] });
      expect(data.map((u) => [u.id, u.username])).toEqual([
        [9, 'ra-009'],
        [61, 'ra-061'],
      ]);
    });

    it('returns them all however many, up to 1000, and leaves out ids that name no user', async () => {
      const ids = Array.from({ length: 1000 }, (_, i) => 1000 - i);
      const { data } = await ra.getMany('users', { ids });
      expect(data.map((u) => u.id)).toEqual(Array.from({ length: USERS }, (_, i) => i + 1));
      const some = await c.get(`${API}/users?id=3&id=3&id=999999`, { key: adminKey });
      expect(some.body.map((u: { id: number }) => u.id)).toEqual([3]);
      expect(some.headers.get('x-total-count')).toBe('1');
    });

    it('combines the id filter with the other filters and paging', async () => {
      const res = await c.get(`${API}/users?id=1&id=5&id=6&id=7&role=user&_sort=id&_order=DESC&_start=1&_end=3`, { key: adminKey });
      expect(res.status).toBe(200);
      expect(res.body.map((u: { id: number }) => u.id)).toEqual([6, 5]);
      expect(res.headers.get('x-total-count')).toBe('3');
    });

    it.each([
      ['a non-integer', 'id=abc'],
      ['zero', 'id=0'],
      ['a negative id', 'id=-1'],
      ['a fraction', 'id=1.5'],
      ['an empty id', 'id='],
      ['an id past the safe integers', 'id=99999999999999999'],
      ['1001 ids', Array.from({ length: 1001 }, (_, i) => `id=${i + 1}`).join('&')],
    ])('answers 400 naming id for %s', async (_what, query) => {
      const res = await c.get(`${API}/users?${query}`, { key: adminKey });
      expect(res.status).toBe(400);
      expect(errorCode(res)).toBe('request.invalid');
      expect(res.body.error.message.startsWith('id:')).toBe(true);
    });
  });

  describe('update as the <Edit> form sends it: the whole record, one field changed', () => {
    it('changes that field and ignores the read-only ones sent as they were', async () => {
      const { data: record } = await ra.getOne('users', { id: 10 });
      expect(Object.keys(record)).toEqual(expect.arrayContaining(['id', 'createdAt', 'updatedAt', 'hasPassword', 'authSource', 'lastLoginAt']));
      const { data } = await ra.update('users', { id: 10, data: { ...record, email: 'ten@example.test' }, previousData: record });
      expect(data).toMatchObject({ id: 10, username: 'ra-010', email: 'ten@example.test', createdAt: record.createdAt });
      expect((await ra.getOne('users', { id: 10 })).data.email).toBe('ten@example.test');
    });

    it('accepts the times the server moves by itself as they were when the form was read', async () => {
      const { data: record } = await ra.getOne('users', { id: 11 });
      expect(record.lastActiveAt).toBeNull();
      // Meanwhile the user is active, and another admin edits the record: lastActiveAt and updatedAt move on.
      await server.usher.users.touchLastActive(11, Date.now());
      const other = await c.patch(`${API}/users/11`, { key: adminKey, body: { name: 'Eleven' } });
      expect(other.body.lastActiveAt).not.toBeNull();
      expect(other.body.updatedAt > (record.updatedAt as string)).toBe(true);
      const { data } = await ra.update('users', { id: 11, data: { ...record, email: 'eleven@example.test' } });
      expect(data).toMatchObject({ email: 'eleven@example.test', lastActiveAt: other.body.lastActiveAt });
    });

    it('promotes with the role changed in the whole record, and needs no set-role to send the role unchanged', async () => {
      const { data: record } = await ra.getOne('users', { id: 12 });
      const { data: promoted } = await ra.update('users', { id: 12, data: { ...record, role: 'admin', password: 'twelve-password' } });
      expect(promoted).toMatchObject({ role: 'admin', hasPassword: true });
      const { data: demoted } = await ra.update('users', { id: 12, data: { ...promoted, role: 'user' } });
      expect(demoted.role).toBe('user');
    });

    it('lets a user edit their own record the same way, and nothing more', async () => {
      const { user, key } = await createUser(server, c, adminKey, { username: 'ra-self', password: 'ra-self-password' });
      const own = jsonServerProvider(`${server.url}${API}`, key);
      const { data: record } = await own.getOne('users', { id: user.id });
      const { data } = await own.update('users', { id: user.id, data: { ...record, name: 'Self Edited' } });
      expect(data).toMatchObject({ name: 'Self Edited', role: 'user' });
      for (const change of [{ role: 'admin' }, { active: false }, { createdAt: '2000-01-01T00:00:00.000Z' }]) {
        const err = await refusal(own.update('users', { id: user.id, data: { ...record, ...change } }));
        expect(err.status).toBe(403);
        expect(message(err, 'auth.forbidden')).toMatch(new RegExp(`^${Object.keys(change)[0]}: `));
      }
      expect((await ra.getOne('users', { id: user.id })).data).toMatchObject({ role: 'user', active: true, createdAt: record.createdAt });
    });

    it.each([
      ['id', 99],
      ['id', '13'],
      ['username', 'renamed'],
      ['createdAt', '2000-01-01T00:00:00.000Z'],
      ['hasPassword', true],
      ['authSource', 'oidc:corp'],
      ['active', false],
      ['lastLoginAt', '2999-01-01T00:00:00.000Z'],
      ['lastActiveAt', 'yesterday'],
      ['updatedAt', '2999-01-01T00:00:00.000Z'],
    ])('refuses the read-only %s changed to %j with a 400 naming it, and changes nothing', async (field, value) => {
      const { data: record } = await ra.getOne('users', { id: 13 });
      const err = await refusal(ra.update('users', { id: 13, data: { ...record, email: 'thirteen@example.test', [field]: value } }));
      expect(err.status).toBe(400);
      expect(message(err, 'request.invalid')).toMatch(new RegExp(`^${field}: is read-only`));
      expect((await ra.getOne('users', { id: 13 })).data).toEqual(record);
    });

    it('still refuses a field the user object does not have', async () => {
      const { data: record } = await ra.getOne('users', { id: 14 });
      for (const extra of [{ isAdmin: true }, JSON.parse('{"__proto__": {"role": "admin"}}') as Record<string, unknown>]) {
        const err = await refusal(ra.update('users', { id: 14, data: { ...record, ...extra } }));
        expect(err.status).toBe(400);
        expect(message(err, 'request.invalid')).toBe(`${Object.keys(extra)[0]}: unknown field`);
      }
      expect((await ra.getOne('users', { id: 14 })).data).toEqual(record);
    });

    it('updateMany sends the same data to each id and reads each id back', async () => {
      const { data } = await ra.updateMany('users', { ids: [15, 16], data: { name: 'Bulk' } });
      expect(data).toEqual([15, 16]);
      expect((await ra.getMany('users', { ids: [15, 16] })).data.map((u) => u.name)).toEqual(['Bulk', 'Bulk']);
    });
  });

  describe('create, delete and deleteMany', () => {
    it('create reads the new id', async () => {
      const { data } = await ra.create('users', { data: { username: 'ra-created', password: 'ra-created-password' } });
      expect(data.id).toBe((await c.get(`${API}/users?q=ra-created`, { key: adminKey })).body[0].id);
    });

    it('delete answers 200 {"id"} as seed 001 does', async () => {
      const { data } = await ra.delete('users', { id: 20 });
      expect(data).toEqual({ id: 20 });
      expect((await c.get(`${API}/users/20`, { key: adminKey })).status).toBe(404);
    });

    it('deleteMany reads the id of every answer', async () => {
      const { data } = await ra.deleteMany('users', { ids: [21, 22, 23] });
      expect(data).toEqual([21, 22, 23]);
      expect((await ra.getMany('users', { ids: [21, 22, 23, 24] })).data.map((u) => u.id)).toEqual([24]);
    });

    it('delete of a missing user is still a 404', async () => {
      const err = await refusal(ra.delete('users', { id: 20 }));
      expect(err.status).toBe(404);
      expect(message(err, 'user.not_found')).toBeTruthy();
    });
  });
});
