import { z } from 'zod';
import type { Request } from 'express';
import { Errors } from '../errors.js';
import { endpoint, type Endpoint } from '../http/endpoint.js';
import { originOf } from '../http/origin.js';
import type { UserService } from '../users/service.js';
import { userIdParams } from '../users/schemas.js';
import { eventOf } from '../events/stream.js';
import { deviceOf } from '../authn/methods/device-token.js';
import { sessionOf, type SessionManager, type SessionView } from './manager.js';
import type { DeviceRecord, DeviceTokens } from './devices.js';

const TAG = 'Sessions';

const sessionSchema = z
  .object({
    id: z.string().meta({ description: "The session's public id (neither the cookie nor the device token)." }),
    kind: z.enum(['browser', 'app']).meta({ description: '`browser`: a session cookie. `app`: a device token (`Authorization: Bearer usd_...`).' }),
    name: z.string().nullable().meta({ description: 'The device name the app gave when it connected; null for a browser session.' }),
    createdAt: z.iso.datetime(),
    lastSeenAt: z.iso.datetime().meta({ description: 'Last use, to the minute.' }),
    ip: z.string().nullable().meta({ description: 'The address of the last use (of sign-in, for a device not used since).' }),
    userAgent: z.string().nullable(),
    method: z.string().meta({ description: 'How it signed in: `password`, `oidc:<provider id>`, or `code` (an invite or recovery code, through `POST /connect`: every app signs in this way).' }),
    current: z.boolean().meta({ description: 'The session this request came with.' }),
  })
  .strict()
  .meta({ id: 'Session' });

/** A device token as GET /me/sessions lists it. */
function deviceView(d: DeviceRecord, current: string | undefined): SessionView {
  return {
    id: d.id,
    kind: 'app',
    name: d.name,
    createdAt: new Date(d.createdAt).toISOString(),
    lastSeenAt: new Date(d.lastUsedAt).toISOString(),
    ip: d.ip,
    userAgent: d.userAgent,
    method: 'code',
    current: d.id === current,
  };
}

/** GET /me/sessions, DELETE /me/sessions/{sessionId}, GET and DELETE /users/{id}/sessions, DELETE /users/{id}/sessions/{sessionId}: browser sessions and device tokens alike. */
export function sessionEndpoints(users: UserService, sessions: SessionManager, devices: DeviceTokens): Endpoint[] {
  /**
   * The user acted on, through the users guard: out of an org admin's organisation 404; an account holding
   * more than the caller (an admin's, for a non-admin) 403: nobody reaches its sessions.
   */
  const target = (req: Request, id: number) => users.reach(id, originOf(req), 'users.end-sessions');
  return [
    endpoint({
      method: 'get',
      path: '/me/sessions',
      tag: TAG,
      summary: 'Your sessions',
      access: 'self:sessions',
      description: 'Browser sessions and signed-in apps (device tokens), oldest first.',
      responses: { 200: { description: 'Your live sessions.', body: z.array(sessionSchema) } },
      handle: async ({ req, caller }) => {
        const browsers = await sessions.list(caller.id, sessionOf(req)?.userId === caller.id ? req.sessionID : undefined);
        const apps = (await devices.list(caller.id)).map((d) => deviceView(d, deviceOf(req)?.id));
        return { body: [...browsers, ...apps].sort((a, b) => a.createdAt.localeCompare(b.createdAt)) };
      },
    }),
    endpoint({
      method: 'delete',
      path: '/me/sessions/{sessionId}',
      tag: TAG,
      summary: 'End one of your sessions',
      description: 'A browser session, or an app signed in with a device token (its token stops working at once).',
      access: 'self:sessions',
      // Any other spelling cannot be a session: the same 404 as an unknown one.
      params: z.object({ sessionId: z.string().meta({ description: 'A session id from `GET /me/sessions`.' }) }),
      responses: { 204: { description: 'Ended.' } },
      errors: [Errors.sessionNotFound],
      handle: async ({ req, params, caller }) => {
        if (!/^[A-Za-z0-9_-]{22}$/.test(params.sessionId)) throw Errors.sessionNotFound();
        if (await devices.end(caller.id, params.sessionId)) {
          await users.events.publish([eventOf(originOf(req), 'session.ended', caller.id, { reason: 'revoked', kind: 'device', id: params.sessionId })]);
          return { status: 204 };
        }
        await sessions.end(caller.id, params.sessionId);
        await users.events.publish([eventOf(originOf(req), 'session.ended', caller.id, { reason: 'revoked' })]);
        return { status: 204 };
      },
    }),
    endpoint({
      method: 'get',
      path: '/users/{id}/sessions',
      tag: TAG,
      summary: "A user's sessions",
      description:
        "Browser sessions and signed-in apps (device tokens) of any user, oldest first, as `GET /me/sessions` lists yours. The same permission as ending them: who may end a user's sessions may see which there are. `current` is true only for the one this request came with.",
      access: 'users:end-sessions',
      params: userIdParams,
      responses: { 200: { description: "The user's live sessions.", body: z.array(sessionSchema) } },
      errors: [Errors.userNotFound, Errors.targetHoldsMore],
      handle: async ({ req, params }) => {
        await target(req, params.id);
        const browsers = await sessions.list(params.id, sessionOf(req)?.userId === params.id ? req.sessionID : undefined);
        const apps = (await devices.list(params.id)).map((d) => deviceView(d, deviceOf(req)?.id));
        return { body: [...browsers, ...apps].sort((a, b) => a.createdAt.localeCompare(b.createdAt)) };
      },
    }),
    endpoint({
      method: 'delete',
      path: '/users/{id}/sessions/{sessionId}',
      tag: TAG,
      summary: "End one of a user's sessions",
      description: 'A browser session, or an app signed in with a device token (its token stops working at once), of any user.',
      access: 'users:end-sessions',
      params: userIdParams.extend({ sessionId: z.string().meta({ description: 'A session id from `GET /users/{id}/sessions`.' }) }),
      responses: { 204: { description: 'Ended.' } },
      errors: [Errors.userNotFound, Errors.sessionNotFound, Errors.targetHoldsMore],
      handle: async ({ req, params }) => {
        await target(req, params.id);
        if (!/^[A-Za-z0-9_-]{22}$/.test(params.sessionId)) throw Errors.sessionNotFound();
        if (await devices.end(params.id, params.sessionId)) {
          await users.events.publish([eventOf(originOf(req), 'session.ended', params.id, { reason: 'ended_by_admin', kind: 'device', id: params.sessionId })]);
          return { status: 204 };
        }
        await sessions.end(params.id, params.sessionId);
        await users.events.publish([eventOf(originOf(req), 'session.ended', params.id, { reason: 'ended_by_admin' })]);
        return { status: 204 };
      },
    }),
    endpoint({
      method: 'delete',
      path: '/users/{id}/sessions',
      tag: TAG,
      summary: "End all of a user's sessions",
      description: 'Browser sessions and device tokens alike.',
      access: 'users:end-sessions',
      params: userIdParams,
      responses: { 204: { description: 'Ended.' } },
      errors: [Errors.userNotFound, Errors.targetHoldsMore],
      handle: async ({ req, params }) => {
        await target(req, params.id);
        await devices.endAll(params.id);
        await sessions.endAll(params.id);
        await users.events.publish([eventOf(originOf(req), 'session.ended', params.id, { reason: 'ended_by_admin', all: true })]);
        return { status: 204 };
      },
    }),
  ];
}
