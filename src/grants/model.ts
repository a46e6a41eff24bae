/**
 * Access grants to the host app's resources, and the decisions made from them. Decisions are pure functions
 * of a user's compiled grants, so the request path stays a few map lookups (see GrantService).
 */

/** Every resource of a type. */
export const ALL = '*';

/** One grant as the API answers it. */
export interface Grant {
  readonly id: number;
  readonly userId: number;
  readonly type: string;
  /** The host app's id as text, or `*`. */
  readonly resourceId: string;
  readonly actions: readonly string[];
  /** `api`, `default`, or `group:<provider>:<group>`. */
  readonly source: string;
  readonly createdAt: string;
  readonly createdBy: number | null;
}

/** A user's grants, compiled: type → resource id (`*` included) → actions. */
export type UserGrants = ReadonlyMap<string, ReadonlyMap<string, ReadonlySet<string>>>;

export const NO_GRANTS: UserGrants = new Map();

/** What a user may reach of a type: everything, or these ids (text, as declared). */
export type ResourceSet = { readonly all: true } | { readonly ids: readonly string[] };

/** Who is asked about: admins (the super role) reach every resource implicitly. */
export interface GrantSubject {
  readonly id: number;
  readonly role: string;
  /** A scoped API key's permissions: its holder passes no role check, so admin's implicit grants do not apply. */
  readonly scope?: ReadonlySet<string>;
}

/** Does the subject reach every resource through the super role? Never through a scoped key (a role check). */
export const implicitAll = (user: GrantSubject, superRole: string) => user.role === superRole && user.scope === undefined;

export function compileGrants(grants: readonly Pick<Grant, 'type' | 'resourceId' | 'actions'>[]): UserGrants {
  const out = new Map<string, Map<string, Set<string>>>();
  for (const g of grants) {
    let byId = out.get(g.type);
    if (!byId) out.set(g.type, (byId = new Map()));
    let actions = byId.get(g.resourceId);
    if (!actions) byId.set(g.resourceId, (actions = new Set()));
    for (const a of g.actions) actions.add(a);
  }
  return out;
}

/** May the holder of `grants` do `action` on resource `id` of `type`? */
export function grantAllows(grants: UserGrants, type: string, id: string, action: string): boolean {
  const byId = grants.get(type);
  if (!byId) return false;
  return (byId.get(ALL)?.has(action) ?? false) || (id !== ALL && (byId.get(id)?.has(action) ?? false));
}

/** The resources of `type` the holder of `grants` may `action` on. */
export function grantedResources(grants: UserGrants, type: string, action: string): ResourceSet {
  const byId = grants.get(type);
  if (!byId) return { ids: [] };
  if (byId.get(ALL)?.has(action)) return { all: true };
  const ids: string[] = [];
  for (const [id, actions] of byId) if (actions.has(action)) ids.push(id);
  return { ids: ids.sort() };
}

/** Does the holder of `grants` hold every one of `actions` on `id` (or on every resource, for `*`)? */
export function holdsAll(grants: UserGrants, type: string, id: string, actions: readonly string[]): boolean {
  return actions.every((a) => grantAllows(grants, type, id, a));
}

/** The source of a grant a group rule gave at `provider`. */
export const groupSource = (provider: string, group: string) => `group:${provider}:${group}`;
