import { z } from 'zod';
import { Errors } from '../errors.js';
import { endpoint, type Endpoint } from '../http/endpoint.js';
import { originOf } from '../http/origin.js';
import type { UserService } from '../users/service.js';
import { userIdParams } from '../users/schemas.js';
import { eventOf } from '../events/stream.js';
import { sessionOf, type SessionManager } from './manager.js';

const TAG = 'Sessions';

const sessionSchema = z
  .object({
    id: z.string().meta({ description: "The session's public id (not the cookie)." }),
    createdAt: z.iso.datetime(),
    lastSeenAt: z.iso.datetime(),
    ip: z.string().nullable(),
    userAgent: z.string().nullable(),
    current: z.boolean().meta({ description: 'The session this request came with.' }),
  })
  .strict()
  .meta({ id: 'Session' });

/** GET /me/sessions, DELETE /me/sessions/{sessionId}, DELETE /users/{id}/sessions. */
export function sessionEndpoints(users: UserService, sessions: SessionManager): Endpoint[] {
  return [
    endpoint({
      method: 'get',
      path: '/me/sessions',
      tag: TAG,
      summary: 'Your sessions',
      access: 'self:sessions',
      responses: { 200: { description: 'Your live sessions.', body: z.array(sessionSchema) } },
      handle: async ({ req, caller }) => ({ body: await sessions.list(caller.id, sessionOf(req)?.userId === caller.id ? req.sessionID : undefined) }),
    }),
    endpoint({
      method: 'delete',
      path: '/me/sessions/{sessionId}',
      tag: TAG,
      summary: 'End one of your sessions',
      access: 'self:sessions',
      // Any other spelling cannot be a session: the same 404 as an unknown one.
      params: z.object({ sessionId: z.string().meta({ description: 'A session id from `GET /me/sessions`.' }) }),
      responses: { 204: { description: 'Ended.' } },
      errors: [Errors.sessionNotFound],
      handle: async ({ req, params, caller }) => {
        if (!/^[A-Za-z0-9_-]{22}$/.test(params.sessionId)) throw Errors.sessionNotFound();
        await sessions.end(caller.id, params.sessionId);
        await users.events.publish([eventOf(originOf(req), 'session.ended', caller.id, { reason: 'revoked' })]);
        return { status: 204 };
      },
    }),
    endpoint({
      method: 'delete',
      path: '/users/{id}/sessions',
      tag: TAG,
      summary: "End all of a user's sessions",
      access: 'users:end-sessions',
      params: userIdParams,
      responses: { 204: { description: 'Ended.' } },
      errors: [Errors.userNotFound],
      handle: async ({ req, params }) => {
        await users.require(params.id);
        await sessions.endAll(params.id);
        await users.events.publish([eventOf(originOf(req), 'session.ended', params.id, { reason: 'ended_by_admin', all: true })]);
        return { status: 204 };
      },
    }),
  ];
}
