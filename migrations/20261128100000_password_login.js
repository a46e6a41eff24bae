// @ts-check
/**
 * Whether an external account (proxy, OIDC) may also sign in with a local password. Off unless an admin
 * turns it on: such a password bypasses the identity provider's MFA, group checks and role sync.
 * Local accounts always sign in with their password; the column is not read for them.
 */

/** @param {import('knex').Knex} knex */
export async function up(knex) {
  await knex.schema.alterTable('users', (t) => {
    t.boolean('password_login').notNullable().defaultTo(false);
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('password_login');
  });
}
