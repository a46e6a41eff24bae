import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import helmet from 'helmet';
import { HELMET_OPTIONS } from '../src/http/security-headers.js';
import { afterAll, describe, expect, it } from 'vitest';
import { startServer } from './helpers/app.js';
import { client } from './helpers/http.js';
import { startServerProcess } from './helpers/process.js';

/** The standalone server as `npm start` runs it: no configuration but a port. */
describe('standalone server', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'usher-start-'));
  afterAll(() => rmSync(cwd, { recursive: true, force: true }));

  it("serves with no configuration, keeps data in ./data, and runs the seed's curl commands", async () => {
    const run = await startServerProcess({}, cwd);
    let adminKey: string;
    try {
      const c = client(run.url);
      const health = await c.get('/healthz');
      expect(health.status).toBe(200);
      expect(health.headers.get('x-powered-by')).toBeNull();
      expect(health.headers.get('x-content-type-options')).toBe('nosniff');
      expect(health.headers.get('content-security-policy')).toContain("default-src 'self'");
      expect((await c.get('/readyz')).body).toEqual({ status: 'ready' });

      const setup = await c.post('/api/v1/auth/setup', { body: { username: 'admin', password: 'admin-password-1' } });
      expect(setup.status).toBe(201);
      adminKey = setup.body.apiKey;

      // The seed's commands, as written there (host and key aside).
      const create = await c.post('/api/v1/auth/users', { key: adminKey, body: { username: 'alice', password: 'correct-horse-battery', role: 'user' } });
      expect(create.status).toBe(201);
      expect(create.body).toMatchObject({ id: 2, username: 'alice', role: 'user' });
      expect((await c.put('/api/v1/auth/users/2', { key: adminKey, body: { role: 'admin' } })).body.role).toBe('admin');
      expect((await c.put('/api/v1/auth/users/2', { key: adminKey, body: { role: 'user' } })).body.role).toBe('user');
      const list = await c.get('/api/v1/auth/users', { key: adminKey });
      expect(list.body.map((u: { username: string }) => u.username)).toEqual(['admin', 'alice']);
      const removed = await c.del('/api/v1/auth/users/2', { key: adminKey });
      expect([removed.status, removed.body]).toEqual([200, { id: 2 }]);
    } finally {
      await run.stop();
    }

    const secret = statSync(join(cwd, 'data', 'secret'));
    expect(secret.mode & 0o777).toBe(0o600);
    expect(statSync(join(cwd, 'data', 'usher.db')).isFile()).toBe(true);

    const lines = run.output().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const requests = lines.filter((l) => l.msg === 'request');
    // One line per request the test made, no more (health, ready, setup, then the five commands).
    expect(requests.length).toBe(8);
    expect(requests.find((l) => l.path === '/api/v1/auth/users' && l.method === 'POST')).toMatchObject({ status: 201, userId: 1, auth: 'api-key' });
    const everything = run.output();
    expect(everything).not.toContain(adminKey);
    expect(everything).not.toContain('correct-horse-battery');
    expect(everything).not.toContain(readFileSync(join(cwd, 'data', 'secret'), 'utf8').trim());

    // A restart reuses the secret and the database: the same key still works.
    const again = await startServerProcess({}, cwd);
    try {
      const me = await client(again.url).get('/api/v1/auth/me', { key: adminKey });
      expect(me.status).toBe(200);
      expect(me.body.username).toBe('admin');
      expect((await client(again.url).get('/api/v1/auth/me/api-key', { key: adminKey })).body.apiKey).toBe(adminKey);
    } finally {
      await again.stop();
    }
  });
});

describe('readiness', () => {
  it('answers /readyz with 503 service.unavailable when the database does not answer, /healthz still 200', async () => {
    const server = await startServer('sqlite');
    try {
      const c = client(server.url);
      expect((await c.get('/readyz')).status).toBe(200);
      await server.usher.db.destroy();
      const down = await c.get('/readyz');
      expect(down.status).toBe(503);
      expect(down.body.error.code).toBe('service.unavailable');
      expect((await c.get('/healthz')).status).toBe(200);
    } finally {
      await server.close().catch(() => {});
    }
  });
});

describe('security headers', () => {
  it("sends exactly helmet's headers on every answer: health, API, errors, not found", async () => {
    const reference = express();
    reference.disable('x-powered-by');
    // helmet with Usher's one change (no upgrade-insecure-requests: the console over plain http on a LAN).
    reference.use(helmet(HELMET_OPTIONS));
    reference.get('/', (_req, res) => {
      res.end();
    });
    const ref: Server = await new Promise((resolve) => {
      const s = reference.listen(0, '127.0.0.1', () => resolve(s));
    });
    const server = await startServer('sqlite');
    try {
      const expected = new Headers((await fetch(`http://127.0.0.1:${(ref.address() as AddressInfo).port}/`)).headers);
      const names = [...expected.keys()].filter((name) => !['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding'].includes(name));
      expect(names).toEqual(expect.arrayContaining(['content-security-policy', 'strict-transport-security', 'x-frame-options', 'cross-origin-opener-policy']));
      for (const path of ['/healthz', '/api/v1/auth/me', '/api/v1/auth/users/1', '/nowhere', '/api/v1/auth/nowhere']) {
        const res = await fetch(`${server.url}${path}`);
        for (const name of names) expect(res.headers.get(name), `${path}: ${name}`).toBe(expected.get(name));
        expect(res.headers.get('x-powered-by'), path).toBeNull();
      }
    } finally {
      await server.close();
      await new Promise((resolve) => ref.close(resolve));
    }
  });
});
