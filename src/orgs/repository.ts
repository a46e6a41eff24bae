import type { Knex } from 'knex';

type Queryable = Knex | Knex.Transaction;

/** An organisation as stored. */
export interface Organization {
  id: number;
  name: string;
  description: string;
  createdAt: number;
  updatedAt: number;
}

interface OrgRow {
  id: number;
  name: string;
  name_key: string;
  description: string;
  created_at: number | string;
  updated_at: number | string;
}

const fromRow = (r: OrgRow): Organization => ({
  id: Number(r.id),
  name: r.name,
  description: r.description,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

/** SQL for organisations, and nothing else. */
export const orgsRepo = {
  async list(db: Queryable): Promise<Organization[]> {
    return ((await db<OrgRow>('organizations').orderBy('name_key').orderBy('id')) as OrgRow[]).map(fromRow);
  },

  async find(db: Queryable, id: number): Promise<Organization | null> {
    const row = (await db<OrgRow>('organizations').where({ id }).first()) as OrgRow | undefined;
    return row ? fromRow(row) : null;
  },

  /** The organisation, its row locked until the transaction ends (a member added meanwhile waits). */
  async findForUpdate(trx: Knex.Transaction, id: number): Promise<Organization | null> {
    const row = (await trx<OrgRow>('organizations').where({ id }).forUpdate().first()) as OrgRow | undefined;
    return row ? fromRow(row) : null;
  },

  async findByName(db: Queryable, name: string): Promise<Organization | null> {
    const row = (await db<OrgRow>('organizations').where({ name_key: name.toLowerCase() }).first()) as OrgRow | undefined;
    return row ? fromRow(row) : null;
  },

  async insert(db: Queryable, org: { name: string; description: string }, now: number): Promise<number> {
    const [inserted] = (await db('organizations')
      .insert({ name: org.name, name_key: org.name.toLowerCase(), description: org.description, created_at: now, updated_at: now })
      .returning('id')) as ({ id: number } | number)[];
    return Number(typeof inserted === 'object' ? inserted.id : inserted);
  },

  async update(db: Queryable, id: number, changes: { name?: string; description?: string }, now: number): Promise<void> {
    const row: Record<string, unknown> = { updated_at: now };
    if (changes.name !== undefined) Object.assign(row, { name: changes.name, name_key: changes.name.toLowerCase() });
    if (changes.description !== undefined) row.description = changes.description;
    await db('organizations').where({ id }).update(row);
  },

  async remove(db: Queryable, id: number): Promise<void> {
    await db('organizations').where({ id }).delete();
  },

  async countMembers(db: Queryable, id: number): Promise<number> {
    const row = (await db('users').where({ org_id: id }).count({ n: '*' }).first()) as { n: number | string } | undefined;
    return Number(row?.n ?? 0);
  },

  /** Takes every member out (and their organisation role with it); answers their ids. */
  async detachMembers(trx: Knex.Transaction, id: number, now: number): Promise<number[]> {
    const ids = ((await trx('users').where({ org_id: id }).select('id')) as { id: number }[]).map((r) => Number(r.id));
    if (ids.length > 0) await trx('users').where({ org_id: id }).update({ org_id: null, org_role: null, updated_at: now });
    return ids;
  },
};
