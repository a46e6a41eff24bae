// @ts-check
/**
 * The grants' version: every change of the grants table moves it on, so an instance that holds every user's
 * grants in memory sees a change made through another one at its next poll (cluster.pollInterval).
 */

/** @param {import('knex').Knex} knex */
export async function up(knex) {
  await knex('locks').insert({ name: 'grants', version: 0 });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex('locks').where({ name: 'grants' }).delete();
}
