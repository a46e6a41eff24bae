import { cpSync, appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultPolicyDir } from '../src/authz/enforcer.js';
import { createUsher } from '../src/index.js';
import { testSettings } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';

describe.each(DB_KINDS)('policy.changed on %s', (kind) => {
  const { settings, cleanup } = testSettings(kind);
  const policyDir = mkdtempSync(join(tmpdir(), 'usher-policy-'));
  cpSync(defaultPolicyDir(), policyDir, { recursive: true });
  afterAll(async () => {
    await cleanup();
    rmSync(policyDir, { recursive: true, force: true });
  });

  /** Starts Usher on the same database, and answers the policy.changed entries, newest first. */
  async function startAndRead() {
    const usher = await createUsher({ config: settings, logger: pino({ level: 'silent' }), policyDir });
    try {
      return (await usher.audit.list({ offset: 0, limit: 10, type: 'policy.changed' })).entries;
    } finally {
      await usher.close();
    }
  }

  it('is recorded by the system at the first start, not again while the policy stays, and again when it changes', async () => {
    const [first, ...none] = await startAndRead();
    expect(none).toEqual([]);
    expect(first).toMatchObject({ type: 'policy.changed', actor: { kind: 'system' }, targetUserId: null, detail: { previous: null, roles: 2 } });
    const digest = first!.detail.digest;
    expect(digest).toMatch(/^[0-9a-f]{16}$/);

    expect(await startAndRead()).toHaveLength(1);

    appendFileSync(join(policyDir, 'policy.csv'), 'p, user, audit, read\n');
    const [changed, before] = await startAndRead();
    expect(before!.id).toBe(first!.id);
    expect(changed).toMatchObject({ actor: { kind: 'system' }, detail: { previous: digest } });
    expect(changed!.detail.digest).not.toBe(digest);
  });

  it('takes the digest from the database: a role made through the API is recorded once, by its change, not again at the next start', async () => {
    const usher = await createUsher({ config: settings, logger: pino({ level: 'silent' }), policyDir });
    let digest: string;
    try {
      const before = (await usher.audit.list({ offset: 0, limit: 10, type: 'policy.changed' })).entries.length;
      await usher.policy.createRole({ name: 'auditor', permissions: ['audit.read'] }, { actor: { kind: 'cli' } });
      expect(usher.authz.can('auditor', 'audit', 'read')).toBe(true);
      const entries = (await usher.audit.list({ offset: 0, limit: 10, type: 'policy.changed' })).entries;
      expect(entries).toHaveLength(before + 1);
      expect(entries[0]).toMatchObject({ actor: { kind: 'cli' }, detail: { change: 'role_created', role: 'auditor', digest: usher.authz.digest } });
      digest = usher.authz.digest;
    } finally {
      await usher.close();
    }
    const again = await createUsher({ config: settings, logger: pino({ level: 'silent' }), policyDir });
    try {
      expect(again.authz.digest).toBe(digest);
      expect(again.authz.can('auditor', 'audit', 'read')).toBe(true);
      expect((await again.audit.list({ offset: 0, limit: 10, type: 'policy.changed' })).entries[0]!.detail.change).toBe('role_created');
      // The file's change is written into the database: user now reads the audit log (appended above).
      expect(again.authz.can('user', 'audit', 'read')).toBe(true);
      expect(again.authz.policy.roles.get('user')!.builtIn).toBe(true);
    } finally {
      await again.close();
    }
  });

  it("checks a role change against the database's policy when another instance changed it since", async () => {
    const a = await createUsher({ config: settings, logger: pino({ level: 'silent' }), policyDir });
    const b = await createUsher({ config: settings, logger: pino({ level: 'silent' }), policyDir });
    try {
      const { user } = await b.users.create({ username: 'moved-by-b' }, { actor: { kind: 'cli' } });
      await a.policy.createRole({ name: 'made-by-a', permissions: ['users.list'] }, { actor: { kind: 'cli' } });
      // b's compiled policy is older than the database's: its check compiles the database's.
      expect(b.authz.roles.has('made-by-a')).toBe(false);
      expect((await b.users.update(user.id, { role: 'made-by-a' }, {}, { actor: { kind: 'cli' } })).role).toBe('made-by-a');
      await a.policy.deleteRole('made-by-a', 'user', { actor: { kind: 'cli' } });
      await expect(b.users.update(user.id, { role: 'made-by-a' }, {}, { actor: { kind: 'cli' } })).rejects.toMatchObject({ code: 'request.invalid' });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('keeps the newest policy.changed when the audit log is pruned, so the next start compares with it', async () => {
    const usher = await createUsher({ config: settings, logger: pino({ level: 'silent' }), policyDir });
    try {
      // Everything is past its retention a year from now.
      await usher.audit.prune(Date.now() + 365 * 86_400_000);
      const left = (await usher.audit.list({ offset: 0, limit: 10 })).entries;
      expect(left.map((e) => e.type)).toEqual(['policy.changed']);
    } finally {
      await usher.close();
    }
    expect(await startAndRead()).toHaveLength(1);
  });
});
