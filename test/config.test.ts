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

  it('stops the server with exit code 2 and one line per problem', async () => {
    const ran = await runTs('src/server.ts', [], { USHER_PORT: '80a', USHER_LOG_LEVEL: 'nope', USHER_DATA_DIR: dir });
    expect(ran.code).toBe(2);
    expect(ran.stderr.trim().split('\n')).toEqual([
      'config: USHER_PORT: must be an integer 1-65535, got "80a"',
      'config: USHER_LOG_LEVEL: must be one of fatal|error|warn|info|debug|trace|silent, got "nope"',
    ]);
  });
});
