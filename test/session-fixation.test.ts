import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse } from 'cookie';
import { sign, unsign } from 'cookie-signature';
import express, { type RequestHandler } from 'express';
import session from 'express-session';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createUsher } from '../src/index.js';
import { testSettings } from './helpers/app.js';
import { client, sidOf, type Jar } from './helpers/http.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';
const HOST_SECRET = 'the-host-apps-own-cookie-secret';

/** Usher mounted after a host app's own middleware; `run` gets the base URL and an admin key. */
async function withHost(hostMiddleware: RequestHandler[], run: (url: string, made: { usher: Awaited<ReturnType<typeof createUsher>>; adminKey: string }) => Promise<void>) {
  const made = testSettings('sqlite');
  const usher = await createUsher({ config: made.settings, logger: pino({ level: 'silent' }) });
  const app = express();
  app.use(...hostMiddleware);
  app.get('/visit', (req, res) => {
    if (req.session) (req.session as unknown as { views: number }).views = 1;
    res.json({});
  });
  app.use(usher.router);
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const adminKey = await setupAdmin(client(url));
    await run(url, { usher, adminKey });
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await usher.close();
    await made.cleanup();
  }
}

describe('session fixation in library mode', () => {
  it("gives a new id at login even when the session is the host app's own express-session", async () => {
    const hostSession = session({ name: 'app.sid', secret: HOST_SECRET, resave: false, saveUninitialized: true });
    await withHost([hostSession], async (url, { usher, adminKey }) => {
      const server = { usher, url, dataDir: '', close: async () => {} };
      await createUser(server, client(url), adminKey, { username: 'victim', password: 'victim-password' });
      // The attacker gets a host session cookie and plants it in the victim's browser.
      const visit = await fetch(`${url}/visit`);
      const planted = visit.headers.getSetCookie().map((line) => line.split(';')[0]!).find((pair) => pair.startsWith('app.sid='))!;
      expect(planted).toBeDefined();
      const login = await fetch(`${url}${AUTH}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: planted },
        body: JSON.stringify({ username: 'victim', password: 'victim-password' }),
      });
      expect(login.status).toBe(200);
      const renewed = login.headers.getSetCookie().map((line) => line.split(';')[0]!).find((pair) => pair.startsWith('app.sid='));
      expect(renewed).toBeDefined();
      expect(renewed).not.toBe(planted);
      expect((await fetch(`${url}${AUTH}/me`, { headers: { cookie: planted } })).status).toBe(401);
      expect((await fetch(`${url}${AUTH}/me`, { headers: { cookie: renewed! } })).status).toBe(200);
    });
  });

  it("gives a new id at login to a session express-session found through the host's signed cookies", async () => {
    // What cookie-parser(HOST_SECRET) does: req.signedCookies from the values signed with the host's secret.
    const cookieParser: RequestHandler = (req, _res, next) => {
      const signed: Record<string, string | false> = {};
      for (const [name, value] of Object.entries(parse(req.headers.cookie ?? ''))) if (value?.startsWith('s:')) signed[name] = unsign(value.slice(2), HOST_SECRET);
      (req as unknown as { signedCookies: typeof signed }).signedCookies = signed;
      next();
    };
    await withHost([cookieParser], async (url, { usher, adminKey }) => {
      const server = { usher, url, dataDir: '', close: async () => {} };
      await createUser(server, client(url), adminKey, { username: 'mallory', password: 'mallory-password' });
      await createUser(server, client(url), adminKey, { username: 'victim', password: 'victim-password' });
      const attacker: Jar = {};
      expect((await client(url, attacker).post(`${AUTH}/login`, { body: { username: 'mallory', password: 'mallory-password' } })).status).toBe(200);
      const attackerSid = sidOf(attacker.cookie);
      // The attacker's session id, signed with the host's secret, planted in the victim's browser.
      const victim: Jar = { cookie: `usher.sid=${encodeURIComponent(`s:${sign(attackerSid, HOST_SECRET)}`)}` };
      expect((await client(url, victim).post(`${AUTH}/login`, { body: { username: 'victim', password: 'victim-password' } })).status).toBe(200);
      expect(sidOf(victim.cookie)).not.toBe(attackerSid);
      const me = await client(url, attacker).get(`${AUTH}/me`);
      expect(me.body?.username).not.toBe('victim');
      expect((await client(url, victim).get(`${AUTH}/me`)).body.username).toBe('victim');
    });
  });
});
