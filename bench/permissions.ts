/**
 * `npm run bench` (last part): permission checks with 10,000 users and 100 custom roles, on SQLite.
 * The checks on the request path are set lookups (`Authorizer.can`), so their rate should not depend on
 * how many roles or users there are; a change compiles the whole policy again, which this also times.
 *
 * Prints one JSON line: checks per second through a role and through a direct grant, and the time one
 * change takes to compile (median of a few). Exit 0 always unless something fails.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createUsher } from '../src/index.js';
import { CLI } from '../src/events/stream.js';

const USERS = 10_000;
const ROLES = 100;
const CHECKS = 2_000_000;

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'usher-bench-permissions-'));
  const usher = await createUsher({ config: { dataDir, log: { level: 'silent' } }, logger: pino({ level: 'silent' }) });
  try {
    const usherPermissions = usher.authz.permissions.map((p) => p.name).filter((p) => !p.startsWith('self.'));
    for (let i = 0; i < ROLES; i++) {
      const permissions = usherPermissions.filter((_, j) => (i + j) % 3 === 0);
      await usher.policy.createRole({ name: `role-${i}`, inherits: i > 0 && i % 10 !== 0 ? [`role-${i - 1}`] : ['user'], permissions }, { actor: CLI });
    }
    const now = Date.now();
    const rows = Array.from({ length: USERS }, (_, i) => ({
      username: `u${i}`,
      username_key: `u${i}`,
      role: `role-${i % ROLES}`,
      created_at: now,
      updated_at: now,
    }));
    for (let i = 0; i < rows.length; i += 500) await usher.db('users').insert(rows.slice(i, i + 500));
    const ids = ((await usher.db('users').select('id').orderBy('id')) as { id: number }[]).map((r) => Number(r.id));
    const grants = ids.filter((_, i) => i % 10 === 0).map((id) => ({ user_id: id, object: 'audit', action: 'read', org_id: null, created_at: now, created_by: null }));
    for (let i = 0; i < grants.length; i += 500) await usher.db('user_permissions').insert(grants.slice(i, i + 500));

    const compiles: number[] = [];
    for (let i = 0; i < 5; i++) {
      const start = performance.now();
      await usher.authz.refresh();
      compiles.push(performance.now() - start);
    }
    compiles.sort((a, b) => a - b);

    const subjects = ids.map((id, i) => ({ id, role: `role-${i % ROLES}` }));
    let allowed = 0;
    const measure = (object: string, action: string) => {
      const start = performance.now();
      for (let i = 0; i < CHECKS; i++) if (usher.authz.can(subjects[i % subjects.length]!, object, action)) allowed++;
      return Math.round(CHECKS / ((performance.now() - start) / 1000));
    };
    const byRole = measure('users', 'list');
    const direct = measure('audit', 'read');
    console.log(
      JSON.stringify({
        bench: 'permissions',
        users: USERS,
        roles: ROLES + 2,
        checksPerSecond: { throughRole: byRole, throughDirectGrant: direct },
        compileMs: { median: Math.round(compiles[2]!), max: Math.round(compiles[4]!) },
        allowed,
      }),
    );
  } finally {
    await usher.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
