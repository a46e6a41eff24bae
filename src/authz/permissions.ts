/**
 * Permissions: Casbin's (object, action) pairs, named `object.action` in the API (`users.list`). Routes
 * declare them as `object:action`; both spellings are accepted on input (the split is at the first `.`
 * or `:`), the API always answers the dotted one.
 */

export interface PermissionInfo {
  /** `object.action` */
  readonly name: string;
  readonly description: string;
}

/** Where a permission comes from: Usher's own API, or the host app's declaration. */
export type PermissionSource = 'usher' | 'app';

const NAME = /^[a-z][a-z0-9_-]{0,63}[.:][a-z][a-z0-9_.-]{0,63}$/;

/** `users.list` or `users:list` → ['users', 'list']; null when it is not a permission name. */
export function parsePermission(name: string): [string, string] | null {
  if (!NAME.test(name)) return null;
  const at = name.search(/[.:]/);
  return [name.slice(0, at), name.slice(at + 1)];
}

/**
 * Held only through the global role or a global direct grant, never through an organisation role: what
 * seed 003 reserves to its superuser (role, status, organisation) and what reaches beyond one organisation.
 */
export const GLOBAL_ONLY: ReadonlySet<string> = new Set([
  'users.set-role',
  'users.set-status',
  'users.set-org',
  'users.set-password-login',
  'orgs.manage',
  'roles.manage',
]);

export const permissionName = (object: string, action: string) => `${object}.${action}`;

/**
 * What a device token (an app signed in through an invite or a recovery code) never does, whatever its user
 * holds: read or mint an API key, or mint credentials for others. Taken from a lost phone, the token then
 * dies with the device's session (end it, or the user's epoch moves on) and leaves no key behind. The
 * account's own way back in stays the player's to set, as seed 004 says: the password and the recovery
 * code ("a code they mint for themselves from the player's settings").
 */
export const DEVICE_WITHHELD: ReadonlySet<string> = new Set([
  'self.api-key',
  'self.api-keys',
  'users.rotate-api-key',
  'users.api-keys',
  'users.reset-password',
  'invites.create',
]);

/** Every permission Usher's own routes check, with what it allows. */
export const USHER_PERMISSIONS: readonly PermissionInfo[] = [
  { name: 'self.read', description: 'Read your own account.' },
  { name: 'self.update', description: 'Change your own name, email and password.' },
  { name: 'self.api-key', description: 'Read and rotate your own API key.' },
  { name: 'self.api-keys', description: 'Make, list and revoke your own scoped API keys (app passwords).' },
  { name: 'self.sessions', description: 'List and end your own sessions and signed-in apps.' },
  { name: 'self.recovery-code', description: 'Mint, read and revoke your own recovery code.' },
  { name: 'users.list', description: 'List every user.' },
  { name: 'users.create', description: 'Create users.' },
  { name: 'users.read', description: "Read any user's account and permissions." },
  { name: 'users.update', description: "Change any user's name, email and password." },
  { name: 'users.set-role', description: "Change a user's role (to a role holding nothing the actor lacks)." },
  { name: 'users.set-password-login', description: 'Let an external account sign in with a local password.' },
  { name: 'users.set-status', description: 'Enable and disable users.' },
  { name: 'users.set-permissions', description: 'Grant and revoke permissions of one user (only those the actor holds).' },
  { name: 'users.reset-password', description: "Set any user's password." },
  { name: 'users.rotate-api-key', description: "Rotate any user's API key." },
  { name: 'users.api-keys', description: "List and revoke any user's scoped API keys." },
  { name: 'users.delete', description: 'Delete users.' },
  { name: 'users.end-sessions', description: "End every session of any user." },
  { name: 'users.revoke-recovery-code', description: "Revoke any user's recovery code." },
  { name: 'users.set-org', description: "Change a user's organisation and organisation role (global only)." },
  { name: 'roles.read', description: 'List roles and permissions.' },
  { name: 'roles.manage', description: 'Create, edit and delete custom roles (with permissions the actor holds).' },
  { name: 'authz.explain', description: "Explain why any user holds a permission or not: their roles, grants and the IdP group rules (GET /authz/explain)." },
  { name: 'grants.read', description: "Read any user's access grants to the host app's resources." },
  { name: 'grants.manage', description: 'Give and revoke access grants (only on resources and actions the actor holds).' },
  { name: 'orgs.read', description: 'List and read organisations.' },
  { name: 'orgs.manage', description: 'Create, rename and delete organisations (global only).' },
  { name: 'audit.read', description: 'Read the audit log.' },
  { name: 'invites.create', description: 'Create and resend invites.' },
  { name: 'invites.read', description: "Read a user's invites." },
  { name: 'invites.revoke', description: 'Revoke invites.' },
];
