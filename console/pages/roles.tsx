import { useEffect, useId, useState } from 'preact/hooks';
import { api, call, problemOf, type Problem } from '../api';
import { myPermissions } from '../mine';
import type { components } from '../api-types';
import { Button, Dialog, Field, Outcome, PageHeading, useAction } from '../ui';

export type Role = components['schemas']['Role'];
export type Permission = components['schemas']['Permission'];

/** Permissions by their object (`users`, `self`, the host app's `cert`), in the API's order. */
export function groupPermissions(all: Permission[]): [string, Permission[]][] {
  const groups = new Map<string, Permission[]>();
  for (const p of all) {
    const object = p.name.split('.')[0]!;
    const key = p.source === 'app' ? `${object} (this app)` : object;
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  return [...groups];
}

/**
 * The permissions as a checklist grouped by object, each with its description. `locked` ones (a role's,
 * shown in a user's block) are ticked and cannot be unticked here.
 */
export function PermissionChecklist(props: { all: Permission[]; checked: Set<string>; onToggle: (name: string, on: boolean) => void; locked?: Set<string>; describedBy?: string }) {
  const id = useId();
  return (
    <div class="checklist" aria-describedby={props.describedBy}>
      {groupPermissions(props.all).map(([group, perms]) => (
        <fieldset key={group}>
          <legend>{group}</legend>
          {perms.map((p) => {
            const locked = props.locked?.has(p.name) ?? false;
            const box = `${id}-${p.name.replace(/[^\w-]/g, '_')}`;
            return (
              <div class="check" key={p.name}>
                <input
                  type="checkbox"
                  id={box}
                  checked={locked || props.checked.has(p.name)}
                  disabled={locked}
                  aria-describedby={`${box}-d`}
                  onChange={(e) => props.onToggle(p.name, e.currentTarget.checked)}
                />
                <label for={box} class="mono">
                  {p.name}
                </label>
                <p class="hint" id={`${box}-d`}>
                  {p.description}
                  {locked ? ' (from the role)' : ''}
                </p>
              </div>
            );
          })}
        </fieldset>
      ))}
    </div>
  );
}

/** Where a refusal is said: beside the name, the permissions or the inherited roles; else under the form. */
function placeOf(problem: Problem | null): 'name' | 'permissions' | 'inherits' | 'form' | null {
  if (!problem) return null;
  if (problem.code === 'role.exists') return 'name';
  if (problem.code === 'authz.escalation') return 'permissions';
  if (problem.code === 'request.invalid') {
    const field = /^Check the ([a-zA-Z]+)/.exec(problem.sentence)?.[1];
    if (field === 'name' || field === 'permissions' || field === 'inherits') return field;
  }
  return 'form';
}

function RoleDialog({ role, roles, permissions, onClose, onSaved }: { role: Role | null; roles: Role[]; permissions: Permission[]; onClose: () => void; onSaved: (r: Role, verb: string) => void }) {
  const [name, setName] = useState(role?.name ?? '');
  const [description, setDescription] = useState(role?.description ?? '');
  const [inherits, setInherits] = useState(new Set(role?.inherits ?? []));
  const [granted, setGranted] = useState(new Set(role?.permissions ?? []));
  const action = useAction();
  const place = placeOf(action.problem);
  const here = (where: typeof place) => <Outcome problem={place === where ? action.problem : null} />;
  const toggle = (set: Set<string>, update: (s: Set<string>) => void) => (item: string, on: boolean) => {
    const next = new Set(set);
    if (on) next.add(item);
    else next.delete(item);
    update(next);
  };
  const save = () =>
    action.run(async () => {
      const body = { name: name.trim(), description, inherits: [...inherits], permissions: [...granted] };
      const saved = role
        ? await call(api.PUT('/api/v1/auth/roles/{name}', { params: { path: { name: role.name } }, body }))
        : await call(api.POST('/api/v1/auth/roles', { body }));
      onSaved(saved, role ? 'Saved' : 'Created');
    });
  const others = roles.filter((r) => r.name !== role?.name);
  return (
    <Dialog title={role ? `Edit role ${role.name}` : 'Create role'} onClose={onClose} class="drawer">
      <Button class="close" onClick={onClose} aria-label="Close">
        ×
      </Button>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
      >
        <Field label="Name" value={name} onValue={setName} required autoFocus={!role} autoCapitalize="off" spellcheck={false} hint={role ? 'A new name renames the role; its holders keep it.' : 'A letter, then letters, digits, _ . or -: editor, support-desk.'} />
        {here('name')}
        <Field label="Description" value={description} onValue={setDescription} hint="What the role is for, for the next admin." />
        <fieldset class="inherits">
          <legend>Inherits</legend>
          <p class="hint">It holds everything these roles hold, too.</p>
          {others.map((r) => (
            <div class="check" key={r.name}>
              <input type="checkbox" id={`inherit-${r.name}`} checked={inherits.has(r.name)} onChange={(e) => toggle(inherits, setInherits)(r.name, e.currentTarget.checked)} />
              <label for={`inherit-${r.name}`}>{r.name}</label>
            </div>
          ))}
        </fieldset>
        {here('inherits')}
        <h3>Permissions</h3>
        <PermissionChecklist all={permissions} checked={granted} onToggle={toggle(granted, setGranted)} />
        {here('permissions')}
        {here('form')}
        <div class="actions">
          <Button type="submit" class="primary" busy={action.busy} busyLabel="Saving…">
            {role ? 'Save role' : 'Create role'}
          </Button>
          <Button onClick={onClose}>Cancel</Button>
        </div>
      </form>
    </Dialog>
  );
}

/** Deleting a role: asks first; a role users hold asks where they go (`?moveTo=`). */
function DeleteRole({ role, roles, onDeleted }: { role: Role; roles: Role[]; onDeleted: (text: string) => void }) {
  const [confirming, setConfirming] = useState(false);
  const [held, setHeld] = useState<string | null>(null);
  const [moveTo, setMoveTo] = useState('user');
  const action = useAction();
  const selectId = useId();
  const remove = (target?: string) =>
    action.run(async () => {
      const query = target ? { moveTo: target } : {};
      const { error, response } = await api.DELETE('/api/v1/auth/roles/{name}', { params: { path: { name: role.name }, query } }).catch(() => ({ error: undefined, response: undefined }));
      if (response?.ok) return onDeleted(target ? `Deleted ${role.name}; its holders now have ${target}.` : `Deleted ${role.name}.`);
      const message = (error as { error?: { code?: string; message?: string } } | undefined)?.error;
      const count = message?.code === 'role.in_use' ? /held by (\d+) user/.exec(message.message ?? '')?.[1] : undefined;
      if (count) {
        setHeld(`${count} user${count === '1' ? ' holds' : 's hold'} this role. Choose the role to move ${count === '1' ? 'them' : 'them all'} to, then delete it.`);
        return;
      }
      // Inherited by another role, or named by configuration: the API's reason, as a sentence.
      if (message?.code === 'role.in_use' && message.message) throw { code: 'role.in_use', sentence: `It cannot be deleted now: ${message.message.replace(/\.$/, '')}.` };
      throw problemOf(error, response);
    });
  if (!confirming)
    return (
      <Button class="danger" onClick={() => setConfirming(true)}>
        Delete…
      </Button>
    );
  return (
    <div class="confirm">
      {held ? (
        <>
          <p role="alert">{held}</p>
          <div class="field">
            <label for={selectId}>Move its holders to</label>
            <select id={selectId} value={moveTo} onChange={(e) => setMoveTo(e.currentTarget.value)}>
              {roles
                .filter((r) => r.name !== role.name)
                .map((r) => (
                  <option key={r.name} value={r.name}>
                    {r.name}
                  </option>
                ))}
            </select>
          </div>
        </>
      ) : (
        <p>Delete the role {role.name}? Users who hold it would need another role.</p>
      )}
      <div class="actions">
        <Button class="danger" busy={action.busy} busyLabel="Deleting…" onClick={() => remove(held ? moveTo : undefined)}>
          {held ? `Move them to ${moveTo} and delete` : `Yes, delete ${role.name}`}
        </Button>
        <Button
          onClick={() => {
            setConfirming(false);
            setHeld(null);
            action.setProblem(null);
          }}
        >
          Keep the role
        </Button>
      </div>
      <Outcome problem={action.problem} />
    </div>
  );
}

const names = (list: string[]) => (list.length ? list.join(', ') : 'none');

function RoleItem({ role, roles, manage, onEdit, onDeleted }: { role: Role; roles: Role[]; manage: boolean; onEdit: () => void; onDeleted: (text: string) => void }) {
  return (
    <li class="card role">
      <div class="entry-head">
        <h2>
          {role.name}
          {role.builtIn && <span class="tag">built-in</span>}
        </h2>
        {!role.builtIn && manage && (
          <div class="actions">
            <Button onClick={onEdit} aria-label={`Edit ${role.name}`}>
              Edit
            </Button>
          </div>
        )}
      </div>
      {role.description && <p>{role.description}</p>}
      <dl class="facts">
        <dt>Inherits</dt>
        <dd>{names(role.inherits)}</dd>
        <dt>Own</dt>
        <dd class="mono">{names(role.permissions)}</dd>
      </dl>
      <details>
        <summary>Effective: {role.effective.length} permissions</summary>
        <p class="mono perms">{names(role.effective)}</p>
      </details>
      {role.builtIn ? <p class="hint">Built-in roles come from policies/policy.csv: they cannot be changed or deleted here.</p> : manage && <DeleteRole role={role} roles={roles} onDeleted={onDeleted} />}
    </li>
  );
}

/** Roles and permissions (needs `roles:read`; changes need `roles:manage`). */
export function RolesPage({ meId }: { meId: number }) {
  // Changes need roles.manage, a global-only permission: an org admin reads the roles without the controls.
  const [manage, setManage] = useState<boolean | null>(null);
  const [roles, setRoles] = useState<Role[] | null>(null);
  const [permissions, setPermissions] = useState<Permission[]>([]);
  const [editing, setEditing] = useState<Role | 'new' | null>(null);
  const load = useAction();
  const reload = () =>
    load.run(async () => {
      const [r, p] = await Promise.all([call(api.GET('/api/v1/auth/roles')), call(api.GET('/api/v1/auth/permissions'))]);
      setRoles(r);
      setPermissions(p);
    });
  const [done, setDone] = useState<string | null>(null);
  useEffect(() => {
    document.title = 'Roles · Usher';
    myPermissions(meId).then(
      (held) => setManage(held.has('roles.manage')),
      () => setManage(false),
    );
    void reload();
  }, []);
  return (
    <>
      <div class="page-head">
        <PageHeading>Roles and permissions</PageHeading>
        {manage && (
          <Button class="primary" onClick={() => setEditing('new')} disabled={roles === null}>
            + Create role
          </Button>
        )}
      </div>
      {manage === false && <p class="hint">You may read the roles; changing them needs roles.manage, which only a global admin holds.</p>}
      <p class="hint">A user holds one role, what it inherits, and any permissions granted to them alone (in their drawer under Users).</p>
      {editing && roles && (
        <RoleDialog
          role={editing === 'new' ? null : editing}
          roles={roles}
          permissions={permissions}
          onClose={() => setEditing(null)}
          onSaved={(r, verb) => {
            setEditing(null);
            setDone(`${verb} ${r.name}.`);
            void reload();
          }}
        />
      )}
      <Outcome problem={load.problem} done={done} />
      {roles === null ? (
        !load.problem && <p role="status">Loading…</p>
      ) : (
        <ul class="roles">
          {roles.map((r) => (
            <RoleItem
              key={r.name}
              role={r}
              roles={roles}
              manage={manage === true}
              onEdit={() => setEditing(r)}
              onDeleted={(text) => {
                setDone(text);
                void reload();
              }}
            />
          ))}
        </ul>
      )}
    </>
  );
}
