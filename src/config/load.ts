import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { parseOidcProviders } from './oidc.js';
import {
  absoluteUrl, linkUrl, boolean, cidrList, cookieDomain, covers, databaseUrl, domainList, duration, groupList, headerName, headerNames, integer,
  groupGrantList, keyPrefix, listenAddress, logLevel, oneOf, orgGroupList, permissionList, resourceList, publicUrl, redisUrl, schemaName, secretText, separator, text, username, type DeclaredPermissionConfig, type GroupGrantConfig, type OrgGroupRuleConfig, type Parser, type ResourceConfig, type ValueOf,
} from './parsers.js';
import { trustsEveryAddress } from './trusted-proxies.js';
import { PROXY_PRESETS, ROLE_SYNC_MODES, type LogLevel, type ProxyPreset, type RoleSync, type UsherConfig } from './schema.js';

const resolvedConfigs = new WeakSet<object>();

/** True for a config that resolveConfig/loadConfig produced (so it is not validated twice). */
export function isResolvedConfig(value: unknown): value is UsherConfig {
  return typeof value === 'object' && value !== null && resolvedConfigs.has(value);
}

/** Thrown when configuration is wrong; `problems` holds one line per problem, each naming its key. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

/** One option: where it lives in the file, which variable overrides it, how to read it, its default. */
interface Option<T> {
  path: string;
  env?: string;
  parse: Parser<T>;
  fallback: T;
}

