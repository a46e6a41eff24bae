/** What an invite is now: redeemable (`pending`), or why not. */
export type InviteState = 'pending' | 'used_up' | 'expired' | 'revoked' | 'replaced';
export const INVITE_STATES: readonly InviteState[] = ['pending', 'used_up', 'expired', 'revoked', 'replaced'];

/** An invite as stored, without its fingerprint. */
export interface InviteRecord {
  id: number;
  userId: number;
  /** The user's current invite (at most one is). */
  current: boolean;
  /** null: unlimited. */
  uses: number | null;
  used: number;
  /** The window given at creation, again at each resend; null: never expires. */
  expiresInDays: number | null;
  expiresAt: number | null;
  createdAt: number;
  /** The admin who created it; null when it was not a user. */
  createdBy: number | null;
  resentAt: number | null;
  ended: 'revoked' | 'replaced' | null;
  endedAt: number | null;
}

export interface RedemptionSummary {
  count: number;
  lastAt: number | null;
  /** Device names, newest first, at most `MAX_DEVICE_NAMES`. */
  devices: string[];
}

export const MAX_DEVICE_NAMES = 20;

/** Revoked and replaced come first: they are final. A spent invite that has also expired reads as used up. */
export function stateOf(i: InviteRecord, now: number): InviteState {
  if (i.ended !== null) return i.ended;
  if (i.uses !== null && i.used >= i.uses) return 'used_up';
  if (i.expiresAt !== null && now >= i.expiresAt) return 'expired';
  return 'pending';
}

const DAY_MS = 86_400_000;

/** When an invite given `days` at `from` expires; null for never. */
export const expiryFrom = (from: number, days: number | null): number | null => (days === null ? null : from + days * DAY_MS);

/** An invite as the API answers: times in ISO-8601 UTC. */
export interface PublicInvite {
  id: number;
  userId: number;
  state: InviteState;
  uses: number | null;
  usesLeft: number | null;
  expiresInDays: number | null;
  expiresAt: string | null;
  createdAt: string;
  createdBy: number | null;
  resentAt: string | null;
  endedAt: string | null;
  redemptions: { count: number; lastAt: string | null; devices: string[] };
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function toPublicInvite(i: InviteRecord, redemptions: RedemptionSummary, now: number): PublicInvite {
  return {
    id: i.id,
    userId: i.userId,
    state: stateOf(i, now),
    uses: i.uses,
    usesLeft: i.uses === null ? null : Math.max(0, i.uses - i.used),
    expiresInDays: i.expiresInDays,
    expiresAt: iso(i.expiresAt),
    createdAt: iso(i.createdAt)!,
    createdBy: i.createdBy,
    resentAt: iso(i.resentAt),
    endedAt: iso(i.endedAt),
    redemptions: { count: redemptions.count, lastAt: iso(redemptions.lastAt), devices: redemptions.devices },
  };
}
