import { z } from 'zod';
import { Errors, invalidField } from '../errors.js';
import { resourceId } from '../config/parsers.js';
import { endpoint, type Endpoint } from '../http/endpoint.js';
import { originOf } from '../http/origin.js';
import { MAX_ROW_ID, rowId } from '../ids.js';
import { userIdParams } from '../users/schemas.js';
import type { UserService } from '../users/service.js';
import type { UsherAuthz } from './access.js';
import { grantSchema } from './schemas.js';

const TAG = 'Access grants';

/** At most this many checks in one POST /authz/check. */
export const MAX_CHECKS = 100;

const idField = z
  .union([z.string(), z.number()])
  .transform((raw, ctx) => {
    const id = resourceId(raw);
    if (id === undefined) {
      ctx.addIssue({ code: 'custom', message: "must be a resource id (1-128 characters, no space, comma or control character) or '*'" });
      return z.NEVER;
    }
    return id;
  })
  .meta({ description: "The host app's resource id (`3` or `\"3\"`, answered as text), or `*` for every resource of the type." });
const typeField = z.string().max(64).meta({ description: 'A resource type of config `resources:`.' });
const actionField = z.string().max(64);

const resourceSetSchema = z
  .union([z.strictObject({ all: z.literal(true) }), z.strictObject({ ids: z.array(z.string()) })])
  .meta({ id: 'ResourceSet', description: '`{ "all": true }`, or the ids (text) granted: ready for an SQL `IN`.' });

export interface GrantRouteDeps {
  base: string;
  access: UsherAuthz;
  users: UserService;
}