const OPTIONS = {
  port: { path: 'server.port', env: 'USHER_PORT', parse: integer(1, 65535), fallback: 8787 },
  host: { path: 'server.host', env: 'USHER_HOST', parse: (raw: unknown) => text()(raw), fallback: '0.0.0.0' },
  publicUrl: { path: 'server.publicUrl', env: 'USHER_PUBLIC_URL', parse: publicUrl, fallback: undefined },
  trustedProxies: { path: 'server.trustedProxies', env: 'USHER_TRUSTED_PROXIES', parse: cidrList, fallback: Object.freeze([]) as readonly string[] },
  trustAllProxies: { path: 'server.trustAllProxiesDangerous', env: 'USHER_TRUST_ALL_PROXIES_DANGEROUS', parse: boolean, fallback: false },
  dataDir: { path: 'dataDir', env: 'USHER_DATA_DIR', parse: text(), fallback: './data' },
  databaseUrl: { path: 'database.url', env: 'USHER_DATABASE_URL', parse: databaseUrl, fallback: undefined },
  databaseSchema: { path: 'database.schema', env: 'USHER_DATABASE_SCHEMA', parse: schemaName, fallback: undefined },
  secret: { path: 'secret', env: 'USHER_SECRET', parse: secretText(32, 4096, 'generate one with: openssl rand -base64 48'), fallback: undefined },
  adminUsername: { path: 'bootstrap.adminUsername', env: 'USHER_BOOTSTRAP_ADMIN_USERNAME', parse: username, fallback: undefined },
  adminPassword: { path: 'bootstrap.adminPassword', env: 'USHER_BOOTSTRAP_ADMIN_PASSWORD', parse: secretText(1, 1024, ''), fallback: undefined },
  adminApiKey: { path: 'bootstrap.adminApiKey', env: 'USHER_BOOTSTRAP_ADMIN_API_KEY', parse: secretText(32, 512, 'an API key'), fallback: undefined },
  logLevel: { path: 'log.level', env: 'USHER_LOG_LEVEL', parse: logLevel, fallback: 'info' as LogLevel },
  passwordMinLength: { path: 'passwords.minLength', env: 'USHER_PASSWORD_MIN_LENGTH', parse: integer(1, 1024), fallback: 8 },
  oidcStartsPerMinute: { path: 'oidc.startsPerMinute', env: 'USHER_OIDC_STARTS_PER_MINUTE', parse: integer(1, 100_000), fallback: 30 },
  oidcTimeout: { path: 'oidc.timeout', env: 'USHER_OIDC_TIMEOUT', parse: duration(1_000, 120_000), fallback: 10_000 },
  redisUrl: { path: 'redis.url', env: 'USHER_REDIS_URL', parse: redisUrl, fallback: undefined },
  redisPrefix: { path: 'redis.keyPrefix', env: 'USHER_REDIS_KEY_PREFIX', parse: keyPrefix, fallback: 'usher:' },
  sessionIdleTimeout: { path: 'session.idleTimeout', env: 'USHER_SESSION_IDLE_TIMEOUT', parse: duration(60_000, 3650 * 86_400_000), fallback: 30 * 86_400_000 },
  sessionMaxAge: { path: 'session.maxAge', env: 'USHER_SESSION_MAX_AGE', parse: duration(60_000, 3650 * 86_400_000), fallback: 90 * 86_400_000 },
  sessionDeviceIdleTimeout: {
    path: 'session.deviceIdleTimeout',
    env: 'USHER_SESSION_DEVICE_IDLE_TIMEOUT',
    parse: duration(60_000, 3650 * 86_400_000),
    fallback: 180 * 86_400_000,
  },
  sessionCookieDomain: { path: 'session.cookieDomain', env: 'USHER_SESSION_COOKIE_DOMAIN', parse: cookieDomain, fallback: undefined },
  loginMaxFailures: { path: 'auth.loginRateLimit.maxFailures', env: 'USHER_LOGIN_MAX_FAILURES', parse: integer(1, 1000), fallback: 10 },
  loginWindow: { path: 'auth.loginRateLimit.window', env: 'USHER_LOGIN_WINDOW', parse: duration(1_000, 7 * 86_400_000), fallback: 60 * 60_000 },
  loginAddressMaxFailures: { path: 'auth.loginRateLimit.addressMaxFailures', env: 'USHER_LOGIN_ADDRESS_MAX_FAILURES', parse: integer(1, 100_000), fallback: 100 },
  loginAddressWindow: { path: 'auth.loginRateLimit.addressWindow', env: 'USHER_LOGIN_ADDRESS_WINDOW', parse: duration(1_000, 7 * 86_400_000), fallback: 86_400_000 },
  loginAccountMaxFailures: { path: 'auth.loginRateLimit.accountMaxFailures', env: 'USHER_LOGIN_ACCOUNT_MAX_FAILURES', parse: integer(1, 100_000), fallback: 10 },
  loginAccountWindow: { path: 'auth.loginRateLimit.accountWindow', env: 'USHER_LOGIN_ACCOUNT_WINDOW', parse: duration(1_000, 7 * 86_400_000), fallback: 15 * 60_000 },
  loginAccountSlowdown: { path: 'auth.loginRateLimit.accountSlowdown', env: 'USHER_LOGIN_ACCOUNT_SLOWDOWN', parse: duration(1_000, 3_600_000), fallback: 10_000 },
  metricsEnabled: { path: 'metrics.enabled', env: 'USHER_METRICS_ENABLED', parse: boolean, fallback: false },
  metricsListen: { path: 'metrics.listen', env: 'USHER_METRICS_LISTEN', parse: listenAddress, fallback: undefined },
  metricsToken: { path: 'metrics.token', env: 'USHER_METRICS_TOKEN', parse: secretText(32, 1024, 'generate one with: openssl rand -base64 48'), fallback: undefined },
  auditRetention: { path: 'audit.retention', env: 'USHER_AUDIT_RETENTION', parse: duration(86_400_000, 3650 * 86_400_000), fallback: 90 * 86_400_000 },
  clusterPollInterval: { path: 'cluster.pollInterval', env: 'USHER_CLUSTER_POLL_INTERVAL', parse: duration(100, 3_600_000), fallback: 1_000 },
  apiKeyCacheTtl: { path: 'auth.apiKeyCacheTtl', env: 'USHER_API_KEY_CACHE_TTL', parse: duration(0, 3_600_000), fallback: 5_000 },
  proxyEnabled: { path: 'auth.proxy.enabled', env: 'USHER_PROXY_AUTH', parse: boolean, fallback: false },
  proxyPreset: { path: 'auth.proxy.preset', env: 'USHER_PROXY_PRESET', parse: oneOf(Object.keys(PROXY_PRESETS) as ProxyPreset[]), fallback: undefined },
  proxyUserHeader: { path: 'auth.proxy.userHeader', env: 'USHER_PROXY_USER_HEADER', parse: headerNames, fallback: undefined },
  proxyGroupsHeader: { path: 'auth.proxy.groupsHeader', env: 'USHER_PROXY_GROUPS_HEADER', parse: headerName, fallback: undefined },
  proxyEmailHeader: { path: 'auth.proxy.emailHeader', env: 'USHER_PROXY_EMAIL_HEADER', parse: headerName, fallback: undefined },
  proxyNameHeader: { path: 'auth.proxy.nameHeader', env: 'USHER_PROXY_NAME_HEADER', parse: headerName, fallback: undefined },
  proxyGroupsSeparator: { path: 'auth.proxy.groupsSeparator', env: 'USHER_PROXY_GROUPS_SEPARATOR', parse: separator, fallback: undefined },
  proxyAdminGroups: { path: 'auth.proxy.adminGroups', env: 'USHER_PROXY_ADMIN_GROUPS', parse: groupList, fallback: Object.freeze([]) as readonly string[] },
  proxyAutoProvision: { path: 'auth.proxy.autoProvision', env: 'USHER_PROXY_AUTO_PROVISION', parse: boolean, fallback: true },
  proxyRoleSync: { path: 'auth.proxy.roleSync', env: 'USHER_PROXY_ROLE_SYNC', parse: oneOf(ROLE_SYNC_MODES), fallback: 'always' as RoleSync },
  orgGroups: { path: 'orgGroups', parse: orgGroupList, fallback: Object.freeze([]) as readonly OrgGroupRuleConfig[] },
  permissions: { path: 'permissions', parse: permissionList, fallback: Object.freeze([]) as readonly DeclaredPermissionConfig[] },
  resources: { path: 'resources', parse: resourceList, fallback: Object.freeze([]) as readonly ResourceConfig[] },
  groupGrants: { path: 'groupGrants', parse: groupGrantList, fallback: Object.freeze([]) as readonly GroupGrantConfig[] },
  forwardAuthLoginUrl: { path: 'auth.forwardAuth.loginUrl', env: 'USHER_FORWARD_AUTH_LOGIN_URL', parse: absoluteUrl, fallback: undefined },
  forwardAuthRedirectDomains: { path: 'auth.forwardAuth.redirectDomains', env: 'USHER_FORWARD_AUTH_REDIRECT_DOMAINS', parse: domainList, fallback: undefined },
  connectAppUrl: { path: 'connect.appUrl', env: 'USHER_CONNECT_APP_URL', parse: linkUrl, fallback: undefined },
  connectWebUrl: { path: 'connect.webUrl', env: 'USHER_CONNECT_WEB_URL', parse: absoluteUrl, fallback: undefined },
} satisfies Record<string, Option<unknown>>;

