import type { Queryable } from '../users/repository.js';

/** One device token as stored: never the token, only its fingerprint. */
export interface DeviceRecord {
  /** The row's id; never shown. */
  rowId: number;
  /** The id GET /me/sessions shows. */
  id: string;
  userId: number;
  name: string;
  userAgent: string | null;
  ip: string | null;
  epoch: number;
  createdAt: number;
  lastUsedAt: number;
}

interface DeviceRow {
  id: number;
  public_id: string;
  user_id: number;
  fingerprint: string;
  name: string;
  user_agent: string | null;
  ip: string | null;
  epoch: number | string;
  created_at: number | string;
  last_used_at: number | string;
}

export type NewDeviceRow = Omit<DeviceRow, 'id'>;

const TABLE = 'device_tokens';
/** The session epoch of a device's user, for a condition on device_tokens. */
const CURRENT_EPOCH = 'select u.session_epoch from users u where u.id = device_tokens.user_id';
const COLUMNS = ['id', 'public_id', 'user_id', 'name', 'user_agent', 'ip', 'epoch', 'created_at', 'last_used_at'] as const;

function fromRow(r: Omit<DeviceRow, 'fingerprint'>): DeviceRecord {
  return {
    rowId: Number(r.id),
    id: r.public_id,
    userId: Number(r.user_id),
    name: r.name,
    userAgent: r.user_agent,
    ip: r.ip,
    epoch: Number(r.epoch),
    createdAt: Number(r.created_at),
    lastUsedAt: Number(r.last_used_at),
  };
}

/** The device_tokens table. */
export const devicesRepo = {
  async insert(db: Queryable, row: NewDeviceRow): Promise<void> {
    await db(TABLE).insert(row);
  },

  async findByFingerprint(db: Queryable, fingerprint: string): Promise<DeviceRecord | null> {
    const row = await db(TABLE).select(COLUMNS).where({ fingerprint }).first();
    return row ? fromRow(row) : null;
  },

  /** The user's devices not left behind by a change of their epoch, oldest first. */
  async listByUser(db: Queryable, userId: number): Promise<DeviceRecord[]> {
    const rows = await db(TABLE)
      .select(COLUMNS)
      .where({ user_id: userId })
      .andWhereRaw(`epoch >= (${CURRENT_EPOCH})`)
      .orderBy('created_at')
      .orderBy('id');
    return rows.map(fromRow);
  },

  /** Deletes one of the user's devices by its public id; answers whether there was one. */
  async removeOne(db: Queryable, userId: number, publicId: string): Promise<boolean> {
    return (await db(TABLE).where({ user_id: userId, public_id: publicId }).delete()) > 0;
  },

  /** Deletes every device of the user but `keep` (a public id); answers how many. */
  async removeAll(db: Queryable, userId: number, keep?: string): Promise<number> {
    const q = db(TABLE).where({ user_id: userId });
    if (keep !== undefined) q.whereNot({ public_id: keep });
    return q.delete();
  },

  async removeByRowId(db: Queryable, rowId: number): Promise<void> {
    await db(TABLE).where({ id: rowId }).delete();
  },

  async setEpoch(db: Queryable, userId: number, publicId: string, epoch: number): Promise<void> {
    await db(TABLE).where({ user_id: userId, public_id: publicId }).update({ epoch });
  },

  /** Records a use; never moves last_used_at backwards, never brings back a deleted row. */
  async touch(db: Queryable, rowId: number, at: number, ip: string | null): Promise<void> {
    await db(TABLE).where({ id: rowId }).andWhere('last_used_at', '<', at).update({ last_used_at: at, ip });
  },

  /** Deletes the devices unused since `before`, and those from before their user's current session epoch. */
  async prune(db: Queryable, before: number): Promise<number> {
    return db(TABLE)
      .where('last_used_at', '<', before)
      .orWhereRaw(`epoch < (${CURRENT_EPOCH})`)
      .delete();
  },
};
