import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Knex } from 'knex';
import { ensureSchema, type Db } from './connect.js';
import type { UsherConfig } from '../config/schema.js';

type Migration = { up(db: Knex): Promise<void>; down(db: Knex): Promise<void> };

/** The top-level migrations/ folder, found from this file whether run from src/ or dist/src/. */
function migrationsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    dir = resolve(dir, '..');
    try {
      readdirSync(join(dir, 'migrations'));
      return join(dir, 'migrations');
    } catch {
      // keep climbing
    }
  }
  throw new Error('migrations/ folder not found');
}

/** Loads migrations/*.js with dynamic import, so the same files serve tsx, compiled builds and the CLI. */
class FolderSource implements Knex.MigrationSource<string> {
  constructor(private readonly dir: string) {}
  async getMigrations(): Promise<string[]> {
    return readdirSync(this.dir).filter((f) => f.endsWith('.js')).sort();
  }
  getMigrationName(name: string): string {
    return name;
  }
  async getMigration(name: string): Promise<Migration> {
    return (await import(pathToFileURL(join(this.dir, name)).href)) as Migration;
  }
}

/** Applies every pending migration; returns the names applied. */
export async function migrateLatest(db: Db, config: UsherConfig): Promise<string[]> {
  await ensureSchema(db, config);
  const [, applied] = (await db.migrate.latest({ migrationSource: new FolderSource(migrationsDir()) })) as [number, string[]];
  return applied;
}
