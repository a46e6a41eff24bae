import express, { Router } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EndpointTable } from '../src/http/endpoint-table.js';
import { endpoint } from '../src/http/endpoint.js';
import { startServer, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client } from './helpers/http.js';
import { setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';

/** Input a database refuses (a NUL, an id past 32 bits) is a 400 naming the field, never a 500. */
describe.each(DB_KINDS)('input the database would refuse, on %s', (kind) => {
  let server: TestServer;
  let c: Client;
  let adminKey: string;
  beforeAll(async () => {
    server = await startServer(kind);
    c = client(server.url);
    adminKey = await setupAdmin(c);
  });
  afterAll(() => server?.close());

  it('refuses a NUL in a login username, anonymously, with a 400', async () => {
    const res = await c.post(`${AUTH}/login`, { body: { username: 'admin\u0000', password: 'x' } });
    expect(res.status, res.text).toBe(400);
    expect(res.body.error.message).toBe('username: must not hold control characters');
  });

  it.each([
    [`${AUTH}/users?q=%00`, 'q: must not hold control characters'],
    [`${AUTH}/users?role=a%00`, 'role: must not hold control characters'],
    [`${AUTH}/users?id=99999999999`, 'id: must be at most 2147483647'],
    [`${AUTH}/users/99999999999`, 'id: must be at most 2147483647'],
    [`${AUTH}/users/2147483648/sessions`, 'id: must be at most 2147483647'],
    [`${AUTH}/audit?actor=9999999999`, 'actor: must be a user id'],
    [`${AUTH}/audit?user=2147483648`, 'user: must be a user id'],
  ])('GET or DELETE %s is a 400', async (path, message) => {
    const res = await c.call(path.endsWith('/sessions') ? 'DELETE' : 'GET', path, { key: adminKey });
    expect(res.status, res.text).toBe(400);
    expect(errorCode(res)).toBe('request.invalid');
    expect(res.body.error.message).toBe(message);
  });

  it('still finds the largest id there can be: a 404', async () => {
    const res = await c.get(`${AUTH}/users/2147483647`, { key: adminKey });
    expect(res.status).toBe(404);
    expect(errorCode(res)).toBe('user.not_found');
  });
});

describe('forward auth and the back-channel logout keep their answers', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer('sqlite', {
      settings: {
        server: { publicUrl: 'http://127.0.0.1:8787' },
        oidc: { providers: [{ id: 'kc', issuer: 'http://127.0.0.1:9/realms/x', clientId: 'usher', clientSecret: 's' }] },
      },
    });
  });
  afterAll(() => server.close());

  it('answers 405 to POST /verify before looking at its credentials', async () => {
    const res = await client(server.url).post(`${AUTH}/verify`, { key: 'usk_not-a-key' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
  });

  it('answers a repeated logout_token as an invalid logout token, and an unknown provider first', async () => {
    const form = { raw: 'logout_token=a&logout_token=b', contentType: 'application/x-www-form-urlencoded' };
    const known = await client(server.url).post(`${AUTH}/oidc/kc/backchannel-logout`, form);
    expect(errorCode(known)).toBe('oidc.invalid_logout_token');
    const unknown = await client(server.url).post(`${AUTH}/oidc/nope/backchannel-logout`, form);
    expect(errorCode(unknown)).toBe('oidc.unknown_provider');
  });
});

describe('the endpoint table', () => {
  const table = () => new EndpointTable(() => true);
  const ok = (method: 'get' | 'post', path = '/x') =>
    endpoint({ method, path, tag: 't', summary: 's', access: 'public', responses: { 200: { description: 'd', body: z.object({}) } }, handle: () => ({ body: {} }) });

  it('refuses a path split over two mounts of one router (its second methods would answer 405)', () => {
    const t = table();
    const router = Router();
    t.mount(router, '', [ok('get')], { errors: [] });
    expect(() => t.mount(router, '', [ok('post')], { errors: [] })).toThrow(/mounted twice/);
  });

  it('refuses a method declared twice on one path', () => {
    expect(() => table().mount(Router(), '', [ok('get'), ok('get')], { errors: [] })).toThrow(/declared twice/);
  });

  it('describes the same routes once when a second app mounts them', () => {
    const t = table();
    t.mount(express().router as unknown as Router, '', [ok('get')], { errors: [] });
    t.mount(Router(), '', [ok('get')], { errors: [] });
    expect(t.mounted).toHaveLength(1);
  });
});
