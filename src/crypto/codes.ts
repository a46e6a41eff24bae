import { createHmac, randomBytes } from 'node:crypto';
import type { ServerKeys } from './secret.js';

/**
 * Codes people type by hand on phones and TVs (invites; recovery codes reuse them): Crockford base32,
 * read back case-insensitively with O as 0 and I, L as 1, shown in groups of four. 19 random symbols
 * (95 bits) and one check symbol make five groups: `7K3Q-M9TZ-XW2B-4HNP-RD6C`.
 */
export const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const RANDOM_SYMBOLS = 19;
export const CODE_LENGTH = RANDOM_SYMBOLS + 1;

const VALUE: ReadonlyMap<string, number> = new Map([...ALPHABET].map((c, i) => [c, i]));

/**
 * Multiplies by the generator α in GF(32) (x⁵ + x² + 1). The check symbol makes Σ symbolᵢ·α^(n−i) zero:
 * a changed symbol adds e·αᵏ ≠ 0, swapped neighbours (or symbols two apart) add (a−b)(α−1)αᵏ or
 * (a−b)(α²−1)αᵏ ≠ 0, so every such typo is caught, and within the alphabet: no extra check symbols
 * (Crockford's own mod-37 check needs `*~$=U`, awkward to type on a TV).
 */
const timesAlpha = (v: number) => ((v << 1) & 31) ^ (v & 16 ? 0b00101 : 0);

function remainder(symbols: readonly number[]): number {
  let acc = 0;
  for (const s of symbols) acc = timesAlpha(acc) ^ s;
  return acc;
}

/** Groups of four separated by '-'. */
const grouped = (plain: string) => plain.replace(/(.{4})(?=.)/g, '$1-');

/** A new code, as shown to people: `XXXX-XXXX-XXXX-XXXX-XXXX`. */
export function generateCode(): string {
  // 256 is a multiple of 32: each byte's low five bits are uniform.
  const symbols = [...randomBytes(RANDOM_SYMBOLS)].map((b) => b & 31);
  symbols.push(timesAlpha(remainder(symbols)));
  return grouped(symbols.map((s) => ALPHABET[s]).join(''));
}

export type ParsedCode =
  /** The code in its one stored spelling: upper case, no separators. */
  | { ok: true; normalized: string }
  /** Not a code as typed: a character outside the alphabet, the wrong length, or a check that fails. */
  | { ok: false };

/** Reads a typed code: case, spaces and hyphens do not matter; O reads as 0, I and L as 1. */
export function parseCode(input: string): ParsedCode {
  const plain = input.replace(/[\s-]+/g, '').toUpperCase().replace(/O/g, '0').replace(/[IL]/g, '1');
  if (plain.length !== CODE_LENGTH) return { ok: false };
  const symbols: number[] = [];
  for (const c of plain) {
    const v = VALUE.get(c);
    if (v === undefined) return { ok: false };
    symbols.push(v);
  }
  return remainder(symbols) === 0 ? { ok: true, normalized: plain } : { ok: false };
}

/** How a code is shown: the normalized spelling in groups of four. */
export function displayCode(normalized: string): string {
  return grouped(normalized);
}

/**
 * What is stored and looked up: an HMAC of the normalized code under a key derived from the server secret.
 * A leaked database gives no usable code, nor a way to test guesses offline without the secret.
 */
export function fingerprintCode(keys: ServerKeys, normalized: string): string {
  return createHmac('sha256', keys.codeFingerprint).update(normalized, 'utf8').digest('hex');
}
