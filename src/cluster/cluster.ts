import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { EventStream, EventType } from '../events/stream.js';
import { ChangeLog, staleUserOf } from './changes.js';
import { RedisChannel, type ChangeMessage } from './redis-channel.js';

/** Changes that other instances install by reading the policy again (custom roles, users' direct permissions). */
const POLICY_CHANGES: ReadonlySet<string> = new Set<EventType>(['policy.changed']);
/** Changes that other instances install by reading the user's grants again (a new user's defaults are grant.created too). */
const GRANT_CHANGES: ReadonlySet<string> = new Set<EventType>(['grant.created', 'grant.revoked']);

export interface ClusterOptions {
  readonly db: Knex;
  readonly events: EventStream;
  readonly log: Logger;
  /** Redis, when configured: changes go to the other instances at once. */
  readonly redis?: { readonly url: string; readonly prefix: string };
  /** Installs the database's policy if another instance changed it (authz.sync()). */
  readonly syncPolicy: () => Promise<unknown>;
  /** Reads again the grants other instances changed (grants.sync()). */
  readonly syncGrants: () => Promise<unknown>;
}

/**
 * Keeps this instance's caches in step with the others sharing its database. Two paths, both always on:
 * - with Redis, every change published here is sent on the `<prefix>cluster` channel after its commit; the
 *   other instances drop that user's cache entries (the event stream's `changedElsewhere`) and read the
 *   policy or grants again at once;
 * - the database's change log (cluster_changes), read at each `cluster.pollInterval` by `sync()`, which the
 *   policy poll calls: the only path without Redis, and the one that covers a Redis outage.
 * Caches never hold an entry longer than their TTL whatever happens here: both paths only make it shorter.
 */
export class Cluster {
  /** This process, among the instances: random at each start. */
  readonly instance = randomBytes(8).toString('hex');
  readonly changes: ChangeLog;
  private channel: RedisChannel | undefined;

  private constructor(private readonly options: ClusterOptions) {
    this.changes = new ChangeLog(options.db, options.events, this.instance, options.log);
  }

  static async start(options: ClusterOptions): Promise<Cluster> {
    const cluster = new Cluster(options);
    await cluster.changes.start();
    if (options.redis) await cluster.subscribe(options.redis);
    return cluster;
  }

  private async subscribe(redis: { url: string; prefix: string }): Promise<void> {
    const { events, log } = this.options;
    const syncPolicy = coalesced(this.options.syncPolicy, log, 'policy');
    const syncGrants = coalesced(this.options.syncGrants, log, 'grants');
    // What was missed while the subscription was down or coming back is dropped (the next poll reads the rest).
    const forgetEveryone = () => {
      events.changedElsewhere(null);
      syncPolicy();
      syncGrants();
    };
    const channel = await RedisChannel.open(redis.url, `${redis.prefix}cluster`, log, {
      message: (m) => {
        if (m.from === this.instance) return;
        if (m.user !== undefined) events.changedElsewhere(m.user);
        if (POLICY_CHANGES.has(m.type)) syncPolicy();
        if (GRANT_CHANGES.has(m.type)) syncGrants();
      },
      lost: forgetEveryone,
      restored: forgetEveryone,
    });
    this.channel = channel;
    // After the commit (publish() runs then), never inside the transaction.
    events.on((e) => {
      const user = staleUserOf(e);
      if (user === undefined && !POLICY_CHANGES.has(e.type) && !GRANT_CHANGES.has(e.type)) return;
      const message: ChangeMessage = { from: this.instance, type: e.type, ...(user !== undefined ? { user } : {}) };
      channel.publish(message);
    });
  }

  /** Whether changes arrive through Redis now (false without Redis, or while its subscription is down). */
  get subscribed(): boolean {
    return this.channel?.subscribed ?? false;
  }

  async close(): Promise<void> {
    await this.channel?.close();
    await this.changes.close();
  }
}

/** Runs `fn` now, or once more after the run under way when called during it: a burst of messages costs two runs. */
function coalesced(fn: () => Promise<unknown>, log: Logger, what: string): () => void {
  let running = false;
  let again = false;
  const run = () => {
    running = true;
    again = false;
    fn()
      .catch((err: unknown) => log.warn({ err }, `cluster: could not read the ${what} another instance changed; the poll tries again`))
      .finally(() => {
        running = false;
        if (again) run();
      });
  };
  return () => {
    if (running) again = true;
    else run();
  };
}
