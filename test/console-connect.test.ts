import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { withBrowser } from './helpers/browser.js';
import { checkPage } from './helpers/console.js';
import { client, type Client } from './helpers/http.js';
import { freePort } from './helpers/process.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';
const alertText = (page: Page) => page.getByRole('alert').filter({ hasText: /\S/ }).first().textContent();

describe('console: the connect page', () => {
  let server: TestServer;
  let c: Client;
  let adminKey: string;
  let url: string;

  beforeAll(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    server = await startServer('sqlite', {
      port,
      settings: { server: { publicUrl: url }, connect: { appUrl: 'myapp://connect', webUrl: 'https://listen.example.com/' } },
    });
    c = client(url);
    adminKey = await setupAdmin(c);
  });
  afterAll(() => server.close());

  /** A listener without a password, and an invite for them. */
  async function invite(username: string, body: Record<string, unknown> = {}) {
    const { user } = await createUser(server, c, adminKey, { username });
    const res = await c.post(`${AUTH}/users/${user.id}/invites`, { key: adminKey, body });
    expect(res.status, res.text).toBe(201);
    return { user, code: res.body.code as string, link: res.body.link as string, inviteId: res.body.invite.id as number };
  }

  it('takes the code out of the address bar before any request, signs the browser in, and offers the app', async () => {
    const { code, link } = await invite('lena');
    expect(link).toBe(`${url}/connect#code=${code}`);
    await withBrowser(async (page) => {
      const seen: string[] = [];
      page.on('request', (req) => {
        seen.push(req.url(), req.headers().referer ?? '');
      });
      await page.goto(link);
      await page.getByRole('heading', { name: "You're connected" }).waitFor();
      expect(page.url()).toBe(`${url}/connect`);
      const bare = code.replace(/-/g, '');
      expect(seen.filter((s) => s.includes(code) || s.includes(bare) || s.includes('#'))).toEqual([]);
      // The connect call itself was made, with the code in its body only.
      expect(seen).toContain(`${url}${AUTH}/connect`);
      // Nor is the code in this tab's history: going back does not bring it back.
      expect(await page.evaluate(() => location.hash)).toBe('');

      // This browser is signed in as lena.
      const me = await page.evaluate(async () => (await fetch('/api/v1/auth/me')).json());
      expect(me.username).toBe('lena');
      await page.getByText('This browser is signed in as lena.').waitFor();
      await page.getByRole('img', { name: /QR code/ }).waitFor();
      expect(await page.getByRole('link', { name: 'Open in app' }).getAttribute('href')).toBe('myapp://connect');
      expect(await page.getByRole('link', { name: 'Open web player' }).getAttribute('href')).toBe('https://listen.example.com/');
      await checkPage(page, 'connect-done');
    });
  });

  it('shows a code box without a fragment, and plain sentences for codes that do not work', async () => {
    const first = await invite('milo');
    // A new invite for milo replaces the first; resending it makes a new code in place, the old one is no code at all.
    const second = await c.post(`${AUTH}/users/${first.user.id}/invites`, { key: adminKey, body: {} });
    expect(second.status).toBe(201);
    const resent = await c.post(`${AUTH}/users/${first.user.id}/invites/${second.body.invite.id}/resend`, { key: adminKey });
    expect(resent.status).toBe(200);
    const revoked = await invite('nina');
    expect((await c.del(`${AUTH}/users/${revoked.user.id}/invites/${revoked.inviteId}`, { key: adminKey })).status).toBe(200);
    const once = await invite('omar', { uses: 1 });
    expect((await client(url, {}).post(`${AUTH}/connect`, { body: { code: once.code } })).status).toBe(200);
    const disabled = await invite('pia');
    expect((await c.post(`${AUTH}/users/${disabled.user.id}/status`, { key: adminKey, body: { active: false } })).status).toBe(200);
    // One symbol changed: the check symbol tells it is a typo.
    const good = resent.body.code as string;
    const typo = (good[0] === '7' ? '8' : '7') + good.slice(1);

    const cases: [string, string, string][] = [
      [first.code, 'invite.replaced', 'This invite was replaced by a newer one. Use the latest link or code you were sent.'],
      [second.body.code, 'invite.invalid', 'That code does not work. Check that you copied the whole code, or ask for a new one.'],
      [revoked.code, 'invite.revoked', 'This invite was cancelled by the person who sent it. Ask them for a new one.'],
      [once.code, 'invite.used_up', 'This invite has been used on as many devices as it allows. Ask the person who sent it for a new one.'],
      [disabled.code, 'auth.account_disabled', 'This account is disabled. Ask the administrator to enable it.'],
      [typo, 'invite.typo', 'That code is not quite right. Check it for a mistyped character and try again.'],
    ];
    await withBrowser(async (page) => {
      await page.goto(`${url}/connect`);
      await page.getByRole('heading', { name: 'Connect this device' }).waitFor();
      await checkPage(page, 'connect-code-box');
      for (const [code, errorCode, sentence] of cases) {
        await page.getByLabel('Code', { exact: true }).fill(code);
        await page.getByRole('button', { name: 'Connect' }).click();
        await expect.poll(() => page.locator('[role=alert][data-code]').getAttribute('data-code')).toBe(errorCode);
        expect(await alertText(page)).toBe(sentence);
        // What was typed stays, to correct it.
        expect(await page.getByLabel('Code', { exact: true }).inputValue()).toBe(code);
      }
      await checkPage(page, 'connect-typo');
      // A link whose invite was replaced says so at once.
      await page.goto(`${url}/connect#code=${first.code}`);
      await expect.poll(() => alertText(page)).toBe(cases[0]![2]);
      expect(page.url()).toBe(`${url}/connect`);
      // And the resent code works, typed with spaces and in lower case.
      await page.getByLabel('Code', { exact: true }).fill(good.toLowerCase().replace(/-/g, ' '));
      await page.getByRole('button', { name: 'Connect' }).click();
      await page.getByRole('heading', { name: "You're connected" }).waitFor();
    });
  });
});
