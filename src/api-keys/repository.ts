import type { Knex } from 'knex';
import type { ScopedKeyRecord } from './model.js';

type Queryable = Knex | Knex.Transaction;

interface KeyRow {
  id: number;
  user_id: number;
  name: string;
  digest: string;
  prefix: string;
  permissions: string;
  created_at: number | string;
  last_used_at: number | string | null;
  expires_at: number | string | null;
}

const time = (v: number | string | null): number | null => (v === null ? null : Number(v));

function fromRow(r: KeyRow): ScopedKeyRecord {
  return {
    id: Number(r.id),
    userId: Number(r.user_id),
    name: r.name,
    prefix: r.prefix,
    permissions: JSON.parse(r.permissions) as string[],
    createdAt: time(r.created_at)!,
    lastUsedAt: time(r.last_used_at),
    expiresAt: time(r.expires_at),
  };
}

const COLUMNS: string[] = ['id', 'user_id', 'name', 'prefix', 'permissions', 'created_at', 'last_used_at', 'expires_at'];

/** SQL of scoped API keys. */
export const apiKeysRepo = {
  async findByDigest(db: Queryable, digest: string): Promise<ScopedKeyRecord | null> {
    const row = (await db<KeyRow>('api_keys').select(COLUMNS).where({ digest }).first()) as KeyRow | undefined;
    return row ? fromRow(row) : null;
  },

  async listOf(db: Queryable, userId: number): Promise<ScopedKeyRecord[]> {
    const rows = (await db('api_keys').select(COLUMNS).where({ user_id: userId }).orderBy('id')) as KeyRow[];
    return rows.map(fromRow);
  },

  async countOf(db: Queryable, userId: number): Promise<number> {
    const row = (await db('api_keys').where({ user_id: userId }).count({ n: '*' }).first()) as { n: number | string } | undefined;
    return Number(row?.n ?? 0);
  },

  async nameTaken(db: Queryable, userId: number, name: string): Promise<boolean> {
    return (await db('api_keys').where({ user_id: userId, name }).first('id')) !== undefined;
  },

  async insert(
    db: Queryable,
    row: { userId: number; name: string; digest: string; prefix: string; permissions: readonly string[]; createdAt: number; expiresAt: number | null },
  ): Promise<ScopedKeyRecord> {
    const [inserted] = (await db('api_keys')
      .insert({
        user_id: row.userId,
        name: row.name,
        digest: row.digest,
        prefix: row.prefix,
        permissions: JSON.stringify(row.permissions),
        created_at: row.createdAt,
        expires_at: row.expiresAt,
      })
      .returning('id')) as ({ id: number } | number)[];
    const id = typeof inserted === 'object' ? inserted.id : inserted!;
    return { id: Number(id), userId: row.userId, name: row.name, prefix: row.prefix, permissions: row.permissions, createdAt: row.createdAt, lastUsedAt: null, expiresAt: row.expiresAt };
  },

  /** Deletes the user's key; answers what was deleted, or null when the user has no such key. */
  async remove(db: Queryable, userId: number, id: number): Promise<ScopedKeyRecord | null> {
    const row = (await db<KeyRow>('api_keys').select(COLUMNS).where({ id, user_id: userId }).first()) as KeyRow | undefined;
    if (!row) return null;
    const deleted = await db('api_keys').where({ id, user_id: userId }).delete();
    return deleted > 0 ? fromRow(row) : null;
  },

  async touch(db: Queryable, id: number, now: number): Promise<void> {
    await db('api_keys').where({ id }).update({ last_used_at: now });
  },
};
