import { useEffect, useId, useRef, useState } from 'preact/hooks';
import { api, call, type Problem, type User } from '../api';
import type { paths } from '../api-types';
import { Button, Card, Field, Outcome, Secret, useAction } from '../ui';
import { PermissionChecklist, type Permission } from './roles';

export type ScopedKey = paths['/api/v1/auth/me/api-keys']['get']['responses'][200]['content']['application/json'][number];

const when = (iso: string | null) => (iso ? new Date(iso).toLocaleString() : 'never');
const expired = (k: ScopedKey) => k.expiresAt !== null && Date.parse(k.expiresAt) <= Date.now();

/** The keys, each with Revoke, which asks first. Shared by My account and the user drawer. */
export function KeyList({ keys, busy, onRevoke }: { keys: ScopedKey[]; busy: boolean; onRevoke: (k: ScopedKey) => Promise<unknown> }) {
  const [asking, setAsking] = useState<number | null>(null);
  const list = useRef<HTMLUListElement>(null);
  const asked = useRef<number | null>(null);
  // Keyboard users keep their place: the question takes the focus on its safe answer, and gives it back to Revoke.
  useEffect(() => {
    if (asking !== null) list.current?.querySelector<HTMLElement>('[data-keep]')?.focus();
    else if (asked.current !== null) list.current?.querySelector<HTMLElement>(`[data-revoke="${asked.current}"]`)?.focus();
    asked.current = asking;
  }, [asking]);
  if (keys.length === 0) return <p>No scoped keys.</p>;
  return (
    <ul class="list keys" ref={list}>
      {keys.map((k) => (
        <li key={k.id}>
          <div>
            <strong>{k.name}</strong>
            {expired(k) && <span class="tag warn">expired</span>}
            <div class="hint">
              <span class="mono">{k.prefix}…</span> · {k.permissions.join(', ')}
            </div>
            <div class="hint">
              Created {when(k.createdAt)} · last used {when(k.lastUsedAt)} · {k.expiresAt ? `${expired(k) ? 'expired' : 'expires'} ${when(k.expiresAt)}` : 'expires never'}
            </div>
          </div>
          {asking === k.id ? (
            <div class="actions">
              <span>Apps using it are refused from their next request.</span>
              <Button class="danger" busy={busy} busyLabel="Revoking…" onClick={() => void onRevoke(k).then(() => setAsking(null))}>
                Yes, revoke {k.name}
              </Button>
              <button type="button" data-keep onClick={() => setAsking(null)}>
                Keep it
              </button>
            </div>
          ) : (
            <button type="button" class="danger" data-revoke={k.id} disabled={busy} aria-label={`Revoke ${k.name}…`} onClick={() => setAsking(k.id)}>
              Revoke…
            </button>
          )}
        </li>
      ))}
    </ul>
  );
}

const EXPIRY: [string, string][] = [
  ['never', 'Never'],
  ['30', '30 days'],
  ['90', '90 days'],
  ['365', '365 days'],
  ['custom', 'Custom…'],
];

/** Where a refusal is said: beside the name, the permissions or the expiry; else under the form. */
function placeOf(problem: Problem | null): 'name' | 'permissions' | 'expiry' | 'form' | null {
  if (!problem) return null;
  if (problem.code === 'api_key.name_taken') return 'name';
  if (problem.code === 'authz.escalation') return 'permissions';
  if (problem.code === 'request.invalid') {
    const field = /^(?:Check the )?([a-zA-Z]+)/.exec(problem.sentence)?.[1];
    if (field === 'name' || field === 'permissions') return field;
    if (field === 'expiresInDays') return 'expiry';
  }
  return 'form';
}

/** The server names the field and the permission ("permissions.0: you do not hold users.list, ..."): say it plainly. */
function sentenceOf(problem: Problem): Problem {
  const held = /you do not hold (\S+?),/.exec(problem.sentence)?.[1];
  if (problem.code === 'authz.escalation' && held) return { ...problem, sentence: `You do not hold ${held} now, so a key of yours cannot have it. Untick it.` };
  if (problem.code === 'request.invalid') {
    const [, field] = /^(?:Check the )?([a-zA-Z]+)/.exec(problem.sentence) ?? [];
    if (field === 'permissions') return { ...problem, sentence: 'Tick at least one permission: the key may do only what is ticked.' };
    if (field === 'expiresInDays') return { ...problem, sentence: 'The custom expiry must be a whole number of days, from 1 to 3650.' };
  }
  return problem;
}

