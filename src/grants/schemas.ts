import { z } from 'zod';

/** A grant as the API answers it. */
export const grantSchema = z
  .object({
    id: z.number().int(),
    userId: z.number().int(),
    type: z.string().meta({ description: 'A resource type of config `resources:` (`library`).' }),
    resourceId: z.string().meta({ description: "The host app's resource id, as text (`3`), or `*` for every resource of the type." }),
    actions: z.array(z.string()).meta({ description: 'What the user may do on it (`read`).' }),
    source: z.string().meta({ description: '`api`, `default` (config `defaultForNewUsers`), or `group:<provider>:<group>` (a group rule, synced at each sign-in).' }),
    createdAt: z.iso.datetime(),
    createdBy: z.number().int().nullable().meta({ description: 'Who made it through the API; null for defaults and group rules.' }),
  })
  .strict()
  .meta({ id: 'Grant' });
