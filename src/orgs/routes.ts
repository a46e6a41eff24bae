import { z } from 'zod';
import { Errors } from '../errors.js';
import { endpoint, type Endpoint } from '../http/endpoint.js';
import { originOf } from '../http/origin.js';
import { rowId } from '../ids.js';
import type { Authorizer } from '../authz/enforcer.js';
import type { User } from '../users/model.js';
import type { Organization } from './repository.js';
import type { OrgService } from './service.js';

const TAG = 'Organisations';

const orgSchema = z
  .object({
    id: z.number().int(),
    name: z.string(),
    description: z.string(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .strict()
  .meta({ id: 'Organization' });

const orgParams = z.object({ id: rowId('The organisation id.') });
// eslint-disable-next-line no-control-regex -- a name never holds a control character
const name = z.string().trim().min(1, 'must not be empty').max(128, 'must be at most 128 characters').regex(/^[^\u0000-\u001f\u007f]*$/, 'must not hold control characters');
const description = z.string().trim().max(500, 'must be at most 500 characters');
const one = { description: 'The organisation.', body: orgSchema };

const toPublic = (o: Organization) => ({ id: o.id, name: o.name, description: o.description, createdAt: new Date(o.createdAt).toISOString(), updatedAt: new Date(o.updatedAt).toISOString() });

/** GET/POST /orgs, GET/PUT/DELETE /orgs/{id} (docs/permissions.md, Organisations). */
export function orgEndpoints({ base, orgs, authz }: { base: string; orgs: OrgService; authz: Authorizer }): Endpoint[] {
  // An org admin reads `orgs.read` through their organisation role: their own organisation alone.
  const visible = (caller: User, id: number) => authz.canIn(caller, null, 'orgs', 'read') || caller.orgId === id;
  return [
    endpoint({
      method: 'get',
      path: '/orgs',
      tag: TAG,
      summary: 'Every organisation',
      description: 'By name. Someone who reads organisations only through their organisation role sees their own.',
      access: 'orgs:read',
      responses: { 200: { description: 'The organisations.', body: z.array(orgSchema) } },
      handle: async ({ caller }) => ({ body: (await orgs.list()).filter((o) => visible(caller, o.id)).map(toPublic) }),
    }),
    endpoint({
      method: 'post',
      path: '/orgs',
      tag: TAG,
      summary: 'Create an organisation',
      access: 'orgs:manage',
      body: z.strictObject({ name, description: description.optional() }),
      responses: { 201: { ...one, description: 'The new organisation.', headers: { Location: { description: "The organisation's URL.", schema: z.string() } } } },
      errors: [Errors.orgExists],
      handle: async ({ req, body }) => {
        const made = await orgs.create(body, originOf(req));
        return { status: 201, headers: { Location: `${base}/orgs/${made.id}` }, body: toPublic(made) };
      },
    }),
    endpoint({
      method: 'get',
      path: '/orgs/{id}',
      tag: TAG,
      summary: 'One organisation',
      access: 'orgs:read',
      params: orgParams,
      responses: { 200: one },
      errors: [Errors.orgNotFound],
      handle: async ({ params, caller }) => {
        if (!visible(caller, params.id)) throw Errors.orgNotFound();
        return { body: toPublic(await orgs.get(params.id)) };
      },
    }),
    endpoint({
      method: 'put',
      path: '/orgs/{id}',
      tag: TAG,
      summary: 'Rename or describe an organisation',
      description: 'Fields left out stay as they are.',
      access: 'orgs:manage',
      params: orgParams,
      body: z.strictObject({ name: name.optional(), description: description.optional() }),
      responses: { 200: one },
      errors: [Errors.orgNotFound, Errors.orgExists],
      handle: async ({ req, params, body }) => ({ body: toPublic(await orgs.update(params.id, body, originOf(req))) }),
    }),
    endpoint({
      method: 'delete',
      path: '/orgs/{id}',
      tag: TAG,
      summary: 'Delete an organisation',
      description: 'One with members needs `members=detach`, which takes them out of it (with their organisation role); else `409 org.in_use`.',
      access: 'orgs:manage',
      params: orgParams,
      query: z.strictObject({ members: z.enum(['detach']).optional().meta({ description: '`detach`: take the members out of the organisation.' }) }),
      responses: { 204: { description: 'Deleted.' } },
      errors: [Errors.orgNotFound, Errors.orgInUse],
      handle: async ({ req, params, query }) => {
        await orgs.remove(params.id, query.members ?? 'refuse', originOf(req));
        return { status: 204 };
      },
    }),
  ];
}
