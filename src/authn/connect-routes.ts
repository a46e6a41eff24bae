import { z } from 'zod';
import { Errors } from '../errors.js';
import { checkCsrf } from '../http/csrf.js';
import { endpoint, type Endpoint } from '../http/endpoint.js';
import { toPublicUser } from '../users/model.js';
import { publicUserSchema } from '../users/schemas.js';
import type { SessionManager } from '../sessions/manager.js';
import { DEVICE_NAME_MAX, deviceNameProblem } from '../sessions/devices.js';
import type { CodeSignIn } from './code-sign-in.js';

const connectBody = z.strictObject({
  code: z.string().max(64, 'must be at most 64 characters').meta({ description: 'An invite or recovery code, as typed: case, spaces and dashes do not matter.' }),
  device: z
    .strictObject({
      name: z
        .string()
        .max(DEVICE_NAME_MAX * 4, `must be at most ${DEVICE_NAME_MAX} characters`)
        .transform((name) => name.trim())
        .superRefine((name, ctx) => {
          const problem = name === '' ? null : deviceNameProblem(name);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        })
        .optional()
        .meta({ description: 'What the user will see in their sessions list ("Pixel 8", "Living-room TV").' }),
      kind: z.enum(['browser', 'app']).default('browser').meta({ description: '`browser`: a session cookie. `app`: a device token in the answer.' }),
    })
    .optional(),
});

/** POST /connect: an invite or recovery code signs in one device. */
export function connectEndpoints(sessions: SessionManager, signIn: CodeSignIn): Endpoint[] {
  return [
    endpoint({
      method: 'post',
      path: '/connect',
      tag: 'Sign-in',
      summary: 'Sign one device in with an invite or recovery code',
      description:
        'Each success uses one use of an invite (a recovery code has no limit). A browser gets the `usher.sid` cookie; an app gets a device token to send as `Authorization: Bearer`. Failed attempts are limited per client address, as logins are.',
      access: 'public',
      // Like a login: a cross-site page must not sign a browser into someone else's account.
      before: (req) => checkCsrf(req, sessions.config.publicUrl),
      body: connectBody,
      responses: {
        200: {
          description: 'Signed in.',
          body: z
            .object({
              user: publicUserSchema,
              via: z.enum(['invite', 'recovery_code']),
              token: z.string().optional().meta({ description: 'For an app: its device token (`usd_…`), shown this once.' }),
            })
            .strict(),
        },
      },
      errors: [
        Errors.inviteTypo,
        Errors.inviteInvalid,
        Errors.inviteExpired,
        Errors.inviteUsedUp,
        Errors.inviteRevoked,
        Errors.inviteReplaced,
        Errors.accountDisabled,
        Errors.passwordLoginOff,
        Errors.tooManyAttempts,
        Errors.csrf,
      ],
      handle: async ({ req, res, body }) => {
        const kind = body.device?.kind ?? 'browser';
        const name = body.device?.name || (kind === 'app' ? 'App' : 'Browser');
        const device = { name, kind, userAgent: req.get('user-agent') };
        const redeemed = await signIn.redeem(body.code, device, req.ip);
        if (kind === 'browser') await sessions.start(req, res, redeemed.user, { deviceName: name });
        const now = await signIn.recordLogin(redeemed.user, redeemed.via, req.ip);
        return { body: { user: toPublicUser(now ?? redeemed.user), via: redeemed.via, ...(redeemed.token ? { token: redeemed.token } : {}) } };
      },
    }),
  ];
}
