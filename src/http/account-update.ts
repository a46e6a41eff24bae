import type { Request, Response } from 'express';
import { AppError } from '../errors.js';
import { originOf } from './origin.js';
import { usernameKey } from '../names.js';
import type { SessionManager } from '../sessions/manager.js';
import type { UserRecord } from '../users/model.js';
import type { UserPatch, UserService } from '../users/service.js';
import type { LoginLimiter } from '../authn/login-limiter.js';
import { deviceOf } from '../authn/methods/device-token.js';

/** What the users routes ask for once they have parsed an update and checked who may make it. */
export type ApplyUpdate = (req: Request, res: Response, id: number, patch: UserPatch, currentPassword: string | undefined) => Promise<UserRecord>;

/**
 * The update flow where it meets authentication: a self-service password change counts its current
 * password like a login attempt (so a stolen session or key cannot guess the password), and the session
 * (or device token) that made it moves to the new epoch while the others end. users/ knows nothing of either.
 */
export function accountUpdate(users: UserService, limiter: LoginLimiter, sessions: SessionManager): ApplyUpdate {
  return async (req, res, id, patch, currentPassword) => {
    const caller = req.user!;
    const self = caller.id === id;
    const viaSession = caller.authMethod === 'session';
    const keepSession = viaSession ? req.sessionID : caller.authMethod === 'device' ? deviceOf(req)?.id : undefined;
    const checksPassword = self && currentPassword !== undefined && patch.password !== undefined;
    const attempt = checksPassword ? await limiter.attempt(req.ip, usernameKey(caller.username)) : undefined;
    const updated = await users
      .update(id, patch, { self, currentPassword, keepSession }, originOf(req))
      .catch(async (err: unknown) => {
        // Only a wrong current password is a failed attempt; anything else gives the points back.
        if (!(err instanceof AppError && err.code === 'user.wrong_current_password')) await attempt?.unchecked();
        throw err;
      });
    await attempt?.succeeded();
    // A self-service password change ends the other sessions; this one moves to the new epoch.
    if (self && viaSession && patch.role === undefined) await sessions.moveToEpoch(req, res, updated.sessionEpoch);
    return updated;
  };
}
