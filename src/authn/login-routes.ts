import type { Request } from 'express';
import { z } from 'zod';
import { Errors } from '../errors.js';
import { checkCsrf } from '../http/csrf.js';
import { endpoint, type Endpoint } from '../http/endpoint.js';
import { originOf } from '../http/origin.js';
import { toPublicUser } from '../users/model.js';
import { publicUserSchema } from '../users/schemas.js';
import type { UserService } from '../users/service.js';
import { sessionOf, type SessionManager } from '../sessions/manager.js';
import type { DeviceTokens } from '../sessions/devices.js';
import { deviceOf } from './methods/device-token.js';
import type { PasswordLogin } from './password-login.js';
import { eventOf } from '../events/stream.js';

const TAG = 'Sign-in';

const credentials = z.strictObject({
  // No username holds a control character; PostgreSQL would refuse a NUL in the lookup.
  username: z
    .string()
    .max(256, 'must be at most 256 characters')
    // eslint-disable-next-line no-control-regex
    .refine((v) => !/[\u0000-\u001f\u007f]/.test(v), 'must not hold control characters'),
  password: z.string().max(1024, 'must be at most 1024 characters'),
});

/** POST /login and /logout. */
export function loginEndpoints(
  users: UserService,
  sessions: SessionManager,
  devices: Pick<DeviceTokens, 'end'>,
  login: PasswordLogin,
  /** The identity provider's logout URL for a session an OIDC login made, if it has one. */
  idpLogout: (req: Request) => Promise<string | undefined>,
): Endpoint[] {
  return [
    endpoint({
      method: 'post',
      path: '/login',
      tag: TAG,
      summary: 'Sign in with a username and password',
      description: 'Starts a session: sets the `usher.sid` cookie (a new id on every login). Failures are limited per account and address.',
      access: 'public',
      // Login CSRF (signing a victim into the attacker's account) is refused like any cookie request.
      before: (req) => checkCsrf(req, sessions.config.publicUrl),
      body: credentials,
      responses: { 200: { description: 'Signed in.', body: z.object({ user: publicUserSchema }).strict() } },
      errors: [Errors.invalidCredentials, Errors.passwordLoginOff, Errors.tooManyAttempts, Errors.busy, Errors.csrf],
      handle: async ({ req, res, body: { username, password } }) => {
        const { user, rehash } = await login.verify(username, password, req.ip);
        await sessions.start(req, res, user);
        const now = await login.recordLogin(user, password, rehash, req.ip);
        return { body: { user: toPublicUser(now ?? user) } };
      },
    }),
    endpoint({
      method: 'post',
      path: '/logout',
      tag: TAG,
      summary: 'End this session',
      description:
        'Ends the session cookie, and the device token the request came with (an app signing out). After an OIDC login whose provider offers it, answers the provider logout URL to send the browser on to.',
      access: 'public',
      responses: {
        200: { description: 'Ended; go on to the provider logout.', body: z.object({ logoutUrl: z.url() }).strict() },
        204: { description: 'Ended (or there was no session).' },
      },
      handle: async ({ req, res }) => {
        const logoutUrl = await idpLogout(req);
        const userId = sessionOf(req)?.userId;
        await sessions.endCurrent(req, res);
        if (userId !== undefined) await users.events.publish([eventOf(originOf(req), 'session.ended', userId, { reason: 'logout' })]);
        const device = deviceOf(req);
        if (device && (await devices.end(device.userId, device.id))) {
          await users.events.publish([eventOf(originOf(req), 'session.ended', device.userId, { reason: 'logout', kind: 'device', id: device.id })]);
        }
        return logoutUrl ? { body: { logoutUrl } } : { status: 204 };
      },
    }),
  ];
}
