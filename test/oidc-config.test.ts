import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/load.js';
import { problems as problemsOf } from './helpers/config.js';
import { claimAt, parseClaimPath } from '../src/config/oidc.js';
import { createUsher } from '../src/index.js';
import { testSettings } from './helpers/app.js';
import { memoryLogger } from './helpers/proxy.js';

const base = { server: { publicUrl: 'https://auth.example.com' } };
const good = { id: 'kc', issuer: 'https://sso.example.com/realms/main', clientId: 'usher', clientSecret: 's3cret' };

/** The problem lines for a config file (and environment). */
const problems = (file: unknown, env: Record<string, string> = {}) => problemsOf(env, file);

describe('oidc.providers configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'usher-oidc-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('fills the documented defaults', () => {
    const [p] = resolveConfig({ file: { ...base, oidc: { providers: [good] } } }).oidc.providers;
    expect(p).toMatchObject({
      id: 'kc',
      name: 'kc',
      scopes: 'openid profile email',
      usernameClaims: ['preferred_username', 'email', 'sub'],
      groupsClaim: ['groups'],
      allowedGroups: undefined,
      allowedAdminGroups: [],
      defaultRole: 'user',
      autoProvision: true,
      emailLinking: false,
      roleSync: 'always',
      insecureLoopback: false,
    });
  });

  it('reads the client secret from an environment variable or a file', () => {
    const { clientSecret: _s, ...noSecret } = good;
    const fromEnv = resolveConfig({ file: { ...base, oidc: { providers: [{ ...noSecret, clientSecretEnv: 'KC_SECRET' }] } }, env: { KC_SECRET: 'from-env' } });
    expect(fromEnv.oidc.providers[0]!.clientSecret).toBe('from-env');
    const file = join(dir, 'secret');
    writeFileSync(file, 'from-file\n');
    const fromFile = resolveConfig({ file: { ...base, oidc: { providers: [{ ...noSecret, clientSecretFile: file }] } } });
    expect(fromFile.oidc.providers[0]!.clientSecret).toBe('from-file');
  });

  it.each([
    [[{ ...good, issuer: 'http://sso.example.com' }], 'config: oidc.providers[0].issuer: must be https:// (plain http is accepted only for a loopback issuer, in tests), got "http://sso.example.com"'],
    [[{ ...good, id: 'Bad Id' }], 'config: oidc.providers[0].id: must be 1-32 of a-z 0-9 _ - (it appears in the callback URL), got "Bad Id"'],
    [[{ ...good, id: undefined }], 'config: oidc.providers[0].id: is required'],
    [[good, good], 'config: oidc.providers[1].id: "kc" is used twice'],
    [[{ ...good, clientId: '' }], 'config: oidc.providers[0].clientId: is required'],
    [[{ ...good, clientId: undefined, client_id: '' }], 'config: oidc.providers[0].client_id: is required'],
    [[{ ...good, client_id: 'usher' }], 'config: oidc.providers[0].client_id: give only one of clientId, client_id'],
    [[{ ...good, clientSecret: '' }], 'config: oidc.providers[0].clientSecret: must be a non-empty string'],
    [[{ ...good, clientSecretEnv: 'X' }], 'config: oidc.providers[0].clientSecretEnv: give only one of clientSecret, clientSecretEnv'],
    [[{ ...good, clientSecret: undefined, clientSecretEnv: 'UNSET_VARIABLE' }], 'config: oidc.providers[0].clientSecretEnv: names no set environment variable'],
    [[{ ...good, scopes: 'profile email' }], 'config: oidc.providers[0].scopes: must include openid, got "profile email"'],
    [[{ ...good, groupsClaim: '' }], 'config: oidc.providers[0].groupsClaim: must be a claim path such as groups or realm_access.roles, or a list of segments, got ""'],
    [[{ ...good, emailLinking: 'maybe' }], 'config: oidc.providers[0].emailLinking: must be true or false (on/off, yes/no, 1/0), got "maybe"'],
    [[{ ...good, allowedAdminGroups: 3 }], 'config: oidc.providers[0].allowedAdminGroups: must be a list of group names, got 3'],
    [[{ ...good, roleSync: 'sometimes' }], 'config: oidc.providers[0].roleSync: must be one of always|on-create, got "sometimes"'],
    [[{ ...good, colour: 'blue' }], 'config: oidc.providers[0].colour: unknown key'],
    [[{ ...good, defaultRole: 'user', default_role: 'user' }], 'config: oidc.providers[0].default_role: give only one of defaultRole, default_role'],
  ])('names the key and the problem (%#)', (providers, line) => {
    expect(problems({ ...base, oidc: { providers } })).toContain(line);
  });

  it('reads values as the main table does: booleans as on/off, lists as YAML sequences or comma-separated', () => {
    const [p] = resolveConfig({
      file: { ...base, oidc: { providers: [{ ...good, autoProvision: 'off', emailLinking: 'yes', allowedGroups: 'staff, admins', scopes: ['openid', 'groups'] }] } },
    }).oidc.providers;
    expect(p).toMatchObject({ autoProvision: false, emailLinking: true, allowedGroups: ['staff', 'admins'], scopes: 'openid groups' });
  });

  it('still reads the old snake_case keys, with one warning line each naming the new key', () => {
    const { clientId: _i, clientSecret: _s, ...rest } = good;
    const old = {
      ...rest,
      client_id: 'usher',
      client_secret_env: 'KC_SECRET',
      username_claim: 'email',
      groups_claim: 'realm_access.roles',
      allowed_groups: ['staff'],
      allowed_admin_groups: ['admins'],
      default_role: 'admin',
      auto_provision: false,
      email_linking: true,
      role_sync: 'on-create',
    };
    const config = resolveConfig({ file: { ...base, oidc: { providers: [old] } }, env: { KC_SECRET: 'from-env' } });
    expect(config.oidc.providers[0]).toMatchObject({
      clientId: 'usher',
      clientSecret: 'from-env',
      usernameClaims: ['email'],
      groupsClaim: ['realm_access', 'roles'],
      allowedGroups: ['staff'],
      allowedAdminGroups: ['admins'],
      defaultRole: 'admin',
      autoProvision: false,
      emailLinking: true,
      roleSync: 'on-create',
    });
    // client_id is OAuth's own spelling: accepted for good, without a warning.
    expect(config.warnings).toEqual([
      'config: oidc.providers[0].client_secret_env is deprecated; use oidc.providers[0].clientSecretEnv',
      'config: oidc.providers[0].username_claim is deprecated; use oidc.providers[0].usernameClaim',
      'config: oidc.providers[0].groups_claim is deprecated; use oidc.providers[0].groupsClaim',
      'config: oidc.providers[0].allowed_groups is deprecated; use oidc.providers[0].allowedGroups',
      'config: oidc.providers[0].allowed_admin_groups is deprecated; use oidc.providers[0].allowedAdminGroups',
      'config: oidc.providers[0].default_role is deprecated; use oidc.providers[0].defaultRole',
      'config: oidc.providers[0].auto_provision is deprecated; use oidc.providers[0].autoProvision',
      'config: oidc.providers[0].email_linking is deprecated; use oidc.providers[0].emailLinking',
      'config: oidc.providers[0].role_sync is deprecated; use oidc.providers[0].roleSync',
    ]);
    expect(resolveConfig({ file: { ...base, oidc: { providers: [good] } } }).warnings).toEqual([]);
  });

  it('has createUsher log each warning once, at warn level', async () => {
    const { settings, cleanup } = testSettings('sqlite', { ...base, oidc: { providers: [{ ...good, role_sync: 'on-create' }] } });
    const log = memoryLogger();
    const usher = await createUsher({ config: settings, logger: log.logger });
    try {
      expect(log.lines.filter((l) => String(l.msg).startsWith('config: '))).toEqual([
        expect.objectContaining({ level: 40, msg: 'config: oidc.providers[0].role_sync is deprecated; use oidc.providers[0].roleSync' }),
      ]);
    } finally {
      await usher.close();
      await cleanup();
    }
  });

  it('names an old spelling as written when its value is wrong', () => {
    expect(problems({ ...base, oidc: { providers: [{ ...good, email_linking: 'maybe' }] } })).toEqual([
      'config: oidc.providers[0].email_linking: must be true or false (on/off, yes/no, 1/0), got "maybe"',
    ]);
  });

  it('accepts a plain http issuer only on loopback, and needs server.publicUrl', () => {
    const loop = resolveConfig({ file: { ...base, oidc: { providers: [{ ...good, issuer: 'http://127.0.0.1:9999' }] } } });
    expect(loop.oidc.providers[0]!.insecureLoopback).toBe(true);
    expect(problems({ oidc: { providers: [good] } })).toEqual(['config: server.publicUrl: is required with oidc.providers (redirect URIs are built from it)']);
  });

  it('parses claim paths, including names that hold dots and colons', () => {
    expect(parseClaimPath('realm_access.roles')).toEqual(['realm_access', 'roles']);
    expect(parseClaimPath('resource_access.my-client.roles')).toEqual(['resource_access', 'my-client', 'roles']);
    expect(parseClaimPath('["https://example.com/groups"]')).toEqual(['https://example.com/groups']);
    expect(parseClaimPath(['urn:example:claims', 'groups'])).toEqual(['urn:example:claims', 'groups']);
    expect(parseClaimPath('a..b')).toBeNull();
    expect(parseClaimPath('.a')).toBeNull();
    expect(claimAt({ realm_access: { roles: ['a'] } }, ['realm_access', 'roles'])).toEqual(['a']);
    expect(claimAt({ realm_access: 'x' }, ['realm_access', 'roles'])).toBeUndefined();
  });
});
