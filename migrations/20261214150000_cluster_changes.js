// @ts-check
/**
 * One row per committed change that other instances cache (a user disabled, deleted, demoted, a key rotated,
 * a session ended...), so that instances sharing the database drop that user's cache entries at their next
 * poll (`cluster.pollInterval`) rather than when the entries expire. A null user_id: anyone's (an identity
 * provider's logout). Rows older than a few minutes are pruned. Never a secret: only who changed.
 */

/** @param {import('knex').Knex} knex */
export async function up(knex) {
  await knex.schema.createTable('cluster_changes', (t) => {
    t.increments('seq').primary();
    t.integer('user_id').nullable();
    // The instance that made the change: it skips its own.
    t.string('instance', 32).notNullable();
    t.bigInteger('at').notNullable();
    t.index(['at'], 'cluster_changes_at_index');
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.dropTable('cluster_changes');
}
