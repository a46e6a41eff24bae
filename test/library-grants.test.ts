import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { join } from 'node:path';
import express from 'express';
import knex, { type Knex } from 'knex';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, createUsher, type Usher } from '../src/index.js';
import { testSettings } from './helpers/app.js';
import { client, errorCode, type Client } from './helpers/http.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';

/** A media server in the manner of Navidrome: its own libraries table, each user seeing the libraries granted. */
describe('library mode: grants and permissions asked of Usher by a host app', () => {
  let usher: Usher;
  let host: Knex;
  let server: Server;
  let cleanup: () => Promise<void>;
  let c: Client;

  beforeAll(async () => {
    const made = testSettings('sqlite');
    cleanup = made.cleanup;
    usher = await createUsher({
      config: made.settings,
      logger: pino({ level: 'silent' }),
      resources: [{ type: 'library' }],
      permissions: [{ name: 'cert.create', description: 'Issue a certificate.' }],
    });
    host = knex({ client: 'sqlite3', connection: { filename: join(made.dataDir, 'host.sqlite') }, useNullAsDefault: true });
    await host.schema.createTable('libraries', (t) => {
      t.integer('id').primary();
      t.string('name').notNullable();
    });
    await host('libraries').insert([
      { id: 1, name: 'Music' },
      { id: 2, name: 'Audiobooks' },
      { id: 3, name: 'Podcasts' },
      { id: 4, name: 'Private' },
    ]);
    const app = express();
    app.use(usher.router);
    app.get('/libraries', usher.authenticate, usher.requireAuth, async (req, res) => {
      const granted = usher.authz.resources(req.user!, 'library', 'read');
      if ('all' in granted) return void res.json(await host('libraries').orderBy('id'));
      // The ids come as text: as the table's key type, bound as parameters of the IN.
      res.json(granted.ids.length === 0 ? [] : await host('libraries').whereIn('id', granted.ids.map(Number)).orderBy('id'));
    });
    app.get('/libraries/:id', usher.authenticate, usher.requireGrant('library', (req) => req.params.id), async (req, res) => {
      res.json(await host('libraries').where({ id: Number(req.params.id) }).first());
    });
    app.post('/certs', usher.authenticate, usher.requirePermission('cert.create'), (_req, res) => {
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
    await host?.destroy();
    await usher?.close();
    await cleanup?.();
  });

  it('lists only the libraries granted (an SQL IN over the host table), guards one library and the PKI route', async () => {
    const admin = await setupAdmin(c);
    const fake = { usher, url: '', dataDir: '', close: async () => {} };
    expect((await c.post(`${AUTH}/roles`, { key: admin, body: { name: 'issuer', permissions: ['cert.create'] } })).status).toBe(201);
    const alice = await createUser(fake, c, admin, { username: 'alice', password: 'alice-password' });
    const bob = await createUser(fake, c, admin, { username: 'bob', password: 'bob-password', role: 'issuer' });
    for (const id of [2, 3]) expect((await c.post(`${AUTH}/users/${alice.user.id}/grants`, { key: admin, body: { type: 'library', id } })).status).toBe(201);

    const names = async (key?: string) => {
      const res = await c.get('/libraries', key === undefined ? {} : { key });
      return res.status === 200 ? res.body.map((l: { name: string }) => l.name) : res.status;
    };
    expect(await names(alice.key)).toEqual(['Audiobooks', 'Podcasts']);
    expect(await names(bob.key)).toEqual([]);
    expect(await names(admin)).toEqual(['Music', 'Audiobooks', 'Podcasts', 'Private']);
    expect(await names()).toBe(401);

    expect((await c.get('/libraries/2', { key: alice.key })).body).toEqual({ id: 2, name: 'Audiobooks' });
    const refused = await c.get('/libraries/4', { key: alice.key });
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({ error: { code: 'auth.forbidden', message: expect.any(String) } });
    expect(errorCode(await c.get('/libraries/2'))).toBe('auth.unauthenticated');
    expect((await c.get('/libraries/4', { key: admin })).status).toBe(200);

    expect(errorCode(await c.post('/certs', { key: alice.key }))).toBe('auth.forbidden');
    expect((await c.post('/certs', { key: bob.key })).status).toBe(201);
    expect((await c.post('/certs', { key: admin })).status).toBe(201);
    expect(errorCode(await c.post('/certs'))).toBe('auth.unauthenticated');

    // The same questions in code, synchronously.
    const a = (await usher.users.get(alice.user.id))!;
    const b = (await usher.users.get(bob.user.id))!;
    expect(usher.authz.can(a, 'cert.create')).toBe(false);
    expect(usher.authz.can(b, 'cert.create')).toBe(true);
    expect(usher.authz.can(b, 'cert', 'create')).toBe(true);
    expect(usher.authz.can('admin', 'users', 'list')).toBe(true);
    expect(usher.authz.can(a, { type: 'library', id: 3, action: 'read' })).toBe(true);
    expect(usher.authz.can(a, { type: 'library', id: '4' })).toBe(false);
    expect(usher.authz.can(a, { type: 'album', id: 3 })).toBe(false);
    expect(usher.authz.resources(a, 'library', 'read')).toEqual({ ids: ['2', '3'] });
    expect(usher.authz.resources(a, 'library', 'write')).toEqual({ ids: [] });

    // A revoke applies on the very next request.
    const three = (await c.get(`${AUTH}/users/${alice.user.id}/grants`, { key: admin })).body.find((g: { resourceId: string }) => g.resourceId === '3');
    expect((await c.del(`${AUTH}/users/${alice.user.id}/grants/${three.id}`, { key: admin })).status).toBe(204);
    expect(await names(alice.key)).toEqual(['Audiobooks']);
    expect((await c.get('/libraries/3', { key: alice.key })).status).toBe(403);
  });

  it('refuses at start a middleware or declaration naming what is not declared', async () => {
    expect(() => usher.requireGrant('album', () => 1)).toThrow(/album is not a resource type/);
    expect(() => usher.requireGrant('library', () => 1, 'write')).toThrow(/write is not an action of library/);
    expect(() => usher.requirePermission('not a permission')).toThrow(TypeError);

    const plain = testSettings('sqlite');
    const bad = testSettings('sqlite', { resources: [{ type: 'share' }], groupGrants: [{ group: 'family', type: 'album', id: 3 }, { group: 'kids', type: 'share', id: 1, actions: ['write'] }] });
    try {
      const err = await createUsher({ config: bad.settings, logger: pino({ level: 'silent' }), resources: [{ type: 'library' }] }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toEqual([
        'config: groupGrants[0].type: album is not a type of resources:',
        'config: groupGrants[1].actions: write is not an action of share (read)',
      ]);
      const twice = await createUsher({ config: bad.settings, logger: pino({ level: 'silent' }), resources: [{ type: 'share' }] }).catch((e: unknown) => e);
      expect((twice as ConfigError).problems).toEqual(['createUsher: resources: share is declared in config resources: too']);
      const badHost = await createUsher({ config: plain.settings, logger: pino({ level: 'silent' }), resources: [{ type: 'Library' }] }).catch((e: unknown) => e);
      expect((badHost as ConfigError).problems[0]).toMatch(/^createUsher: resources: \[0\]\.type must be a name in lower case/);
    } finally {
      await bad.cleanup();
      await plain.cleanup();
    }
  });
});
