import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Authorizer } from './enforcer.js';

/** How long stop() waits for a sync under way. */
const STOP_WAIT_MS = 5_000;

/** A running poll; `stop()` ends it and waits for a sync under way. */
export interface PolicyPoll {
  stop(): Promise<void>;
}

/**
 * Polls the policy's version row every `intervalMs` and installs the database's policy when another
 * instance changed it (`authz.sync()`). The request path never waits for it: checks read the installed
 * policy until the new one is swapped in. A poll still running when the next is due is not doubled. An
 * unreachable database is logged once per outage (and its end once), never thrown: the instance keeps
 * deciding with the policy it has. A notification from other instances (Redis pub/sub) can call the same
 * `authz.sync()` between polls. `others` are polled at the same tick (the grants' `sync()`).
 */
export function pollPolicy(authz: Authorizer, intervalMs: number, log: Logger, others: readonly (() => Promise<unknown>)[] = []): PolicyPoll {
  let running: Promise<void> | undefined;
  let failing = false;
  const tick = () => {
    if (running) return;
    running = Promise.all([authz.sync(), ...others.map((sync) => sync())])
      .then(
        ([installed]) => {
          if (failing) log.info('policy poll: the database answers again');
          failing = false;
          if (installed) log.debug({ version: authz.version, digest: authz.digest }, 'policy poll: installed a change made through another instance');
        },
        (err: unknown) => {
          if (!failing) log.warn({ err }, 'policy poll: could not read the policy version or the grants changed; deciding with the installed policy until the database answers');
          failing = true;
        },
      )
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(tick, intervalMs);
  // The poll alone never keeps the process alive.
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      // A query caught by a pool being destroyed under it may never settle (tarn): shutting down waits a
      // bounded time for the sync under way, never for ever.
      if (running && (await Promise.race([running.then(() => true), delay(STOP_WAIT_MS, false, { ref: false })])) === false) {
        log.warn('policy poll: a sync still running at shutdown was left behind');
      }
    },
  };
}
