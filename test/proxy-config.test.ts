import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { resolveConfig } from '../src/config/load.js';
import { compileTrustedProxies, trustsEveryAddress } from '../src/config/trusted-proxies.js';
import { problems } from './helpers/config.js';
import { ROOT, runTs } from './helpers/process.js';

const TRUST_ALL = (entry: string) =>
  `config: USHER_TRUSTED_PROXIES: ${entry} trusts every address: anyone could forge X-Forwarded-* (and, with proxy auth, be any user); ` +
  "list your proxies' addresses, or set USHER_TRUST_ALL_PROXIES_DANGEROUS=true if nothing but your proxy can reach Usher";

describe('proxy auth configuration', () => {
  it('is off by default, with Authelia header names, "," between groups, auto-provisioning and roleSync always', () => {
    const { proxy, forwardAuth } = resolveConfig({});
    expect(proxy).toEqual({
      enabled: false,
      preset: undefined,
      userHeaders: ['Remote-User'],
      groupsHeader: 'Remote-Groups',
      emailHeader: 'Remote-Email',
      nameHeader: 'Remote-Name',
      groupsSeparator: ',',
      adminGroups: [],
      autoProvision: true,
      roleSync: 'always',
    });
    expect(forwardAuth).toEqual({ loginUrl: undefined, redirectDomains: [] });
  });

  it.each([
    ['authentik', { userHeaders: ['X-authentik-username'], groupsHeader: 'X-authentik-groups', emailHeader: 'X-authentik-email', nameHeader: 'X-authentik-name', groupsSeparator: '|' }],
    [
      'oauth2-proxy',
      { userHeaders: ['X-Forwarded-Preferred-Username', 'X-Forwarded-User'], groupsHeader: 'X-Forwarded-Groups', emailHeader: 'X-Forwarded-Email', nameHeader: undefined, groupsSeparator: ',' },
    ],
    ['authelia', { userHeaders: ['Remote-User'], groupsHeader: 'Remote-Groups', emailHeader: 'Remote-Email', nameHeader: 'Remote-Name', groupsSeparator: ',' }],
  ])('USHER_PROXY_PRESET=%s sets every header name and the separator', (preset, headers) => {
    expect(resolveConfig({ env: { USHER_PROXY_PRESET: preset } }).proxy).toMatchObject({ preset, ...headers });
  });

  it('lets a header set explicitly win over the preset, from the environment or the file', () => {
    const { proxy } = resolveConfig({
      env: { USHER_PROXY_PRESET: 'authentik', USHER_PROXY_USER_HEADER: 'X-User, X-Login', USHER_PROXY_GROUPS_SEPARATOR: ';' },
      file: { auth: { proxy: { emailHeader: 'X-Mail', adminGroups: ['Ops, Admins', 'root'] } } },
    });
    expect(proxy).toMatchObject({ userHeaders: ['X-User', 'X-Login'], groupsHeader: 'X-authentik-groups', emailHeader: 'X-Mail', groupsSeparator: ';', adminGroups: ['Ops, Admins', 'root'] });
  });

  it('reads the forward-auth login URL and defaults the redirect domains to its host and the public URL', () => {
    const config = resolveConfig({ env: { USHER_FORWARD_AUTH_LOGIN_URL: 'https://login.example.com/?app=x', USHER_PUBLIC_URL: 'https://auth.example.org' } });
    expect(config.forwardAuth).toEqual({ loginUrl: 'https://login.example.com/?app=x', redirectDomains: ['login.example.com', 'auth.example.org'] });
    expect(resolveConfig({ env: { USHER_FORWARD_AUTH_REDIRECT_DOMAINS: '.Example.com, *.example.net' } }).forwardAuth.redirectDomains).toEqual(['example.com', 'example.net']);
  });

  it.each([
    ['refuses proxy auth with no trusted proxy', { USHER_PROXY_AUTH: 'on' }, [
      'config: USHER_TRUSTED_PROXIES: proxy auth (USHER_PROXY_AUTH) needs the address of each trusted proxy, such as 127.0.0.1 or 10.0.0.0/8',
    ]],
    ['refuses 0.0.0.0/0', { USHER_PROXY_AUTH: 'on', USHER_TRUSTED_PROXIES: '10.0.0.1, 0.0.0.0/0' }, [TRUST_ALL('0.0.0.0/0')]],
    ['refuses ::/0', { USHER_PROXY_AUTH: 'true', USHER_TRUSTED_PROXIES: '::/0' }, [TRUST_ALL('::/0')]],
    ['refuses every IPv4 address written as a netmask', { USHER_PROXY_AUTH: 'on', USHER_TRUSTED_PROXIES: '0.0.0.0/0.0.0.0' }, [TRUST_ALL('0.0.0.0/0.0.0.0')]],
    ['refuses every IPv4 address written IPv4-mapped', { USHER_PROXY_AUTH: 'on', USHER_TRUSTED_PROXIES: '::ffff:0:0/96' }, [TRUST_ALL('::ffff:0:0/96')]],
    ['refuses an IPv6 range that holds every IPv4-mapped address', { USHER_PROXY_AUTH: 'on', USHER_TRUSTED_PROXIES: '::/1' }, [TRUST_ALL('::/1')]],
    ['refuses a trust-everything range even without proxy auth (X-Forwarded-* are believed from it)', { USHER_TRUSTED_PROXIES: '0.0.0.0/0' }, [TRUST_ALL('0.0.0.0/0')]],
    ['names a bad preset', { USHER_PROXY_PRESET: 'nginx' }, ['config: USHER_PROXY_PRESET: must be one of authelia|authentik|oauth2-proxy, got "nginx"']],
    ['names a bad switch', { USHER_PROXY_AUTH: 'maybe' }, ['config: USHER_PROXY_AUTH: must be true or false (on/off, yes/no, 1/0), got "maybe"']],
    ['names a bad roleSync', { USHER_PROXY_ROLE_SYNC: 'never' }, ['config: USHER_PROXY_ROLE_SYNC: must be one of always|on-create, got "never"']],
    ['names a bad header name', { USHER_PROXY_GROUPS_HEADER: 'Remote Groups' }, ['config: USHER_PROXY_GROUPS_HEADER: must be an HTTP header name (letters, digits, -), got "Remote Groups"']],
    ['names a bad separator', { USHER_PROXY_GROUPS_SEPARATOR: '---------' }, ['config: USHER_PROXY_GROUPS_SEPARATOR: must be 1-8 characters, got "---------"']],
    ['names a bad login URL', { USHER_FORWARD_AUTH_LOGIN_URL: 'login.example.com' }, [
      'config: USHER_FORWARD_AUTH_LOGIN_URL: must be an absolute http(s) URL without fragment or credentials, such as https://auth.example.com/login, got "login.example.com"',
    ]],
    ['names a bad redirect domain', { USHER_FORWARD_AUTH_REDIRECT_DOMAINS: 'https://example.com' }, [
      'config: USHER_FORWARD_AUTH_REDIRECT_DOMAINS: must be a list of host names, such as example.com, got "https://example.com"',
    ]],
  ])('%s, naming the key', (_name, env, expected) => {
    expect(problems(env)).toEqual(expected);
  });

  it('accepts a trust-everything range only with the explicitly dangerous option, and then trusts every peer', () => {
    const config = resolveConfig({ env: { USHER_PROXY_AUTH: 'on', USHER_TRUSTED_PROXIES: '0.0.0.0/0,::/0', USHER_TRUST_ALL_PROXIES_DANGEROUS: 'true' } });
    expect(config.trustAllProxiesDangerous).toBe(true);
    const trusted = compileTrustedProxies(config.trustedProxies);
    for (const peer of ['203.0.113.9', '::ffff:198.51.100.1', '2001:db8::1']) expect(trusted(peer)).toBe(true);
  });

  it('documents real keys: the commented auth.proxy and auth.forwardAuth sections of the example file load', () => {
    const lines = readFileSync(join(ROOT, 'config/usher.example.yaml'), 'utf8').split('\n');
    const start = lines.indexOf('  # proxy:');
    const end = lines.findIndex((l) => l.startsWith('  #   redirectDomains:'));
    expect(start).toBeGreaterThan(0);
    const section = lines
      .slice(start, end + 1)
      .filter((l) => /^ {2}# (proxy|forwardAuth):|^ {2}# {3}\w+:/.test(l))
      .map((l) => l.replace(/^ {2}# (proxy|forwardAuth):/, '  $1:').replace(/^ {2}# {3}/, '    '));
    const file = parseYaml(`auth:\n${section.join('\n')}\n`) as { auth: { proxy: object; forwardAuth: object } };
    expect(Object.keys(file.auth.proxy)).toEqual(['enabled', 'preset', 'userHeader', 'groupsHeader', 'emailHeader', 'nameHeader', 'groupsSeparator', 'adminGroups', 'autoProvision', 'roleSync']);
    const config = resolveConfig({ file });
    expect(config.proxy).toMatchObject({ enabled: false, adminGroups: ['admins'], roleSync: 'always' });
    expect(config.forwardAuth).toEqual({ loginUrl: 'https://auth.example.com/login', redirectDomains: ['example.com'] });
  });

  it('reports the file key of a bad file value', () => {
    expect(problems({}, { auth: { proxy: { roleSync: 'sometimes', preset: 'caddy' } } })).toEqual([
      'config: auth.proxy.preset: must be one of authelia|authentik|oauth2-proxy, got "caddy"',
      'config: auth.proxy.roleSync: must be one of always|on-create, got "sometimes"',
    ]);
  });

  it.each([
    ['the standalone server refuses to start with proxy auth and no trusted proxy', { USHER_PROXY_AUTH: 'on' }, 'config: USHER_TRUSTED_PROXIES: proxy auth'],
    ['the standalone server refuses to start when a trusted range holds every address', { USHER_PROXY_AUTH: 'on', USHER_TRUSTED_PROXIES: '::/0' }, 'config: USHER_TRUSTED_PROXIES: ::/0 trusts every address'],
  ])('%s (exit 2, one line naming the key)', async (_name, env, line) => {
    const ran = await runTs('src/server.ts', [], { ...env, USHER_DATA_DIR: '/nonexistent/never-created' });
    expect(ran.code).toBe(2);
    expect(ran.stderr.trim().split('\n')).toEqual([expect.stringContaining(line)]);
  });
});

describe('trusted proxy addresses', () => {
  it.each([
    [['127.0.0.1'], '127.0.0.1', true],
    [['127.0.0.1'], '::ffff:127.0.0.1', true],
    [['127.0.0.1'], '127.0.0.2', false],
    [['127.0.0.1'], '::1', false],
    [['::ffff:127.0.0.2'], '127.0.0.2', true],
    [['::1'], '::1', true],
    [['::1'], '127.0.0.1', false],
    [['10.0.0.0/8', 'fd00::/8'], '10.1.2.3', true],
    [['10.0.0.0/8', 'fd00::/8'], 'fd12::1', true],
    [['10.0.0.0/8', 'fd00::/8'], '11.0.0.1', false],
    [['loopback'], '::ffff:127.0.0.5', true],
    [['127.0.0.1'], 'not an address', false],
  ])('%j trusts %s: %s', (entries, peer, trusted) => {
    expect(compileTrustedProxies(entries)(peer)).toBe(trusted);
  });

  it.each([
    ['0.0.0.0/0', true],
    ['::/0', true],
    ['::ffff:0:0/96', true],
    ['::/1', true],
    ['0.0.0.0/1', true],
    ['128.0.0.0/1', true],
    ['::ffff:0:0/97', true],
    ['10.0.0.0/8', false],
    ['::ffff:10.0.0.0/104', false],
    ['2001:db8::/32', false],
    ['2000::/3', true],
    ['loopback', false],
  ])('%s trusts every address: %s', (entry, expected) => {
    expect(trustsEveryAddress(entry)).toBe(expected);
  });
});
