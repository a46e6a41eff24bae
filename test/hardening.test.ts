import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { hash, Algorithm } from '@node-rs/argon2';
import express from 'express';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientKey } from '../src/authn/login-limiter.js';
import { compileTrustedProxies, normalizeAddress } from '../src/config/trusted-proxies.js';
import { createUsher, type Usher } from '../src/index.js';
import { startServer, testSettings, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client, type Jar } from './helpers/http.js';
import { requestFrom, utf8Header } from './helpers/peer-http.js';
import { memoryLogger, proxySettings } from './helpers/proxy.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';

/** Every spelling under which Express routes a request to the forward-auth endpoint. */
const VERIFY_SPELLINGS = [`${AUTH}/verify`, `${AUTH}/verify/`, `${AUTH}/VERIFY`, `${AUTH}/Verify?rd=x`, '/API/V1/AUTH/verify'];

describe('IPv4-compatible IPv6 peers are not IPv4', () => {
  it.each([
    ['::7f00:1', false],
    ['::127.0.0.1', false],
    ['::ffff:127.0.0.1', true],
    ['::FFFF:7f00:1', true],
    ['127.0.0.1', true],
    ['::1', false],
  ])('a 127.0.0.1/32 allowlist and the peer %s: trusted %s', (peer, trusted) => {
    expect(compileTrustedProxies(['127.0.0.1/32'])(peer)).toBe(trusted);
  });

  it('logs and counts ::127.0.0.1 as the IPv6 address it is', () => {
    expect(normalizeAddress('::127.0.0.1')).toBe('::7f00:1');
    expect(clientKey('::127.0.0.1')).not.toBe('127.0.0.1');
    expect(clientKey('::ffff:127.0.0.1')).toBe('127.0.0.1');
  });
});

