import { z } from 'zod';
import { Errors } from '../errors.js';
import { endpoint, type Endpoint } from '../http/endpoint.js';
import { originOf } from '../http/origin.js';
import { toPublicUser } from '../users/model.js';
import { publicUserSchema, type UserSchemas } from '../users/schemas.js';
import type { UserService } from '../users/service.js';

/** Public routes a login page needs before anyone is signed in. */
export function publicAuthEndpoints(users: UserService, schemas: UserSchemas): Endpoint[] {
  return [
    endpoint({
      method: 'get',
      path: '/status',
      tag: 'Setup',
      summary: 'Whether the first admin still has to be made',
      access: 'public',
      responses: { 200: { description: 'The status.', body: z.object({ setupRequired: z.boolean() }).strict() } },
      handle: async () => ({ body: { setupRequired: (await users.count()) === 0 } }),
    }),
    endpoint({
      method: 'post',
      path: '/setup',
      tag: 'Setup',
      summary: 'Make the first admin',
      description: 'Only while there is no user at all; answers the admin and their API key.',
      access: 'public',
      body: schemas.credentials,
      responses: {
        201: { description: 'The first admin.', body: z.object({ user: publicUserSchema, apiKey: z.string() }).strict() },
      },
      errors: [Errors.setupDone],
      handle: async ({ req, body }) => {
        const { user, apiKey } = await users.setupFirst(body, originOf(req));
        return { status: 201, body: { user: toPublicUser(user), apiKey } };
      },
    }),
  ];
}
