import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createUsher, resolveConfig } from '../src/index.js';
import { startServer, testSettings, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';
import { client } from './helpers/http.js';

const KEY = 'automation-key-0123456789abcdefghijklmnopqrstuvwxyz';
const bootstrap = { adminUsername: 'root', adminPassword: 'root-password', adminApiKey: KEY };

describe.each(DB_KINDS)('bootstrap admin on %s', (kind) => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('creates the configured admin on an empty database, with the configured key', async () => {
    server = await startServer(kind, { settings: { bootstrap } });
    const c = client(server.url);
    const me = await c.get('/api/v1/auth/me', { key: KEY });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ username: 'root', role: 'admin', active: true, hasPassword: true });
    expect((await c.get('/api/v1/auth/status')).body.setupRequired).toBe(false);
    const setup = await c.post('/api/v1/auth/setup', { body: { username: 'late', password: 'late-password' } });
    expect(setup.status).toBe(409);
  });

  it('accepts a config from resolveConfig as is (library mode with environment variables)', async () => {
    const { settings, cleanup } = testSettings(kind);
    try {
      const config = resolveConfig({ file: settings, env: { USHER_BOOTSTRAP_ADMIN_USERNAME: 'envroot', USHER_BOOTSTRAP_ADMIN_PASSWORD: 'env-password' } });
      const usher = await createUsher({ config, logger: pino({ level: 'silent' }) });
      expect((await usher.users.get(1))?.username).toBe('envroot');
      await usher.close();
    } finally {
      await cleanup();
    }
  });

  it('never overwrites or re-creates an existing user', async () => {
    const { settings, cleanup } = testSettings(kind);
    const logger = pino({ level: 'silent' });
    try {
      const first = await createUsher({ config: { ...settings, bootstrap }, logger });
      await first.users.update(1, { name: 'Renamed', password: 'changed-password' });
      await first.close();
      // Restart with the same database and different bootstrap values: nothing changes.
      const second = await createUsher({ config: { ...settings, bootstrap: { adminUsername: 'other', adminPassword: 'other-password' } }, logger });
      const third = await createUsher({ config: { ...settings, bootstrap }, logger });
      expect(await second.users.count()).toBe(1);
      const root = await third.users.get(1);
      expect(root).toMatchObject({ username: 'root', name: 'Renamed' });
      expect(await third.users.findByUsername('other')).toBeNull();
      await second.close();
      await third.close();
    } finally {
      await cleanup();
    }
  });
});
