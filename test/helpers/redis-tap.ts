import net, { type Server, type Socket } from 'node:net';
import { freePort } from './process.js';

/**
 * A TCP relay between Usher and a Redis server that can catch a command on its way: `hold('SMEMBERS')`
 * resolves as soon as Usher sends a command containing that text, which the relay then keeps from Redis.
 * The request that sent it is now waiting on Redis, the moment a test wants to kill Redis at.
 * When Redis goes, the relay drops Usher's connections as Redis itself would: closed (FIN), or, with
 * `reset`, reset (RST: what a killed server with unread commands sends; the client sees ECONNRESET).
 */
export class RedisTap {
  private readonly pairs = new Set<{ client: Socket; upstream: Socket; held?: { reset: boolean } }>();
  private waiting: { text: string; reset: boolean; seen: () => void } | undefined;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly upstreamPort: number,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(upstreamPort: number): Promise<RedisTap> {
    const port = await freePort();
    const server = net.createServer();
    const tap = new RedisTap(server, port, upstreamPort);
    server.on('connection', (client) => tap.relay(client));
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return tap;
  }

  /** Resolves when the next command containing `text` arrives from Usher; that chunk never reaches Redis. */
  hold(text: string, opts: { reset?: boolean } = {}): Promise<void> {
    if (this.waiting) throw new Error('already holding a command');
    return new Promise((resolve) => {
      this.waiting = { text, reset: opts.reset === true, seen: resolve };
    });
  }

  private relay(client: Socket) {
    const upstream = net.connect(this.upstreamPort, '127.0.0.1');
    const pair: { client: Socket; upstream: Socket; held?: { reset: boolean } } = { client, upstream };
    this.pairs.add(pair);
    const drop = () => {
      this.pairs.delete(pair);
      if (pair.held?.reset && !client.destroyed) client.resetAndDestroy();
      else client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk) => {
      const w = this.waiting;
      if (w && chunk.toString('latin1').includes(w.text)) {
        this.waiting = undefined;
        pair.held = { reset: w.reset };
        w.seen();
        return;
      }
      // Nothing passes a held command: Redis answers in order.
      if (!pair.held) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => client.write(chunk));
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
