import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, resolveConfig } from '../src/config/load.js';
import { problems } from './helpers/config.js';
import { runTs } from './helpers/process.js';

describe('configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'usher-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('has working defaults with nothing set', () => {
    const config = resolveConfig({});
    expect(config).toMatchObject({ port: 8787, dataDir: './data', logLevel: 'info', passwordMinLength: 8 });
    expect(config.database.url).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('lets the environment override the file', () => {
    const config = resolveConfig({ file: { server: { port: 9000 }, log: { level: 'debug' } }, env: { USHER_PORT: '9100' } });
    expect(config.port).toBe(9100);
    expect(config.logLevel).toBe('debug');
  });

  it.each([
    [{ USHER_PORT: '80a' }, 'config: USHER_PORT: must be an integer 1-65535, got "80a"'],
    [{ USHER_PORT: '0' }, 'config: USHER_PORT: must be an integer 1-65535, got "0"'],
    [{ USHER_LOG_LEVEL: 'loud' }, 'config: USHER_LOG_LEVEL: must be one of fatal|error|warn|info|debug|trace|silent, got "loud"'],
    [{ USHER_DATABASE_URL: 'mysql://x' }, 'config: USHER_DATABASE_URL: must be a postgres:// or postgresql:// URL (leave it unset for the SQLite file in the data dir)'],
    [{ USHER_SECRET: 'short' }, 'config: USHER_SECRET: must be at least 32 characters (generate one with: openssl rand -base64 48)'],
    [{ USHER_BOOTSTRAP_ADMIN_USERNAME: 'root' }, 'config: USHER_BOOTSTRAP_ADMIN_USERNAME: bootstrap needs both the admin username and password'],
    [{ USHER_BOOTSTRAP_ADMIN_USERNAME: 'root', USHER_BOOTSTRAP_ADMIN_PASSWORD: 'long-enough', USHER_BOOTSTRAP_ADMIN_API_KEY: 'too-short' }, 'config: USHER_BOOTSTRAP_ADMIN_API_KEY: must be at least 32 characters (an API key)'],
    [
      { USHER_BOOTSTRAP_ADMIN_USERNAME: 'root', USHER_BOOTSTRAP_ADMIN_PASSWORD: 'long-enough', USHER_BOOTSTRAP_ADMIN_API_KEY: `usa_${'a'.repeat(40)}` },
      'config: USHER_BOOTSTRAP_ADMIN_API_KEY: must not start with usd_ or usa_, the prefixes of device tokens and scoped keys (use usk_)',
    ],
    [{ USHER_BOOTSTRAP_ADMIN_USERNAME: 'root', USHER_BOOTSTRAP_ADMIN_PASSWORD: 'short' }, 'config: USHER_BOOTSTRAP_ADMIN_PASSWORD: must be at least 8 characters'],
    [{ USHER_BOOTSTRAP_ADMIN_USERNAME: 'ro\u200bot', USHER_BOOTSTRAP_ADMIN_PASSWORD: 'long-enough' }, 'config: USHER_BOOTSTRAP_ADMIN_USERNAME: must not contain control or invisible characters, got "ro\u200bot"'],
  ])('names the key and the problem for %o', (env, line) => {
    expect(problems(env)).toEqual([line]);
  });

  it('reports every problem at once, file keys by their path, and never echoes a secret', () => {
    const found = problems({ USHER_PORT: 'x', USHER_SECRET: 'hunter2' }, { server: { prot: 1 }, passwords: { minLength: 'eight' } });
    expect(found).toEqual([
      'config: server.prot: unknown key',
      'config: USHER_PORT: must be an integer 1-65535, got "x"',
      'config: USHER_SECRET: must be at least 32 characters (generate one with: openssl rand -base64 48)',
      'config: passwords.minLength: must be an integer 1-1024, got "eight"',
    ]);
    expect(found.join('\n')).not.toContain('hunter2');
  });

  it.each([
    [{ USHER_API_KEY_CACHE_TTL: '7' }, {}, 7_000],
    [{ USHER_API_KEY_CACHE_TTL: '5s' }, {}, 5_000],
    [{}, { auth: { apiKeyCacheTtl: '1m' } }, 60_000],
    [{}, { auth: { apiKeyCacheTtl: 30 } }, 30_000],
    [{}, { auth: { apiKeyCacheTtl: '0' } }, 0],
    [{}, {}, 5_000],
  ])('reads auth.apiKeyCacheTtl as a duration, a bare number being seconds (%o %o)', (env, file, ms) => {
    expect(resolveConfig({ env, file }).apiKeyCacheTtlMs).toBe(ms);
  });

  it.each([
    [{}, {}, 1_000],
    [{ USHER_CLUSTER_POLL_INTERVAL: '250ms' }, {}, 250],
    [{}, { cluster: { pollInterval: '5s' } }, 5_000],
    [{}, { cluster: { pollInterval: '100ms' } }, 100],
  ])('reads cluster.pollInterval, in milliseconds too (%o %o)', (env, file, ms) => {
    expect(resolveConfig({ env, file }).cluster.pollIntervalMs).toBe(ms);
  });

  it.each([
    [{ USHER_CLUSTER_POLL_INTERVAL: '99ms' }, 'config: USHER_CLUSTER_POLL_INTERVAL: must be a duration such as 90s, 15m, 12h or 30d (a bare number is seconds), from 100ms to 1h, got "99ms"'],
    [{ USHER_CLUSTER_POLL_INTERVAL: '0' }, 'config: USHER_CLUSTER_POLL_INTERVAL: must be a duration such as 90s, 15m, 12h or 30d (a bare number is seconds), from 100ms to 1h, got "0"'],
    [{ USHER_API_KEY_CACHE_TTL: '2h' }, 'config: USHER_API_KEY_CACHE_TTL: must be a duration such as 90s, 15m, 12h or 30d (a bare number is seconds), from 0s to 1h, got "2h"'],
    [{ USHER_OIDC_TIMEOUT: '3m' }, 'config: USHER_OIDC_TIMEOUT: must be a duration such as 90s, 15m, 12h or 30d (a bare number is seconds), from 1s to 2m, got "3m"'],
    [{ USHER_SESSION_MAX_AGE: '30s' }, 'config: USHER_SESSION_MAX_AGE: must be a duration such as 90s, 15m, 12h or 30d (a bare number is seconds), from 1m to 3650d, got "30s"'],
  ])('states a duration range in the units it accepts (%o)', (env, line) => {
    expect(problems(env)).toEqual([line]);
  });

  it("reads the host app's permissions, dotted, and names what is wrong with an entry", () => {
    const file = { permissions: [{ name: 'cert.create', description: 'Issue a certificate.' }, { name: 'cert:revoke' }] };
    expect(resolveConfig({ file }).permissions).toEqual([
      { name: 'cert.create', description: 'Issue a certificate.' },
      { name: 'cert.revoke', description: '' },
    ]);
    expect(resolveConfig({}).permissions).toEqual([]);
    const wrong = (permissions: unknown) => {
      try {
        resolveConfig({ file: { permissions } });
      } catch (err) {
        return (err as { problems: string[] }).problems;
      }
      return [];
    };
    expect(wrong('cert.create')).toEqual(['config: permissions: must be a list of {name, description}, got "cert.create"']);
    expect(wrong([{ name: 'Cert.Create' }])).toEqual(['config: permissions: [0].name must be object.action in lower case (cert.create), got "Cert.Create"']);
    expect(wrong([{ name: 'cert' }])).toEqual(['config: permissions: [0].name must be object.action in lower case (cert.create), got "cert"']);
    expect(wrong([{ name: 'a.b' }, { name: 'a:b' }])).toEqual(['config: permissions: [1].name is declared twice, got "a:b"']);
    expect(wrong([{ name: 'a.b', roles: [] }])[0]).toMatch(/^config: permissions: \[0\]\.roles: unknown key/);
  });

  it('reads resources and groupGrants, one line per problem naming the key', () => {
    const config = resolveConfig({
      file: {
        resources: [{ type: 'library', actions: ['write', 'read'], defaultForNewUsers: [1, '*', 1] }, { type: 'share', description: 'A folder.' }],
        groupGrants: [{ group: 'family', type: 'library', id: 3 }, { group: 'kids', provider: 'oidc:corp', type: 'share', id: 'x', actions: ['read'] }],
      },
    });
    expect(config.resources).toEqual([
      { type: 'library', actions: ['read', 'write'], description: '', defaultForNewUsers: ['1', '*'] },
      { type: 'share', actions: ['read'], description: 'A folder.', defaultForNewUsers: [] },
    ]);
    expect(config.groupGrants).toEqual([
      { group: 'family', provider: '*', type: 'library', id: '3', actions: ['read'] },
      { group: 'kids', provider: 'oidc:corp', type: 'share', id: 'x', actions: ['read'] },
    ]);
    expect(resolveConfig({}).resources).toEqual([]);
    const problems = (file: Record<string, unknown>) => {
      try {
        resolveConfig({ file });
      } catch (err) {
        return (err as { problems: string[] }).problems;
      }
      return [];
    };
    expect(problems({ resources: 'library', groupGrants: [{ group: 'g', type: 'library', id: 'a b' }] })).toEqual([
      'config: resources: must be a list of {type, actions?, description?, defaultForNewUsers?}, got "library"',
      'config: groupGrants: [0].id must be a resource id or \'*\', got "a b"',
    ]);
    expect(problems({ resources: [{ type: 'Library' }] })).toEqual(['config: resources: [0].type must be a name in lower case (library, share), got "Library"']);
    expect(problems({ resources: [{ type: 'a' }, { type: 'a' }] })).toEqual(['config: resources: [1].type is declared twice, got "a"']);
    expect(problems({ resources: [{ type: 'a', actions: [] }] })[0]).toMatch(/^config: resources: \[0\]\.actions must be a list of 1 to 32 actions/);
    expect(problems({ resources: [{ type: 'a', defaultForNewUsers: ['x y'] }] })[0]).toMatch(/^config: resources: \[0\]\.defaultForNewUsers must hold resource ids/);
    expect(problems({ resources: [{ type: 'a', level: 1 }] })[0]).toMatch(/^config: resources: \[0\]\.level: unknown key/);
    expect(problems({ groupGrants: [{ group: 'g', provider: 'ldap', type: 'a', id: 1 }] })[0]).toMatch(/^config: groupGrants: \[0\]\.provider must be proxy, oidc:<id> or \*/);
  });

  it('reads the YAML file named by USHER_CONFIG, and the documented example loads', () => {
    const file = join(dir, 'usher.yaml');
    writeFileSync(file, 'server:\n  port: 9999\nauth:\n  apiKeyCacheTtl: 0\n');
    expect(loadConfig({ USHER_CONFIG: file })).toMatchObject({ port: 9999, apiKeyCacheTtlMs: 0 });
    expect(() => loadConfig({ USHER_CONFIG: 'config/usher.example.yaml' })).not.toThrow();
    writeFileSync(file, 'server:\n  port: 9998\nbootstrap:\n  # adminUsername: root\n');
    expect(loadConfig({ USHER_CONFIG: file }).port).toBe(9998);
    writeFileSync(file, 'server: [unclosed');
    expect(() => loadConfig({ USHER_CONFIG: file })).toThrow(/USHER_CONFIG: .* is not valid YAML/);
    expect(() => loadConfig({ USHER_CONFIG: join(dir, 'missing.yaml') })).toThrow(/USHER_CONFIG: cannot read/);
  });

  it('has the CLI print each warning on stderr, and carry on', async () => {
    const file = join(dir, 'old-keys.yaml');
    const provider = { id: 'kc', issuer: 'https://sso.example.com', client_id: 'usher', default_role: 'user' };
    writeFileSync(file, JSON.stringify({ server: { publicUrl: 'https://auth.example.com' }, oidc: { providers: [provider] } }));
    const ran = await runTs('src/cli.ts', ['migrate'], { USHER_CONFIG: file, USHER_DATA_DIR: join(dir, 'cli-data') });
    expect(ran.code).toBe(0);
    expect(ran.stderr.trim().split('\n')).toEqual(['config: oidc.providers[0].default_role is deprecated; use oidc.providers[0].defaultRole']);
  });

  it('stops the server with exit code 2 and one line per problem', async () => {
    const ran = await runTs('src/server.ts', [], { USHER_PORT: '80a', USHER_LOG_LEVEL: 'nope', USHER_DATA_DIR: dir });
    expect(ran.code).toBe(2);
    expect(ran.stderr.trim().split('\n')).toEqual([
      'config: USHER_PORT: must be an integer 1-65535, got "80a"',
      'config: USHER_LOG_LEVEL: must be one of fatal|error|warn|info|debug|trace|silent, got "nope"',
    ]);
  });
});
