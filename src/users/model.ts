/** A user as stored (without secrets). */
export interface User {
  id: number;
  username: string;
  name: string | null;
  email: string | null;
  role: string;
  active: boolean;
  hasPassword: boolean;
  authSource: string;
  /** May sign in with a local password: always for a local account; for an external one if an admin allowed it. */
  passwordLogin: boolean;
  createdAt: number;
  updatedAt: number;
  lastActiveAt: number | null;
  lastLoginAt: number | null;
}

/** A user with the stored secrets; never leaves the server. */
export interface UserRecord extends User {
  /** Sessions made under an older epoch are dead. */
  sessionEpoch: number;
  passwordHash: string | null;
  apiKeyDigest: string | null;
  apiKeyCipher: string | null;
}

/** The user without its stored secrets (an explicit copy: object rest is many times slower). */
export function withoutSecrets(u: User): User {
  return {
    id: u.id,
    username: u.username,
    name: u.name,
    email: u.email,
    role: u.role,
    active: u.active,
    hasPassword: u.hasPassword,
    authSource: u.authSource,
    passwordLogin: u.passwordLogin,
    createdAt: u.createdAt,
    updatedAt: u.updatedAt,
    lastActiveAt: u.lastActiveAt,
    lastLoginAt: u.lastLoginAt,
  };
}

/** A user as the API returns it: no password, hash or key; times in ISO-8601 UTC. */
export interface PublicUser {
  id: number;
  username: string;
  name: string | null;
  email: string | null;
  role: string;
  active: boolean;
  hasPassword: boolean;
  authSource: string;
  passwordLogin: boolean;
  createdAt: string;
  updatedAt: string;
  lastActiveAt: string | null;
  lastLoginAt: string | null;
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
    active: u.active,
    hasPassword: u.hasPassword,
    authSource: u.authSource,
    passwordLogin: u.passwordLogin,
    createdAt: iso(u.createdAt)!,
    updatedAt: iso(u.updatedAt)!,
    lastActiveAt: iso(u.lastActiveAt),
    lastLoginAt: iso(u.lastLoginAt),
  };
}

/** The role the safety rails protect. */
export const ADMIN_ROLE = 'admin';
export const DEFAULT_ROLE = 'user';

/** Trimmed and NFKC-normalised, as stored. */
export function normalizeUsername(raw: string): string {
  return raw.normalize('NFKC').trim();
}

/** The case-insensitive uniqueness key. */
export function usernameKey(username: string): string {
  return normalizeUsername(username).toLowerCase();
}

/**
 * Control, format (zero-width, bidi), unassigned, private-use, surrogate and line/paragraph separator
 * characters, and the default-ignorable ones that display as nothing (the combining grapheme joiner
 * U+034F, the Hangul fillers U+3164 and U+115F, variation selectors): `adm\u034Fin` would show as admin.
 */
const INVISIBLE = /[\p{C}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/u;

/**
 * Whether a name differs from what it would be stored as only by compatibility folding (NFKC), spaces
 * around it or characters nobody sees: `ａｄｍｉｎ`, `admin` and a no-break space, `admin` and a
 * zero-width space. Such a name, from an outside authority, is not the account's name.
 */
export function looksLikeAnother(name: string): boolean {
  return name !== normalizeUsername(name) || INVISIBLE.test(name) || /\s/u.test(name.replace(/ /g, ''));
}

/** Why a (normalised) username is unacceptable, or null. */
export function usernameProblem(username: string): string | null {
  const length = [...username].length;
  if (length < 1 || length > 64) return 'must be 1 to 64 characters';
  if (INVISIBLE.test(username)) return 'must not contain control or invisible characters';
  if (/\s/u.test(username.replace(/ /g, ''))) return 'must not contain whitespace other than spaces';
  if (!/[\p{L}\p{N}]/u.test(username)) return 'must contain a letter or a digit';
  return null;
}

/**
 * Control characters, bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069,
 * which make a name display as another text) and line/paragraph separators (U+2028, U+2029).
 */
const UNSAFE_IN_NAME = /[\p{Cc}\u202a-\u202e\u2066-\u2069\u2028\u2029]/u;

/** Why a display name is unacceptable, or null. */
export function nameProblem(name: string): string | null {
  if (name.length > 256) return 'must be at most 256 characters';
  if (UNSAFE_IN_NAME.test(name)) return 'must not contain control, bidirectional-override or line-separator characters';
  return null;
}
