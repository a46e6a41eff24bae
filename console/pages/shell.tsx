import { useEffect, useState } from 'preact/hooks';
import { api, call, href, type User } from '../api';
import { navigate } from '../router';
import { Button, Outcome, useAction } from '../ui';
import { AccountPage } from './account';
import { UsersPage } from './users';
import { RolesPage } from './roles';
import { AuditPage } from './audit';
import { OrgsPage } from './orgs';

/** The navigation, in order; `need` names what the API must allow (null: everyone). */
const PAGES = [
  { path: '/users', label: 'Users', need: 'users' },
  { path: '/roles', label: 'Roles', need: 'roles' },
  { path: '/orgs', label: 'Organisations', need: 'orgs' },
  { path: '/audit', label: 'Audit', need: 'audit' },
  { path: '/account', label: 'My account', need: null },
] as const;

const Refused = ({ what }: { what: string }) => <Outcome problem={{ code: 'auth.forbidden', sentence: `Your account is not allowed to ${what}.` }} />;

/** The signed-in console: a header with the navigation and sign-out, and the page. */
export function Shell({ user, path, onUser }: { user: User; path: string; onUser: (u: User) => void }) {
  const signOut = useAction();
  // Who may see a page is the roles' business (issue 12), not a role name: ask the API, and a 403 hides the page.
  const [may, setMay] = useState<{ users: boolean; roles: boolean; orgs: boolean; audit: boolean } | null>(null);
  useEffect(() => {
    const ok = (request: Promise<{ response: Response }>) => request.then(({ response }) => response.ok, () => false);
    Promise.all([
      ok(api.GET('/api/v1/auth/users', { params: { query: { limit: '1' } } })),
      ok(api.GET('/api/v1/auth/roles')),
      ok(api.GET('/api/v1/auth/audit', { params: { query: { limit: '1' } } })),
      ok(api.GET('/api/v1/auth/orgs')),
    ]).then(([users, roles, audit, orgs]) => setMay({ users, roles, orgs, audit }));
  }, [user.id, user.role]);
  useEffect(() => {
    // Users come in the next slice: for now the console's home is My account.
    if (path === '/') navigate('/account', true);
  }, [path]);
  const out = () =>
    signOut.run(async () => {
      const answer = await call(api.POST('/api/v1/auth/logout'));
      const logoutUrl = (answer as { logoutUrl?: string } | undefined)?.logoutUrl;
      if (logoutUrl) location.assign(logoutUrl);
      else location.assign(href('/login'));
      return 'Signed out.';
    });
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Usher</span>
        <nav aria-label="Console">
          {PAGES.filter((p) => p.need === null || may?.[p.need]).map((p) => (
            <a key={p.path} href={href(p.path)} data-nav={p.path} aria-current={path === p.path ? 'page' : undefined}>
              {p.label}
            </a>
          ))}
        </nav>
        <span class="who">{user.name ?? user.username}</span>
        <Button onClick={out} busy={signOut.busy} busyLabel="Signing out…">
          Sign out
        </Button>
      </header>
      <Outcome problem={signOut.problem} />
      <main id="main" tabIndex={-1}>
        {path === '/account' ? (
          <AccountPage user={user} onUser={onUser} />
        ) : may === null ? (
          <p role="status">Loading…</p>
        ) : path === '/users' ? (
          may.users ? <UsersPage me={user} /> : <Refused what="list users" />
        ) : path === '/roles' ? (
          may.roles ? <RolesPage meId={user.id} /> : <Refused what="see the roles" />
        ) : path === '/orgs' ? (
          may.orgs ? <OrgsPage me={user} /> : <Refused what="see the organisations" />
        ) : path === '/audit' ? (
          may.audit ? <AuditPage /> : <Refused what="read the audit log" />
        ) : (
          <p role="status">Loading…</p>
        )}
      </main>
    </>
  );
}
