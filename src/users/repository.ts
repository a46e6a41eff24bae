import type { Knex } from 'knex';
import type { UserRecord } from './model.js';
import { listRows, type Cursor, type ListQuery } from './list.js';

/** Anything that can run a query: the database or a transaction. */
export type Queryable = Knex | Knex.Transaction;

interface UserRow {
  id: number;
  username: string;
  username_key: string;
  name: string | null;
  email: string | null;
  email_key: string | null;
  role: string;
  org_id: number | string | null;
  org_role: string | null;
  active: boolean | number;
  password_hash: string | null;
  auth_source: string;
  password_login: boolean | number;
  api_key_digest: string | null;
  api_key_cipher: string | null;
  created_at: number | string;
  updated_at: number | string;
  last_active_at: number | string | null;
  last_login_at: number | string | null;
  session_epoch: number | string;
  recovery_code_fingerprint: string | null;
  recovery_code_created_at: number | string | null;
}

const time = (v: number | string | null): number | null => (v === null ? null : Number(v));

function fromRow(r: UserRow): UserRecord {
  return {
    id: Number(r.id),
    username: r.username,
    name: r.name,
    email: r.email,
    role: r.role,
    orgId: r.org_id === null || r.org_id === undefined ? null : Number(r.org_id),
    orgRole: r.org_role ?? null,
    active: Boolean(r.active),
    hasPassword: r.password_hash !== null,
    authSource: r.auth_source,
    passwordLogin: r.auth_source === 'local' || Boolean(r.password_login),
    createdAt: time(r.created_at)!,
    updatedAt: time(r.updated_at)!,
    lastActiveAt: time(r.last_active_at),
    lastLoginAt: time(r.last_login_at),
    recoveryCodeCreatedAt: r.recovery_code_fingerprint === null ? null : time(r.recovery_code_created_at),
    sessionEpoch: Number(r.session_epoch ?? 0),
    passwordHash: r.password_hash,
    apiKeyDigest: r.api_key_digest,
    apiKeyCipher: r.api_key_cipher,
    recoveryCodeFingerprint: r.recovery_code_fingerprint,
  };
}

export interface NewUserRow {
  username: string;
  username_key: string;
  name: string | null;
  email: string | null;
  email_key: string | null;
  role: string;
  org_id: number | null;
  org_role: string | null;
  active: boolean;
  password_hash: string | null;
  auth_source: string;
  api_key_digest: string;
}

export type UserChanges = Partial<Omit<NewUserRow, 'auth_source'>> & {
  api_key_cipher?: string | null;
  password_login?: boolean;
  last_login_at?: number;
  session_epoch?: number;
  recovery_code_fingerprint?: string | null;
  recovery_code_created_at?: number | null;
};

export { SORT_COLUMNS, SORT_KINDS, type Cursor, type ListQuery, type SortField } from './list.js';

