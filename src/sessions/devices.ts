import type { Logger } from 'pino';
import { setBounded } from '../bounded-map.js';
import { fingerprintDeviceToken, generateDevicePublicId, generateDeviceToken } from '../crypto/device-tokens.js';
import type { ServerKeys } from '../crypto/secret.js';
import type { Db } from '../db/connect.js';
import { Errors, invalidField } from '../errors.js';
import { eventOf, type EventStream, type Origin, type UsherEvent } from '../events/stream.js';
import { nameProblem } from '../names.js';
import { usersRepo, type Queryable } from '../users/repository.js';
import { devicesRepo, type DeviceRecord } from './device-repository.js';
import { SEEN_EVERY_MS } from './manager.js';

export type { DeviceRecord } from './device-repository.js';

/** What the app says about itself when it connects. */
export interface DeviceInfo {
  /** Shown in GET /me/sessions: "Pixel 8", "Living-room TV". */
  name: string;
  userAgent?: string;
}

/** A device name's longest length, in characters. */
export const DEVICE_NAME_MAX = 128;

/** Why a device name (trimmed) is unacceptable, or null. */
export function deviceNameProblem(name: string): string | null {
  if (name.length === 0) return 'must not be empty';
  if ([...name].length > DEVICE_NAME_MAX) return `must be at most ${DEVICE_NAME_MAX} characters`;
  return nameProblem(name);
}

/** How often expired device tokens are pruned. */
const PRUNE_EVERY_MS = 3_600_000;
/** Past this many entries the caches start again (a flood of distinct tokens must not grow memory). */
const CACHE_MAX = 10_000;

/**
 * Device tokens: the sessions of apps (a music player, a TV) that sign in once, by an invite or a
 * recovery code, and then send `Authorization: Bearer usd_...` for months. Stored in the database as a
 * keyed fingerprint only, found by it; dead after `session.deviceIdleTimeout` without use, or once the
 * user's session epoch moves on (disable, password reset...), like browser sessions.
 *
 * A found token is cached for `cacheTtlMs` (as API keys are): every token this process ends leaves the
 * cache at once; one ended by another instance sharing the database, when src/cluster tells (at worst within that time).
 */
export class DeviceTokens {
  private readonly cache = new Map<string, { device: DeviceRecord; expires: number }>();
  private readonly pending = new Map<string, Promise<DeviceRecord | null>>();
  /** Moves on whenever a token ends: a lookup that started before is never cached. */
  private generation = 0;
  /** Last uses this process has recorded (or is recording), by row id; newer than what the cache holds. */
  private readonly usedAt = new Map<number, number>();
  /** Last-use writes under way: pruning waits for them. */
  private readonly writes = new Set<Promise<void>>();
  private readonly pruner: NodeJS.Timeout;

  constructor(
    private readonly db: Db,
    private readonly keys: ServerKeys,
    private readonly events: EventStream,
    private readonly log: Logger,
    private readonly settings: { readonly idleTimeoutMs: number; readonly cacheTtlMs: number },
    /** The time, in ms, that last use and the idle timeout are counted in (tests drive it). */
    readonly clock: () => number = Date.now,
  ) {
    // A token ended, or its user changed, through another instance (src/cluster).
    events.onChangedElsewhere((userId) => (userId === null ? this.forgetAll() : this.forget(userId)));
    this.pruner = setInterval(() => void this.prune().catch((err: unknown) => this.log.warn({ err }, 'device tokens: pruning failed')), PRUNE_EVERY_MS).unref();
  }

  /**
   * Issues a token inside the caller's transaction (a redemption that must use up an invite only if the
   * device is signed in); publish `event` once it is committed. The token is in the answer only: shown to
   * the app once, never stored, logged or put in an event. The caller checks the account may sign in (a
   * disabled account's token is refused anyway).
   */
  async issueIn(trx: Queryable, userId: number, device: DeviceInfo, origin: Origin): Promise<{ token: string; id: string; event: UsherEvent }> {
    const name = device.name.trim();
    const problem = deviceNameProblem(name);
    if (problem) throw invalidField('device.name', problem);
    const user = await usersRepo.findById(trx, userId);
    if (!user) throw Errors.userNotFound();
    const token = generateDeviceToken();
    const id = generateDevicePublicId();
    const now = this.clock();
    await devicesRepo.insert(trx, {
      public_id: id,
      user_id: userId,
      fingerprint: fingerprintDeviceToken(this.keys, token),
      name,
      user_agent: device.userAgent?.slice(0, 256) || null,
      ip: origin.ip ?? null,
      // A change that ends sessions after this read moves the epoch on: the token is then born dead.
      epoch: user.sessionEpoch,
      created_at: now,
      last_used_at: now,
    });
    return { token, id, event: eventOf(origin, 'session.created', userId, { kind: 'device', id, name }) };
  }

