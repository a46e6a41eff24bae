import type { Request } from 'express';
import { SYSTEM, type Origin } from '../events/stream.js';

/** Who asks for a change in this request, for the event stream: the signed-in user and how, or Usher itself (setup). */
export function originOf(req: Request): Origin {
  const user = req.user;
  if (!user) return { actor: SYSTEM, ip: req.ip ?? null };
  const origin = { actor: { kind: 'user' as const, userId: user.id, method: user.authMethod }, ip: req.ip ?? null };
  // A scoped key or a device token grants only what its credential may do, not all its owner holds.
  return user.scope || user.withhold ? { ...origin, limits: { scope: user.scope, withhold: user.withhold } } : origin;
}
