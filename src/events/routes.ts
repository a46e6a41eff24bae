import { z } from 'zod';
import { endpoint, type Endpoint } from '../http/endpoint.js';
import type { User } from '../users/model.js';
import { auditQuerySchema, type AuditLog } from './audit.js';
import { EVENT_TYPES, type EventType } from './stream.js';

const actorSchema = z
  .discriminatedUnion('kind', [
    z.object({ kind: z.literal('user'), userId: z.number().int(), method: z.string() }).strict(),
    z.object({ kind: z.literal('system') }).strict(),
    z.object({ kind: z.literal('anonymous') }).strict(),
    z.object({ kind: z.literal('cli') }).strict(),
    z.object({ kind: z.literal('idp'), provider: z.string() }).strict(),
  ])
  .meta({ id: 'Actor', description: 'Who acted: a user (and how they proved it), the system, an anonymous client, the CLI or an identity provider.' });

const entrySchema = z
  .object({
    id: z.number().int(),
    at: z.iso.datetime(),
    type: z.enum(EVENT_TYPES as [EventType, ...EventType[]]),
    actor: actorSchema,
    targetUserId: z.number().int().nullable(),
    ip: z.string().nullable(),
    detail: z.record(z.string(), z.unknown()).meta({ description: 'What changed; never a secret.' }),
  })
  .strict()
  .meta({ id: 'AuditEntry' });

/** GET /audit: who did what, newest first, paged and filtered like the users list. */
export function auditEndpoints(audit: AuditLog, globalReader: (caller: User) => boolean): Endpoint[] {
  return [
    endpoint({
      method: 'get',
      path: '/audit',
      tag: 'Audit',
      summary: 'The audit log',
      description: 'Newest first; the total before paging is in `X-Total-Count`.',
      access: 'audit:read',
      query: auditQuerySchema,
      responses: {
        200: {
          description: 'One page of entries.',
          body: z.array(entrySchema),
          headers: { 'X-Total-Count': { description: 'Entries matching the filters, all pages.', schema: z.string().regex(/^\d+$/) } },
        },
      },
      handle: async ({ query, caller }) => {
        // audit.read through an organisation role: entries about that organisation's members alone.
        const { entries, total } = await audit.list(globalReader(caller) ? query : { ...query, orgId: caller.orgId ?? 0 });
        return { headers: { 'X-Total-Count': String(total) }, body: entries };
      },
    }),
  ];
}
