import { useEffect, useId, useState } from 'preact/hooks';
import { api, call, type User } from '../api';
import type { components } from '../api-types';
import { deviceName } from '../device';
import { Button, Card, Dialog, Field, Outcome, Secret, useAction } from '../ui';
import { PermissionChecklist, type Permission } from './roles';
import { DrawerKeys } from './drawer-keys';
import { OrgBlock } from './drawer-org';
import { AccessBlock } from './drawer-access';
import type { Org } from '../orgs';

type Invite = components['schemas']['Invite'];
const when = (iso: string | null) => (iso ? new Date(iso).toLocaleString() : 'never');
const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;

/** A select with a "custom" choice that shows a number box; answers the number, null for unlimited/never. */
function Choice(props: { label: string; options: [string, string][]; value: string; onValue: (v: string) => void; custom: string; onCustom: (v: string) => void; unit: string }) {
  const id = useId();
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      <select id={id} value={props.value} onChange={(e) => props.onValue(e.currentTarget.value)}>
        {props.options.map(([v, text]) => (
          <option key={v} value={v}>
            {text}
          </option>
        ))}
      </select>
      {props.value === 'custom' && (
        <div class="field">
          <label for={`${id}-n`}>{`Custom ${props.unit}`}</label>
          <input id={`${id}-n`} type="number" min={1} value={props.custom} onInput={(e) => props.onCustom(e.currentTarget.value)} />
        </div>
      )}
    </div>
  );
}

const pick = (value: string, custom: string): number | null => (value === 'never' || value === 'unlimited' ? null : Number(value === 'custom' ? custom : value));

function inviteSummary(i: Invite): string {
  const uses = i.usesLeft === null ? 'unlimited uses' : `${plural(i.usesLeft, 'use')} left`;
  const expiry = i.expiresAt ? `expires ${when(i.expiresAt)}` : 'never expires';
  return `${i.state === 'pending' ? 'Active' : i.state.replace('_', ' ')} · ${uses} · ${expiry}`;
}

function Invites({ userId }: { userId: number }) {
  const [invites, setInvites] = useState<{ active: Invite | null; history: Invite[] } | null>(null);
  const [made, setMade] = useState<{ code: string; link: string } | null>(null);
  const [uses, setUses] = useState('5');
  const [customUses, setCustomUses] = useState('10');
  const [expires, setExpires] = useState('1');
  const [customDays, setCustomDays] = useState('14');
  const action = useAction();
  const path = { path: { id: String(userId) } };
  const load = async () => setInvites(await call(api.GET('/api/v1/auth/users/{id}/invites', { params: path })));
  useEffect(() => {
    void action.run(load);
  }, [userId]);
  const active = invites?.active;
  const create = () =>
    action.run(async () => {
      const answer = await call(api.POST('/api/v1/auth/users/{id}/invites', { params: path, body: { uses: pick(uses, customUses), expiresInDays: pick(expires, customDays) } }));
      setMade({ code: answer.code, link: answer.link });
      await load();
      return 'Invite created. Send the link or the code: they are shown this once.';
    });
  const resend = (i: Invite) =>
    action.run(async () => {
      const answer = await call(api.POST('/api/v1/auth/users/{id}/invites/{inviteId}/resend', { params: { path: { id: String(userId), inviteId: String(i.id) } } }));
      setMade({ code: answer.code, link: answer.link });
      await load();
      return 'A new link and code replace the old ones, which stop working now.';
    });
  const revoke = (i: Invite) =>
    action.run(async () => {
      await call(api.DELETE('/api/v1/auth/users/{id}/invites/{inviteId}', { params: { path: { id: String(userId), inviteId: String(i.id) } } }));
      setMade(null);
      await load();
      return 'Invite revoked.';
    });
  return (
    <Card title="Invites">
      {invites === null ? (
        <p role="status">Loading…</p>
      ) : active ? (
        <div class="actions invite">
          <span>{inviteSummary(active)}</span>
          <Button onClick={() => resend(active)} disabled={action.busy}>
            Resend
          </Button>
          <Button class="danger" onClick={() => revoke(active)} disabled={action.busy}>
            Revoke
          </Button>
        </div>
      ) : (
        <p>No active invite.</p>
      )}
      {made && (
        <>
          <Secret label="Invite link" value={made.link} copyLabel="Copy link" />
          <Secret label="Auth code" value={made.code} copyLabel="Copy code" />
        </>
      )}
      <Outcome problem={action.problem} done={action.done} />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void create();
        }}
      >
        <div class="pair">
          <Choice label="Uses" value={uses} onValue={setUses} custom={customUses} onCustom={setCustomUses} unit="uses" options={[['1', '1 use'], ['5', '5 uses'], ['unlimited', 'Unlimited'], ['custom', 'Custom…']]} />
          <Choice label="Expires" value={expires} onValue={setExpires} custom={customDays} onCustom={setCustomDays} unit="days" options={[['1', '1 day'], ['7', '7 days'], ['30', '30 days'], ['never', 'Never'], ['custom', 'Custom…']]} />
        </div>
        <Button type="submit" busy={action.busy} busyLabel="Working…">
          {active ? 'New invite' : 'Create invite'}
        </Button>
      </form>
      {invites && invites.history.length > 0 && (
        <>
          <h3>History</h3>
          <ul class="list">
            {invites.history.map((i) => (
                <li key={i.id}>
                  <span>
                    {i.state.replace('_', ' ')} · created {when(i.createdAt)} · {plural(i.redemptions.count, 'device')} signed in
                  </span>
                </li>
              ))}
          </ul>
        </>
      )}
    </Card>
  );
}

