import ipaddr from 'ipaddr.js';
import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { Errors } from '../http/errors.js';
import type { SessionBackend } from '../sessions/backend.js';

/** The client's address as counted: IPv4 as is, IPv6 by its /64 (one host usually holds a whole /64). */
export function clientKey(ip: string | undefined): string {
  if (!ip || !ipaddr.isValid(ip)) return 'unknown';
  const addr = ipaddr.process(ip);
  if (addr.kind() === 'ipv4') return addr.toString();
  return `${(addr as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16)).join(':')}::/64`;
}

/**
 * Failed logins per account and per client address. An attempt takes a point from both counters
 * *before* the password is checked (atomically, so concurrent guesses cannot slip past the limit);
 * a successful login gives them back. Past the limit even the right password gets 429.
 */
export class LoginLimiter {
  private readonly byClient: RateLimiterAbstract;
  private readonly byAccount: RateLimiterAbstract;

  constructor(backend: SessionBackend, limits: { maxFailures: number; windowMs: number }) {
    this.byClient = backend.limiter('login-client', limits.maxFailures, limits.windowMs);
    this.byAccount = backend.limiter('login-account', limits.maxFailures, limits.windowMs);
  }

  /** Takes the attempt's points or throws 429; resolves to what to call when the login succeeds. */
  async attempt(ip: string | undefined, account: string): Promise<() => Promise<void>> {
    const client = clientKey(ip);
    const results = await Promise.allSettled([this.byClient.consume(client), this.byAccount.consume(account)]);
    let waitMs = 0;
    for (const r of results) {
      if (r.status === 'fulfilled') continue;
      if (r.reason instanceof RateLimiterRes) waitMs = Math.max(waitMs, r.reason.msBeforeNext);
      else throw Errors.sessionStoreUnavailable('Login is unavailable for the moment; try again shortly.');
    }
    if (waitMs > 0) {
      // A refused attempt checks no password, so it is not a failure: give both points back. Otherwise
      // a burst of correct logins from one address (a NAT) would lock that address out for the window.
      await Promise.allSettled([this.byClient.reward(client, 1), this.byAccount.reward(account, 1)]);
      const err = Errors.tooManyAttempts();
      Object.assign(err.headers, { 'Retry-After': String(Math.max(1, Math.ceil(waitMs / 1000))) });
      throw err;
    }
    return async () => {
      await Promise.allSettled([this.byClient.reward(client, 1), this.byAccount.delete(account)]);
    };
  }
}
