import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import knex, { type Knex } from 'knex';
import type { UsherConfig } from '../config/schema.js';

export type Db = Knex;

/** Opens the configured database: PostgreSQL for a postgres:// URL, else the SQLite file in the data dir. */
export function openDatabase(config: UsherConfig): Db {
  const { url, schema } = config.database;
  if (url) {
    return knex({
      client: 'pg',
      connection: url,
      searchPath: schema ? [schema] : undefined,
      pool: { min: 0, max: 10 },
      acquireConnectionTimeout: 10_000,
    });
  }
  mkdirSync(resolve(config.dataDir), { recursive: true, mode: 0o700 });
  // One connection: SQLite has one writer, and this serialises our transactions.
  return openSqlite(config, { min: 1, max: 1 }, ['journal_mode = WAL', 'foreign_keys = ON', 'busy_timeout = 5000']);
}

type SqliteConnection = { run(sql: string, cb: (err: Error | null) => void): void };

/** The data dir's SQLite file, each connection given `pragmas` in order as it opens. */
function openSqlite(config: UsherConfig, size: { min: number; max: number }, pragmas: readonly string[]): Db {
  return knex({
    client: 'sqlite3',
    connection: { filename: join(resolve(config.dataDir), 'usher.db') },
    useNullAsDefault: true,
    pool: {
      ...size,
      afterCreate(conn: SqliteConnection, done: (err: Error | null) => void) {
        const next = (i: number): void => {
          if (i === pragmas.length) return done(null);
          conn.run(`PRAGMA ${pragmas[i]}`, (err) => (err ? done(err) : next(i + 1)));
        };
        next(0);
      },
    },
  });
}

/** Read-only connections to SQLite for lists and counts: WAL lets them read while the writer writes. */
export const SQLITE_READERS = 4;

/**
 * Where pure reads go (lists, counts): on PostgreSQL the same pool as writes; on SQLite a separate pool of
 * read-only connections, so a slow list does not queue `/readyz`, logins and writes behind the one writer
 * connection. A read here sees what was committed before it began, never an open transaction's writes.
 */
export function openReads(config: UsherConfig, writer: Db): Db {
  if (config.database.url) return writer;
  return openSqlite(config, { min: 0, max: SQLITE_READERS }, ['query_only = ON', 'busy_timeout = 5000']);
}

/** True when the error is a unique-constraint violation (SQLite or PostgreSQL). */
export function uniqueViolation(err: unknown): string | null {
  const e = err as { code?: string; constraint?: string; message?: string };
  if (e?.code === '23505') return e.constraint ?? '';
  // knex prefixes SQLite's message with the SQL; the constraint's columns come after this phrase.
  const sqlite = /UNIQUE constraint failed: ([\w., ]+)/.exec(e?.message ?? '');
  if (e?.code === 'SQLITE_CONSTRAINT' && sqlite) return sqlite[1]!;
  return null;
}

/** Whether a schema must be created before migrating (PostgreSQL with database.schema). */
export async function ensureSchema(db: Db, config: UsherConfig): Promise<void> {
  if (config.database.url && config.database.schema) {
    await db.raw('CREATE SCHEMA IF NOT EXISTS ??', [config.database.schema]);
  }
}
