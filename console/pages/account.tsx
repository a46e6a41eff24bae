import { useEffect, useState } from 'preact/hooks';
import { api, call, href, type User } from '../api';
import { deviceName } from '../device';
import { Button, Card, Field, Outcome, PageHeading, Secret, useAction, usePasswordHint } from '../ui';
import { ScopedKeys } from './scoped-keys';

type Session = { id: string; kind: 'browser' | 'app'; name: string | null; lastSeenAt: string; ip: string | null; userAgent: string | null; current: boolean };

const when = (iso: string | null) => (iso ? new Date(iso).toLocaleString() : 'never');

function Profile({ user, onUser }: { user: User; onUser: (u: User) => void }) {
  const [name, setName] = useState(user.name ?? '');
  const [email, setEmail] = useState(user.email ?? '');
  const action = useAction();
  return (
    <Card title="Profile">
      <p>
        Username: <strong>{user.username}</strong> · role {user.role}
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => {
            onUser(await call(api.PATCH('/api/v1/auth/me', { body: { name, email } })));
            return 'Profile saved.';
          });
        }}
      >
        <Field label="Name" value={name} onValue={setName} autoComplete="name" />
        <Field label="Email" type="email" value={email} onValue={setEmail} autoComplete="email" />
        <Outcome problem={action.problem} done={action.done} />
        <Button type="submit" busy={action.busy} busyLabel="Saving…">
          Save profile
        </Button>
      </form>
    </Card>
  );
}

function Password({ user }: { user: User }) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const action = useAction();
  const passwordHint = usePasswordHint();
  if (!user.passwordLogin) return null;
  return (
    <Card title="Password">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => {
            await call(api.PATCH('/api/v1/auth/me', { body: { password: next, ...(user.hasPassword ? { currentPassword: current } : {}) } }));
            setCurrent('');
            setNext('');
            return 'Password changed. Your other devices are signed out.';
          });
        }}
      >
        {user.hasPassword && <Field label="Current password" type="password" value={current} onValue={setCurrent} autoComplete="current-password" required />}
        <Field label="New password" type="password" value={next} onValue={setNext} autoComplete="new-password" required hint={passwordHint} />
        <Outcome problem={action.problem} done={action.done} />
        <Button type="submit" busy={action.busy} busyLabel="Changing…">
          Change password
        </Button>
      </form>
    </Card>
  );
}

function ApiKey() {
  const [key, setKey] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  const action = useAction();
  const show = () =>
    action.run(async () => {
      setKey((await call(api.GET('/api/v1/auth/me/api-key'))).apiKey);
    });
  const replace = () =>
    action.run(async () => {
      setKey((await call(api.POST('/api/v1/auth/me/api-key'))).apiKey);
      setConfirming(false);
      return 'A new key replaced the old one: scripts using the old key must be given this one.';
    });
  return (
    <Card title="API key">
      <p>Scripts and apps use this key to act as you (header X-Api-Key).</p>
      {key && <Secret label="Your API key" value={key} />}
      <div class="actions">
        {!key && (
          <Button onClick={show} busy={action.busy && !confirming} busyLabel="Loading…">
            Show key
          </Button>
        )}
        {confirming ? (
          <>
            <span>The old key stops working at once.</span>
            <Button class="danger" onClick={replace} busy={action.busy} busyLabel="Replacing…">
              Yes, replace it
            </Button>
            <Button onClick={() => setConfirming(false)}>Keep the old key</Button>
          </>
        ) : (
          <Button onClick={() => setConfirming(true)}>Replace key…</Button>
        )}
      </div>
      <Outcome problem={action.problem} done={action.done} />
    </Card>
  );
}

function RecoveryCode() {
  const [state, setState] = useState<{ set: boolean; createdAt: string | null } | null>(null);
  const [code, setCode] = useState<string | null>(null);
  const action = useAction();
  const load = () =>
    action.run(async () => {
      setState(await call(api.GET('/api/v1/auth/me/recovery-code')));
    });
  useEffect(() => {
    void load();
  }, []);
  const mint = () =>
    action.run(async () => {
      const made = await call(api.POST('/api/v1/auth/me/recovery-code'));
      setCode(made.code);
      setState({ set: true, createdAt: made.createdAt });
      return 'Write this code down or keep it in a password manager: it is shown this once.';
    });
  const remove = () =>
    action.run(async () => {
      await call(api.DELETE('/api/v1/auth/me/recovery-code'));
      setCode(null);
      setState({ set: false, createdAt: null });
      return 'Recovery code removed.';
    });
  return (
    <Card title="Recovery code">
      <p>A code of your own to sign a device back in without a password or a new invite. It never expires; keep it somewhere safe.</p>
      {state && <p>{state.set ? `You have a recovery code, made ${when(state.createdAt)}.` : 'You have no recovery code.'}</p>}
      {code && <Secret label="Your recovery code" value={code} />}
      <div class="actions">
        <Button onClick={mint} busy={action.busy} busyLabel="Working…" disabled={!state}>
          {state?.set ? 'Replace recovery code' : 'Make a recovery code'}
        </Button>
        {state?.set && (
          <Button class="danger" onClick={remove} disabled={action.busy}>
            Remove recovery code
          </Button>
        )}
      </div>
      <Outcome problem={action.problem} done={action.done} />
    </Card>
  );
}

function Sessions() {
  const [sessions, setSessions] = useState<Session[] | null>(null);
  const action = useAction();
  const load = async () => setSessions((await call(api.GET('/api/v1/auth/me/sessions'))) as Session[]);
  useEffect(() => {
    void action.run(load);
  }, []);
  const end = (s: Session) =>
    action.run(async () => {
      if (s.current) {
        await call(api.POST('/api/v1/auth/logout'));
        location.assign(href('/login'));
        return 'Signed out.';
      }
      await call(api.DELETE('/api/v1/auth/me/sessions/{sessionId}', { params: { path: { sessionId: s.id } } }));
      await load();
      return `${s.name ?? (s.kind === 'app' ? 'App' : 'Browser')} signed out.`;
    });
  return (
    <Card title="Sessions and devices">
      {sessions === null ? (
        <p role="status">Loading…</p>
      ) : (
        <ul class="list">
          {sessions.map((s) => (
            <li key={s.id}>
              <div>
                <strong>{s.name ?? (s.kind === 'app' ? 'App' : 'Browser')}</strong>
                {s.current && <span class="tag">this device</span>}
                <div class="hint">
                  Last used {when(s.lastSeenAt)}
                  {s.ip ? ` from ${s.ip}` : ''}
                  {s.userAgent ? ` · ${deviceName(s.userAgent)}` : ''}
                </div>
              </div>
              <Button onClick={() => end(s)} disabled={action.busy} aria-label={s.current ? undefined : `Sign out ${s.name ?? (s.kind === 'app' ? 'App' : 'Browser')}`}>
                {s.current ? 'Sign out this device' : 'Sign out'}
              </Button>
            </li>
          ))}
        </ul>
      )}
      <Outcome problem={action.problem} done={action.done} />
    </Card>
  );
}

export function AccountPage({ user, onUser }: { user: User; onUser: (u: User) => void }) {
  useEffect(() => {
    document.title = 'My account · Usher';
  }, []);
  return (
    <>
      <PageHeading>My account</PageHeading>
      <Profile user={user} onUser={onUser} />
      <Password user={user} />
      <ApiKey />
      <ScopedKeys user={user} />
      <RecoveryCode />
      <Sessions />
    </>
  );
}