/** My account's app passwords: make a key with a name, some of your permissions and an expiry; list; revoke. */
export function ScopedKeys({ user }: { user: User }) {
  const [keys, setKeys] = useState<ScopedKey[] | null>(null);
  const [held, setHeld] = useState<Permission[] | null>(null);
  const [name, setName] = useState('');
  const [ticked, setTicked] = useState(new Set<string>());
  const [expiry, setExpiry] = useState('never');
  const [days, setDays] = useState('');
  const [made, setMade] = useState<ScopedKey & { key: string } | null>(null);
  const load = useAction();
  const create = useAction();
  const revoke = useAction();
  const expiryId = useId();
  const load$ = async () => setKeys(await call(api.GET('/api/v1/auth/me/api-keys')));
  useEffect(() => {
    void load.run(async () => {
      setHeld(await call(api.GET('/api/v1/auth/me/permissions')));
      await load$();
    });
  }, [user.id]);
  // Placed by what the server said, then said plainly.
  const place = placeOf(create.problem);
  const problem = create.problem && sentenceOf(create.problem);
  const here = (where: typeof place) => <Outcome problem={place === where ? problem : null} />;
  const submit = () =>
    create.run(async () => {
      const expiresInDays = expiry === 'never' ? null : Number(expiry === 'custom' ? days : expiry);
      const answer = await call(api.POST('/api/v1/auth/me/api-keys', { body: { name: name.trim(), permissions: [...ticked], expiresInDays } }));
      setMade(answer);
      setName('');
      setTicked(new Set());
      await load$();
      return null;
    });
  const revokeOne = (k: ScopedKey) =>
    revoke.run(async () => {
      await call(api.DELETE('/api/v1/auth/me/api-keys/{keyId}', { params: { path: { keyId: String(k.id) } } }));
      if (made?.id === k.id) setMade(null);
      await load$();
      return `${k.name} revoked: it no longer works.`;
    });
  return (
    <Card title="Scoped keys">
      <p>App passwords: a key for one app or script, which may do only what you tick for it (and only while you may). Revoke it when that app no longer needs it.</p>
      {made && (
        <div class="made">
          <Secret label={`Your new key “${made.name}”`} value={made.key} />
          <p role="status">Copy it now and put it in the app: it will not be shown again.</p>
        </div>
      )}
      <Outcome problem={load.problem} />
      {keys === null ? (
        !load.problem && <p role="status">Loading…</p>
      ) : (
        <KeyList keys={keys} busy={revoke.busy} onRevoke={revokeOne} />
      )}
      <Outcome problem={revoke.problem} done={revoke.done} />
      {held && (
        <details class="perm-edit" open={keys?.length === 0 || undefined}>
          <summary>Make a scoped key</summary>
          <form
            onSubmit={(e) => {
              e.preventDefault();
              void submit();
            }}
          >
            <Field label="Key name" value={name} onValue={setName} required hint="What it is for: Music player, Backup script." />
            {here('name')}
            <h3>Permissions</h3>
            <p class="hint">Only the permissions you hold now are listed.</p>
            <PermissionChecklist
              all={held}
              checked={ticked}
              onToggle={(p, on) => {
                const next = new Set(ticked);
                if (on) next.add(p);
                else next.delete(p);
                setTicked(next);
              }}
            />
            {here('permissions')}
            <div class="field">
              <label for={expiryId}>Expires</label>
              <select id={expiryId} value={expiry} onChange={(e) => setExpiry(e.currentTarget.value)}>
                {EXPIRY.map(([v, text]) => (
                  <option key={v} value={v}>
                    {text}
                  </option>
                ))}
              </select>
              {expiry === 'custom' && (
                <div class="field">
                  <label for={`${expiryId}-n`}>Days until it expires</label>
                  <input id={`${expiryId}-n`} type="number" inputMode="numeric" value={days} required onInput={(e) => setDays(e.currentTarget.value)} />
                </div>
              )}
            </div>
            {here('expiry')}
            {here('form')}
            <Button type="submit" class="primary" busy={create.busy} busyLabel="Making…">
              Make key
            </Button>
          </form>
        </details>
      )}
    </Card>
  );
}
