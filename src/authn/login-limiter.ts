import { createHash } from 'node:crypto';
import type ipaddr from 'ipaddr.js';
import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { AppError, Errors } from '../errors.js';
import type { UsherConfig } from '../config/schema.js';
import { parseAddress } from '../config/trusted-proxies.js';
import type { SessionBackend } from '../sessions/backend.js';

/** The client's address as counted: IPv4 as is, IPv6 by its /64 (one host usually holds a whole /64). */
export function clientKey(ip: string | undefined): string {
  const addr = ip === undefined ? null : parseAddress(ip);
  if (!addr) return 'unknown';
  if (addr.kind() === 'ipv4') return addr.toString();
  return `${(addr as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16)).join(':')}::/64`;
}

/**
 * The client's network, for the account slow-down: IPv4 by /24, IPv6 by /48 (a site's usual assignment),
 * so that a guesser's networks are slowed and a user elsewhere is not.
 */
export function networkKey(ip: string | undefined): string {
  const addr = ip === undefined ? null : parseAddress(ip);
  if (!addr) return 'unknown';
  if (addr.kind() === 'ipv4') return `${(addr as ipaddr.IPv4).octets.slice(0, 3).join('.')}.0/24`;
  return `${(addr as ipaddr.IPv6).parts.slice(0, 3).map((p) => p.toString(16)).join(':')}::/48`;
}

/**
 * A counter key of fixed size, whatever the client sent: a 256-character username can expand to
 * thousands under NFKC, and every key is kept until its window ends (in memory or in Redis).
 */
const digest = (...parts: string[]) => createHash('sha256').update(parts.join('\n')).digest('base64url').slice(0, 22);

const storeDown = () => Errors.sessionStoreUnavailable('Login is unavailable for the moment; try again shortly.');

/** The login limits (auth.loginRateLimit.*), windows in milliseconds. */
export type LoginLimits = UsherConfig['loginLimit'];

/** What a caller reports once the password is checked. */
export interface LoginAttempt {
  /** The password was right: the pair's count starts again and the address becomes usual. */
  succeeded(): Promise<void>;
  /** The password was not checked (503 service.busy): every point goes back. */
  unchecked(): Promise<void>;
}

const giveBack = async (taken: [RateLimiterAbstract, string][]) => {
  await Promise.allSettled(taken.map(([limiter, key]) => limiter.reward(key, 1)));
};

/** How long an address stays "usual" for an account after a successful login from it (renewed by each one). */
// Memory counters expire by setTimeout, which fires at once past 2^31 ms (24.8 days).
const KNOWN_ADDRESS_MS = 20 * 86_400_000;

/**
 * Login protection in the pattern of rate-limiter-flexible's guide ("login endpoint protection"):
 * - per (account, address) pair, 10 consecutive failures lock that pair: the guesser, not the user;
 * - per address, 100 failures a day lock the address (a loose limit against spraying many accounts);
 * - per account, past 10 failures in 15 minutes, each network (IPv4 /24, IPv6 /48) of addresses the
 *   account never signed in from gets one attempt per 10 seconds: a slow-down, never a lock, and one
 *   guesser's networks do not slow a user elsewhere, so nobody can keep an account shut.
 * An address the account signed in from before ("usual") is exempt from the address limit and the
 * slow-down, so the real user gets in while someone else guesses at their account; the pair limit
 * still holds for it.
 *
 * Points are taken *before* the password is checked (atomically, so concurrent guesses cannot slip
 * past a limit) and given back when the login succeeds or is refused. A counter is created only when
 * the ones before it let the attempt through (the slow-down is first read, not taken, while the account
 * is under its limit), so a refused client creates nothing: what an anonymous client can make the server
 * keep is bounded by the address limit. Every key is a fixed-size digest.
 */
export class LoginLimiter {
  private readonly byPair: RateLimiterAbstract;
  private readonly byAddress: RateLimiterAbstract;
  private readonly byAccount: RateLimiterAbstract;
  private readonly slowdown: RateLimiterAbstract;
  private readonly known: RateLimiterAbstract;

