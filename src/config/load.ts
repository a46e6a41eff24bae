import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { normalizeUsername, usernameProblem } from '../names.js';
import { parseOidcProviders } from './oidc.js';
import { compileTrustedProxies, trustsEveryAddress } from './trusted-proxies.js';
import { LOG_LEVELS, PROXY_PRESETS, ROLE_SYNC_MODES, type LogLevel, type ProxyPreset, type RoleSync, type UsherConfig } from './schema.js';

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

type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };
type Parser<T> = (raw: unknown) => Parsed<T>;

/** One option: where it lives in the file, which variable overrides it, how to read it, its default. */
interface Option<T> {
  path: string;
  env?: string;
  parse: Parser<T>;
  fallback: T;
}

const show = (raw: unknown): string => JSON.stringify(typeof raw === 'string' ? raw : (raw ?? null));
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = (problem: string, raw: unknown): Parsed<never> => ({ ok: false, problem: `${problem}, got ${show(raw)}` });

function integer(min: number, max: number): Parser<number> {
  return (raw) => {
    const text = typeof raw === 'number' ? String(raw) : raw;
    if (typeof text === 'string' && /^\d+$/.test(text.trim())) {
      const n = Number(text.trim());
      if (n >= min && n <= max) return ok(n);
    }
    return bad(`must be an integer ${min}-${max}`, raw);
  };
}

function text(opts: { minLength?: number; maxLength?: number; what?: string } = {}): Parser<string | undefined> {
  return (raw) => {
    if (raw === undefined || raw === null || raw === '') return ok(undefined);
    if (typeof raw !== 'string' && typeof raw !== 'number') return bad('must be a string', raw);
    const s = String(raw);
    if (opts.minLength && s.length < opts.minLength) {
      return { ok: false, problem: `must be at least ${opts.minLength} characters${opts.what ? ` (${opts.what})` : ''}` };
    }
    if (opts.maxLength && s.length > opts.maxLength) return { ok: false, problem: `must be at most ${opts.maxLength} characters` };
    return ok(s);
  };
}

const secretText = (minLength: number, maxLength: number, what: string): Parser<string | undefined> => (raw) => {
  const r = text({ minLength, maxLength, what })(raw);
  // Never echo a secret back in an error message.
  return r.ok ? r : { ok: false, problem: r.problem.replace(/, got .*$/, '') };
};

const databaseUrl: Parser<string | undefined> = (raw) => {
  const r = text()(raw);
  if (!r.ok || r.value === undefined) return r;
  if (/^postgres(ql)?:\/\//.test(r.value)) {
    try {
      new URL(r.value);
      return r;
    } catch {
      return { ok: false, problem: 'must be a valid postgres:// URL' };
    }
  }
  return { ok: false, problem: 'must be a postgres:// or postgresql:// URL (leave it unset for the SQLite file in the data dir)' };
};

const schemaName: Parser<string | undefined> = (raw) => {
  const r = text()(raw);
  if (!r.ok || r.value === undefined) return r;
  return /^[a-z_][a-z0-9_]{0,62}$/.test(r.value) ? r : bad('must be a lower-case SQL identifier', raw);
};

/** A list given as a YAML sequence or a comma-separated string. */
function listOf(raw: unknown): string[] | null {
  if (Array.isArray(raw)) return raw.every((x) => typeof x === 'string') ? raw.map((x) => x.trim()).filter(Boolean) : null;
  if (typeof raw === 'string') return raw.split(',').map((x) => x.trim()).filter(Boolean);
  return null;
}

/** Addresses or CIDR ranges, IPv4 and IPv6, checked the way Express will use them. */
const cidrList: Parser<readonly string[]> = (raw) => {
  const list = listOf(raw);
  if (list === null) return bad('must be a list of IP addresses or CIDR ranges', raw);
  for (const entry of list) {
    try {
      compileTrustedProxies([entry]);
    } catch {
      return bad(`must be IP addresses or CIDR ranges (such as 10.0.0.0/8 or ::1); ${JSON.stringify(entry)} is not one`, raw);
    }
  }
  return ok(Object.freeze(list));
};

