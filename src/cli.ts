import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { ConfigError, loadConfig } from './config/load.js';
import { openDatabase } from './db/connect.js';
import { migrateLatest } from './db/migrate.js';
import { deriveKeys, loadSecret } from './crypto/secret.js';
import { createLogger } from './logger.js';
import { AppError } from './errors.js';
import { ADMIN_ROLE } from './users/model.js';
import { UserService } from './users/service.js';
import { userSchemas } from './users/schemas.js';
import { parseWith } from './http/validate.js';
import { parseArgs } from 'node:util';
import { AuditLog, parseAuditQuery } from './events/audit.js';
import { CLI, EventStream, type Actor, type Origin } from './events/stream.js';

const CLI_ORIGIN: Origin = { actor: CLI };

const USAGE = `usage: npm run usher -- <command>
  migrate                     apply pending database migrations
  reset-password <username>   set a user's password (prompted, or read from standard input)
  create-admin <username>     create an enabled admin (password prompted, or read from standard input)
  rotate-api-key <username>   give a user a new API key and print it (the old one stops working)
  audit [--user NAME] [--type TYPE] [--since 7d|ISO] [--limit N]
                              print the audit log, newest first (as GET /api/v1/auth/audit)`;

/** Reads a password: a hidden prompt on a terminal, else the first line of standard input. */
async function readPassword(prompt: string): Promise<string> {
  if (!process.stdin.isTTY) {
    let data = '';
    for await (const chunk of process.stdin) data += String(chunk);
    return data.split(/\r?\n/, 1)[0] ?? '';
  }
  const muted = new Writable({ write: (_c, _e, cb) => cb() });
  process.stderr.write(prompt);
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true });
  const answer = await new Promise<string>((resolve) => rl.question('', resolve));
  rl.close();
  process.stderr.write('\n');
  return answer;
}

/** The audit log from the server's shell: one line per entry, newest first. */
async function printAudit(args: string[]): Promise<number> {
  let flags: { user?: string; type?: string; since?: string; limit?: string };
  try {
    flags = parseArgs({ args, options: { user: { type: 'string' }, type: { type: 'string' }, since: { type: 'string' }, limit: { type: 'string' } } }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 64;
  }
  const config = loadConfig(process.env);
  for (const line of config.warnings) process.stderr.write(`${line}\n`);
  const log = createLogger('warn', process.stderr);
  const db = openDatabase(config);
  const audit = new AuditLog(db, new EventStream(log), log, config.auditRetentionMs);
  try {
    await migrateLatest(db, config);
    const query = parseAuditQuery({ type: flags.type, since: flags.since, limit: flags.limit ?? '100' });
    const names = new Map<number, string>();
    if (flags.user !== undefined) {
      const user = await new UserService(db, deriveKeys(loadSecret(config)), log, new EventStream(log)).findByUsername(flags.user);
      if (!user) throw new Error(`no user named ${JSON.stringify(flags.user)}`);
      query.targetUserId = user.id;
      names.set(user.id, user.username);
    }
    const { entries, total } = await audit.list(query);
    const who = (a: Actor) => (a.kind === 'user' ? `user:${a.userId}(${a.method})` : a.kind === 'idp' ? `idp:${a.provider}` : a.kind);
    for (const e of entries) {
      const target = e.targetUserId === null ? '-' : `${e.targetUserId}${names.has(e.targetUserId) ? `(${names.get(e.targetUserId)})` : ''}`;
      process.stdout.write(`${e.at}  ${e.type.padEnd(28)} actor=${who(e.actor)}  target=${target}  ip=${e.ip ?? '-'}  ${JSON.stringify(e.detail)}\n`);
    }
    process.stderr.write(`${entries.length} of ${total} entries\n`);
    return 0;
  } finally {
    await audit.close();
    await db.destroy();
  }
}

/** Break-glass commands working directly on the database (like `grafana cli admin reset-admin-password`). */
async function main(argv: string[]): Promise<number> {
  const [command, username, ...rest] = argv;
  if (command === 'audit') return printAudit(argv.slice(1));
  if (!command || rest.length > 0 || (command !== 'migrate' && !username)) {
    process.stderr.write(`${USAGE}\n`);
    return 64;
  }
  const config = loadConfig(process.env);
  for (const line of config.warnings) process.stderr.write(`${line}\n`);
  const log = createLogger('warn', process.stderr);
  const db = openDatabase(config);
  let audit: AuditLog | undefined;
  try {
    const applied = await migrateLatest(db, config);
    if (command === 'migrate') {
      process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'already up to date\n');
      return 0;
    }
    // The break-glass commands are audited like any change, with the CLI as the actor.
    const events = new EventStream(log);
    audit = new AuditLog(db, events, log, config.auditRetentionMs);
    const users = new UserService(db, deriveKeys(loadSecret(config)), log, events);
    const schemas = userSchemas({ passwordMinLength: config.passwordMinLength, roles: () => new Set([ADMIN_ROLE]) });
    if (command === 'reset-password') {
      const user = await users.findByUsername(username!);
      if (!user) throw new Error(`no user named ${JSON.stringify(username)}`);
      const { password } = parseWith(schemas.resetPassword, { password: await readPassword(`New password for ${user.username}: `) });
      await users.resetPassword(user.id, password, CLI_ORIGIN);
      process.stdout.write(`password reset for ${user.username} (id ${user.id})\n`);
      return 0;
    }
    if (command === 'rotate-api-key') {
      const user = await users.findByUsername(username!);
      if (!user) throw new Error(`no user named ${JSON.stringify(username)}`);
      process.stdout.write(`API key for ${user.username}: ${await users.rotateApiKey(user.id, CLI_ORIGIN)}\n`);
      return 0;
    }
    if (command === 'create-admin') {
      const input = parseWith(schemas.credentials, { username, password: await readPassword(`Password for ${username}: `) });
      const { user, apiKey } = await users.create({ ...input, role: ADMIN_ROLE }, CLI_ORIGIN);
      process.stdout.write(`admin ${user.username} created (id ${user.id})\nAPI key: ${apiKey}\n`);
      return 0;
    }
    process.stderr.write(`unknown command ${JSON.stringify(command)}\n${USAGE}\n`);
    return 64;
  } finally {
    await audit?.close();
    await db.destroy();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError) {
      for (const line of err.problems) process.stderr.write(`${line}\n`);
      process.exit(2);
    }
    process.stderr.write(`usher: ${err instanceof AppError ? `${err.code}: ${err.message}` : (err as Error).message}\n`);
    process.exit(1);
  },
);
