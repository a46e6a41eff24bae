// @ts-check
/**
 * One row per committed change of a user's grants, so that other instances sharing the database read that
 * user's grants again at their next poll (`cluster.pollInterval`). Rows older than a few minutes are pruned.
 */

/** @param {import('knex').Knex} knex */
export async function up(knex) {
  await knex.schema.createTable('grant_changes', (t) => {
    t.increments('seq').primary();
    t.integer('user_id').notNullable();
    t.bigInteger('at').notNullable();
    t.index(['at'], 'grant_changes_at_index');
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.dropTable('grant_changes');
}
