import { readFileSync } from 'node:fs';
import { bad, boolean, groupList, listOf, ok, oneOf, text, type Parser, type ValueOf } from './parsers.js';
import { ROLE_SYNC_MODES, type RoleSync } from './schema.js';

/** One OpenID Connect provider, validated. */
export interface OidcProviderConfig {
  readonly id: string;
  readonly name: string;
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string | undefined;
  readonly scopes: string;
  /** Claims tried in order for the username of a new account. */
  readonly usernameClaims: readonly string[];
  /** Path to the groups claim, one segment per nesting level (a segment may itself hold dots or colons). */
  readonly groupsClaim: readonly string[];
  /** Only members of one of these may sign in; undefined = anyone the provider authenticates. */
  readonly allowedGroups: readonly string[] | undefined;
  readonly allowedAdminGroups: readonly string[];
  readonly defaultRole: string;
  readonly autoProvision: boolean;
  readonly emailLinking: boolean;
  readonly roleSync: RoleSync;
  /** Plain http issuer on loopback (tests only): openid-client's allowInsecureRequests. */
  readonly insecureLoopback: boolean;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * A claim path: "groups", "realm_access.roles", or a list of segments (["https://example.com/claims", "groups"])
 * for claims whose own name holds dots; a string with brackets also works: `["https://x/groups"]`.
 */
export function parseClaimPath(raw: unknown): string[] | null {
  if (Array.isArray(raw)) return raw.length > 0 && raw.every((s) => typeof s === 'string' && s.length > 0) ? (raw as string[]) : null;
  if (typeof raw !== 'string' || raw.trim() === '') return null;
  // No empty segment: "a..b", ".a" and "a." are mistakes, not paths.
  if (/^\.|\.\.|\.$/.test(raw.trim().replace(/\[\s*"[^"]+"\s*\]/g, 'x'))) return null;
  const segments: string[] = [];
  const re = /\[\s*"([^"]+)"\s*\]|([^.[\]]+)/g;
  let rest = raw.trim();
  for (const m of rest.matchAll(re)) segments.push(m[1] ?? m[2]!);
  rest = rest.replace(re, '').replace(/\./g, '');
  return rest === '' && segments.length > 0 ? segments : null;
}

/** Reads a claim by its path; undefined when any step is missing. */
export function claimAt(claims: Record<string, unknown>, path: readonly string[]): unknown {
  let node: unknown = claims;
  for (const segment of path) {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[segment];
  }
  return node;
}

const providerId: Parser<string | undefined> = (raw) =>
  typeof raw === 'string' && /^[a-z0-9][a-z0-9_-]{0,31}$/.test(raw) ? ok(raw) : bad('must be 1-32 of a-z 0-9 _ - (it appears in the callback URL)', raw);

/** Kept exactly as written: discovery compares it with the provider's own issuer. */
const issuerUrl: Parser<string | undefined> = (raw) => {
  if (typeof raw === 'string') {
    try {
      const url = new URL(raw);
      if (url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname))) return ok(raw);
      if (url.protocol === 'http:') return bad('must be https:// (plain http is accepted only for a loopback issuer, in tests)', raw);
      return bad('must be an https:// URL', raw);
    } catch {
      // fall through
    }
  }
  return bad("must be the provider's issuer URL, such as https://sso.example.com/realms/main", raw);
};

/** A client secret given inline: never echoed back. */
const clientSecret: Parser<string | undefined> = (raw) =>
  typeof raw === 'string' && raw !== '' ? ok(raw) : { ok: false, problem: 'must be a non-empty string' };

/** Scopes as one space-separated string or a list; openid is required. */
const scopes: Parser<string> = (raw) => {
  const list = Array.isArray(raw) ? listOf(raw) : typeof raw === 'string' ? raw.split(/\s+/).filter(Boolean) : null;
  if (list === null) return bad('must be scope names, space-separated or a list', raw);
  return list.includes('openid') ? ok(list.join(' ')) : bad('must include openid', raw);
};

const claimName: Parser<readonly string[] | undefined> = (raw) =>
  typeof raw === 'string' && raw.trim() !== '' ? ok(Object.freeze([raw.trim()])) : bad('must be a claim name', raw);

const claimPath: Parser<readonly string[]> = (raw) => {
  const path = parseClaimPath(raw);
  return path ? ok(Object.freeze(path)) : bad('must be a claim path such as groups or realm_access.roles, or a list of segments', raw);
};

/**
 * One key of a provider entry: its spelling, how to read it, its default. `wire` is the OAuth spelling, read as well
 * and for good; `was` is the spelling before keys were camelCase, read for one more release with a warning.
 */
interface ProviderOption<T> {
  key: string;
  wire?: string;
  was?: string;
  parse: Parser<T>;
  fallback: T;
}

const PROVIDER_OPTIONS = {
  id: { key: 'id', parse: providerId, fallback: undefined },
  name: { key: 'name', parse: text(), fallback: undefined },
  issuer: { key: 'issuer', parse: issuerUrl, fallback: undefined },
  clientId: { key: 'clientId', wire: 'client_id', parse: text(), fallback: undefined },
  clientSecret: { key: 'clientSecret', wire: 'client_secret', parse: clientSecret, fallback: undefined },
  clientSecretEnv: { key: 'clientSecretEnv', was: 'client_secret_env', parse: text(), fallback: undefined },
  clientSecretFile: { key: 'clientSecretFile', was: 'client_secret_file', parse: text(), fallback: undefined },
  scopes: { key: 'scopes', parse: scopes, fallback: 'openid profile email' },
  usernameClaims: { key: 'usernameClaim', was: 'username_claim', parse: claimName, fallback: Object.freeze(['preferred_username', 'email', 'sub']) as readonly string[] },
  groupsClaim: { key: 'groupsClaim', was: 'groups_claim', parse: claimPath, fallback: Object.freeze(['groups']) as readonly string[] },
  allowedGroups: { key: 'allowedGroups', was: 'allowed_groups', parse: groupList, fallback: undefined },
  allowedAdminGroups: { key: 'allowedAdminGroups', was: 'allowed_admin_groups', parse: groupList, fallback: Object.freeze([]) as readonly string[] },
  defaultRole: { key: 'defaultRole', was: 'default_role', parse: text(), fallback: 'user' },
  autoProvision: { key: 'autoProvision', was: 'auto_provision', parse: boolean, fallback: true },
  emailLinking: { key: 'emailLinking', was: 'email_linking', parse: boolean, fallback: false },
  roleSync: { key: 'roleSync', was: 'role_sync', parse: oneOf(ROLE_SYNC_MODES), fallback: 'always' as RoleSync },
} satisfies Record<string, ProviderOption<unknown>>;

type ProviderValues = { [K in keyof typeof PROVIDER_OPTIONS]: ValueOf<(typeof PROVIDER_OPTIONS)[K]> };

const spellings = (o: ProviderOption<unknown>) => [o.key, o.wire, o.was].filter((k) => k !== undefined);
const KEYS = new Set(Object.values(PROVIDER_OPTIONS as Record<string, ProviderOption<unknown>>).flatMap(spellings));

/**
 * Validates `oidc.providers` (config file only) with the parsers of the main table. Problems are pushed as lines
 * naming the key as written, e.g. `config: oidc.providers[0].issuer: ...`; an old spelling adds one line to
 * `warnings` naming the new key. A client secret may come from clientSecretEnv or clientSecretFile.
 */
export function parseOidcProviders(
  raw: unknown,
  env: Record<string, string | undefined>,
  roles: ReadonlySet<string> | undefined,
  problems: string[],
  warnings: string[] = [],
): OidcProviderConfig[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    problems.push('config: oidc.providers: must be a list of providers');
    return [];
  }
  const seen = new Set<string>();
  const out: OidcProviderConfig[] = [];
  raw.forEach((entry: unknown, i) => {
    const at = (key: string) => `config: oidc.providers[${i}].${key}`;
    const before = problems.length;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      problems.push(`config: oidc.providers[${i}]: must be a mapping`);
      return;
    }
    const p = entry as Record<string, unknown>;
    for (const key of Object.keys(p)) if (!KEYS.has(key)) problems.push(`${at(key)}: unknown key`);
    /** Where each option was read (the spelling the file used), for problem lines. */
    const keys: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const failed = new Set<string>();
    for (const [name, option] of Object.entries(PROVIDER_OPTIONS) as [string, ProviderOption<unknown>][]) {
      const given = spellings(option).filter((k) => p[k] !== undefined && p[k] !== null);
      const key = given[0] ?? option.key;
      keys[name] = key;
      if (given.length > 1) problems.push(`${at(given[1]!)}: give only one of ${given.join(', ')}`);
      if (key === option.was) warnings.push(`config: oidc.providers[${i}].${option.was} is deprecated; use oidc.providers[${i}].${option.key}`);
      if (given.length === 0) {
        values[name] = option.fallback;
        continue;
      }
      const result = option.parse(p[key]);
      if (result.ok) values[name] = result.value ?? option.fallback;
      else {
        problems.push(`${at(key)}: ${result.problem}`);
        failed.add(name);
      }
    }
    const v = values as ProviderValues;
    for (const name of ['id', 'issuer', 'clientId'] as const) {
      if (v[name] === undefined && !failed.has(name)) problems.push(`${at(keys[name]!)}: is required`);
    }
    if (v.id !== undefined && seen.has(v.id)) problems.push(`${at('id')}: ${JSON.stringify(v.id)} is used twice`);
    else if (v.id !== undefined) seen.add(v.id);
    const secretSources = (['clientSecret', 'clientSecretEnv', 'clientSecretFile'] as const).filter((k) => p[keys[k]!] !== undefined && p[keys[k]!] !== null);
    let secret = v.clientSecret;
    if (secretSources.length > 1) {
      problems.push(`${at(keys[secretSources[1]!]!)}: give only one of ${secretSources.map((k) => keys[k]).join(', ')}`);
    } else if (v.clientSecretEnv !== undefined) {
      secret = env[v.clientSecretEnv] || undefined;
      if (!secret) problems.push(`${at(keys.clientSecretEnv!)}: names no set environment variable`);
    } else if (v.clientSecretFile !== undefined) {
      try {
        secret = readFileSync(v.clientSecretFile, 'utf8').trim();
        if (!secret) problems.push(`${at(keys.clientSecretFile!)}: the file is empty`);
      } catch (err) {
        problems.push(`${at(keys.clientSecretFile!)}: cannot read ${v.clientSecretFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
      }
    }
    if (roles && !roles.has(v.defaultRole)) problems.push(`${at(keys.defaultRole!)}: must be one of ${[...roles].join(', ')}`);
    if (problems.length > before) return;
    out.push(Object.freeze({
      id: v.id!,
      name: v.name ?? v.id!,
      issuer: v.issuer!,
      clientId: v.clientId!,
      clientSecret: secret,
      scopes: v.scopes,
      usernameClaims: v.usernameClaims,
      groupsClaim: v.groupsClaim,
      allowedGroups: v.allowedGroups,
      allowedAdminGroups: v.allowedAdminGroups,
      defaultRole: v.defaultRole,
      autoProvision: v.autoProvision,
      emailLinking: v.emailLinking,
      roleSync: v.roleSync,
      insecureLoopback: new URL(v.issuer!).protocol === 'http:',
    }));
  });
  return out;
}
