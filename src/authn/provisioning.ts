import { z } from 'zod';
import type { GroupRoles } from '../authz/group-roles.js';
import type { OrgGroupRoles } from '../authz/group-org-roles.js';
import type { RoleSync } from '../config/schema.js';
import { Errors, invalidField } from '../errors.js';
import { type UserRecord } from '../users/model.js';
import { nameProblem, normalizeUsername, usernameProblem } from '../names.js';
import type { UserService } from '../users/service.js';
import type { Origin } from '../events/stream.js';

/** Who an external authority (a trusted proxy, an OIDC provider) says a person is. */
export interface ExternalIdentity {
  /** 'proxy', or `oidc:${id}`: with `subject`, finds the account; also selects the g2 rules that apply. */
  provider: string;
  /** The provider's stable id for the person: the proxy's username key, an OIDC `sub`. */
  subject: string;
  /**
   * Who vouches for `subject`, for finding the account: an OIDC provider's issuer (`oidc:<issuer>`), so
   * that accounts follow (issuer, sub) whatever the provider's id in the config. Defaults to `provider`.
   */
  authority?: string;
  /** The username a new account gets (normalised and checked here). */
  username: string;
  /** A valid address, or undefined when the provider gave none. */
  email?: string;
  /** The provider vouches for the email (OIDC `email_verified`). */
  emailVerified?: boolean;
  name?: string;
  /** undefined: the provider did not say (header or claim absent): roles are left alone. [] is "in no group". */
  groups: readonly string[] | undefined;
}

/** What one provider allows: the proxy's settings, or one OIDC provider's. */
export interface ProvisioningPolicy {
  /** Create the account of an unknown identity; else 403 auth.not_provisioned. */
  autoProvision: boolean;
  /** 'always': the groups set the role at each sign-in (a role set by hand is replaced); 'on-create': only for a new account. */
  roleSync: RoleSync;
  /** The role when no group maps to one. */
  defaultRole: string;
  /**
   * The username belongs to an account not linked to this identity: 'link' it (a trusted proxy is the
   * authority on usernames), or create a separate account under name-2, name-3... (OIDC).
   */
  usernameTaken: 'link' | 'suffix';
  /** Link the account holding the same email when the provider verified it (OIDC email_linking). */
  linkVerifiedEmail: boolean;
  /** Only members of one of these groups may sign in (OIDC allowed_groups); undefined lets anyone in. */
  allowedGroups?: readonly string[];
}

const EMAIL = z.email().max(320);

/** The account has the email the provider gives (any case), or the provider gives none. */
const sameEmail = (user: UserRecord, identity: ExternalIdentity) => identity.email === undefined || identity.email.toLowerCase() === user.email?.toLowerCase();

/** Changes a provider makes at sign-in are its own: the actor is the identity provider. */
const originOf = (identity: ExternalIdentity): Origin => ({ actor: { kind: 'idp', provider: identity.provider } });

/**
 * What a provider says about name and email is taken only when it fits what the API itself accepts
 * (no control characters, at most 256 / 320 characters, a valid address); otherwise it is left out,
 * as if the provider had not said it. Header values and columns are then always safe.
 */
export function cleanProfile(identity: ExternalIdentity): ExternalIdentity {
  const name = identity.name?.trim();
  const email = identity.email?.trim();
  return {
    ...identity,
    name: name && nameProblem(name) === null ? name : undefined,
    email: email && EMAIL.safeParse(email).success ? email : undefined,
  };
}

/**
 * The steps that run once an external identity is known, the same for every provider: admit it, find
 * or create its account, then take its role from its groups and its name and email from the provider.
 * A disabled account is returned untouched (the auth chain's rejectDisabled refuses it).
 */
export class Provisioner {
  constructor(
    private readonly users: UserService,
    private readonly groupRoles: GroupRoles,
    /** Access grants from group rules (src/grants/service.ts), synced at each sign-in with a groups claim. */
    private readonly groupGrants?: (userId: number, provider: string, groups: readonly string[], origin: Origin) => Promise<void>,
    /** Groups → a role inside an organisation (config orgGroups). */
    private readonly orgGroups?: OrgGroupRoles,
  ) {}

  async resolve(raw: ExternalIdentity, policy: ProvisioningPolicy): Promise<UserRecord> {
    return (await this.settle(raw, policy)).user;
  }

