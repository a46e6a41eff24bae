import type { Request } from 'express';
import { z } from 'zod';
import { rowId } from '../ids.js';
import { Errors } from '../errors.js';
import { endpoint, type Endpoint } from '../http/endpoint.js';
import { originOf } from '../http/origin.js';
import type { Origin } from '../events/stream.js';
import { userIdParams } from '../users/schemas.js';
import { INVITE_STATES, toPublicInvite } from './model.js';
import type { InviteService, InviteView, Minted } from './service.js';

const TAG = 'Invites';

const inviteSchema = z
  .object({
    id: z.number().int(),
    userId: z.number().int(),
    state: z.enum(INVITE_STATES as [string, ...string[]]).meta({ description: '`pending` (redeemable), `used_up`, `expired`, `revoked` or `replaced`.' }),
    uses: z.number().int().nullable().meta({ description: 'Redemptions allowed; null: unlimited.' }),
    usesLeft: z.number().int().nullable().meta({ description: 'null: unlimited.' }),
    expiresInDays: z.number().int().nullable().meta({ description: 'The window given at creation, given again by a resend; null: never expires.' }),
    expiresAt: z.iso.datetime().nullable(),
    createdAt: z.iso.datetime(),
    createdBy: z.number().int().nullable().meta({ description: 'The id of the admin who created it.' }),
    resentAt: z.iso.datetime().nullable(),
    endedAt: z.iso.datetime().nullable().meta({ description: 'When it was revoked or replaced.' }),
    redemptions: z
      .object({
        count: z.number().int(),
        lastAt: z.iso.datetime().nullable(),
        devices: z.array(z.string()).meta({ description: 'The names of the devices it signed in, newest first (20 at most).' }),
      })
      .strict(),
  })
  .strict()
  .meta({ id: 'Invite' });

const mintedSchema = z
  .object({
    invite: inviteSchema,
    code: z.string().meta({ description: 'The code, shown this once: `XXXX-XXXX-XXXX-XXXX-XXXX`.' }),
    link: z.string().meta({ description: '`{publicUrl}/connect#code=<code>`: the code after `#` never reaches a server log.' }),
  })
  .strict();

/** 1 to `max`, or null; absent: the default. */
const limit = (max: number, fallback: number, nullMeans: string) => {
  const problem = `must be an integer from 1 to ${max}, or null for ${nullMeans}`;
  return z
    .number({ error: problem })
    .int(problem)
    .min(1, problem)
    .max(max, problem)
    .nullable()
    .default(fallback)
    .meta({ description: `1 to ${max}, or null for ${nullMeans}; default ${fallback}.` });
};

const createBody = z.strictObject({ uses: limit(1000, 5, 'unlimited'), expiresInDays: limit(365, 1, 'never') });

const inviteParams = userIdParams.extend({
  inviteId: rowId('The invite id.'),
});

export interface InviteRouteDeps {
  invites: InviteService;
  /** Refuses reading a user out of the caller's reach (404 user.not_found; src/authz/targets.ts). */
  reach: (userId: number, origin: Origin) => Promise<unknown>;
  /** `server.publicUrl`; unset: the request's own scheme and host. */
  publicUrl: string | undefined;
}

/** An admin's invites for a user: mint, list, resend, revoke. Redeeming is `POST /connect`. */
export function inviteEndpoints({ invites, publicUrl, reach }: InviteRouteDeps): Endpoint[] {
  const answer = (view: InviteView, now = Date.now()) => toPublicInvite(view.invite, view.redemptions, now);
  const minted = (req: Request, m: Minted) => ({
    invite: answer(m.view),
    code: m.code,
    link: `${publicUrl ?? `${req.protocol}://${req.get('host') ?? ''}`}/connect#code=${m.code}`,
  });

  return [
    endpoint({
      method: 'post',
      path: '/users/{id}/invites',
      tag: TAG,
      summary: 'Create an invite',
      description: 'The code and link are answered this once; the server keeps only a fingerprint. The invite the user had, if it could still be redeemed, is `replaced`.',
      access: 'invites:create',
      params: userIdParams,
      body: createBody,
      responses: { 201: { description: 'The invite, its code and link.', body: mintedSchema } },
      errors: [Errors.userNotFound, Errors.passwordLoginOff, Errors.targetHoldsMore],
      handle: async ({ req, params, body }) => ({ status: 201, body: minted(req, await invites.create(params.id, body, originOf(req))) }),
    }),
    endpoint({
      method: 'get',
      path: '/users/{id}/invites',
      tag: TAG,
      summary: "A user's invites",
      access: 'invites:read',
      params: userIdParams,
      responses: {
        200: {
          description: 'The pending invite, and every other, newest first.',
          body: z.object({ active: inviteSchema.nullable(), history: z.array(inviteSchema) }).strict(),
        },
      },
      errors: [Errors.userNotFound],
      handle: async ({ req, params }) => {
        await reach(params.id, originOf(req));
        // One clock for the split and the states: an invite expiring meanwhile is not `active` and `expired`.
        const now = Date.now();
        const { active, history } = await invites.list(params.id, now);
        return { body: { active: active && answer(active, now), history: history.map((v) => answer(v, now)) } };
      },
    }),
    endpoint({
      method: 'post',
      path: '/users/{id}/invites/{inviteId}/resend',
      tag: TAG,
      summary: 'Resend an invite',
      description: 'A new code in place: the old code and link stop working at once. The uses left stay; the expiry restarts for the window first given.',
      access: 'invites:create',
      params: inviteParams,
      responses: { 200: { description: 'The invite, its new code and link.', body: mintedSchema } },
      errors: [Errors.userNotFound, Errors.inviteNotFound, Errors.inviteNotActive, Errors.targetHoldsMore],
      handle: async ({ req, params }) => ({ body: minted(req, await invites.resend(params.id, params.inviteId, originOf(req))) }),
    }),
    endpoint({
      method: 'delete',
      path: '/users/{id}/invites/{inviteId}',
      tag: TAG,
      summary: 'Revoke an invite',
      description: 'It stays in the history, `revoked`.',
      access: 'invites:revoke',
      params: inviteParams,
      responses: { 200: { description: 'The invite, revoked.', body: inviteSchema } },
      errors: [Errors.userNotFound, Errors.inviteNotFound, Errors.inviteNotActive, Errors.targetHoldsMore],
      handle: async ({ req, params }) => ({ body: answer(await invites.revoke(params.id, params.inviteId, originOf(req))) }),
    }),
  ];
}
