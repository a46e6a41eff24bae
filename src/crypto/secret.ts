import { randomBytes, hkdfSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { UsherConfig } from '../config/schema.js';

/** Keys derived from the server secret, one per purpose. */
export interface ServerKeys {
  /** HMAC key for API-key lookup digests. */
  readonly apiKeyDigest: Buffer;
  /** AES-256-GCM key for the owner-readable copy of API keys. */
  readonly apiKeyCipher: Buffer;
  /** Signs the session cookie (express-session's secret). */
  readonly sessionCookie: string;
  /** HMAC key turning session ids into the public ids that GET /me/sessions shows. */
  readonly sessionPublicId: Buffer;
  /** HMAC key for the fingerprints of hand-typed codes (invites, recovery codes): see crypto/codes.ts. */
  readonly codeFingerprint: Buffer;
  /** HMAC key for device-token fingerprints (the only form a device token is stored in). */
  readonly deviceTokenDigest: Buffer;
}

/**
 * The server secret: USHER_SECRET, else `<dataDir>/secret`, generated on first start with mode 0600.
 * Losing it makes stored API keys unreadable (they must be rotated), so it is reused, never regenerated.
 */
export function loadSecret(config: UsherConfig): string {
  if (config.secret) return config.secret;
  const dir = resolve(config.dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'secret');
  try {
    writeFileSync(file, randomBytes(48).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  chmodSync(file, 0o600);
  const secret = readFileSync(file, 'utf8').trim();
  if (secret.length < 32) throw new Error(`${file}: the secret must be at least 32 characters`);
  return secret;
}

export function deriveKeys(secret: string): ServerKeys {
  const derive = (purpose: string) => Buffer.from(hkdfSync('sha256', secret, 'usher', purpose, 32));
  return Object.freeze({
    apiKeyDigest: derive('api-key digest v1'),
    apiKeyCipher: derive('api-key cipher v1'),
    sessionCookie: derive('session cookie v1').toString('base64url'),
    sessionPublicId: derive('session public id v1'),
    codeFingerprint: derive('code fingerprint v1'),
    deviceTokenDigest: derive('device token digest v1'),
  });
}
