// @ts-check
/** Sessions (express-session's knex store), the per-user index of them, and the users' session epoch. */

/** @param {import('knex').Knex} knex */
export async function up(knex) {
  await knex.schema.alterTable('users', (t) => {
    // Bumped when every session of the user must end (disable, demote, password reset...).
    t.integer('session_epoch').notNullable().defaultTo(0);
  });
  // The shape connect-session-knex expects (it does not create it: createTable is off).
  await knex.schema.createTable('sessions', (t) => {
    t.string('sid', 255).primary();
    t.json('sess').notNullable();
    t.timestamp('expired').notNullable().index('sessions_expired_index');
  });
  // Which sessions belong to whom, to list and end them; the Redis backend keeps this in Redis.
  await knex.schema.createTable('session_index', (t) => {
    t.string('sid', 255).primary();
    // No foreign key: the index must still name a deleted user's sessions so they can be destroyed.
    t.integer('user_id').notNullable();
    t.bigInteger('created_at').notNullable();
    t.index(['user_id'], 'session_index_user_index');
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.dropTable('session_index');
  await knex.schema.dropTable('sessions');
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('session_epoch');
  });
}