  /** `name` keeps each use's counters apart (`login`, `connect` for invite and recovery codes). */
  constructor(backend: SessionBackend, limits: LoginLimits, name = 'login') {
    this.byPair = backend.limiter(`${name}-pair`, limits.maxFailures, limits.windowMs);
    this.byAddress = backend.limiter(`${name}-address`, limits.addressMaxFailures, limits.addressWindowMs);
    this.byAccount = backend.limiter(`${name}-account`, limits.accountMaxFailures, limits.accountWindowMs);
    this.slowdown = backend.limiter(`${name}-slowdown`, 1, limits.accountSlowdownMs);
    this.known = backend.limiter(`${name}-known`, 1, KNOWN_ADDRESS_MS);
  }

  /**
   * Takes the attempt's points or throws 429. Resolves to what to call when the login succeeds, and when
   * the password could not be checked at all (the server too busy): neither is a failure.
   */
  async attempt(ip: string | undefined, account: string): Promise<LoginAttempt> {
    return this.limit(ip, account);
  }

  /**
   * The same for a credential that names no account (an invite or recovery code): the address limits
   * alone, 10 consecutive failures per address and the daily limit. There is no account to slow down,
   * and one shared by everyone would let one guesser slow every redemption.
   */
  async attemptWithoutAccount(ip: string | undefined): Promise<LoginAttempt> {
    return this.limit(ip, undefined);
  }

  private async limit(ip: string | undefined, account: string | undefined): Promise<LoginAttempt> {
    const client = clientKey(ip);
    const address = digest(client);
    const accountKey = digest(account ?? '');
    const pair = digest(account ?? '', client);
    const slot = digest(account ?? '', networkKey(ip));
    const taken: [RateLimiterAbstract, string][] = [];
    let usual = false;
    try {
      if (account === undefined) {
        await this.take(taken, this.byAddress, address);
        await this.take(taken, this.byPair, pair);
        const done = async () => {
          await Promise.allSettled([this.byPair.delete(pair), this.byAddress.reward(address, 1)]);
        };
        return { succeeded: done, unchecked: () => giveBack(taken) };
      }
      usual = (await this.known.get(pair)) !== null;
      let slowed = false;
      if (!usual) {
        // An account already past its limit: the slow-down first, so a slowed attempt creates no counter.
        const failures = (await this.byAccount.get(accountKey))?.consumedPoints ?? 0;
        if (failures >= this.byAccount.points) {
          await this.take(taken, this.slowdown, slot);
          slowed = true;
        }
        await this.take(taken, this.byAddress, address);
      }
      await this.take(taken, this.byPair, pair);
      const res = await this.take(taken, this.byAccount, accountKey, true);
      // Concurrent attempts may all have read the account under its limit: the count taken decides.
      if (!usual && !slowed && res.consumedPoints > this.byAccount.points) await this.take(taken, this.slowdown, slot);
    } catch (err) {
      // A refused attempt checks no password, so it is not a failure: every point goes back. Otherwise
      // a burst of correct logins from one address (a NAT) would lock that address out.
      await giveBack(taken);
      throw err instanceof AppError ? err : storeDown();
    }
    const unchecked = () => giveBack(taken);
    const succeeded = async () => {
      await Promise.allSettled([
        this.byPair.delete(pair),
        this.byAccount.reward(accountKey, 1),
        ...(usual ? [] : [this.byAddress.reward(address, 1)]),
        this.known.set(pair, 1, Math.ceil(KNOWN_ADDRESS_MS / 1000)),
      ]);
    };
    return { succeeded, unchecked };
  }

  /**
   * Consumes one point, noting it in `taken` (a refused consume counts too, so it is given back).
   * `overflow` lets the attempt through past the limit and answers the count (the account counter
   * only decides whether the slow-down applies).
   */
  private async take(taken: [RateLimiterAbstract, string][], limiter: RateLimiterAbstract, key: string, overflow = false): Promise<RateLimiterRes> {
    taken.push([limiter, key]);
    try {
      return await limiter.consume(key);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw storeDown();
      if (overflow) return err;
      const refused = Errors.tooManyAttempts();
      Object.assign(refused.headers, { 'Retry-After': String(Math.max(1, Math.ceil(err.msBeforeNext / 1000))) });
      throw refused;
    }
  }
}