  /** Issues a token on its own; see issueIn. */
  async issue(userId: number, device: DeviceInfo, origin: Origin): Promise<{ token: string; id: string }> {
    const { token, id, event } = await this.db.transaction((trx) => this.issueIn(trx, userId, device, origin));
    await this.events.publish([event]);
    return { token, id };
  }

  /**
   * The device a token names, unless it is unknown or idle past the timeout (it is then deleted, in the
   * background); answers synchronously from the cache. The caller checks the epoch against the user's.
   */
  find(token: string): DeviceRecord | null | Promise<DeviceRecord | null> {
    const fingerprint = fingerprintDeviceToken(this.keys, token);
    // The cache's lifetime is wall-clock time (how stale another instance's view may be), not the clock's.
    const hit = this.cache.get(fingerprint);
    if (hit && hit.expires > Date.now()) return this.alive(hit.device, fingerprint);
    let lookup = this.pending.get(fingerprint);
    if (!lookup) {
      const generation = this.generation;
      const forget = () => {
        if (this.pending.get(fingerprint) === lookup) this.pending.delete(fingerprint);
      };
      lookup = devicesRepo.findByFingerprint(this.db, fingerprint).then(
        (device) => {
          forget();
          if (device && this.settings.cacheTtlMs > 0 && generation === this.generation) {
            setBounded(this.cache, fingerprint, { device, expires: Date.now() + this.settings.cacheTtlMs }, CACHE_MAX);
          }
          return device;
        },
        (err: unknown) => {
          forget();
          throw err;
        },
      );
      this.pending.set(fingerprint, lookup);
    }
    return lookup.then((device) => device && this.alive(device, fingerprint));
  }

  private alive(device: DeviceRecord, fingerprint: string): DeviceRecord | null {
    if (this.clock() - this.lastUse(device) <= this.settings.idleTimeoutMs) return device;
    this.cache.delete(fingerprint);
    void devicesRepo.removeByRowId(this.db, device.rowId).catch((err: unknown) => this.log.warn({ err }, 'device tokens: could not delete an expired token'));
    return null;
  }

  private lastUse(device: DeviceRecord): number {
    return Math.max(device.lastUsedAt, this.usedAt.get(device.rowId) ?? 0);
  }

  /** Records a use (and the address it came from), at most once a minute per device and never on the request's critical path. */
  touch(device: DeviceRecord, ip: string | undefined): void {
    const now = this.clock();
    if (now - this.lastUse(device) < SEEN_EVERY_MS) return;
    setBounded(this.usedAt, device.rowId, now, CACHE_MAX);
    const write = devicesRepo.touch(this.db, device.rowId, now, ip ?? null).then(
      () => {
        this.writes.delete(write);
      },
      (err: unknown) => {
        this.writes.delete(write);
        this.log.warn({ err, userId: device.userId }, 'device tokens: could not record a last use');
      },
    );
    this.writes.add(write);
  }

  /** The user's live devices, oldest first, with their last use as this process knows it. */
  async list(userId: number): Promise<DeviceRecord[]> {
    const now = this.clock();
    return (await devicesRepo.listByUser(this.db, userId))
      .map((d) => ({ ...d, lastUsedAt: this.lastUse(d) }))
      .filter((d) => now - d.lastUsedAt <= this.settings.idleTimeoutMs);
  }

  /** Ends one of the user's devices by its public id; answers whether there was one. */
  async end(userId: number, id: string): Promise<boolean> {
    const ended = await devicesRepo.removeOne(this.db, userId, id);
    this.forget(userId);
    return ended;
  }

  /**
   * Ends every device of the user; `keep` (a device's public id: the one that changed its own password)
   * lives on at the user's new `epoch`.
   */
  async endAll(userId: number, opts: { keep?: string; epoch?: number } = {}): Promise<number> {
    const keep = opts.epoch === undefined ? undefined : opts.keep;
    const ended = await this.db.transaction(async (trx) => {
      const n = await devicesRepo.removeAll(trx, userId, keep);
      if (keep !== undefined) await devicesRepo.setEpoch(trx, userId, keep, opts.epoch!);
      return n;
    });
    this.forget(userId);
    if (ended > 0) this.log.info({ userId, ended }, 'device tokens ended');
    return ended;
  }

  /** Deletes the devices idle past the timeout, and those a change of their user's epoch left behind. */
  async prune(): Promise<number> {
    await Promise.all(this.writes);
    const pruned = await devicesRepo.prune(this.db, this.clock() - this.settings.idleTimeoutMs);
    if (pruned > 0) this.forgetAll();
    return pruned;
  }

  private forgetAll(): void {
    this.generation++;
    this.pending.clear();
    this.cache.clear();
  }

  /** Drops the user's cached devices, and any lookup under way. */
  private forget(userId: number): void {
    this.generation++;
    this.pending.clear();
    for (const [key, entry] of this.cache) if (entry.device.userId === userId) this.cache.delete(key);
  }

  close(): void {
    clearInterval(this.pruner);
  }
}