describe.each(DB_KINDS)('hardened paths on %s', (kind) => {
  let server: TestServer;
  let c: Client;
  let adminKey: string;
  const log = memoryLogger('info');

  /** A request from the trusted proxy at 127.0.0.1. */
  const fromProxy = (path: string, headers: Record<string, string>, opts: { method?: string; body?: unknown } = {}) =>
    requestFrom('127.0.0.1', server.url + path, { ...opts, headers });

  beforeAll(async () => {
    server = await startServer(kind, { settings: proxySettings({ adminGroups: ['admins'] }), hooks: { logger: log.logger } });
    c = client(server.url);
    adminKey = await setupAdmin(c);
  });
  afterAll(async () => {
    await server?.close();
  });

  describe('forward auth never believes identity headers, however its path is spelled', () => {
    it.each(VERIFY_SPELLINGS)('%s creates and promotes nobody', async (path) => {
      const bob = await server.usher.users.findByUsername('bob') ?? (await server.usher.users.create({ username: 'bob', password: 'bob-password-1' })).user;
      const stranger = `mallory-${path.length}-${path.charCodeAt(path.length - 1)}`;
      for (const user of [stranger, 'bob', 'admin']) {
        const res = await fromProxy(path, { 'Remote-User': user, 'Remote-Groups': 'admins' });
        expect(res.status, res.text).toBe(401);
        expect(res.headers.get('remote-user')).toBeNull();
      }
      expect(await server.usher.users.findByUsername(stranger)).toBeNull();
      expect((await server.usher.users.get(bob.id))?.role).toBe('user');
    });

    it('nor does a host app that authenticates every request before mounting Usher', async () => {
      const made = testSettings(kind, proxySettings({ adminGroups: ['admins'] }));
      const usher: Usher = await createUsher({ config: made.settings, logger: pino({ level: 'silent' }) });
      const app = express();
      app.use(usher.authenticate);
      app.use(usher.router);
      const host: Server = await new Promise((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
      try {
        const url = `http://127.0.0.1:${(host.address() as AddressInfo).port}`;
        for (const path of VERIFY_SPELLINGS) {
          const res = await requestFrom('127.0.0.1', url + path, { headers: { 'Remote-User': 'eve', 'Remote-Groups': 'admins' } });
          expect(res.status, `${path}: ${res.text}`).toBe(401);
        }
        expect(await usher.users.findByUsername('eve')).toBeNull();
      } finally {
        host.closeAllConnections();
        await new Promise((r) => host.close(r));
        await usher.close();
        await made.cleanup();
      }
    });
  });

  describe('a proxy username matches an account only as the same name, case aside', () => {
    it.each([
      ['fullwidth ａｄｍｉｎ', 'ａｄｍｉｎ'],
      ['admin and a no-break space', 'admin\u00a0'],
      ['a no-break space and admin', '\u00a0admin'],
      ['admin and a zero-width space', 'admin\u200b'],
      ['admin with a combining grapheme joiner inside', 'adm\u034fin'],
      ['admin and a Hangul filler', 'admin\u3164'],
      ['the ligature ﬁ in ﬁona (fiona exists)', 'ﬁona'],
    ])('refuses %s with 403, never serving the account it would fold onto', async (_name, username) => {
      if (!(await server.usher.users.findByUsername('fiona'))) await server.usher.users.create({ username: 'fiona', password: 'fiona-password' });
      const res = await fromProxy(`${AUTH}/me`, { 'Remote-User': utf8Header(username) });
      expect(res.status, res.text).toBe(403);
      expect(errorCode(res)).toBe('auth.proxy_username_refused');
    });

    it('serves the same name in another case as that account, and a canonically equivalent name as one name', async () => {
      const res = await fromProxy(`${AUTH}/me`, { 'Remote-User': 'ADMIN' });
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ id: 1, username: 'admin' });
      const decomposed = await fromProxy(`${AUTH}/me`, { 'Remote-User': utf8Header('Jose\u0301') });
      const composed = await fromProxy(`${AUTH}/me`, { 'Remote-User': utf8Header('Jos\u00e9') });
      expect(decomposed.status, decomposed.text).toBe(200);
      expect(composed.body.id).toBe(decomposed.body.id);
      expect(composed.body.username).toBe('Jos\u00e9');
    });
  });

  describe('an external account has no local password unless an admin allows it', () => {
    it('refuses a password the account sets itself, and a login with one set before', async () => {
      const first = await fromProxy(`${AUTH}/me`, { 'Remote-User': 'pat' });
      expect(first.status).toBe(200);
      expect(first.body).toMatchObject({ authSource: 'proxy', passwordLogin: false, hasPassword: false });
      const set = await fromProxy(`${AUTH}/me`, { 'Remote-User': 'pat' }, { method: 'PUT', body: { password: 'bypass-the-idp' } });
      expect(set.status, set.text).toBe(403);
      expect(errorCode(set)).toBe('user.password_login_off');
      // An admin can still set one (say, before allowing it); it does not sign in while not allowed.
      expect((await c.put(`${AUTH}/users/${first.body.id}`, { key: adminKey, body: { password: 'set-by-admin' } })).status).toBe(200);
      const login = await client(server.url).post(`${AUTH}/login`, { body: { username: 'pat', password: 'set-by-admin' } });
      expect(login.status).toBe(401);
      expect(errorCode(login)).toBe('auth.invalid_credentials');
    });

    it('lets an admin allow it per account, and turning it off again ends the password sessions', async () => {
      const first = await fromProxy(`${AUTH}/me`, { 'Remote-User': 'quinn' });
      const id = first.body.id as number;
      const allow = await c.put(`${AUTH}/users/${id}`, { key: adminKey, body: { passwordLogin: true } });
      expect(allow.status, allow.text).toBe(200);
      expect(allow.body.passwordLogin).toBe(true);
      const set = await fromProxy(`${AUTH}/me`, { 'Remote-User': 'quinn' }, { method: 'PUT', body: { password: 'quinn-local-password' } });
      expect(set.status, set.text).toBe(200);
      const jar: Jar = {};
      const browser = client(server.url, jar);
      expect((await browser.post(`${AUTH}/login`, { body: { username: 'quinn', password: 'quinn-local-password' } })).status).toBe(200);
      expect((await c.put(`${AUTH}/users/${id}`, { key: adminKey, body: { passwordLogin: false } })).status).toBe(200);
      expect((await browser.get(`${AUTH}/me`)).status).toBe(401);
      expect((await client(server.url).post(`${AUTH}/login`, { body: { username: 'quinn', password: 'quinn-local-password' } })).status).toBe(401);
    });

    it('keeps a local account signing in with its password', async () => {
      const res = await c.put(`${AUTH}/users/1`, { key: adminKey, body: { passwordLogin: false } });
      expect(res.status).toBe(400);
      expect(res.body.error.message).toMatch(/^passwordLogin: /);
      expect((await c.get(`${AUTH}/users/1`, { key: adminKey })).body.passwordLogin).toBe(true);
    });
  });

  describe('conflicting credentials are refused, whatever the pair', () => {
    let aliceKey: string;
    let aliceJar: Jar;
    beforeAll(async () => {
      aliceKey = (await createUser(server, c, adminKey, { username: 'alice', password: 'alice-password' })).key;
      await createUser(server, c, adminKey, { username: 'carol', password: 'carol-password' });
      aliceJar = {};
      expect((await client(server.url, aliceJar).post(`${AUTH}/login`, { body: { username: 'alice', password: 'alice-password' } })).status).toBe(200);
    });

    it.each([
      ["a proxy's Remote-User and another user's session cookie", () => ({ 'Remote-User': 'carol', cookie: aliceJar.cookie! })],
      ["a proxy's Remote-User and another user's API key", () => ({ 'Remote-User': 'carol', 'x-api-key': aliceKey })],
      ["an API key and another user's session cookie", () => ({ 'x-api-key': adminKey, cookie: aliceJar.cookie! })],
    ])('%s: 400 auth.conflicting_credentials', async (_name, headers) => {
      const res = await fromProxy(`${AUTH}/me`, headers());
      expect(res.status, res.text).toBe(400);
      expect(errorCode(res)).toBe('auth.conflicting_credentials');
    });

    it('serves a request whose credentials all name the same user', async () => {
      const res = await fromProxy(`${AUTH}/me`, { 'Remote-User': 'Alice', cookie: aliceJar.cookie!, 'x-api-key': aliceKey });
      expect(res.status, res.text).toBe(200);
      expect(res.body.username).toBe('alice');
    });
  });

  describe('same-origin browser requests without a body', () => {
    async function signedIn() {
      const jar: Jar = {};
      const browser = client(server.url, jar);
      expect((await browser.post(`${AUTH}/login`, { body: { username: 'carol', password: 'carol-password' } })).status).toBe(200);
      return { jar, browser };
    }

    it("log out with fetch('/logout', {method: 'POST'}): Origin is Usher's, no Content-Type", async () => {
      const { jar, browser } = await signedIn();
      const cookie = jar.cookie;
      const res = await browser.post(`${AUTH}/logout`, { bare: true, headers: { origin: server.url } });
      expect(res.status, res.text).toBe(204);
      expect((await client(server.url, { cookie }).get(`${AUTH}/me`)).status).toBe(401);
    });

    it('end a session with DELETE and Sec-Fetch-Site: same-origin', async () => {
      const other = await signedIn();
      const { browser } = await signedIn();
      const list = await browser.get(`${AUTH}/me/sessions`);
      const others = (list.body as { id: string; current: boolean }[]).filter((s) => !s.current);
      expect(others.length).toBeGreaterThan(0);
      for (const session of others) {
        const res = await browser.del(`${AUTH}/me/sessions/${session.id}`, { bare: true, headers: { 'sec-fetch-site': 'same-origin' } });
        expect(res.status, res.text).toBe(204);
      }
      expect((await other.browser.get(`${AUTH}/me`)).status).toBe(401);
    });

    it.each([
      ['from another origin', { origin: 'https://evil.example' }, undefined, 403, 'auth.csrf'],
      ['cross-site, said by Sec-Fetch-Site', { 'sec-fetch-site': 'cross-site' }, undefined, 415, 'request.unsupported_media_type'],
      ['with no Origin at all', {}, undefined, 415, 'request.unsupported_media_type'],
      ['same-origin but with a text/plain body', { origin: '' }, 'x=1', 415, 'request.unsupported_media_type'],
    ])('are still refused %s', async (_name, headers: Record<string, string>, raw, status, code) => {
      const { jar, browser } = await signedIn();
      const sent = { ...headers, ...(headers.origin === '' ? { origin: server.url } : {}) };
      const res = await browser.post(`${AUTH}/logout`, raw === undefined ? { bare: true, headers: sent } : { raw, contentType: 'text/plain', headers: sent });
      expect(res.status, res.text).toBe(status);
      expect(errorCode(res)).toBe(code);
      expect((await client(server.url, { cookie: jar.cookie }).get(`${AUTH}/me`)).status).toBe(200);
    });
  });

  describe('keys in URLs', () => {
    const key43 = `usk_${'A'.repeat(43)}`;
    const hex64 = `usk_${'0123456789abcdef'.repeat(4)}`;
    it.each([
      ['api_key[]=', `${AUTH}/me?api_key[]=${key43}`],
      ['a name with dots and case', `${AUTH}/me?X.Api.KEY=anything`],
      ['apiKey nested in another name', `${AUTH}/me?my_apiKey=anything`],
      ['a bootstrap-format key (64 hex) under any name', `${AUTH}/me?token=${hex64}`],
      ['a percent-encoded key', `${AUTH}/me?t=%75sk_${'B'.repeat(43)}`],
      ['a key inside another value', `${AUTH}/me?auth=Bearer+${key43}`],
      ['a key in the path', `${AUTH}/users/${key43}`],
      ['a percent-encoded key in the path', `${AUTH}/${encodeURIComponent(hex64).replace('u', '%75')}`],
    ])('refuses %s with 400 and never logs it', async (_name, path) => {
      const res = await c.get(path, { key: adminKey });
      expect(res.status, res.text).toBe(400);
      expect(errorCode(res)).toBe('auth.key_in_url');
      const logged = JSON.stringify(log.lines);
      expect(logged).not.toMatch(/usk_|%75sk/i);
    });
  });

  describe('Unicode', () => {
    it('signs in with a password set in NFC and typed in NFD', async () => {
      const nfc = 'Cr\u00e8me-br\u00fbl\u00e9e-\u30d1\u30b9';
      const nfd = nfc.normalize('NFD');
      expect(nfd).not.toBe(nfc);
      await createUser(server, c, adminKey, { username: 'unicode1', password: nfc });
      expect((await client(server.url).post(`${AUTH}/login`, { body: { username: 'unicode1', password: nfd } })).status).toBe(200);
    });

    it('signs in with a hash made over the NFD text before normalisation, and then stores an NFC hash', async () => {
      const nfd = 'Cre\u0300me-secr\u00e8te'.normalize('NFD');
      const { user } = await createUser(server, c, adminKey, { username: 'unicode2', password: 'placeholder-password' });
      const legacy = await hash(nfd, { algorithm: Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 });
      await server.usher.db('users').where({ id: user.id }).update({ password_hash: legacy });
      expect((await client(server.url).post(`${AUTH}/login`, { body: { username: 'unicode2', password: nfd } })).status).toBe(200);
      const after = await server.usher.db('users').where({ id: user.id }).first('password_hash');
      expect(after.password_hash).not.toBe(legacy);
      expect((await client(server.url).post(`${AUTH}/login`, { body: { username: 'unicode2', password: nfd.normalize('NFC') } })).status).toBe(200);
    });

    it.each([
      ['a name with a right-to-left override', { username: 'uni3', name: 'evil\u202egnp.exe' }, 'name'],
      ['a name with a first-strong isolate', { username: 'uni4', name: 'a\u2068b' }, 'name'],
      ['a name with a line separator', { username: 'uni5', name: 'line\u2028two' }, 'name'],
      ['a name with a paragraph separator', { username: 'uni6', name: 'p\u2029q' }, 'name'],
      ['a username with a left-to-right embedding', { username: 'uni\u202a7' }, 'username'],
      ['a username with a pop-directional isolate', { username: 'uni\u20698' }, 'username'],
      ['a username with a line separator', { username: 'uni\u20289' }, 'username'],
      ['a username with a combining grapheme joiner', { username: 'adm\u034fin' }, 'username'],
      ['a username of punctuation only', { username: '-._' }, 'username'],
    ])('refuses %s', async (_name, body, field) => {
      const res = await c.post(`${AUTH}/users`, { key: adminKey, body: { password: 'a-good-password', ...body } });
      expect(res.status, res.text).toBe(400);
      expect(res.body.error.message).toMatch(new RegExp(`^${field}: `));
    });
  });
});
