// @ts-check
/**
 * Device tokens: the sessions of apps (a music player, a TV) that sign in once and stay signed in for
 * months. In the database rather than the session store: they outlive any Redis restart policy, and they
 * go with their user (the foreign key) in the same transaction as a deletion.
 */

/** @param {import('knex').Knex} knex */
export async function up(knex) {
  await knex.schema.createTable('device_tokens', (t) => {
    t.increments('id').primary();
    // What GET /me/sessions shows and DELETE /me/sessions/{id} takes; random, unrelated to the token.
    t.string('public_id', 32).notNullable().unique('device_tokens_public_id_unique');
    t.integer('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    // HMAC of the token under a key derived from the server secret: the token itself is never stored.
    t.string('fingerprint', 64).notNullable().unique('device_tokens_fingerprint_unique');
    t.string('name', 256).notNullable();
    t.string('user_agent', 256).nullable();
    t.string('ip', 64).nullable();
    // The user's session epoch at issue: a later epoch (disable, password reset...) kills the token.
    t.integer('epoch').notNullable();
    t.bigInteger('created_at').notNullable();
    // Written at most once a minute; the idle timeout counts from it.
    t.bigInteger('last_used_at').notNullable();
    t.index(['user_id'], 'device_tokens_user_index');
    t.index(['last_used_at'], 'device_tokens_last_used_index');
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.dropTable('device_tokens');
}
