// @ts-check
/**
 * Access grants to the host app's resources (config `resources:`): a user may `actions` on the resource
 * `resource_id` of `type`, or on every one of that type (`*`). One grant per (user, type, resource); `source`
 * says who made it: the API, the defaults new accounts get, or an identity provider's group rule.
 */

/** @param {import('knex').Knex} knex */
export async function up(knex) {
  await knex.schema.createTable('grants', (t) => {
    t.increments('id').primary();
    t.integer('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.string('type', 64).notNullable();
    // The host app's id as text ('3', 'abc'), or '*' for every resource of the type.
    t.string('resource_id', 128).notNullable();
    // Comma-separated, sorted: 'read,write'.
    t.string('actions', 512).notNullable();
    // 'api', 'default', or 'group:<provider>:<group>'.
    t.string('source', 320).notNullable();
    t.bigInteger('created_at').notNullable();
    // No foreign key: the history keeps the id of an admin deleted since.
    t.integer('created_by').nullable();
    t.unique(['user_id', 'type', 'resource_id'], { indexName: 'grants_user_resource_unique' });
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.dropTable('grants');
}
