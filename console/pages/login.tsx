import { useEffect, useState } from 'preact/hooks';
import { api, call, href, problemOf, type Problem } from '../api';
import { navigate } from '../router';
import { Button, Field, Outcome, PageHeading, useAction } from '../ui';

type Provider = { id: string; name: string; loginUrl: string };

/** Where to go once signed in: `rd` when the server says it is safe (forward auth), else the console page asked for. */
async function destination(): Promise<{ external: string } | { page: string }> {
  const params = new URLSearchParams(location.search);
  const rd = params.get('rd');
  if (rd) {
    const config = await call(api.GET('/api/v1/auth/console-config', { params: { query: { rd } } }));
    if (config.returnTo) return { external: config.returnTo };
  }
  const next = params.get('next');
  // Only a console page: '/account', never '//elsewhere'.
  return { page: next && /^\/[a-z-]*$/.test(next) ? next : '/' };
}

async function goOn() {
  const to = await destination();
  if ('external' in to) location.assign(to.external);
  else navigate(to.page, true);
}

export function LoginPage() {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [providers, setProviders] = useState<Provider[]>([]);
  const [oidcBusy, setOidcBusy] = useState<string | null>(null);
  const [oidcProblem, setOidcProblem] = useState<Problem | null>(null);
  const action = useAction();

  useEffect(() => {
    document.title = 'Sign in · Usher';
    (async () => {
      // Already signed in (back from an identity provider, or forward auth sending a signed-in browser): go on.
      const me = await api.GET('/api/v1/auth/me');
      if (me.response.ok) return goOn();
      setProviders(await call(api.GET('/api/v1/auth/providers')));
    })().catch((problem: Problem) => action.setProblem(problem));
  }, []);

  const submit = (e: Event) => {
    e.preventDefault();
    void action.run(async () => {
      await call(api.POST('/api/v1/auth/login', { body: { username, password } }));
      await goOn();
      return 'Signed in.';
    });
  };

  /**
   * The provider's start answers a redirect, or a JSON refusal (provider down, too many starts) that a plain
   * navigation would show raw: ask first without following, then navigate.
   */
  async function startOidc(p: Provider) {
    setOidcBusy(p.id);
    setOidcProblem(null);
    const returnTo = href(`/login${location.search}`);
    const url = `${p.loginUrl}?returnTo=${encodeURIComponent(returnTo)}`;
    try {
      const res = await fetch(url, { redirect: 'manual', credentials: 'same-origin' });
      if (res.type === 'opaqueredirect') {
        location.assign(url);
        return;
      }
      setOidcProblem(problemOf(await res.json().catch(() => undefined), res));
    } catch {
      setOidcProblem(problemOf(undefined, undefined));
    }
    setOidcBusy(null);
  }

  return (
    <main class="narrow">
      <PageHeading>Sign in</PageHeading>
      <form onSubmit={submit} class="card" aria-label="Sign in with a password">
        <Field label="Username" value={username} onValue={setUsername} autoComplete="username" required autoFocus />
        <Field label="Password" type="password" value={password} onValue={setPassword} autoComplete="current-password" required />
        <Outcome problem={action.problem} done={action.done} />
        <Button type="submit" class="primary" busy={action.busy} busyLabel="Signing in…">
          Sign in
        </Button>
      </form>
      {providers.length > 0 && (
        <section class="card" aria-label="Other ways to sign in">
          {providers.map((p) => (
            <Button key={p.id} onClick={() => startOidc(p)} busy={oidcBusy === p.id} busyLabel={`Opening ${p.name}…`} disabled={oidcBusy !== null}>
              Sign in with {p.name}
            </Button>
          ))}
          <Outcome problem={oidcProblem} />
        </section>
      )}
      <p class="center">
        <a href={href('/connect')} data-nav="/connect">
          I have a code
        </a>
      </p>
    </main>
  );
}
