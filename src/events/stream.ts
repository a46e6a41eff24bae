import type { Knex } from 'knex';
import type { Logger } from 'pino';

/** Who acted: a signed-in user (and how they proved it), Usher itself, the break-glass CLI, or an identity provider. */
export type Actor =
  | { readonly kind: 'user'; readonly userId: number; readonly method: string }
  | { readonly kind: 'system' }
  | { readonly kind: 'anonymous' }
  | { readonly kind: 'cli' }
  | { readonly kind: 'idp'; readonly provider: string };

export const SYSTEM: Actor = Object.freeze({ kind: 'system' });
export const CLI: Actor = Object.freeze({ kind: 'cli' });
export const ANONYMOUS: Actor = Object.freeze({ kind: 'anonymous' });

/** What happened. Changes are written in the transaction that makes them; authentication events in batches. */
export type EventType =
  | 'user.created'
  | 'user.updated'
  | 'user.role_changed'
  | 'user.disabled'
  | 'user.enabled'
  | 'user.deleted'
  | 'user.password_changed'
  | 'user.password_reset'
  | 'user.password_cleared'
  | 'user.password_login_changed'
  | 'apikey.rotated'
  | 'api_key.created'
  | 'api_key.revoked'
  | 'invite.created'
  | 'invite.resent'
  | 'invite.revoked'
  | 'invite.redeemed'
  | 'invite.redeem_failed'
  | 'recovery_code.redeemed'
  | 'recovery_code.created'
  | 'recovery_code.revoked'
  | 'idp.role_synced'
  | 'identity.linked'
  | 'login.succeeded'
  | 'login.failed'
  | 'login.rate_limited'
  | 'session.created'
  | 'session.ended'
  | 'proxy.untrusted_headers'
  | 'policy.changed'
  | 'grant.created'
  | 'grant.revoked'
  | 'org.created'
  | 'org.updated'
  | 'org.deleted'
  | 'user.org_changed'
  | 'idp.org_role_synced';

export const EVENT_TYPES: readonly EventType[] = [
  'user.created',
  'user.updated',
  'user.role_changed',
  'user.disabled',
  'user.enabled',
  'user.deleted',
  'user.password_changed',
  'user.password_reset',
  'user.password_cleared',
  'user.password_login_changed',
  'apikey.rotated',
  'api_key.created',
  'api_key.revoked',
  'invite.created',
  'invite.resent',
  'invite.revoked',
  'invite.redeemed',
  'invite.redeem_failed',
  'recovery_code.redeemed',
  'recovery_code.created',
  'recovery_code.revoked',
  'idp.role_synced',
  'identity.linked',
  'login.succeeded',
  'login.failed',
  'login.rate_limited',
  'session.created',
  'session.ended',
  'proxy.untrusted_headers',
  'policy.changed',
  'grant.created',
  'grant.revoked',
  'org.created',
  'org.updated',
  'org.deleted',
  'user.org_changed',
  'idp.org_role_synced',
];

/** Small, flat, and never a secret (no password, key, hash or session id). */
export type EventDetail = Readonly<Record<string, string | number | boolean | null>>;

/** What subscribers in this process may also need, never written anywhere. */
export interface EventContext {
  /** The user as it now is (as it was, for a deletion): host hooks and caches. */
  readonly user?: import('../users/model.js').User;
  /** The session that made a self-service password change: kept while the others end. */
  readonly keepSession?: string;
  /** The change made the user's sessions useless (the epoch moved on): they are to be removed. */
  readonly endsSessions?: boolean;
  /** With endsSessions: the user's new session epoch, which the kept session (a device token's) moves to. */
  readonly sessionEpoch?: number;
}

export interface UsherEvent {
  readonly type: EventType;
  readonly actor: Actor;
  /** The user acted on, or null (a failed login of an unknown name). */
  readonly targetUserId: number | null;
  /** The client address of the request that caused it, when there was one. */
  readonly ip: string | null;
  readonly at: number;
  readonly detail: EventDetail;
  readonly context?: EventContext;
}

/** What a request or command says about itself when it asks for a change. */
export interface Origin {
  readonly actor: Actor;
  readonly ip?: string | null;
  /**
   * What the request's credential limits the actor to (a scoped key's scope, a device token's withheld
   * permissions): checks that the actor grants nothing they lack apply it too. Never recorded.
   */
  readonly limits?: { readonly scope?: ReadonlySet<string>; readonly withhold?: ReadonlySet<string> };
}

export const SYSTEM_ORIGIN: Origin = Object.freeze({ actor: SYSTEM });

