import { useEffect, useId, useState } from 'preact/hooks';
import { api, call, consoleConfig, isProblem, type User } from '../api';
import { myPermissions } from '../mine';
import { readResourceTypes, typeLabel, type Org, type ResourceType } from '../orgs';
import { OrgFields } from './org-fields';
import { Button, Dialog, Field, Outcome, useAction } from '../ui';

const LISTENER_HINT = 'Optional - leave blank for a player-only account that pairs via an invite code.';
const ADMIN_HINT = 'Required - admins sign in to this console.';

/** The roles to offer: every role when the caller may read them (GET /roles), else the two built-in ones. */
function useRoleNames(): string[] {
  const [names, setNames] = useState(['user', 'admin']);
  useEffect(() => {
    api.GET('/api/v1/auth/roles').then(
      ({ data, response }) => {
        if (response.ok && data) setNames(data.map((r) => r.name));
      },
      () => undefined,
    );
  }, []);
  return names;
}

/** "+ Create user": username, role, password (optional for listeners). What was typed stays when the API refuses. */
export function CreateUserDialog({ me, orgs, onClose, onCreated }: { me: User; orgs: Org[]; onClose: () => void; onCreated: (username: string, note?: string) => void }) {
  const roles = useRoleNames();
  const [orgId, setOrgId] = useState('');
  const [orgRole, setOrgRole] = useState('');
  // Only a global admin chooses the organisation; an org admin's new users land in theirs.
  const [setsOrg, setSetsOrg] = useState(false);
  const [types, setTypes] = useState<ResourceType[]>([]);
  const [access, setAccess] = useState('');
  const [ids, setIds] = useState('');
  const accessId = useId();
  const [username, setUsername] = useState('');
  const [role, setRole] = useState('user');
  const [password, setPassword] = useState('');
  const [min, setMin] = useState<number | null>(null);
  const action = useAction();
  const roleId = useId();
  useEffect(() => {
    myPermissions(me.id).then(
      (held) => setSetsOrg(held.has('users.set-org')),
      () => setSetsOrg(false),
    );
    void readResourceTypes().then(setTypes);
    consoleConfig().then(
      (c) => setMin(c.passwordMinLength),
      () => setMin(null),
    );
  }, []);
  const hint = `${role === 'admin' ? ADMIN_HINT : LISTENER_HINT}${min === null ? '' : ` At least ${min} characters.`}`;
  return (
    <Dialog title="Create user" onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => {
            const wanted = access ? ids.split(',').map((i) => i.trim()).filter(Boolean) : [];
            if (access && wanted.length === 0) throw { code: 'request.invalid', sentence: `Check the ${typeLabel(access).toLowerCase()}: name at least one id, or * for every one.` };
            const org = setsOrg && orgId ? { organizationId: Number(orgId), ...(orgRole ? { orgRole } : {}) } : {};
            const made = await call(api.POST('/api/v1/auth/users', { body: { username, role, ...(password ? { password } : {}), ...org } }));
            // The account exists now: a grant that fails is said with the outcome, to be given from the drawer.
            const failed: string[] = [];
            for (const id of wanted) {
              try {
                await call(api.POST('/api/v1/auth/users/{id}/grants', { params: { path: { id: String(made.id) } }, body: { type: access, id } }));
              } catch (problem) {
                failed.push(`${access} ${id}: ${isProblem(problem) ? problem.sentence : 'not granted'}`);
              }
            }
            onCreated(made.username, failed.length ? `Not granted (${failed.join('; ')}); grant it from the drawer.` : undefined);
          });
        }}
      >
        <Field label="Username" value={username} onValue={setUsername} autoComplete="off" autoCapitalize="off" spellcheck={false} autoFocus required />
        <div class="field">
          <label for={roleId}>Role</label>
          <select id={roleId} value={role} onChange={(e) => setRole(e.currentTarget.value)}>
            {roles.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </div>
        <Field label="Password" type="password" value={password} onValue={setPassword} autoComplete="new-password" hint={hint} />
        {setsOrg && orgs.length > 0 && (
          <OrgFields orgs={orgs} roles={roles} orgId={orgId} orgRole={orgRole} onOrg={setOrgId} onRole={setOrgRole} />
        )}
        {types.length > 0 && (
          <div class="field">
            <label for={accessId}>Access</label>
            <select id={accessId} value={access} onChange={(e) => setAccess(e.currentTarget.value)} aria-describedby={`${accessId}-hint`}>
              <option value="">No access</option>
              {types.map((t) => (
                <option key={t.type} value={t.type}>
                  {typeLabel(t.type)}
                </option>
              ))}
            </select>
            <p class="hint" id={`${accessId}-hint`}>
              What they can see. You can always grant or change access later from the drawer.
            </p>
          </div>
        )}
        {access && <Field label={`Which ${access} ids`} value={ids} onValue={setIds} hint="Separated by commas; * for every one." autoComplete="off" />}
        <Outcome problem={action.problem} />
        <div class="actions">
          <Button type="submit" class="primary" busy={action.busy} busyLabel="Creating…">
            Create user
          </Button>
          <Button onClick={onClose}>Cancel</Button>
        </div>
      </form>
    </Dialog>
  );
}
