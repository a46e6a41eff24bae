import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { withBrowser } from './helpers/browser.js';
import { checkPage, range, signIn } from './helpers/console.js';
import { client } from './helpers/http.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';

/** The body rows' first cells, as the table shows them. */
const names = (page: Page) => page.locator('table.users tbody tr td:first-child strong').allTextContents();

describe('console: Users', () => {
  let server: TestServer;
  let adminKey: string;
  let zedId: number;
  beforeAll(async () => {
    server = await startServer('sqlite');
    const c = client(server.url);
    adminKey = await setupAdmin(c, 'admin', 'admin-password');
    // 27 accounts in all: the admin, 24 listeners without a password, one with a password, one disabled.
    for (let i = 1; i <= 24; i++) await createUser(server, c, adminKey, { username: `listener-${String(i).padStart(2, '0')}` });
    const zed = await createUser(server, c, adminKey, { username: 'zed', name: 'Zed Zimmer', password: 'zed-long-password' });
    const dora = await createUser(server, c, adminKey, { username: 'dora', password: 'dora-long-password' });
    expect((await c.post(`${AUTH}/users/${dora.user.id}/status`, { key: adminKey, body: { active: false } })).status).toBe(200);
    // Zed has used the API: Last active is a time, not "never".
    expect((await c.get(`${AUTH}/me`, { key: zed.key })).status).toBe(200);
    zedId = zed.user.id as number;
  });
  afterAll(() => server.close());

  it('lists users with their tags, and searches, sorts and pages with the state in the address bar', async () => {
    // lastActiveAt is written off the request's path: wait until Zed's has landed.
    await expect.poll(async () => (await client(server.url).get(`${AUTH}/users/${zedId}`, { key: adminKey })).body.lastActiveAt).not.toBeNull();
    await withBrowser(async (page) => {
      await signIn(page, server.url);
      await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Users' }).click();
      await page.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
      await expect.poll(() => range(page)).toBe('1–20 of 27');
      expect((await names(page))[0]).toBe('admin');

      const row = (text: string) => page.locator('table.users tbody tr', { hasText: text });
      expect(await row('listener-01').locator('.tag').allTextContents()).toEqual(['invite-only']);
      expect(await row('listener-01').locator('td').nth(1).textContent()).toBe('user');
      expect(await row('listener-01').locator('td').nth(2).textContent()).toBe('never');
      expect(await row('dora').locator('.tag').allTextContents()).toEqual(['disabled']);
      expect(await row('admin').locator('td').nth(1).textContent()).toBe('admin');
      await checkPage(page, 'users');

      // Name, descending: Zed (shown by name) comes first; the sort is in the URL.
      await page.getByRole('columnheader', { name: 'Name' }).getByRole('button').click();
      await expect.poll(() => names(page).then((n) => n[0])).toBe('Zed Zimmer');
      expect(new URL(page.url()).search).toBe('?order=desc');
      expect(await page.getByRole('columnheader', { name: 'Name' }).getAttribute('aria-sort')).toBe('descending');
      expect(await row('Zed Zimmer').locator('td').nth(2).textContent()).not.toBe('never');
      expect(await row('Zed Zimmer').locator('.hint').textContent()).toBe(' zed');

      // The second page; a reload shows the same one.
      await page.getByRole('button', { name: 'Next' }).click();
      await expect.poll(() => range(page)).toBe('21–27 of 27');
      expect(new URL(page.url()).search).toBe('?order=desc&offset=20');
      const second = await names(page);
      expect(second).toHaveLength(7);
      expect(second.at(-1)).toBe('admin');
      expect(await page.getByRole('button', { name: 'Next' }).isDisabled()).toBe(true);
      await page.reload();
      await expect.poll(() => range(page)).toBe('21–27 of 27');
      expect(await names(page)).toEqual(second);

      // Back goes to the first page.
      await page.goBack();
      await expect.poll(() => range(page)).toBe('1–20 of 27');
      expect((await names(page))[0]).toBe('Zed Zimmer');

      // Search: from the first page, kept in the URL, and a shared link shows it.
      await page.getByRole('searchbox', { name: 'Search users' }).fill('listener-1');
      await page.getByRole('button', { name: 'Search' }).click();
      await expect.poll(() => range(page)).toBe('1–10 of 10');
      expect((await names(page))[0]).toBe('listener-19');
      const shared = page.url();
      expect(new URL(shared).searchParams.get('q')).toBe('listener-1');

      const other = await page.context().newPage();
      await other.goto(shared);
      await expect.poll(() => range(other)).toBe('1–10 of 10');
      expect(await other.getByRole('searchbox', { name: 'Search users' }).inputValue()).toBe('listener-1');
      expect(await names(other)).toEqual(await names(page));
      await other.close();

      await page.getByRole('searchbox', { name: 'Search users' }).fill('nobody-by-this-name');
      await page.getByRole('button', { name: 'Search' }).click();
      await page.getByText('No user matches “nobody-by-this-name”.').waitFor();
      expect(await range(page)).toBe('0–0 of 0');

      // Role, ascending: the only admin first.
      await page.getByRole('searchbox', { name: 'Search users' }).fill('');
      await page.getByRole('button', { name: 'Search' }).click();
      await page.getByRole('columnheader', { name: 'Role' }).getByRole('button').click();
      await expect.poll(() => new URL(page.url()).search).toBe('?sort=role');
      await expect.poll(() => names(page).then((n) => n[0])).toBe('admin');
      expect(await range(page)).toBe('1–20 of 27');
      expect(await page.getByRole('columnheader', { name: 'Role' }).getAttribute('aria-sort')).toBe('ascending');
    });
  });

  it('hides Users from a caller who may not list users, and says so on the page itself', async () => {
    await withBrowser(async (page) => {
      await signIn(page, server.url, 'zed', 'zed-long-password');
      // The page itself answers once the console knows (from GET /users) that this caller may not list users.
      await page.goto(`${server.url}/users`);
      await page.getByText('Your account is not allowed to list users.').waitFor();
      const nav = page.getByRole('navigation', { name: 'Console' });
      expect(await nav.getByRole('link').allTextContents()).toEqual(['My account']);
    });
  });

  it('creates a user in a dialog that keeps the focus, closes on Escape, and says why the API refused', async () => {
    const min = (await (await fetch(`${server.url}${AUTH}/console-config`)).json()).passwordMinLength as number;
    await withBrowser(async (page) => {
      await signIn(page, server.url);
      await page.goto(`${server.url}/users`);
      const open = page.getByRole('button', { name: '+ Create user' });
      await open.click();
      const dialog = page.getByRole('dialog', { name: 'Create user' });
      await dialog.waitFor();
      const focusedLabel = () => page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.labels?.[0]?.textContent ?? document.activeElement?.textContent);
      await expect.poll(focusedLabel).toBe('Username');
      const password = dialog.getByLabel('Password');
      const hint = page.locator(`#${await password.getAttribute('aria-describedby')}`);
      await expect.poll(() => hint.textContent()).toBe(
        `Optional - leave blank for a player-only account that pairs via an invite code. At least ${min} characters.`,
      );
      await dialog.getByLabel('Role').selectOption('admin');
      await expect.poll(() => hint.textContent()).toBe(`Required - admins sign in to this console. At least ${min} characters.`);
      // No resource type declared here (GET /resources answers []): no Access field.
      expect((await client(server.url).get(`${AUTH}/resources`, { key: adminKey })).body).toEqual([]);
      expect(await dialog.getByLabel('Access').count()).toBe(0);
      await checkPage(page, 'users-create');

      // Tab and Shift+Tab never leave the dialog.
      for (let i = 0; i < 8; i++) {
        await page.keyboard.press(i % 3 === 2 ? 'Shift+Tab' : 'Tab');
        expect(await page.evaluate(() => !!document.activeElement?.closest('dialog'))).toBe(true);
      }

      // Escape closes it, and the focus is back on the button that opened it.
      await page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'detached' });
      await expect.poll(() => page.evaluate(() => document.activeElement?.textContent)).toBe('+ Create user');

      // Refusals, each a sentence; what was typed stays.
      await open.click();
      await dialog.getByLabel('Username').fill('boss');
      await dialog.getByLabel('Role').selectOption('admin');
      await dialog.getByRole('button', { name: 'Create user' }).click();
      await expect.poll(() => dialog.getByRole('alert').textContent()).toBe('An admin must have a password: admins sign in to this console. Set a password first.');
      expect(await dialog.getByLabel('Username').inputValue()).toBe('boss');
      expect(await dialog.getByLabel('Role').inputValue()).toBe('admin');

      await dialog.getByLabel('Role').selectOption('user');
      await dialog.getByLabel('Username').fill('listener-01');
      await dialog.getByRole('button', { name: 'Create user' }).click();
      await expect.poll(() => dialog.getByRole('alert').textContent()).toBe('That username is already taken. Choose another one.');

      await dialog.getByLabel('Username').fill('newbie');
      await password.fill('short');
      await dialog.getByRole('button', { name: 'Create user' }).click();
      await expect.poll(() => dialog.getByRole('alert').textContent()).toBe(`Check the password: it must be at least ${min} characters.`);
      expect(await password.inputValue()).toBe('short');

      // A listener without a password: created, listed as invite-only.
      await password.fill('');
      await dialog.getByRole('button', { name: 'Create user' }).click();
      await dialog.waitFor({ state: 'detached' });
      await page.getByText('Created newbie.').waitFor();
      await page.getByRole('searchbox', { name: 'Search users' }).fill('newbie');
      await page.getByRole('button', { name: 'Search' }).click();
      await expect.poll(() => names(page)).toEqual(['newbie']);
      expect(await page.locator('table.users tbody tr .tag').allTextContents()).toEqual(['invite-only']);
      const made = (await client(server.url).get(`${AUTH}/users?q=newbie`, { key: adminKey })).body;
      expect(made).toMatchObject([{ username: 'newbie', role: 'user', hasPassword: false }]);
    });
  });

  it("manages a user from the drawer: invites (link opened by a second browser, resend, revoke), role, status, password and the safety rails", async () => {
    const c = client(server.url);
    await createUser(server, c, adminKey, { username: 'ann' });
    await withBrowser(async (page, _context, browser) => {
      await signIn(page, server.url);
      await page.goto(`${server.url}/users?q=ann`);
      await page.getByRole('button', { name: 'ann', exact: true }).click();
      const drawer = page.getByRole('dialog', { name: 'ann' });
      const invites = drawer.getByRole('region', { name: 'Invites' });
      await invites.getByText('No active invite.').waitFor();
      expect(await invites.getByLabel('Uses').inputValue()).toBe('5');
      expect(await invites.getByLabel('Expires').inputValue()).toBe('1');
      await invites.getByRole('button', { name: 'Create invite' }).click();
      await invites.getByText(/^Invite created\./).waitFor();
      const link = await invites.getByLabel('Invite link').inputValue();
      const code = await invites.getByLabel('Auth code').inputValue();
      expect(link).toBe(`${server.url}/connect#code=${code}`);
      await invites.getByRole('button', { name: 'Copy link' }).waitFor();
      await invites.getByRole('button', { name: 'Copy code' }).waitFor();
      await invites.getByText(/^Active · 5 uses left · expires /).waitFor();
      await checkPage(page, 'users-drawer');

      // The listener opens the link on their phone.
      const open = async (url: string) => {
        const phone = await browser.newContext();
        const other = await phone.newPage();
        await other.goto(url);
        return { phone, other };
      };
      const first = await open(link);
      await first.other.getByRole('heading', { name: "You're connected" }).waitFor();
      await first.phone.close();

      // Resend: a new link; the old one no longer works, and says so.
      await invites.getByRole('button', { name: 'Resend' }).click();
      await invites.getByText(/^A new link and code replace the old ones/).waitFor();
      const resent = await invites.getByLabel('Invite link').inputValue();
      expect(resent).not.toBe(link);
      await invites.getByText(/^Active · 4 uses left/).waitFor();
      const stale = await open(link);
      await expect.poll(() => stale.other.getByRole('alert').filter({ hasText: /\S/ }).first().textContent()).toBe(
        'That code does not work. Check that you copied the whole code, or ask for a new one.',
      );
      await stale.phone.close();

      // Revoke: no active invite, and it is in the history.
      await invites.getByRole('button', { name: 'Revoke' }).click();
      await invites.getByText('No active invite.').waitFor();
      await invites.getByText(/^revoked · created /).waitFor();
      const revoked = await c.post(`${AUTH}/connect`, { body: { code: new URL(resent).hash.split('=')[1] } });
      expect([revoked.status, revoked.body.error.code]).toEqual([410, 'invite.revoked']);

      // Promoting a listener without a password is refused next to the control; the select goes back.
      const account = drawer.getByRole('region', { name: 'Account' });
      const role = account.getByLabel('Role');
      await role.selectOption('admin');
      await expect.poll(() => account.getByRole('alert').filter({ hasText: /\S/ }).first().textContent()).toBe(
        'An admin must have a password: admins sign in to this console. Set a password first.',
      );
      expect(await role.inputValue()).toBe('user');

      // With a password, promote, demote; disable and enable.
      await account.getByLabel('Password', { exact: true }).fill('ann-long-password');
      await account.getByRole('button', { name: 'Set password' }).click();
      await account.getByText('Password saved.').waitFor();
      await account.getByText('Password: set').waitFor();
      await role.selectOption('admin');
      await account.getByText('Role changed to admin.').waitFor();
      expect(await account.getByRole('button', { name: 'Clear password' }).count()).toBe(0);
      await role.selectOption('user');
      await account.getByText('Role changed to user.').waitFor();
      await account.getByRole('button', { name: 'Disable' }).click();
      await account.getByText('Status: disabled').waitFor();
      await account.getByRole('button', { name: 'Enable' }).click();
      await account.getByText('Status: enabled').waitFor();

      // Clearing the password makes the account invite-only again.
      await account.getByRole('button', { name: 'Clear password' }).click();
      await account.getByText('Password cleared: the account is invite-only again.').waitFor();
      await account.getByText('Password: none (invite-only)').waitFor();
      expect((await c.get(`${AUTH}/users?q=ann`, { key: adminKey })).body[0]).toMatchObject({ role: 'user', active: true, hasPassword: false });

      // Escape closes the drawer; the row reflects it.
      await page.keyboard.press('Escape');
      await drawer.waitFor({ state: 'detached' });

      // The last admin: demoting or disabling it is refused, with the reason beside the control.
      await page.goto(`${server.url}/users?q=admin`);
      await page.getByRole('button', { name: 'admin', exact: true }).click();
      const self = page.getByRole('dialog', { name: 'admin' }).getByRole('region', { name: 'Account' });
      const lastAdmin = 'This is the last enabled admin: make another account an admin first, or the console would have no one to run it.';
      await self.getByLabel('Role').selectOption('user');
      await expect.poll(() => self.getByRole('alert').filter({ hasText: /\S/ }).first().textContent()).toBe(lastAdmin);
      expect(await self.getByLabel('Role').inputValue()).toBe('admin');
      await self.getByRole('button', { name: 'Disable' }).click();
      await expect.poll(() => self.getByRole('alert').filter({ hasText: /\S/ }).allTextContents()).toEqual([lastAdmin, lastAdmin]);
      await self.getByText('Status: enabled').waitFor();
    });
  });

  it('ends all of a user\'s sessions, deletes a user after saying what goes, and offers no delete on your own account', async () => {
    const c = client(server.url);
    const { user: cara } = await createUser(server, c, adminKey, { username: 'cara' });
    const made = await c.post(`${AUTH}/users/${cara.id}/invites`, { key: adminKey, body: {} });
    const app = await c.post(`${AUTH}/connect`, { body: { code: made.body.code, device: { name: 'Pixel 8', kind: 'app' } } });
    const bearer = { Authorization: `Bearer ${app.body.token}` };
    expect((await c.get(`${AUTH}/me`, { headers: bearer })).status).toBe(200);
    await withBrowser(async (page) => {
      await signIn(page, server.url);
      await page.goto(`${server.url}/users?q=cara`);
      await page.getByRole('button', { name: 'cara', exact: true }).click();
      const drawer = page.getByRole('dialog', { name: 'cara' });
      await drawer.getByRole('region', { name: 'Sessions' }).getByRole('button', { name: 'End all sessions' }).click();
      await drawer.getByText('Every browser and app cara was signed in on is signed out.').waitFor();
      expect((await c.get(`${AUTH}/me`, { headers: bearer })).status).toBe(401);

      const danger = drawer.getByRole('region', { name: 'Danger zone' });
      await danger.getByRole('button', { name: 'Delete user…' }).click();
      await danger.getByText(/^Delete cara\? The account is removed with its password, API key and recovery code/).waitFor();
      await danger.getByRole('button', { name: 'Keep the account' }).click();
      await danger.getByRole('button', { name: 'Delete user…' }).click();
      await danger.getByRole('button', { name: 'Yes, delete cara' }).click();
      await drawer.waitFor({ state: 'detached' });
      await page.getByText('Deleted cara.').waitFor();
      await page.getByText('No user matches “cara”.').waitFor();
      expect((await c.get(`${AUTH}/users/${cara.id}`, { key: adminKey })).status).toBe(404);

      await page.goto(`${server.url}/users?q=admin`);
      await page.getByRole('button', { name: 'admin', exact: true }).click();
      const own = page.getByRole('dialog', { name: 'admin' }).getByRole('region', { name: 'Danger zone' });
      await own.getByText(/^This is your own account: it cannot be deleted from here\./).waitFor();
      expect(await own.getByRole('button').count()).toBe(0);
    });
  });
});
