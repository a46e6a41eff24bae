// First: the code in an invite link's fragment leaves the address bar before anything else runs.
import './fragment';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, call, type Problem, type User } from './api';
import { navigate, route } from './router';
import { useSignal } from './signal';
import { Outcome } from './ui';
import { ConnectPage } from './pages/connect';
import { LoginPage } from './pages/login';
import { FirstRunPage } from './pages/first-run';
import { Shell } from './pages/shell';
import './style.css';

type Start = { kind: 'loading' } | { kind: 'setup' } | { kind: 'signed-out' } | { kind: 'signed-in'; user: User } | { kind: 'problem'; problem: Problem };

/** Pages that need to know who is there: setup while there is no user, else the signed-in console. */
function Console({ path }: { path: string }) {
  const [start, setStart] = useState<Start>({ kind: 'loading' });
  useEffect(() => {
    (async () => {
      const status = await call(api.GET('/api/v1/auth/status'));
      if (status.setupRequired) return setStart({ kind: 'setup' });
      const me = await api.GET('/api/v1/auth/me');
      if (me.response.status === 401) return setStart({ kind: 'signed-out' });
      setStart({ kind: 'signed-in', user: await call(Promise.resolve(me)) });
    })().catch((problem: Problem) => setStart({ kind: 'problem', problem }));
  }, []);
  useEffect(() => {
    if (start.kind === 'signed-out') navigate(`/login?next=${encodeURIComponent(path)}`, true);
  }, [start.kind]);
  if (start.kind === 'loading') return <p class="loading" role="status">Loading…</p>;
  if (start.kind === 'problem') return <Outcome problem={start.problem} />;
  if (start.kind === 'setup') return <FirstRunPage />;
  if (start.kind === 'signed-out') return null;
  return <Shell user={start.user} path={path} onUser={(user) => setStart({ kind: 'signed-in', user })} />;
}

function App() {
  const path = useSignal(route);
  const page = path.split('?')[0];
  useEffect(() => {
    // A link inside the console moves without reloading; links out (the API's OIDC start) load as usual.
    const onClick = (e: MouseEvent) => {
      const a = (e.target as Element).closest?.('a[data-nav]');
      if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      navigate(a.getAttribute('data-nav')!);
    };
    document.addEventListener('click', onClick);
    return () => document.removeEventListener('click', onClick);
  }, []);
  if (page === '/connect') return <ConnectPage />;
  if (page === '/login') return <LoginPage />;
  return <Console path={page} />;
}

render(<App />, document.getElementById('app')!);
