/** A user as stored (without secrets). */
export interface User {
  id: number;
  username: string;
  name: string | null;
  email: string | null;
  role: string;
  /** The organisation the user belongs to (at most one); null: none. */
  orgId: number | null;
  /** The role the user holds inside their organisation only (`admin` of org 3); null: none. */
  orgRole: string | null;
  active: boolean;
  hasPassword: boolean;
  authSource: string;
  /** May sign in with a local password: always for a local account; for an external one if an admin allowed it. */
  passwordLogin: boolean;
  createdAt: number;
  updatedAt: number;
  lastActiveAt: number | null;
  lastLoginAt: number | null;
  /** When the user's recovery code was minted; null: they have none. */
  recoveryCodeCreatedAt: number | null;
}

/** A user with the stored secrets; never leaves the server. */
export interface UserRecord extends User {
  /** Sessions made under an older epoch are dead. */
  sessionEpoch: number;
  passwordHash: string | null;
  apiKeyDigest: string | null;
  apiKeyCipher: string | null;
  /** The keyed fingerprint of the user's recovery code (src/crypto/codes.ts); null: none. */
  recoveryCodeFingerprint: string | null;
}

/** The user without its stored secrets (an explicit copy: object rest is many times slower). */
export function withoutSecrets(u: User): User {
  return {
    id: u.id,
    username: u.username,
    name: u.name,
    email: u.email,
    role: u.role,
    orgId: u.orgId,
    orgRole: u.orgRole,
    active: u.active,
    hasPassword: u.hasPassword,
    authSource: u.authSource,
    passwordLogin: u.passwordLogin,
    createdAt: u.createdAt,
    updatedAt: u.updatedAt,
    lastActiveAt: u.lastActiveAt,
    lastLoginAt: u.lastLoginAt,
    recoveryCodeCreatedAt: u.recoveryCodeCreatedAt,
  };
}

/** A user as the API returns it: no password, hash or key; times in ISO-8601 UTC. */
export interface PublicUser {
  id: number;
  username: string;
  name: string | null;
  email: string | null;
  role: string;
  organizationId: number | null;
  orgRole: string | null;
  active: boolean;
  hasPassword: boolean;
  authSource: string;
  passwordLogin: boolean;
  createdAt: string;
  updatedAt: string;
  lastActiveAt: string | null;
  lastLoginAt: string | null;
  /** Whether the user has a recovery code: nobody but its owner, once, ever sees the code. */
  recoveryCode: 'set' | 'none';
}

// Formatting a date costs about a microsecond here, and the same few timestamps are formatted on
// every request of a user, so recent answers are kept (bounded).
const isoCache = new Map<number, string>();
function iso(ms: number | null): string | null {
  if (ms === null) return null;
  let text = isoCache.get(ms);
  if (text === undefined) {
    if (isoCache.size >= 10_000) isoCache.clear();
    text = new Date(ms).toISOString();
    isoCache.set(ms, text);
  }
  return text;
}

export function toPublicUser(u: User): PublicUser {
  return {
    id: u.id,
    username: u.username,
    name: u.name,
    email: u.email,
    role: u.role,
    organizationId: u.orgId,
    orgRole: u.orgRole,
    active: u.active,
    hasPassword: u.hasPassword,
    authSource: u.authSource,
    passwordLogin: u.passwordLogin,
    createdAt: iso(u.createdAt)!,
    updatedAt: iso(u.updatedAt)!,
    lastActiveAt: iso(u.lastActiveAt),
    lastLoginAt: iso(u.lastLoginAt),
    recoveryCode: u.recoveryCodeCreatedAt === null ? 'none' : 'set',
  };
}

/** The role the safety rails protect. */
export const ADMIN_ROLE = 'admin';
export const DEFAULT_ROLE = 'user';
