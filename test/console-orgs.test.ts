import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { withBrowser } from './helpers/browser.js';
import { checkPage, nav, range, signIn } from './helpers/console.js';
import { client, type Client } from './helpers/http.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';


describe('console: organisations, the drawer’s Organisation and Access blocks, and an org admin', () => {
  let server: TestServer;
  let c: Client;
  let adminKey: string;
  const orgId = async (name: string) => ((await c.get(`${AUTH}/orgs`, { key: adminKey })).body as { id: number; name: string }[]).find((o) => o.name === name)?.id;
  const userNamed = async (username: string) => ((await c.get(`${AUTH}/users?q=${username}`, { key: adminKey })).body as { id: number; username: string; organizationId: number | null; orgRole: string | null; active: boolean }[]).find((u) => u.username === username)!;
  const grantsOf = async (id: number) => ((await c.get(`${AUTH}/users/${id}/grants`, { key: adminKey })).body as { type: string; resourceId: string; actions: string[] }[]).map((g) => `${g.type}:${g.resourceId}:${g.actions.join('+')}`);

  beforeAll(async () => {
    server = await startServer('sqlite', { settings: { resources: [{ type: 'library' }, { type: 'share', actions: ['read', 'write'] }] } });
    c = client(server.url);
    adminKey = await setupAdmin(c, 'admin', 'admin-password');
  });
  afterAll(() => server.close());

  it('lists, creates, renames and deletes organisations, each refusal beside its control', async () => {
    await withBrowser(async (page) => {
      await signIn(page, server.url);
      await expect.poll(() => nav(page).getByRole('link').allTextContents()).toEqual(['Users', 'Roles', 'Organisations', 'Audit', 'My account']);
      await nav(page).getByRole('link', { name: 'Organisations' }).click();
      await page.getByRole('heading', { name: 'Organisations', level: 1 }).waitFor();
      await page.getByText('No organisations yet.').waitFor();
      const form = page.getByRole('form', { name: 'Create organisation' });
      const create = form.getByRole('button', { name: '+ Create organisation' });
      // By keyboard: type, Tab to the description, Enter submits.
      await form.getByLabel('Name', { exact: true }).fill('Acme');
      await page.keyboard.press('Tab');
      await page.keyboard.type('Rockets');
      await page.keyboard.press('Enter');
      await page.getByText('Created Acme.').waitFor();
      const item = (name: string) => page.locator('li.org', { has: page.getByRole('heading', { name, exact: true, level: 2 }) });
      await item('Acme').getByText('Rockets').waitFor();
      const alert = form.locator('.outcome [role=alert]');
      await form.getByLabel('Name', { exact: true }).fill('ACME');
      await create.click();
      await expect.poll(() => alert.textContent()).toBe('An organisation of that name exists already. Choose another name.');
      expect(await form.getByLabel('Name', { exact: true }).inputValue()).toBe('ACME');
      await form.getByLabel('Name', { exact: true }).fill('   ');
      await create.click();
      await expect.poll(() => alert.textContent()).toBe('Check the name: it must not be empty.');
      await form.getByLabel('Name', { exact: true }).fill('Globex');
      await create.click();
      await page.getByText('Created Globex.').waitFor();
      await checkPage(page, 'orgs');

      // Rename and describe.
      await item('Globex').getByRole('button', { name: 'Edit Globex' }).click();
      await item('Globex').getByLabel('Name', { exact: true }).fill('Acme');
      await item('Globex').getByRole('button', { name: 'Save' }).click();
      await expect.poll(() => item('Globex').locator('form .outcome [role=alert]').textContent()).toBe('An organisation of that name exists already. Choose another name.');
      await item('Globex').getByLabel('Name', { exact: true }).fill('Globex Corp');
      await item('Globex').getByLabel('Description').fill('Widgets');
      await item('Globex').getByRole('button', { name: 'Save' }).click();
      await page.getByText('Saved Globex Corp.').waitFor();
      const globex = await orgId('Globex Corp');
      expect((await c.get(`${AUTH}/orgs/${globex}`, { key: adminKey })).body).toMatchObject({ name: 'Globex Corp', description: 'Widgets' });

      // Deleting one with members asks again, then detaches them.
      const { user: member } = await createUser(server, c, adminKey, { username: 'gina', organizationId: globex });
      await item('Globex Corp').getByRole('button', { name: 'Delete Globex Corp…' }).click();
      await item('Globex Corp').getByRole('button', { name: 'Yes, delete Globex Corp' }).click();
      await item('Globex Corp').getByText('Globex Corp has members. Deleting it takes them out of it, with their organisation role; they keep their account and global role.').waitFor();
      expect(await orgId('Globex Corp')).toBe(globex);
      await checkPage(page, 'orgs-delete');
      await item('Globex Corp').getByRole('button', { name: 'Take them out and delete Globex Corp' }).click();
      await page.getByText('Deleted Globex Corp.').waitFor();
      expect(await orgId('Globex Corp')).toBeUndefined();
      expect((await c.get(`${AUTH}/users/${member.id}`, { key: adminKey })).body.organizationId).toBeNull();
      expect(await page.locator('li.org h2').allTextContents()).toEqual(['Acme']);
    });
  });

  it('creates a user in an organisation with access, and changes their organisation and grants in the drawer', async () => {
    const acme = (await orgId('Acme'))!;
    await createUser(server, c, adminKey, { username: 'dave', password: 'dave-long-password' });
    await withBrowser(async (page) => {
      await signIn(page, server.url);
      await page.goto(`${server.url}/users`);
      await page.getByRole('columnheader', { name: 'Organisation' }).waitFor();
      await page.getByRole('button', { name: '+ Create user' }).click();
      const dialog = page.getByRole('dialog', { name: 'Create user' });
      await dialog.getByLabel('Username').fill('acme-boss');
      await dialog.getByLabel('Password', { exact: true }).fill('boss-long-password');
      expect(await dialog.getByLabel('Org role').isDisabled()).toBe(true);
      await dialog.getByLabel('Organisation').selectOption({ label: 'Acme' });
      await dialog.getByLabel('Org role').selectOption('admin');
      expect(await dialog.getByLabel('Access').locator('option').allTextContents()).toEqual(['No access', 'Whole library', 'Specific shares']);
      await dialog.getByLabel('Access').selectOption({ label: 'Whole library' });
      await dialog.getByLabel('Which library ids').fill('1, 2');
      await checkPage(page, 'user-create-org-access');
      await dialog.getByRole('button', { name: 'Create user' }).click();
      await dialog.waitFor({ state: 'detached' });
      await page.getByText('Created acme-boss.').waitFor();
      const boss = await userNamed('acme-boss');
      expect(boss).toMatchObject({ organizationId: acme, orgRole: 'admin' });
      expect(await grantsOf(boss.id)).toEqual(['library:1:read', 'library:2:read']);
      const row = page.getByRole('row', { name: /acme-boss/ });
      expect(await row.getByRole('cell').nth(2).textContent()).toBe('Acmeorg admin');
      await checkPage(page, 'users-orgs');

      // dave's drawer: into Acme, then a share granted and revoked.
      const dave = await userNamed('dave');
      await page.getByRole('button', { name: 'dave' }).click();
      const drawer = page.getByRole('dialog', { name: 'dave' });
      const org = drawer.locator('section', { has: page.getByRole('heading', { name: 'Organisation' }) });
      await org.getByLabel('Organisation').selectOption({ label: 'Acme' });
      await org.getByRole('button', { name: 'Save organisation' }).click();
      await org.getByText('Now in Acme.').waitFor();
      expect((await userNamed('dave')).organizationId).toBe(acme);
      expect(new URL(page.url()).searchParams.get('user')).toBe(String(dave.id));
      const access = drawer.locator('section', { has: page.getByRole('heading', { name: 'Access', exact: true }) });
      await access.getByText('No access yet: dave sees nothing until granted.').waitFor();
      await access.getByLabel('Type').selectOption('share');
      await access.getByLabel('Resource id').fill('kids');
      await access.getByRole('checkbox', { name: 'write' }).check();
      await access.getByRole('button', { name: 'Grant', exact: true }).click();
      await access.getByText('Granted share kids: read, write.').waitFor();
      expect(await grantsOf(dave.id)).toEqual(['share:kids:read+write']);
      // The same resource again: the API's refusal, beside the Grant button.
      await access.getByLabel('Resource id').fill('kids');
      await access.getByRole('button', { name: 'Grant', exact: true }).click();
      await expect.poll(() => access.locator('form .outcome [role=alert]').textContent()).toBe('This user has a grant on that resource already: revoke it first to change its actions.');
      await checkPage(page, 'drawer-org-access');
      await access.getByRole('button', { name: 'Revoke share kids' }).click();
      await access.getByText('Revoked share kids.').waitFor();
      expect(await grantsOf(dave.id)).toEqual([]);
      await page.keyboard.press('Escape');
      await drawer.waitFor({ state: 'detached' });

      // An admin's drawer: just the note.
      await page.getByRole('button', { name: 'admin', exact: true }).click();
      await page.getByRole('dialog', { name: 'admin' }).getByText('Admins see everything: every resource of every type, without grants.').waitFor();
    });
  });

  it('shows an org admin only their organisation: its users and count, new users in it, nothing outside', async () => {
    const acme = (await orgId('Acme'))!;
    const { user: outsider } = await createUser(server, c, adminKey, { username: 'olga' });
    await withBrowser(async (page) => {
      await signIn(page, server.url, 'acme-boss', 'boss-long-password');
      await expect.poll(() => nav(page).getByRole('link').allTextContents()).toEqual(['Users', 'Roles', 'Organisations', 'Audit', 'My account']);
      await nav(page).getByRole('link', { name: 'Users' }).click();
      await page.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
      await expect.poll(() => page.locator('table.users tbody tr td:first-child strong').allTextContents()).toEqual(['acme-boss', 'dave']);
      expect(await range(page)).toBe('1–2 of 2');

      // A new user lands in Acme; no Organisation field for an org admin.
      await page.getByRole('button', { name: '+ Create user' }).click();
      const dialog = page.getByRole('dialog', { name: 'Create user' });
      await dialog.getByLabel('Username').fill('eve');
      expect(await dialog.getByLabel('Organisation').count()).toBe(0);
      await dialog.getByRole('button', { name: 'Create user' }).click();
      await page.getByText('Created eve.').waitFor();
      expect((await userNamed('eve')).organizationId).toBe(acme);
      await expect.poll(() => range(page)).toBe('1–3 of 3');

      // Her drawer: the organisation read-only.
      await page.getByRole('button', { name: 'eve' }).click();
      const drawer = page.getByRole('dialog', { name: 'eve' });
      await drawer.getByText('In Acme. Only a global admin changes it.').waitFor();
      await checkPage(page, 'org-admin-drawer');
      // Disabling is a global admin's: refused with the sentence, beside the button.
      await drawer.getByRole('button', { name: 'Disable' }).click();
      await expect.poll(() => drawer.getByRole('alert').filter({ hasText: /./ }).allTextContents()).toEqual(['Your account is not allowed to do this.']);
      expect((await userNamed('eve')).active).toBe(true);
      await page.keyboard.press('Escape');

      // Someone outside: a direct link to their drawer says not found.
      await page.goto(`${server.url}/users?user=${outsider.id}`);
      await page.getByRole('dialog', { name: 'User' }).getByText('There is no such user, or it is not yours to see.').waitFor();
      expect(await page.getByText('olga').count()).toBe(0);
      await checkPage(page, 'org-admin-outside');

      // Organisations: their own, without the controls they may not use.
      await page.goto(`${server.url}/orgs`);
      await page.getByText('Only a global admin creates, renames or deletes organisations.').waitFor();
      await page.locator('li.org h2').first().waitFor();
      expect(await page.locator('li.org h2').allTextContents()).toEqual(['Acme']);
      expect(await page.getByRole('button', { name: /Create organisation|Edit|Delete/ }).count()).toBe(0);
      // Roles: read, without the controls only a global admin may use (roles.manage).
      await page.goto(`${server.url}/roles`);
      await page.getByRole('heading', { name: 'admin', level: 2 }).waitFor();
      await page.getByText('You may read the roles; changing them needs roles.manage, which only a global admin holds.').waitFor();
      await checkPage(page, 'org-admin-roles');
      expect(await page.getByRole('button', { name: /Create role|Edit|Delete/ }).count()).toBe(0);
    });
  });
});
