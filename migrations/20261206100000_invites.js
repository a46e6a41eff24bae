// @ts-check
/**
 * Invites: codes an admin mints for an existing user; each redemption signs in one device. Only the code's
 * fingerprint is stored (src/crypto/codes.ts), never the code. And the redemptions, one row per device.
 */

/** @param {import('knex').Knex} knex */
export async function up(knex) {
  await knex.schema.createTable('invites', (t) => {
    t.increments('id').primary();
    t.integer('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    // HMAC-SHA256 of the normalised code under a key derived from the server secret; replaced by a resend.
    t.string('code_fingerprint', 64).notNullable().unique('invites_code_fingerprint_unique');
    // The user's id while this is their current invite, else null. Unique, and NULLs never collide (SQLite
    // and PostgreSQL alike): a user has one current invite at most, whatever runs concurrently.
    t.integer('current_for').nullable().unique('invites_current_for_unique');
    // null: unlimited. `used` counts redemptions; the redeem flow moves it in the statement that checks it.
    t.integer('uses').nullable();
    t.integer('used').notNullable().defaultTo(0);
    // The window the admin gave (null: never expires), which a resend gives again from that moment.
    t.integer('expires_in_days').nullable();
    t.bigInteger('expires_at').nullable();
    t.bigInteger('created_at').notNullable();
    // No foreign key: the history keeps the id of an admin deleted since.
    t.integer('created_by').nullable();
    t.bigInteger('resent_at').nullable();
    // 'revoked' or 'replaced', and when; used up and expired follow from the columns above.
    t.string('ended', 16).nullable();
    t.bigInteger('ended_at').nullable();
    t.index(['user_id', 'created_at'], 'invites_user_index');
  });
  await knex.schema.createTable('invite_redemptions', (t) => {
    t.bigIncrements('id').primary();
    t.integer('invite_id').notNullable().references('id').inTable('invites').onDelete('CASCADE');
    t.bigInteger('at').notNullable();
    t.string('device_name', 128).notNullable();
    // 'browser' or 'app'.
    t.string('device_kind', 16).notNullable();
    t.index(['invite_id', 'at'], 'invite_redemptions_invite_index');
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.dropTable('invite_redemptions');
  await knex.schema.dropTable('invites');
}
