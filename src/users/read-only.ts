import { isDeepStrictEqual } from 'node:util';
import type { PublicUser } from './model.js';

/** Times the server moves by itself: a copy read earlier may hold an older time, or null, never a later one. */
const MOVING_TIMES: ReadonlySet<string> = new Set(['updatedAt', 'lastActiveAt', 'lastLoginAt']);
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** States others move (the user mints and removes their recovery code): a copy read earlier may hold any of them. */
const MOVING_STATES: ReadonlyMap<string, readonly unknown[]> = new Map([['recoveryCode', ['set', 'none']]]);

/** Writable, but needs a capability to change: sent as it is, it is no change and needs none. */
const KEPT_IF_SAME: ReadonlySet<string> = new Set(['role', 'passwordLogin', 'organizationId', 'orgRole']);

/** Whether `sent` is a value the server returned for this field, now or (a moving time) earlier. */
function asReturned(field: string, sent: unknown, now: unknown): boolean {
  if (isDeepStrictEqual(sent, now) || MOVING_STATES.get(field)?.includes(sent)) return true;
  if (!MOVING_TIMES.has(field) || typeof now !== 'string') return false;
  // Times of this one format compare as strings.
  return sent === null || (typeof sent === 'string' && ISO.test(sent) && sent <= now);
}

/**
 * A body sent back whole, as react-admin's `<Edit>` does (the record it read, with the user's edits),
 * without what it does not change: the fields of the user object that `writable` does not take (`id`,
 * `createdAt`, `hasPassword`...), and `role`, when they hold the value the server returned.
 * `readOnly` names the first read-only field sent with another value; it stays in `body`.
 * Fields the user object does not have stay too, for the schema to refuse.
 */
export function dropUnchanged(
  body: Record<string, unknown>,
  current: PublicUser,
  writable: ReadonlySet<string>,
): { body: Record<string, unknown>; readOnly?: string } {
  let readOnly: string | undefined;
  const kept = Object.entries(body).filter(([field, value]) => {
    const checked = Object.hasOwn(current, field) && (!writable.has(field) || KEPT_IF_SAME.has(field));
    if (checked && asReturned(field, value, current[field as keyof PublicUser])) return false;
    if (checked && !writable.has(field)) readOnly ??= field;
    return true;
  });
  // fromEntries defines own properties: a "__proto__" key stays a key, for the schema to refuse.
  const rest = Object.fromEntries(kept);
  return readOnly === undefined ? { body: rest } : { body: rest, readOnly };
}

/** Whether the body holds a field `dropUnchanged` may drop, so the current record is needed. */
export function mayHoldUnchanged(body: Record<string, unknown>, writable: ReadonlySet<string>): boolean {
  return Object.keys(body).some((field) => !writable.has(field) || KEPT_IF_SAME.has(field));
}
