/**
 * The paced load of bench/sessions.ts's login burst, in a process of its own (forked with IPC by
 * bench/lib.ts's startProbe), so that the event loop timing the answers does nothing else: not the
 * 20 login clients, not the bench's bookkeeping. Each ProbeRequest is answered with one ProbeMessage;
 * the process exits when the parent disconnects.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { request } from './lib.js';

// Only types may be imported from this file: importing a value would start a probe in the importer.
export interface ProbeRequest {
  url: string;
  headers: Record<string, string>;
  rate: number;
  connections: number;
  seconds: number;
}

export interface Paced {
  sent: number;
  ok: number;
  seconds: number;
  /** Milliseconds from issuing each request to the end of its answer, ascending. */
  latencies: number[];
  /** Wall-clock milliseconds (epoch, sub-millisecond) at the first request and after the last answer. */
  from: number;
  to: number;
}

export type ProbeMessage = { type: 'done'; paced: Paced } | { type: 'failed'; message: string };

const errorText = (err: unknown) => (err instanceof Error ? `${err.message}${(err as NodeJS.ErrnoException).code ? ` (${(err as NodeJS.ErrnoException).code})` : ''}` : String(err));
const wallClock = () => performance.timeOrigin + performance.now();

/**
 * `rate` requests/s for `seconds`, each issued on schedule whether earlier ones have answered or not
 * (open loop, over at most `connections` keep-alive sockets; a request waits for a free socket on the
 * clock). autocannon's overallRate is not used: it sends each connection's share of a second back to
 * back at the start of that second, and its latency histogram has a 1 ms resolution.
 */
async function paced({ url, headers, rate, connections, seconds }: ProbeRequest): Promise<Paced> {
  // fifo: every socket takes its turn, so none sits idle past the server's keep-alive timeout (5 s) and is
  // then reused just as the server closes it (an ECONNRESET that is the client's doing, not the server's).
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections, scheduling: 'fifo' });
  const total = Math.max(1, Math.round(rate * seconds));
  const interval = 1000 / rate;
  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  const errors: string[] = [];
  const answers: Promise<void>[] = [];
  const fire = () => {
    const issued = performance.now();
    answers.push(
      request(url, { headers, agent }).then(
        (reply) => {
          latencies.push(performance.now() - issued);
          statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
        },
        (err: unknown) => void errors.push(errorText(err)),
      ),
    );
  };
  const fromWall = wallClock();
  const from = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (sent < total && from + sent * interval <= now) {
        fire();
        sent++;
      }
      if (sent >= total) return resolve();
      setTimeout(tick, Math.max(0, from + sent * interval - performance.now()));
    };
    tick();
  });
  await Promise.all(answers);
  const to = performance.now();
  agent.destroy();
  const others = [...statuses].filter(([code]) => code !== 200);
  if (others.length > 0 || errors.length > 0) {
    const parts = others.map(([code, n]) => `${code}×${n}`);
    if (errors.length > 0) parts.push(`${errors.length} errors (first: ${errors[0]})`);
    throw new Error(parts.join(', '));
  }
  latencies.sort((a, b) => a - b);
  return { sent, ok: statuses.get(200) ?? 0, seconds: (to - from) / 1000, latencies, from: fromWall, to: fromWall + (to - from) };
}

const send = (message: ProbeMessage) => process.send?.(message);

process.on('disconnect', () => process.exit(0));
process.on('message', (raw: unknown) => {
  paced(raw as ProbeRequest).then(
    (result) => send({ type: 'done', paced: result }),
    (err: unknown) => send({ type: 'failed', message: errorText(err) }),
  );
});
