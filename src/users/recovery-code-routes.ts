import { z } from 'zod';
import { Errors } from '../errors.js';
import { endpoint, type Endpoint } from '../http/endpoint.js';
import { originOf } from '../http/origin.js';
import { userIdParams } from './schemas.js';
import type { UserService } from './service.js';

const TAG = 'Recovery codes';
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

const mintedSchema = z
  .object({
    code: z.string().meta({ description: 'The code, shown this once: `XXXX-XXXX-XXXX-XXXX-XXXX`.' }),
    createdAt: z.iso.datetime(),
  })
  .strict();

const stateSchema = z
  .object({
    set: z.boolean(),
    createdAt: z.iso.datetime().nullable().meta({ description: 'When the code was minted; null when none is set.' }),
  })
  .strict();

/**
 * A user's recovery code: minted, read as set or not, and removed by its owner; removed by an admin, who
 * sees only whether one is set (`recoveryCode` on the user). Redeeming it is `POST /connect`.
 */
export function recoveryCodeEndpoints(users: UserService): Endpoint[] {
  return [
    endpoint({
      method: 'post',
      path: '/me/recovery-code',
      tag: TAG,
      summary: 'Mint your recovery code',
      description:
        'Answered this once; the server keeps only a fingerprint. It never expires and has no use limit. Minting again replaces it: the old code stops at once.',
      access: 'self:recovery-code',
      responses: { 201: { description: 'Your new code.', body: mintedSchema } },
      errors: [Errors.userNotFound, Errors.passwordLoginOff],
      handle: async ({ req, caller }) => {
        const { code, user } = await users.mintRecoveryCode(caller.id, originOf(req));
        return { status: 201, body: { code, createdAt: iso(user.recoveryCodeCreatedAt)! } };
      },
    }),
    endpoint({
      method: 'get',
      path: '/me/recovery-code',
      tag: TAG,
      summary: 'Whether you have a recovery code',
      description: 'Never the code itself.',
      access: 'self:recovery-code',
      responses: { 200: { description: 'Set or not, and since when.', body: stateSchema } },
      errors: [Errors.userNotFound],
      handle: async ({ caller }) => {
        // Read from the row, not the caller: another instance may have changed it within the cache's TTL.
        const { recoveryCodeCreatedAt } = await users.require(caller.id);
        return { body: { set: recoveryCodeCreatedAt !== null, createdAt: iso(recoveryCodeCreatedAt) } };
      },
    }),
    endpoint({
      method: 'delete',
      path: '/me/recovery-code',
      tag: TAG,
      summary: 'Remove your recovery code',
      description: 'It stops at once. Without one, nothing changes.',
      access: 'self:recovery-code',
      responses: { 204: { description: 'You have no recovery code now.' } },
      errors: [Errors.userNotFound],
      handle: async ({ req, caller }) => {
        await users.revokeRecoveryCode(caller.id, originOf(req));
        return { status: 204 };
      },
    }),
    endpoint({
      method: 'delete',
      path: '/users/{id}/recovery-code',
      tag: TAG,
      summary: "Revoke a user's recovery code",
      description: 'It stops at once (a leaked code, say). Nobody can read a code back; `recoveryCode` on the user says whether one is set.',
      access: 'users:revoke-recovery-code',
      params: userIdParams,
      responses: { 204: { description: 'The user has no recovery code now.' } },
      errors: [Errors.userNotFound, Errors.targetHoldsMore],
      handle: async ({ req, params }) => {
        await users.revokeRecoveryCode(params.id, originOf(req));
        return { status: 204 };
      },
    }),
  ];
}
