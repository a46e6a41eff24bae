import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { freePort } from './process.js';

/** The real Redis every test run uses. Override with USHER_TEST_REDIS_URL. */
export const REDIS_URL = process.env.USHER_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A key prefix of its own for one test server, so parallel tests never share counters or sessions. */
export const freshPrefix = () => `usher-test-${randomBytes(4).toString('hex')}:`;

/** Fails loudly when the shared Redis is not there: such tests never skip. */
export async function pingRedis(url = REDIS_URL): Promise<void> {
  const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 2_000 } });
  try {
    await client.connect();
    await client.ping();
  } finally {
    client.destroy();
  }
}

/** Removes every key a test server wrote under its prefix. */
export async function deletePrefix(prefix: string, url = REDIS_URL): Promise<void> {
  const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 2_000 } });
  await client.connect();
  try {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
      if (keys.length > 0) await client.del(keys);
    }
  } finally {
    client.destroy();
  }
}

/** A private redis-server on a free port, stopped and started again by its PID. */
export class PrivateRedis {
  private child: ChildProcess | undefined;
  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort());
    await redis.start();
    return redis;
  }

  async start(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await pingRedis(this.url);
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`private redis-server did not start: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Kills the server by its PID and waits until it is gone. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      process.kill(child.pid!, 'SIGKILL');
    });
  }
}