function Account({ user, onUser }: { user: User; onUser: (u: User) => void }) {
  const roleAction = useAction();
  const statusAction = useAction();
  const passwordAction = useAction();
  const codeAction = useAction();
  const [password, setPassword] = useState('');
  const roleId = useId();
  const [roles, setRoles] = useState(['user', 'admin']);
  useEffect(() => {
    api.GET('/api/v1/auth/roles').then(
      ({ data, response }) => response.ok && data && setRoles(data.map((r) => r.name)),
      () => undefined,
    );
  }, []);
  const path = { path: { id: String(user.id) } };
  const setRole = async (select: HTMLSelectElement) => {
    const role = select.value;
    let saved = false;
    await roleAction.run(async () => {
      onUser(await call(api.PATCH('/api/v1/auth/users/{id}', { params: path, body: { role } })));
      saved = true;
      return `Role changed to ${role}.`;
    });
    // Refused: the select goes back to the saved role, with the reason beside it.
    if (!saved) select.value = user.role;
  };
  const setActive = (active: boolean) =>
    statusAction.run(async () => {
      onUser(await call(api.POST('/api/v1/auth/users/{id}/status', { params: path, body: { active } })));
      return active ? 'Enabled.' : 'Disabled: their devices are signed out.';
    });
  const savePassword = (value: string | null) =>
    passwordAction.run(async () => {
      onUser(await call(api.PATCH('/api/v1/auth/users/{id}', { params: path, body: { password: value } })));
      setPassword('');
      return value === null ? 'Password cleared: the account is invite-only again.' : 'Password saved.';
    });
  const revokeCode = () =>
    codeAction.run(async () => {
      await call(api.DELETE('/api/v1/auth/users/{id}/recovery-code', { params: path }));
      onUser({ ...user, recoveryCode: 'none' });
      return 'Recovery code revoked.';
    });
  return (
    <Card title="Account">
      <div class="field">
        <label for={roleId}>Role</label>
        <select id={roleId} value={user.role} aria-describedby={`${roleId}-outcome`} onChange={(e) => void setRole(e.currentTarget)}>
          {(roles.includes(user.role) ? roles : [...roles, user.role]).map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
        <div id={`${roleId}-outcome`}>
          <Outcome problem={roleAction.problem} done={roleAction.done} />
        </div>
      </div>
      <div class="actions">
        <span>Status: {user.active ? 'enabled' : 'disabled'}</span>
        <Button onClick={() => setActive(!user.active)} busy={statusAction.busy}>
          {user.active ? 'Disable' : 'Enable'}
        </Button>
      </div>
      <Outcome problem={statusAction.problem} done={statusAction.done} />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void savePassword(password);
        }}
      >
        <p>Password: {user.hasPassword ? 'set' : 'none (invite-only)'}</p>
        <Field label={user.hasPassword ? 'New password' : 'Password'} type="password" value={password} onValue={setPassword} autoComplete="new-password" />
        <div class="actions">
          <Button type="submit" busy={passwordAction.busy} disabled={!password}>
            {user.hasPassword ? 'Change password' : 'Set password'}
          </Button>
          {user.hasPassword && user.role !== 'admin' && (
            <Button class="danger" onClick={() => savePassword(null)} disabled={passwordAction.busy}>
              Clear password
            </Button>
          )}
        </div>
        <Outcome problem={passwordAction.problem} done={passwordAction.done} />
      </form>
      <div class="actions">
        <span>Recovery code: {user.recoveryCode}</span>
        {user.recoveryCode === 'set' && (
          <Button class="danger" onClick={revokeCode} busy={codeAction.busy}>
            Revoke
          </Button>
        )}
      </div>
      <Outcome problem={codeAction.problem} done={codeAction.done} />
      <p>Last active: {when(user.lastActiveAt)}</p>
    </Card>
  );
}

