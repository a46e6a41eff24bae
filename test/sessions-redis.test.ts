import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createUsher } from '../src/index.js';
import { startServer, testSettings, type TestServer } from './helpers/app.js';
import { client, errorCode, type Jar } from './helpers/http.js';
import { freePort, runTs } from './helpers/process.js';
import { PrivateRedis, freshPrefix } from './helpers/redis.js';
import { setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';

describe('Redis as the session store', () => {
  it('refuses to start when Redis is configured but does not answer', async () => {
    const port = await freePort();
    const { settings, cleanup } = testSettings('sqlite', { redis: { url: `redis://:hunter2@127.0.0.1:${port}` } });
    try {
      await expect(createUsher({ config: settings, logger: pino({ level: 'silent' }) })).rejects.toThrow(
        /^redis: cannot connect to USHER_REDIS_URL \(redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\)/,
      );
      const ran = await runTs('src/server.ts', [], { USHER_DATA_DIR: String(settings.dataDir), USHER_REDIS_URL: `redis://:hunter2@127.0.0.1:${port}`, USHER_PORT: String(await freePort()) });
      expect(ran.code).toBe(1);
      const lines = ran.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/redis: cannot connect to USHER_REDIS_URL/);
      expect(ran.stderr + ran.stdout).not.toContain('hunter2');
    } finally {
      await cleanup();
    }
  });

  describe('when Redis goes away while running', () => {
    let redis: PrivateRedis;
    let server: TestServer;
    afterAll(async () => {
      await server?.close();
      await redis?.stop();
    });

    it('answers 503 for sessions, keeps API keys working, and recovers without a restart', async () => {
      redis = await PrivateRedis.start();
      server = await startServer('sqlite', { settings: { redis: { url: redis.url, keyPrefix: freshPrefix() } } });
      const c = client(server.url);
      const adminKey = await setupAdmin(c);
      const jar: Jar = {};
      const browser = client(server.url, jar);
      expect((await browser.post(`${AUTH}/login`, { body: { username: 'admin', password: 'admin-password' } })).status).toBe(200);
      expect((await browser.get(`${AUTH}/me`)).status).toBe(200);

      await redis.stop();
      const during = await browser.get(`${AUTH}/me`);
      expect(during.status).toBe(503);
      expect(errorCode(during)).toBe('session.store_unavailable');
      const login = await client(server.url, {}).post(`${AUTH}/login`, { body: { username: 'admin', password: 'admin-password' } });
      expect(login.status).toBe(503);
      expect((await c.get(`${AUTH}/me`, { key: adminKey })).status).toBe(200);
      expect((await c.get(`${AUTH}/users`, { key: adminKey })).status).toBe(200);
      // Even with the (now unreadable) session cookie alongside, the API key is enough.
      expect((await browser.get(`${AUTH}/me`, { key: adminKey })).status).toBe(200);

      await redis.start();
      // The restarted Redis kept nothing (--save ""), so the old session is simply gone...
      const deadline = Date.now() + 10_000;
      let after = await browser.get(`${AUTH}/me`);
      while (after.status === 503 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        after = await browser.get(`${AUTH}/me`);
      }
      expect(after.status).toBe(401);
      // ...and new sessions work again, with no restart of Usher.
      expect((await browser.post(`${AUTH}/login`, { body: { username: 'admin', password: 'admin-password' } })).status).toBe(200);
      expect((await browser.get(`${AUTH}/me`)).status).toBe(200);
    });
  });
});
