import { z } from 'zod';
import { Errors } from '../errors.js';
import { endpoint, type Endpoint } from '../http/endpoint.js';
import { originOf } from '../http/origin.js';
import { rowId } from '../ids.js';
import type { UserService } from '../users/service.js';
import type { Authorizer } from './enforcer.js';
import { explain, explainResource, type ExplainedGrant, type ExplainedGroupGrant, type ExplainedUser } from './explain.js';
import { declaredPermission } from './routes.js';

const stepSchema = z
  .object({
    kind: z.enum(['account', 'super-role', 'role', 'inherited-role', 'direct', 'org-role', 'org-direct', 'grant', 'group-rule']).meta({
      description: 'What the step looked at; more kinds may be added: treat an unknown kind as information.',
    }),
    result: z.enum(['allow', 'deny', 'none']).meta({ description: '`allow`: gives the permission now; `deny`: refuses whatever the others give; `none`: neither.' }),
    detail: z.string().meta({ description: 'One sentence for a person.' }),
    role: z.string().optional(),
    via: z.string().optional().meta({ description: '`inherited-role`: the role it is inherited through.' }),
    group: z.string().optional().meta({ description: '`group-rule`: the external group.' }),
    provider: z.string().optional().meta({ description: '`group-rule`: `proxy`, `oidc:<id>` or `*`.' }),
    orgId: z.number().optional().meta({ description: '`org-role`, `org-direct`: the organisation the binding holds in.' }),
    grantId: z.number().optional().meta({ description: '`grant`: the grant (`GET /users/{id}/grants`).' }),
    source: z.string().optional().meta({ description: '`grant`: `api`, `default` or `group:<provider>:<group>`.' }),
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
/** What the resource explanation needs of the access grants (src/grants/service.ts). */
export interface GrantsForExplain {
  /** Whether `type` is declared and `action` one of its actions. */
  declares(type: string, action: string): boolean;
  grantsOf(userId: number): readonly ExplainedGrant[];
  readonly groupRules: readonly ExplainedGroupGrant[];
  can(user: ExplainedUser, type: string, id: string, action: string): boolean;
}

export function explainEndpoints({ authz, users, grants }: { authz: Authorizer; users: UserService; grants: GrantsForExplain }): Endpoint[] {
  return [
    endpoint({
      method: 'get',
      path: '/authz/explain',
      tag: 'Roles and permissions',
      summary: 'Why a user holds a permission, or not',
      description:
        "Step by step, for a `permission`: the account, admin's super role, the user's role, each role it inherits, a direct grant, the organisation binding, the IdP group rules that would give a role holding it at sign-in. " +
        'For a resource (`type`, `id`, `action`, default `read`): the account, admin, each grant on it or on every one of the type, the IdP group rules that would grant it.',
      access: 'authz:explain',
      query: z
        .strictObject({
          user: rowId('The user id.'),
          permission: declaredPermission(authz).optional(),
          type: z.string().max(64).optional().meta({ description: 'A declared resource type (`library`), with `id`.' }),
          id: z.string().min(1).max(128).optional().meta({ description: 'The resource id, or `*`.' }),
          action: z.string().max(64).optional().meta({ description: "An action of the type; `read` when absent." }),
        })
        .superRefine((q, ctx) => {
          const resource = q.type !== undefined || q.id !== undefined || q.action !== undefined;
          if (q.permission !== undefined && resource) ctx.addIssue({ code: 'custom', path: ['permission'], message: 'ask about a permission or a resource (type, id), not both' });
          else if (q.permission === undefined && !resource) ctx.addIssue({ code: 'custom', path: ['permission'], message: 'is required (or a resource: type and id)' });
          else if (resource && (q.type === undefined || q.id === undefined)) ctx.addIssue({ code: 'custom', path: [q.type === undefined ? 'type' : 'id'], message: 'is required with a resource' });
          else if (resource && !grants.declares(q.type!, q.action ?? 'read')) ctx.addIssue({ code: 'custom', path: ['type'], message: `${q.type} with action ${q.action ?? 'read'} is not a declared resource type and action` });
        }),
      responses: { 200: { description: 'The explanation.', body: explanationSchema } },
      errors: [Errors.userNotFound],
      handle: async ({ req, query }) => {
        // Through an organisation role, only that organisation's members (404 for anyone else).
        const user = await users.requireFor(query.user, originOf(req), 'authz.explain');
        if (query.permission !== undefined) return { body: explain(authz.policy, user, query.permission) };
        const what = { type: query.type!, id: query.id!, action: query.action ?? 'read' };
        return { body: explainResource(user, what, grants.grantsOf(user.id), grants.groupRules, grants.can(user, what.type, what.id, what.action)) };
      },
    }),
  ];
}
