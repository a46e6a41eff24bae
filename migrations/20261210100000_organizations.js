// @ts-check
/**
 * Organisations (the PKI manager's, seed 003): a user belongs to at most one (`users.org_id`) and may hold
 * a role inside it (`users.org_role`: `admin` of organisation 3 only). The global role (`users.role`)
 * holds everywhere; the org role only in the user's own organisation (docs/permissions.md).
 */

/** @param {import('knex').Knex} knex */
export async function up(knex) {
  await knex.schema.createTable('organizations', (t) => {
    t.increments('id').primary();
    t.string('name', 128).notNullable();
    // Names differ by more than case: the key is the lower-cased name.
    t.string('name_key', 128).notNullable().unique('organizations_name_key_unique');
    t.string('description', 500).notNullable().defaultTo('');
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
  });
  await knex.schema.alterTable('users', (t) => {
    // A deletion detaches or refuses in the service; RESTRICT keeps a member from pointing nowhere.
    t.integer('org_id').nullable().references('id').inTable('organizations').onDelete('RESTRICT');
    // Like users.role, no foreign key: renaming and deleting a role moves its holders (policy-repository.ts).
    t.string('org_role', 64).nullable();
    t.index(['org_id'], 'users_org_index');
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.alterTable('users', (t) => {
    t.dropForeign(['org_id']);
    t.dropIndex(['org_id'], 'users_org_index');
    t.dropColumn('org_id');
    t.dropColumn('org_role');
  });
  await knex.schema.dropTable('organizations');
}
