import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import type { ServerKeys } from './secret.js';

/** Recognisable prefix, so leaked keys can be found by secret scanners. */
export const API_KEY_PREFIX = 'usk_';

/**
 * The prefix of scoped keys (app passwords): a request's key is looked up in the one table its prefix
 * names, never in the other. Distinct from `usk_` (the per-user key) and `usd_` (device tokens).
 */
export const SCOPED_KEY_PREFIX = 'usa_';

/**
 * Something shaped like an Usher key or device token inside a text (a URL, a log line): the prefix (`usk_`,
 * `usd_`, `usa_`) and 32 or more key characters. Covers generated keys and tokens (43 base64url characters) and the
 * bootstrap format (64 hex).
 */
export const KEY_IN_TEXT = /us[kda]_[A-Za-z0-9_-]{32,}/i;

/** Whether a URL or a part of one holds a key, as sent or percent-decoded (a stray % is left as it is). */
export function holdsApiKey(text: string): boolean {
  if (KEY_IN_TEXT.test(text)) return true;
  if (!text.includes('%')) return false;
  const decoded = text.replace(/(%[0-9a-f]{2})+/gi, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
  return KEY_IN_TEXT.test(decoded);
}

/** A new key: the prefix and 32 random bytes, base64url. */
export function generateApiKey(): string {
  return API_KEY_PREFIX + randomBytes(32).toString('base64url');
}

/** A new scoped key and what lists show of it: the prefix and its first 6 random characters (36 of 256 bits). */
export function generateScopedKey(): { key: string; shown: string } {
  const key = SCOPED_KEY_PREFIX + randomBytes(32).toString('base64url');
  return { key, shown: key.slice(0, SCOPED_KEY_PREFIX.length + 6) };
}

/** The lookup digest: a keyed HMAC, fast enough for every request, useless without the server secret. */
export function digestApiKey(keys: ServerKeys, apiKey: string): string {
  return createHmac('sha256', keys.apiKeyDigest).update(apiKey, 'utf8').digest('hex');
}

/** AES-256-GCM, as `v1.<iv>.<tag>.<ciphertext>` in base64url; the user id is bound as associated data. */
export function encryptApiKey(keys: ServerKeys, apiKey: string, userId: number): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keys.apiKeyCipher, iv);
  cipher.setAAD(Buffer.from(`user:${userId}`));
  const body = Buffer.concat([cipher.update(apiKey, 'utf8'), cipher.final()]);
  return ['v1', iv, cipher.getAuthTag(), body].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
}

/** Decrypts a stored copy; null when it cannot be read (for example after the server secret changed). */
export function decryptApiKey(keys: ServerKeys, stored: string, userId: number): string | null {
  const [version, iv, tag, body] = stored.split('.');
  if (version !== 'v1' || !iv || !tag || body === undefined) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', keys.apiKeyCipher, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(`user:${userId}`));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    return null;
  }
}
