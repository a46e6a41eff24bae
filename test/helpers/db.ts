import { randomBytes } from 'node:crypto';
import knex from 'knex';

/** The real PostgreSQL every test run uses (trust auth on loopback). Override with USHER_TEST_PG_URL. */
export const PG_URL = process.env.USHER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export type DbKind = 'sqlite' | 'postgres';
export const DB_KINDS: DbKind[] = ['sqlite', 'postgres'];

/** A fresh schema name for one test app; dropped by dropSchema. */
export function freshSchema(): string {
  return `t_${randomBytes(6).toString('hex')}`;
}

/** Drops a test schema. Fails loudly when PostgreSQL is not there: such tests never skip. */
export async function dropSchema(schema: string): Promise<void> {
  const db = knex({ client: 'pg', connection: PG_URL, pool: { min: 0, max: 1 } });
  try {
    await db.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
  } finally {
    await db.destroy();
  }
}
