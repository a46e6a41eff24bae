import type { Locator } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { withBrowser } from './helpers/browser.js';
import { checkPage, signIn } from './helpers/console.js';
import { client, errorCode, type Client } from './helpers/http.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';
const DAY = 24 * 60 * 60 * 1000;

/** Focuses a control and presses keys: no mouse. */
async function press(control: Locator, ...keys: string[]) {
  await control.focus();
  for (const key of keys) await control.page().keyboard.press(key);
}

describe('console: scoped keys in My account and in the user drawer', () => {
  let server: TestServer;
  let c: Client;
  let adminKey: string;
  let lenaKey: string;
  let lenaId: number;
  beforeAll(async () => {
    server = await startServer('sqlite', { settings: { permissions: [{ name: 'cert.create', description: 'Issue a certificate.' }] } });
    c = client(server.url);
    adminKey = await setupAdmin(c, 'admin', 'admin-password');
    const lena = await createUser(server, c, adminKey, { username: 'lena', password: 'lena-long-password' });
    lenaKey = lena.key;
    lenaId = lena.user.id;
  });
  afterAll(() => server.close());

  it('makes a key by keyboard, shows it once, the key works within its scope, and revoking it (after asking) stops it', async () => {
    await withBrowser(async (page) => {
      await signIn(page, server.url, 'lena', 'lena-long-password');
      const card = page.getByRole('region', { name: 'Scoped keys' });
      await card.getByText('No scoped keys.').waitFor();
      // With no key yet, the form is open; the checklist lists what lena holds, and nothing she does not.
      const name = card.getByLabel('Key name');
      await name.waitFor();
      expect(await card.getByRole('checkbox', { name: 'self.read' }).count()).toBe(1);
      expect(await card.getByRole('checkbox', { name: 'users.list' }).count()).toBe(0);
      // Each with its description (GET /me/permissions), though lena may not read the whole catalogue.
      await card.getByText('Read your own account.').waitFor();
      await checkPage(page, 'account-keys-empty');

      await press(name, ...[...'player'].map((ch) => ch), 'Tab');
      await press(card.getByRole('checkbox', { name: 'self.read' }), 'Space');
      // Expires: Never, then 30 days.
      await press(card.getByLabel('Expires'), 'ArrowDown');
      expect(await card.getByLabel('Expires').inputValue()).toBe('30');
      await press(card.getByRole('button', { name: 'Make key' }), 'Enter');

      await card.getByText('Copy it now and put it in the app: it will not be shown again.').waitFor();
      const key = await card.getByLabel('Your new key “player”').inputValue();
      expect(key).toMatch(/^usa_/);
      // The key does what its scope allows, and nothing more, though lena may list her keys.
      expect((await c.get(`${AUTH}/me`, { key })).status).toBe(200);
      const outside = await c.get(`${AUTH}/me/api-keys`, { key });
      expect(outside.status).toBe(403);
      expect(errorCode(outside)).toBe('auth.forbidden');
      const [listed] = (await c.get(`${AUTH}/me/api-keys`, { key: lenaKey })).body as { expiresAt: string; permissions: string[] }[];
      expect(listed!.permissions).toEqual(['self.read']);
      expect(Math.abs(Date.parse(listed!.expiresAt) - (Date.now() + 30 * DAY))).toBeLessThan(60_000);
      await checkPage(page, 'account-keys-made');

      // Listed with its prefix and scope, never the key; after a reload the key is gone for good.
      const row = card.getByRole('listitem').filter({ hasText: 'player' });
      await row.getByText(`${key.slice(0, 10)}… · self.read`).waitFor();
      await expect.poll(() => row.textContent()).toMatch(/last used .+ · expires /);
      await page.reload();
      await card.getByRole('listitem').filter({ hasText: 'player' }).waitFor();
      expect(await page.content()).not.toContain(key);
      expect(await card.getByLabel('Your new key “player”').count()).toBe(0);

      // Revoke asks first, with the focus on "Keep it"; keeping it gives the focus back to Revoke.
      const focused = () => page.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? document.activeElement?.textContent);
      await press(card.getByRole('button', { name: 'Revoke player…' }), 'Enter');
      await card.getByText('Apps using it are refused from their next request.').waitFor();
      await expect.poll(focused).toBe('Keep it');
      await page.keyboard.press('Enter');
      await expect.poll(focused).toBe('Revoke player…');
      expect((await c.get(`${AUTH}/me`, { key })).status).toBe(200);
      await page.keyboard.press('Enter');
      await expect.poll(focused).toBe('Keep it');
      await page.keyboard.press('Shift+Tab');
      await page.keyboard.press('Enter');
      await card.getByText('player revoked: it no longer works.').waitFor();
      await card.getByText('No scoped keys.').waitFor();
      expect((await c.get(`${AUTH}/me`, { key })).status).toBe(401);
    });
  });

  it('says each refusal beside its control and keeps what was typed', async () => {
    expect((await c.post(`${AUTH}/me/api-keys`, { key: lenaKey, body: { name: 'backup', permissions: ['self.read'] } })).status).toBe(201);
    await withBrowser(async (page) => {
      await signIn(page, server.url, 'lena', 'lena-long-password');
      const card = page.getByRole('region', { name: 'Scoped keys' });
      await card.getByRole('listitem').filter({ hasText: 'backup' }).waitFor();
      // With a key listed the form is folded away: its summary opens it.
      await press(card.getByText('Make a scoped key'), 'Enter');
      const name = card.getByLabel('Key name');
      await name.fill('backup');
      await card.getByRole('button', { name: 'Make key' }).click();
      // Nothing ticked: said beside the permissions.
      await expect.poll(() => card.locator('.checklist + .outcome [role=alert]').textContent()).toMatch(/^Tick at least one permission/);

      await card.getByRole('checkbox', { name: 'self.read' }).check();
      await card.getByLabel('Expires').selectOption('custom');
      await card.getByLabel('Days until it expires').fill('4000');
      await card.getByRole('button', { name: 'Make key' }).click();
      await expect.poll(() => card.getByRole('alert').filter({ hasText: /\S/ }).first().textContent()).toBe('The custom expiry must be a whole number of days, from 1 to 3650.');

      await card.getByLabel('Days until it expires').fill('7');
      await card.getByRole('button', { name: 'Make key' }).click();
      // The name is taken: said beside the name (the field's next sibling), and what was typed stays.
      await expect.poll(() => card.locator('.field', { has: page.getByLabel('Key name') }).locator('xpath=following-sibling::div[1]').getByRole('alert').textContent()).toBe(
        'You have a key of that name already. Choose another name.',
      );
      expect(await name.inputValue()).toBe('backup');
      expect(await card.getByRole('checkbox', { name: 'self.read' }).isChecked()).toBe(true);
      expect(await card.getByLabel('Days until it expires').inputValue()).toBe('7');
      await checkPage(page, 'account-keys-refused');
      expect(((await c.get(`${AUTH}/me/api-keys`, { key: lenaKey })).body as unknown[]).length).toBe(1);

      // A permission taken from lena after the page listed it: said beside the permissions.
      expect((await c.patch(`${AUTH}/users/${lenaId}/permissions`, { key: adminKey, body: { grant: ['cert.create'] } })).status).toBe(200);
      await page.reload();
      await press(card.getByText('Make a scoped key'), 'Enter');
      await card.getByRole('checkbox', { name: 'cert.create' }).check();
      await card.getByText('Issue a certificate.').waitFor();
      expect((await c.patch(`${AUTH}/users/${lenaId}/permissions`, { key: adminKey, body: { revoke: ['cert.create'] } })).status).toBe(200);
      await name.fill('certs');
      await card.getByRole('button', { name: 'Make key' }).click();
      await expect.poll(() => card.locator('.checklist + .outcome [role=alert]').textContent()).toBe('You do not hold cert.create now, so a key of yours cannot have it. Untick it.');
      expect(await name.inputValue()).toBe('certs');
    });
  });

  it("lets an admin revoke another user's key from the drawer", async () => {
    const made = await c.post(`${AUTH}/me/api-keys`, { key: lenaKey, body: { name: 'tablet', permissions: ['self.read'], expiresInDays: 90 } });
    expect(made.status).toBe(201);
    const key = made.body.key as string;
    expect((await c.get(`${AUTH}/me`, { key })).status).toBe(200);
    await withBrowser(async (page) => {
      await signIn(page, server.url, 'admin', 'admin-password');
      await page.goto(`${server.url}/users?q=lena`);
      await page.getByRole('button', { name: 'lena', exact: true }).click();
      const block = page.getByRole('dialog', { name: 'lena' }).getByRole('region', { name: 'API keys' });
      const row = block.getByRole('listitem').filter({ hasText: 'tablet' });
      await row.getByText(`${key.slice(0, 10)}… · self.read`).waitFor();
      await block.getByRole('listitem').filter({ hasText: 'backup' }).waitFor();
      await block.evaluate((el) => el.scrollIntoView({ block: 'start' }));
      await checkPage(page, 'drawer-keys');
      await press(block.getByRole('button', { name: 'Revoke tablet…' }), 'Enter');
      await press(block.getByRole('button', { name: 'Yes, revoke tablet' }), 'Enter');
      await block.getByText('tablet revoked: the app using it is refused from its next request.').waitFor();
      await expect.poll(() => block.getByRole('listitem').count()).toBe(1);
      expect((await c.get(`${AUTH}/me`, { key })).status).toBe(401);
      const left = (await c.get(`${AUTH}/users/${lenaId}/api-keys`, { key: adminKey })).body as { name: string }[];
      expect(left.map((k) => k.name)).toEqual(['backup']);
    });
  });
});
