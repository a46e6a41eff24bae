import type { Logger } from 'pino';
import type { UsherConfig } from './config/schema.js';
import { AppError } from './errors.js';
import { SYSTEM_ORIGIN } from './events/stream.js';
import type { UserService } from './users/service.js';

/**
 * Creates the bootstrap admin from configuration when the database has no user.
 * It never overwrites or re-creates an existing user: once anyone exists, it does nothing.
 */
export async function bootstrapAdmin(config: UsherConfig, users: UserService, log: Logger): Promise<void> {
  const { adminUsername, adminPassword, adminApiKey } = config.bootstrap;
  if (!adminUsername || !adminPassword) return;
  const skipped = new AppError(409, 'setup.already_done', 'users exist');
  try {
    const { user } = await users.setupFirst(
      { username: adminUsername, password: adminPassword, apiKey: adminApiKey },
      SYSTEM_ORIGIN,
      () => skipped,
    );
    log.info({ userId: user.id, username: user.username }, 'bootstrap admin created');
  } catch (err) {
    if (err !== skipped) throw err;
    log.debug('bootstrap admin skipped: users exist');
  }
}
