import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createUsher } from '../src/index.js';
import { verifyPassword } from '../src/crypto/passwords.js';
import { runTs } from './helpers/process.js';

describe('break-glass CLI (npm run usher -- ...)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'usher-cli-'));
  const env = { USHER_DATA_DIR: dataDir };
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  const open = () => createUsher({ config: { dataDir }, logger: pino({ level: 'silent' }) });

  it('creates an admin, reading the password from standard input', async () => {
    const ran = await runTs('src/cli.ts', ['create-admin', 'rescuer'], env, 'rescue-password-1\n');
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toMatch(/admin rescuer created \(id 1\)\nAPI key: usk_/);
    const usher = await open();
    const user = (await usher.users.findByUsername('rescuer'))!;
    expect(user).toMatchObject({ role: 'admin', active: true });
    expect(await verifyPassword(user.passwordHash!, 'rescue-password-1')).toBe(true);
    await usher.close();
  });

  it('resets a password directly on the database', async () => {
    const ran = await runTs('src/cli.ts', ['reset-password', 'RESCUER'], env, 'brand-new-password\n');
    expect(ran.code, ran.stderr).toBe(0);
    const usher = await open();
    const user = (await usher.users.findByUsername('rescuer'))!;
    expect(await verifyPassword(user.passwordHash!, 'brand-new-password')).toBe(true);
    await usher.close();
  });

  it('rotates and prints a user\'s API key', async () => {
    const ran = await runTs('src/cli.ts', ['rotate-api-key', 'rescuer'], env);
    expect(ran.code, ran.stderr).toBe(0);
    const key = /API key for rescuer: (usk_\S+)/.exec(ran.stdout)?.[1];
    const usher = await open();
    expect((await usher.users.findByApiKey(key!))?.username).toBe('rescuer');
    await usher.close();
  });

  it('prints the audit log of a user, the break-glass commands recorded with the CLI as the actor', async () => {
    const ran = await runTs('src/cli.ts', ['audit', '--user', 'rescuer', '--since', '1d'], env);
    expect(ran.code, ran.stderr).toBe(0);
    const lines = ran.stdout.trim().split('\n');
    expect(lines.map((l) => l.split(/\s+/)[1])).toEqual(['apikey.rotated', 'user.password_reset', 'user.created']);
    expect(lines.every((l) => /actor=cli\s+target=1\(rescuer\)/.test(l))).toBe(true);
    expect(ran.stdout).not.toMatch(/usk_|password"/);
    const bad = await runTs('src/cli.ts', ['audit', '--type', 'user.exploded'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/type: must be one of/);
  });

  it.each([
    [['reset-password', 'nobody'], 'long-enough-pw\n', 1, /no user named "nobody"/],
    [['create-admin', 'rescuer'], 'long-enough-pw\n', 1, /user.username_taken/],
    [['create-admin', 'weak'], 'short\n', 1, /password: must be at least 8 characters/],
    [['explode', 'x'], '', 64, /unknown command/],
    [[], '', 64, /usage:/],
  ])('fails clearly for %o', async (args, input, code, message) => {
    const ran = await runTs('src/cli.ts', args, env, input);
    expect(ran.code).toBe(code);
    expect(ran.stderr).toMatch(message);
  });

  it('applies migrations with npm run migrate', async () => {
    const fresh = mkdtempSync(join(tmpdir(), 'usher-cli-'));
    try {
      const first = await runTs('src/cli.ts', ['migrate'], { USHER_DATA_DIR: fresh });
      expect(first.stdout).toMatch(/applied: .*users/);
      const again = await runTs('src/cli.ts', ['migrate'], { USHER_DATA_DIR: fresh });
      expect(again.stdout).toBe('already up to date\n');
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });
});