const publicUrl: Parser<string | undefined> = (raw) => {
  const r = text()(raw);
  if (!r.ok || r.value === undefined) return r;
  try {
    const url = new URL(r.value);
    if ((url.protocol === 'http:' || url.protocol === 'https:') && !url.search && !url.hash && !url.username) {
      return ok(url.origin + url.pathname.replace(/\/+$/, ''));
    }
  } catch {
    // fall through
  }
  return bad('must be an http(s) URL without query, fragment or credentials, such as https://auth.example.com', raw);
};

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration: seconds as a number, or a number with a unit s, m, h or d ("30d"). Answers milliseconds. */
function duration(minMs: number, maxMs: number): Parser<number> {
  return (raw) => {
    const match = /^(\d{1,9})\s*([smhd]?)$/.exec(typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.trim() : '');
    if (match) {
      const ms = Number(match[1]) * UNIT_MS[match[2] || 's']!;
      if (ms >= minMs && ms <= maxMs) return ok(ms);
    }
    return bad(`must be a duration such as 90s, 15m, 12h or 30d, from ${minMs / 1000} s to ${maxMs / 86_400_000} days`, raw);
  };
}

const redisUrl: Parser<string | undefined> = (raw) => {
  const r = text()(raw);
  if (!r.ok || r.value === undefined) return r;
  try {
    const url = new URL(r.value);
    if (url.protocol === 'redis:' || url.protocol === 'rediss:') return r;
  } catch {
    // fall through
  }
  // The URL may hold a password: never echo it.
  return { ok: false, problem: 'must be a redis:// or rediss:// URL' };
};

const keyPrefix: Parser<string> = (raw) =>
  typeof raw === 'string' && /^[A-Za-z0-9:_.-]{1,64}$/.test(raw) ? ok(raw) : bad('must be 1-64 of A-Z a-z 0-9 : _ . -', raw);

const boolean: Parser<boolean> = (raw) => {
  if (typeof raw === 'boolean') return ok(raw);
  const word = typeof raw === 'string' ? raw.trim().toLowerCase() : typeof raw === 'number' ? String(raw) : '';
  if (['true', 'on', 'yes', '1'].includes(word)) return ok(true);
  if (['false', 'off', 'no', '0'].includes(word)) return ok(false);
  return bad('must be true or false (on/off, yes/no, 1/0)', raw);
};

function oneOf<T extends string>(values: readonly T[]): Parser<T> {
  return (raw) => (typeof raw === 'string' && (values as readonly string[]).includes(raw) ? ok(raw as T) : bad(`must be one of ${values.join('|')}`, raw));
}

/** RFC 9110 token: what a header name may hold. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Header names, as a YAML sequence or comma-separated; the first one a request carries is used. */
const headerNames: Parser<readonly string[] | undefined> = (raw) => {
  const list = listOf(raw);
  if (list === null || list.length === 0 || !list.every((h) => HEADER_NAME.test(h))) return bad('must be HTTP header names (letters, digits, -)', raw);
  return ok(Object.freeze(list));
};

const headerName: Parser<string | undefined> = (raw) =>
  typeof raw === 'string' && HEADER_NAME.test(raw.trim()) ? ok(raw.trim()) : bad('must be an HTTP header name (letters, digits, -)', raw);

const separator: Parser<string | undefined> = (raw) =>
  typeof raw === 'string' && raw.length >= 1 && raw.length <= 8 ? ok(raw) : bad('must be 1-8 characters', raw);

/** Group names: a YAML sequence (names may then hold commas) or a comma-separated string. */
const groupList: Parser<readonly string[]> = (raw) => {
  const list = listOf(raw);
  return list === null ? bad('must be a list of group names', raw) : ok(Object.freeze(list));
};

/** An absolute http(s) URL without credentials or fragment; a query is kept. */
const absoluteUrl: Parser<string | undefined> = (raw) => {
  const r = text()(raw);
  if (!r.ok || r.value === undefined) return r;
  try {
    const url = new URL(r.value);
    if ((url.protocol === 'http:' || url.protocol === 'https:') && !url.hash && !url.username && !url.password) return ok(url.href);
  } catch {
    // fall through
  }
  return bad('must be an absolute http(s) URL without fragment or credentials, such as https://auth.example.com/login', raw);
};

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}$/;

/** Host names; ".example.com" and "example.com" both mean example.com and every name under it. */
const domainList: Parser<readonly string[]> = (raw) => {
  const list = listOf(raw)?.map((d) => d.toLowerCase().replace(/^\*?\./, ''));
  if (!list || !list.every((d) => HOSTNAME.test(d))) return bad('must be a list of host names, such as example.com', raw);
  return ok(Object.freeze(list));
};

