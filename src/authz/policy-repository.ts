import type { Knex } from 'knex';

type Queryable = Knex | Knex.Transaction;

export interface RoleRow {
  name: string;
  description: string;
  builtIn: boolean;
}

/** The policy's rules as rows: (role, object, action), (role, inherited role), (user id, object, action). */
export interface PolicyRows {
  roles: RoleRow[];
  inherits: [string, string][];
  permissions: [string, string, string][];
  direct: [number, string, string][];
  /** (user id, organisation id, object, action): granted in that organisation only. */
  orgDirect?: [number, number, string, string][];
}

const pair = (p: string) => {
  const at = p.indexOf('.');
  return { object: p.slice(0, at), action: p.slice(at + 1) };
};

/**
 * The SQL of the policy tables. Every write is incremental (the rows that change), never a rewrite of the
 * whole policy, and runs in the transaction of the change that records its audit event.
 */
export const policyRepo = {
  async readAll(db: Queryable): Promise<PolicyRows> {
    const roles = (await db('roles').select('name', 'description', 'built_in').orderBy('name')) as { name: string; description: string; built_in: boolean | number }[];
    const inherits = (await db('role_inherits').select('role', 'inherits').orderBy(['role', 'inherits'])) as { role: string; inherits: string }[];
    const permissions = (await db('role_permissions').select('role', 'object', 'action').orderBy(['role', 'object', 'action'])) as { role: string; object: string; action: string }[];
    const direct = (await db('user_permissions').whereNull('org_id').select('user_id', 'object', 'action')) as { user_id: number; object: string; action: string }[];
    const orgDirect = (await db('user_permissions').whereNotNull('org_id').select('user_id', 'org_id', 'object', 'action')) as { user_id: number; org_id: number; object: string; action: string }[];
    return {
      roles: roles.map((r) => ({ name: r.name, description: r.description, builtIn: Boolean(r.built_in) })),
      inherits: inherits.map((r) => [r.role, r.inherits]),
      permissions: permissions.map((r) => [r.role, r.object, r.action]),
      direct: direct.map((r) => [Number(r.user_id), r.object, r.action]),
      orgDirect: orgDirect.map((r) => [Number(r.user_id), Number(r.org_id), r.object, r.action]),
    };
  },

  /** Serialises policy changes with each other and with users' role changes (one lock: never a deadlock). */
  async lock(trx: Knex.Transaction): Promise<void> {
    await trx('locks').where({ name: 'users' }).increment('version', 1);
  },

  /** The policy's version: it moves on with every change of the policy (see bump). */
  async version(db: Queryable): Promise<number> {
    const row = (await db('locks').where({ name: 'policy' }).first('version')) as { version: number | string } | undefined;
    return Number(row?.version ?? 0);
  },

  /** Marks a change of the policy, under the lock. */
  async bump(trx: Knex.Transaction): Promise<void> {
    await trx('locks').where({ name: 'policy' }).increment('version', 1);
  },

  /**
   * Writes policy.csv's roles into the tables as built-ins: missing rows are added, rows the file no longer
   * has are removed (its roles' permissions and inheritance only). A role the file stops naming stays, as
   * a custom role.
   */
  async syncBuiltIns(trx: Knex.Transaction, file: Omit<PolicyRows, 'direct'>, now: number): Promise<void> {
    await policyRepo.lock(trx);
    await policyRepo.bump(trx);
    const existing = new Map(((await trx('roles').select('name', 'built_in')) as { name: string; built_in: boolean | number }[]).map((r) => [r.name, Boolean(r.built_in)]));
    const names = new Set(file.roles.map((r) => r.name));
    for (const role of file.roles) {
      if (!existing.has(role.name)) await trx('roles').insert({ name: role.name, description: role.description, built_in: true, created_at: now, updated_at: now });
      else if (!existing.get(role.name)) await trx('roles').where({ name: role.name }).update({ built_in: true, updated_at: now });
    }
    const retired = [...existing].filter(([name, builtIn]) => builtIn && !names.has(name)).map(([name]) => name);
    if (retired.length > 0) await trx('roles').whereIn('name', retired).update({ built_in: false, updated_at: now });
    for (const name of names) {
      await policyRepo.setInherits(trx, name, file.inherits.filter(([m]) => m === name).map(([, r]) => r));
      await policyRepo.setPermissions(trx, name, file.permissions.filter(([s]) => s === name).map(([, o, a]) => `${o}.${a}`));
    }
  },

  async findRole(db: Queryable, name: string): Promise<RoleRow | null> {
    const row = (await db('roles').where({ name }).first('name', 'description', 'built_in')) as { name: string; description: string; built_in: boolean | number } | undefined;
    return row ? { name: row.name, description: row.description, builtIn: Boolean(row.built_in) } : null;
  },

  async insertRole(trx: Knex.Transaction, role: { name: string; description: string }, now: number): Promise<void> {
    await trx('roles').insert({ name: role.name, description: role.description, built_in: false, created_at: now, updated_at: now });
  },

  async updateRole(trx: Knex.Transaction, name: string, changes: { name?: string; description?: string }, now: number): Promise<void> {
    if (changes.name !== undefined && changes.name !== name) {
      // No ON UPDATE CASCADE on the keys: a new row, the rows that name it moved over, the old one removed.
      const old = (await policyRepo.findRole(trx, name))!;
      await trx('roles').insert({ name: changes.name, description: changes.description ?? old.description, built_in: false, created_at: now, updated_at: now });
      await trx('role_inherits').where({ role: name }).update({ role: changes.name });
      await trx('role_inherits').where({ inherits: name }).update({ inherits: changes.name });
      await trx('role_permissions').where({ role: name }).update({ role: changes.name });
      await trx('users').where({ role: name }).update({ role: changes.name });
      await trx('users').where({ org_role: name }).update({ org_role: changes.name });
      await trx('roles').where({ name }).delete();
      return;
    }
    await trx('roles').where({ name }).update({ ...(changes.description !== undefined ? { description: changes.description } : {}), updated_at: now });
  },

  /** Makes the role inherit exactly `roles`; answers what was added and removed. */
  async setInherits(trx: Knex.Transaction, role: string, roles: readonly string[]): Promise<{ added: string[]; removed: string[] }> {
    const now = ((await trx('role_inherits').where({ role }).select('inherits')) as { inherits: string }[]).map((r) => r.inherits);
    const added = roles.filter((r) => !now.includes(r));
    const removed = now.filter((r) => !roles.includes(r));
    if (removed.length > 0) await trx('role_inherits').where({ role }).whereIn('inherits', removed).delete();
    if (added.length > 0) await trx('role_inherits').insert(added.map((inherits) => ({ role, inherits })));
    return { added, removed };
  },

  /** Gives the role exactly `permissions` (`object.action`); answers what was added and removed. */
  async setPermissions(trx: Knex.Transaction, role: string, permissions: readonly string[]): Promise<{ added: string[]; removed: string[] }> {
    const now = ((await trx('role_permissions').where({ role }).select('object', 'action')) as { object: string; action: string }[]).map((r) => `${r.object}.${r.action}`);
    const added = permissions.filter((p) => !now.includes(p));
    const removed = now.filter((p) => !permissions.includes(p));
    for (const p of removed) await trx('role_permissions').where({ role, ...pair(p) }).delete();
    if (added.length > 0) await trx('role_permissions').insert(added.map((p) => ({ role, ...pair(p) })));
    return { added, removed };
  },

  async deleteRole(trx: Knex.Transaction, name: string): Promise<void> {
    await trx('roles').where({ name }).delete();
  },

  async countHolders(db: Queryable, role: string): Promise<number> {
    // An organisation role held counts too (users.org_role).
    const row = (await db('users').where({ role }).orWhere({ org_role: role }).count({ n: '*' }).first()) as { n: number | string } | undefined;
    return Number(row?.n ?? 0);
  },

  async inheritedBy(db: Queryable, role: string): Promise<string[]> {
    return ((await db('role_inherits').where({ inherits: role }).select('role')) as { role: string }[]).map((r) => r.role);
  },

  /** Moves every holder of `from` to `to`; answers their ids. */
  async moveHolders(trx: Knex.Transaction, from: string, to: string, now: number): Promise<number[]> {
    const ids = ((await trx('users').where({ role: from }).select('id')) as { id: number }[]).map((r) => Number(r.id));
    if (ids.length > 0) await trx('users').where({ role: from }).update({ role: to, updated_at: now });
    // Organisation roles move too; their holders keep their organisation.
    await trx('users').where({ org_role: from }).update({ org_role: to, updated_at: now });
    return ids;
  },

  async directOf(db: Queryable, userId: number): Promise<string[]> {
    const rows = (await db('user_permissions').where({ user_id: userId }).whereNull('org_id').select('object', 'action')) as { object: string; action: string }[];
    return rows.map((r) => `${r.object}.${r.action}`).sort();
  },

  /** Grants everywhere (`orgId` null), or in one organisation only. */
  async grant(trx: Knex.Transaction, userId: number, permissions: readonly string[], by: number | null, now: number, orgId: number | null = null): Promise<void> {
    if (permissions.length === 0) return;
    await trx('user_permissions').insert(permissions.map((p) => ({ user_id: userId, ...pair(p), org_id: orgId, created_at: now, created_by: by })));
  },

  /** Permissions granted in one organisation only. */
  async orgDirectOf(db: Queryable, userId: number, orgId: number): Promise<string[]> {
    const rows = (await db('user_permissions').where({ user_id: userId, org_id: orgId }).select('object', 'action')) as { object: string; action: string }[];
    return rows.map((r) => `${r.object}.${r.action}`).sort();
  },

  /** Revokes the global grants, or those of one organisation. */
  async revoke(trx: Knex.Transaction, userId: number, permissions: readonly string[], orgId: number | null = null): Promise<void> {
    for (const p of permissions) {
      const q = trx('user_permissions').where({ user_id: userId, ...pair(p) });
      await (orgId === null ? q.whereNull('org_id') : q.where({ org_id: orgId })).delete();
    }
  },
};
