// @ts-check
/**
 * Lists at a million users (issue 14):
 * - an index per sort column, ending in `id` (the tie-breaker), so a sorted page walks an index;
 * - `user_counts`: users per (organisation, role, enabled), kept by triggers in the changing transaction,
 *   so `X-Total-Count` is a sum of a few rows, not a count(*) scan. On PostgreSQL each connection adds
 *   to its own slot (its backend pid modulo SLOTS): concurrent inserts do not queue on one hot row;
 * - a substring index for `?q=`: SQLite FTS5 with the trigram tokenizer (an external-content table on
 *   users, kept by triggers), PostgreSQL pg_trgm GIN on one expression (src/users/search.ts repeats it).
 * The row key of "no organisation" is -1: organisation ids are positive.
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
    await knex.raw(`
      CREATE FUNCTION users_count_change() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        s integer := pg_backend_pid() % ${SLOTS};
        old_first boolean := TG_OP = 'DELETE';
      BEGIN
        IF TG_OP = 'UPDATE' THEN
          -- Both rows in one order whatever the change: two opposite changes on one slot cannot deadlock.
          old_first := ROW(coalesce(OLD.org_id, -1), OLD.role, OLD.active) < ROW(coalesce(NEW.org_id, -1), NEW.role, NEW.active);
        END IF;
        IF old_first THEN
          INSERT INTO user_counts AS c (org_key, role, active, slot, n) VALUES (coalesce(OLD.org_id, -1), OLD.role, OLD.active, s, -1)
            ON CONFLICT (org_key, role, active, slot) DO UPDATE SET n = c.n - 1;
        END IF;
        IF TG_OP <> 'DELETE' THEN
          INSERT INTO user_counts AS c (org_key, role, active, slot, n) VALUES (coalesce(NEW.org_id, -1), NEW.role, NEW.active, s, 1)
            ON CONFLICT (org_key, role, active, slot) DO UPDATE SET n = c.n + 1;
        END IF;
        IF TG_OP = 'UPDATE' AND NOT old_first THEN
          INSERT INTO user_counts AS c (org_key, role, active, slot, n) VALUES (coalesce(OLD.org_id, -1), OLD.role, OLD.active, s, -1)
            ON CONFLICT (org_key, role, active, slot) DO UPDATE SET n = c.n - 1;
        END IF;
        RETURN NULL;
      END $$`);
    await knex.raw('CREATE TRIGGER users_count AFTER INSERT OR DELETE ON users FOR EACH ROW EXECUTE FUNCTION users_count_change()');
    await knex.raw(`CREATE TRIGGER users_count_update AFTER UPDATE OF role, active, org_id ON users FOR EACH ROW
      WHEN (OLD.role IS DISTINCT FROM NEW.role OR OLD.active IS DISTINCT FROM NEW.active OR OLD.org_id IS DISTINCT FROM NEW.org_id)
      EXECUTE FUNCTION users_count_change()`);

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
    await knex.raw('DROP TRIGGER users_count_update ON users');
    await knex.raw('DROP TRIGGER users_count ON users');
    await knex.raw('DROP FUNCTION users_count_change()');
    // pg_trgm stays: other schemas of the database may use it.
  } else {
    for (const name of ['users_search_update', 'users_search_delete', 'users_search_insert', 'users_count_update', 'users_count_delete', 'users_count_insert']) {
      await knex.raw(`DROP TRIGGER ${name}`);
    }
    await knex.raw('DROP TABLE users_search');
  }
  await knex.schema.dropTable('user_counts');
  await knex.schema.alterTable('users', (t) => {
    t.dropIndex(['name', 'id'], 'users_name_id_index');
    t.dropIndex(['role', 'id'], 'users_role_id_index');
    t.dropIndex(['created_at', 'id'], 'users_created_at_id_index');
    t.dropIndex(['last_active_at', 'id'], 'users_last_active_at_id_index');
  });
}
