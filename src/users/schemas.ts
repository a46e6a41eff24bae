import { z } from 'zod';
import { rowId } from '../ids.js';
import { nameProblem, normalizeUsername, usernameProblem } from '../names.js';

export interface SchemaContext {
  passwordMinLength: number;
  /** The roles now: custom roles come and go while running. */
  roles: () => ReadonlySet<string>;
}

export function userSchemas(ctx: SchemaContext) {
  const username = z
    .string()
    .transform(normalizeUsername)
    .superRefine((value, issue) => {
      const problem = usernameProblem(value);
      if (problem) issue.addIssue({ code: 'custom', message: problem });
    });
  const password = z
    .string()
    .min(ctx.passwordMinLength, `must be at least ${ctx.passwordMinLength} characters`)
    .max(1024, 'must be at most 1024 characters');
  const name = z
    .string()
    .trim()
    .superRefine((value, issue) => {
      const problem = nameProblem(value);
      if (problem) issue.addIssue({ code: 'custom', message: problem });
    })
    .transform((v) => (v === '' ? null : v))
    .nullable();
  const email = z
    .string()
    .trim()
    .max(320, 'must be at most 320 characters')
    .pipe(z.union([z.literal(''), z.email('must be a valid email address')]))
    .transform((v) => (v === '' ? null : v))
    .nullable();
  const role = z.string().superRefine((value, issue) => {
    const roles = ctx.roles();
    if (!roles.has(value)) issue.addIssue({ code: 'custom', message: `must be one of ${[...roles].sort().join(', ')}` });
  });

  const organizationId = z.number().int().min(1).max(2147483647).nullable().meta({ description: 'The organisation the user belongs to; null: none.' });
  const orgRole = role.nullable().meta({ description: 'The role the user holds inside their organisation only (`admin`); null: none.' });

  return {
    credentials: z.strictObject({ username, password }),
    create: z.strictObject({
      username,
      password: password.nullable().optional(),
      role: role.optional(),
      name: name.optional(),
      email: email.optional(),
      organizationId: organizationId.optional(),
      orgRole: orgRole.optional(),
    }),
    update: z.strictObject({
      role: role.optional(),
      name: name.optional(),
      email: email.optional(),
      password: password.nullable().optional(),
      passwordLogin: z.boolean().optional(),
      organizationId: organizationId.optional().meta({ description: 'Moves the user to another organisation (global admins: `users:set-org`).' }),
      orgRole: orgRole.optional().meta({ description: 'The role inside their organisation (`users:set-org`).' }),
      currentPassword: z.string().max(1024).optional(),
    }),
    status: z.strictObject({ active: z.boolean() }),
    resetPassword: z.strictObject({ password }),
  };
}

export type UserSchemas = ReturnType<typeof userSchemas>;

/** Fields a user may change on their own account without the admin capability. */
export const SELF_FIELDS: ReadonlySet<string> = new Set(['name', 'email', 'password', 'currentPassword']);

/** A user as the API answers (see `toPublicUser`). */
export const publicUserSchema = z
  .object({
    id: z.number().int(),
    username: z.string(),
    name: z.string().nullable(),
    email: z.string().nullable(),
    role: z.string(),
    organizationId: z.number().int().nullable().meta({ description: 'The organisation the user belongs to; null: none.' }),
    orgRole: z.string().nullable().meta({ description: 'The role held inside that organisation only; null: none.' }),
    active: z.boolean(),
    hasPassword: z.boolean(),
    authSource: z.string().meta({ description: '`local`, or where the account came from: `oidc:<provider>`, `proxy`.' }),
    passwordLogin: z.boolean().meta({ description: 'May sign in with a local password.' }),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
    lastActiveAt: z.iso.datetime().nullable(),
    lastLoginAt: z.iso.datetime().nullable(),
    recoveryCode: z.enum(['set', 'none']).meta({ description: 'Whether the user has minted a recovery code; the code itself is never answered again.' }),
  })
  .strict()
  .meta({ id: 'User' });

/** A path's user id: a positive integer. */
export const userIdParams = z.object({ id: rowId('The user id.') });
