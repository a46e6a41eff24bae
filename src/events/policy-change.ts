import type { Knex } from 'knex';
import { SYSTEM_ORIGIN, eventOf, type EventStream } from './stream.js';

/**
 * The policy lives in files read at start, so a change shows when an instance starts with a policy whose
 * digest differs from the last one the audit log recorded: that start records `policy.changed` (actor
 * `system`), with the old and new digests. Several instances starting at once may each record it.
 */
export async function recordPolicyChange(db: Knex, events: EventStream, digest: string, roles: number): Promise<boolean> {
  const last = await db('audit_log').where({ type: 'policy.changed' }).orderBy([{ column: 'at', order: 'desc' }, { column: 'id', order: 'desc' }]).first('detail');
  const previous = last ? ((JSON.parse(last.detail as string) as { digest?: string }).digest ?? null) : null;
  if (previous === digest) return false;
  const event = eventOf(SYSTEM_ORIGIN, 'policy.changed', null, { digest, previous, roles });
  await db.transaction((trx) => events.record(trx, [event]));
  await events.publish([event]);
  return true;
}
