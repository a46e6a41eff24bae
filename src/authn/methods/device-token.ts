import type { Request } from 'express';
import { DEVICE_TOKEN_PREFIX } from '../../crypto/device-tokens.js';
import { Errors } from '../../errors.js';
import { DEVICE_WITHHELD } from '../../authz/permissions.js';
import type { DeviceRecord, DeviceTokens } from '../../sessions/devices.js';
import type { UserRecord } from '../../users/model.js';
import type { UserService } from '../../users/service.js';
import { UserCache } from '../user-cache.js';
import type { AuthMethod, Identity } from '../types.js';

const BEARER = /^bearer\s+/i;

/** Whether an Authorization header carries a device token (`Bearer usd_...`, the prefix as spelled), never an API key. */
export function isDeviceBearer(authorization: string | undefined): boolean {
  const scheme = authorization === undefined ? null : BEARER.exec(authorization);
  return scheme !== null && authorization!.startsWith(DEVICE_TOKEN_PREFIX, scheme[0].length);
}

/** The device the request's token named, once this method has checked it. */
const devices = new WeakMap<Request, DeviceRecord>();

/** The device session the request came with, if it came with a device token. */
export function deviceOf(req: Request): DeviceRecord | undefined {
  return devices.get(req);
}

/**
 * An app's device token in `Authorization: Bearer usd_...` (only there: a `usd_` value in X-Api-Key is an
 * API key, and refused as one). Found by its fingerprint through a short cache; dead when idle past
 * `session.deviceIdleTimeout` or made before the user's session epoch moved on. Its last use is recorded
 * by a hook once the request is accepted (trackDeviceUse).
 */
export class DeviceTokenMethod implements AuthMethod {
  readonly name = 'device';
  private readonly users: UserCache<number>;

  constructor(
    users: UserService,
    private readonly tokens: Pick<DeviceTokens, 'find'>,
    ttlMs: number,
  ) {
    this.users = new UserCache(users.events, ttlMs, (id) => users.get(id));
  }

  applies(req: Request): boolean {
    return isDeviceBearer(req.headers.authorization);
  }

  authenticate(req: Request): Identity | Promise<Identity> {
    const token = req.headers.authorization!.replace(BEARER, '').trim();
    if (token.length > 512) throw Errors.invalidDeviceToken();
    const found = this.tokens.find(token);
    return found instanceof Promise ? found.then((device) => this.withUser(req, device)) : this.withUser(req, found);
  }

  private withUser(req: Request, device: DeviceRecord | null): Identity | Promise<Identity> {
    if (!device) throw Errors.invalidDeviceToken();
    const user = this.users.get(device.userId);
    return user instanceof Promise ? user.then((u) => this.check(req, device, u)) : this.check(req, device, user);
  }

  private check(req: Request, device: DeviceRecord, user: UserRecord | null): Identity {
    // Older than the user's epoch: ended by a disable, a password reset... (a newer one only means the
    // cached user is a moment behind the device its own password change kept).
    if (!user || device.epoch < user.sessionEpoch) throw Errors.invalidDeviceToken();
    devices.set(req, device);
    return { user, method: this.name, withhold: DEVICE_WITHHELD };
  }
}
