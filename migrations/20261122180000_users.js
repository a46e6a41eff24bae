// @ts-check
/** Users with their API key digest, and the lock row that serialises admin-set changes. */

/** @param {import('knex').Knex} knex */
export async function up(knex) {
  await knex.schema.createTable('users', (t) => {
    t.increments('id').primary();
    t.string('username', 256).notNullable();
    // NFKC + lower case: uniqueness regardless of case is enforced by this index, not by a check.
    t.string('username_key', 256).notNullable().unique('users_username_key_unique');
    t.string('name', 256).nullable();
    t.string('email', 320).nullable();
    t.string('email_key', 320).nullable().unique('users_email_key_unique');
    t.string('role', 64).notNullable().defaultTo('user');
    t.boolean('active').notNullable().defaultTo(true);
    t.string('password_hash', 512).nullable();
    t.string('auth_source', 32).notNullable().defaultTo('local');
    // HMAC-SHA256 of the key for lookup; AES-256-GCM copy so the owner can read it again.
    t.string('api_key_digest', 64).nullable().unique('users_api_key_digest_unique');
    t.text('api_key_cipher').nullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.bigInteger('last_active_at').nullable();
    t.bigInteger('last_login_at').nullable();
    t.index(['role', 'active'], 'users_role_active_index');
  });
  await knex.schema.createTable('locks', (t) => {
    t.string('name', 64).primary();
    t.bigInteger('version').notNullable().defaultTo(0);
  });
  await knex('locks').insert({ name: 'users', version: 0 });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.dropTable('locks');
  await knex.schema.dropTable('users');
}
