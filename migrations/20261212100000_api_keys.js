// @ts-check
/**
 * Scoped API keys (app passwords): besides the one key each user has, keys a user makes for one client,
 * each holding a subset of the owner's permissions. Shown once: only the keyed HMAC digest is stored (no
 * encrypted copy, unlike the per-user key), and a short prefix to tell them apart in lists.
 */

/** @param {import('knex').Knex} knex */
export async function up(knex) {
  await knex.schema.createTable('api_keys', (t) => {
    t.increments('id').primary();
    t.integer('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.string('name', 100).notNullable();
    // HMAC of the key under a key derived from the server secret (src/crypto/api-keys.ts).
    t.string('digest', 64).notNullable().unique('api_keys_digest_unique');
    // `usa_` and the first characters of the key: not a secret, enough to recognise it.
    t.string('prefix', 16).notNullable();
    // The scope: a JSON array of permission names (`users.list`).
    t.text('permissions').notNullable();
    t.bigInteger('created_at').notNullable();
    // Written at most once a minute.
    t.bigInteger('last_used_at').nullable();
    t.bigInteger('expires_at').nullable();
    t.unique(['user_id', 'name'], { indexName: 'api_keys_user_name_unique' });
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.dropTable('api_keys');
}