/** Users' access grants to the host app's resources, and asking Usher about them (docs/permissions.md). */
export function grantEndpoints({ base, access, users }: GrantRouteDeps): Endpoint[] {
  const grants = access.grants;
  const grantParams = z.object({ id: rowId('The user id.'), grantId: rowId('The grant id.') });
  /** A type and action of config `resources:`, else a 400 naming the field. */
  const known = (type: string, action: string, at = '') => {
    const declared = grants.types.get(type);
    if (!declared) throw invalidField(`${at}type`, grants.types.size === 0 ? 'no resource type is declared (config resources:)' : `must be one of ${[...grants.types.keys()].join(', ')}`);
    if (!declared.actions.includes(action)) throw invalidField(`${at}action`, `must be one of ${declared.actions.join(', ')}`);
  };
  const check = z.union([
    z.strictObject({ permission: z.string().max(200).meta({ description: '`cert.create` (or `cert:create`).' }) }),
    z.strictObject({ type: typeField, id: idField, action: actionField.optional().meta({ description: '`read` when absent.' }) }),
  ]);

  return [
    endpoint({
      method: 'get',
      path: '/resources',
      tag: TAG,
      summary: 'The resource types the host app declares',
      description: 'Config `resources:` as declared: each type with the actions that may be granted on it (an empty list when none is declared). The console builds its Access controls from it.',
      access: 'signed-in',
      responses: {
        200: {
          description: 'In the order declared.',
          body: z.array(z.strictObject({ type: z.string(), actions: z.array(z.string()), description: z.string() }).meta({ id: 'ResourceType' })),
        },
      },
      handle: () => ({ body: [...grants.types.values()].map((r) => ({ type: r.type, actions: [...r.actions], description: r.description })) }),
    }),
    endpoint({
      method: 'get',
      path: '/users/{id}/grants',
      tag: TAG,
      summary: "A user's access grants",
      access: 'signed-in',
      capabilities: '`grants:read`, or `self:read` for your own account',
      params: userIdParams,
      responses: { 200: { description: 'By type, then resource id.', body: z.array(grantSchema) } },
      errors: [Errors.forbidden, Errors.userNotFound],
      handle: async ({ req, params, caller }) => {
        if (!access.can(caller, caller.id === params.id ? 'self.read' : 'grants.read')) throw Errors.forbidden();
        return { body: await grants.list(params.id, originOf(req)) };
      },
    }),
    endpoint({
      method: 'post',
      path: '/users/{id}/grants',
      tag: TAG,
      summary: 'Grant access to a resource',
      description:
        'One grant per (user, type, resource): another on the same resource answers 409 `grant.exists` (revoke it first to change its actions). ' +
        'Only resources and actions you hold yourself can be granted (admins hold every one).',
      access: 'grants:manage',
      params: userIdParams,
      body: z.strictObject({
        type: typeField,
        id: idField,
        actions: z.array(actionField).min(1).max(32).optional().meta({ description: "The type's `read` (or its first action) when absent." }),
      }),
      responses: { 201: { description: 'The new grant.', body: grantSchema, headers: { Location: { description: "The user's grants.", schema: z.string() } } } },
      errors: [Errors.userNotFound, Errors.grantExists, Errors.escalation],
      handle: async ({ req, params, body }) => {
        const made = await grants.create(params.id, body, originOf(req));
        return { status: 201, headers: { Location: `${base}/users/${params.id}/grants` }, body: made };
      },
    }),
    endpoint({
      method: 'delete',
      path: '/users/{id}/grants/{grantId}',
      tag: TAG,
      summary: 'Revoke a grant',
      description: 'Whatever made it (a group rule gives it again at the next sign-in while the group holds). Only on resources and actions you hold yourself.',
      access: 'grants:manage',
      params: grantParams,
      responses: { 204: { description: 'Revoked.' } },
      errors: [Errors.userNotFound, Errors.grantNotFound, Errors.escalation],
      handle: async ({ req, params }) => {
        await grants.revoke(params.id, params.grantId, originOf(req));
        return { status: 204 };
      },
    }),
    endpoint({
      method: 'post',
      path: '/authz/check',
      tag: TAG,
      summary: 'Ask about permissions and grants',
      description: `Up to ${MAX_CHECKS} checks, answered in order, for the caller or for \`user\` (then \`users:read\` is needed; a disabled user holds nothing).`,
      access: 'signed-in',
      capabilities: '`users:read` to ask about another user',
      body: z.strictObject({
        checks: z.array(check).min(1).max(MAX_CHECKS),
        user: z.number().int().positive().max(MAX_ROW_ID).optional().meta({ description: 'Whom to ask about; the caller when absent.' }),
      }),
      responses: { 200: { description: 'One answer per check.', body: z.strictObject({ results: z.array(z.boolean()) }) } },
      errors: [Errors.forbidden, Errors.userNotFound],
      handle: async ({ req, caller, body }) => {
        let who: { id: number; role: string; active: boolean } = caller;
        if (body.user !== undefined && body.user !== caller.id) {
          if (!access.can(caller, 'users.read')) throw Errors.forbidden();
          // An org admin asks only about their organisation's members (404 for anyone else).
          who = await users.requireFor(body.user, originOf(req), 'users.read');
        }
        const results = body.checks.map((c, i) => {
          if ('permission' in c) {
            if (!access.isDeclared(c.permission.replace(':', '.'))) throw invalidField(`checks[${i}].permission`, `${c.permission} is not a declared permission (GET /permissions lists them)`);
            return who.active && access.can(who, c.permission);
          }
          const action = c.action ?? 'read';
          known(c.type, action, `checks[${i}].`);
          return who.active && access.can(who, { type: c.type, id: c.id, action });
        });
        return { body: { results } };
      },
    }),
    endpoint({
      method: 'get',
      path: '/authz/resources',
      tag: TAG,
      summary: 'The resources you may reach',
      access: 'signed-in',
      query: z.strictObject({ type: typeField, action: actionField.optional().meta({ description: '`read` when absent.' }) }),
      responses: { 200: { description: 'Every resource of the type, or the ids granted.', body: resourceSetSchema } },
      handle: ({ caller, query }) => {
        const action = query.action ?? 'read';
        known(query.type, action);
        return { body: access.resources(caller, query.type, action) };
      },
    }),
  ];
}
