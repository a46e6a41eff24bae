import { useEffect, useState } from 'preact/hooks';
import { api, call, href, type User } from '../api';
import { navigate } from '../router';
import { Button, Outcome, useAction } from '../ui';
import { AccountPage } from './account';
import { UsersPage } from './users';

/** The signed-in console: a header with the navigation and sign-out, and the page. */
export function Shell({ user, path, onUser }: { user: User; path: string; onUser: (u: User) => void }) {
  const signOut = useAction();
  // Who may list users is the roles' business (issue 12), not a role name: ask the API, and a 403 hides Users.
  const [canListUsers, setCanListUsers] = useState<boolean | null>(null);
  useEffect(() => {
    api.GET('/api/v1/auth/users', { params: { query: { limit: '1' } } }).then(
      ({ response }) => setCanListUsers(response.ok),
      () => setCanListUsers(false),
    );
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
          {canListUsers && (
            <a href={href('/users')} data-nav="/users" aria-current={path === '/users' ? 'page' : undefined}>
              Users
            </a>
          )}
          <a href={href('/account')} data-nav="/account" aria-current={path === '/account' ? 'page' : undefined}>
            My account
          </a>
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
        ) : path === '/users' && canListUsers !== null ? (
          canListUsers ? (
            <UsersPage meId={user.id} />
          ) : (
            <Outcome problem={{ code: 'auth.forbidden', sentence: 'Your account is not allowed to list users.' }} />
          )
        ) : (
          <p role="status">Loading…</p>
        )}
      </main>
    </>
  );
}
