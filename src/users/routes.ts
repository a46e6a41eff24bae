import type { Request, Response } from 'express';
import { z } from 'zod';
import { Errors, invalidField } from '../errors.js';
import { endpoint, type Endpoint } from '../http/endpoint.js';
import { originOf } from '../http/origin.js';
import type { Authorizer } from '../authz/enforcer.js';
import { toPublicUser, type User, type UserRecord } from './model.js';
import { listQuerySchema, nextLink } from './list-query.js';
import { dropUnchanged, mayHoldUnchanged } from './read-only.js';
import { SELF_FIELDS, publicUserSchema, userIdParams, type UserSchemas } from './schemas.js';
import type { UserService, UserPatch } from './service.js';
import type { Grant } from '../grants/model.js';
import { grantSchema } from '../grants/schemas.js';

const TAG = 'Users';
/** One user's detail: the list rows' fields and their grants. */
const userDetailSchema = publicUserSchema
  .extend({ grants: z.array(grantSchema).meta({ description: "The user's access grants to the host app's resources (GET /users/{id}/grants)." }) })
  .meta({ id: 'UserDetail' });
const user = { description: 'The user.', body: publicUserSchema };
const apiKeyBody = z.object({ apiKey: z.string().meta({ description: 'The API key (`ush_…`).' }) }).strict();
const updateErrors = [
  Errors.userNotFound,
  Errors.forbidden,
  Errors.usernameTaken,
  Errors.emailTaken,
  Errors.lastAdmin,
  Errors.adminNeedsPassword,
  Errors.wrongCurrentPassword,
  Errors.passwordLoginOff,
  Errors.tooManyAttempts,
  Errors.busy,
  Errors.escalation,
  Errors.targetHoldsMore,
];

export interface UserRouteDeps {
  /** Where the API is served, for the Location of a new user. */
  base: string;
  users: UserService;
  authz: Authorizer;
  schemas: UserSchemas;
  /** A user's access grants, answered with GET /users/{id}. */
  grantsOf: (userId: number) => Promise<readonly Grant[]>;
  /** Makes a checked update: where a password change meets the login limits and the caller's session. */
  applyUpdate: (req: Request, res: Response, id: number, patch: UserPatch, currentPassword: string | undefined) => Promise<UserRecord>;
}

