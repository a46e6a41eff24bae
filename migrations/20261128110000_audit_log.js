// @ts-check
/** Who did what: one row per event of the event stream (src/events/). */

/** @param {import('knex').Knex} knex */
export async function up(knex) {
  await knex.schema.createTable('audit_log', (t) => {
    t.bigIncrements('id').primary();
    t.bigInteger('at').notNullable();
    t.string('type', 64).notNullable();
    // 'user', 'system', 'cli' or 'idp'; with the user's id and auth method, or the provider.
    t.string('actor_kind', 16).notNullable();
    t.integer('actor_user_id').nullable();
    t.string('actor_method', 128).nullable();
    // No foreign key: the record of a deleted user stays.
    t.integer('target_user_id').nullable();
    t.string('ip', 64).nullable();
    t.text('detail').notNullable();
    t.index(['at'], 'audit_log_at_index');
    t.index(['target_user_id', 'at'], 'audit_log_target_index');
    t.index(['actor_user_id', 'at'], 'audit_log_actor_index');
    t.index(['type', 'at'], 'audit_log_type_index');
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.dropTable('audit_log');
}
