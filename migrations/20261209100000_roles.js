// @ts-check
/**
 * The access policy in the database: roles (the built-ins from policies/policy.csv and custom ones), what
 * each inherits, the permissions each holds, and permissions granted to one user directly. A permission is
 * Casbin's (object, action) pair, `users.list` in the API. `org_id` is null everywhere for now: it is the
 * domain a later organisations slice binds roles and grants in (Casbin RBAC with domains).
 */

/** @param {import('knex').Knex} knex */
export async function up(knex) {
  await knex.schema.createTable('roles', (t) => {
    t.string('name', 64).primary();
    t.string('description', 500).notNullable().defaultTo('');
    // Defined by policy.csv, written again at each start: never edited or deleted through the API.
    t.boolean('built_in').notNullable().defaultTo(false);
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
  });
  await knex.schema.createTable('role_inherits', (t) => {
    t.string('role', 64).notNullable().references('name').inTable('roles').onDelete('CASCADE');
    t.string('inherits', 64).notNullable().references('name').inTable('roles').onDelete('CASCADE');
    t.primary(['role', 'inherits']);
  });
  await knex.schema.createTable('role_permissions', (t) => {
    t.string('role', 64).notNullable().references('name').inTable('roles').onDelete('CASCADE');
    t.string('object', 64).notNullable();
    t.string('action', 64).notNullable();
    t.primary(['role', 'object', 'action']);
  });
  await knex.schema.createTable('user_permissions', (t) => {
    t.increments('id').primary();
    t.integer('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.string('object', 64).notNullable();
    t.string('action', 64).notNullable();
    // The organisation the grant holds in; null: everywhere (the only kind today).
    t.integer('org_id').nullable();
    t.bigInteger('created_at').notNullable();
    // No foreign key: the history keeps the id of an admin deleted since.
    t.integer('created_by').nullable();
    t.index(['user_id'], 'user_permissions_user_index');
  });
  // Moves on with every change of the policy: an instance whose compiled policy is of this version
  // checks a role change against it without compiling again.
  await knex('locks').insert({ name: 'policy', version: 0 });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex('locks').where({ name: 'policy' }).delete();
  await knex.schema.dropTable('user_permissions');
  await knex.schema.dropTable('role_permissions');
  await knex.schema.dropTable('role_inherits');
  await knex.schema.dropTable('roles');
}
