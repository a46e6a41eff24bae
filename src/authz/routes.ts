import { z } from 'zod';
import { Errors } from '../errors.js';
import { endpoint, type Endpoint } from '../http/endpoint.js';
import { originOf } from '../http/origin.js';
import { userIdParams } from '../users/schemas.js';
import type { Authorizer } from './enforcer.js';
import { parsePermission, permissionName } from './permissions.js';
import type { PolicyService } from './policy-service.js';

const TAG = 'Roles and permissions';

const ROLE_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
const roleName = z.string().regex(ROLE_NAME, 'must be a letter, then up to 63 letters, digits, _ . or -').meta({ description: 'A role name (`editor`, `SuperAdmin`).' });

const roleSchema = z
  .object({
    name: z.string(),
    description: z.string(),
    builtIn: z.boolean().meta({ description: 'Defined by policies/policy.csv (`user`, `admin`): not editable, renamed or deleted here.' }),
    inherits: z.array(z.string()).meta({ description: 'The roles whose permissions it holds too.' }),
    permissions: z.array(z.string()).meta({ description: 'Its own permissions (`users.list`); `admin` holds every permission.' }),
    effective: z.array(z.string()).meta({ description: 'Everything it holds, inherited included.' }),
  })
  .strict()
  .meta({ id: 'Role' });

const permissionSchema = z
  .object({
    name: z.string().meta({ description: '`object.action`, e.g. `users.list` or the host app’s `cert.create`.' }),
    description: z.string(),
    source: z.enum(['usher', 'app']).meta({ description: "`usher`: Usher's own API; `app`: declared by the host app." }),
  })
  .strict()
  .meta({ id: 'Permission' });

const userPermissionsSchema = z
  .object({
    role: z.string(),
    inherited: z.array(z.string()).meta({ description: 'What the role gives, its inherited roles included.' }),
    direct: z.array(z.string()).meta({ description: 'Granted to this user alone.' }),
    effective: z.array(z.string()).meta({ description: 'Everything held, in their organisation included.' }),
    organizationId: z.number().int().optional().meta({ description: 'A member of an organisation: its id.' }),
    orgRole: z.string().nullable().optional().meta({ description: 'Their role inside it.' }),
    inOrganization: z.array(z.string()).optional().meta({ description: 'What they hold inside their organisation alone (its role, grants made there).' }),
  })
  .strict()
  .meta({ id: 'UserPermissions' });

const roleParams = z.object({ name: roleName });
const role = { description: 'The role.', body: roleSchema };
const userPermissions = { description: "The user's permissions.", body: userPermissionsSchema };

export interface PolicyRouteDeps {
  /** Where the API is served, for the Location of a new role. */
  base: string;
  policy: PolicyService;
  authz: Authorizer;
}

