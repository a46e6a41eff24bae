/** The rules for usernames and display names, shared by the config (the bootstrap admin) and the users' rules. */

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
