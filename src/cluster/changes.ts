import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { EventStream, EventType, UsherEvent } from '../events/stream.js';

/**
 * Events that change nothing another instance caches of the user: authentication noise, and a creation (no
 * instance holds an entry of a user who did not exist; a first login must not cost a row), save an admin's.
 * Never a row.
 */
const NOT_CHANGES: ReadonlySet<EventType> = new Set(['login.succeeded', 'login.failed', 'login.rate_limited', 'session.created', 'proxy.untrusted_headers', 'invite.redeem_failed', 'user.created']);

/**
 * Whose cached entries an event makes stale on other instances: a user id, null for everyone's (an identity
 * provider's logout, which names no user), or undefined for none (a policy or organisation change holds no
 * user's entry: the policy poll installs it).
 */
export function staleUserOf(event: UsherEvent): number | null | undefined {
  // A new admin raises the admin count: answers another instance held back by the last-admin rail (a
  // proxy login's role sync) must go, and telling of the new user drops them (UserCache.forgetUser).
  if (event.type === 'user.created' && event.detail.role === 'admin') return event.targetUserId;
  if (NOT_CHANGES.has(event.type)) return undefined;
  if (event.targetUserId !== null) return event.targetUserId;
  return event.type === 'session.ended' ? null : undefined;
}

/** How long sync() waits for a skipped number: far longer than any transaction stays open. A change seen later still costs at most the cache TTL. */
const WINDOW_MS = 60_000;

/** Past this many numbers missing at once, they are not tracked (a jump, not a few transactions still open). */
const MAX_GAPS = 10_000;
/** How far below the top start() looks for numbers still open. */
const START_GAPS = 1_000;

/**
 * The database's log of changes other instances cache (table cluster_changes), for instances sharing a
 * database without Redis, and for any instance while its Redis subscription is down. A change's row is
 * written in its transaction (a recorder of the event stream); a change with no transaction (a logout: the
 * session store is not the database's transaction) gets its row once published. `sync()`, called at every
 * `cluster.pollInterval`, tells the event stream about rows other instances wrote (`changedElsewhere`).
 *
 * A transaction that took its number earlier may commit later: sync() reads past the last number read, and
 * again from each number it skipped (a gap), until that number shows up or is older than a minute (rolled
 * back, or so late that the cache TTL has the last word). So each poll reads only new rows.
 */
export class ChangeLog {
  /** The highest number read; from start(), the table's highest then. */
  private high = 0;
  /** Numbers below `high` not read yet (seq → when first missed). */
  private readonly gaps = new Map<number, number>();
  /** Events whose row their transaction wrote. */
  private readonly written = new WeakSet<UsherEvent>();
  /** Rows being written after a publication: close() waits for them. */
  private readonly writing = new Set<Promise<void>>();
  private prunedAt = 0;

  constructor(
    private readonly db: Knex,
    private readonly events: EventStream,
    private readonly instance: string,
    log: Logger,
  ) {
    events.recordWith(async (trx, batch) => {
      const rows = this.rowsOf(batch);
      for (const e of batch) this.written.add(e);
      if (rows.length > 0) await trx('cluster_changes').insert(rows);
    });
    events.on((e) => {
      if (this.written.has(e)) return;
      const rows = this.rowsOf([e]);
      if (rows.length === 0) return;
      const write: Promise<void> = this.db('cluster_changes')
        .insert(rows)
        .then(
          () => undefined,
          (err: unknown) => log.warn({ err, event: e.type }, 'cluster: could not note a change for other instances; they see it within the cache TTL'),
        )
        .finally(() => this.writing.delete(write));
      this.writing.add(write);
      return write;
    });
  }

  /** Waits for the rows being written (before the database closes). */
  async close(): Promise<void> {
    await Promise.all(this.writing);
  }

  private rowsOf(batch: readonly UsherEvent[]) {
    const now = Date.now();
    const rows: { user_id: number | null; instance: string; at: number }[] = [];
    for (const e of batch) {
      const user = staleUserOf(e);
      if (user !== undefined) rows.push({ user_id: user, instance: this.instance, at: now });
    }
    return rows;
  }

  /** Starts past what is noted already (this instance's caches were empty then): before the instance serves anything. */
  async start(now = Date.now()): Promise<void> {
    const row = (await this.db('cluster_changes').max({ high: 'seq' }).first()) as { high: number | string | null } | undefined;
    this.high = Number(row?.high ?? 0);
    // A number below the top that is not there yet may be a transaction still open: read it when it commits.
    // Only above the lowest row read: those below it were pruned, not left open.
    const recent = ((await this.db('cluster_changes').where('seq', '>', this.high - START_GAPS).select('seq')) as { seq: number | string }[]).map((r) => Number(r.seq));
    const present = new Set(recent);
    for (let seq = Math.min(...recent) + 1; seq < this.high; seq++) if (!present.has(seq)) this.gaps.set(seq, now);
  }

  /** Tells the event stream about the changes other instances noted since the last call; answers how many users (or everyone) it told of. */
  async sync(now = Date.now()): Promise<number> {
    for (const [seq, at] of this.gaps) if (at < now - WINDOW_MS) this.gaps.delete(seq);
    let from = this.high;
    for (const seq of this.gaps.keys()) from = Math.min(from, seq - 1);
    const rows = (await this.db('cluster_changes').where('seq', '>', from).orderBy('seq').select('seq', 'user_id', 'instance')) as {
      seq: number | string;
      user_id: number | string | null;
      instance: string;
    }[];
    const users = new Set<number | null>();
    for (const row of rows) {
      const seq = Number(row.seq);
      if (seq > this.high) {
        if (seq - this.high - 1 <= MAX_GAPS) for (let missed = this.high + 1; missed < seq; missed++) this.gaps.set(missed, now);
        this.high = seq;
      } else if (!this.gaps.delete(seq)) continue; // read already
      if (row.instance !== this.instance) users.add(row.user_id === null ? null : Number(row.user_id));
    }
    if (users.has(null)) this.events.changedElsewhere(null);
    else for (const user of users) this.events.changedElsewhere(user);
    if (now - this.prunedAt > WINDOW_MS) {
      this.prunedAt = now;
      await this.db('cluster_changes').where('at', '<', now - 10 * WINDOW_MS).delete();
    }
    return users.size;
  }
}
