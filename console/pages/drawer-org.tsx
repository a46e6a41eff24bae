import { useEffect, useState } from 'preact/hooks';
import { api, call, type User } from '../api';
import { myPermissions } from '../mine';
import type { Org } from '../orgs';
import { OrgFields } from './org-fields';
import { Button, Card, Outcome, useAction } from '../ui';

/** The drawer's Organisation block: a global admin moves the user and sets their org role; others read it. */
export function OrgBlock({ user, me, orgs, onUser }: { user: User; me: User; orgs: Org[]; onUser: (u: User) => void }) {
  const [setsOrg, setSetsOrg] = useState(false);
  const [roles, setRoles] = useState(['user', 'admin']);
  const [orgId, setOrgId] = useState(user.organizationId === null ? '' : String(user.organizationId));
  const [orgRole, setOrgRole] = useState(user.orgRole ?? '');
  const action = useAction();
  useEffect(() => {
    myPermissions(me.id).then(
      (held) => setSetsOrg(held.has('users.set-org')),
      () => setSetsOrg(false),
    );
    api.GET('/api/v1/auth/roles').then(
      ({ data, response }) => response.ok && data && setRoles(data.map((r) => r.name)),
      () => undefined,
    );
  }, []);
  if (orgs.length === 0 && user.organizationId === null) return null;
  const name = (id: number | null) => (id === null ? null : (orgs.find((o) => o.id === id)?.name ?? `organisation ${id}`));
  const save = () =>
    action.run(async () => {
      const organizationId = orgId ? Number(orgId) : null;
      onUser(await call(api.PATCH('/api/v1/auth/users/{id}', { params: { path: { id: String(user.id) } }, body: { organizationId, orgRole: organizationId !== null && orgRole ? orgRole : null } })));
      return organizationId === null ? 'Taken out of every organisation.' : `Now in ${name(organizationId)}${orgRole ? `, org role ${orgRole}` : ''}.`;
    });
  return (
    <Card title="Organisation">
      {setsOrg ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void save();
          }}
        >
          <OrgFields orgs={orgs} roles={roles} orgId={orgId} orgRole={orgRole} onOrg={setOrgId} onRole={setOrgRole} />
          <Button type="submit" busy={action.busy} busyLabel="Saving…">
            Save organisation
          </Button>
          <Outcome problem={action.problem} done={action.done} />
        </form>
      ) : (
        <p>
          {user.organizationId === null ? 'Not in an organisation.' : `In ${name(user.organizationId)}${user.orgRole ? `, org role ${user.orgRole}` : ''}.`} Only a global admin
          changes it.
        </p>
      )}
    </Card>
  );
}
