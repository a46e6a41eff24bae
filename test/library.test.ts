import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUsher, type PublicUser, type Usher } from '../src/index.js';
import { testSettings } from './helpers/app.js';
import { client, type Client } from './helpers/http.js';
import { createUser, setupAdmin } from './helpers/users.js';

/** A host app in the manner of Bindery: each user's library is their own. */
describe('library mode: Usher mounted in a host app', () => {
  const books: { owner: number; title: string }[] = [];
  const created: PublicUser[] = [];
  const deleted: PublicUser[] = [];
  let usher: Usher;
  let server: Server;
  let cleanup: () => Promise<void>;
  let c: Client;

  beforeAll(async () => {
    const made = testSettings('sqlite');
    cleanup = made.cleanup;
    usher = await createUsher({
      config: made.settings,
      logger: pino({ level: 'silent' }),
      onUserCreated: (u) => void created.push(u),
      onUserDeleted: (u) => void deleted.push(u),
      permissions: [{ name: 'cert.create', description: 'Issue a certificate.' }],
    });
    const app = express();
    app.use(usher.router);
    app.use('/api/books', express.json(), usher.authenticate, usher.requireAuth);
    app.get('/api/books', (req, res) => {
      res.json(books.filter((b) => b.owner === req.user!.id));
    });
    app.post('/api/books', (req, res) => {
      books.push({ owner: req.user!.id, title: String(req.body.title) });
      res.status(201).json({ ok: true });
    });
    app.get('/api/admin/stats', usher.authenticate, usher.requireRole('admin'), (_req, res) => {
      res.json({ books: books.length });
    });
    app.get('/api/admin/users-count', usher.authenticate, usher.requirePermission('users', 'list'), async (_req, res) => {
      res.json({ users: await usher.users.count() });
    });
    // A PKI-like route guarded by the host app's own permission.
    app.post('/api/certs', usher.authenticate, usher.requirePermission('cert', 'create'), (_req, res) => {
      res.status(201).json({ issued: true });
    });
    server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    c = client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await usher?.close();
    await cleanup?.();
  });

  it("isolates each user's records and guards host routes by role", async () => {
    const adminKey = await setupAdmin(c);
    const fakeServer = { usher, url: '', dataDir: '', close: async () => {} };
    const alice = await createUser(fakeServer, c, adminKey, { username: 'alice', password: 'alice-password' });
    const bob = await createUser(fakeServer, c, adminKey, { username: 'bob', password: 'bob-password' });
    expect((await c.post('/api/books', { key: alice.key, body: { title: 'Dune' } })).status).toBe(201);
    expect((await c.post('/api/books', { key: bob.key, body: { title: 'Emma' } })).status).toBe(201);
    expect((await c.get('/api/books', { key: alice.key })).body).toEqual([{ owner: alice.user.id, title: 'Dune' }]);
    expect((await c.get('/api/books', { key: bob.key })).body).toEqual([{ owner: bob.user.id, title: 'Emma' }]);
    expect((await c.get('/api/books')).status).toBe(401);
    expect((await c.get('/api/admin/stats', { key: alice.key })).status).toBe(403);
    expect((await c.get('/api/admin/stats', { key: adminKey })).body).toEqual({ books: 2 });
    expect((await c.get('/api/admin/users-count', { key: bob.key })).status).toBe(403);
    expect((await c.get('/api/admin/users-count', { key: adminKey })).body).toEqual({ users: 3 });
  });

  it('calls onUserCreated and onUserDeleted, and leaves the host\'s data to the host', async () => {
    expect(created.map((u) => u.username)).toEqual(['admin', 'alice', 'bob']);
    const adminKey = usher.users.readApiKey((await usher.users.get(1))!)!;
    const bob = (await usher.users.findByUsername('bob'))!;
    const removed = await c.del(`/api/v1/auth/users/${bob.id}`, { key: adminKey });
    expect([removed.status, removed.body]).toEqual([200, { id: bob.id }]);
    await new Promise((r) => setTimeout(r, 20));
    expect(deleted.map((u) => u.username)).toEqual(['bob']);
    expect(deleted[0]).not.toHaveProperty('passwordHash');
    expect(books.filter((b) => b.owner === bob.id)).toHaveLength(1);
  });

  it('refuses a key in the URL even nested, under the extended query parser of a host app', async () => {
    const host = express();
    host.set('query parser', 'extended');
    host.get('/search', usher.authenticate, (_req, res) => {
      res.json({ ok: true });
    });
    host.use((err: { status?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(err.status ?? 500).json({ status: err.status });
    });
    const s = await new Promise<Server>((resolve) => {
      const started = host.listen(0, '127.0.0.1', () => resolve(started));
    });
    try {
      const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
      const key = `usk_${'a'.repeat(43)}`;
      expect((await fetch(`${url}/search?filter[token]=${key}`)).status).toBe(400);
      expect((await fetch(`${url}/search?filter[api_key]=x`)).status).toBe(400);
      expect((await fetch(`${url}/search?filter[q]=books`)).status).toBe(200);
    } finally {
      s.close();
    }
  });
  it("guards a host route by the app's own permission: admin holds it, a user through a direct grant or a custom role", async () => {
    const admin = await usher.users.findByUsername('admin');
    const key = usher.users.readApiKey(admin!)!;
    const fakeServer = { usher, url: '', dataDir: '', close: async () => {} };
    expect((await c.post('/api/certs', { key })).status).toBe(201);
    const issuer = await createUser(fakeServer, c, key, { username: 'issuer' });
    expect((await c.post('/api/certs', { key: issuer.key })).status).toBe(403);
    const granted = await c.patch(`/api/v1/auth/users/${issuer.user.id}/permissions`, { key, body: { grant: ['cert.create'] } });
    expect(granted.status, granted.text).toBe(200);
    expect((await c.post('/api/certs', { key: issuer.key })).status).toBe(201);
    await c.patch(`/api/v1/auth/users/${issuer.user.id}/permissions`, { key, body: { revoke: ['cert.create'] } });
    expect((await c.post('/api/certs', { key: issuer.key })).status).toBe(403);
    expect((await c.post('/api/v1/auth/roles', { key, body: { name: 'issuers', inherits: ['user'], permissions: ['cert.create'] } })).status).toBe(201);
    expect((await c.patch(`/api/v1/auth/users/${issuer.user.id}`, { key, body: { role: 'issuers' } })).status).toBe(200);
    expect((await c.post('/api/certs', { key: issuer.key })).status).toBe(201);
  });

  it('guards host routes for a scoped key by its permissions, never by its owner’s role', async () => {
    const admin = await usher.users.findByUsername('admin');
    const key = usher.users.readApiKey(admin!)!;
    const make = async (owner: string, name: string, permissions: string[]) => {
      const res = await c.post('/api/v1/auth/me/api-keys', { key: owner, body: { name, permissions } });
      expect(res.status, res.text).toBe(201);
      return res.body.key as string;
    };
    const certs = await make(key, 'pki-bot', ['cert.create']);
    expect((await c.post('/api/certs', { key: certs })).status).toBe(201);
    expect((await c.get('/api/admin/users-count', { key: certs })).status).toBe(403);
    // The owner is an admin, but a role check cannot be narrowed by a scope: refused.
    expect((await c.get('/api/admin/stats', { key: certs })).status).toBe(403);
    expect((await c.get('/api/admin/stats', { key })).status).toBe(200);
    const counter = await make(key, 'counter', ['users.list']);
    expect((await c.get('/api/admin/users-count', { key: counter })).status).toBe(200);
    expect((await c.post('/api/certs', { key: counter })).status).toBe(403);

    // A direct grant revoked: the key loses it on the next request.
    const fakeServer = { usher, url: '', dataDir: '', close: async () => {} };
    const clerk = await createUser(fakeServer, c, key, { username: 'clerk' });
    expect((await c.patch(`/api/v1/auth/users/${clerk.user.id}/permissions`, { key, body: { grant: ['cert.create'] } })).status).toBe(200);
    const clerkCerts = await make(clerk.key, 'clerk-bot', ['cert.create']);
    expect((await c.post('/api/certs', { key: clerkCerts })).status).toBe(201);
    expect((await c.patch(`/api/v1/auth/users/${clerk.user.id}/permissions`, { key, body: { revoke: ['cert.create'] } })).status).toBe(200);
    expect((await c.post('/api/certs', { key: clerkCerts })).status).toBe(403);
  });
});