/** `users.list` or `users:list`, answered dotted; one of the catalogue (else a 400 naming it). */
export function declaredPermission(authz: Authorizer) {
  return z
    .string()
    .transform((value, ctx) => {
      const pair = parsePermission(value);
      if (!pair) {
        ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} is not a permission name (object.action)` });
        return z.NEVER;
      }
      const name = permissionName(...pair);
      if (!authz.isDeclared(name)) {
        ctx.addIssue({ code: 'custom', message: `${name} is not a declared permission (GET /permissions lists them)` });
        return z.NEVER;
      }
      return name;
    })
    .meta({ description: 'A permission name: `users.list` (or `users:list`).' });
}

/** Custom roles, the permission catalogue, and users' direct permissions (docs/permissions.md). */
export function policyEndpoints({ base, policy, authz }: PolicyRouteDeps): Endpoint[] {
  const permission = declaredPermission(authz);
  const permissions = z.array(permission).max(1000);
  const roleList = z.array(roleName).max(100);
  const description = z.string().trim().max(500, 'must be at most 500 characters');
  const createBody = z.strictObject({ name: roleName, description: description.optional(), inherits: roleList.optional(), permissions: permissions.optional() });
  const updateBody = z.strictObject({
    name: roleName.optional().meta({ description: 'A new name renames the role; its holders keep it.' }),
    description: description.optional(),
    inherits: roleList.optional(),
    permissions: permissions.optional(),
  });
  const grantBody = z.strictObject({ grant: permissions.default([]), revoke: permissions.default([]) });

  return [
    endpoint({
      method: 'get',
      path: '/permissions',
      tag: TAG,
      summary: 'Every permission',
      description: "Usher's own and those the host app declares (config `permissions:`).",
      access: 'roles:read',
      responses: { 200: { description: 'The catalogue.', body: z.array(permissionSchema) } },
      handle: () => ({ body: authz.permissions }),
    }),
    endpoint({
      method: 'get',
      path: '/me/permissions',
      tag: TAG,
      summary: 'The permissions you hold',
      description:
        'As you are authenticated now: through your role and direct grants, within a scoped key\'s scope, without what a device is not given. What a scoped key of yours may hold; readable without `roles:read`.',
      access: 'self:read',
      responses: { 200: { description: 'Held now, each with its description, in the order of `GET /permissions`.', body: z.array(permissionSchema) } },
      handle: ({ caller }) => ({
        body: authz.permissions.filter((p) => {
          const pair = parsePermission(p.name);
          return pair !== null && authz.can(caller, ...pair);
        }),
      }),
    }),
    endpoint({
      method: 'get',
      path: '/roles',
      tag: TAG,
      summary: 'Every role',
      access: 'roles:read',
      responses: { 200: { description: 'Built-in and custom roles, by name.', body: z.array(roleSchema) } },
      handle: () => ({ body: policy.roles() }),
    }),
    endpoint({
      method: 'post',
      path: '/roles',
      tag: TAG,
      summary: 'Create a custom role',
      description: 'Only with permissions (and inherited roles) you hold yourself.',
      access: 'roles:manage',
      body: createBody,
      responses: { 201: { ...role, description: 'The new role.', headers: { Location: { description: "The role's URL.", schema: z.string() } } } },
      errors: [Errors.roleExists, Errors.escalation],
      handle: async ({ req, body }) => {
        const made = await policy.createRole(body, originOf(req));
        return { status: 201, headers: { Location: `${base}/roles/${encodeURIComponent(made.name)}` }, body: made };
      },
    }),
    endpoint({
      method: 'get',
      path: '/roles/{name}',
      tag: TAG,
      summary: 'One role',
      access: 'roles:read',
      params: roleParams,
      responses: { 200: role },
      errors: [Errors.roleNotFound],
      handle: ({ params }) => ({ body: policy.role(params.name) }),
    }),
    endpoint({
      method: 'put',
      path: '/roles/{name}',
      tag: TAG,
      summary: 'Change a custom role',
      description: 'Fields left out stay as they are; `inherits` and `permissions` replace the lists. Built-in roles are not editable.',
      access: 'roles:manage',
      params: roleParams,
      body: updateBody,
      responses: { 200: role },
      errors: [Errors.roleNotFound, Errors.roleBuiltIn, Errors.roleExists, Errors.roleInUse, Errors.escalation],
      handle: async ({ req, params, body }) => ({ body: await policy.updateRole(params.name, body, originOf(req)) }),
    }),
    endpoint({
      method: 'delete',
      path: '/roles/{name}',
      tag: TAG,
      summary: 'Delete a custom role',
      description: 'A role users hold needs `moveTo`, the role they move to (one holding nothing you lack); a role another role inherits, or configuration names, stays.',
      access: 'roles:manage',
      params: roleParams,
      query: z.strictObject({ moveTo: roleName.optional().meta({ description: 'Where its holders go.' }) }),
      responses: { 204: { description: 'Deleted.' } },
      errors: [Errors.roleNotFound, Errors.roleBuiltIn, Errors.roleInUse, Errors.escalation],
      handle: async ({ req, params, query }) => {
        await policy.deleteRole(params.name, query.moveTo, originOf(req));
        return { status: 204 };
      },
    }),
    endpoint({
      method: 'get',
      path: '/users/{id}/permissions',
      tag: TAG,
      summary: "A user's permissions",
      access: 'signed-in',
      capabilities: '`users:read`, or `self:read` for your own account',
      params: userIdParams,
      responses: { 200: userPermissions },
      errors: [Errors.forbidden, Errors.userNotFound],
      handle: async ({ req, params, caller }) => {
        if (!authz.can(caller, caller.id === params.id ? 'self' : 'users', 'read')) throw Errors.forbidden();
        return { body: await policy.userPermissions(params.id, originOf(req)) };
      },
    }),
    endpoint({
      method: 'patch',
      path: '/users/{id}/permissions',
      tag: TAG,
      summary: "Grant or revoke a user's permissions",
      description: 'Direct permissions, beside the role. Only permissions you hold yourself can be granted.',
      access: 'users:set-permissions',
      params: userIdParams,
      body: grantBody,
      responses: { 200: userPermissions },
      errors: [Errors.userNotFound, Errors.escalation, Errors.targetHoldsMore],
      handle: async ({ req, params, body }) => ({ body: await policy.changeUserPermissions(params.id, body, originOf(req)) }),
    }),
  ];
}