/** SQL for users, and nothing else. */
export const usersRepo = {
  async findById(db: Queryable, id: number): Promise<UserRecord | null> {
    const row = (await db<UserRow>('users').where({ id }).first()) as UserRow | undefined;
    return row ? fromRow(row) : null;
  },

  /**
   * The user, its row locked until the transaction ends (PostgreSQL `FOR NO KEY UPDATE`: changes to the
   * user's own records, such as their invites, queue behind each other; a deletion waits too). SQLite runs
   * one transaction at a time anyway.
   */
  async findForUpdate(trx: Knex.Transaction, id: number): Promise<UserRecord | null> {
    const row = (await trx<UserRow>('users').where({ id }).forNoKeyUpdate().first()) as UserRow | undefined;
    return row ? fromRow(row) : null;
  },

  /** The users linked to these subjects of `provider` (identities), by subject, in one query. */
  async findBySubjects(db: Queryable, provider: string, subjects: readonly string[]): Promise<Map<string, UserRecord>> {
    const rows = (await db('identities')
      .join('users', 'users.id', 'identities.user_id')
      .where('identities.provider', provider)
      .whereIn('identities.subject', subjects)
      .select('users.*', 'identities.subject as identity_subject')) as (UserRow & { identity_subject: string })[];
    return new Map(rows.map((r) => [r.identity_subject, fromRow(r)]));
  },

  async findByUsername(db: Queryable, key: string): Promise<UserRecord | null> {
    const row = (await db<UserRow>('users').where({ username_key: key }).first()) as UserRow | undefined;
    return row ? fromRow(row) : null;
  },

  async findByEmailKey(db: Queryable, key: string): Promise<UserRecord | null> {
    const row = (await db<UserRow>('users').where({ email_key: key }).first()) as UserRow | undefined;
    return row ? fromRow(row) : null;
  },

  async findByRecoveryCodeFingerprint(db: Queryable, fingerprint: string): Promise<UserRecord | null> {
    const row = (await db<UserRow>('users').where({ recovery_code_fingerprint: fingerprint }).first()) as UserRow | undefined;
    return row ? fromRow(row) : null;
  },

  async findByApiKeyDigest(db: Queryable, digest: string): Promise<UserRecord | null> {
    const row = (await db<UserRow>('users').where({ api_key_digest: digest }).first()) as UserRow | undefined;
    return row ? fromRow(row) : null;
  },

  /** From the counters the database keeps (migration 20261213100000): no scan of the table. */
  async count(db: Queryable): Promise<number> {
    const row = (await db('user_counts').sum({ n: 'n' }).first()) as { n: number | string | null } | undefined;
    return Number(row?.n ?? 0);
  },

  /** Enabled admins other than `exceptId`. */
  async countEnabledAdmins(db: Queryable, role: string, exceptId: number): Promise<number> {
    const row = (await db('users').where({ role, active: true }).whereNot({ id: exceptId }).count({ n: '*' }).first()) as
      | { n: number | string }
      | undefined;
    return Number(row?.n ?? 0);
  },

  async insert(db: Queryable, row: NewUserRow, now: number): Promise<number> {
    const [inserted] = (await db('users')
      .insert({ ...row, created_at: now, updated_at: now })
      .returning('id')) as ({ id: number } | number)[];
    return Number(typeof inserted === 'object' ? inserted.id : inserted);
  },

  /**
   * Inserts the users whose unique columns (username, email, key) are free, in one statement, skipping the
   * others (a row repeating another of the same call is skipped too): the ids of those inserted, by
   * username key. On PostgreSQL a row another transaction is inserting with the same value waits for that
   * transaction to end. `last_active_at`: the accounts are made at sign-in.
   */
  async insertIfFree(db: Queryable, rows: readonly NewUserRow[], now: number): Promise<Map<string, number>> {
    const inserted = (await db('users')
      .insert(rows.map((row) => ({ ...row, created_at: now, updated_at: now, last_active_at: now })))
      .onConflict()
      .ignore()
      .returning(['id', 'username_key'])) as { id: number | string; username_key: string }[];
    return new Map(inserted.map((r) => [r.username_key, Number(r.id)]));
  },

  /** Sets each user's key copy (bound to their id, so written after the insert) in one statement; answers the users. */
  async setKeyCiphers(db: Queryable, ciphers: ReadonlyMap<number, string>, now: number): Promise<UserRecord[]> {
    const ids = [...ciphers.keys()];
    const cases = ids.map(() => 'WHEN ? THEN ?').join(' ');
    const rows = (await db('users')
      .whereIn('id', ids)
      .update({ api_key_cipher: db.raw(`CASE id ${cases} END`, ids.flatMap((id) => [id, ciphers.get(id)!])), updated_at: now })
      .returning('*')) as UserRow[];
    return rows.map(fromRow);
  },

  async removeAll(db: Queryable, ids: readonly number[]): Promise<void> {
    await db('users').whereIn('id', ids).delete();
  },

  async update(db: Queryable, id: number, changes: UserChanges, now: number): Promise<void> {
    await db('users').where({ id }).update({ ...changes, updated_at: now });
  },

  /** The same, answering the user as it now is (null when it is gone). */
  async updateReturning(db: Queryable, id: number, changes: UserChanges, now: number): Promise<UserRecord | null> {
    const [row] = (await db('users').where({ id }).update({ ...changes, updated_at: now }).returning('*')) as UserRow[];
    return row ? fromRow(row) : null;
  },

  async touchLastActive(db: Queryable, id: number, now: number): Promise<void> {
    await db('users').where({ id }).update({ last_active_at: now });
  },

  async remove(db: Queryable, id: number): Promise<void> {
    await db('users').where({ id }).delete();
  },

  /** One page and the total; see list.ts. */
  async list(db: Queryable, q: ListQuery): Promise<{ users: UserRecord[]; total: number; next?: Cursor }> {
    const { rows, next, total } = await listRows<UserRow>(db, q);
    return { users: rows.map(fromRow), total, ...(next ? { next } : {}) };
  },

  /**
   * Takes the users lock inside a transaction: every change that could break a safety rail
   * (the admin set, the first user) holds it, so concurrent changes run one after another.
   */
  /** Members of an organisation: their ids. */
  async idsInOrg(db: Queryable, orgId: number): Promise<number[]> {
    return ((await db('users').where({ org_id: orgId }).select('id')) as { id: number }[]).map((r) => Number(r.id));
  },

  async lock(trx: Knex.Transaction): Promise<void> {
    await trx('locks').where({ name: 'users' }).increment('version', 1);
  },
};