/** The users API: the caller's own account, and everyone's for those who hold the capabilities. */
export function userEndpoints({ base, users, authz, schemas, grantsOf, applyUpdate }: UserRouteDeps): Endpoint[] {
  const can = (caller: User, object: string, action: string) => {
    if (!authz.can(caller, object, action)) throw Errors.forbidden();
  };

  const writable: ReadonlySet<string> = new Set(Object.keys(schemas.update.shape));

  /**
   * Who may send what, decided before the body is parsed: without (users, update) only your own name, email
   * and password. react-admin's `<Edit>` sends the whole record back: what it holds unchanged is dropped.
   */
  async function prepareUpdate(sent: Record<string, unknown>, id: number, caller: User) {
    // GET /users/{id}'s grants, sent back whole by react-admin: grants change through their own routes, and
    // others change them meanwhile (as a recovery code), so any list is no change.
    const { grants, ...raw } = sent;
    if (grants !== undefined && !Array.isArray(grants)) raw.grants = grants;
    const admin = authz.can(caller, 'users', 'update');
    if (!admin) {
      if (caller.id !== id) throw Errors.forbidden();
      can(caller, 'self', 'update');
    }
    const { body, readOnly } = mayHoldUnchanged(raw, writable) ? dropUnchanged(raw, toPublicUser(await users.require(id)), writable) : { body: raw, readOnly: undefined };
    if (!admin) {
      const refused = Object.keys(body).filter((k) => !SELF_FIELDS.has(k));
      if (refused.length > 0) throw Errors.forbidden(`${refused.join(', ')}: you may not change this`);
    }
    if (readOnly !== undefined) throw invalidField(readOnly, 'is read-only; send it as the server returned it, or leave it out');
    return body;
  }

  async function update(req: Request, res: Response, id: number, caller: User & { readonly withhold?: ReadonlySet<string> }, body: z.output<UserSchemas['update']>) {
    const { currentPassword, ...fields } = body;
    if (fields.role !== undefined) can(caller, 'users', 'set-role');
    // Letting an external account use a password goes around its provider's MFA and group checks.
    if (fields.passwordLogin !== undefined) can(caller, 'users', 'set-password-login');
    // Moving a user to another organisation is a global admin's (seed 003: "Superuser only").
    if (fields.organizationId !== undefined) can(caller, 'users', 'set-org');
    if (fields.password === null && !authz.can(caller, 'users', 'update')) throw Errors.forbidden('password: only an admin can clear a password');
    // Another user's password is a credential that outlives a device: what withholds resetting it withholds this.
    if (typeof fields.password === 'string' && id !== caller.id && caller.withhold?.has('users.reset-password')) {
      throw Errors.forbidden("password: this credential may not set another user's password");
    }
    return { body: toPublicUser(await applyUpdate(req, res, id, fields as UserPatch, currentPassword)) };
  }

  const meUpdate = (method: 'put' | 'patch') =>
    endpoint({
      method,
      path: '/me',
      tag: TAG,
      summary: method === 'put' ? 'Update your account (react-admin sends the whole record)' : 'Update your account',
      description:
        'Your name, email and password; changing the password needs `currentPassword` and ends your other sessions. Fields the server returned, sent back unchanged, are ignored.',
      access: 'signed-in',
      capabilities: '`self:update`, or `users:update` for more fields',
      body: schemas.update,
      prepareBody: (raw, { caller }) => prepareUpdate(raw, caller.id, caller),
      responses: { 200: user },
      errors: updateErrors,
      handle: ({ req, res, caller, body }) => update(req, res, caller.id, caller, body),
    });

  const userUpdate = (method: 'put' | 'patch') =>
    endpoint({
      method,
      path: '/users/{id}',
      tag: TAG,
      summary: method === 'put' ? 'Update a user (react-admin sends the whole record)' : 'Update a user',
      description: 'Changing the role needs `users:set-role`; `passwordLogin` needs `users:set-password-login`. Fields sent back unchanged are ignored.',
      access: 'signed-in',
      capabilities: '`users:update`, or `self:update` for your own name, email and password',
      params: userIdParams,
      body: schemas.update,
      prepareBody: (raw, { params, caller }) => prepareUpdate(raw, params.id, caller),
      responses: { 200: user },
      errors: updateErrors,
      handle: ({ req, res, params, caller, body }) => update(req, res, params.id, caller, body),
    });

  return [
    // The caller's own routes first: they are the most frequent.
    endpoint({
      method: 'get',
      path: '/me',
      tag: TAG,
      summary: 'Who you are',
      access: 'self:read',
      responses: { 200: user },
      handle: ({ caller }) => ({ body: toPublicUser(caller) }),
    }),
    meUpdate('put'),
    meUpdate('patch'),
    endpoint({
      method: 'get',
      path: '/me/api-key',
      tag: TAG,
      summary: 'Your API key',
      description: 'Shown again because it is stored encrypted; 409 when the server secret changed since (rotate it).',
      access: 'self:api-key',
      responses: { 200: { description: 'Your key.', body: apiKeyBody } },
      errors: [Errors.apiKeyUnreadable, Errors.userNotFound],
      handle: async ({ caller }) => {
        const apiKey = users.readApiKey(await users.require(caller.id));
        if (apiKey === null) throw Errors.apiKeyUnreadable();
        return { body: { apiKey } };
      },
    }),
    endpoint({
      method: 'post',
      path: '/me/api-key',
      tag: TAG,
      summary: 'Rotate your API key',
      description: 'The old key stops working at once.',
      access: 'self:api-key',
      responses: { 200: { description: 'Your new key.', body: apiKeyBody } },
      errors: [Errors.userNotFound],
      handle: async ({ req, caller }) => ({ body: { apiKey: await users.rotateApiKey(caller.id, originOf(req)) } }),
    }),
    endpoint({
      method: 'get',
      path: '/users',
      tag: TAG,
      summary: 'List users',
      description:
        'Paged and filtered; the total before paging is in `X-Total-Count` (react-admin, Navidrome). Page by `offset`, or follow the `Link` header\'s next page (a cursor in `after`: as fast on the last page as on the first).',
      access: 'users:list',
      query: listQuerySchema,
      responses: {
        200: {
          description: 'One page of users.',
          body: z.array(publicUserSchema),
          headers: {
            'X-Total-Count': { description: 'Users matching the filters, all pages.', schema: z.string().regex(/^\d+$/) },
            Link: { description: 'The next page (`<…?after=…>; rel="next"`), when there is one.', schema: z.string().optional() },
          },
        },
      },
      handle: async ({ req, query, caller }) => {
        // Holding users.list only through an organisation role: that organisation's members alone (0 is no organisation's id).
        if (!authz.canIn(caller, null, 'users', 'list')) query.orgId = caller.orgId ?? 0;
        const { users: page, total, next } = await users.list(query);
        const headers: Record<string, string> = { 'X-Total-Count': String(total) };
        if (next) headers.Link = nextLink(req.originalUrl, query, next);
        return { headers, body: page.map(toPublicUser) };
      },
    }),
    endpoint({
      method: 'post',
      path: '/users',
      tag: TAG,
      summary: 'Create a user',
      access: 'users:create',
      body: schemas.create,
      responses: {
        201: { ...user, description: 'The new user.', headers: { Location: { description: "The new user's URL.", schema: z.string() } } },
      },
      errors: [Errors.usernameTaken, Errors.emailTaken, Errors.adminNeedsPassword, Errors.escalation],
      handle: async ({ req, body, caller }) => {
        // An org admin's new users join their organisation unless they say otherwise (and elsewhere is refused).
        const organizationId = body.organizationId === undefined && !authz.canIn(caller, null, 'users', 'create') ? caller.orgId : body.organizationId;
        const { user: made } = await users.create({ ...body, organizationId }, originOf(req));
        return { status: 201, headers: { Location: `${base}/users/${made.id}` }, body: toPublicUser(made) };
      },
    }),
    endpoint({
      method: 'get',
      path: '/users/{id}',
      tag: TAG,
      summary: 'One user',
      access: 'signed-in',
      capabilities: '`users:read`, or `self:read` for your own account',
      params: userIdParams,
      responses: { 200: { description: 'The user, with their access grants.', body: userDetailSchema } },
      errors: [Errors.forbidden, Errors.userNotFound],
      handle: async ({ req, params, caller }) => {
        can(caller, caller.id === params.id ? 'self' : 'users', 'read');
        return { body: { ...toPublicUser(await users.requireFor(params.id, originOf(req), 'users.read')), grants: [...(await grantsOf(params.id))] } };
      },
    }),
    userUpdate('put'),
    userUpdate('patch'),
    endpoint({
      method: 'delete',
      path: '/users/{id}',
      tag: TAG,
      summary: 'Delete a user',
      description: 'Answers the id, as react-admin reads it. Nobody deletes themselves; the last enabled admin stays.',
      access: 'users:delete',
      params: userIdParams,
      responses: { 200: { description: 'Deleted.', body: z.object({ id: z.number().int() }).strict() } },
      errors: [Errors.userNotFound, Errors.cannotDeleteSelf, Errors.lastAdmin, Errors.targetHoldsMore],
      handle: async ({ req, params }) => {
        await users.remove(params.id, originOf(req));
        return { body: { id: params.id } };
      },
    }),
    endpoint({
      method: 'post',
      path: '/users/{id}/status',
      tag: TAG,
      summary: 'Enable or disable a user',
      description: "Disabling ends the user's sessions; the last enabled admin stays enabled.",
      access: 'users:set-status',
      params: userIdParams,
      body: schemas.status,
      responses: { 200: user },
      errors: [Errors.userNotFound, Errors.lastAdmin, Errors.targetHoldsMore],
      handle: async ({ req, params, body }) => ({ body: toPublicUser(await users.setActive(params.id, body.active, originOf(req))) }),
    }),
    endpoint({
      method: 'post',
      path: '/users/{id}/reset-password',
      tag: TAG,
      summary: "Set a user's password",
      description: "Ends the user's sessions.",
      access: 'users:reset-password',
      params: userIdParams,
      body: schemas.resetPassword,
      responses: { 204: { description: 'Done.' } },
      errors: [Errors.userNotFound, Errors.targetHoldsMore],
      handle: async ({ req, params, body }) => {
        await users.resetPassword(params.id, body.password, originOf(req));
        return { status: 204 };
      },
    }),
    endpoint({
      method: 'post',
      path: '/users/{id}/api-key',
      tag: TAG,
      summary: "Rotate a user's API key",
      description: 'The old key stops working at once; the user reads the new one from `GET /me/api-key`.',
      access: 'users:rotate-api-key',
      params: userIdParams,
      responses: { 204: { description: 'Done.' } },
      errors: [Errors.userNotFound, Errors.targetHoldsMore],
      handle: async ({ req, params }) => {
        await users.rotateApiKey(params.id, originOf(req));
        return { status: 204 };
      },
    }),
  ];
}
