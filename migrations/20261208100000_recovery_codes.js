// @ts-check
/**
 * A user's recovery code: a code they mint for themselves, which never expires and has no use limit. One
 * per user, so it lives on the user's row (a deletion takes it along). Only its fingerprint is stored
 * (src/crypto/codes.ts), never the code.
 */

/** @param {import('knex').Knex} knex */
export async function up(knex) {
  await knex.schema.alterTable('users', (t) => {
    // HMAC-SHA256 of the normalised code under a key derived from the server secret; null: none set.
    // Unique, and NULLs never collide (SQLite and PostgreSQL alike): a redemption looks the code up by it.
    t.string('recovery_code_fingerprint', 64).nullable().unique('users_recovery_code_fingerprint_unique');
    t.bigInteger('recovery_code_created_at').nullable();
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.alterTable('users', (t) => {
    t.dropUnique(['recovery_code_fingerprint'], 'users_recovery_code_fingerprint_unique');
    t.dropColumn('recovery_code_fingerprint');
    t.dropColumn('recovery_code_created_at');
  });
}