/** A domain for the session cookie: a host name with at least one dot (browsers refuse a top-level one), no address. */
const cookieDomain: Parser<string | undefined> = (raw) => {
  const r = text()(raw);
  if (!r.ok || r.value === undefined) return r;
  const domain = r.value.trim().toLowerCase().replace(/^\./, '');
  if (HOSTNAME.test(domain) && domain.includes('.') && !/^[\d.]+$/.test(domain)) return ok(domain);
  return bad('must be a domain name such as example.com (the cookie then reaches every host under it)', raw);
};

/** Hosts under `domain` (or `domain` itself): where a cookie with that Domain is sent. */
const covers = (domain: string, host: string) => host === domain || host.endsWith(`.${domain}`);

const logLevel: Parser<LogLevel> = (raw) =>
  typeof raw === 'string' && (LOG_LEVELS as readonly string[]).includes(raw)
    ? ok(raw as LogLevel)
    : bad(`must be one of ${LOG_LEVELS.join('|')}`, raw);

const username: Parser<string | undefined> = (raw) => {
  const r = text()(raw);
  if (!r.ok || r.value === undefined) return r;
  const problem = usernameProblem(normalizeUsername(r.value));
  return problem ? bad(problem, raw) : r;
};

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
  sessionCookieDomain: { path: 'session.cookieDomain', env: 'USHER_SESSION_COOKIE_DOMAIN', parse: cookieDomain, fallback: undefined },
  loginMaxFailures: { path: 'auth.loginRateLimit.maxFailures', env: 'USHER_LOGIN_MAX_FAILURES', parse: integer(1, 1000), fallback: 10 },
  loginWindow: { path: 'auth.loginRateLimit.window', env: 'USHER_LOGIN_WINDOW', parse: duration(1_000, 7 * 86_400_000), fallback: 60 * 60_000 },
  loginAddressMaxFailures: { path: 'auth.loginRateLimit.addressMaxFailures', env: 'USHER_LOGIN_ADDRESS_MAX_FAILURES', parse: integer(1, 100_000), fallback: 100 },
  loginAddressWindow: { path: 'auth.loginRateLimit.addressWindow', env: 'USHER_LOGIN_ADDRESS_WINDOW', parse: duration(1_000, 7 * 86_400_000), fallback: 86_400_000 },
  loginAccountMaxFailures: { path: 'auth.loginRateLimit.accountMaxFailures', env: 'USHER_LOGIN_ACCOUNT_MAX_FAILURES', parse: integer(1, 100_000), fallback: 10 },
  loginAccountWindow: { path: 'auth.loginRateLimit.accountWindow', env: 'USHER_LOGIN_ACCOUNT_WINDOW', parse: duration(1_000, 7 * 86_400_000), fallback: 15 * 60_000 },
  loginAccountSlowdown: { path: 'auth.loginRateLimit.accountSlowdown', env: 'USHER_LOGIN_ACCOUNT_SLOWDOWN', parse: duration(1_000, 3_600_000), fallback: 10_000 },
  auditRetention: { path: 'audit.retention', env: 'USHER_AUDIT_RETENTION', parse: duration(86_400_000, 3650 * 86_400_000), fallback: 90 * 86_400_000 },
  apiKeyCacheTtl: { path: 'auth.apiKeyCacheTtl', env: 'USHER_API_KEY_CACHE_TTL', parse: integer(0, 3600), fallback: 5 },
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
  forwardAuthLoginUrl: { path: 'auth.forwardAuth.loginUrl', env: 'USHER_FORWARD_AUTH_LOGIN_URL', parse: absoluteUrl, fallback: undefined },
  forwardAuthRedirectDomains: { path: 'auth.forwardAuth.redirectDomains', env: 'USHER_FORWARD_AUTH_REDIRECT_DOMAINS', parse: domainList, fallback: undefined },
} satisfies Record<string, Option<unknown>>;

