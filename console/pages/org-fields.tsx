import { useId } from 'preact/hooks';
import type { Org } from '../orgs';

/** Organisation and organisation role side by side: the create dialog's and the drawer's. No organisation, no role. */
export function OrgFields(props: {
  orgs: readonly Org[];
  roles: readonly string[];
  orgId: string;
  orgRole: string;
  onOrg: (orgId: string) => void;
  onRole: (orgRole: string) => void;
}) {
  const orgFieldId = useId();
  const roleId = useId();
  return (
    <div class="pair">
      <div class="field">
        <label for={orgFieldId}>Organisation</label>
        <select id={orgFieldId} value={props.orgId} onChange={(e) => props.onOrg(e.currentTarget.value)}>
          <option value="">None</option>
          {props.orgs.map((o) => (
            <option key={o.id} value={String(o.id)}>
              {o.name}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for={roleId}>Org role</label>
        <select id={roleId} value={props.orgRole} disabled={!props.orgId} onChange={(e) => props.onRole(e.currentTarget.value)}>
          <option value="">None</option>
          {props.roles.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
      </div>
    </div>
  );
}