type Session = components['schemas']['Session'];
type UserPermissions = components['schemas']['UserPermissions'];

const METHODS: Record<string, string> = { password: 'signed in with a password', code: 'signed in with an invite or recovery code' };

/** The user's browsers and apps, each with End, and End all. */
function Sessions({ user }: { user: User }) {
  const [sessions, setSessions] = useState<Session[] | null>(null);
  const action = useAction();
  const path = { path: { id: String(user.id) } };
  const load = async () => setSessions(await call(api.GET('/api/v1/auth/users/{id}/sessions', { params: path })));
  useEffect(() => {
    void action.run(load);
  }, [user.id]);
  const label = (s: Session) => s.name ?? (s.userAgent ? deviceName(s.userAgent) : s.kind === 'app' ? 'App' : 'Browser');
  const endOne = (s: Session) =>
    action.run(async () => {
      await call(api.DELETE('/api/v1/auth/users/{id}/sessions/{sessionId}', { params: { path: { id: String(user.id), sessionId: s.id } } }));
      await load();
      return `${label(s)} is signed out.`;
    });
  const endAll = () =>
    action.run(async () => {
      await call(api.DELETE('/api/v1/auth/users/{id}/sessions', { params: path }));
      await load();
      return `Every browser and app ${user.username} was signed in on is signed out.`;
    });
  return (
    <Card title="Sessions">
      {sessions === null ? (
        !action.problem && <p role="status">Loading…</p>
      ) : sessions.length === 0 ? (
        <p>Not signed in anywhere.</p>
      ) : (
        <ul class="list">
          {sessions.map((s) => (
            <li key={s.id}>
              <div>
                <strong>{label(s)}</strong>
                {s.current && <span class="tag">your request</span>}
                <div class="hint">
                  {s.kind === 'app' ? 'App' : 'Browser'}, {METHODS[s.method] ?? (s.method.startsWith('oidc:') ? `signed in through ${s.method.slice(5)}` : `signed in by ${s.method}`)} · last used {when(s.lastSeenAt)}
                  {s.ip ? ` from ${s.ip}` : ''}
                </div>
              </div>
              <Button onClick={() => endOne(s)} disabled={action.busy} aria-label={`End ${label(s)}, last used ${when(s.lastSeenAt)}`}>
                End
              </Button>
            </li>
          ))}
        </ul>
      )}
      <div class="actions">
        <Button onClick={endAll} busy={action.busy} busyLabel="Signing out…" disabled={sessions?.length === 0}>
          End all sessions
        </Button>
      </div>
      <Outcome problem={action.problem} done={action.done} />
    </Card>
  );
}

