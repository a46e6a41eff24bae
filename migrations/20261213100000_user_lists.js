// @ts-check
/**
 * Lists at a million users (issue 14):
 * - an index per sort column, ending in `id` (the tie-breaker), so a sorted page walks an index;
 * - `user_counts`: users per (organisation, role, enabled), kept by triggers in the changing transaction,
 *   so `X-Total-Count` is a sum of a few rows, not a count(*) scan. On PostgreSQL each transaction adds to
 *   a slot no other open transaction holds: concurrent inserts do not queue on one hot row; the
 *   sum of a key's slots is its count (a slot alone may go negative);
 * - a substring index for `?q=`: SQLite FTS5 with the trigram tokenizer (an external-content table on
 *   users, kept by triggers), PostgreSQL pg_trgm GIN on one expression (src/users/search.ts repeats it).
 * The row key of "no organisation" is -1: organisation ids are positive.
 * On SQLite, a later migration that rebuilds `users` (knex copies the table for some column changes) drops
 * its triggers: it must create them again.
 */

const SLOTS = 16;
/** The text `?q=` searches on PostgreSQL: the same expression as in src/users/search.ts. */
const PG_SEARCH_DOC = "(username_key || E'\\n' || coalesce(lower(name), '') || E'\\n' || coalesce(email_key, ''))";

/** @param {import('knex').Knex} knex */
const isPg = (knex) => knex.client.config.client === 'pg';

