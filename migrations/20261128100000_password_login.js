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
  // Passwords external accounts could set for themselves before this rule would come back to life the
  // moment an admin allowed password login: they are dropped, and a new one is set when it is allowed.
  await knex('users').whereNot({ auth_source: 'local' }).update({ password_hash: null });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('password_login');
  });
}
