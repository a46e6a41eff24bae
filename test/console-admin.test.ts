import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { withBrowser } from './helpers/browser.js';
import { checkPage, nav, range, signIn } from './helpers/console.js';
import { client, type Client } from './helpers/http.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';


describe('console: Roles, Audit, and the drawer’s Permissions and Sessions', () => {
  let server: TestServer;
  let c: Client;
  let adminKey: string;
  let adminId: number;
  beforeAll(async () => {
    server = await startServer('sqlite', { settings: { permissions: [{ name: 'cert.create', description: 'Issue a certificate.' }] } });
    c = client(server.url);
    adminKey = await setupAdmin(c, 'admin', 'admin-password');
    adminId = (await c.get(`${AUTH}/me`, { key: adminKey })).body.id;
    // A role manager who may not list users nor read the log.
    expect((await c.post(`${AUTH}/roles`, { key: adminKey, body: { name: 'role-keeper', inherits: ['user'], permissions: ['roles.read', 'roles.manage'] } })).status).toBe(201);
    await createUser(server, c, adminKey, { username: 'ria', password: 'ria-long-password', role: 'role-keeper' });
  });
  afterAll(() => server.close());

  it('shows Users, Roles, Organisations and Audit to an admin, marks the current page, and hides what a caller may not see', async () => {
    await withBrowser(async (page) => {
      await signIn(page, server.url);
      // The links appear once the API has said what this caller may see.
      await expect.poll(() => nav(page).getByRole('link').allTextContents()).toEqual(['Users', 'Roles', 'Organisations', 'Audit', 'My account']);
      expect(await nav(page).getByRole('link', { name: 'My account' }).getAttribute('aria-current')).toBe('page');
      // By keyboard: Tab to Roles and press Enter.
      await nav(page).getByRole('link', { name: 'Organisations' }).focus();
      await page.keyboard.press('Shift+Tab');
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { name: 'Roles and permissions', level: 1 }).waitFor();
      expect(new URL(page.url()).pathname).toBe('/roles');
      expect(await nav(page).getByRole('link', { name: 'Roles' }).getAttribute('aria-current')).toBe('page');
      expect(await nav(page).getByRole('link', { name: 'My account' }).getAttribute('aria-current')).toBeNull();
      // The heading has the focus after the move, as a page load would.
      expect(await page.evaluate(() => document.activeElement?.tagName)).toBe('H1');
    });
    await withBrowser(async (page) => {
      await signIn(page, server.url, 'ria', 'ria-long-password');
      await nav(page).getByRole('link', { name: 'Roles' }).waitFor();
      expect(await nav(page).getByRole('link').allTextContents()).toEqual(['Roles', 'My account']);
      await page.goto(`${server.url}/audit`);
      await page.getByText('Your account is not allowed to read the audit log.').waitFor();
      // She may manage roles, but grant only what she holds.
      await page.goto(`${server.url}/roles`);
      await page.getByRole('button', { name: '+ Create role' }).click();
      const dialog = page.getByRole('dialog', { name: 'Create role' });
      await dialog.getByLabel('Name', { exact: true }).fill('cert-issuer');
      await dialog.getByRole('checkbox', { name: 'cert.create' }).check();
      await dialog.getByRole('button', { name: 'Create role' }).click();
      await expect.poll(() => dialog.getByRole('alert').textContent()).toBe('You do not hold cert.create, so you cannot grant it.');
      // The alert sits right after the permissions, before the buttons.
      expect(await dialog.locator('.checklist + .outcome [role=alert]').textContent()).toBe('You do not hold cert.create, so you cannot grant it.');
      expect(await dialog.getByLabel('Name', { exact: true }).inputValue()).toBe('cert-issuer');
      expect((await c.get(`${AUTH}/roles/cert-issuer`, { key: adminKey })).status).toBe(404);
    });
  });

  it('lists roles, creates, edits and deletes one (moving its holders), with each refusal beside its control', async () => {
    const { user: holder } = await createUser(server, c, adminKey, { username: 'holder' });
    await withBrowser(async (page) => {
      await signIn(page, server.url);
      await page.goto(`${server.url}/roles`);
      const item = (name: string) => page.locator('ul.roles > li', { has: page.getByRole('heading', { name, exact: false, level: 2 }) });
      await item('admin').waitFor();
      expect(await item('admin').locator('.tag').textContent()).toBe('built-in');
      expect(await item('admin').getByRole('button', { name: /Edit|Delete/ }).count()).toBe(0);
      expect(await item('user').locator('summary').textContent()).toMatch(/^Effective: \d+ permissions$/);
      expect(await item('role-keeper').locator('dl').textContent()).toBe('InheritsuserOwnroles.manage, roles.read');
      await checkPage(page, 'roles');

      // Create: the grouped checklist with descriptions; the focus stays in the dialog; Escape closes it.
      const open = page.getByRole('button', { name: '+ Create role' });
      await open.click();
      const dialog = page.getByRole('dialog', { name: 'Create role' });
      await expect.poll(() => page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.labels?.[0]?.textContent)).toBe('Name');
      const groups = await dialog.locator('.checklist legend').allTextContents();
      expect(groups).toEqual(expect.arrayContaining(['users', 'roles', 'audit', 'self', 'cert (this app)']));
      const usersList = dialog.getByRole('checkbox', { name: 'users.list' });
      expect(await page.locator(`#${await usersList.getAttribute('aria-describedby')}`).textContent()).toMatch(/./);
      await checkPage(page, 'roles-create');
      for (let i = 0; i < 6; i++) {
        await page.keyboard.press('Tab');
        expect(await page.evaluate(() => !!document.activeElement?.closest('dialog'))).toBe(true);
      }
      await page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'detached' });
      await expect.poll(() => page.evaluate(() => document.activeElement?.textContent)).toBe('+ Create role');

      await open.click();
      // request.invalid names the field: said beside the name.
      await dialog.getByLabel('Name', { exact: true }).fill('1editor');
      await dialog.getByRole('button', { name: 'Create role' }).click();
      const nameAlert = dialog.locator('.field:has(input[required]) + .outcome [role=alert]');
      await expect.poll(() => nameAlert.textContent()).toMatch(/^Check the name: it must be a letter/);
      // role.exists, beside the name too.
      await dialog.getByLabel('Name', { exact: true }).fill('role-keeper');
      await dialog.getByRole('button', { name: 'Create role' }).click();
      await expect.poll(() => nameAlert.textContent()).toBe('A role of that name exists already. Choose another name.');

      await dialog.getByLabel('Name', { exact: true }).fill('editor');
      await dialog.getByLabel('Description').fill('Edits the catalogue.');
      await dialog.getByRole('group', { name: 'Inherits' }).getByRole('checkbox', { name: 'user', exact: true }).check();
      await dialog.getByRole('checkbox', { name: 'users.list' }).check();
      await dialog.getByRole('button', { name: 'Create role' }).click();
      await dialog.waitFor({ state: 'detached' });
      await page.getByText('Created editor.').waitFor();
      await expect.poll(() => item('editor').locator('dl').textContent()).toBe('InheritsuserOwnusers.list');
      expect(await item('editor').getByText('Edits the catalogue.').count()).toBe(1);
      const api = (await c.get(`${AUTH}/roles/editor`, { key: adminKey })).body;
      expect(api).toMatchObject({ description: 'Edits the catalogue.', inherits: ['user'], permissions: ['users.list'] });

      // Edit: grant the app's permission too.
      await item('editor').getByRole('button', { name: 'Edit editor' }).click();
      const edit = page.getByRole('dialog', { name: 'Edit role editor' });
      expect(await edit.getByRole('checkbox', { name: 'users.list' }).isChecked()).toBe(true);
      await edit.getByRole('checkbox', { name: 'cert.create' }).check();
      await edit.getByRole('button', { name: 'Save role' }).click();
      await edit.waitFor({ state: 'detached' });
      await page.getByText('Saved editor.').waitFor();
      expect((await c.get(`${AUTH}/roles/editor`, { key: adminKey })).body.permissions).toEqual(['cert.create', 'users.list']);

      // Delete a role someone holds: it asks where they go.
      expect((await c.patch(`${AUTH}/users/${holder.id}`, { key: adminKey, body: { role: 'editor' } })).status).toBe(200);
      await item('editor').getByRole('button', { name: 'Delete…' }).click();
      await item('editor').getByRole('button', { name: 'Keep the role' }).click();
      await item('editor').getByRole('button', { name: 'Delete…' }).click();
      await item('editor').getByRole('button', { name: 'Yes, delete editor' }).click();
      await item('editor').getByText('1 user holds this role. Choose the role to move them to, then delete it.').waitFor();
      await item('editor').getByLabel('Move its holders to').selectOption('role-keeper');
      await checkPage(page, 'roles-delete');
      await item('editor').getByRole('button', { name: 'Move them to role-keeper and delete' }).click();
      await page.getByText('Deleted editor; its holders now have role-keeper.').waitFor();
      await expect.poll(() => item('editor').count()).toBe(0);
      expect((await c.get(`${AUTH}/users/${holder.id}`, { key: adminKey })).body.role).toBe('role-keeper');

      // A role another inherits: the API's reason, as a sentence.
      expect((await c.post(`${AUTH}/roles`, { key: adminKey, body: { name: 'heir', inherits: ['role-keeper'] } })).status).toBe(201);
      await page.reload();
      await item('role-keeper').getByRole('button', { name: 'Delete…' }).click();
      await item('role-keeper').getByRole('button', { name: 'Yes, delete role-keeper' }).click();
      await expect.poll(() => item('role-keeper').getByRole('alert').textContent()).toBe('It cannot be deleted now: role-keeper is inherited by heir.');

      // Dark mode follows the system: the same checks on the dark palette.
      await page.emulateMedia({ colorScheme: 'dark' });
      await checkPage(page, 'roles-dark');
      await page.emulateMedia({ colorScheme: 'light' });
    });
  });

  it('grants and revokes direct permissions in the user drawer, role-inherited ones fixed', async () => {
    const { user: pat } = await createUser(server, c, adminKey, { username: 'pat' });
    await withBrowser(async (page) => {
      await signIn(page, server.url);
      await page.goto(`${server.url}/users?q=pat`);
      await page.getByRole('button', { name: 'pat', exact: true }).click();
      const block = page.getByRole('dialog', { name: 'pat' }).getByRole('region', { name: 'Permissions' });
      // Folded away: the drawer's other blocks stay in reach.
      const selfRead = block.getByRole('checkbox', { name: 'self.read' });
      await block.getByText('Direct: none.').waitFor();
      expect(await selfRead.isVisible()).toBe(false);
      await block.getByText('Grant or revoke permissions').click();
      await selfRead.waitFor();
      expect(await selfRead.isChecked()).toBe(true);
      expect(await selfRead.isDisabled()).toBe(true);
      const save = block.getByRole('button', { name: 'Save permissions' });
      expect(await save.isDisabled()).toBe(true);
      await block.getByRole('checkbox', { name: 'audit.read' }).check();
      await block.getByRole('checkbox', { name: 'cert.create' }).check();
      await save.click();
      await block.getByText('Saved: granted audit.read, cert.create.').waitFor();
      expect((await c.get(`${AUTH}/users/${pat.id}/permissions`, { key: adminKey })).body.direct).toEqual(['audit.read', 'cert.create']);
      await block.scrollIntoViewIfNeeded();
      await checkPage(page, 'users-drawer-permissions');
      await block.getByRole('checkbox', { name: 'audit.read' }).uncheck();
      await save.click();
      await block.getByText('Saved: revoked audit.read.').waitFor();
      expect((await c.get(`${AUTH}/users/${pat.id}/permissions`, { key: adminKey })).body.direct).toEqual(['cert.create']);
      expect(await block.getByText('Direct: cert.create.').count()).toBe(1);
    });
  });

  it("lists a user's browsers and apps in the drawer, ends one, then all", async () => {
    const { user: sam } = await createUser(server, c, adminKey, { username: 'sam', password: 'sam-long-password' });
    const browser = client(server.url, {});
    expect((await browser.post(`${AUTH}/login`, { body: { username: 'sam', password: 'sam-long-password' }, headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0' } })).status).toBe(200);
    const made = await c.post(`${AUTH}/users/${sam.id}/invites`, { key: adminKey, body: {} });
    const app = await c.post(`${AUTH}/connect`, { body: { code: made.body.code, device: { name: 'Living-room TV', kind: 'app' } } });
    const bearer = { Authorization: `Bearer ${app.body.token}` };
    expect((await c.get(`${AUTH}/me`, { headers: bearer })).status).toBe(200);
    await withBrowser(async (page) => {
      await signIn(page, server.url);
      await page.goto(`${server.url}/users?q=sam`);
      await page.getByRole('button', { name: 'sam', exact: true }).click();
      const block = page.getByRole('dialog', { name: 'sam' }).getByRole('region', { name: 'Sessions' });
      const rows = block.locator('ul.list > li');
      await expect.poll(() => rows.count()).toBe(2);
      expect(await rows.nth(0).textContent()).toMatch(/^Firefox on LinuxBrowser, signed in with a password · last used .+ from 127\.0\.0\.1End$/);
      expect(await rows.nth(1).textContent()).toMatch(/^Living-room TVApp, signed in with an invite or recovery code · last used .+End$/);
      await block.scrollIntoViewIfNeeded();
      await checkPage(page, 'users-drawer-sessions');

      await rows.nth(1).getByRole('button', { name: /^End Living-room TV/ }).click();
      await block.getByText('Living-room TV is signed out.').waitFor();
      expect(await rows.count()).toBe(1);
      expect((await c.get(`${AUTH}/me`, { headers: bearer })).status).toBe(401);
      expect((await browser.get(`${AUTH}/me`)).status).toBe(200);

      await block.getByRole('button', { name: 'End all sessions' }).click();
      await block.getByText('Every browser and app sam was signed in on is signed out.').waitFor();
      await block.getByText('Not signed in anywhere.').waitFor();
      expect((await browser.get(`${AUTH}/me`)).status).toBe(401);
    });
  });

  it('reads the audit log newest first, filtered and paged, with the state in the address bar', async () => {
    for (let i = 1; i <= 52; i++) await createUser(server, c, adminKey, { username: `member-${String(i).padStart(2, '0')}` });
    const { user: dora } = await createUser(server, c, adminKey, { username: 'dora' });
    expect((await c.post(`${AUTH}/users/${dora.id}/status`, { key: adminKey, body: { active: false } })).status).toBe(200);
    const createdTotal = Number((await c.get(`${AUTH}/audit?type=user.created&limit=1`, { key: adminKey })).headers.get('x-total-count'));
    expect(createdTotal).toBeGreaterThan(52);
    await withBrowser(async (page) => {
      await signIn(page, server.url);
      await nav(page).getByRole('link', { name: 'Audit' }).click();
      await page.getByRole('heading', { name: 'Audit log', level: 1 }).waitFor();
      const entries = page.getByRole('list', { name: 'Entries, newest first' }).locator('> li');
      await entries.first().waitFor();

      // Filter by type: one entry, readable.
      await page.getByLabel('Type').selectOption('user.disabled');
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await expect.poll(() => range(page)).toBe('1–1 of 1');
      expect(new URL(page.url()).search).toBe('?type=user.disabled');
      const one = entries.first();
      expect(await one.locator('strong').textContent()).toBe('user.disabled');
      // Names follow the entries: "user #2" until the lookup answers.
      await expect.poll(() => one.locator('dl').textContent()).toBe('Actoradmin (api-key)TargetdoraAddress127.0.0.1');
      expect(new Date((await one.locator('time').getAttribute('datetime'))!).getTime()).toBeGreaterThan(Date.now() - 60_000);
      await checkPage(page, 'audit');

      // Paged, newest first: the last member created leads; the setup's admin comes last.
      await page.getByLabel('Type').selectOption('user.created');
      await page.getByLabel('Actor (user id)').fill(String(adminId));
      await page.getByRole('button', { name: 'Apply filters' }).click();
      const byAdmin = createdTotal - 1;
      await expect.poll(() => range(page)).toBe(`1–50 of ${byAdmin}`);
      expect(await entries.count()).toBe(50);
      await expect.poll(() => entries.first().locator('dl dd').nth(1).textContent()).toBe('dora');
      await page.getByRole('button', { name: 'Older' }).click();
      await expect.poll(() => range(page)).toBe(`51–${byAdmin} of ${byAdmin}`);
      expect(new URL(page.url()).searchParams.get('offset')).toBe('50');
      // A reload, and a shared link, show the same page with the same filters.
      await page.reload();
      await expect.poll(() => range(page)).toBe(`51–${byAdmin} of ${byAdmin}`);
      expect(await page.getByLabel('Type').inputValue()).toBe('user.created');
      expect(await page.getByLabel('Actor (user id)').inputValue()).toBe(String(adminId));
      await page.goBack();
      await expect.poll(() => range(page)).toBe(`1–50 of ${byAdmin}`);

      // A refused filter, as a sentence naming it.
      await page.getByLabel('Since').fill('yesterday-ish');
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await expect.poll(() => page.getByRole('main').getByRole('alert').textContent()).toMatch(/^Check the since: it /);
      // By keyboard: Enter in a field applies the filters.
      await page.getByLabel('Since').fill('1d');
      await page.getByLabel('Since').press('Enter');
      await expect.poll(() => range(page)).toBe(`1–50 of ${byAdmin}`);

      await page.getByRole('button', { name: 'Clear filters' }).click();
      await expect.poll(() => new URL(page.url()).search).toBe('');
      expect(await page.getByLabel('Type').inputValue()).toBe('');

      await page.emulateMedia({ colorScheme: 'dark' });
      await checkPage(page, 'audit-dark');
    });
  });
});
