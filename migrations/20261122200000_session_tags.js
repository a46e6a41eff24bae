// @ts-check
/** Labels on sessions (an OIDC provider's session id or subject), so back-channel logout can find them. */

/** @param {import('knex').Knex} knex */
export async function up(knex) {
  await knex.schema.createTable('session_tags', (t) => {
    t.string('tag', 512).notNullable();
    t.string('sid', 255).notNullable();
    t.bigInteger('created_at').notNullable();
    t.primary(['tag', 'sid']);
    t.index(['sid'], 'session_tags_sid_index');
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.dropTable('session_tags');
}