  /**
   * resolve, also telling whether what the provider says was held back because of another user: a role
   * sync the last-admin rail refused, an email another account holds. Only such an answer can change
   * when someone else changes (a second admin appears, the email is freed); any other depends on the
   * user's own account alone.
   */
  async settle(raw: ExternalIdentity, policy: ProvisioningPolicy): Promise<{ user: UserRecord; heldBack: boolean }> {
    const identity = cleanProfile(raw);
    this.admit(identity, policy);
    const found = await this.findOrCreate(identity, policy);
    if (!found.user.active) return { user: found.user, heldBack: false };
    // An absent claim changes nothing.
    if (identity.groups !== undefined) await this.groupGrants?.(found.user.id, identity.provider, identity.groups, originOf(identity));
    let user = await this.syncOrgRole(found.user, identity, policy, found.created);
    // A new account has the role asked for; its email may have been left out.
    if (found.created) return { user, heldBack: !sameEmail(user, identity) };
    const role = policy.roleSync === 'always' ? this.roleFromGroups(identity, policy) : undefined;
    user = await this.syncProfile(await this.syncRole(user, role, identity), identity);
    return { user, heldBack: (role !== undefined && user.role !== role) || !sameEmail(user, identity) };
  }

  /**
   * The organisation role the groups give (orgGroups), at creation and, with roleSync `always`, at each
   * login. Groups unknown (claim or header absent) or no rule for the provider: nothing changes. Groups
   * known and no rule matching: the organisation role goes (the membership stays, an admin's to change).
   */
  private async syncOrgRole(user: UserRecord, identity: ExternalIdentity, policy: ProvisioningPolicy, created: boolean): Promise<UserRecord> {
    if (!this.orgGroups || identity.groups === undefined || !this.orgGroups.hasRules(identity.provider)) return user;
    if (!created && policy.roleSync !== 'always') return user;
    const place = this.orgGroups.placeFor(identity.provider, identity.groups);
    if (place === null && user.orgRole === null) return user;
    return this.users.syncOrgRole(user.id, place, originOf(identity));
  }

  /** The role the identity's groups give; undefined when its groups are unknown or no g2 rule covers its provider. */
  roleFromGroups(identity: ExternalIdentity, policy: ProvisioningPolicy): string | undefined {
    if (identity.groups === undefined || !this.groupRoles.hasRules(identity.provider)) return undefined;
    return this.groupRoles.roleFor(identity.provider, identity.groups) ?? policy.defaultRole;
  }

  private admit(identity: ExternalIdentity, policy: ProvisioningPolicy): void {
    if (identity.subject.length === 0 || identity.subject.length > 255) throw Errors.unauthenticated(`The ${identity.provider} subject is empty or too long.`);
    const problem = usernameProblem(normalizeUsername(identity.username));
    if (problem) throw invalidField('username', `${problem} (as ${identity.provider} gives it)`);
    const allowed = policy.allowedGroups;
    if (allowed && !identity.groups?.some((g) => allowed.includes(g))) throw Errors.forbidden('You are not in a group allowed to sign in here.');
  }

  private async findOrCreate(identity: ExternalIdentity, policy: ProvisioningPolicy): Promise<{ user: UserRecord; created: boolean }> {
    const authority = identity.authority ?? identity.provider;
    const linked = await this.users.findByIdentity(authority, identity.subject);
    if (linked) return { user: linked, created: false };
    // Linking an existing account is not creating one: allowed even without auto-provisioning.
    const mayLink = policy.usernameTaken === 'link' || (policy.linkVerifiedEmail && identity.emailVerified === true);
    if (!policy.autoProvision && !mayLink) throw Errors.notProvisioned();
    const result = await this.users.provisionExternal({
      provider: authority,
      subject: identity.subject,
      username: normalizeUsername(identity.username),
      name: identity.name ?? null,
      email: identity.email ?? null,
      role: this.roleFromGroups(identity, policy) ?? policy.defaultRole,
      authSource: identity.provider.split(':', 1)[0]!,
      usernameTaken: policy.usernameTaken,
      linkEmail: policy.linkVerifiedEmail && identity.emailVerified === true,
      create: policy.autoProvision,
    }, originOf(identity));
    if (!result) throw Errors.notProvisioned();
    return result;
  }

  /** Gives the role the groups give (undefined: roles are not synced, or the groups say nothing). */
  private async syncRole(user: UserRecord, role: string | undefined, identity: ExternalIdentity): Promise<UserRecord> {
    return role === undefined || role === user.role ? user : this.users.syncRole(user.id, role, originOf(identity));
  }

  private async syncProfile(user: UserRecord, identity: ExternalIdentity): Promise<UserRecord> {
    const name = identity.name !== undefined && identity.name !== user.name ? identity.name : undefined;
    const email = sameEmail(user, identity) ? undefined : identity.email;
    return name === undefined && email === undefined ? user : this.users.syncProfile(user.id, { name, email }, originOf(identity));
  }
}