/** The options as read, derived from the table so the two cannot drift. */
type Values = { [K in keyof typeof OPTIONS]: ValueOf<(typeof OPTIONS)[K]> };

/** Where configuration comes from; later sources override earlier ones. */
export interface ConfigSources {
  /** Parsed config file contents (same shape as config/usher.example.yaml). */
  file?: unknown;
  /** Environment variables (normally process.env). */
  env?: Record<string, string | undefined>;
}

function lookup(tree: unknown, path: string): unknown {
  let node = tree;
  for (const part of path.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function unknownKeys(tree: unknown, known: Set<string>, prefix = ''): string[] {
  if (tree === null || typeof tree !== 'object' || Array.isArray(tree)) return [];
  const found: string[] = [];
  for (const [key, value] of Object.entries(tree)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (known.has(path)) continue;
    // An empty section (`bootstrap:` with every child commented out) parses as null: nothing to check.
    if (value === null) continue;
    const isBranch = [...known].some((k) => k.startsWith(`${path}.`));
    if (isBranch && value !== null && typeof value === 'object') found.push(...unknownKeys(value, known, path));
    else found.push(path);
  }
  return found;
}

/**
 * Reads and validates configuration: defaults < file < environment.
 * Reports every problem at once (one line each, naming the key); changes nothing.
 */
export function resolveConfig(sources: ConfigSources): UsherConfig {
  const problems: string[] = [];
  const env = sources.env ?? {};
  const file = sources.file ?? {};
  if (typeof file !== 'object' || file === null || Array.isArray(file)) {
    throw new ConfigError(['config: the config file must hold a mapping of keys']);
  }
  const known = new Set([...Object.values(OPTIONS).map((o) => o.path), 'oidc.providers']);
  for (const key of unknownKeys(file, known)) problems.push(`config: ${key}: unknown key`);

  const warnings: string[] = [];
  const values: Record<string, unknown> = {};
  // Cross-checks below skip options that already failed, so one mistake gives one line.
  const failed = new Set<string>();
  /** Where each option was read: its variable or its path in the file, for problem lines. */
  const keys: Record<string, string> = {};
  for (const [name, option] of Object.entries(OPTIONS) as [string, Option<unknown>][]) {
    const fromEnv = option.env ? env[option.env] : undefined;
    const [key, raw] = fromEnv !== undefined && fromEnv !== '' ? [option.env!, fromEnv] : [option.path, lookup(file, option.path)];
    keys[name] = key;
    if (raw === undefined || raw === null) {
      values[name] = option.fallback;
      continue;
    }
    const result = option.parse(raw);
    if (result.ok) values[name] = result.value ?? option.fallback;
    else {
      problems.push(`config: ${key}: ${result.problem}`);
      failed.add(name);
    }
  }
  const v = values as unknown as Values;
  const oidcProviders = parseOidcProviders(lookup(file, 'oidc.providers'), env, undefined, problems, warnings);
  if (oidcProviders.length > 0 && v.publicUrl === undefined && !failed.has('publicUrl')) {
    problems.push('config: server.publicUrl: is required with oidc.providers (redirect URIs are built from it)');
  }
  if (!failed.has('adminUsername') && !failed.has('adminPassword') && (v.adminUsername === undefined) !== (v.adminPassword === undefined)) {
    problems.push('config: USHER_BOOTSTRAP_ADMIN_USERNAME: bootstrap needs both the admin username and password');
  }
  if (v.adminApiKey !== undefined && v.adminUsername === undefined && !failed.has('adminUsername')) {
    problems.push('config: USHER_BOOTSTRAP_ADMIN_API_KEY: needs USHER_BOOTSTRAP_ADMIN_USERNAME and USHER_BOOTSTRAP_ADMIN_PASSWORD');
  }
  if (v.adminApiKey?.startsWith('usd_') || v.adminApiKey?.startsWith('usa_')) {
    problems.push('config: USHER_BOOTSTRAP_ADMIN_API_KEY: must not start with usd_ or usa_, the prefixes of device tokens and scoped keys (use usk_)');
  }
  if (v.adminPassword !== undefined && v.adminPassword.length < v.passwordMinLength) {
    problems.push(`config: USHER_BOOTSTRAP_ADMIN_PASSWORD: must be at least ${v.passwordMinLength} characters`);
  }
  if (!failed.has('sessionIdleTimeout') && !failed.has('sessionMaxAge') && v.sessionIdleTimeout > v.sessionMaxAge) {
    problems.push('config: session.idleTimeout: must not be longer than session.maxAge');
  }
  if (!failed.has('trustedProxies')) {
    if (v.proxyEnabled && v.trustedProxies.length === 0) {
      problems.push('config: USHER_TRUSTED_PROXIES: proxy auth (USHER_PROXY_AUTH) needs the address of each trusted proxy, such as 127.0.0.1 or 10.0.0.0/8');
    }
    const everyone = v.trustedProxies.find(trustsEveryAddress);
    if (everyone !== undefined && !v.trustAllProxies) {
      problems.push(
        `config: USHER_TRUSTED_PROXIES: ${everyone} trusts every address: anyone could forge X-Forwarded-* (and, with proxy auth, be any user); ` +
          "list your proxies' addresses, or set USHER_TRUST_ALL_PROXIES_DANGEROUS=true if nothing but your proxy can reach Usher",
      );
    }
  }
  if (!failed.has('publicUrl') && !failed.has('forwardAuthRedirectDomains')) problems.push(...cookieDomainProblems(v, keys));
  if (v.databaseSchema !== undefined && v.databaseUrl === undefined) {
    problems.push('config: database.schema: only applies to PostgreSQL (set database.url)');
  }
  if (v.metricsEnabled && v.metricsListen === undefined && v.metricsToken === undefined && !failed.has('metricsListen') && !failed.has('metricsToken')) {
    problems.push(`config: ${keys.metricsEnabled}: needs metrics.listen (a separate address) or metrics.token (a bearer token), so /metrics is never public by accident`);
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const config: UsherConfig = Object.freeze({
    port: v.port,
    host: v.host,
    publicUrl: v.publicUrl,
    trustedProxies: v.trustedProxies,
    trustAllProxiesDangerous: v.trustAllProxies,
    dataDir: v.dataDir,
    database: Object.freeze({ url: v.databaseUrl, schema: v.databaseSchema }),
    secret: v.secret,
    bootstrap: Object.freeze({ adminUsername: v.adminUsername, adminPassword: v.adminPassword, adminApiKey: v.adminApiKey }),
    logLevel: v.logLevel,
    passwordMinLength: v.passwordMinLength,
    apiKeyCacheTtlMs: v.apiKeyCacheTtl,
    auditRetentionMs: v.auditRetention,
    cluster: Object.freeze({ pollIntervalMs: v.clusterPollInterval }),
    metrics: Object.freeze({ enabled: v.metricsEnabled, listen: v.metricsListen, token: v.metricsToken }),
    proxy: proxySettings(v),
    forwardAuth: Object.freeze({
      loginUrl: v.forwardAuthLoginUrl,
      redirectDomains:
        v.forwardAuthRedirectDomains ??
        Object.freeze([...new Set([v.forwardAuthLoginUrl, v.publicUrl].filter((u) => u !== undefined).map((u) => new URL(u).hostname))]),
    }),
    permissions: v.permissions,
    resources: v.resources,
    groupGrants: v.groupGrants,
    orgGroups: v.orgGroups,
    connect: Object.freeze({ appUrl: v.connectAppUrl, webUrl: v.connectWebUrl }),
    redisUrl: v.redisUrl,
    redisPrefix: v.redisPrefix,
    oidc: Object.freeze({ providers: Object.freeze(oidcProviders), timeoutMs: v.oidcTimeout, startsPerMinute: v.oidcStartsPerMinute }),
    session: Object.freeze({
      idleTimeoutMs: v.sessionIdleTimeout,
      maxAgeMs: v.sessionMaxAge,
      cookieDomain: v.sessionCookieDomain,
      deviceIdleTimeoutMs: v.sessionDeviceIdleTimeout,
    }),
    loginLimit: Object.freeze({
      maxFailures: v.loginMaxFailures,
      windowMs: v.loginWindow,
      addressMaxFailures: v.loginAddressMaxFailures,
      addressWindowMs: v.loginAddressWindow,
      accountMaxFailures: v.loginAccountMaxFailures,
      accountWindowMs: v.loginAccountWindow,
      accountSlowdownMs: v.loginAccountSlowdown,
    }),
    warnings: Object.freeze(warnings),
  });
  resolvedConfigs.add(config);
  return config;
}

/**
 * A shared cookie domain is for single sign-on: the browser must accept the cookie from Usher's host, and carry
 * it to every host a login may send the user back to (else forward auth sends them to the login page forever).
 */
function cookieDomainProblems(v: Values, keys: Record<string, string>): string[] {
  const domain = v.sessionCookieDomain;
  if (domain === undefined) return [];
  const problems: string[] = [];
  const usherHost = v.publicUrl === undefined ? undefined : new URL(v.publicUrl).hostname;
  if (usherHost !== undefined && !covers(domain, usherHost)) {
    problems.push(`config: ${keys.sessionCookieDomain}: ${domain} does not cover ${usherHost} (${keys.publicUrl}): browsers would refuse the cookie`);
  }
  for (const d of (v.forwardAuthRedirectDomains ?? []).filter((d) => !covers(domain, d))) {
    problems.push(`config: ${keys.forwardAuthRedirectDomains}: ${d} is neither ${domain} (${keys.sessionCookieDomain}) nor under it: the session cookie would not reach it`);
  }
  return problems;
}

/**
 * Group rules must name a declared resource type and actions it declares; one line per problem. Run by
 * createUsher() once the host app's own `resources` are added to the config's.
 */
export function groupGrantProblems(resources: readonly ResourceConfig[], rules: readonly GroupGrantConfig[], prefix: string): string[] {
  const problems: string[] = [];
  for (const [i, rule] of rules.entries()) {
    const type = resources.find((r) => r.type === rule.type);
    if (!type) problems.push(`${prefix}groupGrants[${i}].type: ${rule.type} is not a type of resources:`);
    else {
      const unknown = rule.actions.filter((a) => !type.actions.includes(a));
      if (unknown.length > 0) problems.push(`${prefix}groupGrants[${i}].actions: ${unknown.join(', ')} is not an action of ${rule.type} (${type.actions.join(', ')})`);
    }
  }
  return problems;
}

/** Proxy auth settings: a header set explicitly wins over the preset's, which wins over Authelia's names. */
function proxySettings(v: Values): UsherConfig['proxy'] {
  const preset = PROXY_PRESETS[v.proxyPreset ?? 'authelia'];
  return Object.freeze({
    enabled: v.proxyEnabled,
    preset: v.proxyPreset,
    userHeaders: v.proxyUserHeader ?? preset.userHeaders,
    groupsHeader: v.proxyGroupsHeader ?? preset.groupsHeader,
    emailHeader: v.proxyEmailHeader ?? preset.emailHeader,
    nameHeader: v.proxyNameHeader ?? preset.nameHeader,
    groupsSeparator: v.proxyGroupsSeparator ?? preset.groupsSeparator,
    adminGroups: v.proxyAdminGroups,
    autoProvision: v.proxyAutoProvision,
    roleSync: v.proxyRoleSync,
  });
}

/** Reads the YAML file named by USHER_CONFIG (if any) and resolves it with the environment. */
export function loadConfig(env: Record<string, string | undefined> = process.env): UsherConfig {
  const path = env.USHER_CONFIG;
  let file: unknown = {};
  if (path) {
    let source: string;
    try {
      source = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError([`config: USHER_CONFIG: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`]);
    }
    try {
      file = parseYaml(source) ?? {};
    } catch (err) {
      throw new ConfigError([`config: USHER_CONFIG: ${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`]);
    }
  }
  return resolveConfig({ file, env });
}
