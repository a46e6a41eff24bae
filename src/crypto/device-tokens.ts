import { createHmac, randomBytes } from 'node:crypto';
import type { ServerKeys } from './secret.js';

/** Recognisable prefix: never taken for an API key (`usk_`), and findable by secret scanners. */
export const DEVICE_TOKEN_PREFIX = 'usd_';

/** A new device token: the prefix and 32 random bytes (256 bits), base64url. */
export function generateDeviceToken(): string {
  return DEVICE_TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

/**
 * The stored form and lookup key: an HMAC under a key derived from the server secret. A leaked database
 * gives no usable token, and without the secret nobody can compute a fingerprint, so looking it up by
 * equality in an index leaks nothing a timing attack could use.
 */
export function fingerprintDeviceToken(keys: ServerKeys, token: string): string {
  return createHmac('sha256', keys.deviceTokenDigest).update(token, 'utf8').digest('hex');
}

/** The random public id a device session is listed and ended by (22 characters, like a browser session's). */
export function generateDevicePublicId(): string {
  return randomBytes(16).toString('base64url');
}