interface Values {
  port: number;
  host: string | undefined;
  publicUrl: string | undefined;
  trustedProxies: readonly string[];
  trustAllProxies: boolean;
  dataDir: string | undefined;
  databaseUrl: string | undefined;
  databaseSchema: string | undefined;
  secret: string | undefined;
  adminUsername: string | undefined;
  adminPassword: string | undefined;
  adminApiKey: string | undefined;
  logLevel: LogLevel;
  passwordMinLength: number;
  apiKeyCacheTtl: number;
  auditRetention: number;
  proxyEnabled: boolean;
  proxyPreset: ProxyPreset | undefined;
  proxyUserHeader: readonly string[] | undefined;
  proxyGroupsHeader: string | undefined;
  proxyEmailHeader: string | undefined;
  proxyNameHeader: string | undefined;
  proxyGroupsSeparator: string | undefined;
  proxyAdminGroups: readonly string[];
  proxyAutoProvision: boolean;
  proxyRoleSync: RoleSync;
  forwardAuthLoginUrl: string | undefined;
  forwardAuthRedirectDomains: readonly string[] | undefined;
  oidcTimeout: number;
  oidcStartsPerMinute: number;
  redisUrl: string | undefined;
  redisPrefix: string;
  sessionIdleTimeout: number;
  sessionMaxAge: number;
  sessionCookieDomain: string | undefined;
  loginMaxFailures: number;
  loginWindow: number;
  loginAddressMaxFailures: number;
  loginAddressWindow: number;
  loginAccountMaxFailures: number;
  loginAccountWindow: number;
  loginAccountSlowdown: number;
}

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
  const oidcProviders = parseOidcProviders(lookup(file, 'oidc.providers'), env, undefined, problems);
  if (oidcProviders.length > 0 && v.publicUrl === undefined && !failed.has('publicUrl')) {
    problems.push('config: server.publicUrl: is required with oidc.providers (redirect URIs are built from it)');
  }
  if (!failed.has('adminUsername') && !failed.has('adminPassword') && (v.adminUsername === undefined) !== (v.adminPassword === undefined)) {
    problems.push('config: USHER_BOOTSTRAP_ADMIN_USERNAME: bootstrap needs both the admin username and password');
  }
  if (v.adminApiKey !== undefined && v.adminUsername === undefined && !failed.has('adminUsername')) {
    problems.push('config: USHER_BOOTSTRAP_ADMIN_API_KEY: needs USHER_BOOTSTRAP_ADMIN_USERNAME and USHER_BOOTSTRAP_ADMIN_PASSWORD');
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
  if (problems.length > 0) throw new ConfigError(problems);

  const config: UsherConfig = Object.freeze({
    port: v.port,
    host: v.host ?? '0.0.0.0',
    publicUrl: v.publicUrl,
    trustedProxies: v.trustedProxies,
    trustAllProxiesDangerous: v.trustAllProxies,
    dataDir: v.dataDir ?? './data',
    database: Object.freeze({ url: v.databaseUrl, schema: v.databaseSchema }),
    secret: v.secret,
    bootstrap: Object.freeze({ adminUsername: v.adminUsername, adminPassword: v.adminPassword, adminApiKey: v.adminApiKey }),
    logLevel: v.logLevel,
    passwordMinLength: v.passwordMinLength,
    apiKeyCacheTtlMs: v.apiKeyCacheTtl * 1000,
    auditRetentionMs: v.auditRetention,
    proxy: proxySettings(v),
    forwardAuth: Object.freeze({
      loginUrl: v.forwardAuthLoginUrl,
      redirectDomains:
        v.forwardAuthRedirectDomains ??
        Object.freeze([...new Set([v.forwardAuthLoginUrl, v.publicUrl].filter((u) => u !== undefined).map((u) => new URL(u).hostname))]),
    }),
    redisUrl: v.redisUrl,
    redisPrefix: v.redisPrefix,
    oidc: Object.freeze({ providers: Object.freeze(oidcProviders), timeoutMs: v.oidcTimeout, startsPerMinute: v.oidcStartsPerMinute }),
    session: Object.freeze({ idleTimeoutMs: v.sessionIdleTimeout, maxAgeMs: v.sessionMaxAge, cookieDomain: v.sessionCookieDomain }),
    loginLimit: Object.freeze({
      maxFailures: v.loginMaxFailures,
      windowMs: v.loginWindow,
      addressMaxFailures: v.loginAddressMaxFailures,
      addressWindowMs: v.loginAddressWindow,
      accountMaxFailures: v.loginAccountMaxFailures,
      accountWindowMs: v.loginAccountWindow,
      accountSlowdownMs: v.loginAccountSlowdown,
    }),
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
