import type { Request } from 'express';
import { SYSTEM, type Origin } from '../events/stream.js';

/** Who asks for a change in this request, for the event stream: the signed-in user and how, or Usher itself (setup). */
export function originOf(req: Request): Origin {
  const user = req.user;
  return { actor: user ? { kind: 'user', userId: user.id, method: user.authMethod } : SYSTEM, ip: req.ip ?? null };
}
