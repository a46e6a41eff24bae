import { useEffect, useState } from 'preact/hooks';
import { api, call, href } from '../api';
import { Button, Field, Outcome, PageHeading, Secret, useAction, usePasswordHint } from '../ui';

/** While no user exists: make the first admin, then show their API key once. */
export function FirstRunPage() {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [apiKey, setApiKey] = useState<string | null>(null);
  const action = useAction();
  const passwordHint = usePasswordHint();
  useEffect(() => {
    document.title = 'Welcome · Usher';
  }, []);

  const submit = (e: Event) => {
    e.preventDefault();
    void action.run(async () => {
      const made = await call(api.POST('/api/v1/auth/setup', { body: { username, password } }));
      setApiKey(made.apiKey);
    });
  };

  if (apiKey) {
    return (
      <main class="narrow">
        <PageHeading>Your admin account is ready</PageHeading>
        <section class="card">
          <p>
            This is <strong>{username}</strong>'s API key. It is shown this once here: copy it now if a script or an app needs it. You can see
            or replace it later under My account.
          </p>
          <Secret label="API key" value={apiKey} />
          <p>
            <a class="button primary" href={href('/login')}>
              Continue to sign in
            </a>
          </p>
        </section>
      </main>
    );
  }
  return (
    <main class="narrow">
      <PageHeading>Welcome to Usher</PageHeading>
      <form class="card" onSubmit={submit} aria-label="Create the first admin">
        <p>No account exists yet. Create the first admin: the account that manages everyone else's.</p>
        <Field label="Username" value={username} onValue={setUsername} autoComplete="username" required autoFocus />
        <Field label="Password" type="password" value={password} onValue={setPassword} autoComplete="new-password" required hint={passwordHint} />
        <Outcome problem={action.problem} />
        <Button type="submit" class="primary" busy={action.busy} busyLabel="Creating…">
          Create admin
        </Button>
      </form>
    </main>
  );
}
