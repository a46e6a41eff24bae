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

/** True when a stored hash was made with another algorithm or weaker parameters than today's. */
export function needsRehash(stored: string): boolean {
  const match = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(stored);
  if (!match) return true;
  const [, m, t] = match.map(Number) as [number, number, number, number];
  return m < PARAMS.memoryCost || t < PARAMS.timeCost;
}

let dummy: Promise<string> | undefined;
/** Verifies against a throwaway hash, so an unknown user costs as much time as a wrong password. */
export async function verifyDummy(password: string): Promise<false> {
  dummy ??= hashPassword('usher-dummy-password');
  await verifyPassword(await dummy, password);
  return false;
}
