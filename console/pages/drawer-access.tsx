import { useEffect, useId, useState } from 'preact/hooks';
import { api, call, type User } from '../api';
import type { components } from '../api-types';
import { readResourceTypes, type ResourceType } from '../orgs';
import { Button, Card, Field, Outcome, useAction } from '../ui';

type Grant = components['schemas']['Grant'];
const what = (g: Grant) => `${g.type} ${g.resourceId === '*' ? '(every one)' : g.resourceId}`;

/** The drawer's Access block (seed 004): the user's grants, each with Revoke, and a Grant control. Hidden when the host declares no resource type. */
export function AccessBlock({ user }: { user: User }) {
  const [types, setTypes] = useState<ResourceType[] | null>(null);
  const [grants, setGrants] = useState<Grant[] | null>(null);
  const [type, setType] = useState('');
  const [id, setId] = useState('');
  const [actions, setActions] = useState(new Set<string>());
  const list = useAction();
  const give = useAction();
  const typeId = useId();
  const path = { path: { id: String(user.id) } };
  const load = async () => setGrants(await call(api.GET('/api/v1/auth/users/{id}/grants', { params: path })));
  const pickType = (t: ResourceType | undefined) => {
    setType(t?.type ?? '');
    setActions(new Set(t ? [t.actions.includes('read') ? 'read' : t.actions[0]] : []));
  };
  useEffect(() => {
    void readResourceTypes().then((all) => {
      setTypes(all);
      pickType(all[0]);
    });
    if (user.role !== 'admin') void list.run(load);
  }, [user.id, user.role]);
  if (!types || types.length === 0) return null;
  if (user.role === 'admin')
    return (
      <Card title="Access">
        <p>Admins see everything: every resource of every type, without grants.</p>
      </Card>
    );
  const declared = types.find((t) => t.type === type);
  const revoke = (g: Grant) =>
    list.run(async () => {
      await call(api.DELETE('/api/v1/auth/users/{id}/grants/{grantId}', { params: { path: { id: String(user.id), grantId: String(g.id) } } }));
      await load();
      return `Revoked ${what(g)}.`;
    });
  const grant = () =>
    give.run(async () => {
      const made = await call(api.POST('/api/v1/auth/users/{id}/grants', { params: path, body: { type, id: id.trim(), actions: [...actions] } }));
      setId('');
      await load();
      return `Granted ${what(made)}: ${made.actions.join(', ')}.`;
    });
  return (
    <Card title="Access">
      {grants === null ? (
        list.problem ? null : <p role="status">Loading…</p>
      ) : grants.length === 0 ? (
        <p>No access yet: {user.username} sees nothing until granted.</p>
      ) : (
        <ul class="list">
          {grants.map((g) => (
            <li key={g.id}>
              <span>
                <strong>{what(g)}</strong> · {g.actions.join(', ')}
                {g.source !== 'api' && <span class="hint"> ({g.source})</span>}
              </span>
              <Button class="danger" onClick={() => revoke(g)} disabled={list.busy} aria-label={`Revoke ${what(g)}`}>
                Revoke
              </Button>
            </li>
          ))}
        </ul>
      )}
      <Outcome problem={list.problem} done={list.done} />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void grant();
        }}
      >
        <h3>Grant access</h3>
        <div class="pair">
          <div class="field">
            <label for={typeId}>Type</label>
            <select id={typeId} value={type} onChange={(e) => pickType(types.find((t) => t.type === e.currentTarget.value))}>
              {types.map((t) => (
                <option key={t.type} value={t.type}>
                  {t.type}
                </option>
              ))}
            </select>
          </div>
          <Field label="Resource id" value={id} onValue={setId} hint="* for every one." autoComplete="off" required />
        </div>
        {declared && declared.actions.length > 1 && (
          <fieldset class="checks">
            <legend>Actions</legend>
            {declared.actions.map((a) => (
              <label key={a}>
                <input
                  type="checkbox"
                  checked={actions.has(a)}
                  onChange={(e) => {
                    const next = new Set(actions);
                    if (e.currentTarget.checked) next.add(a);
                    else next.delete(a);
                    setActions(next);
                  }}
                />{' '}
                {a}
              </label>
            ))}
          </fieldset>
        )}
        <Button type="submit" busy={give.busy} busyLabel="Granting…" disabled={actions.size === 0}>
          Grant
        </Button>
        <Outcome problem={give.problem} done={give.done} />
      </form>
    </Card>
  );
}
