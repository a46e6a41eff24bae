import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/load.js';
import { problems as problemsOf } from './helpers/config.js';
import { claimAt, parseClaimPath } from '../src/config/oidc.js';

const base = { server: { publicUrl: 'https://auth.example.com' } };
const good = { id: 'kc', issuer: 'https://sso.example.com/realms/main', client_id: 'usher', client_secret: 's3cret' };

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
    const { client_secret: _s, ...noSecret } = good;
    const fromEnv = resolveConfig({ file: { ...base, oidc: { providers: [{ ...noSecret, client_secret_env: 'KC_SECRET' }] } }, env: { KC_SECRET: 'from-env' } });
    expect(fromEnv.oidc.providers[0]!.clientSecret).toBe('from-env');
    const file = join(dir, 'secret');
    writeFileSync(file, 'from-file\n');
    const fromFile = resolveConfig({ file: { ...base, oidc: { providers: [{ ...noSecret, client_secret_file: file }] } } });
    expect(fromFile.oidc.providers[0]!.clientSecret).toBe('from-file');
  });

  it.each([
    [[{ ...good, issuer: 'http://sso.example.com' }], 'config: oidc.providers[0].issuer: must be https:// (plain http is accepted only for a loopback issuer, in tests)'],
    [[{ ...good, id: 'Bad Id' }], 'config: oidc.providers[0].id: must be 1-32 of a-z 0-9 _ - (it appears in the callback URL)'],
    [[good, good], 'config: oidc.providers[1].id: "kc" is used twice'],
    [[{ ...good, client_id: '' }], 'config: oidc.providers[0].client_id: is required'],
    [[{ ...good, client_secret_env: 'X' }], 'config: oidc.providers[0].client_secret_env: give only one of client_secret, client_secret_env, client_secret_file'],
    [[{ ...good, scopes: 'profile email' }], 'config: oidc.providers[0].scopes: must include openid'],
    [[{ ...good, groups_claim: '' }], 'config: oidc.providers[0].groups_claim: must be a claim path such as groups or realm_access.roles, or a list of segments'],
    [[{ ...good, email_linking: 'yes' }], 'config: oidc.providers[0].email_linking: must be true or false'],
    [[{ ...good, allowed_admin_groups: 3 }], 'config: oidc.providers[0].allowed_admin_groups: must be a list of group names'],
    [[{ ...good, colour: 'blue' }], 'config: oidc.providers[0].colour: unknown key'],
  ])('names the key and the problem (%#)', (providers, line) => {
    expect(problems({ ...base, oidc: { providers } })).toContain(line);
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
