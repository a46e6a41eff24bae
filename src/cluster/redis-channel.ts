import { createClient, type RedisClientType } from 'redis';
import type { Logger } from 'pino';

/** What one instance tells the others about a change: who made it, what happened, to whom. Never a secret. */
export interface ChangeMessage {
  /** The instance that made it (it ignores its own). */
  readonly from: string;
  readonly type: string;
  /** The user whose cached entries are stale; null: everyone's; absent: none (a policy change). */
  readonly user?: number | null;
}

export interface ChannelHandlers {
  message(message: ChangeMessage): void;
  /** The subscription dropped: messages may have been missed (and will be until restored). */
  lost(): void;
  /** Subscribed again. */
  restored(): void;
}

/**
 * A Redis pub/sub channel between the instances (`<redis.keyPrefix>cluster`): one connection publishes, one
 * subscribes (a subscribed connection can do nothing else). Both reconnect for ever in the background; the
 * loss of the subscription is logged once per outage, and its return once.
 */
export class RedisChannel {
  private up = true;
  private started = false;
  private closed = false;

  private constructor(
    private readonly publisher: RedisClientType,
    private readonly subscriber: RedisClientType,
    private readonly channel: string,
    private readonly log: Logger,
  ) {}

  static async open(url: string, channel: string, log: Logger, handlers: ChannelHandlers): Promise<RedisChannel> {
    let self: RedisChannel | undefined = undefined;
    const options = {
      url,
      // A message that cannot go now is dropped, never queued: the change log covers the outage.
      disableOfflineQueue: true,
      // At start a failure is thrown (the server refuses to start, as the session store does); later, retried for ever.
      socket: { connectTimeout: 5_000, reconnectStrategy: (retries: number, cause: Error) => (self?.started ? Math.min(100 * 2 ** retries, 2_000) : cause) },
    };
    const publisher: RedisClientType = createClient(options);
    const subscriber: RedisClientType = createClient(options);
    self = new RedisChannel(publisher, subscriber, channel, log);
    // The subscriber's errors mark an outage (logged once, by down()); the publisher's are the same outage.
    // Either unhandled would crash the process.
    publisher.on('error', () => {});
    const opened = self;
    subscriber.on('error', () => opened.down(handlers));
    subscriber.on('end', () => opened.down(handlers));
    subscriber.on('reconnecting', () => opened.down(handlers));
    try {
      await publisher.connect();
      await subscriber.connect();
      await subscriber.subscribe(channel, (raw) => {
        const message = parse(raw);
        if (message) handlers.message(message);
      });
    } catch (err) {
      publisher.destroy();
      subscriber.destroy();
      throw err;
    }
    // Once subscribed, 'ready' means the client subscribed again after an outage (node-redis resubscribes).
    subscriber.on('ready', () => {
      if (opened.up || opened.closed) return;
      opened.up = true;
      log.info({ channel }, 'cluster: Redis subscription restored; changes made through other instances arrive at once again');
      handlers.restored();
    });
    opened.started = true;
    return opened;
  }

  /** Whether the subscription is up now. */
  get subscribed(): boolean {
    return this.up;
  }

  private down(handlers: ChannelHandlers): void {
    if (!this.up || this.closed || !this.started) return;
    this.up = false;
    this.log.warn(
      { channel: this.channel },
      'cluster: lost the Redis subscription; caches fall back to their TTL (auth.apiKeyCacheTtl) and the database poll (cluster.pollInterval) until it returns',
    );
    handlers.lost();
  }

  /** Publishes; a failure (Redis away) is dropped: the subscription's loss is what is logged, and the change log covers it. */
  publish(message: ChangeMessage): void {
    if (!this.publisher.isReady) return;
    this.publisher.publish(this.channel, JSON.stringify(message)).catch((err: unknown) => this.log.debug({ err }, 'cluster: could not publish a change'));
  }

  async close(): Promise<void> {
    this.closed = true; // closing is not an outage
    this.publisher.destroy();
    this.subscriber.destroy();
  }
}

function parse(raw: string): ChangeMessage | undefined {
  try {
    const value = JSON.parse(raw) as Partial<ChangeMessage>;
    if (typeof value.from !== 'string' || typeof value.type !== 'string') return undefined;
    if (value.user !== undefined && value.user !== null && !Number.isSafeInteger(value.user)) return undefined;
    return { from: value.from, type: value.type, user: value.user };
  } catch {
    return undefined;
  }
}
