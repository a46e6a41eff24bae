import { z } from 'zod';
import { Errors } from '../errors.js';
import { endpoint, type Endpoint } from '../http/endpoint.js';
import { originOf } from '../http/origin.js';
import { rowId } from '../ids.js';
import type { UserService } from '../users/service.js';
import type { Authorizer } from './enforcer.js';
import { explain } from './explain.js';
import { declaredPermission } from './routes.js';

const stepSchema = z
  .object({
    kind: z.enum(['account', 'super-role', 'role', 'inherited-role', 'direct', 'group-rule']).meta({
      description: 'What the step looked at; more kinds may be added (organisation binding, resource grant, scoped key): treat an unknown kind as information.',
    }),
    result: z.enum(['allow', 'deny', 'none']).meta({ description: '`allow`: gives the permission now; `deny`: refuses whatever the others give; `none`: neither.' }),
    detail: z.string().meta({ description: 'One sentence for a person.' }),
    role: z.string().optional(),
    via: z.string().optional().meta({ description: '`inherited-role`: the role it is inherited through.' }),
    group: z.string().optional().meta({ description: '`group-rule`: the external group.' }),
    provider: z.string().optional().meta({ description: '`group-rule`: `proxy`, `oidc:<id>` or `*`.' }),
  })
  .strict()
  .meta({ id: 'ExplainStep' });

const explanationSchema = z
  .object({
    allowed: z.boolean().meta({ description: "The policy's decision, as the request path takes it." }),
    steps: z.array(stepSchema).meta({ description: 'In the order they are evaluated.' }),
    decision: z.string().meta({ description: 'The decision in one sentence, naming the step that decided.' }),
  })
  .strict()
  .meta({ id: 'Explanation' });

/** GET /authz/explain: why the policy allows a permission to a user, or not (docs/permissions.md#explain). */
export function explainEndpoints({ authz, users }: { authz: Authorizer; users: UserService }): Endpoint[] {
  return [
    endpoint({
      method: 'get',
      path: '/authz/explain',
      tag: 'Roles and permissions',
      summary: 'Why a user holds a permission, or not',
      description: "Step by step: the account, admin's super role, the user's role, each role it inherits, a direct grant, the IdP group rules that would give a role holding it at sign-in.",
      access: 'authz:explain',
      query: z.strictObject({ user: rowId('The user id.'), permission: declaredPermission(authz) }),
      responses: { 200: { description: 'The explanation.', body: explanationSchema } },
      errors: [Errors.userNotFound],
      handle: async ({ req, query }) => {
        // Through an organisation role, only that organisation's members (404 for anyone else).
        const user = await users.requireFor(query.user, originOf(req), 'authz.explain');
        return { body: explain(authz.policy, user, query.permission) };
      },
    }),
  ];
}
