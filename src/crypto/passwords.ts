import { availableParallelism } from 'node:os';
import { Algorithm, hash, verify } from '@node-rs/argon2';
import { Errors } from '../errors.js';

/** OWASP's current argon2id parameters: 19 MiB, 2 iterations, 1 lane. Hashing runs off the event loop. */
const PARAMS = { algorithm: Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/**
 * argon2 runs on libuv's thread pool (4 threads by default), which SQLite queries and file I/O share.
 * At most this many hashes run at once, so a burst of logins queues here instead of in front of every
 * other request's database work, and leaves a core to the event loop.
 */
const MAX_PARALLEL_HASHES = Math.max(1, Math.min(Number(process.env.UV_THREADPOOL_SIZE ?? 4) - 2, availableParallelism() - 1));
/**
 * At most this many wait for a slot (about two seconds of hashing); past it the answer is 503 at once, so
 * a flood of logins from many addresses cannot queue without bound, holding every request while it waits.
 */
const MAX_WAITING = 128;
let running = 0;
const waiting: (() => void)[] = [];

async function limited<T>(work: () => Promise<T>): Promise<T> {
  // A finishing hash hands its slot straight to the next waiter, so the count never overshoots.
  if (running >= MAX_PARALLEL_HASHES) {
    if (waiting.length >= MAX_WAITING) {
      const busy = Errors.busy();
      Object.assign(busy.headers, { 'Retry-After': '1' });
      throw busy;
    }
    await new Promise<void>((resolve) => waiting.push(resolve));
  } else running++;
  try {
    return await work();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

/**
 * Passwords are hashed and checked in Unicode NFC: the same password typed on a keyboard that composes
 * (é as one code point) and on one that does not (e + combining accent, as macOS may send) is one password.
 */
export function hashPassword(password: string): Promise<string> {
  return limited(() => hash(password.normalize('NFC'), PARAMS));
}

/** The password matches ('ok'), matches only a hash made before NFC normalisation ('rehash'), or not (false). */
export type PasswordCheck = 'ok' | 'rehash' | false;

export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  return (await checkPassword(stored, password)) !== false;
}

export async function checkPassword(stored: string, password: string): Promise<PasswordCheck> {
  const nfc = password.normalize('NFC');
  if (await verifyRaw(stored, nfc)) return 'ok';
  // A hash from before passwords were normalised was made over the text as typed.
  return nfc !== password && (await verifyRaw(stored, password)) ? 'rehash' : false;
}

/** False for a hash that does not parse too; a full queue (503) is thrown. */
function verifyRaw(stored: string, password: string): Promise<boolean> {
  return limited(() => verify(stored, password).catch(() => false));
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
  await checkPassword(await dummy, password);
  return false;
}
