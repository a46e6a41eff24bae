import type { Queryable } from './repository.js';

/** SQL for external identities (provider, subject) → user, and nothing else. */
export const identitiesRepo = {
  /** The id of the user linked to (provider, subject), or null. */
  async findUserId(db: Queryable, provider: string, subject: string): Promise<number | null> {
    const row = (await db('identities').where({ provider, subject }).first('user_id')) as { user_id: number | string } | undefined;
    return row ? Number(row.user_id) : null;
  },

  async insert(db: Queryable, userId: number, provider: string, subject: string, now: number): Promise<void> {
    await db('identities').insert({ user_id: userId, provider, subject, created_at: now });
  },

  /** Links each (provider, subject) to its user in one statement, skipping those linked already: the users linked. */
  async insertIfFree(db: Queryable, links: readonly { userId: number; provider: string; subject: string }[], now: number): Promise<Set<number>> {
    const rows = (await db('identities')
      .insert(links.map((l) => ({ user_id: l.userId, provider: l.provider, subject: l.subject, created_at: now })))
      .onConflict(['provider', 'subject'])
      .ignore()
      .returning('user_id')) as { user_id: number | string }[];
    return new Set(rows.map((r) => Number(r.user_id)));
  },
};