/** @param {import('knex').Knex} knex */
export async function up(knex) {
  await knex.schema.alterTable('users', (t) => {
    t.index(['name', 'id'], 'users_name_id_index');
    t.index(['role', 'id'], 'users_role_id_index');
    t.index(['created_at', 'id'], 'users_created_at_id_index');
    t.index(['last_active_at', 'id'], 'users_last_active_at_id_index');
  });
  // username_key and email_key are unique already: their own indexes order them.

  await knex.schema.createTable('user_counts', (t) => {
    t.integer('org_key').notNullable();
    t.string('role', 64).notNullable();
    t.boolean('active').notNullable();
    t.integer('slot').notNullable();
    t.bigInteger('n').notNullable();
    t.primary(['org_key', 'role', 'active', 'slot']);
  });
  await knex.raw(
    `INSERT INTO user_counts (org_key, role, active, slot, n)
     SELECT coalesce(org_id, -1), role, active, 0, count(*) FROM users GROUP BY coalesce(org_id, -1), role, active`,
  );

  if (isPg(knex)) {
    // Per statement, from its transition tables: a bulk insert adds to each counter once, not once a row
    // (a row updated again and again in one transaction leaves a chain of versions to walk each time).
    // Rows are upserted in key order: two transactions on one slot take them in the same order.
    // The slot: the first one no other open transaction holds (a transaction-scoped advisory lock, taken
    // from the connection's own slot on), so concurrent inserts never wait on each other's counter rows.
    await knex.raw(`CREATE FUNCTION user_counts_slot() RETURNS integer LANGUAGE plpgsql AS $$
      DECLARE
        start integer := pg_backend_pid() % ${SLOTS};
        space integer := hashtext('usher user_counts ' || current_schema());
      BEGIN
        FOR k IN 0..${SLOTS - 1} LOOP
          IF pg_try_advisory_xact_lock(space, (start + k) % ${SLOTS}) THEN RETURN (start + k) % ${SLOTS}; END IF;
        END LOOP;
        RETURN start;
      END $$`);
    /** @param {string} rows */
    const upsert = (rows) => `
        INSERT INTO user_counts AS c (org_key, role, active, slot, n)
        SELECT org_key, role, active, user_counts_slot(), sum(d) FROM (${rows}) AS change
        GROUP BY org_key, role, active HAVING sum(d) <> 0 ORDER BY org_key, role, active
        ON CONFLICT (org_key, role, active, slot) DO UPDATE SET n = c.n + excluded.n`;
    /** @param {string} t */
    const keyOf = (t) => `coalesce(${t}.org_id, -1) AS org_key, ${t}.role, ${t}.active`;
    /** @param {string} name @param {string} body */
    const fn = (name, body) =>
      knex.raw(`CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ${body}; RETURN NULL; END $$`);
    await fn('users_count_insert', upsert(`SELECT ${keyOf('n')}, 1 AS d FROM new_rows n`));
    await fn('users_count_delete', upsert(`SELECT ${keyOf('o')}, -1 AS d FROM old_rows o`));
    await fn(
      'users_count_update',
      upsert(`SELECT ${keyOf('o')}, -1 AS d FROM old_rows o JOIN new_rows n USING (id)
                WHERE (o.role, o.active, o.org_id) IS DISTINCT FROM (n.role, n.active, n.org_id)
              UNION ALL
              SELECT ${keyOf('n')}, 1 AS d FROM old_rows o JOIN new_rows n USING (id)
                WHERE (o.role, o.active, o.org_id) IS DISTINCT FROM (n.role, n.active, n.org_id)`),
    );
    await knex.raw('CREATE TRIGGER users_count_insert AFTER INSERT ON users REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION users_count_insert()');
    await knex.raw('CREATE TRIGGER users_count_delete AFTER DELETE ON users REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION users_count_delete()');
    await knex.raw(
      'CREATE TRIGGER users_count_update AFTER UPDATE ON users REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION users_count_update()',
    );

    // pg_trgm lives once per database: serialise concurrent migrations of several schemas, and find its schema.
    await knex.raw("SELECT pg_advisory_xact_lock(hashtext('usher pg_trgm'))");
    const found = await knex.raw("SELECT extnamespace::regnamespace::text AS ns FROM pg_extension WHERE extname = 'pg_trgm'");
    let ns = found.rows[0]?.ns;
    if (!ns) {
      // Not in a schema of ours: dropping a test or tenant schema must not take the extension with it.
      await knex.raw('CREATE EXTENSION pg_trgm SCHEMA public');
      ns = 'public';
    }
    await knex.raw(`CREATE INDEX users_search_trgm ON users USING gin (${PG_SEARCH_DOC} ${ns}.gin_trgm_ops)`);
    return;
  }

  // The table itself is in id order, but stepping over its rows is 2-3 times slower than over a slim index of
  // the ids alone: a deep `offset` page sorted by id walks this one.
  await knex.raw('CREATE INDEX users_id_index ON users (id)');

  /** @param {string} row */
  const key = (row) => `coalesce(${row}.org_id, -1), ${row}.role, ${row}.active, 0`;
  await knex.raw(`CREATE TRIGGER users_count_insert AFTER INSERT ON users BEGIN
    INSERT INTO user_counts (org_key, role, active, slot, n) VALUES (${key('new')}, 1)
      ON CONFLICT (org_key, role, active, slot) DO UPDATE SET n = n + 1;
  END`);
  await knex.raw(`CREATE TRIGGER users_count_delete AFTER DELETE ON users BEGIN
    UPDATE user_counts SET n = n - 1 WHERE (org_key, role, active, slot) = (${key('old')});
  END`);
  await knex.raw(`CREATE TRIGGER users_count_update AFTER UPDATE OF role, active, org_id ON users
    WHEN old.role IS NOT new.role OR old.active IS NOT new.active OR old.org_id IS NOT new.org_id BEGIN
    UPDATE user_counts SET n = n - 1 WHERE (org_key, role, active, slot) = (${key('old')});
    INSERT INTO user_counts (org_key, role, active, slot, n) VALUES (${key('new')}, 1)
      ON CONFLICT (org_key, role, active, slot) DO UPDATE SET n = n + 1;
  END`);

  await knex.raw(`CREATE VIRTUAL TABLE users_search USING fts5(username_key, name, email_key, content='users', content_rowid='id', tokenize='trigram')`);
  await knex.raw("INSERT INTO users_search (users_search) VALUES ('rebuild')");
  const cols = 'username_key, name, email_key';
  await knex.raw(`CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_search (rowid, ${cols}) VALUES (new.id, new.username_key, new.name, new.email_key);
  END`);
  await knex.raw(`CREATE TRIGGER users_search_delete AFTER DELETE ON users BEGIN
    INSERT INTO users_search (users_search, rowid, ${cols}) VALUES ('delete', old.id, old.username_key, old.name, old.email_key);
  END`);
  await knex.raw(`CREATE TRIGGER users_search_update AFTER UPDATE OF ${cols} ON users BEGIN
    INSERT INTO users_search (users_search, rowid, ${cols}) VALUES ('delete', old.id, old.username_key, old.name, old.email_key);
    INSERT INTO users_search (rowid, ${cols}) VALUES (new.id, new.username_key, new.name, new.email_key);
  END`);
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  if (isPg(knex)) {
    await knex.raw('DROP INDEX users_search_trgm');
    for (const name of ['users_count_insert', 'users_count_delete', 'users_count_update']) {
      await knex.raw(`DROP TRIGGER ${name} ON users`);
      await knex.raw(`DROP FUNCTION ${name}()`);
    }
    await knex.raw('DROP FUNCTION user_counts_slot()');
    // pg_trgm stays: other schemas of the database may use it.
  } else {
    for (const name of ['users_search_update', 'users_search_delete', 'users_search_insert', 'users_count_update', 'users_count_delete', 'users_count_insert']) {
      await knex.raw(`DROP TRIGGER ${name}`);
    }
    await knex.raw('DROP TABLE users_search');
    await knex.raw('DROP INDEX users_id_index');
  }
  await knex.schema.dropTable('user_counts');
  await knex.schema.alterTable('users', (t) => {
    t.dropIndex(['name', 'id'], 'users_name_id_index');
    t.dropIndex(['role', 'id'], 'users_role_id_index');
    t.dropIndex(['created_at', 'id'], 'users_created_at_id_index');
    t.dropIndex(['last_active_at', 'id'], 'users_last_active_at_id_index');
  });
}
