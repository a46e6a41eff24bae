import { Algorithm, hash, verify } from '@node-rs/argon2';

/** OWASP's current argon2id parameters: 19 MiB, 2 iterations, 1 lane. Hashing runs off the event loop. */
const PARAMS = { algorithm: Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return hash(password, PARAMS);
}

export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  try {
    return await verify(stored, password);
  } catch {
    return false;
  }
}