/** What the user may do: their role's permissions (fixed here) and those granted to them alone. */
function Permissions({ user }: { user: User }) {
  const [held, setHeld] = useState<UserPermissions | null>(null);
  const [all, setAll] = useState<Permission[] | null>(null);
  const [direct, setDirect] = useState(new Set<string>());
  const load = useAction();
  const save = useAction();
  const outcomeId = useId();
  const path = { path: { id: String(user.id) } };
  useEffect(() => {
    void load.run(async () => {
      const [mine, list] = await Promise.all([call(api.GET('/api/v1/auth/users/{id}/permissions', { params: path })), call(api.GET('/api/v1/auth/permissions'))]);
      setHeld(mine);
      setDirect(new Set(mine.direct));
      setAll(list);
    });
  }, [user.id, user.role]);
  const grant = held ? [...direct].filter((p) => !held.direct.includes(p)) : [];
  const revoke = held ? held.direct.filter((p) => !direct.has(p)) : [];
  const submit = () =>
    save.run(async () => {
      const answer = await call(api.PATCH('/api/v1/auth/users/{id}/permissions', { params: path, body: { grant, revoke } }));
      setHeld(answer);
      setDirect(new Set(answer.direct));
      const parts = [grant.length ? `granted ${grant.join(', ')}` : '', revoke.length ? `revoked ${revoke.join(', ')}` : ''].filter(Boolean);
      return `Saved: ${parts.join('; ')}.`;
    });
  return (
    <Card title="Permissions">
      {held === null || all === null ? (
        load.problem ? <Outcome problem={load.problem} /> : <p role="status">Loading…</p>
      ) : (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void submit();
          }}
        >
          <p>
            From the role {held.role}: {held.inherited.length} permissions (ticked and fixed below). Tick more to grant them to {user.username} alone; untick a direct one to revoke it.
          </p>
          <p class="hint">Direct: {held.direct.length ? held.direct.join(', ') : 'none'}.</p>
          <details class="perm-edit">
            <summary>Grant or revoke permissions</summary>
            <PermissionChecklist
              all={all}
              checked={direct}
              locked={new Set(held.inherited)}
              describedBy={outcomeId}
              onToggle={(name, on) => {
                const next = new Set(direct);
                if (on) next.add(name);
                else next.delete(name);
                setDirect(next);
              }}
            />
            <div class="actions">
              <Button type="submit" class="primary" busy={save.busy} busyLabel="Saving…" disabled={grant.length + revoke.length === 0}>
                Save permissions
              </Button>
            </div>
          </details>
          <div id={outcomeId}>
            <Outcome problem={save.problem} done={save.done} />
          </div>
        </form>
      )}
    </Card>
  );
}

function DangerZone({ user, self, onDeleted }: { user: User; self: boolean; onDeleted: () => void }) {
  const [confirming, setConfirming] = useState(false);
  const action = useAction();
  const remove = () =>
    action.run(async () => {
      await call(api.DELETE('/api/v1/auth/users/{id}', { params: { path: { id: String(user.id) } } }));
      onDeleted();
    });
  return (
    <Card title="Danger zone">
      {self ? (
        <p>This is your own account: it cannot be deleted from here. To stop it signing in, use Disable under Account (another admin can enable it again).</p>
      ) : confirming ? (
        <>
          <p>
            Delete {user.username}? The account is removed with its password, API key and recovery code, its invites stop working, and every device it signed in on is signed
            out. This cannot be undone; Disable under Account keeps everything instead.
          </p>
          <div class="actions">
            <Button class="danger" onClick={remove} busy={action.busy} busyLabel="Deleting…">
              Yes, delete {user.username}
            </Button>
            <Button onClick={() => setConfirming(false)}>Keep the account</Button>
          </div>
        </>
      ) : (
        <Button class="danger" onClick={() => setConfirming(true)}>
          Delete user…
        </Button>
      )}
      <Outcome problem={action.problem} />
    </Card>
  );
}

/** A user's drawer: Account, Permissions, Invites, Sessions, Danger zone. Changes show in the list when it closes. */
export function UserDrawer({ id, me, orgs, onClose, onDeleted }: { id: number; me: User; orgs: Org[]; onClose: () => void; onDeleted: (username: string) => void }) {
  const meId = me.id;
  const [user, setUser] = useState<User | null>(null);
  const load = useAction();
  useEffect(() => {
    void load.run(async () => setUser(await call(api.GET('/api/v1/auth/users/{id}', { params: { path: { id: String(id) } } }))));
  }, [id]);
  return (
    <Dialog title={user ? (user.name ?? user.username) : 'User'} onClose={onClose} class="drawer">
      <Button class="close" onClick={onClose} aria-label="Close">
        ×
      </Button>
      <Outcome problem={load.problem} />
      {user && (
        <>
          <Account user={user} onUser={setUser} />
          <OrgBlock user={user} me={me} orgs={orgs} onUser={setUser} />
          <AccessBlock user={user} />
          <Permissions user={user} />
          <Invites userId={user.id} />
          <Sessions user={user} />
          <DrawerKeys userId={user.id} />
          <DangerZone user={user} self={user.id === meId} onDeleted={() => onDeleted(user.username)} />
        </>
      )}
    </Dialog>
  );
}