type Recorder = (trx: Knex.Transaction, events: readonly UsherEvent[]) => Promise<void>;
/** Told how long an event's listeners took, from its publication until the last of them, awaited or not, was done. */
export type DeliveryObserver = (event: UsherEvent, seconds: number) => void;
interface Listener {
  readonly types: ReadonlySet<EventType> | undefined;
  readonly handle: (event: UsherEvent) => void | Promise<void>;
  /** Its failure is the failure of the request that caused the event (ending sessions); else it is logged. */
  readonly awaited: boolean;
}

/**
 * The one stream of what happens, with who did it. A change's events are recorded inside its transaction
 * (the audit log: no row without its change, no change without its row), then published to listeners
 * once it is committed: host hooks, session ending, cache invalidation, metrics.
 */
export class EventStream {
  private readonly recorders: Recorder[] = [];
  private readonly listeners: Listener[] = [];
  private readonly deliveryObservers: DeliveryObserver[] = [];
  private readonly elsewhere: ((userId: number | null) => void)[] = [];
  private running = 0;

  constructor(private readonly log: Logger) {}

  /** Runs inside the transaction of every change; a failure rolls the change back. */
  recordWith(recorder: Recorder): void {
    this.recorders.push(recorder);
  }

  /** Hears every published event, or those of `types`. */
  on(handle: Listener['handle'], opts: { types?: readonly EventType[]; awaited?: boolean } = {}): void {
    this.listeners.push({ handle, types: opts.types && new Set(opts.types), awaited: opts.awaited ?? false });
  }

  async record(trx: Knex.Transaction, events: readonly UsherEvent[]): Promise<void> {
    if (events.length === 0) return;
    for (const recorder of this.recorders) await recorder(trx, events);
  }

  /**
   * Hears that a user changed through another instance sharing the database (null: anyone may have): told by
   * src/cluster (Redis pub/sub, or the database's change log), so that caches drop what they hold of them.
   */
  onChangedElsewhere(handle: (userId: number | null) => void): void {
    this.elsewhere.push(handle);
  }

  /** Tells the onChangedElsewhere listeners; synchronous, a failing one is logged. */
  changedElsewhere(userId: number | null): void {
    for (const handle of this.elsewhere) {
      try {
        handle(userId);
      } catch (err) {
        this.log.warn({ err, userId }, 'cluster change listener failed');
      }
    }
  }

  /** Hears how long each published event took to deliver (metrics); synchronous, it must not throw. */
  onDelivered(observe: DeliveryObserver): void {
    this.deliveryObservers.push(observe);
  }

  /** Listeners still running for events already published (those publish() does not await): a hook that hangs stays here. */
  get listenersRunning(): number {
    return this.running;
  }

  /**
   * Tells listeners, in the order they subscribed. Awaited listeners run to the end even when one fails;
   * then the first failure is thrown. The others' failures are logged, never thrown.
   */
  async publish(events: readonly UsherEvent[]): Promise<void> {
    let failure: unknown;
    for (const event of events) {
      const start = performance.now();
      let later: Promise<void>[] | undefined;
      for (const listener of this.listeners) {
        if (listener.types && !listener.types.has(event.type)) continue;
        try {
          const done = listener.handle(event);
          if (done instanceof Promise) {
            if (listener.awaited) await done;
            else (later ??= []).push(this.runLater(done, event));
          }
        } catch (err) {
          if (listener.awaited) failure ??= err;
          else this.log.warn({ err, event: event.type }, 'event listener failed');
        }
      }
      if (this.deliveryObservers.length > 0) {
        const delivered = () => {
          const seconds = (performance.now() - start) / 1000;
          for (const observe of this.deliveryObservers) observe(event, seconds);
        };
        if (later) void Promise.all(later).then(delivered);
        else delivered();
      }
    }
    if (failure !== undefined) throw failure;
  }

  /** A listener's work that publish() does not wait for: counted while it runs, its failure logged. */
  private runLater(done: Promise<void>, event: UsherEvent): Promise<void> {
    this.running++;
    return done.then(
      () => {
        this.running--;
      },
      (err: unknown) => {
        this.running--;
        this.log.warn({ err, event: event.type }, 'event listener failed');
      },
    );
  }
}

/** An event of `origin`, now. */
export function eventOf(origin: Origin, type: EventType, targetUserId: number | null, detail: EventDetail = {}, context?: EventContext): UsherEvent {
  return { type, actor: origin.actor, targetUserId, ip: origin.ip ?? null, at: Date.now(), detail, context };
}
