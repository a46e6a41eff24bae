/** A scoped API key (app password) as stored, without its digest. */
export interface ScopedKeyRecord {
  id: number;
  userId: number;
  name: string;
  /** `usa_` and the first characters of the key: what lists show. */
  prefix: string;
  /** The scope: permission names (`users.list`), sorted. */
  permissions: readonly string[];
  createdAt: number;
  lastUsedAt: number | null;
  /** null: never expires. */
  expiresAt: number | null;
}

/** At most this many scoped keys per user. */
export const MAX_KEYS_PER_USER = 100;

/** A scoped key as the API shows it: never the key. */
export interface PublicScopedKey {
  id: number;
  name: string;
  prefix: string;
  permissions: string[];
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function toPublicKey(k: ScopedKeyRecord): PublicScopedKey {
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    permissions: [...k.permissions],
    createdAt: iso(k.createdAt)!,
    lastUsedAt: iso(k.lastUsedAt),
    expiresAt: iso(k.expiresAt),
  };
}
