import type { Queryable } from '../users/repository.js';
import { MAX_DEVICE_NAMES, type InviteRecord, type RedemptionSummary } from './model.js';

interface InviteRow {
  id: number;
  user_id: number;
  code_fingerprint: string;
  current_for: number | null;
  uses: number | null;
  used: number | string;
  expires_in_days: number | null;
  expires_at: number | string | null;
  created_at: number | string;
  created_by: number | null;
  resent_at: number | string | null;
  ended: string | null;
  ended_at: number | string | null;
}

const time = (v: number | string | null): number | null => (v === null ? null : Number(v));

function fromRow(r: InviteRow): InviteRecord {
  return {
    id: Number(r.id),
    userId: Number(r.user_id),
    current: r.current_for !== null,
    uses: r.uses === null ? null : Number(r.uses),
    used: Number(r.used),
    expiresInDays: r.expires_in_days === null ? null : Number(r.expires_in_days),
    expiresAt: time(r.expires_at),
    createdAt: time(r.created_at)!,
    createdBy: r.created_by === null ? null : Number(r.created_by),
    resentAt: time(r.resent_at),
    ended: r.ended === 'revoked' || r.ended === 'replaced' ? r.ended : null,
    endedAt: time(r.ended_at),
  };
}

export interface NewInvite {
  userId: number;
  fingerprint: string;
  uses: number | null;
  expiresInDays: number | null;
  expiresAt: number | null;
  createdBy: number | null;
}

/**
 * SQL for invites and their redemptions. A redemption (the connect flow) must use one use in the one
 * statement that checks the invite is still redeemable and still has the fingerprint it was found by:
 * `UPDATE invites SET used = used + 1 WHERE id = ? AND code_fingerprint = ? AND current_for IS NOT NULL
 * AND ended IS NULL AND (uses IS NULL OR used < uses) AND (expires_at IS NULL OR expires_at > now)`,
 * then insert its invite_redemptions row in the same transaction. Then a resend or revoke that committed
 * first always wins.
 */
export const invitesRepo = {
  async findById(db: Queryable, id: number): Promise<InviteRecord | null> {
    const row = (await db<InviteRow>('invites').where({ id }).first()) as InviteRow | undefined;
    return row ? fromRow(row) : null;
  },

  async findByFingerprint(db: Queryable, fingerprint: string): Promise<InviteRecord | null> {
    const row = (await db<InviteRow>('invites').where({ code_fingerprint: fingerprint }).first()) as InviteRow | undefined;
    return row ? fromRow(row) : null;
  },

  /** The user's current invite, whatever its state. */
  async findCurrent(db: Queryable, userId: number): Promise<InviteRecord | null> {
    const row = (await db<InviteRow>('invites').where({ current_for: userId }).first()) as InviteRow | undefined;
    return row ? fromRow(row) : null;
  },

  /** Every invite of the user, newest first. */
  async listForUser(db: Queryable, userId: number): Promise<InviteRecord[]> {
    const rows = (await db<InviteRow>('invites').where({ user_id: userId }).orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }])) as InviteRow[];
    return rows.map(fromRow);
  },

  async insert(db: Queryable, invite: NewInvite, now: number): Promise<number> {
    const [inserted] = (await db('invites')
      .insert({
        user_id: invite.userId,
        code_fingerprint: invite.fingerprint,
        current_for: invite.userId,
        uses: invite.uses,
        used: 0,
        expires_in_days: invite.expiresInDays,
        expires_at: invite.expiresAt,
        created_at: now,
        created_by: invite.createdBy,
      })
      .returning('id')) as ({ id: number } | number)[];
    return Number(typeof inserted === 'object' ? inserted.id : inserted);
  },

  /** No longer the user's current invite; `ended` when it could still have been redeemed. */
  async retire(db: Queryable, id: number, ended: 'revoked' | 'replaced' | null, now: number): Promise<void> {
    await db('invites')
      .where({ id })
      .update(ended === null ? { current_for: null } : { current_for: null, ended, ended_at: now });
  },

  /**
   * Uses one use of a redeemable invite that still has `fingerprint`, and notes the device, in one
   * conditional statement: false when a revoke, resend, expiry or the last use got there first.
   */
  async redeem(db: Queryable, id: number, fingerprint: string, device: { name: string; kind: string }, now: number): Promise<boolean> {
    const updated = await db('invites')
      .where({ id, code_fingerprint: fingerprint })
      .whereNotNull('current_for')
      .whereNull('ended')
      .andWhere((q) => q.whereNull('uses').orWhereRaw('used < uses'))
      .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', now))
      .increment('used', 1);
    if (updated !== 1) return false;
    await db('invite_redemptions').insert({ invite_id: id, at: now, device_name: device.name, device_kind: device.kind });
    return true;
  },

  /** A new secret in place: the old fingerprint stops matching as this commits. */
  async resend(db: Queryable, id: number, fingerprint: string, expiresAt: number | null, now: number): Promise<void> {
    await db('invites').where({ id }).update({ code_fingerprint: fingerprint, expires_at: expiresAt, resent_at: now });
  },

  /** Count, last time and the newest device names of each invite's redemptions. */
  async redemptions(db: Queryable, inviteIds: readonly number[]): Promise<Map<number, RedemptionSummary>> {
    const out = new Map<number, RedemptionSummary>();
    if (inviteIds.length === 0) return out;
    for (const id of inviteIds) out.set(id, { count: 0, lastAt: null, devices: [] });
    const totals = (await db('invite_redemptions')
      .whereIn('invite_id', inviteIds)
      .groupBy('invite_id')
      .select('invite_id', db.raw('count(*) as n'), db.raw('max(at) as last'))) as { invite_id: number; n: number | string; last: number | string }[];
    for (const t of totals) Object.assign(out.get(Number(t.invite_id))!, { count: Number(t.n), lastAt: Number(t.last) });
    // The newest names of each invite: an unlimited invite may have been redeemed many times.
    const ranked = db('invite_redemptions')
      .whereIn('invite_id', inviteIds)
      .select('invite_id', 'device_name', 'at', 'id', db.raw('row_number() over (partition by invite_id order by at desc, id desc) as n'))
      .as('ranked');
    const names = (await db
      .select('invite_id', 'device_name')
      .from(ranked)
      .where('n', '<=', MAX_DEVICE_NAMES)
      .orderBy([{ column: 'invite_id' }, { column: 'at', order: 'desc' }, { column: 'id', order: 'desc' }])) as { invite_id: number; device_name: string }[];
    for (const r of names) out.get(Number(r.invite_id))!.devices.push(r.device_name);
    return out;
  },
};
