// @ts-check
/** External identities (a trusted proxy's user, an OIDC issuer's subject) linked to users. */

/** @param {import('knex').Knex} knex */
export async function up(knex) {
  await knex.schema.createTable('identities', (t) => {
    t.increments('id').primary();
    t.integer('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    // 'proxy', or `oidc:${providerId}`.
    t.string('provider', 128).notNullable();
    // The provider's stable id for the person: the proxy's username key, an OIDC `sub`.
    t.string('subject', 512).notNullable();
    t.bigInteger('created_at').notNullable();
    t.unique(['provider', 'subject'], { indexName: 'identities_provider_subject_unique' });
    t.index(['user_id'], 'identities_user_index');
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.dropTable('identities');
}
