import type { Request } from 'express';
import { z } from 'zod';
import { Errors } from '../errors.js';
import { endpoint, type Endpoint } from '../http/endpoint.js';
import { originOf } from '../http/origin.js';
import { rowId } from '../ids.js';
import { userIdParams } from '../users/schemas.js';
import { MAX_KEYS_PER_USER, toPublicKey } from './model.js';
import type { ScopedKeyService } from './service.js';

const TAG = 'Scoped API keys';

const keySchema = z
  .object({
    id: z.number().int(),
    name: z.string(),
    prefix: z.string().meta({ description: 'The first characters of the key (`usa_…`), to recognise it; not a secret.' }),
    permissions: z.array(z.string()).meta({ description: 'The scope: the key may do what both it and its owner hold.' }),
    createdAt: z.iso.datetime(),
    lastUsedAt: z.iso.datetime().nullable().meta({ description: 'Recorded at most once a minute; null: never used.' }),
    expiresAt: z.iso.datetime().nullable().meta({ description: 'null: never expires.' }),
  })
  .strict();

const createdSchema = keySchema.extend({ key: z.string().meta({ description: 'The key (`usa_…`), shown this once: only its digest is kept.' }) }).strict();

const createBody = z
  .object({
    name: z
      .string()
      .trim()
      .min(1)
      .max(100)
      // PostgreSQL refuses a NUL in text: a 400 here, not a 500 at the insert.
      // eslint-disable-next-line no-control-regex
      .refine((v) => !/[\u0000-\u001f\u007f]/.test(v), 'must not hold control characters')
      .meta({ description: 'Unique among your keys: what the key is for ("Music player").' }),
    permissions: z
      .array(z.string().max(200))
      .min(1)
      .max(200)
      .meta({ description: 'Declared permissions you hold (`self.read`, `library.read`); your scoped key can only make keys within its own scope.' }),
    expiresInDays: z.number().int().min(1).max(3650).nullable().optional().meta({ description: '1 to 3650; absent or null: never expires.' }),
  })
  .strict();

const keyIdParams = z.object({ keyId: rowId('The scoped key id.') });
const userKeyParams = userIdParams.extend({ keyId: rowId('The scoped key id.') });

/**
 * Scoped API keys: your own (`self:api-keys`) and, for admins, anyone's (`users:api-keys`: list and revoke;
 * nobody makes keys for someone else).
 */
/**
 * `reach` lets the caller at the user's keys through the users guard: out of an org admin's organisation 404,
 * an account holding more than the caller 403 (the revocation checks it again in its transaction).
 */
export function scopedKeyEndpoints(keys: ScopedKeyService, reach: (req: Request, userId: number) => Promise<void>): Endpoint[] {
  const list = { description: 'The keys, oldest first (never the keys themselves).', body: z.array(keySchema) };
  return [
    endpoint({
      method: 'post',
      path: '/me/api-keys',
      tag: TAG,
      summary: 'Make a scoped API key',
      description: `Answered this once. Every permission must be declared and held by you now (within the scope of the key making the request, if it is one). At most ${MAX_KEYS_PER_USER} keys per user.`,
      access: 'self:api-keys',
      body: createBody,
      responses: { 201: { description: 'The new key, shown this once.', body: createdSchema } },
      errors: [Errors.escalation, Errors.apiKeyNameTaken, Errors.apiKeyLimit, Errors.userNotFound],
      handle: async ({ req, caller, body }) => {
        const { key, record } = await keys.create(caller, body, originOf(req));
        return { status: 201, body: { ...toPublicKey(record), key } };
      },
    }),
    endpoint({
      method: 'get',
      path: '/me/api-keys',
      tag: TAG,
      summary: 'Your scoped API keys',
      access: 'self:api-keys',
      responses: { 200: list },
      errors: [Errors.userNotFound],
      handle: async ({ caller }) => ({ body: (await keys.list(caller.id)).map(toPublicKey) }),
    }),
    endpoint({
      method: 'delete',
      path: '/me/api-keys/{keyId}',
      tag: TAG,
      summary: 'Revoke one of your scoped API keys',
      description: 'It is refused from the next request on.',
      access: 'self:api-keys',
      params: keyIdParams,
      responses: { 204: { description: 'Revoked.' } },
      errors: [Errors.apiKeyNotFound, Errors.userNotFound],
      handle: async ({ req, caller, params }) => {
        await keys.revoke(caller.id, params.keyId, originOf(req));
        return { status: 204 };
      },
    }),
    endpoint({
      method: 'get',
      path: '/users/{id}/api-keys',
      tag: TAG,
      summary: "A user's scoped API keys",
      access: 'users:api-keys',
      params: userIdParams,
      responses: { 200: list },
      errors: [Errors.userNotFound, Errors.targetHoldsMore, Errors.escalation],
      handle: async ({ req, params, caller }) => {
        await reach(req, params.id);
        return { body: (await keys.list(params.id, caller)).map(toPublicKey) };
      },
    }),
    endpoint({
      method: 'delete',
      path: '/users/{id}/api-keys/{keyId}',
      tag: TAG,
      summary: "Revoke a user's scoped API key",
      description: 'It is refused from the next request on.',
      access: 'users:api-keys',
      params: userKeyParams,
      responses: { 204: { description: 'Revoked.' } },
      errors: [Errors.apiKeyNotFound, Errors.userNotFound, Errors.targetHoldsMore, Errors.escalation],
      handle: async ({ req, params, caller }) => {
        await reach(req, params.id);
        await keys.revoke(params.id, params.keyId, originOf(req), caller);
        return { status: 204 };
      },
    }),
  ];
}
