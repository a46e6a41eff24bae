import type { Knex } from 'knex';
import type { Grant } from './model.js';

type Queryable = Knex | Knex.Transaction;

interface GrantRow {
  id: number | string;
  user_id: number | string;
  type: string;
  resource_id: string;
  actions: string;
  source: string;
  created_at: number | string;
  created_by: number | string | null;
}

export interface NewGrant {
  userId: number;
  type: string;
  resourceId: string;
  actions: readonly string[];
  source: string;
  createdBy: number | null;
}

function toGrant(row: GrantRow): Grant {
  return {
    id: Number(row.id),
    userId: Number(row.user_id),
    type: row.type,
    resourceId: row.resource_id,
    actions: row.actions === '' ? [] : row.actions.split(','),
    source: row.source,
    createdAt: new Date(Number(row.created_at)).toISOString(),
    createdBy: row.created_by === null ? null : Number(row.created_by),
  };
}

const actionsColumn = (actions: readonly string[]) => [...new Set(actions)].sort().join(',');

/** The grants table: SQL only here. */
export const grantsRepo = {
  async ofUser(db: Queryable, userId: number): Promise<Grant[]> {
    const rows = (await db('grants').where({ user_id: userId }).orderBy([{ column: 'type' }, { column: 'resource_id' }])) as GrantRow[];
    return rows.map(toGrant);
  },

  async all(db: Queryable): Promise<Grant[]> {
    return ((await db('grants').select()) as GrantRow[]).map(toGrant);
  },

  async find(db: Queryable, userId: number, grantId: number): Promise<Grant | null> {
    const row = (await db('grants').where({ id: grantId, user_id: userId }).first()) as GrantRow | undefined;
    return row ? toGrant(row) : null;
  },

  /** Inserts; a grant on the same (user, type, resource) fails on the unique index. */
  async insert(trx: Knex.Transaction, g: NewGrant, now: number): Promise<Grant> {
    const [row] = (await trx('grants')
      .insert({ user_id: g.userId, type: g.type, resource_id: g.resourceId, actions: actionsColumn(g.actions), source: g.source, created_at: now, created_by: g.createdBy })
      .returning('*')) as GrantRow[];
    return toGrant(row!);
  },

  async setActions(trx: Knex.Transaction, id: number, actions: readonly string[]): Promise<void> {
    await trx('grants').where({ id }).update({ actions: actionsColumn(actions) });
  },

  /** True when it was there. */
  async remove(trx: Knex.Transaction, id: number): Promise<boolean> {
    return (await trx('grants').where({ id }).delete()) > 0;
  },
};
